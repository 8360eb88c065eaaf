// Plain data shared by drivers, the worker and the bindings. No I/O, no Python.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace fastq {

using Clock = std::chrono::system_clock;
// All persisted instants are microseconds since the Unix epoch, UTC.
using Micros = std::int64_t;

Micros now_micros();

// Job states as stored in the `state` column (lower case, stable: SQL and admin use them).
namespace state {
inline constexpr const char* kQueued = "queued";
inline constexpr const char* kRunning = "running";
inline constexpr const char* kSucceeded = "succeeded";
inline constexpr const char* kFailed = "failed";
inline constexpr const char* kDead = "dead";  // gave up: attempts spent on lost workers
inline constexpr const char* kExpired = "expired";      // not started before expires_at
inline constexpr const char* kCancelled = "cancelled";  // cancelled before it finished
// A workflow step whose parents have not all finished: no claim scans this state; the
// completion that finishes its last parent moves it to queued (or cancelled).
inline constexpr const char* kWaiting = "waiting";
}  // namespace state

// What a workflow step receives from its parents when it is released (workflow.hpp).
enum class PassResults : std::uint8_t {
  kNone = 0,  // immutable signature (.si()): its own arguments only
  kOne = 1,   // the single parent's result is prepended (a chain's .s())
  kList = 2,  // the list of the parents' results, in edge order, is prepended (a chord)
};

// What a workflow step does when a parent ends without succeeding.
enum class OnFailure : std::uint8_t {
  kCancel = 0,    // cancelled: "upstream job <id> failed" (and so on down the graph)
  kRunAnyway = 1, // runs once every parent ended; failures appear marked in its results
  kHandler = 2,   // an error handler (link_error): runs when a parent ends failed or dead
                  // (receiving that job's id), cancelled once every parent ended otherwise
};

// Attempts a job gets when nobody says otherwise: the first run and 3 retries (worker
// deaths count; exceptions retry only when the task asks to).
inline constexpr int kDefaultMaxAttempts = 4;

// The layout of a job row this code reads and writes (the `envelope` column). A worker
// meeting another version does not guess: the job goes dead as fastq.UnknownEnvelope.
inline constexpr int kEnvelopeVersion = 1;

// Bounds on what a row may hold (the migrations' CHECK constraints say the same). A claim
// counts attempts up to kAttemptsCeiling and no further, so that no stored value can make
// the claim statement itself fail; the worker then ends such a row as fastq.InvalidJob.
inline constexpr int kMaxAttemptsLimit = 1'000'000;
// How often a job may go back to the queue without being charged an attempt after a run
// that was cut off (a stop's grace ran out) or a lost claim it never started (rescue of a
// lease whose started_at is NULL). The `interrupted` column counts these hand-backs; once
// it reaches this bound the next one is charged like a lost run, so a job longer than the
// grace period still uses up its attempts across deploys.
inline constexpr int kMaxUnspentHandbacks = 3;
inline constexpr int kAttemptsCeiling = 1'000'000'000;
inline constexpr double kMaxTimeLimitSeconds = 1e9;

// Whether the attempt that just ended (it failed, asked for a retry, was cut off, or its
// worker was lost) was the job's last: `attempts` counts it. The one answer to "retry or
// give up?": Python's retry policy asks it through the binding (_core.is_last_attempt,
// fastq.retry), the supervisor when it settles a dead child's jobs, the memory store when
// it rescues or interrupts; the rescue and interrupt statements (src/sql/*.sql) apply it
// to rows as `attempts >= max_attempts`, and the driver conformance suite holds them to it
// on both sides of the bound (JobStoreConformance.RescueGivesUpExactlyWhereIsLastAttemptSays).
constexpr bool is_last_attempt(int attempts, int max_attempts) {
  return attempts >= max_attempts;
}

// A job to insert. `args` must be a JSON array and `kwargs` a JSON object (text).
struct NewJob {
  std::string id;  // canonical UUID text (8-4-4-4-12, lower case)
  std::string task;
  std::string queue = "default";
  int priority = 0;
  std::string args = "[]";
  std::string kwargs = "{}";
  std::optional<Micros> run_at;  // empty: now
  int max_attempts = kDefaultMaxAttempts;
  std::optional<Micros> expires_at;  // never started after this: expired
  // Non-empty: at most one queued-or-running job holds this key; enqueueing another
  // yields the existing job's id instead of a new row.
  std::string unique_key;
  // Seconds; 0 = none. Hard: the process running the job is killed (prefork mode).
  // Soft: fastq.SoftTimeLimitExceeded is raised inside the task.
  double time_limit = 0;
  double soft_time_limit = 0;
  // Rate-limited tasks: the bucket this job draws from (empty: the task's own bucket).
  std::string rate_key;
  // A label several jobs share (Django-Q2's group; the admin filters by it). Empty: none.
  std::string group_label;
  // Workflows (Driver::enqueue_workflow): the workflow this step belongs to (empty: none),
  // what it receives from its parents and what a failed parent does to it. A step with
  // parents starts in state waiting.
  std::string workflow_id;
  PassResults pass_results = PassResults::kNone;
  OnFailure on_failure = OnFailure::kCancel;

  bool operator==(const NewJob&) const = default;  // every field, the next one too
};

// A dependency of a workflow: `child` waits for `parent`; `position` orders the parents'
// results in what the child receives (chord: the member's index).
struct Dependency {
  std::string parent;
  std::string child;
  int position = 0;
};

// A job handed to this worker by a claim. `lease_token` fences every later write.
struct ClaimedJob {
  std::string id;
  std::string task;
  std::string queue;
  std::string args;
  std::string kwargs;
  int priority = 0;
  int attempts = 0;  // including this one
  int max_attempts = kDefaultMaxAttempts;
  std::int64_t lease_token = 0;
  bool expired = false;           // expires_at had passed when it was claimed
  bool cancel_requested = false;  // cancelled while a previous attempt ran
  int envelope = kEnvelopeVersion;
  double time_limit = 0;       // seconds, 0 = none
  double soft_time_limit = 0;  // seconds, 0 = none
  std::string rate_key;
  // Set by the worker: steady-clock microseconds just before the claim was sent, the
  // earliest the database can have started this lease.
  std::int64_t claimed_at_steady_us = 0;
};

// kRetry puts the job back in the queue for `retry_at`, keeping the error of this attempt.
// kExpired and kCancelled end a job the worker declined to start. kDead gives a job up
// for a reason of fastq's own (bad message, worker lost, time limit) with no retry left.
enum class Outcome : std::uint8_t { kSucceeded, kFailed, kRetry, kExpired, kCancelled, kDead };

// The result of running one claimed job, written back by a batched completion.
struct Completion {
  std::string id;
  std::int64_t lease_token = 0;
  Outcome outcome = Outcome::kSucceeded;
  std::string result;      // JSON text when succeeded ("null" for None)
  std::string error_type;  // when failed: exception type (or a fastq reason)
  std::string error;       // when failed: message
  std::string traceback;   // when failed: formatted traceback, may be empty
  Micros retry_at = 0;     // when retried: earliest next start
  // Wall-clock microseconds at which the run began (0: never started). Written as the
  // row's started_at when no start mark recorded it yet.
  Micros started_at = 0;
};

// A claimed job that began running: the executor notes it just before the run, and the
// completer records it (started_at) in one batched, token-fenced statement per flush.
struct StartMark {
  std::string id;
  std::int64_t lease_token = 0;
  Micros started_at = 0;  // wall-clock microseconds
};

inline const char* outcome_state(Outcome o) {
  switch (o) {
    case Outcome::kSucceeded: return state::kSucceeded;
    case Outcome::kFailed: return state::kFailed;
    case Outcome::kRetry: return state::kQueued;
    case Outcome::kExpired: return state::kExpired;
    case Outcome::kCancelled: return state::kCancelled;
    case Outcome::kDead: return state::kDead;
  }
  return state::kFailed;
}

// A job as read back for status and results (AsyncResult on the memory driver, tests).
struct JobRecord {
  std::string id;
  std::string task;
  std::string queue;
  std::string state;
  int priority = 0;
  int attempts = 0;
  int max_attempts = kDefaultMaxAttempts;
  bool cancel_requested = false;
  std::string args;
  std::string kwargs;
  std::optional<std::string> result;
  std::string error_type;
  std::string error;
  std::string traceback;
  std::optional<Micros> started_at;  // this attempt's start, once recorded
  int interrupted = 0;  // hand-backs without an attempt charged (see kMaxUnspentHandbacks)
  std::string workflow_id;  // empty: not a workflow step
  int parents_pending = 0;  // parents not finished yet (state waiting while > 0)
};

// What cancel() did: a queued job is cancelled at once; a running one is asked to stop
// (it sees cancel_requested through lease renewal); a finished one is left alone.
enum class CancelResult : std::uint8_t { kNotFound, kCancelled, kRequested, kFinished };

struct ClaimRequest {
  std::vector<std::string> queues;  // never empty
  int limit = 100;
  std::chrono::milliseconds lease{30000};
  std::string worker;  // "host:pid", stored for operators
  std::int64_t lease_token = 0;  // 0: the driver draws one
};

// A claimed job named by id and the lease token of its claim (renew, release).
struct JobRef {
  std::string id;
  std::int64_t lease_token = 0;
};

// A claimed job handed back to the queue without spending an attempt, to start no
// earlier than `run_at` (a rate limit had no room for it yet).
struct Deferral {
  std::string id;
  std::int64_t lease_token = 0;
  Micros run_at = 0;
};

// What a rate-limit bucket granted (see gcra_reserve in rate.hpp): `granted` tokens, the
// i-th usable max(0, base_delay + i * interval) microseconds from now.
struct RateGrant {
  int granted = 0;
  Micros base_delay = 0;
};

// A periodic schedule as the scheduler reads it (table fastq_schedule, enabled rows).
struct ScheduleRow {
  std::string name;
  std::string task;
  std::string args = "[]";
  std::string kwargs = "{}";
  std::string queue;  // empty: the task's
  int priority = 0;
  std::string cron;      // empty when `every` is set
  std::string timezone = "UTC";
  double every = 0;      // seconds; 0 when `cron` is set
  std::string catch_up = "latest";  // "latest", "all" or "none"
  int max_instances = 1;            // 0: no limit
  std::optional<Micros> next_run_at;  // empty: not computed yet
};

// One write of the scheduler (Driver::fire_schedule), all in one transaction:
//  * only while `holder` holds the lease `lease_name` (a stale leader writes nothing);
//  * only if the schedule's next_run_at still equals `expect_next` (compare-and-set);
//  * next_run_at becomes `next_run_at`;
//  * with `slot`: inserts (schedule, slot) into fastq_schedule_run and, unless that slot
//    was fired already or (check_overlap) max_instances jobs of the schedule are still
//    queued or running, inserts `job` and records it as the last run.
//  * without `slot`, `outcome` (when not empty) is recorded as last_outcome.
struct ScheduleFire {
  std::string lease_name;
  std::string holder;
  std::string schedule;
  std::optional<Micros> expect_next;
  Micros next_run_at = 0;
  std::optional<Micros> slot;
  bool check_overlap = true;
  int max_instances = 1;
  NewJob job;
  std::string outcome;
};

// last_outcome of a schedule whose slot was skipped for overlap (max_instances).
inline constexpr const char* kSkippedRunningOutcome = "skipped: still running";

enum class FireResult : std::uint8_t {
  kFired,        // the job was inserted
  kSkipped,      // overlap: max_instances jobs still queued or running (recorded)
  kAdvanced,     // no slot: next_run_at (and outcome) written
  kAlreadyFired, // the slot is in fastq_schedule_run already
  kStale,        // next_run_at moved or the schedule is gone/disabled: nothing written
  kNotLeader,    // the lease is not ours: nothing written
};

// A value bound to, or read from, a poller's query: NULL, an integer, a real or text.
using SqlValue = std::variant<std::monostate, std::int64_t, double, std::string>;

// A query whose rows a batch poller walks (Driver::select_keys). `sql` is a SELECT in
// Django's parameter style ("%s" placeholders, "%%" for a literal %), as
// QuerySet.query.sql_with_params() gives it, with `params`; `key` is the quoted name of
// its first output column, which must be unique per row (the primary key).
//
// `pending_prefix`, when not empty, is a unique-key prefix: select_keys() then flags each
// key whose job with the unique key pending_prefix + key is queued or running (one probe
// of the partial unique index per key returned).
struct KeysetQuery {
  std::string sql;
  std::vector<SqlValue> params;
  std::string key;
  std::string pending_prefix;
};

// The error recorded when a job is given up because its workers kept dying:
// kWorkerLostPrefix + attempts + kWorkerLostSuffix (SQL drivers build it server-side).
inline constexpr const char* kWorkerLostType = "fastq.WorkerLost";
inline constexpr const char* kWorkerLostPrefix =
    "the worker running it was lost (killed, crashed or cut off past its lease) on ";
inline constexpr const char* kWorkerLostSuffix = " attempt(s); no attempts left";
std::string worker_lost_message(int attempts);
// A job cut off while running (a stop's grace ran out) once kMaxUnspentHandbacks hand-backs
// were spent, with no attempts left: kInterruptedPrefix + interrupted + kInterruptedSuffix.
inline constexpr const char* kInterruptedType = "fastq.Interrupted";
inline constexpr const char* kInterruptedPrefix =
    "cut off while running (at the end of --grace, or by a stop-now signal) ";
inline constexpr const char* kInterruptedSuffix = " time(s); no attempts left";
std::string interrupted_message(int interrupted);
inline constexpr const char* kCancelledType = "fastq.Cancelled";
inline constexpr const char* kTimeLimitType = "fastq.TimeLimitExceeded";
inline constexpr const char* kCancelledBeforeStart = "cancelled before it started";

// A fresh random 63-bit fencing token (never 0).
std::int64_t new_lease_token();
// A fresh UUIDv7 in canonical text form (time-ordered: friendly to B-tree indexes).
std::string new_job_id();

// One row of the worker registry (table fastq_worker): a worker process or a prefork
// supervisor. Written with the database's clock (started_at, last_heartbeat), so hosts
// whose clocks disagree still judge one another's heartbeats alike.
struct WorkerRow {
  std::string id;           // unique per process run (host:pid:start), the primary key
  std::string kind = "worker";  // "worker" or "supervisor"
  std::string supervisor;   // the supervisor row's id for a prefork child, else empty
  std::string host;
  std::int64_t pid = 0;
  std::string version;      // fastq version
  std::string queues = "[]";  // JSON array of queue names
  std::string tasks = "[]";   // JSON array of the task names it runs
  int concurrency = 0;
  int processes = 0;        // children of a supervisor; 0 for a worker
  std::int64_t lease_ms = 30000;  // silent longer than this: lost (expires_at)
  std::int64_t processed = 0;     // jobs whose outcome it wrote
  std::int64_t failed = 0;        // of those, failed or dead
  std::int64_t rss_bytes = 0;     // resident set size now
};

// What a reading of the registry returns (Driver::workers): the row and its times, in
// microseconds since the epoch.
struct WorkerRecord {
  WorkerRow row;
  std::string state;  // "running", "stopped", "lost"
  Micros started_at = 0;
  Micros last_heartbeat = 0;
  Micros expires_at = 0;  // last_heartbeat + lease: a running row silent past it is lost
  std::optional<Micros> stopped_at;
};

}  // namespace fastq
