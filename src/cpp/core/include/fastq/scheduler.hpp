// The scheduler: fires periodic schedules (table fastq_schedule) as jobs, on one leader at
// a time among every fastq_worker sharing a database.
//
//  * Leadership is a lease row (table fastq_leader): Driver::hold_lease() takes it when it
//    is free or expired and renews it when we hold it, in one conditional statement, the
//    same on SQLite and PostgreSQL. The leader renews every lease/3; when it dies, another
//    scheduler takes over once the lease expires and fires what is due.
//  * A slot fires through Driver::fire_schedule(): one transaction that checks we still
//    hold the lease, moves next_run_at only if it still holds the value we read
//    (compare-and-set), inserts (schedule, slot) into fastq_schedule_run (primary key) and
//    inserts the job. Two leaders, or a stale one, can therefore never fire a slot twice.
//  * Misfires (slots missed while no scheduler ran): catch_up "latest" fires the latest
//    missed slot once, "all" fires each (up to kMaxCatchUp per pass), "none" fires none
//    unless the latest is within misfire_grace of its time.
//  * Overlap: with max_instances > 0, a schedule whose queued-or-running jobs number
//    max_instances or more does not fire; last_outcome says "skipped: still running".
//  * The leader re-reads the table every `reload`, so edits take effect within seconds.
//  * The leader prunes fastq_schedule_run rows older than keep_runs (default 7 days).
//  * The leader prunes finished jobs past their retention (retention.hpp) in small
//    batches, a pass at most `retention.pass_budget` long, paced by a Pruner.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fastq/driver.hpp"
#include "fastq/retention.hpp"
#include "fastq/types.hpp"
#include "fastq/worker.hpp"

namespace fastq {

// Most slots one schedule fires in one pass under catch_up "all" (the rest next pass).
inline constexpr int kMaxCatchUp = 1000;

// What the scheduler needs to know about a registered task to enqueue it the way
// task.delay() would (the rest comes from the schedule row).
struct TaskDefaults {
  std::string queue = "default";
  int priority = 0;
  int max_attempts = kDefaultMaxAttempts;
  double time_limit = 0;
  double soft_time_limit = 0;
};

struct SchedulerConfig {
  std::string lease_name = "scheduler";  // the fastq_leader row
  std::string holder;                    // this scheduler, e.g. "host:pid"
  std::chrono::milliseconds lease{15000};
  std::chrono::milliseconds renew{0};  // 0: lease / 3
  std::chrono::milliseconds reload{2000};
  std::chrono::milliseconds misfire_grace{60000};
  // The leader deletes fastq_schedule_run rows of slots older than this, every 10 min.
  std::chrono::hours keep_runs{24 * 7};
  // The leader's worker-registry upkeep (Driver::reap_workers), every `reap_workers`:
  // running rows silent past their lease become lost; stopped and lost rows whose last
  // heartbeat is older than keep_workers are deleted. 0: never.
  std::chrono::milliseconds reap_workers{5000};
  std::chrono::milliseconds keep_workers{3600 * 1000};
  // Finished jobs' retention and the pruner's pacing (FASTQ["RETENTION"]).
  RetentionConfig retention;
  std::map<std::string, TaskDefaults> tasks;
  std::function<void(LogLevel, const std::string&)> log;
};

struct SchedulerStats {
  std::uint64_t fired = 0;    // jobs enqueued for slots
  std::uint64_t skipped = 0;  // slots skipped for overlap
  std::uint64_t missed = 0;   // slots not fired after downtime (catch_up policy)
  std::uint64_t lost = 0;     // slots another scheduler fired first (or stale reads)
  std::uint64_t terms = 0;    // times this scheduler became leader
  std::uint64_t workers_lost = 0;  // registry rows it marked lost
  std::uint64_t pruned = 0;        // finished jobs deleted past their retention
  std::uint64_t reclaimed = 0;     // tables vacuumed, SQLite logs truncated (Driver::reclaim)
  std::uint64_t partitions_dropped = 0;  // of the finished log past retention (upkeep)
  bool leader = false;
};

class Scheduler {
 public:
  Scheduler(std::unique_ptr<Driver> driver, SchedulerConfig config);
  ~Scheduler();  // stops the thread and gives the lease up
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // One pass at `now`: takes or renews the lease when due, re-reads the table when due
  // and, as leader, fires what is due. Returns the instant it wants to run again.
  // Not thread-safe against the thread started by start().
  Micros step(Micros now);

  // A background thread calling step() until stop().
  void start();
  void stop();  // gives the lease up, so another scheduler takes over at once

  // Keeps the thread between passes (holding no lock of any library) until resume():
  // for fork() from a process where the scheduler runs.
  void pause();
  void resume();

  SchedulerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The slot after `slot` for a schedule (cron in its zone, or every > 0 seconds anchored to
// `slot`): strictly after `slot`. Throws CronError for a bad expression or zone.
Micros next_slot(const ScheduleRow& row, Micros slot);

}  // namespace fastq
