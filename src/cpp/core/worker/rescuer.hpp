// Rescuer: returns the jobs of workers presumed dead (expired leases) to the queue, on the
// one worker holding the leader lease "rescuer" (see fastq/worker/rescuer.hpp). Owning
// thread: the completer (a rescue must follow this worker's own flush and renewal, so it
// runs where those run, on `done_io`, with the completer's connection). run() calls
// rescue_now(true) once before the first claim, while the completer has no work yet.
//
// No other thread calls it; it tells the poller that rescued jobs wait through `rescued`.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "completer.hpp"
#include "context.hpp"
#include "lease_keeper.hpp"

namespace fastq::worker {

class Rescuer {
 public:
  // `rescued`: called after a pass returned jobs to the queue (the poller claims again).
  Rescuer(Context& ctx, boost::asio::io_context& done_io, Completer& completer,
          LeaseKeeper& lease_keeper, std::function<void()> rescued);

  // Completer thread (or run() before the completer has work): one pass.
  void rescue_now(bool at_start = false);
  // Completer thread: a pass every cfg.rescue_interval.
  void start();
  // Completer thread, at the end: no more passes.
  void stop();
  // Completer thread, at the end: a leader hands the lease on at once.
  void drop_lease();

 private:
  bool hold_lease();
  void arm(std::chrono::milliseconds after);

  Context& ctx_;
  Completer& completer_;
  LeaseKeeper& lease_keeper_;
  std::function<void()> rescued_;
  boost::asio::steady_timer timer_;
  // This worker's name on the rescuer lease, and whether it held the lease at its last pass.
  std::string holder_;
  bool leader_ = false;
};

}  // namespace fastq::worker
