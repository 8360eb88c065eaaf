// SQLite driver: the embedded default. The schema is Django's (UUIDs stored as 32 hex
// characters, timestamps as "YYYY-MM-DD HH:MM:SS.ffffff" UTC text), so jobs written here
// and by the Django ORM are the same rows. Batches travel as one JSON parameter expanded
// by json_each(), so each batch is one statement (enqueue: one prepared INSERT a job, in
// one transaction). SQLite has no notifications: an idle worker polls, and PRAGMA
// data_version lets an idle poll skip the write lock when no other connection committed
// anything. On a database file the worker also listens on a wake socket next to it
// (wake.hpp), which this driver pokes wherever PostgreSQL's statements NOTIFY: after a
// transaction of its own that inserted jobs commits, and after a release, an interrupt, a
// rescue or a settle that queued jobs again (the Django broker pokes after its commits).
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

// How long the leader's log truncation (reclaim) waits for readers, writers waiting too.
constexpr std::chrono::milliseconds kWalTruncateWait{250};
// And how long after a try that could not finish it tries again.
constexpr std::chrono::seconds kWalTruncateBackOff{2};

namespace {

// SQLite integers are 64-bit and untyped: a stored value outside int's range reaches the
// worker clamped (and the worker's checks end such a row), never wrapped around.
int clamp_int(std::int64_t v) {
  return static_cast<int>(std::clamp<std::int64_t>(v, std::numeric_limits<int>::min(),
                                                   std::numeric_limits<int>::max()));
}


// The driver's statements live in src/sql/sqlite.sql (fastq/sql.hpp).
const std::string& lite_sql(std::string_view name) {
  return sql::statement(sql::Dialect::kSqlite, name);
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
    exec(lite_sql("journal_mode").c_str());
    exec(lite_sql("synchronous").c_str());
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
      claim_sql_ = claim_sql(req.queues.size());
    }
    const std::string now = format_utc(now_us);
    const std::string expires = format_utc(now_us + req.lease.count() * 1000);
    const std::int64_t token = req.lease_token ? req.lease_token : new_lease_token();
    auto& s = stmt("claim", claim_sql_);
    Lock lock(*write_mu_);
    Run run(s);
    s.bind(1, now).bind(2, expires).bind(3, token).bind(4, req.worker).bind(
        5, static_cast<std::int64_t>(req.limit));
    s.bind(6, static_cast<std::int64_t>(kAttemptsCeiling));
    for (std::size_t i = 0; i < claim_queues_.size(); ++i) {
      s.bind(static_cast<int>(7 + i), claim_queues_[i]);
    }
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
      Statement s(db_, lite_sql("quarantine_candidates"));
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
        Statement t(db_, lite_sql("quarantine_try"));
        Run run(t);
        t.bind(1, id).bind(2, static_cast<std::int64_t>(kAttemptsCeiling));
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
      Statement end(db_, lite_sql("quarantine_end"));
      // A workflow step ended here settles its dependents in the same transaction.
      ended += in_transaction([&] {
        std::vector<FinishedStep> finished;
        std::size_t n = 0;
        {
          Run run(end);
          end.bind(1, id)
              .bind(2, "no claim can take this row (" + values + "): " + refusal)
              .bind(3, format_utc(now_micros()))
              .bind(4, std::string(kInvalidJobType))
              .bind(5, static_cast<std::int64_t>(kAttemptsCeiling))
              .bind(6, static_cast<std::int64_t>(kMaxAttemptsLimit));
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
    auto& s = stmt("complete", lite_sql("complete"));
    Lock lock(*write_mu_);
    last_claim_empty_ = false;  // our own writes don't move data_version
    // The outcomes and the workflow steps they release, in one transaction.
    const std::size_t n = in_transaction([&] {
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
    poke_if_released();
    return n;
  }

  std::size_t renew(std::span<const JobRef> jobs, std::chrono::milliseconds lease,
                    std::vector<std::string>* cancel_requested,
                    std::vector<std::string>* renewed) override {
    if (jobs.empty()) return 0;
    auto& s = stmt("renew", lite_sql("renew"));
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
    auto& q = stmt("cancel_step", lite_sql("cancel_step"));
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
    poke_if_released();  // a dependent that runs anyway is queued now
    return cancelled ? CancelResult::kCancelled : CancelResult::kFinished;
  }

  std::size_t release(std::span<const JobRef> jobs) override {
    if (jobs.empty()) return 0;
    auto& s = stmt("release", lite_sql("release"));
    Lock lock(*write_mu_);
    last_claim_empty_ = false;  // our own writes don't move data_version
    Run run(s);
    s.bind(1, refs(jobs));
    s.step();
    const auto n = static_cast<std::size_t>(s.changes());
    if (n > 0) poke_workers();  // back in the queue: another worker may take them now
    return n;
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
    auto& s = stmt("mark_started", lite_sql("mark_started"));
    Lock lock(*write_mu_);
    last_claim_empty_ = false;  // our own writes don't move data_version
    Run run(s);
    s.bind(1, j).bind(2, format_utc(now_micros()));
    s.step();
    return static_cast<std::size_t>(s.changes());
  }

  std::size_t interrupt(std::span<const JobRef> jobs) override {
    if (jobs.empty()) return 0;
    auto& s = stmt("interrupt", lite_sql("interrupt"));
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    const std::size_t n = in_transaction([&] {
      std::vector<FinishedStep> finished;
      std::size_t n = 0;
      {
        Run run(s);
        s.bind(1, refs(jobs))
            .bind(2, format_utc(now_micros()))
            .bind(3, std::string(kInterruptedType))
            .bind(4, std::string(kInterruptedPrefix))
            .bind(5, std::string(kInterruptedSuffix))
            .bind(6, static_cast<std::int64_t>(kMaxUnspentHandbacks))
            .bind(7, static_cast<std::int64_t>(kAttemptsCeiling));
        n = collect_finished(s, finished);
      }
      settle_here(std::move(finished));
      return n;
    });
    // Back in the queue (or children released): PostgreSQL's statement NOTIFYs here.
    if (n > 0) poke_workers();
    return n;
  }

  std::size_t release_claim(std::int64_t lease_token) override {
    auto& s = stmt("release_claim", lite_sql("release_claim"));
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    Run run(s);
    s.bind(1, lease_token);
    s.step();
    const auto n = static_cast<std::size_t>(s.changes());
    if (n > 0) poke_workers();
    return n;
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
    auto& s = stmt("defer", lite_sql("defer"));
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    Run run(s);
    s.bind(1, j);
    s.step();
    return static_cast<std::size_t>(s.changes());
  }

  // The SELECT of a poller's page (limit > 0: the key, and with pending_prefix a flag)
  // or count (limit = 0) over `q`: a poll_* template of the statement home around the
  // query. Parameters: pending_prefix, the query's, after and the limit, each when
  // present, in that order in the text.
  static std::string keyset_sql(const KeysetQuery& q, bool after, int limit) {
    const std::string query = native_placeholders(q.sql, false);
    if (limit <= 0) return sql::fill_template(lite_sql("poll_count"), {{"query", query}});
    const bool flagged = !q.pending_prefix.empty();
    const std::string& tmpl =
        flagged ? (after ? lite_sql("poll_pending_page_after") : lite_sql("poll_pending_page"))
                : (after ? lite_sql("poll_page_after") : lite_sql("poll_page"));
    return sql::fill_template(tmpl, {{"query", query}, {"key", q.key}, {"prefix", "?"},
                                {"after", "?"}, {"limit", "?"}});
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
    auto& mark = stmt("poller_mark", lite_sql("poller_mark"));
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
    auto& ins = stmt("rate_ins", lite_sql("rate_ins"));
    auto& get = stmt("rate_get", lite_sql("rate_get"));
    auto& set = stmt("rate_set", lite_sql("rate_set"));
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
    // Never started and below the hand-back bound: back unspent; otherwise charged.
    auto& s = stmt("rescue", lite_sql("rescue"));
    Lock lock(*write_mu_);
    last_claim_empty_ = false;  // our own writes don't move data_version
    const std::size_t n = in_transaction([&] {
      std::vector<FinishedStep> finished;
      std::size_t n = 0;
      {
        Run run(s);
        s.bind(1, format_utc(now_micros()))
            .bind(2, std::string(kWorkerLostType))
            .bind(3, std::string(kWorkerLostPrefix))
            .bind(4, std::string(kWorkerLostSuffix))
            .bind(5, static_cast<std::int64_t>(kMaxUnspentHandbacks));
        n = collect_finished(s, finished);
      }
      settle_here(std::move(finished));
      return n;
    });
    // Back in the queue (or children released): PostgreSQL's statement NOTIFYs here.
    if (n > 0) poke_workers();
    return n;
  }

  bool hold_lease(const std::string& name, const std::string& holder,
                  std::chrono::milliseconds lease) override {
    // SQLite has no server clock: instants come from this host's (UTC text compares in
    // order). Only the scheduler writes this table.
    auto& s = stmt("hold_lease", lite_sql("hold_lease"));
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
    auto& s = stmt("drop_lease", lite_sql("drop_lease"));
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    Run run(s);
    s.bind(1, name).bind(2, holder);
    s.step();
  }

  std::vector<ScheduleRow> load_schedules() override {
    auto& s = stmt("load_schedules", lite_sql("load_schedules"));
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
    auto& leader = stmt("fire_leader", lite_sql("fire_leader"));
    // Django writes whole seconds without a fraction: compare instants, not text.
    auto& cas = stmt("fire_cas", lite_sql("fire_cas"));
    auto& active = stmt("fire_active", lite_sql("fire_active"));
    auto& slot = stmt("fire_slot", lite_sql("fire_slot"));
    auto& outcome = stmt("fire_outcome", lite_sql("fire_outcome"));
    auto& ran = stmt("fire_ran", lite_sql("fire_ran"));
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
    auto& s = stmt("prune_runs", lite_sql("prune_runs"));
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
  bool reclaims_space() const override { return true; }
  std::chrono::milliseconds reclaim_every() const override {
    return std::chrono::milliseconds(500);
  }

  std::size_t reclaim(const ReclaimLimits& limits) override {
    std::int64_t frames = 0;
    {
      auto& s = stmt("wal_frames", lite_sql("wal_frames"));
      Run run(s);
      if (s.step()) frames = s.integer(1);
    }
    if (frames < limits.wal_frames) return 0;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_truncate_) return 0;  // the last try found readers holding on
    // While it waits for the readers of the moment, writers wait too: a short wait, so
    // that a long reader costs the fleet a quarter of a second, not the busy timeout; the
    // next round tries again.
    struct ShortWait {
      std::chrono::milliseconds& timeout;
      std::chrono::milliseconds was;
      ~ShortWait() { timeout = was; }
    } short_wait{busy_timeout_, busy_timeout_};
    busy_timeout_ = std::min(busy_timeout_, kWalTruncateWait);
    auto& s = stmt("wal_truncate", lite_sql("wal_truncate"));
    Run run(s);
    bool done = false;
    try {
      done = s.step() && s.integer(0) == 0;
    } catch (const DriverError& e) {
      if (!e.transient()) throw;  // else a reader or the writer held on
    }
    // After a try that could not finish, writers are left alone for a while.
    if (!done) next_truncate_ = now + kWalTruncateBackOff;
    return done ? 1 : 0;
  }

  PruneResult prune_jobs(const PruneRequest& req) override {
    const std::string before = format_utc(req.before);
    PruneResult out;
    if (req.dry_run) {
      auto& n = stmt("prune_count", lite_sql("prune_count"));
      Run run(n);
      n.bind(1, req.state).bind(2, before).bind(3, req.after_at).bind(4, req.after_id);
      n.step();
      out.deleted = static_cast<std::size_t>(n.integer(0));
      return out;
    }
    auto& scan = stmt("prune_scan", lite_sql("prune_scan"));
    auto& del = stmt("prune_job", lite_sql("prune_job"));
    auto& out_edges = stmt("prune_edges_out", lite_sql("prune_edges_out"));
    auto& in_edges = stmt("prune_edges_in", lite_sql("prune_edges_in"));
    auto& flows = stmt("prune_workflow", lite_sql("prune_workflow"));
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
    auto& s = stmt("beat_worker", lite_sql("beat_worker"));
    const Micros now = now_micros();
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    Run run(s);
    bind_worker(s, row);
    s.bind(11, format_utc(now)).bind(12, format_utc(now + row.lease_ms * 1000));
    s.step();
  }

  void stop_worker(const WorkerRow& row) override {
    auto& s = stmt("stop_worker", lite_sql("stop_worker"));
    const Micros now = now_micros();
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    Run run(s);
    bind_worker(s, row);
    s.bind(11, format_utc(now));
    s.step();
  }

  std::size_t reap_workers(std::chrono::milliseconds keep) override {
    auto& lost = stmt("reap_workers_lost", lite_sql("reap_workers_lost"));
    auto& gone = stmt("reap_workers_gone", lite_sql("reap_workers_gone"));
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
    auto& s = stmt("workers", lite_sql("workers"));
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
    auto& s = stmt("count_runnable", lite_sql("count_runnable"));
    Run run(s);
    s.bind(1, json_string_array(queues)).bind(2, format_utc(now_micros()));
    s.step();
    return static_cast<std::size_t>(s.integer(0));
  }

  std::optional<JobRecord> get(const std::string& id) override {
    return get_job(session(), id);
  }

  std::vector<std::string> paused_queues(std::span<const std::string> queues) override {
    auto& s = stmt("paused_queues", lite_sql("paused_queues"));
    Run run(s);
    s.bind(1, json_string_array(queues));
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
  }

  std::vector<std::string> enqueue_workflow(std::span<const NewJob> jobs,
                                            std::span<const Dependency> deps) override {
    // The one workflow enqueue (session.hpp), as on a connection Django lends.
    check_workflow(jobs, deps);  // refused before the write lock is taken
    if (jobs.empty()) return {};
    Lock lock(*write_mu_);
    last_claim_empty_ = false;
    const bool own = sqlite3_get_autocommit(db_) != 0;
    auto out = in_transaction([&] { return fastq::enqueue_workflow(session(), jobs, deps); });
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

  // Steps `s` (a write returning id, state, whether a step, error_type, error: complete,
  // interrupt, rescue, quarantine_end, cancel_step) to its end; returns the rows it wrote and
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
  // After a write whose settle released waiting workflow steps (they are queued now).
  void poke_if_released() {
    if (released_steps_) poke_workers();
    released_steps_ = false;
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
      auto& q = stmt("settle_load", lite_sql("settle_load"));
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
      auto& q = stmt("settle_parents", lite_sql("settle_parents"));
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
      auto& w = stmt("settle_write", lite_sql("settle_write"));
      const std::string now = format_utc(now_micros());
      for (const auto& u : updates) {
        Run run(w);
        const bool release = u.decision == StepDecision::kRelease;
        const bool cancel = u.decision == StepDecision::kCancel;
        released_steps_ = released_steps_ || release;
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

  // The claim statement for `count` queues: one claim_branch per queue, the queue ?7 on.
  static std::string claim_sql(std::size_t count) {
    std::string branches;
    for (std::size_t i = 0; i < count; ++i) {
      if (i) branches += " UNION ALL ";
      const std::string q = "?" + std::to_string(7 + i);
      branches += sql::fill_template(lite_sql("claim_branch"), {{"queue", q}});
    }
    return sql::fill_template(lite_sql("claim"), {{"branches", branches}});
  }

  std::int64_t data_version() {
    auto& s = stmt("data_version", lite_sql("data_version"));
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
  std::chrono::steady_clock::time_point next_truncate_{};  // reclaim: no try before
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
  bool released_steps_ = false;  // settle_here queued a waiting step (poke_if_released)
};

}  // namespace

std::unique_ptr<Driver> make_sqlite_driver(const std::string& path,
                                           std::chrono::milliseconds busy_timeout) {
  return std::make_unique<SqliteDriver>(path, busy_timeout);
}

}  // namespace fastq
