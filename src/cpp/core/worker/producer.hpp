// Producer: claims jobs into the worker's local queue, wakes on LISTEN notifications,
// backs off when idle, reads which queues are paused, and hands back the jobs this worker
// holds and will not start. Owning thread: the poller (the thread that called
// Worker::run(), running `poll_io` with the claim connection, the LISTEN socket and the
// signals); everything not marked otherwise below is for that thread only (or for run()
// once the poller stopped).
//
// Other threads: executors and the completer call poke(), finished(), notified(),
// wake_if_idle() and the *_soon() methods, which only touch atomics or post onto
// `poll_io`; the driver's wake-up callback calls notified().
//
// Its decisions (claim size, back-off) are the pure functions of fastq/worker/producer.hpp.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "completer.hpp"
#include "context.hpp"
#include "fastq/driver.hpp"
#include "fastq/worker/lease_table.hpp"
#include "fastq/worker/local_queue.hpp"
#include "fastq/worker/producer.hpp"
#include "rate_gate.hpp"

namespace fastq::worker {

class Producer {
 public:
  // `stop`: starts the worker's shutdown (retiring, a fatal claim error, burst end).
  Producer(Context& ctx, Driver& claim_db, boost::asio::io_context& poll_io, LeaseTable& leases,
           LocalQueue& queue, RateGate& rate_gate, const Completer& completer,
           std::function<void()> stop);

  // run(), before the first claim: LISTEN (or the driver's wake-up) feeds notified().
  void listen();
  // run(): the first claim, and the pause check.
  void start();
  // Poller thread, at a stop: no more claims, wake-ups or pause checks.
  void stop_claiming();
  // run(), once the poller stopped: no more notifications.
  void stop_listening();

  // Poller thread (or run() once the poller stopped): hands claimed jobs that never
  // started back to the queue without spending an attempt.
  void release(std::vector<ClaimedJob>& jobs);
  // run() after a hard stop: hands back jobs cut off while running.
  void interrupt(std::vector<ClaimedJob>& jobs);
  // Drops jobs that left this worker (handed back) from the lease table and the tracker.
  void forget(std::vector<ClaimedJob>& jobs);

  // The error that stopped the worker, if any (run() rethrows it).
  std::exception_ptr fatal() const { return fatal_; }

  // Any thread: `n` held jobs ran (or an async one ended); their places are free.
  void finished(int n) { held_ -= n; }
  // Any thread: called by executors and the completer when room frees up or work may
  // be waiting.
  void poke();
  // Any thread: work may be waiting (a notification, a rescue).
  void notified();
  // Any thread: the same, but only if the poller is idle (burst mode after a flush).
  void wake_if_idle();
  // Any thread: executors set jobs aside for the poller to hand back.
  void release_stale_soon();
  void release_paused_soon();

 private:
  std::size_t quarantine(const ClaimRequest& request, const std::string& why);
  void maybe_claim();
  producer::Backoff idle_backoff() const;
  void arm_idle(std::chrono::milliseconds after);
  void on_notified();
  void watch_notifications();
  void check_paused();
  void arm_pause_check();
  void release_stale();
  void release_paused();

  Context& ctx_;
  Driver& claim_db_;  // poller thread only
  boost::asio::io_context& poll_io_;
  LeaseTable& leases_;
  LocalQueue& queue_;
  RateGate& rate_gate_;
  const Completer& completer_;
  std::function<void()> stop_;

  boost::asio::steady_timer idle_timer_;
  std::optional<boost::asio::posix::stream_descriptor> notify_sd_;
  boost::asio::steady_timer notify_retry_;
  boost::asio::steady_timer pause_timer_;
  bool had_notify_fd_ = false;
  int notify_fd_ = -1;
  int capacity_ = 0;
  int low_water_ = 1;
  std::chrono::milliseconds backoff_{5};
  std::atomic<bool> idle_{false};
  std::atomic<bool> claim_posted_{false};
  std::atomic<int> held_{0};  // claimed by us and not yet executed
  std::exception_ptr fatal_;
};

}  // namespace fastq::worker
