// The job store: every write and read of fastq_job and its workflow edges that the worker,
// the enqueue path and the result path make. Offered by every driver (memory, sqlite,
// postgres); conformance suite JobStoreConformance (tests/cpp/test_driver_conformance.cpp).
//
// Contract:
//  * enqueue() inserts all jobs at once (all or none) and returns, for each, the id of the job
//    that stands for it: its own, or (unique_key) the queued-or-running job holding the
//    key. Uniqueness holds under concurrent enqueues (a partial unique index).
//  * claim() takes up to `limit` runnable jobs (state queued, run_at <= now, queue in the
//    list) in one statement, highest priority first, then oldest run_at, then id. Each is
//    stamped running, attempts+1, a lease expiry and a lease token (one token per claim).
//  * complete() writes a batch of outcomes in one statement, each fenced by its lease
//    token: a row whose token changed (rescued, re-claimed) is left alone. It returns how
//    many rows were written; the rest were fenced off.
//  * renew() pushes out the lease expiry of each running job still holding its token.
//  * release() returns claimed-but-unstarted jobs to the queue without spending an attempt;
//    defer() does the same with a later run_at (rate limits).
//  * complete() with Outcome::kRetry returns the job to the queue to start no earlier than
//    retry_at, keeping this attempt's error; the attempt stays counted.
//  * claim() skips queues paused in fastq_queue. From a queue whose fastq_queue row sets a
//    concurrency N it takes at most N minus the jobs of that queue running under a lease
//    not yet expired (a lost worker's jobs free their places when their lease runs out),
//    counted after taking that row's lock in the claim's transaction, so that concurrent
//    claims on every worker of the fleet cannot together exceed N. A claim that does not
//    know yet that a queue became limited (PostgreSQL learns it within a second) leaves
//    that queue alone rather than claim from it unlimited.
//  * claim() flags jobs whose expires_at has passed or whose cancel was requested; the
//    worker ends those (kExpired, kCancelled) without running them.
//  * claim() leaves started_at NULL: mark_started() records, fenced by lease token, which
//    claimed jobs began running (a job whose start is recorded already is left alone), and
//    complete() fills started_at from Completion::started_at when no mark recorded it.
//  * rescue_expired() returns running jobs whose lease expired to the queue (the worker
//    that held them is presumed dead). A job that started (started_at set) keeps the
//    attempt it spent, and one whose attempts reached max_attempts becomes dead with
//    error_type "fastq.WorkerLost" instead. A job that never started goes back unspent
//    (attempts - 1, interrupted + 1) while interrupted < kMaxUnspentHandbacks; after that
//    it is charged like a started one.
//  * interrupt() hands back running jobs that started and were cut off (a stop's grace
//    ran out): interrupted + 1, the attempt refunded while interrupted was below
//    kMaxUnspentHandbacks, else kept (dead as "fastq.Interrupted" when none is left).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fastq/driver_error.hpp"
#include "fastq/retention.hpp"
#include "fastq/types.hpp"

namespace fastq {

// When the store's space is worth reclaiming (JobStore::reclaim).
struct ReclaimLimits {
  std::int64_t min_dead = 10'000;  // PostgreSQL: a table's dead rows past this ...
  double scale = 0.2;              // ... plus this many per live row
  std::int64_t wal_frames = 16'384;  // SQLite: the write-ahead log past this (64 MiB of 4 KiB pages)
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  virtual std::vector<std::string> enqueue(std::span<const NewJob> jobs) = 0;
  virtual std::vector<ClaimedJob> claim(const ClaimRequest& request) = 0;
  // From now on this connection's commits do not wait for the database to make them
  // durable (PostgreSQL: synchronous_commit off for the session, kept across reconnects;
  // no-op elsewhere). The worker asks it of its claim connection only, whose writes may
  // be lost to a server crash without losing a job: a claim comes undone (the job is
  // queued again and its first run's outcome fenced off), a hand-back or deferral too
  // (the lease runs out and the rescuer returns the job), a rate token is spent again.
  // Outcomes, starts, enqueues and schedule fires keep durable commits; a durable commit
  // also makes every earlier asynchronous one durable (the log is written in order).
  virtual void commit_claims_async() {}
  // Called after claim() failed for a non-transient reason: tries each of the rows that
  // claim would take on its own (rolled back), and ends every row no claim can take as
  // dead (fastq.InvalidJob, with `why` and the row's values), its columns brought within
  // the table's bounds so the write itself succeeds. Returns how many rows it ended; 0
  // means no single row is to blame (a missing table, say) and the error stands.
  virtual std::size_t quarantine(const ClaimRequest& request, const std::string& why) = 0;
  virtual std::size_t complete(std::span<const Completion> completions) = 0;
  // Also appends to `cancel_requested` (when given) the ids whose cancel was requested,
  // and to `renewed` (when given) the ids whose lease was renewed.
  virtual std::size_t renew(std::span<const JobRef> jobs, std::chrono::milliseconds lease,
                            std::vector<std::string>* cancel_requested = nullptr,
                            std::vector<std::string>* renewed = nullptr) = 0;
  virtual std::size_t release(std::span<const JobRef> jobs) = 0;
  // Records started_at of running jobs still holding the token whose start is not recorded
  // yet, in one statement; returns how many rows it wrote.
  virtual std::size_t mark_started(std::span<const StartMark> marks) = 0;
  // Hands back started jobs cut off by a stop (see the contract above), in one statement.
  virtual std::size_t interrupt(std::span<const JobRef> jobs) = 0;
  // release() of every job still running under this claim's lease token (a worker that
  // died before it learnt which jobs its claim took).
  virtual std::size_t release_claim(std::int64_t lease_token) = 0;
  // Like release(), but each job starts no earlier than its run_at.
  virtual std::size_t defer(std::span<const Deferral> jobs) = 0;
  virtual std::size_t rescue_expired() = 0;
  // A queued or waiting job is cancelled at once (and its workflow settled: its
  // dependents cancelled, see workflow.hpp); a running one is asked to stop.
  virtual CancelResult cancel(const std::string& id) = 0;

  // Workflows (workflow.hpp). Inserts `jobs` and `deps` in one transaction (the
  // caller's, where the driver shares one): a job that is the child of some dependency
  // starts in state waiting with parents_pending = its number of parents; the others
  // are queued. Every parent and child must be among `jobs`; jobs with unique keys are
  // refused (std::invalid_argument). Returns the ids.
  virtual std::vector<std::string> enqueue_workflow(std::span<const NewJob> jobs,
                                                    std::span<const Dependency> deps) = 0;
  // Cancels every unfinished step of the workflow: waiting and queued ones at once
  // (reason kWorkflowCancelled), running ones asked to stop. Returns how many steps it
  // cancelled or asked.
  virtual std::size_t cancel_workflow(const std::string& workflow_id) = 0;

  // Runnable jobs left in these queues (state queued and due now, queue not paused: a
  // burst worker does not wait for a paused queue).
  virtual std::size_t count_runnable(std::span<const std::string> queues) = 0;
  virtual std::optional<JobRecord> get(const std::string& id) = 0;

  // Retention (retention.hpp): takes the next request.limit jobs in request.state
  // finished before request.before, in (finished_at, id) order after the request's
  // cursor, in one statement, and deletes those nothing still depends on (a
  // fastq_schedule_run or fastq_poller_mark row naming it; a step of a workflow with a
  // waiting, queued or running step). The edges of the deleted steps go with them, and a
  // workflow's fastq_workflow rows with its last step. Returns how many it deleted, how
  // many it took (kept ones included) and the cursor after them. With request.dry_run it
  // counts every such job after the cursor (no limit) and deletes none.
  virtual PruneResult prune_jobs(const PruneRequest& request) = 0;

  // The store's periodic upkeep, run by the elected leader at start and every
  // `parts.every` (scheduler.cpp): PostgreSQL makes the finished log's partitions of
  // `parts.width` seconds `parts.ahead` seconds ahead (re-making those of another width
  // that still take rows, their rows moved into the new ones) and, given `cutoffs`
  // (retention_cutoffs(), retention.hpp; empty: retention off), drops every partition that
  // ends by the succeeded jobs' cutoff, the jobs in it that must stay (a later cutoff,
  // kept for ever, or depended on as prune_jobs() keeps them) copied out first. Returns
  // how many partitions it dropped. A store without partitions has nothing to do.
  virtual std::size_t upkeep(const RetentionCutoffs& cutoffs, const LogPartitions& parts) {
    (void)cutoffs;
    (void)parts;
    return 0;
  }

  // Space the store's own writes left behind, reclaimed now: run by the elected leader
  // every few seconds on a thread and connection of its own (scheduler.cpp), when
  // reclaims_space() says the store has any to reclaim. PostgreSQL: every completion and
  // every row-by-row prune leaves a dead row, and a claim walks dead index entries until a
  // vacuum removes them, while autovacuum comes at most once a minute (or never, when it
  // is off); it vacuums the store's tables whose dead rows pass `limits.min_dead` +
  // `limits.scale` x their live rows, and analyzes those that changed as much. SQLite:
  // the write-ahead log restarts only when no reader is on it, which busy workers never
  // allow, so past `limits.wal_frames` frames it is checkpointed whole and truncated.
  // Returns how many tables (or logs) it reclaimed.
  virtual std::size_t reclaim(const ReclaimLimits& limits) {
    (void)limits;
    return 0;
  }
  virtual bool reclaims_space() const { return false; }
  // How often the leader calls reclaim(): PostgreSQL's statistics move slowly, while
  // SQLite's log can grow by a hundred megabytes a second.
  virtual std::chrono::milliseconds reclaim_every() const { return std::chrono::seconds(2); }
};

}  // namespace fastq
