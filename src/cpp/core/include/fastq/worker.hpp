// The worker: poller -> bounded local queue -> executor threads -> completer.
//
//   auto driver = fastq::make_postgres_driver("host=127.0.0.1 dbname=app");
//   MyRunner runner;                            // runs one job: Python, in the bindings
//   fastq::WorkerConfig cfg;
//   cfg.queues = {"default"};
//   cfg.registered = {"shop.tasks.send_sms"};  // only these names ever run
//   cfg.concurrency = 8;
//   fastq::Worker worker(std::move(driver), runner, cfg);
//   fastq::WorkerStats stats = worker.run();   // blocks until stop() / SIGTERM / burst end
//
// Threads and what each owns:
//  * poller (Boost.Asio io_context): the claim connection, the LISTEN socket, SIGINT and
//    SIGTERM, idle back-off timers. Claims as many jobs as the local queue has room for,
//    in one statement; when a claim comes back short it waits for a notification (or an
//    idle poll) instead of spinning.
//  * executors (`concurrency` std::threads): pop jobs, reject unknown task names and
//    malformed payloads without calling the runner, call TaskRunner::run() for the rest.
//    The runner decides what to lock (the bindings take the GIL per batch of jobs).
//  * completer (its own io_context): a sibling connection; flushes outcomes every
//    `flush_interval` or `flush_batch` outcomes in one fenced statement, renews leases of
//    every held job every lease/3, and, on the one worker holding the rescuer lease,
//    returns expired leases of dead workers to the queue.
//
// Each of these is a service whose decisions are pure functions in fastq/worker/:
// producer.hpp (claim size, back-off), rate_gate.hpp (rate admission), executor_pool.hpp
// (batch sizes), completer.hpp (when to flush), lease_keeper.hpp (when a lease is in
// doubt), rescuer.hpp (leader-only rescue and its cadence). Their thread code is a class
// each in src/cpp/core/worker/ (producer, rate_gate and executor_pool, completer,
// lease_keeper and rescuer .cpp), whose header names the thread that owns it; what several
// threads share is a class with its lock inside (fastq/worker/lease_table.hpp,
// local_queue.hpp).
//
// Shutdown (stop(), SIGTERM, SIGINT, or burst mode finding nothing runnable): no new
// claims; executors finish the job they are running; jobs still waiting in the local
// queue are released back to the database without spending an attempt; outcomes are
// flushed; run() returns. A job that was claimed is thus always completed, released, or
// (if this process dies) rescued after its lease expires.
//
// Hard stop: when jobs are still running `grace` after the stop began, or on a second
// SIGINT, their outcomes so far are flushed, the still-running jobs are handed back as
// interrupted (Driver::interrupt: the attempt refunded up to kMaxUnspentHandbacks times),
// jobs an executor took but had not started are released, and run() returns with
// stats.hard_stopped set while executor threads may still be inside task code. The
// process must then exit at once.
//
// Starts: an executor notes each job's start just before running it; the completer
// writes the starts with its next flush (Driver::mark_started, one statement), except
// those whose outcome is in the same flush, which the completion carries.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fastq/driver.hpp"
#include "fastq/metrics.hpp"
#include "fastq/types.hpp"

namespace fastq {

// Runs one job. Implemented by the language front end (the Python bindings); the core
// knows nothing of Python. Called on executor threads; must not throw.
class TaskRunner {
 public:
  virtual ~TaskRunner() = default;
  virtual void thread_started() {}
  virtual void thread_stopping() {}
  // Brackets a run of consecutive jobs on one thread (the bindings hold the GIL across it).
  virtual void begin_batch() {}
  virtual void end_batch() {}
  // Fills `out` (id and lease_token are already set) with the outcome of running `job`.
  virtual void run(const ClaimedJob& job, Completion& out) = 0;
  // For tasks in WorkerConfig::async_tasks: starts `job` and returns at once; `done` is
  // called exactly once, from any thread, with the outcome (id and lease_token are filled
  // in by the worker). Called between begin_batch() and end_batch().
  using Done = std::function<void(Completion&&)>;
  virtual void start_async(const ClaimedJob& job, Done done) {
    Completion c;
    run(job, c);
    done(std::move(c));
  }
};

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// Follows every job this worker holds, from claim until its outcome is written or it is
// handed back. The prefork supervisor implements it over shared memory, so that when a
// child dies (crash, time limit) it knows which jobs were started and which were not.
// Called from the poller, executor and completer threads; must be thread-safe and cheap.
class JobTracker {
 public:
  virtual ~JobTracker() = default;
  // A claim under this lease token is about to be sent (0: its jobs are all tracked now).
  virtual void claiming(std::int64_t /*lease_token*/) {}
  virtual void claimed(const ClaimedJob& job) = 0;
  // An executor is about to run the job (index: the executor, 0..concurrency-1).
  virtual void started(const ClaimedJob& job, int executor) = 0;
  // The job's outcome was written, or it went back to the queue.
  virtual void forgotten(const std::string& id) = 0;
  // Whether a stop is under way that this process's own signal may not have reached yet
  // (the supervisor raises it before relaying SIGTERM): no claim is sent and no held job
  // started once it is set, so a job a stopping sibling hands back is not run here.
  virtual bool stop_requested() const { return false; }
};

// A fleet-wide limit on how often a task starts: one token per `interval_us`, at most
// `burst` at once. Buckets live in the database (Driver::acquire_rate).
struct RateLimit {
  Micros interval_us = 0;
  int burst = 1;
};

struct WorkerConfig {
  std::vector<std::string> queues{"default"};
  std::unordered_set<std::string> registered;  // task names this process may run
  int concurrency = 4;                          // executor threads
  int prefetch = -1;        // extra jobs held beyond concurrency; < 0: claim_batch
  int claim_batch = 256;    // most jobs taken by one claim statement
  int exec_batch = 32;      // most jobs one executor runs per begin/end_batch
  std::chrono::milliseconds lease{30000};
  std::chrono::milliseconds flush_interval{5};
  std::size_t flush_batch = 512;
  std::chrono::milliseconds idle_poll_min{5};
  std::chrono::milliseconds idle_poll_max{1000};
  // How often the rescuer passes (on the worker holding the rescuer lease only; see
  // fastq/worker/rescuer.hpp). 0: half a lease, within [0.5 s, 5 s].
  std::chrono::milliseconds rescue_interval{0};
  std::size_t max_payload_bytes = 1 << 20;
  bool burst = false;            // stop once nothing runnable is left
  std::chrono::milliseconds grace{30000};  // running jobs get this long after a stop
  bool handle_signals = false;   // SIGINT / SIGTERM start a graceful stop
  // A child of the prefork supervisor: SIGTERM stops gracefully, SIGUSR1 stops now, and
  // SIGINT is left to the supervisor (a terminal's Ctrl-C reaches the whole group).
  bool supervised = false;
  std::string name;              // "host:pid", recorded on claimed rows
  // Stop claiming after this many jobs, finish them, and stop (0: never). The prefork
  // supervisor then starts a fresh child (--max-tasks-per-child).
  std::uint64_t max_jobs = 0;
  // Task name -> its limit. A job's bucket is its rate_key, or else its task name.
  std::unordered_map<std::string, RateLimit> rate_limits;
  // Rate-limited jobs whose token falls within this horizon wait in the worker for it;
  // later ones go back to the queue, due when their turn is expected.
  std::chrono::milliseconds rate_horizon{2000};
  JobTracker* tracker = nullptr;  // not owned; may be null
  // Tasks started with TaskRunner::start_async (async def): many run at once, each
  // holding one of the worker's `concurrency + prefetch` places until it finishes.
  std::unordered_set<std::string> async_tasks;
  std::function<void(LogLevel, const std::string&)> log;  // any thread; may be empty
  // Per-job lines on `log` (fastq/job_log.hpp): failed, retried, dead, expired jobs always
  // (WARNING/ERROR); started, succeeded and cancelled ones (INFO) only with log_jobs; the
  // traceback of a failed attempt (DEBUG) only with log_tracebacks.
  bool log_jobs = false;
  bool log_tracebacks = false;
  // The worker registry (Driver::beat_worker): when set, the completer writes this row at
  // start, again with every lease renewal tick (lease/3; one statement, none per job)
  // with the counters and RSS of now, and marks it stopped after the final flush. The
  // worker fills pid, queues, tasks, concurrency, lease and the counters; id, host,
  // version and supervisor come from the caller.
  std::optional<WorkerRow> registry;
  // systemd Type=notify (NOTIFY_SOCKET set): READY=1 once the worker is registered and
  // claiming, WATCHDOG=1 from the completer every WATCHDOG_USEC / 2, STOPPING=1 at a stop.
  // Off in the children of a supervisor, which notifies for them.
  bool notify_systemd = false;
  // Process metrics (--metrics-port): claims, batch sizes, executor busy time, wait and
  // run-time histograms, flush latency. Not owned; may be null (then nothing is counted).
  WorkerMetrics* metrics = nullptr;

  // Jobs one worker holds at most: the running ones and `prefetch` more (a negative
  // prefetch: one claim batch; 0: nothing beyond the running jobs, for long tasks).
  int capacity() const { return concurrency + (prefetch >= 0 ? prefetch : claim_batch); }
};

struct WorkerStats {
  std::uint64_t claimed = 0;
  std::uint64_t claims = 0;  // claim statements that returned at least one job
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
  std::uint64_t retried = 0;  // attempts that asked to run again later
  std::uint64_t skipped = 0;  // expired or cancelled before they started
  std::uint64_t completed_written = 0;  // outcomes the database accepted
  std::uint64_t fenced = 0;             // outcomes refused: the lease had moved on
  std::uint64_t flushes = 0;
  std::uint64_t released = 0;
  std::uint64_t rescued = 0;
  std::uint64_t db_errors = 0;
  std::uint64_t rejected = 0;  // bad messages: dead without reaching the runner
  std::uint64_t deferred = 0;  // rate-limited jobs handed back for later
  std::uint64_t stale = 0;     // held jobs not started: their lease was in doubt
  std::uint64_t sanitized = 0;  // outcomes made storable (texts repaired or cut, result too large)
  std::uint64_t isolated = 0;   // outcomes the database refused, recorded as OutcomeNotStored
  bool hard_stopped = false;  // see "Hard stop" above: exit the process now
};

class Worker {
 public:
  Worker(std::unique_ptr<Driver> driver, TaskRunner& runner, WorkerConfig config);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs until stopped; returns the counters. Throws DriverError if the database refuses
  // the worker for a non-transient reason (missing table, bad credentials).
  WorkerStats run();
  // Starts a graceful stop; safe from any thread and from signal-free contexts.
  void stop();
  WorkerStats stats() const;
  // True once a cancel of this running job reached the worker (lease renewal brings it).
  bool cancel_requested(const std::string& job_id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fastq
