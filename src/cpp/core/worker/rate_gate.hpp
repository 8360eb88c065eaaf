// Rate gate: holds rate-limited jobs until their token is due. Owning thread: the poller
// (it takes tokens from the database with Driver::acquire_rate on the claim connection
// right after a claim, and keeps the jobs whose token is not due yet on a timer of
// `poll_io`). Every method is for the poller thread only; no other thread calls it.
//
// The bucket arithmetic (GCRA) is fastq/rate.hpp; what the gate does with one grant is
// decided in fastq/worker/rate_gate.hpp.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "context.hpp"
#include "fastq/driver.hpp"
#include "fastq/worker/local_queue.hpp"

namespace fastq::worker {

class RateGate {
 public:
  // `forget`: drops jobs handed back for later from the worker's books (Producer::forget).
  RateGate(Context& ctx, Driver& claim_db, boost::asio::io_context& poll_io, LocalQueue& queue,
           std::function<void(std::vector<ClaimedJob>&)> forget);

  // Takes tokens for the rate-limited jobs among `jobs` (see rate_gate.cpp).
  void apply(std::vector<ClaimedJob>& jobs);
  // The held jobs of the `paused` queues move to `back`.
  void take_paused(const std::vector<std::string>& paused, std::vector<ClaimedJob>& back);
  // At a stop: no more releases from the timer; the held jobs move to `back`.
  void stop(std::vector<ClaimedJob>& back);
  // Until when jobs handed back for later are due (burst mode waits for them).
  Micros deferred_until() const { return deferred_until_; }

 private:
  void arm_timer();

  Context& ctx_;
  Driver& claim_db_;
  LocalQueue& queue_;
  std::function<void(std::vector<ClaimedJob>&)> forget_;
  // Rate-limited jobs holding a token that is not due yet.
  std::multimap<std::chrono::steady_clock::time_point, ClaimedJob> waiting_;
  Micros deferred_until_ = 0;  // burst mode waits for the jobs it handed back for later
  // This worker's last start in each bucket (arm_timer keeps starts an interval apart).
  std::unordered_map<std::string, std::optional<std::chrono::steady_clock::time_point>>
      last_start_;
  boost::asio::steady_timer timer_;
};

}  // namespace fastq::worker
