// SQLite driver: the embedded default. The schema is Django's (UUIDs stored as 32 hex
// characters, timestamps as "YYYY-MM-DD HH:MM:SS.ffffff" UTC text), so jobs written here
// and by the Django ORM are the same rows. Batches travel as one JSON parameter expanded
// by json_each(), so each batch is one statement (enqueue: one prepared INSERT a job, in
// one transaction). SQLite has no notifications: an idle worker polls, and PRAGMA
// data_version lets an idle poll skip the write lock when no other connection committed
// anything. On a database file the worker also listens on a wake socket next to it
// (wake.hpp), which this driver pokes after a transaction of its own that inserted jobs
// commits (the Django broker does the same after its commits).
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "fastq/driver.hpp"
#include "fastq/json.hpp"
#include "fastq/poller.hpp"
#include "fastq/rate.hpp"
#include "fastq/session.hpp"
#include "fastq/sql.hpp"
#include "fastq/time.hpp"
#include "fastq/wake.hpp"
#include "fastq/workflow.hpp"

namespace fastq {
namespace {

// SQLite integers are 64-bit and untyped: a stored value outside int's range reaches the
// worker clamped (and the worker's checks end such a row), never wrapped around.
int clamp_int(std::int64_t v) {
  return static_cast<int>(std::clamp<std::int64_t>(v, std::numeric_limits<int>::min(),
                                                   std::numeric_limits<int>::max()));
}


class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
      throw DriverError(std::string("SQLite prepare failed: ") + sqlite3_errmsg(db) +
                            " in: " + sql,
                        false);
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // The text must outlive the step (it is not copied).
  Statement& bind_static(int i, std::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Statement& bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  Statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& bind(int i, const SqlValue& v) {
    if (const auto* n = std::get_if<std::int64_t>(&v)) {
      sqlite3_bind_int64(stmt_, i, *n);
    } else if (const auto* d = std::get_if<double>(&v)) {
      sqlite3_bind_double(stmt_, i, *d);
    } else if (const auto* t = std::get_if<std::string>(&v)) {
      bind(i, *t);
    } else {
      sqlite3_bind_null(stmt_, i);
    }
    return *this;
  }
  // Column `col` as it is stored: integer, real or text (NULL for anything else).
  SqlValue value(int col) const {
    switch (sqlite3_column_type(stmt_, col)) {
      case SQLITE_INTEGER: return integer(col);
      case SQLITE_FLOAT: return real(col);
      case SQLITE_TEXT: return text(col);
      default: return std::monostate{};
    }
  }
  // Steps once; true while a row is available.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    const bool transient = rc == SQLITE_BUSY || rc == SQLITE_LOCKED || rc == SQLITE_IOERR;
    std::string msg = std::string("SQLite error: ") + sqlite3_errmsg(db_);
    sqlite3_reset(stmt_);
    throw DriverError(msg, transient);
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }
  int changes() const { return sqlite3_changes(db_); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Binds a registry row's own columns (?1..?10, ?13..?15) for beat_worker and stop_worker.
void bind_worker(Statement& s, const WorkerRow& row) {
  s.bind(1, row.id).bind(2, row.kind).bind(3, row.supervisor).bind(4, row.host)
      .bind(5, row.pid).bind(6, row.version).bind(7, row.queues).bind(8, row.tasks)
      .bind(9, static_cast<std::int64_t>(row.concurrency))
      .bind(10, static_cast<std::int64_t>(row.processes)).bind(13, row.processed)
      .bind(14, row.failed).bind(15, row.rss_bytes);
}

using Lock = std::lock_guard<std::mutex>;

// Runs a statement to completion and resets it, even if it throws.
struct Run {
  explicit Run(Statement& s) : s(s) {}
  ~Run() { s.reset(); }
  Statement& s;
};

class SqliteDriver final : public Driver, public KeysetSource {
 public:
  SqliteDriver(std::string path, std::chrono::milliseconds busy_timeout,
               std::shared_ptr<std::mutex> write_mu = std::make_shared<std::mutex>())
      : path_(std::move(path)), busy_timeout_(busy_timeout), write_mu_(std::move(write_mu)) {
    if (path_.empty() || path_ == ":memory:" || path_.starts_with("file::memory:")) {
      throw DriverError("SQLite broker needs a database file other processes can open, got '" +
                            path_ + "'",
                        false);
    }
    if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw DriverError("cannot open SQLite database '" + path_ + "': " + msg, false);
    }
    // SQLite's own busy handler sleeps up to 100 ms between tries; a queue needs to
    // retry within a fraction of a millisecond of the other writer's commit.
    sqlite3_busy_handler(db_, &SqliteDriver::on_busy, this);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    wake_dir_ = wake_dir(path_);
  }
  ~SqliteDriver() override {
    session_.reset();
    stmts_.clear();
    sqlite3_close(db_);
  }

  std::string name() const override { return "sqlite"; }
  std::unique_ptr<Driver> connect_another() const override {
    return std::make_unique<SqliteDriver>(path_, busy_timeout_, write_mu_);
  }

  // Leader store: SQLite is a file on this machine, so this machine's clock is its clock.
  std::optional<Micros> database_now() override { return std::nullopt; }

  // Notifier: SQLite cannot notify another process, so the wake socket (wake.hpp) does:
  // bound on first use (only the worker's claiming connection asks), -1 if it cannot be
  // (the worker then polls). A poke is a hint; the worker's idle poll stays the net.
  int notification_fd() override {
    if (!wake_tried_) {
      wake_tried_ = true;
      if (wake_dir_) wake_socket_ = WakeSocket::listen(*wake_dir_);
    }
    return wake_socket_ ? wake_socket_->fd() : -1;
  }
  bool drain_notifications() override { return wake_socket_ && wake_socket_->drain() > 0; }
  void stop_listening() override { wake_socket_.reset(); }
  bool queues_changed() override { return false; }
  void set_wakeup(std::function<void()> /*wakeup*/) override {}

  // The one enqueue operation (session.hpp), in one transaction (the caller's, if one is
  // open): all the jobs or none.
  std::vector<std::string> enqueue(std::span<const NewJob> jobs) override {
    if (jobs.empty()) return {};
    Lock lock(*write_mu_);
    last_claim_empty_ = false;  // our own writes don't move data_version
    const bool own_transaction = sqlite3_get_autocommit(db_) != 0;
    if (own_transaction) exec("BEGIN IMMEDIATE");
    try {
      auto ids = enqueue_jobs(session(), jobs);
      if (own_transaction) {
        exec("COMMIT");
        poke_workers();
      }
      return ids;
    } catch (...) {
      if (own_transaction) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  std::vector<ClaimedJob> claim(const ClaimRequest& req) override {
    // Idle fast path: nothing committed by anyone else since our last empty claim, and
    // that claim was recent (jobs scheduled for later still get picked up within 1 s).
    const Micros now_us = now_micros();
    const std::int64_t version = data_version();
    if (last_claim_empty_ && version == empty_version_ && now_us - empty_at_ < 1'000'000) {
      return {};
    }
    if (req.queues != claim_queues_) {
      claim_queues_ = req.queues;
      stmts_.erase("claim");
      claim_sql_ = claim_sql(req.queues);
    }
    const std::string now = format_utc(now_us);
    const std::string expires = format_utc(now_us + req.lease.count() * 1000);
    const std::int64_t token = req.lease_token ? req.lease_token : new_lease_token();
    auto& s = stmt("claim", claim_sql_);
    Lock lock(*write_mu_);
    Run run(s);
    s.bind(1, now).bind(2, expires).bind(3, token).bind(4, req.worker).bind(
        5, static_cast<std::int64_t>(req.limit));
    std::vector<ClaimedJob> out;
    while (s.step()) {
      out.push_back(ClaimedJob{to_canonical_id(s.text(0)), s.text(1), s.text(2), s.text(3),
                               s.text(4), clamp_int(s.integer(5)), clamp_int(s.integer(6)),
                               clamp_int(s.integer(7)), token, s.integer(8) != 0,
                               s.integer(9) != 0, clamp_int(s.integer(10)),
                               s.real(11), s.real(12), s.text(13)});
    }
    std::stable_sort(out.begin(), out.end(), [](const ClaimedJob& a, const ClaimedJob& b) {
      return a.priority > b.priority;
    });
    last_claim_empty_ = out.empty();
    if (last_claim_empty_) {
      empty_version_ = data_version();
      empty_at_ = now_us;
    }
    return out;
  }

  std::size_t quarantine(const ClaimRequest& req, const std::string& why) override {
    (void)why;
    std::vector<std::pair<std::string, std::string>> candidates;
    {
      Statement s(db_,
                  "SELECT id, 'attempts=' || attempts || ' max_attempts=' || max_attempts || "
                  "' priority=' || priority || ' time_limit=' || coalesce(time_limit, 'NULL') || "
                  "' soft_time_limit=' || coalesce(soft_time_limit, 'NULL') FROM fastq_job "
                  "WHERE state = 'queued' AND queue IN (SELECT value FROM json_each(?1)) AND "
                  "run_at <= ?2 ORDER BY priority DESC, run_at, id LIMIT ?3");
      Run run(s);
      s.bind(1, json_string_array(req.queues))
          .bind(2, format_utc(now_micros()))
          .bind(3, static_cast<std::int64_t>(std::max(req.limit, 1)));
      while (s.step()) candidates.emplace_back(s.text(0), s.text(1));
    }
    std::size_t ended = 0;
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    for (const auto& [id, values] : candidates) {
      std::string refusal;
      exec("BEGIN IMMEDIATE");
      try {
        Statement t(db_, "UPDATE fastq_job SET state = 'running', attempts = CASE WHEN "
                         "attempts < " + std::to_string(kAttemptsCeiling) +
                             " THEN attempts + 1 ELSE attempts END, lease_token = 0 "
                             "WHERE id = ?1");
        Run run(t);
        t.bind(1, id);
        t.step();
      } catch (const DriverError& e) {
        if (e.transient()) {
          exec("ROLLBACK");
          throw;
        }
        refusal = e.what();
      }
      exec("ROLLBACK");
      if (refusal.empty()) continue;
      Statement end(db_,
                    "UPDATE fastq_job SET state = 'dead', finished_at = ?3, error_type = '" +
                        std::string(kInvalidJobType) +
                        "', error = ?2, attempts = min(max(attempts, 0), " +
                        std::to_string(kAttemptsCeiling) +
                        "), max_attempts = min(max(max_attempts, 1), " +
                        std::to_string(kMaxAttemptsLimit) +
                        "), priority = min(max(priority, -32768), 32767), time_limit = CASE "
                        "WHEN time_limit >= 0 AND time_limit <= 1e9 THEN time_limit END, "
                        "soft_time_limit = CASE WHEN soft_time_limit >= 0 AND "
                        "soft_time_limit <= 1e9 THEN soft_time_limit END, interrupted = "
                        "max(interrupted, 0), lease_token = NULL, "
                        "lease_expires_at = NULL WHERE id = ?1 AND state = 'queued' " +
                        std::string(kFinishedReturning));
      // A workflow step ended here settles its dependents in the same transaction.
      ended += in_transaction([&] {
        std::vector<FinishedStep> finished;
        std::size_t n = 0;
        {
          Run run(end);
          end.bind(1, id)
              .bind(2, "no claim can take this row (" + values + "): " + refusal)
              .bind(3, format_utc(now_micros()));
          n = collect_finished(end, finished);
        }
        settle_here(std::move(finished));
        return n;
      });
    }
    return ended;
  }

  std::size_t complete(std::span<const Completion> done) override {
    if (done.empty()) return 0;
    // SQLite's JSON functions end a string at an escaped NUL (\u0000): an outcome holding
    // one would be cut short silently, so it is refused, as PostgreSQL's text refuses it.
    for (const auto& c : done) {
      for (const std::string* t : {&c.result, &c.error_type, &c.error, &c.traceback}) {
        if (t->find('\0') != std::string::npos) {
          throw DriverError("SQLite cannot store a NUL byte in the outcome of job " + c.id, false);
        }
      }
    }
    std::string j = "[";
    for (std::size_t i = 0; i < done.size(); ++i) {
      const auto& c = done[i];
      if (i) j.push_back(',');
      j += "{\"id\":";
      append_json_string(j, to_hex_id(c.id));
      j += ",\"token\":" + std::to_string(c.lease_token);
      j += ",\"state\":\"";
      j += outcome_state(c.outcome);
      j += "\"";
      if (c.outcome == Outcome::kRetry) {
        j += ",\"retry_at\":";
        append_json_string(j, format_utc(c.retry_at));
      }
      if (c.started_at > 0) {
        j += ",\"started_at\":";
        append_json_string(j, format_utc(c.started_at));
      }
      if (c.outcome == Outcome::kSucceeded) {
        j += ",\"result\":";
        append_json_string(j, c.result);
      } else {
        j += ",\"error_type\":";
        append_json_string(j, c.error_type);
        j += ",\"error\":";
        append_json_string(j, c.error);
        j += ",\"traceback\":";
        append_json_string(j, c.traceback);
      }
      j.push_back('}');
    }
    j.push_back(']');
    auto& s = stmt("complete",
                   "UPDATE fastq_job SET state = v.state, result = v.result, "
                   "error_type = coalesce(v.error_type, ''), error = coalesce(v.error, ''), "
                   "traceback = coalesce(v.traceback, ''), "
                   "finished_at = CASE WHEN v.state = 'queued' THEN NULL ELSE ?2 END, "
                   "run_at = coalesce(v.retry_at, fastq_job.run_at), "
                   "started_at = coalesce(fastq_job.started_at, v.started_at), "
                   "lease_token = NULL, lease_expires_at = NULL FROM (SELECT "
                   "value->>'id' AS id, value->>'token' AS token, value->>'state' AS state, "
                   "value->>'result' AS result, value->>'error_type' AS error_type, "
                   "value->>'error' AS error, value->>'traceback' AS traceback, "
                   "value->>'retry_at' AS retry_at, value->>'started_at' AS started_at "
                   "FROM json_each(?1)) AS v WHERE fastq_job.id = v.id AND "
                   "fastq_job.lease_token = v.token " + std::string(kFinishedReturning));
    Lock lock(*write_mu_);
    last_claim_empty_ = false;  // our own writes don't move data_version
    // The outcomes and the workflow steps they release, in one transaction.
    return in_transaction([&] {
      std::vector<FinishedStep> finished;
      std::size_t n = 0;
      {
        Run run(s);
        s.bind(1, j).bind(2, format_utc(now_micros()));
        n = collect_finished(s, finished);
      }
      settle_here(std::move(finished));
      return n;
    });
  }

  std::size_t renew(std::span<const JobRef> jobs, std::chrono::milliseconds lease,
                    std::vector<std::string>* cancel_requested,
                    std::vector<std::string>* renewed) override {
    if (jobs.empty()) return 0;
    auto& s = stmt("renew",
                   "UPDATE fastq_job SET lease_expires_at = ?2 FROM (SELECT value->>'id' AS "
                   "id, value->>'token' AS token FROM json_each(?1)) AS v WHERE "
                   "fastq_job.id = v.id AND fastq_job.lease_token = v.token "
                   "RETURNING fastq_job.id, fastq_job.cancel_requested");
    Lock lock(*write_mu_);
    last_claim_empty_ = false;  // our own writes don't move data_version
    Run run(s);
    s.bind(1, refs(jobs)).bind(2, format_utc(now_micros() + lease.count() * 1000));
    std::size_t n = 0;
    while (s.step()) {
      ++n;
      if (cancel_requested && s.integer(1) != 0) {
        cancel_requested->push_back(to_canonical_id(s.text(0)));
      }
      if (renewed) renewed->push_back(to_canonical_id(s.text(0)));
    }
    return n;
  }

  // The one cancel operation (session.hpp); a workflow step is cancelled here, its
  // dependents settled in the same transaction.
  CancelResult cancel(const std::string& id) override {
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    const CancelOutcome done = cancel_job(session(), id);
    if (!done.workflow_step) return done.result;
    auto& q = stmt("cancel_step", sql::statement(sql::Dialect::kSqlite, "cancel_step"));
    const bool cancelled = in_transaction([&] {
      std::vector<FinishedStep> finished;
      std::size_t n = 0;
      {
        Run run(q);
        q.bind(1, to_hex_id(id)).bind(2, format_utc(now_micros()))
            .bind(3, std::string(kCancelledType)).bind(4, std::string(kCancelledBeforeStart));
        n = collect_finished(q, finished);
      }
      settle_here(std::move(finished));
      return n > 0;
    });
    return cancelled ? CancelResult::kCancelled : CancelResult::kFinished;
  }

  std::size_t release(std::span<const JobRef> jobs) override {
    if (jobs.empty()) return 0;
    auto& s = stmt("release",
                   "UPDATE fastq_job SET state = 'queued', attempts = max(attempts - 1, 0), "
                   "lease_token = NULL, lease_expires_at = NULL, started_at = NULL, "
                   "worker = '' FROM (SELECT value->>'id' AS id, value->>'token' AS token "
                   "FROM json_each(?1)) AS v WHERE fastq_job.id = v.id AND "
                   "fastq_job.lease_token = v.token");
    Lock lock(*write_mu_);
    last_claim_empty_ = false;  // our own writes don't move data_version
    Run run(s);
    s.bind(1, refs(jobs));
    s.step();
    return static_cast<std::size_t>(s.changes());
  }

  std::size_t mark_started(std::span<const StartMark> marks) override {
    if (marks.empty()) return 0;
    std::string j = "[";
    for (std::size_t i = 0; i < marks.size(); ++i) {
      if (i) j.push_back(',');
      j += "{\"id\":";
      append_json_string(j, to_hex_id(marks[i].id));
      j += ",\"token\":" + std::to_string(marks[i].lease_token) + ",\"at\":";
      append_json_string(j, format_utc(marks[i].started_at));
      j.push_back('}');
    }
    j.push_back(']');
    auto& s = stmt("mark_started",
                   "UPDATE fastq_job SET started_at = min(v.at, ?2) FROM (SELECT "
                   "value->>'id' AS id, value->>'token' AS token, value->>'at' AS at FROM "
                   "json_each(?1)) AS v WHERE fastq_job.id = v.id AND "
                   "fastq_job.lease_token = v.token AND fastq_job.state = 'running' AND "
                   "fastq_job.started_at IS NULL");
    Lock lock(*write_mu_);
    last_claim_empty_ = false;  // our own writes don't move data_version
    Run run(s);
    s.bind(1, j).bind(2, format_utc(now_micros()));
    s.step();
    return static_cast<std::size_t>(s.changes());
  }

  std::size_t interrupt(std::span<const JobRef> jobs) override {
    if (jobs.empty()) return 0;
    const std::string bound = std::to_string(kMaxUnspentHandbacks);
    const std::string dead =
        "(interrupted >= " + bound + " AND attempts >= max_attempts)";
    auto& s = stmt("interrupt",
                   "UPDATE fastq_job SET "
                   "state = CASE WHEN " + dead + " THEN 'dead' ELSE 'queued' END, "
                   "attempts = CASE WHEN interrupted < " + bound +
                       " THEN max(attempts - 1, 0) ELSE attempts END, "
                   "interrupted = CASE WHEN interrupted < " + std::to_string(kAttemptsCeiling) +
                       " THEN interrupted + 1 ELSE interrupted END, "
                   "error_type = CASE WHEN " + dead + " THEN ?3 ELSE error_type END, "
                   "error = CASE WHEN " + dead + " THEN ?4 || (interrupted + 1) || ?5 "
                   "ELSE error END, "
                   "finished_at = CASE WHEN " + dead + " THEN ?2 END, "
                   "lease_token = NULL, lease_expires_at = NULL, worker = '' "
                   "FROM (SELECT value->>'id' AS id, value->>'token' AS token "
                   "FROM json_each(?1)) AS v WHERE fastq_job.id = v.id AND "
                   "fastq_job.lease_token = v.token AND fastq_job.state = 'running' " +
                       std::string(kFinishedReturning));
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    return in_transaction([&] {
      std::vector<FinishedStep> finished;
      std::size_t n = 0;
      {
        Run run(s);
        s.bind(1, refs(jobs))
            .bind(2, format_utc(now_micros()))
            .bind(3, std::string(kInterruptedType))
            .bind(4, std::string(kInterruptedPrefix))
            .bind(5, std::string(kInterruptedSuffix));
        n = collect_finished(s, finished);
      }
      settle_here(std::move(finished));
      return n;
    });
  }

  std::size_t release_claim(std::int64_t lease_token) override {
    auto& s = stmt("release_claim",
                   "UPDATE fastq_job SET state = 'queued', attempts = max(attempts - 1, 0), "
                   "lease_token = NULL, lease_expires_at = NULL, started_at = NULL, "
                   "worker = '' WHERE state = 'running' AND lease_token = ?1");
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    Run run(s);
    s.bind(1, lease_token);
    s.step();
    return static_cast<std::size_t>(s.changes());
  }

  std::size_t defer(std::span<const Deferral> jobs) override {
    if (jobs.empty()) return 0;
    std::string j = "[";
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      if (i) j.push_back(',');
      j += "{\"id\":";
      append_json_string(j, to_hex_id(jobs[i].id));
      j += ",\"token\":" + std::to_string(jobs[i].lease_token) + ",\"run_at\":";
      append_json_string(j, format_utc(jobs[i].run_at));
      j.push_back('}');
    }
    j.push_back(']');
    auto& s = stmt("defer",
                   "UPDATE fastq_job SET state = 'queued', attempts = max(attempts - 1, 0), "
                   "run_at = v.run_at, lease_token = NULL, lease_expires_at = NULL, "
                   "started_at = NULL, worker = '' FROM (SELECT value->>'id' AS id, "
                   "value->>'token' AS token, value->>'run_at' AS run_at FROM json_each(?1)) "
                   "AS v WHERE fastq_job.id = v.id AND fastq_job.lease_token = v.token");
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    Run run(s);
    s.bind(1, j);
    s.step();
    return static_cast<std::size_t>(s.changes());
  }

  // The SELECT of a poller's page (limit > 0: the key, and with pending_prefix a flag)
  // or count (limit = 0) over `q`. Parameters: the query's, then pending_prefix, after
  // and the limit, each when present.
  static std::string keyset_sql(const KeysetQuery& q, bool after, int limit) {
    const std::string k = "fastq_q." + q.key;
    std::string sql = "SELECT count(*)";
    if (limit > 0) {
      sql = "SELECT " + k;
      if (!q.pending_prefix.empty()) {
        sql += ", (SELECT 1 FROM fastq_job fastq_j WHERE fastq_j.unique_key = ? || " + k +
               " AND fastq_j.state IN ('queued', 'running') LIMIT 1) IS NOT NULL";
      }
    }
    sql += " FROM (" + native_placeholders(q.sql, false) + ") AS fastq_q";
    if (after) sql += " WHERE " + k + " > ?";
    if (limit > 0) sql += " ORDER BY " + k + " LIMIT ?";
    return sql;
  }

  std::vector<SqlValue> select_keys(const KeysetQuery& q, const std::optional<SqlValue>& after,
                                    int limit, std::vector<char>* pending) override {
    const std::string sql = keyset_sql(q, after.has_value(), std::max(limit, 1));
    // The same query comes back once per page: keep one prepared statement per text.
    auto& s = stmt("poll:" + sql, sql);
    Run run(s);
    // The pending flag's "?" comes first in the text (select list), then the query's.
    int i = 1;
    const bool flagged = !q.pending_prefix.empty();
    if (flagged) s.bind(i++, q.pending_prefix);
    for (const auto& p : q.params) s.bind(i++, p);
    if (after) s.bind(i++, *after);
    s.bind(i, static_cast<std::int64_t>(std::max(limit, 1)));
    std::vector<SqlValue> keys;
    while (s.step()) {
      keys.push_back(s.value(0));
      if (std::holds_alternative<std::monostate>(keys.back())) {
        throw std::invalid_argument("poller query: a row's key is NULL");
      }
      if (flagged && pending) pending->push_back(s.integer(1) != 0);
    }
    forget_poll_statements("poll:" + sql);
    return keys;
  }

  std::int64_t count_rows(const KeysetQuery& q) override {
    Statement s(db_, keyset_sql(q, false, 0));
    int i = 1;
    for (const auto& p : q.params) s.bind(i++, p);
    s.step();
    return s.integer(0);
  }

  std::size_t enqueue_once(const std::string& scope, std::span<const std::string> keys,
                           std::span<const NewJob> jobs) override {
    if (keys.size() != jobs.size()) throw std::invalid_argument("enqueue_once: keys != jobs");
    if (keys.empty()) return 0;
    // Each mark names its alert job (retention keeps that job while the mark is): ?4
    // holds the job ids in the order of the keys in ?2.
    auto& mark = stmt("poller_mark",
                      "INSERT INTO fastq_poller_mark (poller, key, created_at, job_id) "
                      "SELECT ?1, k.value, ?3, j.value FROM json_each(?2) AS k "
                      "JOIN json_each(?4) AS j ON j.key = k.key WHERE true "
                      "ON CONFLICT (poller, key) DO NOTHING RETURNING key");
    std::vector<std::string> ids;
    ids.reserve(jobs.size());
    for (const auto& j : jobs) ids.push_back(to_hex_id(j.id));
    const std::string now = format_utc(now_micros());
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    exec("BEGIN IMMEDIATE");
    try {
      std::set<std::string> fresh;
      {
        Run run(mark);
        mark.bind(1, scope).bind(2, json_string_array(keys)).bind(3, now);
        mark.bind(4, json_string_array(ids));
        while (mark.step()) fresh.insert(mark.text(0));
      }
      std::vector<NewJob> todo;
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (fresh.contains(keys[i])) todo.push_back(jobs[i]);
      }
      if (!todo.empty()) enqueue_jobs(session(), todo);
      exec("COMMIT");
      if (!todo.empty()) poke_workers();
      return todo.size();
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  RateGrant acquire_rate(const std::string& key, Micros interval_us, int burst, int want,
                         Micros horizon_us) override {
    auto& ins = stmt("rate_ins", "INSERT OR IGNORE INTO fastq_rate_limit (key, tat) VALUES (?1, 0)");
    auto& get = stmt("rate_get", "SELECT tat FROM fastq_rate_limit WHERE key = ?1");
    auto& set = stmt("rate_set", "UPDATE fastq_rate_limit SET tat = ?2 WHERE key = ?1");
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    exec("BEGIN IMMEDIATE");
    try {
      {
        Run run(ins);
        ins.bind(1, key);
        ins.step();
      }
      Micros tat = 0;
      {
        Run run(get);
        get.bind(1, key);
        if (get.step()) tat = get.integer(0);
      }
      const RateGrant g = gcra_reserve(tat, now_micros(), interval_us, burst, want, horizon_us);
      {
        Run run(set);
        set.bind(1, key).bind(2, tat);
        set.step();
      }
      exec("COMMIT");
      return g;
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  std::size_t rescue_expired() override {
    // Never started (started_at NULL) and below the hand-back bound: back unspent.
    // Otherwise charged: dead once its attempts are used up.
    const std::string spare =
        "(started_at IS NULL AND interrupted < " + std::to_string(kMaxUnspentHandbacks) + ")";
    const std::string dead = "(NOT " + spare + " AND attempts >= max_attempts)";
    auto& s = stmt("rescue",
                   "UPDATE fastq_job SET "
                   "state = CASE WHEN " + dead + " THEN 'dead' ELSE 'queued' END, "
                   "attempts = CASE WHEN " + spare + " THEN max(attempts - 1, 0) "
                   "ELSE attempts END, "
                   "interrupted = CASE WHEN " + spare + " THEN interrupted + 1 "
                   "ELSE interrupted END, "
                   "error_type = CASE WHEN " + dead + " THEN ?2 ELSE error_type END, "
                   "error = CASE WHEN " + dead + " THEN ?3 || attempts || ?4 ELSE error END, "
                   "finished_at = CASE WHEN " + dead + " THEN ?1 END, "
                   "lease_token = NULL, lease_expires_at = NULL, worker = '' "
                   "WHERE state = 'running' AND lease_expires_at < ?1 " +
                       std::string(kFinishedReturning));
    Lock lock(*write_mu_);
    last_claim_empty_ = false;  // our own writes don't move data_version
    return in_transaction([&] {
      std::vector<FinishedStep> finished;
      std::size_t n = 0;
      {
        Run run(s);
        s.bind(1, format_utc(now_micros()))
            .bind(2, std::string(kWorkerLostType))
            .bind(3, std::string(kWorkerLostPrefix))
            .bind(4, std::string(kWorkerLostSuffix));
        n = collect_finished(s, finished);
      }
      settle_here(std::move(finished));
      return n;
    });
  }

  bool hold_lease(const std::string& name, const std::string& holder,
                  std::chrono::milliseconds lease) override {
    // SQLite has no server clock: instants come from this host's (UTC text compares in
    // order). Only the scheduler writes this table.
    auto& s = stmt("hold_lease",
                   "INSERT INTO fastq_leader (name, holder, lease_expires_at) "
                   "VALUES (?1, ?2, ?4) ON CONFLICT (name) DO UPDATE SET "
                   "holder = excluded.holder, lease_expires_at = excluded.lease_expires_at "
                   "WHERE fastq_leader.holder = excluded.holder OR "
                   "fastq_leader.lease_expires_at < ?3 RETURNING holder");
    const Micros now = now_micros();
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    Run run(s);
    s.bind(1, name).bind(2, holder).bind(3, format_utc(now))
        .bind(4, format_utc(now + lease.count() * 1000));
    bool held = false;
    while (s.step()) held = s.text(0) == holder;
    return held;
  }

  void drop_lease(const std::string& name, const std::string& holder) override {
    auto& s = stmt("drop_lease", "DELETE FROM fastq_leader WHERE name = ?1 AND holder = ?2");
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    Run run(s);
    s.bind(1, name).bind(2, holder);
    s.step();
  }

  std::vector<ScheduleRow> load_schedules() override {
    auto& s = stmt("load_schedules",
                   "SELECT name, task, args, kwargs, queue, priority, cron, timezone, "
                   "coalesce(every, 0), catch_up, max_instances, next_run_at "
                   "FROM fastq_schedule WHERE enabled ORDER BY name");
    Run run(s);
    std::vector<ScheduleRow> out;
    while (s.step()) {
      ScheduleRow r;
      r.name = s.text(0);
      r.task = s.text(1);
      r.args = s.text(2);
      r.kwargs = s.text(3);
      r.queue = s.text(4);
      r.priority = static_cast<int>(s.integer(5));
      r.cron = s.text(6);
      r.timezone = s.text(7);
      r.every = s.real(8);
      r.catch_up = s.text(9);
      r.max_instances = static_cast<int>(s.integer(10));
      if (!s.is_null(11)) r.next_run_at = parse_utc(s.text(11));
      out.push_back(std::move(r));
    }
    return out;
  }

  FireResult fire_schedule(const ScheduleFire& f) override {
    auto& leader = stmt("fire_leader",
                        "SELECT count(*) FROM fastq_leader WHERE name = ?1 AND holder = ?2 "
                        "AND lease_expires_at > ?3");
    // Django writes whole seconds without a fraction: compare instants, not text.
    auto& cas = stmt("fire_cas",
                     "UPDATE fastq_schedule SET next_run_at = ?2 WHERE name = ?1 AND enabled "
                     "AND ((?3 IS NULL AND next_run_at IS NULL) OR "
                     "julianday(next_run_at) = julianday(?3))");
    auto& active = stmt("fire_active",
                        "SELECT count(*) FROM fastq_job WHERE state IN ('queued', 'running') "
                        "AND id IN (SELECT job_id FROM fastq_schedule_run WHERE schedule = ?1 "
                        "AND job_id IS NOT NULL ORDER BY slot DESC LIMIT 100)");
    auto& slot = stmt("fire_slot",
                      "INSERT INTO fastq_schedule_run (schedule, slot, job_id, created_at) "
                      "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (schedule, slot) DO NOTHING");
    auto& outcome = stmt("fire_outcome",
                         "UPDATE fastq_schedule SET last_outcome = ?2 WHERE name = ?1");
    auto& ran = stmt("fire_ran",
                     "UPDATE fastq_schedule SET last_run_at = ?2, last_job_id = ?3, "
                     "last_outcome = 'queued' WHERE name = ?1");
    const Micros now_us = now_micros();
    const std::string now = format_utc(now_us);
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    exec("BEGIN IMMEDIATE");
    try {
      auto finish = [&](FireResult r) {
        exec(r == FireResult::kNotLeader || r == FireResult::kStale ? "ROLLBACK" : "COMMIT");
        return r;
      };
      {
        Run run(leader);
        leader.bind(1, f.lease_name).bind(2, f.holder).bind(3, now);
        leader.step();
        if (leader.integer(0) == 0) return finish(FireResult::kNotLeader);
      }
      {
        Run run(cas);
        cas.bind(1, f.schedule).bind(2, format_utc(f.next_run_at));
        if (f.expect_next) cas.bind(3, format_utc(*f.expect_next));
        cas.step();
        if (cas.changes() == 0) return finish(FireResult::kStale);
      }
      if (!f.slot) {
        if (!f.outcome.empty()) {
          Run run(outcome);
          outcome.bind(1, f.schedule).bind(2, f.outcome);
          outcome.step();
        }
        return finish(FireResult::kAdvanced);
      }
      bool skip = false;
      if (f.check_overlap && f.max_instances > 0) {
        Run run(active);
        active.bind(1, f.schedule);
        active.step();
        skip = active.integer(0) >= f.max_instances;
      }
      const std::string job_hex = to_hex_id(f.job.id);
      {
        Run run(slot);
        slot.bind(1, f.schedule).bind(2, format_utc(*f.slot)).bind(4, now);
        if (!skip) slot.bind(3, job_hex);
        slot.step();
        if (slot.changes() == 0) return finish(FireResult::kAlreadyFired);
      }
      if (skip) {
        Run run(outcome);
        outcome.bind(1, f.schedule).bind(2, std::string(kSkippedRunningOutcome));
        outcome.step();
        return finish(FireResult::kSkipped);
      }
      enqueue_jobs(session(), std::span<const NewJob>(&f.job, 1));
      {
        Run run(ran);
        ran.bind(1, f.schedule).bind(2, now).bind(3, job_hex);
        ran.step();
      }
      finish(FireResult::kFired);
      poke_workers();
      return FireResult::kFired;
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  std::size_t prune_schedule_runs(Micros before) override {
    auto& s = stmt("prune_runs", "DELETE FROM fastq_schedule_run WHERE slot < ?1");
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    Run run(s);
    s.bind(1, format_utc(before));
    s.step();
    return static_cast<std::size_t>(s.changes());
  }

  // Retention: one batch (driver.hpp): a range scan of fastq_job_prune (state,
  // finished_at, id) from the cursor, then the dependency probes for those rows only, in
  // one transaction with the deleted steps' edges and their finished workflows' rows.
  PruneResult prune_jobs(const PruneRequest& req) override {
    static const std::string kKept =
        "EXISTS (SELECT 1 FROM fastq_schedule_run r WHERE r.job_id = j.id) "
        "OR EXISTS (SELECT 1 FROM fastq_poller_mark m WHERE m.job_id = j.id) "
        "OR (j.workflow_id IS NOT NULL AND EXISTS (SELECT 1 FROM fastq_job w "
        "WHERE w.workflow_id = j.workflow_id AND w.state IN ('waiting', 'queued', 'running')))";
    static const std::string kRange =
        "j.state = ?1 AND j.finished_at IS NOT NULL AND j.finished_at < ?2 "
        "AND (j.finished_at, j.id) > (?3, ?4)";
    const std::string before = format_utc(req.before);
    PruneResult out;
    if (req.dry_run) {
      auto& n = stmt("prune_count", "SELECT count(*) FROM fastq_job j WHERE " + kRange +
                                        " AND NOT (" + kKept + ")");
      Run run(n);
      n.bind(1, req.state).bind(2, before).bind(3, req.after_at).bind(4, req.after_id);
      n.step();
      out.deleted = static_cast<std::size_t>(n.integer(0));
      return out;
    }
    auto& scan = stmt("prune_scan", "SELECT j.id, j.workflow_id, j.finished_at, NOT (" + kKept +
                                        ") FROM fastq_job j WHERE " + kRange +
                                        " ORDER BY j.finished_at, j.id LIMIT ?5");
    auto& del = stmt("prune_job", "DELETE FROM fastq_job WHERE id = ?1");
    auto& out_edges = stmt("prune_edges_out", "DELETE FROM fastq_dependency WHERE parent_id = ?1");
    auto& in_edges = stmt("prune_edges_in", "DELETE FROM fastq_dependency WHERE child_id = ?1");
    auto& flows = stmt("prune_workflow",
                       "DELETE FROM fastq_workflow WHERE root_id = ?1 AND NOT EXISTS "
                       "(SELECT 1 FROM fastq_job WHERE workflow_id = ?1)");
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    exec("BEGIN IMMEDIATE");
    try {
      std::vector<std::pair<std::string, std::string>> doomed;  // id, workflow id
      {
        Run run(scan);
        scan.bind(1, req.state).bind(2, before).bind(3, req.after_at).bind(4, req.after_id);
        scan.bind(5, std::int64_t{std::max(req.limit, 1)});
        while (scan.step()) {
          ++out.scanned;
          out.last_id = scan.text(0);
          out.last_at = scan.text(2);
          if (scan.integer(3)) {
            doomed.emplace_back(scan.text(0), scan.is_null(1) ? "" : scan.text(1));
          }
        }
      }
      std::set<std::string> workflows;
      for (const auto& [id, wf] : doomed) {
        Run run(del);
        del.bind(1, id);
        del.step();
        out.deleted += static_cast<std::size_t>(del.changes());
        if (wf.empty()) continue;
        workflows.insert(wf);
        for (auto* e : {&out_edges, &in_edges}) {
          Run r(*e);
          e->bind(1, id);
          e->step();
        }
      }
      for (const auto& w : workflows) {
        Run run(flows);
        flows.bind(1, w);
        flows.step();
      }
      exec("COMMIT");
      return out;
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  // Worker registry. SQLite has no server clock: instants come from this host's.
  void beat_worker(const WorkerRow& row) override {
    // A stopped row is final (a late heartbeat does not bring it back); a lost one that
    // beats again is running again.
    auto& s = stmt("beat_worker",
                   "INSERT INTO fastq_worker (id, kind, supervisor, host, pid, version, queues, "
                   "tasks, concurrency, processes, state, started_at, last_heartbeat, "
                   "expires_at, stopped_at, processed, failed, rss_bytes) VALUES (?1, ?2, ?3, "
                   "?4, ?5, ?6, ?7, ?8, ?9, ?10, 'running', ?11, ?11, ?12, NULL, ?13, ?14, ?15) "
                   "ON CONFLICT (id) DO UPDATE SET state = 'running', last_heartbeat = "
                   "excluded.last_heartbeat, expires_at = excluded.expires_at, processed = "
                   "excluded.processed, failed = excluded.failed, rss_bytes = "
                   "excluded.rss_bytes, queues = excluded.queues, tasks = excluded.tasks, "
                   "concurrency = excluded.concurrency, processes = excluded.processes "
                   "WHERE fastq_worker.state <> 'stopped'");
    const Micros now = now_micros();
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    Run run(s);
    bind_worker(s, row);
    s.bind(11, format_utc(now)).bind(12, format_utc(now + row.lease_ms * 1000));
    s.step();
  }

  void stop_worker(const WorkerRow& row) override {
    auto& s = stmt("stop_worker",
                   "INSERT INTO fastq_worker (id, kind, supervisor, host, pid, version, queues, "
                   "tasks, concurrency, processes, state, started_at, last_heartbeat, "
                   "expires_at, stopped_at, processed, failed, rss_bytes) VALUES (?1, ?2, ?3, "
                   "?4, ?5, ?6, ?7, ?8, ?9, ?10, 'stopped', ?11, ?11, ?11, ?11, ?13, ?14, ?15) "
                   "ON CONFLICT (id) DO UPDATE SET state = 'stopped', last_heartbeat = "
                   "excluded.last_heartbeat, expires_at = excluded.expires_at, stopped_at = "
                   "excluded.stopped_at, processed = excluded.processed, failed = "
                   "excluded.failed, rss_bytes = excluded.rss_bytes");
    const Micros now = now_micros();
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    Run run(s);
    bind_worker(s, row);
    s.bind(11, format_utc(now));
    s.step();
  }

  std::size_t reap_workers(std::chrono::milliseconds keep) override {
    auto& lost = stmt("reap_workers_lost",
                      "UPDATE fastq_worker SET state = 'lost' WHERE state = 'running' AND "
                      "expires_at < ?1");
    auto& gone = stmt("reap_workers_gone",
                      "DELETE FROM fastq_worker WHERE state <> 'running' AND "
                      "last_heartbeat < ?1");
    const Micros now = now_micros();
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    std::size_t n = 0;
    {
      Run run(lost);
      lost.bind(1, format_utc(now));
      lost.step();
      n = static_cast<std::size_t>(lost.changes());
    }
    Run run(gone);
    gone.bind(1, format_utc(now - keep.count() * 1000));
    gone.step();
    return n;
  }

  std::vector<WorkerRecord> workers() override {
    auto& s = stmt("workers",
                   "SELECT id, kind, supervisor, host, pid, version, queues, tasks, "
                   "concurrency, processes, state, started_at, last_heartbeat, expires_at, "
                   "stopped_at, processed, failed, rss_bytes FROM fastq_worker ORDER BY id");
    Run run(s);
    std::vector<WorkerRecord> out;
    while (s.step()) {
      WorkerRecord w;
      w.row.id = s.text(0);
      w.row.kind = s.text(1);
      w.row.supervisor = s.text(2);
      w.row.host = s.text(3);
      w.row.pid = s.integer(4);
      w.row.version = s.text(5);
      w.row.queues = s.text(6);
      w.row.tasks = s.text(7);
      w.row.concurrency = clamp_int(s.integer(8));
      w.row.processes = clamp_int(s.integer(9));
      w.state = s.text(10);
      w.started_at = parse_utc(s.text(11)).value_or(0);
      w.last_heartbeat = parse_utc(s.text(12)).value_or(0);
      w.expires_at = parse_utc(s.text(13)).value_or(0);
      if (!s.is_null(14)) w.stopped_at = parse_utc(s.text(14));
      w.row.processed = s.integer(15);
      w.row.failed = s.integer(16);
      w.row.rss_bytes = s.integer(17);
      out.push_back(std::move(w));
    }
    return out;
  }

  std::size_t count_runnable(std::span<const std::string> queues) override {
    auto& s = stmt("count_runnable",
                   "SELECT count(*) FROM fastq_job WHERE state = 'queued' AND run_at <= ?2 "
                   "AND queue IN (SELECT value FROM json_each(?1)) AND queue NOT IN "
                   "(SELECT name FROM fastq_queue WHERE paused)");
    Run run(s);
    s.bind(1, json_string_array(queues)).bind(2, format_utc(now_micros()));
    s.step();
    return static_cast<std::size_t>(s.integer(0));
  }

  std::optional<JobRecord> get(const std::string& id) override {
    return get_job(session(), id);
  }

  std::vector<std::string> paused_queues(std::span<const std::string> queues) override {
    auto& s = stmt("paused_queues",
                   "SELECT name FROM fastq_queue WHERE paused AND name IN (SELECT value FROM "
                   "json_each(?1))");
    Run run(s);
    s.bind(1, json_string_array(queues));
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
  }

  std::vector<std::string> enqueue_workflow(std::span<const NewJob> jobs,
                                            std::span<const Dependency> deps) override {
    const std::vector<int> pending = check_workflow(jobs, deps);
    if (jobs.empty()) return {};
    const std::string now = format_utc(now_micros());
    auto& s = stmt("enqueue_step",
                   "INSERT INTO fastq_job (id, task, queue, priority, state, args, kwargs, "
                   "run_at, attempts, max_attempts, expires_at, cancel_requested, unique_key, "
                   "worker, error_type, error, traceback, created_at, envelope, time_limit, "
                   "soft_time_limit, rate_key, workflow_id, parents_pending, pass_results, "
                   "on_failure) VALUES (?1, ?2, ?3, ?4, CASE WHEN ?16 > 0 THEN 'waiting' ELSE "
                   "'queued' END, ?5, ?6, ?7, 0, ?8, ?9, 0, NULL, '', '', '', '', ?11, " +
                       std::to_string(kEnvelopeVersion) +
                       ", ?12, ?13, ?14, ?15, ?16, ?17, ?18)");
    auto& e = stmt("enqueue_dependency",
                   "INSERT INTO fastq_dependency (workflow_id, parent_id, child_id, position) "
                   "VALUES (?1, ?2, ?3, ?4)");
    std::map<std::string, std::string> workflow_of;
    for (const auto& j : jobs) workflow_of[j.id] = j.workflow_id;
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    const bool own = sqlite3_get_autocommit(db_) != 0;
    auto out = in_transaction([&] {
      std::vector<std::string> ids;
      ids.reserve(jobs.size());
      for (std::size_t i = 0; i < jobs.size(); ++i) {
        const auto& x = jobs[i];
        Run run(s);
        s.bind(1, to_hex_id(x.id)).bind_static(2, x.task).bind_static(3, x.queue);
        s.bind(4, static_cast<std::int64_t>(x.priority)).bind_static(5, x.args);
        s.bind_static(6, x.kwargs).bind(7, x.run_at ? format_utc(*x.run_at) : now);
        s.bind(8, static_cast<std::int64_t>(x.max_attempts));
        if (x.expires_at) s.bind(9, format_utc(*x.expires_at));
        s.bind_static(11, now);
        if (x.time_limit > 0) s.bind(12, x.time_limit);
        if (x.soft_time_limit > 0) s.bind(13, x.soft_time_limit);
        if (!x.rate_key.empty()) s.bind_static(14, x.rate_key);
        if (!x.workflow_id.empty()) s.bind(15, to_hex_id(x.workflow_id));
        s.bind(16, static_cast<std::int64_t>(pending[i]));
        s.bind(17, static_cast<std::int64_t>(x.pass_results));
        s.bind(18, static_cast<std::int64_t>(x.on_failure));
        s.step();
        ids.push_back(x.id);
      }
      for (const auto& d : deps) {
        Run run(e);
        const std::string& wf = workflow_of[d.child];
        e.bind(1, to_hex_id(wf.empty() ? d.child : wf))
            .bind(2, to_hex_id(d.parent))
            .bind(3, to_hex_id(d.child))
            .bind(4, static_cast<std::int64_t>(d.position));
        e.step();
      }
      return ids;
    });
    if (own) poke_workers();
    return out;
  }

  std::size_t cancel_workflow(const std::string& workflow_id) override {
    // The one workflow cancel (session.hpp), as on a connection Django lends.
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    return in_transaction([&] { return fastq::cancel_workflow(session(), workflow_id); });
  }

 private:
  // What a write that may finish workflow steps returns: collect_finished() reads it.
  static constexpr const char* kFinishedReturning =
      "RETURNING fastq_job.id, fastq_job.state, fastq_job.workflow_id IS NOT NULL, "
      "fastq_job.error_type, fastq_job.error";

  // Steps `s` (a write with kFinishedReturning) to its end; returns the rows it wrote and
  // appends those that are workflow steps in a final state to `out`.
  static std::size_t collect_finished(Statement& s, std::vector<FinishedStep>& out) {
    std::size_t n = 0;
    while (s.step()) {
      ++n;
      if (s.integer(2) == 0) continue;
      const std::string st = s.text(1);
      if (st == state::kQueued || st == state::kRunning || st == state::kWaiting) continue;
      out.push_back(FinishedStep{to_canonical_id(s.text(0)), st, s.text(3), s.text(4)});
    }
    return n;
  }

  // After a commit that inserted jobs: wakes the workers listening next to the file.
  void poke_workers() const {
    if (wake_dir_) wake_poke(*wake_dir_);
  }

  // Runs `body` in a write transaction of its own, unless one is open (write_mu_ held).
  template <class F>
  auto in_transaction(F&& body) -> decltype(body()) {
    const bool own = sqlite3_get_autocommit(db_) != 0;
    if (own) exec("BEGIN IMMEDIATE");
    try {
      auto r = body();
      if (own) exec("COMMIT");
      return r;
    } catch (...) {
      if (own) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  // Settles the workflow children of `finished` (workflow.hpp), inside the transaction
  // of the write that finished them; SQLite's writer lock serialises every settle.
  void settle_here(std::vector<FinishedStep> finished) {
    if (finished.empty()) return;
    SettleOps ops;
    ops.load = [this](const std::vector<std::string>& parents) {
      auto& q = stmt("settle_load",
                     "SELECT d.parent_id, d.child_id, d.position, c.parents_pending, "
                     "c.pass_results, c.on_failure, c.args FROM fastq_dependency d JOIN "
                     "fastq_job c ON c.id = d.child_id WHERE d.parent_id IN (SELECT value "
                     "FROM json_each(?1)) AND c.state = 'waiting' ORDER BY d.child_id, "
                     "d.position");
      std::vector<std::string> hex;
      for (const auto& p : parents) hex.push_back(to_hex_id(p));
      Run run(q);
      q.bind(1, json_string_array(hex));
      std::vector<std::pair<Dependency, WaitingStep>> out;
      while (q.step()) {
        const std::string child = to_canonical_id(q.text(1));
        out.emplace_back(
            Dependency{to_canonical_id(q.text(0)), child, clamp_int(q.integer(2))},
            WaitingStep{child, clamp_int(q.integer(3)),
                        static_cast<PassResults>(std::clamp<std::int64_t>(q.integer(4), 0, 2)),
                        static_cast<OnFailure>(std::clamp<std::int64_t>(q.integer(5), 0, 2)),
                        q.text(6)});
      }
      return out;
    };
    ops.parents = [this](const std::vector<std::string>& children) {
      auto& q = stmt("settle_parents",
                     "SELECT d.child_id, p.id, p.state, p.result, p.error_type, p.error FROM "
                     "fastq_dependency d JOIN fastq_job p ON p.id = d.parent_id WHERE "
                     "d.child_id IN (SELECT value FROM json_each(?1)) ORDER BY d.child_id, "
                     "d.position");
      std::vector<std::string> hex;
      for (const auto& c : children) hex.push_back(to_hex_id(c));
      Run run(q);
      q.bind(1, json_string_array(hex));
      std::vector<ParentResult> out;
      while (q.step()) {
        ParentResult p{to_canonical_id(q.text(0)), to_canonical_id(q.text(1)), q.text(2),
                       std::nullopt, q.text(4), q.text(5)};
        if (!q.is_null(3)) p.result = q.text(3);
        out.push_back(std::move(p));
      }
      return out;
    };
    ops.write = [this](std::span<const StepUpdate> updates) {
      auto& w = stmt("settle_write",
                     "UPDATE fastq_job SET parents_pending = ?2, state = ?3, args = ?4, "
                     "error_type = ?5, error = ?6, finished_at = ?7 WHERE id = ?1 AND "
                     "state = 'waiting'");
      const std::string now = format_utc(now_micros());
      for (const auto& u : updates) {
        Run run(w);
        const bool release = u.decision == StepDecision::kRelease;
        const bool cancel = u.decision == StepDecision::kCancel;
        w.bind(1, to_hex_id(u.id)).bind(2, static_cast<std::int64_t>(u.parents_pending));
        w.bind(3, std::string(release  ? state::kQueued
                              : cancel ? state::kCancelled
                                       : state::kWaiting));
        w.bind(4, u.args);
        w.bind(5, std::string(cancel ? kCancelledType : ""));
        w.bind(6, cancel ? u.reason : std::string());
        if (cancel) w.bind(7, now);
        w.step();
      }
    };
    settle(std::move(finished), ops);
  }

  static std::string refs(std::span<const JobRef> jobs) {
    std::string j = "[";
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      if (i) j.push_back(',');
      j += "{\"id\":";
      append_json_string(j, to_hex_id(jobs[i].id));
      j += ",\"token\":" + std::to_string(jobs[i].lease_token) + "}";
    }
    j.push_back(']');
    return j;
  }

  static std::string claim_sql(const std::vector<std::string>& queues) {
    auto lit = [](const std::string& q) {
      std::string s = "'";
      for (char c : q) {
        if (c == '\'') s.push_back('\'');
        s.push_back(c);
      }
      return s + "'";
    };
    // One index range scan per queue (index: queue, priority DESC, run_at, id), each
    // taking at most the queue's room: none when paused (fastq_queue), its concurrency
    // minus its jobs running under a live lease when limited, else the whole limit. The
    // statement holds SQLite's write lock from its first read, so the count and the
    // claim are one step for every process on the database.
    std::string pick;
    for (std::size_t i = 0; i < queues.size(); ++i) {
      if (i) pick += " UNION ALL ";
      const std::string q = lit(queues[i]);
      pick += "SELECT * FROM (SELECT id, priority, run_at FROM fastq_job WHERE state = "
              "'queued' AND queue = " +
              q +
              " AND run_at <= ?1 ORDER BY priority DESC, run_at, id LIMIT coalesce((SELECT "
              "CASE WHEN s.paused THEN 0 WHEN s.concurrency IS NULL THEN ?5 ELSE max(0, min(?5, "
              "s.concurrency - (SELECT count(*) FROM fastq_job r WHERE r.state = 'running' AND "
              "r.queue = " +
              q + " AND r.lease_expires_at > ?1))) END FROM fastq_queue s WHERE s.name = " + q +
              "), ?5))";
    }
    return "UPDATE fastq_job SET state = 'running', attempts = CASE WHEN attempts < " +
           std::to_string(kAttemptsCeiling) +
           " THEN attempts + 1 ELSE attempts END, "
           "lease_token = ?3, lease_expires_at = ?2, started_at = NULL, worker = ?4 "
           "WHERE id IN (SELECT id FROM (" +
           pick +
           ") ORDER BY priority DESC, run_at, id LIMIT ?5) "
           "RETURNING id, task, queue, args, kwargs, priority, attempts, max_attempts, "
           "expires_at IS NOT NULL AND expires_at < ?1, cancel_requested, envelope, "
           "coalesce(time_limit, 0), coalesce(soft_time_limit, 0), coalesce(rate_key, '')";
  }

  std::int64_t data_version() {
    auto& s = stmt("data_version", "PRAGMA data_version");
    Run run(s);
    s.step();
    return s.integer(0);
  }

  void exec(const char* sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      throw DriverError(std::string("SQLite: ") + sql + ": " + msg,
                        rc == SQLITE_BUSY || rc == SQLITE_LOCKED || rc == SQLITE_IOERR);
    }
  }

  // A poller's statements are kept while its cycle pages through; the oldest of more
  // than a few are dropped so that queries that keep changing do not pile up.
  void forget_poll_statements(const std::string& keep) {
    poll_keys_.erase(std::remove(poll_keys_.begin(), poll_keys_.end(), keep), poll_keys_.end());
    poll_keys_.push_back(keep);
    while (poll_keys_.size() > 8) {
      stmts_.erase(poll_keys_.front());
      poll_keys_.erase(poll_keys_.begin());
    }
  }

  Session& session() {
    if (!session_) session_ = sqlite_session(db_);
    return *session_;
  }

  Statement& stmt(const std::string& key, const std::string& sql) {
    auto it = stmts_.find(key);
    if (it == stmts_.end()) {
      it = stmts_.emplace(key, std::make_unique<Statement>(db_, sql)).first;
    }
    return *it->second;
  }

  // Busy handler: short sleeps growing to 2 ms, giving up after the busy timeout.
  static int on_busy(void* self, int count) {
    auto* d = static_cast<SqliteDriver*>(self);
    if (count == 0) d->busy_since_ = std::chrono::steady_clock::now();
    if (std::chrono::steady_clock::now() - d->busy_since_ > d->busy_timeout_) return 0;
    std::this_thread::sleep_for(std::chrono::microseconds(std::min(2000, 50 << std::min(count, 6))));
    return 1;
  }

  std::string path_;
  std::chrono::milliseconds busy_timeout_;
  // Sibling connections of one process take turns writing instead of contending for
  // SQLite's lock; other processes still go through the busy handler.
  std::shared_ptr<std::mutex> write_mu_;
  std::chrono::steady_clock::time_point busy_since_;
  sqlite3* db_ = nullptr;
  std::map<std::string, std::unique_ptr<Statement>> stmts_;
  std::unique_ptr<Session> session_;  // on db_, for the job operations (session.hpp)
  std::vector<std::string> poll_keys_;
  std::vector<std::string> claim_queues_;
  std::string claim_sql_;
  bool last_claim_empty_ = false;
  std::int64_t empty_version_ = 0;
  Micros empty_at_ = 0;
  std::optional<std::string> wake_dir_;  // wake.hpp; none: nobody to poke or to listen
  std::unique_ptr<WakeSocket> wake_socket_;
  bool wake_tried_ = false;
};

}  // namespace

std::unique_ptr<Driver> make_sqlite_driver(const std::string& path,
                                           std::chrono::milliseconds busy_timeout) {
  return std::make_unique<SqliteDriver>(path, busy_timeout);
}

}  // namespace fastq
