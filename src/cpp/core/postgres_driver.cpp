// PostgreSQL driver (libpq). Batches travel as one JSON parameter expanded server-side by
// json_to_recordset, so every batch operation is one statement and one round trip; new
// jobs without unique keys go in by COPY, cheaper still.
// Claims use FOR UPDATE SKIP LOCKED; workers LISTEN on channel "fastq", which the
// INSERT trigger created by the Django migration notifies at commit.
#include <libpq-fe.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <utility>

#include "fastq/bulk.hpp"
#include "fastq/driver.hpp"
#include "fastq/json.hpp"
#include "fastq/poller.hpp"
#include "fastq/rate.hpp"
#include "fastq/session.hpp"
#include "fastq/sql.hpp"
#include "fastq/time.hpp"
#include "fastq/workflow.hpp"

namespace fastq {
namespace {

constexpr const char* kChannel = "fastq";
// Batches of unique-key jobs at least this large try COPY before INSERT ... ON CONFLICT.
constexpr std::size_t kOptimisticCopyMin = 256;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

bool is_transient_state(const char* sqlstate) {
  if (!sqlstate) return true;  // no SQLSTATE: the connection itself failed
  const std::string s(sqlstate);
  return s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03" ||
         s == "40001" || s == "40P01" || s == "55P03" || s == "53300";
}

// A poller's parameters as libpq text; PostgreSQL infers each one's type from where it
// stands in the query.
std::vector<std::optional<std::string>> text_params(const std::vector<SqlValue>& values) {
  std::vector<std::optional<std::string>> out;
  out.reserve(values.size() + 1);
  for (const auto& v : values) {
    if (std::holds_alternative<std::monostate>(v)) {
      out.emplace_back(std::nullopt);
    } else if (const auto* d = std::get_if<double>(&v)) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", *d);
      out.emplace_back(buf);
    } else {
      out.emplace_back(key_text(v));
    }
  }
  return out;
}

std::string refs_json(std::span<const JobRef> jobs) {
  std::string j = "[";
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (i) j.push_back(',');
    j += "{\"id\":";
    append_json_string(j, jobs[i].id);
    j += ",\"token\":";
    j += std::to_string(jobs[i].lease_token);
    j.push_back('}');
  }
  j.push_back(']');
  return j;
}

// The driver's statements live in src/sql/postgres.sql (fastq/sql.hpp).
const std::string& pg_sql(std::string_view name) {
  return sql::statement(sql::Dialect::kPostgres, name);
}

// Constants the statements take as parameters (types.hpp).
// Seconds between two ANALYZEs of one of the store's tables at the most (reclaim).
constexpr int kAnalyzeEvery = 10;

const std::string kAttemptsCeilingText = std::to_string(kAttemptsCeiling);
const std::string kMaxAttemptsLimitText = std::to_string(kMaxAttemptsLimit);
const std::string kMaxUnspentHandbacksText = std::to_string(kMaxUnspentHandbacks);
const std::string kEnvelopeVersionText = std::to_string(kEnvelopeVersion);

class Connection {
 public:
  explicit Connection(std::string conninfo) : conninfo_(std::move(conninfo)) { connect(); }
  ~Connection() {
    if (conn_) PQfinish(conn_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  PGconn* raw() { return conn_; }

  // synchronous_commit off for this session, now and after every reconnect.
  void commit_async() {
    async_commit_ = true;
    exec_simple(pg_sql("async_commit").c_str());  // reconnects first if need be
  }

  // Reconnects if the connection was lost; throws a transient error if that fails.
  void ensure() {
    if (PQstatus(conn_) == CONNECTION_OK) return;
    PQreset(conn_);
    prepared_.clear();
    if (PQstatus(conn_) != CONNECTION_OK) {
      throw DriverError("PostgreSQL reconnect failed: " + one_line(PQerrorMessage(conn_)),
                        true);
    }
    on_connect();
  }

  Result exec(const char* name, const std::string& sql, std::initializer_list<const char*> params) {
    ensure();
    if (!prepared_.contains(name)) {
      Result r(PQprepare(conn_, name, sql.c_str(), static_cast<int>(params.size()), nullptr));
      check(r.get(), PGRES_COMMAND_OK, name);
      prepared_.insert(name);
    }
    std::vector<const char*> values(params);
    Result r(PQexecPrepared(conn_, name, static_cast<int>(values.size()), values.data(), nullptr,
                            nullptr, 0));
    const auto st = PQresultStatus(r.get());
    check(r.get(), st == PGRES_TUPLES_OK ? PGRES_TUPLES_OK : PGRES_COMMAND_OK, name);
    return r;
  }

  // An unnamed statement with text parameters (nullopt: NULL): for SQL that changes from
  // call to call (a poller's query).
  Result exec_dynamic(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                      const char* what) {
    ensure();
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    Result r(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                          values.data(), nullptr, nullptr, 0));
    const auto st = PQresultStatus(r.get());
    check(r.get(), st == PGRES_TUPLES_OK ? PGRES_TUPLES_OK : PGRES_COMMAND_OK, what);
    return r;
  }

  void exec_simple(const char* sql) {
    ensure();
    Result r(PQexec(conn_, sql));
    check(r.get(), PGRES_COMMAND_OK, sql);
  }

  // COPY ... FROM STDIN with `data` in text format.
  void copy_in(const std::string& sql, const std::string& data) {
    ensure();
    Result start(PQexec(conn_, sql.c_str()));
    check(start.get(), PGRES_COPY_IN, "COPY");
    bool sent = true;
    constexpr std::size_t kChunk = 1 << 20;
    for (std::size_t off = 0; sent && off < data.size(); off += kChunk) {
      const auto n = static_cast<int>(std::min(kChunk, data.size() - off));
      sent = PQputCopyData(conn_, data.data() + off, n) == 1;
    }
    PQputCopyEnd(conn_, sent ? nullptr : "fastq: sending the COPY data failed");
    Result end(PQgetResult(conn_));
    while (PGresult* more = PQgetResult(conn_)) PQclear(more);
    check(end.get(), PGRES_COMMAND_OK, "COPY");
  }

 private:
  void connect() {
    conn_ = PQconnectdb(conninfo_.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(conn_);
      PQfinish(conn_);
      conn_ = nullptr;
      throw DriverError("cannot connect to PostgreSQL: " + one_line(msg), true);
    }
    on_connect();
  }
  void on_connect() {
    // Server notices (and the FATAL sent before a shutdown) would go raw to stderr; the
    // failures that matter reach the worker as errors and are logged there.
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
    // Workers write UTC; the session zone only affects how timestamps print.
    Result r(PQexec(conn_, pg_sql("session_setup").c_str()));
    if (async_commit_) Result a(PQexec(conn_, pg_sql("async_commit").c_str()));
  }
  void check(PGresult* r, ExecStatusType want, const std::string& what) {
    if (PQresultStatus(r) == want) return;
    const char* sqlstate = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn_);
    if (msg.empty()) msg = PQerrorMessage(conn_);
    const bool lost = PQstatus(conn_) != CONNECTION_OK;
    if (lost) prepared_.clear();
    throw DriverError("PostgreSQL error in " + what + ": " + one_line(msg),
                      lost || is_transient_state(sqlstate));
  }

  std::string conninfo_;
  PGconn* conn_ = nullptr;
  std::set<std::string> prepared_;
  bool async_commit_ = false;
};

// The text parameters $1..$14 of beat_worker and stop_worker.
std::vector<std::string> worker_params(const WorkerRow& row) {
  return {row.id,
          row.kind,
          row.supervisor,
          row.host,
          std::to_string(row.pid),
          row.version,
          row.queues,
          row.tasks,
          std::to_string(row.concurrency),
          std::to_string(row.processes),
          std::to_string(row.lease_ms),
          std::to_string(row.processed),
          std::to_string(row.failed),
          std::to_string(row.rss_bytes)};
}

class PostgresDriver final : public Driver, public KeysetSource {
 public:
  explicit PostgresDriver(std::string conninfo)
      : conninfo_(std::move(conninfo)), conn_(conninfo_) {}

  std::string name() const override { return "postgres"; }
  std::unique_ptr<Driver> connect_another() const override {
    return std::make_unique<PostgresDriver>(conninfo_);
  }

  std::vector<std::string> enqueue(std::span<const NewJob> jobs) override {
    if (jobs.empty()) return {};
    // Without unique keys nothing can conflict: COPY, the cheapest way in, and every id
    // is the job's own. Jobs without run_at take the column's default (the server's
    // statement time), so a batch mixing both takes the INSERT below instead.
    const bool unique =
        std::any_of(jobs.begin(), jobs.end(), [](const NewJob& j) { return !j.unique_key.empty(); });
    const auto timed =
        std::count_if(jobs.begin(), jobs.end(), [](const NewJob& j) { return j.run_at.has_value(); });
    if (!unique && (timed == 0 || static_cast<std::size_t>(timed) == jobs.size())) {
      const PgCopyBatch copy = pg_copy_batch(jobs, 0);
      conn_.copy_in(sql::fill_template(pg_sql("copy_jobs"), {{"columns", copy.columns}}), copy.data);
      std::vector<std::string> ids;
      ids.reserve(jobs.size());
      for (const auto& j : jobs) ids.push_back(j.id);
      return ids;
    }
    // A large batch with unique keys (a poller's page, whose read already left out the
    // keys in use) tries COPY too, in a transaction (or savepoint) of its own: a
    // conflict fails it whole, and the INSERT below sorts the batch out instead.
    if (unique && jobs.size() >= kOptimisticCopyMin &&
        (timed == 0 || static_cast<std::size_t>(timed) == jobs.size())) {
      const bool nested = PQtransactionStatus(conn_.raw()) == PQTRANS_INTRANS;
      conn_.exec_simple(nested ? "SAVEPOINT fastq_copy" : "BEGIN");
      try {
        const PgCopyBatch copy = pg_copy_batch(jobs, 0);
        conn_.copy_in(sql::fill_template(pg_sql("copy_jobs"), {{"columns", copy.columns}}), copy.data);
        conn_.exec_simple(nested ? "RELEASE SAVEPOINT fastq_copy" : "COMMIT");
        std::vector<std::string> ids;
        ids.reserve(jobs.size());
        for (const auto& j : jobs) ids.push_back(j.id);
        return ids;
      } catch (const DriverError& e) {
        if (PQstatus(conn_.raw()) != CONNECTION_OK) throw;
        conn_.exec_simple(nested ? "ROLLBACK TO SAVEPOINT fastq_copy" : "ROLLBACK");
        if (nested) conn_.exec_simple("RELEASE SAVEPOINT fastq_copy");
      }
    }
    // Otherwise the one enqueue operation (session.hpp), as on a connection Django lends.
    conn_.ensure();
    return enqueue_jobs(*pg_session(conn_.raw()), jobs);
  }

  void commit_claims_async() override {
    try {
      conn_.commit_async();
    } catch (const DriverError&) {
      // Unreachable now: the setting is made at the reconnect (the flag is set).
    }
  }

  std::vector<ClaimedJob> claim(const ClaimRequest& req) override {
    if (req.queues != claim_queues_) {
      claim_queues_ = req.queues;
      queues_array_ = pg_text_array(req.queues);
      limited_stale_ = true;
    }
    const auto limit = std::to_string(req.limit);
    const auto lease = std::to_string(req.lease.count());
    const std::int64_t token = req.lease_token ? req.lease_token : new_lease_token();
    const auto token_s = std::to_string(token);
    refresh_limited();
    Result r;
    if (!limited_) {
      r = conn_.exec("fastq_claim", pg_sql("claim"),
                     {limit.c_str(), lease.c_str(), token_s.c_str(), req.worker.c_str(),
                      queues_array_.c_str(), "f", kAttemptsCeilingText.c_str()});
    } else {
      // Some of our queues are limited: lock their rows (in name order: no deadlock
      // between workers), then claim in the next statement, whose snapshot is taken after
      // the lock and so sees every claim committed by the lock's previous holder.
      const bool nested = PQtransactionStatus(conn_.raw()) == PQTRANS_INTRANS;
      if (nested) throw DriverError("claim() inside an open transaction", false);
      conn_.exec_simple("BEGIN");
      try {
        Result locked = conn_.exec("fastq_claim_lock", pg_sql("claim_lock"),
                                   {queues_array_.c_str()});
        limited_ = PQntuples(locked.get()) > 0;
        r = conn_.exec("fastq_claim", pg_sql("claim"),
                       {limit.c_str(), lease.c_str(), token_s.c_str(), req.worker.c_str(),
                        queues_array_.c_str(), limited_ ? "t" : "f",
                        kAttemptsCeilingText.c_str()});
        conn_.exec_simple("COMMIT");
      } catch (const DriverError&) {
        if (PQstatus(conn_.raw()) == CONNECTION_OK) {
          Result rb(PQexec(conn_.raw(), "ROLLBACK"));
        }
        throw;
      }
    }
    const int n = PQntuples(r.get());
    std::vector<ClaimedJob> out;
    out.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      out.push_back(ClaimedJob{PQgetvalue(r.get(), i, 0), PQgetvalue(r.get(), i, 1),
                               PQgetvalue(r.get(), i, 2), PQgetvalue(r.get(), i, 3),
                               PQgetvalue(r.get(), i, 4), std::atoi(PQgetvalue(r.get(), i, 5)),
                               std::atoi(PQgetvalue(r.get(), i, 6)),
                               std::atoi(PQgetvalue(r.get(), i, 7)), token,
                               PQgetvalue(r.get(), i, 8)[0] == 't',
                               PQgetvalue(r.get(), i, 9)[0] == 't',
                               std::atoi(PQgetvalue(r.get(), i, 10)),
                               std::atof(PQgetvalue(r.get(), i, 11)),
                               std::atof(PQgetvalue(r.get(), i, 12)),
                               PQgetvalue(r.get(), i, 13)});
    }
    std::stable_sort(out.begin(), out.end(), [](const ClaimedJob& a, const ClaimedJob& b) {
      return a.priority > b.priority;
    });
    return out;
  }

  std::size_t quarantine(const ClaimRequest& req, const std::string& why) override {
    const auto arr = pg_text_array(req.queues);
    const auto limit = std::to_string(std::max(req.limit, 1));
    Result found = conn_.exec(
        "fastq_quarantine_candidates", pg_sql("quarantine_candidates"),
        {arr.c_str(), limit.c_str()});
    std::size_t ended = 0;
    for (int i = 0; i < PQntuples(found.get()); ++i) {
      const std::string id = PQgetvalue(found.get(), i, 0);
      const std::string values = PQgetvalue(found.get(), i, 1);
      std::string refusal;
      conn_.exec_simple("BEGIN");
      try {
        conn_.exec("fastq_quarantine_try", pg_sql("quarantine_try"),
                   {id.c_str(), kAttemptsCeilingText.c_str()});
      } catch (const DriverError& e) {
        if (e.transient()) {
          if (PQstatus(conn_.raw()) == CONNECTION_OK) conn_.exec_simple("ROLLBACK");
          throw;
        }
        refusal = e.what();
      }
      conn_.exec_simple("ROLLBACK");
      if (refusal.empty()) continue;
      const std::string reason = "no claim can take this row (" + values + "): " + refusal;
      // A workflow step ended here settles its dependents in the same transaction.
      ended += in_transaction([&] {
        Result r = conn_.exec("fastq_quarantine_end", pg_sql("quarantine_end"),
                              {id.c_str(), reason.c_str(), kInvalidJobType,
                               kAttemptsCeilingText.c_str(), kMaxAttemptsLimitText.c_str()});
        if (PQntuples(r.get()) == 1 && PQgetvalue(r.get(), 0, 0)[0] == 't') {
          settle_here({FinishedStep{id, state::kDead, kInvalidJobType, reason}});
        }
        return static_cast<std::size_t>(PQntuples(r.get()));
      });
    }
    (void)why;
    return ended;
  }

  std::size_t complete(std::span<const Completion> done) override {
    if (done.empty()) return 0;
    const Micros sent = now_micros();
    std::string j = "[";
    for (std::size_t i = 0; i < done.size(); ++i) {
      const auto& c = done[i];
      if (i) j.push_back(',');
      j += "{\"id\":";
      append_json_string(j, c.id);
      j += ",\"token\":" + std::to_string(c.lease_token);
      j += ",\"state\":\"";
      j += outcome_state(c.outcome);
      j += "\"";
      if (c.outcome == Outcome::kRetry) j += ",\"retry_at_us\":" + std::to_string(c.retry_at);
      // A start travels as its age, so the row's started_at is on the database's clock
      // whatever this machine's wall clock says (the skew cancels out in the age).
      if (c.started_at > 0) {
        j += ",\"started_ago_us\":" + std::to_string(std::max<Micros>(0, sent - c.started_at));
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
    // Jobs outside workflows: one statement, as ever.
    Result r = conn_.exec("fastq_complete", pg_sql("complete"), {j.c_str()});
    std::size_t n = static_cast<std::size_t>(std::atoll(PQgetvalue(r.get(), 0, 0)));
    if (n == done.size()) return n;
    // The rest are fenced off, or workflow steps: those settle their dependents in the
    // transaction that writes their outcomes (workflow.hpp).
    return n + in_transaction([&] {
      Result w = conn_.exec("fastq_complete_steps", pg_sql("complete_steps"), {j.c_str()});
      std::vector<FinishedStep> finished;
      for (int i = 0; i < PQntuples(w.get()); ++i) {
        FinishedStep f{PQgetvalue(w.get(), i, 0), PQgetvalue(w.get(), i, 1),
                       PQgetvalue(w.get(), i, 2), PQgetvalue(w.get(), i, 3)};
        if (f.state != state::kQueued) finished.push_back(std::move(f));
      }
      settle_here(std::move(finished));
      return static_cast<std::size_t>(PQntuples(w.get()));
    });
  }

  std::size_t renew(std::span<const JobRef> jobs, std::chrono::milliseconds lease,
                    std::vector<std::string>* cancel_requested,
                    std::vector<std::string>* renewed) override {
    if (jobs.empty()) return 0;
    const auto j = refs_json(jobs);
    const auto ms = std::to_string(lease.count());
    Result r = conn_.exec(
        "fastq_renew", pg_sql("renew"),
        {j.c_str(), ms.c_str()});
    const int n = PQntuples(r.get());
    for (int i = 0; i < n; ++i) {
      if (cancel_requested && PQgetvalue(r.get(), i, 1)[0] == 't') {
        cancel_requested->push_back(PQgetvalue(r.get(), i, 0));
      }
      if (renewed) renewed->push_back(PQgetvalue(r.get(), i, 0));
    }
    return static_cast<std::size_t>(n);
  }

  CancelResult cancel(const std::string& id) override {
    return in_transaction([&] {
      // The one cancel operation (session.hpp); a workflow step is cancelled here, its
      // dependents settled in the same transaction.
      conn_.ensure();
      const CancelOutcome done = cancel_job(*pg_session(conn_.raw()), id);
      if (!done.workflow_step) return done.result;
      Result r = conn_.exec("fastq_cancel_step", pg_sql("cancel_step"),
                            {id.c_str(), kCancelledType, kCancelledBeforeStart});
      if (PQntuples(r.get()) == 0) return CancelResult::kFinished;
      settle_here({FinishedStep{id, state::kCancelled, kCancelledType, kCancelledBeforeStart}});
      return CancelResult::kCancelled;
    });
  }

  std::vector<std::string> enqueue_workflow(std::span<const NewJob> jobs,
                                            std::span<const Dependency> deps) override {
    // The one workflow enqueue (session.hpp), as on a connection Django lends.
    check_workflow(jobs, deps);  // refused before anything is sent
    if (jobs.empty()) return {};
    conn_.ensure();
    return in_transaction(
        [&] { return fastq::enqueue_workflow(*pg_session(conn_.raw()), jobs, deps); });
  }

  std::size_t cancel_workflow(const std::string& workflow_id) override {
    // The one workflow cancel (session.hpp), as on a connection Django lends.
    conn_.ensure();
    return fastq::cancel_workflow(*pg_session(conn_.raw()), workflow_id);
  }

  std::size_t release(std::span<const JobRef> jobs) override {
    if (jobs.empty()) return 0;
    const auto j = refs_json(jobs);
    Result r = conn_.exec(
        "fastq_release", pg_sql("release"),
        {j.c_str()});
    return static_cast<std::size_t>(std::atoll(PQgetvalue(r.get(), 0, 0)));
  }

  std::size_t mark_started(std::span<const StartMark> marks) override {
    if (marks.empty()) return 0;
    const Micros sent = now_micros();
    std::string j = "[";
    for (std::size_t i = 0; i < marks.size(); ++i) {
      if (i) j.push_back(',');
      j += "{\"id\":";
      append_json_string(j, marks[i].id);
      j += ",\"token\":" + std::to_string(marks[i].lease_token) +
           ",\"ago_us\":" + std::to_string(std::max<Micros>(0, sent - marks[i].started_at)) +
           "}";
    }
    j.push_back(']');
    Result r = conn_.exec(
        "fastq_mark_started", pg_sql("mark_started"),
        {j.c_str()});
    return static_cast<std::size_t>(std::atoll(PQcmdTuples(r.get())));
  }

  std::size_t interrupt(std::span<const JobRef> jobs) override {
    if (jobs.empty()) return 0;
    const auto j = refs_json(jobs);
    return in_transaction([&] {
      Result r = conn_.exec("fastq_interrupt", pg_sql("interrupt"),
                            {j.c_str(), kInterruptedType, kInterruptedPrefix, kInterruptedSuffix,
                             kMaxUnspentHandbacksText.c_str(), kAttemptsCeilingText.c_str()});
      settle_dead(r.get(), 2, kInterruptedType);
      return static_cast<std::size_t>(std::atoll(PQgetvalue(r.get(), 0, 0)));
    });
  }

  std::size_t release_claim(std::int64_t lease_token) override {
    const auto token = std::to_string(lease_token);
    Result r = conn_.exec(
        "fastq_release_claim", pg_sql("release_claim"),
        {token.c_str()});
    return static_cast<std::size_t>(std::atoll(PQgetvalue(r.get(), 0, 0)));
  }

  std::size_t defer(std::span<const Deferral> jobs) override {
    if (jobs.empty()) return 0;
    std::string j = "[";
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      if (i) j.push_back(',');
      j += "{\"id\":";
      append_json_string(j, jobs[i].id);
      j += ",\"token\":" + std::to_string(jobs[i].lease_token) +
           ",\"run_at_us\":" + std::to_string(jobs[i].run_at) + "}";
    }
    j.push_back(']');
    Result r = conn_.exec(
        "fastq_defer", pg_sql("defer"),
        {j.c_str()});
    return static_cast<std::size_t>(std::atoll(PQcmdTuples(r.get())));
  }

  // One short transaction: lock the bucket row (creating it), compute, write back. The
  // server's clock is the fleet's clock.
  RateGrant acquire_rate(const std::string& key, Micros interval_us, int burst, int want,
                         Micros horizon_us) override {
    conn_.exec_simple("BEGIN");
    try {
      Result r = conn_.exec(
          "fastq_rate_lock", pg_sql("rate_lock"),
          {key.c_str()});
      Micros tat = std::atoll(PQgetvalue(r.get(), 0, 0));
      const Micros now = std::atoll(PQgetvalue(r.get(), 0, 1));
      const RateGrant g = gcra_reserve(tat, now, interval_us, burst, want, horizon_us);
      const auto tat_s = std::to_string(tat);
      conn_.exec("fastq_rate_set", pg_sql("rate_set"),
                 {key.c_str(), tat_s.c_str()});
      conn_.exec_simple("COMMIT");
      return g;
    } catch (const DriverError&) {
      if (PQstatus(conn_.raw()) == CONNECTION_OK) {
        Result rb(PQexec(conn_.raw(), "ROLLBACK"));
      }
      throw;
    }
  }

  bool hold_lease(const std::string& name, const std::string& holder,
                  std::chrono::milliseconds lease) override {
    const auto ms = std::to_string(lease.count());
    Result r = conn_.exec(
        "fastq_hold_lease", pg_sql("hold_lease"),
        {name.c_str(), holder.c_str(), ms.c_str()});
    return PQntuples(r.get()) == 1 && holder == PQgetvalue(r.get(), 0, 0);
  }

  std::optional<Micros> database_now() override {
    Result r = conn_.exec("fastq_database_now", pg_sql("database_now"), {});
    return std::atoll(PQgetvalue(r.get(), 0, 0));
  }

  void drop_lease(const std::string& name, const std::string& holder) override {
    conn_.exec("fastq_drop_lease", pg_sql("drop_lease"),
               {name.c_str(), holder.c_str()});
  }

  std::vector<ScheduleRow> load_schedules() override {
    Result r = conn_.exec(
        "fastq_load_schedules", pg_sql("load_schedules"),
        {});
    std::vector<ScheduleRow> out;
    const int n = PQntuples(r.get());
    for (int i = 0; i < n; ++i) {
      auto v = [&](int c) { return std::string(PQgetvalue(r.get(), i, c)); };
      ScheduleRow row;
      row.name = v(0);
      row.task = v(1);
      row.args = v(2);
      row.kwargs = v(3);
      row.queue = v(4);
      row.priority = std::atoi(v(5).c_str());
      row.cron = v(6);
      row.timezone = v(7);
      row.every = std::atof(v(8).c_str());
      row.catch_up = v(9);
      row.max_instances = std::atoi(v(10).c_str());
      if (!PQgetisnull(r.get(), i, 11)) row.next_run_at = std::atoll(v(11).c_str());
      out.push_back(std::move(row));
    }
    return out;
  }

  FireResult fire_schedule(const ScheduleFire& f) override {
    conn_.exec_simple("BEGIN");
    try {
      auto finish = [&](FireResult r) {
        conn_.exec_simple(r == FireResult::kNotLeader || r == FireResult::kStale ? "ROLLBACK"
                                                                                 : "COMMIT");
        return r;
      };
      {
        // FOR SHARE: a competitor cannot take the lease over until this commits.
        Result r = conn_.exec("fastq_fire_leader", pg_sql("fire_leader"),
                              {f.lease_name.c_str(), f.holder.c_str()});
        if (PQntuples(r.get()) == 0) return finish(FireResult::kNotLeader);
      }
      const auto next = std::to_string(f.next_run_at);
      const auto expect = f.expect_next ? std::to_string(*f.expect_next) : std::string();
      {
        Result r = conn_.exec(
            "fastq_fire_cas", pg_sql("fire_cas"),
            {f.schedule.c_str(), next.c_str(), f.expect_next ? expect.c_str() : nullptr});
        if (std::string_view(PQcmdTuples(r.get())) == "0") return finish(FireResult::kStale);
      }
      if (!f.slot) {
        if (!f.outcome.empty()) {
          conn_.exec("fastq_fire_outcome", pg_sql("fire_outcome"),
                     {f.schedule.c_str(), f.outcome.c_str()});
        }
        return finish(FireResult::kAdvanced);
      }
      bool skip = false;
      if (f.check_overlap && f.max_instances > 0) {
        Result r = conn_.exec(
            "fastq_fire_active", pg_sql("fire_active"),
            {f.schedule.c_str()});
        skip = std::atoll(PQgetvalue(r.get(), 0, 0)) >= f.max_instances;
      }
      const auto slot = std::to_string(*f.slot);
      {
        Result r = conn_.exec(
            "fastq_fire_slot", pg_sql("fire_slot"),
            {f.schedule.c_str(), slot.c_str(), skip ? nullptr : f.job.id.c_str()});
        if (std::string_view(PQcmdTuples(r.get())) == "0") {
          return finish(FireResult::kAlreadyFired);
        }
      }
      if (skip) {
        conn_.exec("fastq_fire_outcome", pg_sql("fire_outcome"),
                   {f.schedule.c_str(), kSkippedRunningOutcome});
        return finish(FireResult::kSkipped);
      }
      enqueue(std::span<const NewJob>(&f.job, 1));
      conn_.exec("fastq_fire_ran", pg_sql("fire_ran"),
                 {f.schedule.c_str(), f.job.id.c_str()});
      return finish(FireResult::kFired);
    } catch (const DriverError&) {
      if (PQstatus(conn_.raw()) == CONNECTION_OK) {
        Result rb(PQexec(conn_.raw(), "ROLLBACK"));
      }
      throw;
    }
  }

  std::size_t prune_schedule_runs(Micros before) override {
    // No slot is older than the earliest time PostgreSQL holds (to_timestamp refuses what
    // lies before it): a cut further back deletes nothing, not an error.
    constexpr Micros kEarliest = -200'000'000'000'000'000;  // about 4370 BC
    const auto b = std::to_string(std::max(before, kEarliest));
    Result r = conn_.exec("fastq_prune_runs", pg_sql("prune_runs"),
                          {b.c_str()});
    return static_cast<std::size_t>(std::atoll(PQcmdTuples(r.get())));
  }

  // Retention: one batch (driver.hpp), a range of the finished log by finished_at from
  // the cursor; what still depends on a job is then probed for those rows only
  // (fastq_schedule_run_job, fastq_poller_mark_job, fastq_active_workflow). The leader's
  // succeeded jobs go a partition at a time (upkeep drops the log's partitions, sized to
  // their retention: log_partitions()), so for them only the default partition is read
  // here.
  PruneResult prune_jobs(const PruneRequest& req) override {
    const bool partitions_drop = req.state == state::kSucceeded && req.keep > 0;
    const std::string log = partitions_drop ? "fastq_finished_default" : "fastq_finished";
    const auto before = std::to_string(req.before);
    // No cursor: from before the oldest.
    const std::string at = req.after_at.empty() ? "-infinity" : req.after_at;
    const std::string id =
        req.after_id.empty() ? "00000000-0000-0000-0000-000000000000" : req.after_id;
    PruneResult out;
    if (req.dry_run) {
      const std::string q = sql::fill_template(pg_sql("prune_count"), {{"log", log}});
      Result r = conn_.exec(partitions_drop ? "fastq_prune_count_default" : "fastq_prune_count",
                            q, {req.state.c_str(), before.c_str(), at.c_str(), id.c_str()});
      out.deleted = static_cast<std::size_t>(std::atoll(PQgetvalue(r.get(), 0, 0)));
      return out;
    }
    const auto limit = std::to_string(std::max(req.limit, 1));
    const std::string q = sql::fill_template(pg_sql("prune_jobs"), {{"log", log}});
    Result r = conn_.exec(
        partitions_drop ? "fastq_prune_jobs_default" : "fastq_prune_jobs", q,
        {req.state.c_str(), before.c_str(), at.c_str(), id.c_str(), limit.c_str()});
    out.deleted = static_cast<std::size_t>(std::atoll(PQgetvalue(r.get(), 0, 0)));
    out.scanned = static_cast<std::size_t>(std::atoll(PQgetvalue(r.get(), 0, 1)));
    if (!PQgetisnull(r.get(), 0, 3)) {
      out.last_at = PQgetvalue(r.get(), 0, 3);
      out.last_id = PQgetvalue(r.get(), 0, 4);
    }
    if (!PQgetisnull(r.get(), 0, 2)) {
      // Steps of finished workflows went: the workflow's rows go with its last step.
      conn_.exec("fastq_prune_workflows", pg_sql("prune_workflows"),
                 {PQgetvalue(r.get(), 0, 2)});
    }
    return out;
  }

  std::size_t upkeep(const RetentionCutoffs& cutoffs, const LogPartitions& parts) override {
    const std::string width = std::to_string(parts.width);
    const std::string ahead = std::to_string(parts.ahead);
    std::string j = "{";
    for (const auto& [state, before] : cutoffs) {
      if (j.size() > 1) j.push_back(',');
      append_json_string(j, state);
      j += ":" + std::to_string(before);
    }
    j.push_back('}');
    Result r = conn_.exec("fastq_upkeep", pg_sql("upkeep"),
                          {width.c_str(), ahead.c_str(), cutoffs.empty() ? nullptr : j.c_str()});
    return static_cast<std::size_t>(std::atoll(PQgetvalue(r.get(), 0, 0)));
  }

  bool reclaims_space() const override { return true; }

  std::size_t reclaim(const ReclaimLimits& limits) override {
    const std::string base = std::to_string(limits.min_dead);
    const std::string factor = std::to_string(limits.scale);
    const std::string every = std::to_string(kAnalyzeEvery);
    Result r = conn_.exec("fastq_reclaim_candidates", pg_sql("reclaim_candidates"),
                          {base.c_str(), factor.c_str(), every.c_str()});
    std::size_t n = 0;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      const bool vacuum = PQgetvalue(r.get(), i, 1)[0] == 't';
      const bool analyze = PQgetvalue(r.get(), i, 2)[0] == 't';
      if (!vacuum && !analyze) continue;
      const std::string& tmpl = !vacuum ? pg_sql("reclaim_analyze")
                                : analyze ? pg_sql("reclaim_vacuum_analyze")
                                          : pg_sql("reclaim_vacuum");
      conn_.exec_simple(
          sql::fill_template(tmpl, {{"table", PQgetvalue(r.get(), i, 0)}}).c_str());
      if (vacuum) ++n;
    }
    return n;
  }

  // Worker registry, on the server's clock. A stopped row is final (a late heartbeat does
  // not bring it back); a lost one that beats again is running again.
  void beat_worker(const WorkerRow& row) override {
    const auto p = worker_params(row);
    conn_.exec("fastq_beat_worker", pg_sql("beat_worker"),
               {p[0].c_str(), p[1].c_str(), p[2].c_str(), p[3].c_str(), p[4].c_str(),
                p[5].c_str(), p[6].c_str(), p[7].c_str(), p[8].c_str(), p[9].c_str(),
                p[10].c_str(), p[11].c_str(), p[12].c_str(), p[13].c_str()});
  }

  void stop_worker(const WorkerRow& row) override {
    auto p = worker_params(row);
    p.erase(p.begin() + 10);  // no lease: a stopped row does not expire
    conn_.exec("fastq_stop_worker", pg_sql("stop_worker"),
               {p[0].c_str(), p[1].c_str(), p[2].c_str(), p[3].c_str(), p[4].c_str(),
                p[5].c_str(), p[6].c_str(), p[7].c_str(), p[8].c_str(), p[9].c_str(),
                p[10].c_str(), p[11].c_str(), p[12].c_str()});
  }

  std::size_t reap_workers(std::chrono::milliseconds keep) override {
    Result lost = conn_.exec("fastq_reap_workers_lost", pg_sql("reap_workers_lost"),
                             {});
    const auto k = std::to_string(keep.count());
    conn_.exec("fastq_reap_workers_gone", pg_sql("reap_workers_gone"),
               {k.c_str()});
    return static_cast<std::size_t>(std::atoll(PQcmdTuples(lost.get())));
  }

  std::vector<WorkerRecord> workers() override {
    Result r = conn_.exec(
        "fastq_workers", pg_sql("workers"),
        {});
    std::vector<WorkerRecord> out;
    const int n = PQntuples(r.get());
    for (int i = 0; i < n; ++i) {
      auto v = [&](int c) { return std::string(PQgetvalue(r.get(), i, c)); };
      auto num = [&](int c) { return std::atoll(PQgetvalue(r.get(), i, c)); };
      WorkerRecord w;
      w.row.id = v(0);
      w.row.kind = v(1);
      w.row.supervisor = v(2);
      w.row.host = v(3);
      w.row.pid = num(4);
      w.row.version = v(5);
      w.row.queues = v(6);
      w.row.tasks = v(7);
      w.row.concurrency = static_cast<int>(num(8));
      w.row.processes = static_cast<int>(num(9));
      w.state = v(10);
      w.started_at = num(11);
      w.last_heartbeat = num(12);
      w.expires_at = num(13);
      if (!PQgetisnull(r.get(), i, 14)) w.stopped_at = num(14);
      w.row.processed = num(15);
      w.row.failed = num(16);
      w.row.rss_bytes = num(17);
      out.push_back(std::move(w));
    }
    return out;
  }

  std::size_t rescue_expired() override {
    // Never started and below the hand-back bound: back unspent; otherwise charged.
    return in_transaction([&] {
      Result r = conn_.exec("fastq_rescue", pg_sql("rescue"),
                            {kWorkerLostType, kWorkerLostPrefix, kWorkerLostSuffix,
                             kMaxUnspentHandbacksText.c_str()});
      settle_dead(r.get(), 2, kWorkerLostType);
      return static_cast<std::size_t>(std::atoll(PQgetvalue(r.get(), 0, 0)));
    });
  }

  std::size_t count_runnable(std::span<const std::string> queues) override {
    const auto arr = pg_text_array(queues);
    Result r = conn_.exec("fastq_count_runnable", pg_sql("count_runnable"),
                          {arr.c_str()});
    return static_cast<std::size_t>(std::atoll(PQgetvalue(r.get(), 0, 0)));
  }

  // The SELECT of a poller's page (limit > 0: the key, and with pending_prefix a flag)
  // or count (limit = 0) over `q`: a poll_* template of the statement home around the
  // query. The query's own parameters are numbered first, ours after them.
  static std::string keyset_sql(const KeysetQuery& q, std::vector<std::optional<std::string>>& params,
                                const std::optional<SqlValue>& after, int limit) {
    const std::string query = native_placeholders(q.sql, true);
    if (limit <= 0) return sql::fill_template(pg_sql("poll_count"), {{"query", query}});
    auto next = [&](std::string value) {
      params.push_back(std::move(value));
      return "$" + std::to_string(params.size());
    };
    const bool flagged = !q.pending_prefix.empty();
    const std::string prefix = flagged ? next(q.pending_prefix) : std::string();
    const std::string from = after ? next(key_text(*after)) : std::string();
    const std::string count = next(std::to_string(limit));
    const std::string& tmpl =
        flagged ? (after ? pg_sql("poll_pending_page_after") : pg_sql("poll_pending_page"))
                : (after ? pg_sql("poll_page_after") : pg_sql("poll_page"));
    return sql::fill_template(tmpl, {{"query", query}, {"key", q.key}, {"prefix", prefix},
                                {"after", from}, {"limit", count}});
  }

  std::vector<SqlValue> select_keys(const KeysetQuery& q, const std::optional<SqlValue>& after,
                                    int limit, std::vector<char>* pending) override {
    auto params = text_params(q.params);
    const std::string sql = keyset_sql(q, params, after, std::max(limit, 1));
    Result r = conn_.exec_dynamic(sql, params, "a poller's query");
    // Integer keys stay integers (the check's argument); anything else is text.
    const Oid type = PQftype(r.get(), 0);
    const bool integer = type == 20 || type == 21 || type == 23;  // int8, int2, int4
    const bool flagged = !q.pending_prefix.empty();
    std::vector<SqlValue> keys;
    keys.reserve(static_cast<std::size_t>(PQntuples(r.get())));
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      if (PQgetisnull(r.get(), i, 0)) {
        throw std::invalid_argument("poller query: a row's key is NULL");
      }
      const char* v = PQgetvalue(r.get(), i, 0);
      if (integer) {
        keys.emplace_back(static_cast<std::int64_t>(std::strtoll(v, nullptr, 10)));
      } else {
        keys.emplace_back(std::string(v, static_cast<std::size_t>(PQgetlength(r.get(), i, 0))));
      }
      if (flagged && pending) pending->push_back(PQgetvalue(r.get(), i, 1)[0] == 't');
    }
    return keys;
  }

  std::int64_t count_rows(const KeysetQuery& q) override {
    auto params = text_params(q.params);
    const std::string sql = keyset_sql(q, params, std::nullopt, 0);
    Result r = conn_.exec_dynamic(sql, params, "a poller's query");
    return std::atoll(PQgetvalue(r.get(), 0, 0));
  }

  std::size_t enqueue_once(const std::string& scope, std::span<const std::string> keys,
                           std::span<const NewJob> jobs) override {
    if (keys.size() != jobs.size()) throw std::invalid_argument("enqueue_once: keys != jobs");
    if (keys.empty()) return 0;
    const auto arr = pg_text_array(keys);
    conn_.exec_simple("BEGIN");
    try {
      // Each mark names its alert job (retention keeps that job while the mark is).
      std::vector<std::string> ids;
      ids.reserve(jobs.size());
      for (const auto& j : jobs) ids.push_back(j.id);
      const auto id_arr = pg_text_array(ids);
      Result r = conn_.exec("fastq_mark", pg_sql("mark"),
                            {scope.c_str(), arr.c_str(), id_arr.c_str()});
      std::set<std::string> fresh;
      for (int i = 0; i < PQntuples(r.get()); ++i) fresh.emplace(PQgetvalue(r.get(), i, 0));
      std::vector<NewJob> todo;
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (fresh.contains(keys[i])) todo.push_back(jobs[i]);
      }
      enqueue(todo);
      conn_.exec_simple("COMMIT");
      return todo.size();
    } catch (const DriverError&) {
      if (PQstatus(conn_.raw()) == CONNECTION_OK) {
        Result rb(PQexec(conn_.raw(), "ROLLBACK"));
      }
      throw;
    }
  }

  std::optional<JobRecord> get(const std::string& id) override {
    conn_.ensure();
    return get_job(*pg_session(conn_.raw()), id);
  }

  int notification_fd() override {
    try {
      if (!listener_) {
        listener_ = std::make_unique<Connection>(conninfo_);
        listener_->exec_simple(pg_sql("listen").c_str());
      } else if (PQstatus(listener_->raw()) != CONNECTION_OK) {
        listener_->ensure();
        listener_->exec_simple(pg_sql("listen").c_str());
      }
    } catch (const DriverError&) {
      return -1;  // the worker falls back to polling and asks again later
    }
    return PQsocket(listener_->raw());
  }

  bool drain_notifications() override {
    if (!listener_) return false;
    PGconn* c = listener_->raw();
    if (!PQconsumeInput(c)) {  // lost: say "maybe work" so the worker polls
      queues_changed_ = queues_changed_limit_ = true;
      return true;
    }
    bool any = false;
    while (PGnotify* n = PQnotifies(c)) {
      if (std::string_view(n->relname) == kChannel) {
        any = true;
        // fastq_queues / the admin: a queue was paused, resumed or its limit changed.
        if (n->extra && std::string_view(n->extra) == "queues") {
          queues_changed_ = queues_changed_limit_ = true;
        }
      }
      PQfreemem(n);
    }
    return any;
  }

  bool queues_changed() override { return std::exchange(queues_changed_, false); }
  // Wakes workers of every process through LISTEN (notification_fd), not in-process.
  void set_wakeup(std::function<void()> /*wakeup*/) override {}

  std::vector<std::string> paused_queues(std::span<const std::string> queues) override {
    const auto arr = pg_text_array(queues);
    Result r = conn_.exec("fastq_paused_queues", pg_sql("paused_queues"),
                          {arr.c_str()});
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) out.emplace_back(PQgetvalue(r.get(), i, 0));
    return out;
  }

 private:
  // Runs `body` in a transaction of its own, unless one is open.
  template <class F>
  auto in_transaction(F&& body) -> decltype(body()) {
    const bool own = PQtransactionStatus(conn_.raw()) != PQTRANS_INTRANS;
    if (own) conn_.exec_simple("BEGIN");
    try {
      auto r = body();
      if (own) conn_.exec_simple("COMMIT");
      return r;
    } catch (...) {
      if (own && PQstatus(conn_.raw()) == CONNECTION_OK) {
        Result rb(PQexec(conn_.raw(), "ROLLBACK"));
      }
      throw;
    }
  }

  // Settles the steps listed in column `col` of row 0 of `r` (a uuid[] of jobs that just
  // went dead, NULL for none).
  void settle_dead(PGresult* r, int col, const char* error_type) {
    if (PQgetisnull(r, 0, col)) return;
    std::vector<FinishedStep> finished;
    std::string arr = PQgetvalue(r, 0, col);  // {uuid,uuid,...}
    std::size_t i = 1;
    while (i < arr.size()) {
      const std::size_t end = std::min(arr.find_first_of(",}", i), arr.size());
      if (end > i) {
        finished.push_back(FinishedStep{arr.substr(i, end - i), state::kDead, error_type, ""});
      }
      i = end + 1;
    }
    settle_here(std::move(finished));
  }

  // Settles the workflow children of `finished` (workflow.hpp), inside the transaction of
  // the write that finished them. Each child row is locked (FOR UPDATE, in id order)
  // before it is read, so concurrent completions of its siblings take turns, and the
  // second one reads what the first wrote.
  void settle_here(std::vector<FinishedStep> finished) {
    if (finished.empty()) return;
    SettleOps ops;
    ops.load = [this](const std::vector<std::string>& parents) {
      const auto arr = pg_text_array(parents);
      Result q = conn_.exec(
          "fastq_settle_load", pg_sql("settle_load"),
          {arr.c_str()});
      std::vector<std::pair<Dependency, WaitingStep>> out;
      for (int i = 0; i < PQntuples(q.get()); ++i) {
        auto v = [&](int c) { return std::string(PQgetvalue(q.get(), i, c)); };
        out.emplace_back(
            Dependency{v(0), v(1), std::atoi(v(2).c_str())},
            WaitingStep{v(1), std::atoi(v(3).c_str()),
                        static_cast<PassResults>(std::clamp(std::atoi(v(4).c_str()), 0, 2)),
                        static_cast<OnFailure>(std::clamp(std::atoi(v(5).c_str()), 0, 2)), v(6)});
      }
      return out;
    };
    ops.parents = [this](const std::vector<std::string>& children) {
      const auto arr = pg_text_array(children);
      Result q = conn_.exec(
          "fastq_settle_parents", pg_sql("settle_parents"),
          {arr.c_str()});
      std::vector<ParentResult> out;
      for (int i = 0; i < PQntuples(q.get()); ++i) {
        auto v = [&](int c) { return std::string(PQgetvalue(q.get(), i, c)); };
        ParentResult p{v(0), v(1), v(2), std::nullopt, v(4), v(5)};
        if (!PQgetisnull(q.get(), i, 3)) p.result = v(3);
        out.push_back(std::move(p));
      }
      return out;
    };
    ops.write = [this](std::span<const StepUpdate> updates) {
      std::string j = "[";
      for (std::size_t i = 0; i < updates.size(); ++i) {
        const auto& u = updates[i];
        if (i) j.push_back(',');
        const bool release = u.decision == StepDecision::kRelease;
        const bool cancel = u.decision == StepDecision::kCancel;
        j += "{\"id\":";
        append_json_string(j, u.id);
        j += ",\"pending\":" + std::to_string(u.parents_pending) + ",\"state\":\"";
        j += release ? state::kQueued : cancel ? state::kCancelled : state::kWaiting;
        j += "\"";
        if (release) {
          j += ",\"args\":";
          append_json_string(j, u.args);
        }
        if (cancel) {
          j += ",\"error_type\":";
          append_json_string(j, kCancelledType);
          j += ",\"error\":";
          append_json_string(j, u.reason);
        }
        j.push_back('}');
      }
      j.push_back(']');
      conn_.exec(
          "fastq_settle_write", pg_sql("settle_write"),
          {j.c_str()});
    };
    settle(std::move(finished), ops);
  }

  std::string conninfo_;
  Connection conn_;
  std::unique_ptr<Connection> listener_;
  // Whether any of claim_queues_ has a concurrency limit, as last read (at most a second
  // old, or older than a 'queues' notification). While false, claims skip limited queues.
  void refresh_limited() {
    const auto now = std::chrono::steady_clock::now();
    if (!limited_stale_ && !queues_changed_limit_ && now - limited_read_ < std::chrono::seconds(1)) {
      return;
    }
    Result r = conn_.exec("fastq_claim_limited", pg_sql("claim_limited"),
                          {queues_array_.c_str()});
    limited_ = PQgetvalue(r.get(), 0, 0)[0] == 't';
    limited_read_ = now;
    limited_stale_ = queues_changed_limit_ = false;
  }

  std::vector<std::string> claim_queues_;
  std::string queues_array_;
  bool limited_ = false;
  bool limited_stale_ = true;
  bool queues_changed_limit_ = false;
  bool queues_changed_ = false;
  std::chrono::steady_clock::time_point limited_read_{};
};

}  // namespace

std::unique_ptr<Driver> make_postgres_driver(const std::string& conninfo) {
  return std::make_unique<PostgresDriver>(conninfo);
}

}  // namespace fastq
