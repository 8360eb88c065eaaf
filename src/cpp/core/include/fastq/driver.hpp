// The broker driver contract. One implementation per database; every driver passes the
// same conformance suite (tests/cpp/driver_conformance.cpp).
//
// Contract, for every driver:
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
//  * acquire_rate() takes tokens from a fleet-wide bucket (table fastq_rate_limit).
//  * complete() with Outcome::kRetry returns the job to the queue to start no earlier than
//    retry_at, keeping this attempt's error; the attempt stays counted.
//  * claim() skips queues paused in fastq_queue. From a queue whose fastq_queue row sets a
//    concurrency N it takes at most N minus the jobs of that queue running under a lease
//    not yet expired (a lost worker's jobs free their places when their lease runs out),
//    counted after taking that row's lock in the claim's transaction, so that concurrent
//    claims on every worker of the fleet cannot together exceed N. A claim that does not
//    know yet that a queue became limited (PostgreSQL learns it within a second) leaves
//    that queue alone rather than claim from it unlimited.
//  * paused_queues() names the paused queues among those given (one indexed read of the
//    small fastq_queue table); the worker asks it to drop jobs it claimed before a pause
//    and had not started.
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
//  * hold_lease() / fire_schedule() implement the scheduler's leader lease and its
//    fire-each-slot-once transaction (tables fastq_leader, fastq_schedule,
//    fastq_schedule_run).
//  * A driver object is used by one thread at a time. connect_another() opens a sibling
//    on the same database for another thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastq/retention.hpp"
#include "fastq/types.hpp"

namespace fastq {

// Raised by drivers for database errors. `transient` marks errors worth retrying after a
// reconnect (connection lost, server shutting down, lock timeout).
class DriverError : public std::runtime_error {
 public:
  DriverError(const std::string& what, bool transient)
      : std::runtime_error(what), transient_(transient) {}
  bool transient() const noexcept { return transient_; }

 private:
  bool transient_;
};

class Driver {
 public:
  virtual ~Driver() = default;

  virtual std::string name() const = 0;  // "memory", "sqlite", "postgres"
  virtual std::unique_ptr<Driver> connect_another() const = 0;

  virtual std::vector<std::string> enqueue(std::span<const NewJob> jobs) = 0;
  virtual std::vector<ClaimedJob> claim(const ClaimRequest& request) = 0;
  // Called after claim() failed for a non-transient reason: tries each of the rows that
  // claim would take on its own (rolled back), and ends every row no claim can take as
  // dead (fastq.InvalidJob, with `why` and the row's values), its columns brought within
  // the table's bounds so the write itself succeeds. Returns how many rows it ended; 0
  // means no single row is to blame (a missing table, say) and the error stands.
  virtual std::size_t quarantine(const ClaimRequest& /*request*/, const std::string& /*why*/) {
    return 0;
  }
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
  // Generic cell rate algorithm over the bucket `key`, shared by every worker on this
  // database (gcra_reserve in rate.hpp, on the database's clock): reserves up to `want`
  // tokens usable within `horizon_us`.
  virtual RateGrant acquire_rate(const std::string& key, Micros interval_us, int burst,
                                 int want, Micros horizon_us) = 0;
  virtual std::size_t rescue_expired() = 0;
  // A queued or waiting job is cancelled at once (and its workflow settled: its
  // dependents cancelled, see workflow.hpp); a running one is asked to stop.
  virtual CancelResult cancel(const std::string& id) = 0;

  // Workflows (workflow.hpp). Inserts `jobs` and `deps` in one transaction (the
  // caller's, where the driver shares one): a job that is the child of some dependency
  // starts in state waiting with parents_pending = its number of parents; the others
  // are queued. Every parent and child must be among `jobs`; jobs with unique keys are
  // refused (std::invalid_argument). Returns the ids.
  // (The defaults, for test doubles, refuse.)
  virtual std::vector<std::string> enqueue_workflow(std::span<const NewJob> /*jobs*/,
                                                    std::span<const Dependency> /*deps*/) {
    throw DriverError("the " + name() + " driver has no workflows", false);
  }
  // Cancels every unfinished step of the workflow: waiting and queued ones at once
  // (reason kWorkflowCancelled), running ones asked to stop. Returns how many steps it
  // cancelled or asked.
  virtual std::size_t cancel_workflow(const std::string& /*workflow_id*/) {
    throw DriverError("the " + name() + " driver has no workflows", false);
  }

  // Scheduler (scheduler.hpp). Takes the lease row `name` for `holder` when it is free,
  // expired or already held by `holder`, extending it to now + lease, in one conditional
  // statement; true if `holder` holds it afterwards.
  virtual bool hold_lease(const std::string& name, const std::string& holder,
                          std::chrono::milliseconds lease) = 0;
  // Gives the lease up (if `holder` holds it).
  virtual void drop_lease(const std::string& name, const std::string& holder) = 0;
  // The enabled schedules.
  virtual std::vector<ScheduleRow> load_schedules() = 0;
  // One transaction; see ScheduleFire.
  virtual FireResult fire_schedule(const ScheduleFire& fire) = 0;
  // Deletes fastq_schedule_run rows of slots before `before`; returns how many.
  virtual std::size_t prune_schedule_runs(Micros before) = 0;
  // Retention (retention.hpp): takes the next request.limit jobs in request.state
  // finished before request.before, in (finished_at, id) order after the request's
  // cursor, in one statement, and deletes those nothing still depends on (a
  // fastq_schedule_run or fastq_poller_mark row naming it; a step of a workflow with a
  // waiting, queued or running step). The edges of the deleted steps go with them, and a
  // workflow's fastq_workflow rows with its last step. Returns how many it deleted, how
  // many it took (kept ones included) and the cursor after them. With request.dry_run it
  // counts every such job after the cursor (no limit) and deletes none.
  // (The default, for test doubles, keeps everything.)
  virtual PruneResult prune_jobs(const PruneRequest& /*request*/) { return {}; }

  // Batch poller (poller.hpp). Drivers that cannot run SQL (memory) throw DriverError.
  // Up to `limit` keys of `query`'s rows greater than `after` (all when it is empty), in
  // key order: one keyset-paginated page, one round trip. With query.pending_prefix,
  // `pending` (when given) receives one flag per key (see KeysetQuery).
  virtual std::vector<SqlValue> select_keys(const KeysetQuery& query,
                                            const std::optional<SqlValue>& after, int limit,
                                            std::vector<char>* pending = nullptr);
  // How many rows `query` has.
  virtual std::int64_t count_rows(const KeysetQuery& query);
  // One transaction: records (scope, keys[i]) in fastq_poller_mark where not recorded yet
  // and enqueues jobs[i] for each key newly recorded; returns how many were. A key is
  // thereby acted on once, however often it is offered.
  virtual std::size_t enqueue_once(const std::string& scope, std::span<const std::string> keys,
                                   std::span<const NewJob> jobs);

  // Worker registry (table fastq_worker). beat_worker() inserts the row (state running,
  // started_at and last_heartbeat now on the database's clock) or updates its heartbeat,
  // counters and RSS (a row marked lost that beats again is running again): one statement,
  // sent with the lease renewal. stop_worker() marks it stopped (a graceful stop).
  // reap_workers() (the leader) marks running rows silent for longer than their lease
  // (expires_at passed) as lost and deletes stopped and lost rows whose last heartbeat is older than `keep`;
  // returns how many it marked lost. workers() reads every row (tests, tools without
  // Django). The defaults keep no registry (test doubles); the three drivers override all.
  virtual void beat_worker(const WorkerRow& /*row*/) {}
  virtual void stop_worker(const WorkerRow& /*row*/) {}
  virtual std::size_t reap_workers(std::chrono::milliseconds /*keep*/) { return 0; }
  virtual std::vector<WorkerRecord> workers() { return {}; }

  // Runnable jobs left in these queues (state queued and due now, queue not paused: a
  // burst worker does not wait for a paused queue).
  virtual std::size_t count_runnable(std::span<const std::string> queues) = 0;
  virtual std::optional<JobRecord> get(const std::string& id) = 0;

  // The paused queues among `queues` (table fastq_queue). Every shipped driver answers;
  // the default (none) is for test doubles that wrap or fake a store.
  virtual std::vector<std::string> paused_queues(std::span<const std::string> /*queues*/) {
    return {};
  }
  // True once since a notification said a queue's pause or limit changed (PostgreSQL
  // NOTIFY 'queues'); drivers that cannot notify return false and are polled instead.
  virtual bool queues_changed() { return false; }

  // Wake-ups. A driver that can push notifications of new work exposes a file descriptor
  // that becomes readable when one arrives (PostgreSQL LISTEN); the worker waits on it
  // and calls drain_notifications(). Returns -1 when the driver cannot notify.
  virtual int notification_fd() { return -1; }
  // Consumes pending notifications; true if any announced new work.
  virtual bool drain_notifications() { return false; }
  // In-process wake-up (memory driver): called after every enqueue. May be called from
  // any thread; must be cheap and must not call back into the driver.
  virtual void set_wakeup(std::function<void()> /*wakeup*/) {}

  // The database server's clock (microseconds since the epoch), for a driver whose server
  // may run on another machine than this process (PostgreSQL); std::nullopt when this
  // machine's clock is the database's (SQLite, memory). The scheduler judges due slots on
  // it, so a leader whose wall clock is off fires each slot on time all the same.
  virtual std::optional<Micros> database_now() { return std::nullopt; }
};

// For the SQL drivers: after an INSERT that skipped unique-key conflicts, the id standing
// for each job. `inserted` holds the ids written; `lookup(keys)` maps keys to the active
// job holding them; `reinsert(jobs)` enqueues again the jobs whose key freed up meanwhile.
// Checks a workflow before any driver writes it: ids unique, every edge between two of
// `jobs`, no edge twice, no cycle, no unique keys, a handler (OnFailure::kHandler) has
// parents. Returns each job's number of parents (parents_pending), in `jobs` order.
// Throws std::invalid_argument naming the problem.
std::vector<int> check_workflow(std::span<const NewJob> jobs, std::span<const Dependency> deps);

std::vector<std::string> resolve_unique(
    std::span<const NewJob> jobs, const std::vector<std::string>& inserted,
    const std::function<std::vector<std::pair<std::string, std::string>>(
        const std::vector<std::string>&)>& lookup,
    const std::function<std::vector<std::string>(std::span<const NewJob>)>& reinsert);

// Factories. Each opens its connection eagerly so that a bad DSN fails here, clearly.
std::unique_ptr<Driver> make_memory_driver();
// Memory driver only (tests): inserts or replaces a schedule row.
void memory_put_schedule(Driver& memory_driver, const ScheduleRow& row, bool enabled = true);
// Memory driver only (tests): a queue's pause and concurrency limit (nullopt: none).
void memory_set_queue(Driver& memory_driver, const std::string& queue, bool paused,
                      std::optional<int> concurrency = std::nullopt);
// `path` is a file path (":memory:" is refused: a worker needs a database other processes
// can see). WAL mode and a busy timeout are set on every connection.
std::unique_ptr<Driver> make_sqlite_driver(const std::string& path,
                                           std::chrono::milliseconds busy_timeout =
                                               std::chrono::milliseconds(30000));
// `conninfo` is a libpq connection string or URI.
std::unique_ptr<Driver> make_postgres_driver(const std::string& conninfo);

}  // namespace fastq
