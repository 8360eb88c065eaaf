// Executor pool: `concurrency` threads that take batches of jobs from the local queue and
// run them through the TaskRunner (the Python bindings enter the interpreter once per
// batch). Owning threads: the executors themselves; each owns its batch, and reaches the
// shared state only through the local queue, the lease table and the completer (each
// with its lock inside) and the producer's thread-safe calls.
//
// Other threads: run() calls start() and finish(); anyone may ask drained(). The event
// loop of async jobs (TaskRunner::start_async) hands their outcome back through the
// `done` callback, from any thread.
//
// How much each executor takes is decided in fastq/worker/executor_pool.hpp.
#pragma once

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "completer.hpp"
#include "context.hpp"
#include "fastq/job_log.hpp"
#include "fastq/worker/lease_table.hpp"
#include "fastq/worker/local_queue.hpp"
#include "producer.hpp"

namespace fastq::worker {

class ExecutorPool {
 public:
  // `idle_hook`: called when the last executor leaves, or the last async job ends while
  // stopping (the poller ends a graceful stop once drained()).
  ExecutorPool(Context& ctx, TaskRunner& runner, LocalQueue& queue, LeaseTable& leases,
               Completer& completer, Producer& producer, std::function<void()> idle_hook);

  // run(): starts the `concurrency` executor threads.
  void start();
  // run(), once the poller stopped: joins them, or after a hard stop detaches them (they
  // may be inside task code; the caller exits the process).
  void finish(bool hard);
  // Any thread: no executor runs and no async job is in flight.
  bool drained() const { return running_.load() == 0 && async_inflight_.load() == 0; }

 private:
  void execute_loop(int index);
  void executor_done();
  void async_done(Completion&& c);
  bool lease_in_doubt(const ClaimedJob& job) const;
  void observe_wait(const ClaimedJob& job) const;
  void report(const JobLogSubject& job, Completion& c);
  static JobLogSubject subject(const ClaimedJob& job);

  Context& ctx_;
  TaskRunner& runner_;
  LocalQueue& queue_;
  LeaseTable& leases_;
  Completer& completer_;
  Producer& producer_;
  std::function<void()> idle_hook_;
  std::vector<std::thread> threads_;
  std::atomic<int> running_{0};
  std::atomic<int> async_inflight_{0};  // started by start_async, outcome not back yet
};

}  // namespace fastq::worker
