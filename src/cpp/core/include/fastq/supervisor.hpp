// The prefork supervisor: `fastq_worker --processes P` forks P worker processes after the
// application is loaded, and stays small and single-threaded itself.
//
//  * Restarts a child that dies, whatever killed it, and settles the jobs it held at
//    once instead of waiting for their leases to expire: jobs it had not started go back
//    to the queue without spending an attempt; a job it was running counts the attempt
//    (retried, or dead as fastq.WorkerLost once attempts are spent), so a poison pill
//    that kills its process on every run ends dead after its attempts.
//  * Enforces hard time limits: a job running past its time_limit gets its process
//    killed (SIGKILL); the job's attempt fails as fastq.TimeLimitExceeded (retried while
//    attempts remain, then dead) and the other jobs of that process go back to the queue
//    without spending an attempt.
//  * Recycles children: --max-tasks-per-child is counted by the child (it retires by
//    itself), --max-memory-per-child is checked here (the child is asked to stop
//    gracefully) and a fresh child takes the place of either.
//  * On SIGTERM/SIGINT asks the children to stop gracefully (SIGTERM); on a second SIGINT
//    to stop now (SIGUSR1: running jobs go back to the queue unspent); exits once they
//    have all gone. Children that outlive the grace period by 10 s are killed and their
//    jobs settled as above.
//
// Children learn which jobs they hold through a JobTracker over shared memory (one
// region mapped before the first fork); the supervisor reads it when a child dies.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "fastq/driver.hpp"
#include "fastq/metrics.hpp"
#include "fastq/worker.hpp"

namespace fastq {

// A child's exit code for "I ran my --max-tasks-per-child: replace me" (also in burst
// mode, where a child exiting 0 has found nothing left to do).
inline constexpr int kRetiredExit = 75;

struct SupervisorConfig {
  int processes = 1;
  int slots_per_child = 512;  // most jobs one child holds (>= concurrency + prefetch)
  std::chrono::milliseconds grace{30000};
  std::uint64_t max_memory_kb = 0;  // per child resident set; 0 = no limit
  bool burst = false;               // a child that exits 0 is not replaced
  std::chrono::milliseconds tick{50};
  // Unblock SIGINT/SIGTERM again when run() returns. A command that exits right after
  // keeps them blocked, so a late Ctrl-C cannot interrupt its last words.
  bool restore_signals = true;
  std::function<void(LogLevel, const std::string&)> log;
  // The worker registry: when set, the supervisor's own row (kind "supervisor", its
  // processes and RSS) is written at start and every lease_ms / 3, and marked stopped
  // when run() returns. Its children register their own rows.
  std::optional<WorkerRow> registry;
  // systemd Type=notify (NOTIFY_SOCKET): READY=1 once the children are started,
  // WATCHDOG=1 from the supervisor's loop every WATCHDOG_USEC / 2, STOPPING=1 at a stop.
  bool notify_systemd = true;
  // --metrics-port: serve the children's WorkerMetrics, summed, at
  // http://metrics_address:metrics_port/metrics from the supervisor's loop (-1: off;
  // 0: any free port, logged).
  int metrics_port = -1;
  std::string metrics_address = "0.0.0.0";
};

struct SupervisorStats {
  std::uint64_t started = 0;   // children forked
  std::uint64_t crashed = 0;   // children that died other than by exiting 0
  std::uint64_t timeouts = 0;  // jobs killed at their hard time limit
  std::uint64_t lost = 0;      // running jobs of dead children, counted as an attempt
  std::uint64_t released = 0;  // unstarted jobs of dead children, back in the queue
  std::uint64_t recycled = 0;  // children asked to stop for memory
  int exit_code = 0;
};

class Supervisor {
 public:
  // `spawn(index)` forks; in the parent it returns the child's pid, in the child it calls
  // Supervisor::enter_child(index), runs a Worker (whose config.tracker is
  // Supervisor::child_tracker()) and exits without returning. `driver` is the
  // supervisor's own connection, used only to settle the jobs of dead children.
  Supervisor(std::unique_ptr<Driver> driver, SupervisorConfig config,
             std::function<pid_t(int)> spawn);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Runs until every child has stopped after SIGTERM/SIGINT (or, in burst mode, after
  // each finished). Blocks SIGCHLD/SIGINT/SIGTERM on the calling thread while it runs.
  SupervisorStats run();

  // In a freshly forked child: SIGINT ignored (the supervisor relays Ctrl-C), death with
  // the supervisor, and the tracker for its slots. The worker it runs must set
  // WorkerConfig::supervised.
  static void enter_child(int index);
  // The tracker of this child process, or nullptr outside a supervised child.
  static JobTracker* child_tracker();
  // This child's metrics, in memory the supervisor reads (nullptr outside a child).
  static WorkerMetrics* child_metrics();
  // The supervisor's worker-registry id, which a child's registry row names as its
  // supervisor ("" outside a child, or when the supervisor keeps no registry row).
  static std::string child_supervisor_id();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fastq
