// Completer: writes outcomes and start marks in batches, fenced by lease token, on its own
// sibling connection (the lease keeper and the rescuer use it too). Owning thread: the
// completer, running `done_io` (its Boost.Asio io_context); flush, final_flush and db()
// are for that thread only (and for run() before the completer has work).
//
// Other threads: executors and the event loop of async jobs hand it outcomes
// (add_outcomes) and starts (note_started), and anyone may ask has_pending() and
// unflushed(); those take its outcome mutex (out_mu_) or read an atomic.
//
// When to flush is decided in fastq/worker/completer.hpp.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "context.hpp"
#include "fastq/driver.hpp"
#include "fastq/worker/completer.hpp"
#include "fastq/worker/lease_table.hpp"

namespace fastq::worker {

class Completer {
 public:
  // `flushed`: called on the completer thread after a flush that wrote everything it had
  // (burst mode looks again whether anything is left to run).
  Completer(Context& ctx, boost::asio::io_context& done_io, LeaseTable& leases,
            std::function<void()> flushed);

  // run(), before the completer thread has work: the sibling connection.
  void connect(std::unique_ptr<Driver> db) { db_ = std::move(db); }
  Driver& db() { return *db_; }

  // Executor thread (see there).
  Micros note_started(const ClaimedJob& job);
  // Executor threads and the event loop: `outs` (left empty) are this worker's outcomes.
  void add_outcomes(std::vector<Completion>& outs);

  // Completer thread. Returns false if a transient error kept some outcomes for a retry.
  bool flush();
  // Completer thread, at the end.
  void final_flush();

  // Any thread: outcomes or starts wait to be written.
  bool has_pending();
  // Any thread: outcomes handed over and not yet written.
  std::size_t unflushed() const { return unflushed_.load(); }

 private:
  void arm_flush();
  void arm_retry();
  std::string write_marks(std::vector<StartMark>& starts, std::vector<Completion>& batch);

  Context& ctx_;
  boost::asio::io_context& done_io_;
  LeaseTable& leases_;
  std::function<void()> flushed_;
  std::unique_ptr<Driver> db_;  // completer thread only
  boost::asio::steady_timer flush_timer_{done_io_};
  boost::asio::steady_timer retry_timer_{done_io_};
  std::mutex out_mu_;
  std::vector<Completion> pending_;  // out_mu_
  std::vector<StartMark> marks_;     // starts not written yet (out_mu_), see note_started
  bool flush_posted_ = false;        // out_mu_
  bool flush_armed_ = false;         // out_mu_
  std::atomic<std::size_t> unflushed_{0};
  std::chrono::milliseconds flush_backoff_{completer::kRetryFirst};  // completer thread
};

}  // namespace fastq::worker
