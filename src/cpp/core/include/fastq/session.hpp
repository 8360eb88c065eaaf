// Sessions and job operations, sans-io in the manner of Boost.MySQL: an operation
// (enqueue_jobs, cancel_job, get_job) is pure C++ that takes its statements from the
// statement home (fastq/sql.hpp), binds the caller's objects to parameters and reads the
// rows back. It runs over a Session, which only runs one statement and returns its rows:
//  * pg_session(): a libpq connection, the core's own or one Django lends (psycopg 3's
//    pgconn); every result is consumed before the call returns. Statements are unnamed,
//    so nothing is left behind on the connection, unless the session is made with
//    `prepare`: then a statement run a second time on the same server session is prepared
//    under a name of the core's ("fastq_<g>_<n>", never psycopg's "_pg3_<n>") and from
//    then on executed by name, the server skipping its parse and plan. What each server
//    session holds is kept process-wide (fastq/prepared_names.hpp), since a Session may be
//    made per call on a connection that outlives it. The caller turns it off where a
//    transaction-pooling PgBouncer sits in between (Django: OPTIONS prepare_threshold None).
//  * sqlite_session(): a sqlite3 handle of the core's.
//  * a Session implemented in Python (the bindings' CallbackSession) over a DB-API
//    cursor: Django's SQLite connection, whose library is not the core's.
// The statements run in whatever transaction the session is in: the caller's.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fastq/driver.hpp"
#include "fastq/sql.hpp"
#include "fastq/types.hpp"

struct pg_conn;
struct sqlite3;

namespace fastq {

// A statement parameter: NULL, an integer, a real or text.
using SqlParam = std::variant<std::monostate, std::int64_t, double, std::string>;
// A result cell as text (nullopt: NULL); integers and reals in their decimal form.
using SqlCell = std::optional<std::string>;
using SqlRow = std::vector<SqlCell>;

class Session {
 public:
  virtual ~Session() = default;
  virtual sql::Dialect dialect() const = 0;
  // Runs one statement with its parameters to completion and returns its rows. Errors
  // are DriverError.
  virtual std::vector<SqlRow> run(const std::string& sql, std::span<const SqlParam> params) = 0;
  // Runs `COPY ... FROM STDIN` (text format) with `data` as its rows. Only PostgreSQL
  // sessions on a libpq connection have it; others throw DriverError.
  virtual void copy_in(const std::string& sql, std::string_view data);
};

// A session on a libpq connection it does not own. With `begin_if_idle`, a statement
// found outside a transaction block first opens one (BEGIN): the connection's owner
// (psycopg 3, which reads libpq's transaction status before each command and at commit)
// is in a transaction of its own, not yet begun.
// With `prepare`: named prepared statements, as above.
std::unique_ptr<Session> pg_session(pg_conn* conn, bool begin_if_idle = false,
                                    bool prepare = false);
// The same on a connection opened by the libpq at `libpq_path` (already loaded in this
// process: psycopg's own, which may be another build than the core's): every call goes
// to that library's functions. An empty path means the core's libpq.
std::unique_ptr<Session> pg_session_via(const std::string& libpq_path, pg_conn* conn,
                                        bool begin_if_idle, bool prepare = false);
// A session on a sqlite3 handle it does not own.
std::unique_ptr<Session> sqlite_session(sqlite3* db);

// Job ids on SQLite: Django stores a UUID as 32 hex digits; these convert from and to
// the canonical text (anything else passes through unchanged).
std::string to_hex_id(const std::string& id);
std::string to_canonical_id(std::string_view hex);

// PostgreSQL helpers shared by the sessions and the driver: a text[] literal of `items`
// (each quoted, '"' and '\\' escaped), and a server message on one line.
std::string pg_text_array(std::span<const std::string> items);
std::string one_line(std::string msg);

// Inserts the jobs in one go (all or none: in the session's transaction, or one
// statement) and returns, for each, the id of the job standing for it: its own, or for a
// unique_key the queued-or-running job already holding the key. Workflow fields are
// ignored (enqueue_workflow).
std::vector<std::string> enqueue_jobs(Session& session, std::span<const NewJob> jobs);

// The jobs of task.map() (no unique keys, no workflow fields), all or none in the
// session's transaction: on PostgreSQL by COPY (`copy_rows` jobs a statement; the
// caller makes a larger batch one transaction), on SQLite one INSERT ... SELECT over a
// JSON array. Their NOTIFY trigger fires as for any INSERT. `copy_rows`: jobs per COPY.
inline constexpr std::size_t kBatchCopyRows = 50'000;
void enqueue_batch(Session& session, std::span<const NewJob> jobs,
                   std::size_t copy_rows = kBatchCopyRows);

// The job with this id (canonical UUID text), or nullopt (no such job, or not a UUID).
std::optional<JobRecord> get_job(Session& session, const std::string& id);

// What cancel_job() did; `workflow_step` says the job is a queued or waiting workflow
// step, which cancel_job() leaves alone: its dependents are settled in the same
// transaction by Driver::cancel (workflow.hpp).
struct CancelOutcome {
  CancelResult result = CancelResult::kNotFound;
  bool workflow_step = false;
};
CancelOutcome cancel_job(Session& session, const std::string& id);

// Cancels every unfinished step of workflow `workflow_id` (canonical UUID text) in the
// session's transaction: queued and waiting ones at once (reason kWorkflowCancelled),
// running ones asked to stop. Returns how many steps it cancelled or asked; 0 for an id
// that is not a UUID.
std::size_t cancel_workflow(Session& session, const std::string& workflow_id);

// A workflow's record, for GroupResult.restore() and the admin: the workflow `id`, the id
// of the workflow of the whole canvas it belongs to (`root_id`; its own id for that one),
// its kind (chain, group, chord, ...), a name and the member job ids in order.
struct WorkflowRecord {
  std::string id;
  std::string root_id;
  std::string kind;
  std::string name;
  std::vector<std::string> members;
};

// A workflow's jobs, dependencies and records (workflow.hpp), all or none in the
// session's transaction. Checked first (check_workflow: std::invalid_argument, nothing
// written); a step with parents starts waiting with parents_pending = their number. One
// statement each for the jobs, the edges and the records, whatever their number. Returns
// the jobs' ids.
std::vector<std::string> enqueue_workflow(Session& session, std::span<const NewJob> jobs,
                                          std::span<const Dependency> deps,
                                          std::span<const WorkflowRecord> records = {});

// Queues again those of the jobs `ids` (canonical UUID text; anything else is skipped)
// that ended unsuccessfully (failed, dead, expired, cancelled), in the session's
// transaction: attempts, result, error, lease, expiry and cancel cleared, run_at now. On
// PostgreSQL it wakes the workers (NOTIFY, delivered at commit) when it queued any.
// Returns how many it queued.
std::size_t retry_jobs(Session& session, std::span<const std::string> ids);

// Deletes those of the jobs `ids` (canonical UUID text; anything else is skipped) that
// are finished, with their workflow edges, in the session's transaction (a workflow's
// record goes with its last step). A job something still depends on stays, as retention
// leaves it: named by a schedule slot or a poller mark, or a step of a workflow that has
// an unfinished step. Returns how many it deleted.
std::size_t forget_jobs(Session& session, std::span<const std::string> ids);

// Sets the group label (NewJob::group_label) of the jobs `ids` (canonical UUID text;
// anything else is skipped), queued, running or finished; an empty label clears it.
// Returns how many jobs it changed.
std::size_t relabel_jobs(Session& session, std::span<const std::string> ids,
                         const std::string& label);

// A job run outside the queue (Django-Q2's sync=True) and what came of its one attempt.
struct FinishedJob {
  NewJob job;                         // id, task, queue, priority, args, kwargs,
                                      // max_attempts and group_label are stored
  std::string state;                  // "succeeded" or "failed"
  std::optional<std::string> result;  // JSON text of a success; nullopt: null
  std::string error_type;
  std::string error;
  std::string traceback;
  Micros started_at = 0;
  Micros finished_at = 0;
};
// Stores it finished, in the session's transaction, its outcome made storable as a
// worker's is (sanitize_outcome). std::invalid_argument for another state or an id that
// is not a UUID.
void record_finished(Session& session, const FinishedJob& job);

// Celery's update_state: job `id`'s custom_state (JSON text), wherever the job is.
// Whether the job exists.
bool set_custom_state(Session& session, const std::string& id, const std::string& json);

// The attempt log (a JSON text, fastq_django's task_errors) of job `id` while it runs,
// fenced by the lease token of the attempt writing it (nullopt: the job was claimed
// without one): a job no longer running, or rescued and claimed again under another
// token, is left as it is. The text is made storable (no NUL, valid UTF-8; never cut,
// which would break the JSON). Whether a row was written; false for an id that is not a
// UUID.
bool write_attempt_log(Session& session, const std::string& id,
                       std::optional<std::int64_t> lease_token, const std::string& text);

// A run of schedule `name` made on demand ("Run now": the admin, fastq_schedules --run)
// with job `job_id`, in the session's transaction: a slot row in fastq_schedule_run (as a
// fired slot has, so retention keeps the job and max_instances counts it) and the
// schedule's last run, job and outcome ("queued"), as the scheduler records a fire. The
// slot is `at` (nullopt: now, the transaction's on PostgreSQL, the core's clock on
// SQLite); a slot already taken (the scheduler fired that very microsecond, or another
// Run now did) moves to the next free microsecond, so the run is always recorded. Returns
// the slot. std::invalid_argument for a job id that is not a UUID; std::runtime_error
// when no slot is free within kRunNowSlotTries microseconds.
inline constexpr int kRunNowSlotTries = 64;
Micros record_schedule_run(Session& session, const std::string& name, const std::string& job_id,
                           std::optional<Micros> at = std::nullopt);

// Sets schedule `name`'s last outcome (what the Schedules page shows), cut to the column's
// 64 characters (on a character boundary, an ellipsis last) and made storable.
void set_schedule_outcome(Session& session, const std::string& name,
                          const std::string& outcome);

// Deletes the queued jobs of `queues` (empty: every queue) that are not workflow steps,
// in the session's transaction. Returns how many.
std::size_t purge_queued(Session& session, std::span<const std::string> queues);

}  // namespace fastq
