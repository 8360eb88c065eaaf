// Sessions on libpq and sqlite3 handles, and the job operations (fastq/session.hpp).
#include "fastq/session.hpp"

#include <dlfcn.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

#include "fastq/bulk.hpp"
#include "fastq/json.hpp"
#include "fastq/outcome.hpp"
#include "fastq/prepared_names.hpp"
#include "fastq/time.hpp"
#include "fastq/workflow.hpp"

namespace fastq {
namespace {

using sql::Dialect;

bool transient_sqlstate(const char* sqlstate) {
  if (!sqlstate) return true;
  const std::string s(sqlstate);
  return s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03" || s == "40001" ||
         s == "40P01" || s == "55P03" || s == "53300";
}

std::string param_text(const SqlParam& p) {
  if (const auto* i = std::get_if<std::int64_t>(&p)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&p)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", *d);
    return buf;
  }
  return std::get<std::string>(p);
}

// The libpq functions a PgSession calls: the core's own libpq, or those of the library
// that opened a borrowed connection (psycopg's wheel bundles a libpq of its own; a PGconn
// is only ever handed to the library that made it).
struct PgApi {
  decltype(&PQstatus) status;
  decltype(&PQtransactionStatus) transaction_status;
  decltype(&PQexec) exec;
  decltype(&PQexecParams) exec_params;
  decltype(&PQprepare) prepare;
  decltype(&PQexecPrepared) exec_prepared;
  decltype(&PQbackendPID) backend_pid;
  decltype(&PQresultStatus) result_status;
  decltype(&PQntuples) ntuples;
  decltype(&PQnfields) nfields;
  decltype(&PQgetisnull) getisnull;
  decltype(&PQgetvalue) getvalue;
  decltype(&PQgetlength) getlength;
  decltype(&PQclear) clear;
  decltype(&PQgetResult) get_result;
  decltype(&PQresultErrorField) result_error_field;
  decltype(&PQresultErrorMessage) result_error_message;
  decltype(&PQerrorMessage) error_message;
  decltype(&PQputCopyData) put_copy_data;
  decltype(&PQputCopyEnd) put_copy_end;
  decltype(&PQisnonblocking) is_nonblocking;
  decltype(&PQsetnonblocking) set_nonblocking;
};

const PgApi kOwnLibpq{&PQstatus,        &PQtransactionStatus, &PQexec,
                      &PQexecParams,    &PQprepare,           &PQexecPrepared,
                      &PQbackendPID,    &PQresultStatus,      &PQntuples,
                      &PQnfields,       &PQgetisnull,         &PQgetvalue,
                      &PQgetlength,     &PQclear,             &PQgetResult,
                      &PQresultErrorField, &PQresultErrorMessage, &PQerrorMessage,
                      &PQputCopyData,   &PQputCopyEnd,        &PQisnonblocking,
                      &PQsetnonblocking};

template <typename F>
void bind_symbol(void* lib, const char* name, F& out, const std::string& path) {
  void* sym = dlsym(lib, name);
  if (!sym) throw DriverError("libpq at '" + path + "' has no " + name, false);
  out = reinterpret_cast<F>(sym);
}

// The functions of the libpq at `path`, which must be loaded already (it opened the
// connection). Looked up once per path.
const PgApi& libpq_at(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<PgApi>> apis;
  std::lock_guard<std::mutex> lock(mu);
  auto& api = apis[path];
  if (api) return *api;
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (!lib) throw DriverError("libpq at '" + path + "' is not loaded in this process", false);
  auto a = std::make_unique<PgApi>();
  bind_symbol(lib, "PQstatus", a->status, path);
  bind_symbol(lib, "PQtransactionStatus", a->transaction_status, path);
  bind_symbol(lib, "PQexec", a->exec, path);
  bind_symbol(lib, "PQexecParams", a->exec_params, path);
  bind_symbol(lib, "PQprepare", a->prepare, path);
  bind_symbol(lib, "PQexecPrepared", a->exec_prepared, path);
  bind_symbol(lib, "PQbackendPID", a->backend_pid, path);
  bind_symbol(lib, "PQresultStatus", a->result_status, path);
  bind_symbol(lib, "PQntuples", a->ntuples, path);
  bind_symbol(lib, "PQnfields", a->nfields, path);
  bind_symbol(lib, "PQgetisnull", a->getisnull, path);
  bind_symbol(lib, "PQgetvalue", a->getvalue, path);
  bind_symbol(lib, "PQgetlength", a->getlength, path);
  bind_symbol(lib, "PQclear", a->clear, path);
  bind_symbol(lib, "PQgetResult", a->get_result, path);
  bind_symbol(lib, "PQresultErrorField", a->result_error_field, path);
  bind_symbol(lib, "PQresultErrorMessage", a->result_error_message, path);
  bind_symbol(lib, "PQerrorMessage", a->error_message, path);
  bind_symbol(lib, "PQputCopyData", a->put_copy_data, path);
  bind_symbol(lib, "PQputCopyEnd", a->put_copy_end, path);
  bind_symbol(lib, "PQisnonblocking", a->is_nonblocking, path);
  bind_symbol(lib, "PQsetnonblocking", a->set_nonblocking, path);
  // The handle stays open (RTLD_NOLOAD took a reference): the functions live on.
  api = std::move(a);
  return *api;
}

// With `prepare`, a statement run a second time on the same server session is prepared
// (named, PreparedNames) and from then on executed by name: the server no longer parses
// and plans it on every call. Without, every statement is unnamed: nothing is left on the
// server session (what a transaction-pooling PgBouncer needs).
class PgSession final : public Session {
 public:
  PgSession(const PgApi& pq, PGconn* conn, bool begin_if_idle, bool prepare)
      : pq_(pq), conn_(conn), begin_if_idle_(begin_if_idle), prepare_(prepare) {}
  Dialect dialect() const override { return Dialect::kPostgres; }

  std::vector<SqlRow> run(const std::string& sql, std::span<const SqlParam> params) override {
    ready();
    std::vector<std::string> texts(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (std::holds_alternative<std::monostate>(params[i])) continue;
      texts[i] = param_text(params[i]);
      values[i] = texts[i].c_str();
    }
    const int n = static_cast<int>(values.size());
    PGresult* r = nullptr;
    bool named = false;
    if (prepare_) {
      auto& names = PreparedNames::process();
      const int pid = pq_.backend_pid(conn_);
      const PreparedNames::Plan plan = names.plan(conn_, pid, sql);
      if (plan.action == PreparedNames::Action::kPrepare) {
        finish(pq_.prepare(conn_, plan.name.c_str(), sql.c_str(), n, nullptr), PGRES_COMMAND_OK,
               sql);
        names.prepared(conn_, pid, sql, plan.name);
      }
      if (plan.action != PreparedNames::Action::kUnnamed) {
        named = true;
        r = pq_.exec_prepared(conn_, plan.name.c_str(), n, values.data(), nullptr, nullptr, 0);
        if (missing_statement(r)) {
          // The server session lost our statements (DEALLOCATE ALL, DISCARD ALL): they are
          // prepared again from the next run. Nothing ran; outside a transaction block the
          // statement runs again unnamed, inside one the error stands (the block is aborted).
          names.forget(conn_);
          if (pq_.transaction_status(conn_) == PQTRANS_IDLE) {
            pq_.clear(r);
            while (PGresult* more = pq_.get_result(conn_)) pq_.clear(more);
            named = false;
          }
        }
      }
    }
    if (!named) {
      r = pq_.exec_params(conn_, sql.c_str(), n, nullptr, values.data(), nullptr, nullptr, 0);
    }
    const auto st = pq_.result_status(r);
    return finish(r, st == PGRES_TUPLES_OK ? PGRES_TUPLES_OK : PGRES_COMMAND_OK, sql);
  }

  void copy_in(const std::string& sql, std::string_view data) override {
    ready();
    // The owner may keep its connection non-blocking (psycopg 3 does): blocking for the
    // duration of the COPY, so that every chunk is sent whole, then as it was.
    struct Blocking {
      const PgApi& pq;
      PGconn* conn;
      int was;
      ~Blocking() {
        if (was == 1) pq.set_nonblocking(conn, 1);
      }
    } blocking{pq_, conn_, pq_.is_nonblocking(conn_)};
    if (blocking.was == 1) pq_.set_nonblocking(conn_, 0);
    // In COPY IN state libpq has no further result to drain: finish() does not wait.
    finish(pq_.exec(conn_, sql.c_str()), PGRES_COPY_IN, sql, /*drain=*/false);
    bool sent = true;
    constexpr std::size_t kChunk = 1 << 20;
    for (std::size_t off = 0; sent && off < data.size(); off += kChunk) {
      const auto n = static_cast<int>(std::min(kChunk, data.size() - off));
      sent = pq_.put_copy_data(conn_, data.data() + off, n) == 1;
    }
    pq_.put_copy_end(conn_, sent ? nullptr : "fastq: sending the COPY data failed");
    finish(pq_.get_result(conn_), PGRES_COMMAND_OK, sql);
  }

 private:
  // A connection that is open, in a transaction when the session begins one.
  void ready() {
    if (pq_.status(conn_) != CONNECTION_OK) {
      throw DriverError(
          "PostgreSQL connection is not open: " + one_line(pq_.error_message(conn_)), true);
    }
    if (begin_if_idle_ && pq_.transaction_status(conn_) == PQTRANS_IDLE) {
      finish(pq_.exec(conn_, "BEGIN"), PGRES_COMMAND_OK, "BEGIN");
    }
  }

  // A result saying the named statement does not exist (SQLSTATE 26000).
  bool missing_statement(PGresult* r) const {
    if (!r || pq_.result_status(r) != PGRES_FATAL_ERROR) return false;
    const char* sqlstate = pq_.result_error_field(r, PG_DIAG_SQLSTATE);
    return sqlstate && std::string_view(sqlstate) == "26000";
  }

  // Reads `r` into rows, clears it and any result still pending (none is left on a
  // connection someone else owns), and throws if its status is not `want`.
  std::vector<SqlRow> finish(PGresult* r, ExecStatusType want, const std::string& what,
                             bool drain = true) {
    std::vector<SqlRow> rows;
    std::string error;
    bool transient = false;
    if (r && pq_.result_status(r) == want) {
      const int n = pq_.ntuples(r), m = pq_.nfields(r);
      rows.reserve(static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) {
        SqlRow row;
        row.reserve(static_cast<std::size_t>(m));
        for (int c = 0; c < m; ++c) {
          if (pq_.getisnull(r, i, c)) {
            row.emplace_back(std::nullopt);
          } else {
            row.emplace_back(std::string(pq_.getvalue(r, i, c),
                                         static_cast<std::size_t>(pq_.getlength(r, i, c))));
          }
        }
        rows.push_back(std::move(row));
      }
    } else {
      const char* sqlstate = r ? pq_.result_error_field(r, PG_DIAG_SQLSTATE) : nullptr;
      error = r ? pq_.result_error_message(r) : "";
      if (error.empty()) error = pq_.error_message(conn_);
      transient = pq_.status(conn_) != CONNECTION_OK || transient_sqlstate(sqlstate);
      if (error.empty()) error = "unexpected result status";
    }
    if (r) pq_.clear(r);
    if (drain || !error.empty()) {
      while (PGresult* more = pq_.get_result(conn_)) pq_.clear(more);
    }
    if (!error.empty()) {
      const std::string head = what.substr(0, std::min<std::size_t>(what.size(), 60));
      throw DriverError("PostgreSQL error in '" + head + "...': " + one_line(error), transient);
    }
    return rows;
  }

  const PgApi& pq_;
  PGconn* conn_;
  bool begin_if_idle_;
  bool prepare_;
};

// Keeps each statement it ran prepared (a handful: those of the statement home), reset
// after every run.
class SqliteSession final : public Session {
 public:
  explicit SqliteSession(sqlite3* db) : db_(db) {}
  ~SqliteSession() override {
    for (auto& [sql, s] : prepared_) sqlite3_finalize(s);
  }
  SqliteSession(const SqliteSession&) = delete;
  SqliteSession& operator=(const SqliteSession&) = delete;
  Dialect dialect() const override { return Dialect::kSqlite; }

  std::vector<SqlRow> run(const std::string& sql, std::span<const SqlParam> params) override {
    sqlite3_stmt*& s = prepared_[sql];
    if (!s && sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &s, nullptr) !=
                  SQLITE_OK) {
      prepared_.erase(sql);
      fail();
    }
    struct Reset {
      sqlite3_stmt* s;
      ~Reset() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
      }
    } reset{s};
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int at = static_cast<int>(i) + 1;
      const auto& p = params[i];
      if (const auto* v = std::get_if<std::int64_t>(&p)) {
        sqlite3_bind_int64(s, at, *v);
      } else if (const auto* d = std::get_if<double>(&p)) {
        sqlite3_bind_double(s, at, *d);
      } else if (const auto* t = std::get_if<std::string>(&p)) {
        sqlite3_bind_text(s, at, t->data(), static_cast<int>(t->size()), SQLITE_TRANSIENT);
      } else {
        sqlite3_bind_null(s, at);
      }
    }
    std::vector<SqlRow> rows;
    for (;;) {
      const int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) fail();
      SqlRow row;
      const int m = sqlite3_column_count(s);
      for (int c = 0; c < m; ++c) {
        if (sqlite3_column_type(s, c) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
        } else {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
          row.emplace_back(std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(s, c))));
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

 private:
  [[noreturn]] void fail() {
    const int code = sqlite3_extended_errcode(db_) & 0xff;
    throw DriverError(std::string("SQLite error: ") + sqlite3_errmsg(db_),
                      code == SQLITE_BUSY || code == SQLITE_LOCKED);
  }
  sqlite3* db_;
  std::map<std::string, sqlite3_stmt*> prepared_;
};

std::vector<std::string> pg_ids(const std::vector<SqlRow>& rows) {
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(r.at(0).value_or(""));
  return out;
}

// A workflow step's own fields, appended to its JSON object when `pending` (each step's
// number of parents, in `jobs` order) is given: the workflow (as `id` writes it), pending,
// pass and on_failure.
void append_step_fields(std::string& j, const NewJob& x, int pending,
                        std::string (*id)(const std::string&)) {
  if (!x.workflow_id.empty()) {
    j += ",\"workflow_id\":";
    append_json_string(j, id(x.workflow_id));
  }
  j += ",\"pending\":" + std::to_string(pending);
  j += ",\"pass\":" + std::to_string(static_cast<int>(x.pass_results));
  j += ",\"on_failure\":" + std::to_string(static_cast<int>(x.on_failure));
}

std::string same_id(const std::string& id) { return id; }

// A JSON member `"key":v` for a positive limit, `"key":"v"` for non-empty text: nothing
// for what is unset, which the statements read as NULL.
void append_real(std::string& j, const char* key, double v) {
  if (v <= 0) return;
  char buf[64];
  std::snprintf(buf, sizeof buf, ",\"%s\":%.17g", key, v);
  j += buf;
}
void append_text(std::string& j, const char* key, const std::string& v) {
  if (v.empty()) return;
  j += ",\"";
  j += key;
  j += "\":";
  append_json_string(j, v);
}

// The members every dialect writes alike: {"id" (as `id` writes it), task, queue,
// priority, args, kwargs (the object is left open).
void append_job_head(std::string& j, const NewJob& x, std::string (*id)(const std::string&)) {
  j += "{\"id\":";
  append_json_string(j, id(x.id));
  j += ",\"task\":";
  append_json_string(j, x.task);
  j += ",\"queue\":";
  append_json_string(j, x.queue);
  j += ",\"priority\":" + std::to_string(x.priority);
  j += ",\"args\":";
  append_json_string(j, x.args);
  j += ",\"kwargs\":";
  append_json_string(j, x.kwargs);
}

// The jobs as the JSON array enqueue_jobs (and, with `pending`, enqueue_workflow_jobs)
// expands with json_to_recordset: times as microseconds.
std::string jobs_json(std::span<const NewJob> jobs, std::span<const int> pending = {}) {
  std::string j = "[";
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const auto& x = jobs[i];
    if (i) j.push_back(',');
    append_job_head(j, x, same_id);
    if (x.run_at) j += ",\"run_at_us\":" + std::to_string(*x.run_at);
    j += ",\"max_attempts\":" + std::to_string(x.max_attempts);
    if (x.expires_at) j += ",\"expires_at_us\":" + std::to_string(*x.expires_at);
    append_text(j, "unique_key", x.unique_key);
    append_real(j, "time_limit", x.time_limit);
    append_real(j, "soft_time_limit", x.soft_time_limit);
    append_text(j, "rate_key", x.rate_key);
    append_text(j, "group_label", x.group_label);
    if (!pending.empty()) append_step_fields(j, x, pending[i], same_id);
    j.push_back('}');
  }
  j.push_back(']');
  return j;
}

// The jobs of a batch as the JSON array SQLite's enqueue_batch (and, with `pending`,
// enqueue_workflow_jobs) expands with json_each: ids as 32 hex digits and times as text,
// as Django stores them; NULL for what is unset.
std::string sqlite_batch_json(std::span<const NewJob> jobs, std::span<const int> pending = {}) {
  std::string j = "[";
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const auto& x = jobs[i];
    if (i) j.push_back(',');
    append_job_head(j, x, to_hex_id);
    if (x.run_at) append_text(j, "run_at", format_utc(*x.run_at));
    j += ",\"max_attempts\":" + std::to_string(x.max_attempts);
    if (x.expires_at) append_text(j, "expires_at", format_utc(*x.expires_at));
    append_text(j, "unique_key", x.unique_key);
    append_real(j, "time_limit", x.time_limit);
    append_real(j, "soft_time_limit", x.soft_time_limit);
    append_text(j, "rate_key", x.rate_key);
    append_text(j, "group_label", x.group_label);
    if (!pending.empty()) append_step_fields(j, x, pending[i], to_hex_id);
    j.push_back('}');
  }
  j.push_back(']');
  return j;
}

// A job enqueue_plain_job stores as enqueue_job would: no unique key, start time,
// expiry, time limit, rate key or group label. (Without a unique key nothing needs the
// ids RETURNING gives: enqueue_jobs hands back the caller's.)
bool is_plain(const NewJob& x) {
  return x.unique_key.empty() && !x.run_at && !x.expires_at && !(x.time_limit > 0) &&
         !(x.soft_time_limit > 0) && x.rate_key.empty() && x.group_label.empty();
}

// Inserts the jobs; returns the ids written (unique-key conflicts skipped).
std::vector<std::string> insert_jobs(Session& session, std::span<const NewJob> jobs) {
  auto opt_text = [](const std::string& s) -> SqlParam {
    return s.empty() ? SqlParam{} : SqlParam{s};
  };
  auto opt_real = [](double d) -> SqlParam { return d > 0 ? SqlParam{d} : SqlParam{}; };
  auto opt_micros = [](const std::optional<Micros>& t) -> SqlParam {
    return t ? SqlParam{std::int64_t{*t}} : SqlParam{};
  };
  if (session.dialect() == Dialect::kPostgres) {
    if (jobs.size() == 1 && is_plain(jobs.front())) {
      // One job with nothing optional set (most `.delay()` calls): the shortest
      // statement, no conflict clause (no key to conflict on) and nothing returned.
      const auto& x = jobs.front();
      const SqlParam params[] = {
          x.id,
          x.task,
          x.queue,
          std::int64_t{x.priority},
          x.args,
          x.kwargs,
          std::int64_t{x.max_attempts},
          std::int64_t{kEnvelopeVersion},
      };
      session.run(sql::statement(Dialect::kPostgres, "enqueue_plain_job"), params);
      return {x.id};
    }
    if (jobs.size() == 1) {
      // One job (every other `.delay()`): typed parameters, a plan a third the cost of
      // the JSON form's when nothing is prepared.
      const auto& x = jobs.front();
      const SqlParam params[] = {
          x.id,
          x.task,
          x.queue,
          std::int64_t{x.priority},
          x.args,
          x.kwargs,
          opt_micros(x.run_at),
          std::int64_t{x.max_attempts},
          opt_micros(x.expires_at),
          opt_text(x.unique_key),
          opt_real(x.time_limit),
          opt_real(x.soft_time_limit),
          opt_text(x.rate_key),
          std::int64_t{kEnvelopeVersion},
          opt_text(x.group_label),
      };
      return pg_ids(session.run(sql::statement(Dialect::kPostgres, "enqueue_job"), params));
    }
    const SqlParam params[] = {jobs_json(jobs), std::int64_t{kEnvelopeVersion}};
    return pg_ids(session.run(sql::statement(Dialect::kPostgres, "enqueue_jobs"), params));
  }
  const std::string& sql = sql::statement(Dialect::kSqlite, "enqueue_job");
  const std::string now = format_utc(now_micros());
  std::vector<std::string> inserted;
  inserted.reserve(jobs.size());
  for (const auto& x : jobs) {
    const SqlParam params[] = {
        to_hex_id(x.id),
        x.task,
        x.queue,
        std::int64_t{x.priority},
        x.args,
        x.kwargs,
        x.run_at ? format_utc(*x.run_at) : now,
        std::int64_t{x.max_attempts},
        x.expires_at ? SqlParam{format_utc(*x.expires_at)} : SqlParam{},
        opt_text(x.unique_key),
        now,
        opt_real(x.time_limit),
        opt_real(x.soft_time_limit),
        opt_text(x.rate_key),
        std::int64_t{kEnvelopeVersion},
        opt_text(x.group_label),
    };
    if (!session.run(sql, params).empty()) inserted.push_back(x.id);
  }
  return inserted;
}

}  // namespace

std::string to_hex_id(const std::string& id) {
  if (!is_uuid_text(id)) return id;
  std::string out;
  out.reserve(32);
  for (char c : id) {
    if (c != '-') out.push_back(static_cast<char>(c >= 'A' && c <= 'F' ? c + 32 : c));
  }
  return out;
}

std::string to_canonical_id(std::string_view hex) {
  // Only Django's own form (32 lowercase hex digits) is rewritten: anything else comes
  // back exactly as stored, so writes about it still match the row.
  const auto lower_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
  if (hex.size() != 32 || !std::all_of(hex.begin(), hex.end(), lower_hex)) {
    return std::string(hex);
  }
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out.push_back('-');
    out.push_back(hex[i]);
  }
  return out;
}

std::unique_ptr<Session> pg_session(pg_conn* conn, bool begin_if_idle, bool prepare) {
  return std::make_unique<PgSession>(kOwnLibpq, conn, begin_if_idle, prepare);
}

std::unique_ptr<Session> pg_session_via(const std::string& libpq_path, pg_conn* conn,
                                        bool begin_if_idle, bool prepare) {
  if (libpq_path.empty()) return pg_session(conn, begin_if_idle, prepare);
  return std::make_unique<PgSession>(libpq_at(libpq_path), conn, begin_if_idle, prepare);
}

std::unique_ptr<Session> sqlite_session(sqlite3* db) { return std::make_unique<SqliteSession>(db); }

std::vector<std::string> enqueue_jobs(Session& session, std::span<const NewJob> jobs) {
  if (jobs.empty()) return {};
  const std::vector<std::string> inserted = insert_jobs(session, jobs);
  const bool unique =
      std::any_of(jobs.begin(), jobs.end(), [](const NewJob& j) { return !j.unique_key.empty(); });
  if (!unique) {
    std::vector<std::string> ids;
    ids.reserve(jobs.size());
    for (const auto& j : jobs) ids.push_back(j.id);
    return ids;
  }
  const Dialect d = session.dialect();
  return resolve_unique(
      jobs, inserted,
      [&](const std::vector<std::string>& keys) {
        const SqlParam params[] = {d == Dialect::kPostgres ? pg_text_array(keys)
                                                           : json_string_array(keys)};
        std::vector<std::pair<std::string, std::string>> out;
        for (const auto& row : session.run(sql::statement(d, "unique_holders"), params)) {
          out.emplace_back(row.at(0).value_or(""), to_canonical_id(row.at(1).value_or("")));
        }
        return out;
      },
      [&](std::span<const NewJob> again) { return enqueue_jobs(session, again); });
}

void Session::copy_in(const std::string& sql, std::string_view) {
  throw DriverError("this session cannot run '" + sql.substr(0, 40) + "...' (COPY)", false);
}

void enqueue_batch(Session& session, std::span<const NewJob> jobs, std::size_t copy_rows) {
  if (jobs.empty()) return;
  copy_rows = std::max<std::size_t>(copy_rows, 1);
  if (session.dialect() == Dialect::kPostgres) {
    const Micros now = now_micros();
    for (std::size_t start = 0; start < jobs.size(); start += copy_rows) {
      const auto part = jobs.subspan(start, std::min(copy_rows, jobs.size() - start));
      const PgCopyBatch copy = pg_copy_batch(part, now);
      session.copy_in(sql::fill_template(sql::statement(Dialect::kPostgres, "copy_jobs"),
                                         {{"columns", copy.columns}}),
                       copy.data);
    }
    return;
  }
  const SqlParam params[] = {sqlite_batch_json(jobs), format_utc(now_micros()),
                             std::int64_t{kEnvelopeVersion}};
  session.run(sql::statement(Dialect::kSqlite, "enqueue_batch"), params);
}

std::optional<JobRecord> get_job(Session& session, const std::string& id) {
  if (!is_uuid_text(id)) return std::nullopt;
  const Dialect d = session.dialect();
  const SqlParam params[] = {d == Dialect::kSqlite ? to_hex_id(id) : id};
  const auto rows = session.run(sql::statement(d, "get_job"), params);
  if (rows.empty()) return std::nullopt;
  const SqlRow& r = rows.front();
  auto text = [&](std::size_t c) { return r.at(c).value_or(""); };
  auto integer = [&](std::size_t c) { return r.at(c) ? std::atoi(r[c]->c_str()) : 0; };
  auto flag = [&](std::size_t c) {
    return r.at(c) && (*r[c] == "t" || *r[c] == "1" || *r[c] == "true" || *r[c] == "True");
  };
  JobRecord rec;
  rec.id = to_canonical_id(text(0));
  rec.task = text(1);
  rec.queue = text(2);
  rec.state = text(3);
  rec.priority = integer(4);
  rec.attempts = integer(5);
  rec.args = text(6);
  rec.kwargs = text(7);
  rec.result = r.at(8);
  rec.error_type = text(9);
  rec.error = text(10);
  rec.traceback = text(11);
  rec.max_attempts = integer(12);
  rec.cancel_requested = flag(13);
  if (r.at(14)) {
    rec.started_at = d == Dialect::kPostgres ? std::optional<Micros>(std::atoll(r[14]->c_str()))
                                             : parse_utc(*r[14]);
  }
  rec.interrupted = integer(15);
  if (r.at(16)) rec.workflow_id = to_canonical_id(*r[16]);
  rec.parents_pending = integer(17);
  return rec;
}

CancelOutcome cancel_job(Session& session, const std::string& id) {
  if (!is_uuid_text(id)) return {};
  const Dialect d = session.dialect();
  if (d == Dialect::kPostgres) {
    const SqlParam params[] = {id, std::string(kCancelledType),
                               std::string(kCancelledBeforeStart)};
    const auto rows = session.run(sql::statement(Dialect::kPostgres, "cancel_job"), params);
    const SqlRow& r = rows.at(0);
    auto count = [&](std::size_t c) { return r.at(c) ? std::atoll(r[c]->c_str()) : 0; };
    if (count(3) > 0) return {CancelResult::kNotFound, true};
    if (count(0) > 0) return {CancelResult::kCancelled, false};
    if (count(1) > 0) return {CancelResult::kRequested, false};
    if (count(2) > 0) return {CancelResult::kFinished, false};
    return {};
  }
  const std::string hex = to_hex_id(id);
  {
    const SqlParam params[] = {hex, format_utc(now_micros()), std::string(kCancelledType),
                               std::string(kCancelledBeforeStart)};
    if (!session.run(sql::statement(Dialect::kSqlite, "cancel_job"), params).empty()) {
      return {CancelResult::kCancelled, false};
    }
  }
  const SqlParam params[] = {hex};
  if (!session.run(sql::statement(Dialect::kSqlite, "cancel_running"), params).empty()) {
    return {CancelResult::kRequested, false};
  }
  const auto rows = session.run(sql::statement(Dialect::kSqlite, "job_is_step"), params);
  if (rows.empty()) return {};
  if (rows.front().at(0).value_or("0") != "0") return {CancelResult::kNotFound, true};
  return {CancelResult::kFinished, false};
}

std::size_t cancel_workflow(Session& session, const std::string& workflow_id) {
  if (!is_uuid_text(workflow_id)) return 0;
  if (session.dialect() == Dialect::kPostgres) {
    const SqlParam params[] = {workflow_id, std::string(kCancelledType),
                               std::string(kWorkflowCancelled)};
    const auto rows = session.run(sql::statement(Dialect::kPostgres, "cancel_workflow"), params);
    const SqlCell& n = rows.at(0).at(0);
    return n ? static_cast<std::size_t>(std::atoll(n->c_str())) : 0;
  }
  const std::string hex = to_hex_id(workflow_id);
  const SqlParam queued[] = {hex, format_utc(now_micros()), std::string(kCancelledType),
                             std::string(kWorkflowCancelled)};
  const SqlParam running[] = {hex};
  return session.run(sql::statement(Dialect::kSqlite, "cancel_workflow_queued"), queued).size() +
         session.run(sql::statement(Dialect::kSqlite, "cancel_workflow_running"), running).size();
}

std::vector<std::string> enqueue_workflow(Session& session, std::span<const NewJob> jobs,
                                          std::span<const Dependency> deps,
                                          std::span<const WorkflowRecord> records) {
  const std::vector<int> pending = check_workflow(jobs, deps);
  if (jobs.empty()) return {};
  const Dialect d = session.dialect();
  const bool pg = d == Dialect::kPostgres;
  const auto id = pg ? same_id : to_hex_id;
  const std::string now = format_utc(now_micros());
  // One statement over a JSON array; SQLite's take now (?2) where PostgreSQL says now().
  auto run = [&](const std::string& statement, std::string json, bool sqlite_now) {
    const SqlParam params[] = {std::move(json), now};
    session.run(statement, std::span(params, !pg && sqlite_now ? 2 : 1));
  };
  if (pg) {
    const SqlParam params[] = {jobs_json(jobs, pending), std::int64_t{kEnvelopeVersion}};
    session.run(sql::statement(d, "enqueue_workflow_jobs"), params);
  } else {
    const SqlParam params[] = {sqlite_batch_json(jobs, pending), now,
                               std::int64_t{kEnvelopeVersion}};
    session.run(sql::statement(d, "enqueue_workflow_jobs"), params);
  }
  if (!deps.empty()) {
    std::map<std::string, const std::string*> workflow_of;
    for (const auto& x : jobs) workflow_of[x.id] = &x.workflow_id;
    std::string e = "[";
    for (std::size_t i = 0; i < deps.size(); ++i) {
      const std::string& wf = *workflow_of.at(deps[i].child);
      e += i ? ",{\"w\":" : "{\"w\":";
      append_json_string(e, id(wf.empty() ? deps[i].child : wf));
      e += ",\"p\":";
      append_json_string(e, id(deps[i].parent));
      e += ",\"c\":";
      append_json_string(e, id(deps[i].child));
      e += ",\"n\":" + std::to_string(deps[i].position) + "}";
    }
    e.push_back(']');
    run(sql::statement(d, "enqueue_workflow_dependencies"), std::move(e), false);
  }
  if (!records.empty()) {
    std::string r = "[";
    for (std::size_t i = 0; i < records.size(); ++i) {
      const auto& w = records[i];
      r += i ? ",{\"id\":" : "{\"id\":";
      append_json_string(r, id(w.id));
      r += ",\"root_id\":";
      append_json_string(r, id(w.root_id));
      r += ",\"kind\":";
      append_json_string(r, w.kind);
      r += ",\"name\":";
      append_json_string(r, w.name);
      r += ",\"members\":";
      append_json_string(r, json_string_array(w.members));
      r.push_back('}');
    }
    r.push_back(']');
    run(sql::statement(d, "enqueue_workflow_records"), std::move(r), true);
  }
  std::vector<std::string> ids;
  ids.reserve(jobs.size());
  for (const auto& x : jobs) ids.push_back(x.id);
  return ids;
}

namespace {
// The ids among `ids` that are UUIDs, in the dialect's stored form.
std::vector<std::string> stored_ids(Dialect d, std::span<const std::string> ids) {
  std::vector<std::string> valid;
  valid.reserve(ids.size());
  for (const auto& id : ids) {
    if (is_uuid_text(id)) valid.push_back(d == Dialect::kSqlite ? to_hex_id(id) : id);
  }
  return valid;
}

std::size_t count_cell(const std::vector<SqlRow>& rows) {
  const SqlCell& n = rows.at(0).at(0);
  return n ? static_cast<std::size_t>(std::atoll(n->c_str())) : 0;
}
}  // namespace

std::size_t retry_jobs(Session& session, std::span<const std::string> ids) {
  const Dialect d = session.dialect();
  const std::vector<std::string> valid = stored_ids(d, ids);
  if (valid.empty()) return 0;
  if (d == Dialect::kPostgres) {
    const SqlParam params[] = {pg_text_array(valid)};
    const auto rows = session.run(sql::statement(d, "retry_jobs"), params);
    const SqlCell& n = rows.at(0).at(0);
    return n ? static_cast<std::size_t>(std::atoll(n->c_str())) : 0;
  }
  const SqlParam params[] = {json_string_array(valid), format_utc(now_micros())};
  return session.run(sql::statement(d, "retry_jobs"), params).size();
}

std::size_t forget_jobs(Session& session, std::span<const std::string> ids) {
  const Dialect d = session.dialect();
  const std::vector<std::string> valid = stored_ids(d, ids);
  if (valid.empty()) return 0;
  if (d == Dialect::kPostgres) {
    const SqlParam params[] = {pg_text_array(valid)};
    const auto rows = session.run(sql::statement(d, "forget_jobs"), params);
    if (const SqlCell& flows = rows.at(0).at(1)) {
      // Steps of finished workflows went: the workflow's rows go with its last step.
      const SqlParam wf[] = {*flows};
      session.run(sql::statement(Dialect::kPostgres, "prune_workflows"), wf);
    }
    return count_cell(rows);
  }
  const SqlParam params[] = {json_string_array(valid)};
  const auto gone = session.run(sql::statement(d, "forget_jobs"), params);
  std::set<std::string> flows;
  for (const auto& row : gone) {
    if (!row.at(1)) continue;
    const SqlParam id[] = {row.at(0).value_or("")};
    session.run(sql::statement(Dialect::kSqlite, "prune_edges_out"), id);
    session.run(sql::statement(Dialect::kSqlite, "prune_edges_in"), id);
    flows.insert(*row.at(1));
  }
  for (const auto& flow : flows) {
    const SqlParam wf[] = {flow};
    session.run(sql::statement(Dialect::kSqlite, "prune_workflow"), wf);
  }
  return gone.size();
}

std::size_t relabel_jobs(Session& session, std::span<const std::string> ids,
                         const std::string& label) {
  const Dialect d = session.dialect();
  const std::vector<std::string> valid = stored_ids(d, ids);
  if (valid.empty()) return 0;
  const SqlParam params[] = {
      d == Dialect::kPostgres ? pg_text_array(valid) : json_string_array(valid),
      label.empty() ? SqlParam{} : SqlParam{label}};
  const auto rows = session.run(sql::statement(d, "relabel_jobs"), params);
  return d == Dialect::kPostgres ? count_cell(rows) : rows.size();
}

void record_finished(Session& session, const FinishedJob& f) {
  if (f.state != state::kSucceeded && f.state != state::kFailed) {
    throw std::invalid_argument("record_finished: state must be succeeded or failed");
  }
  if (!is_uuid_text(f.job.id)) throw std::invalid_argument("record_finished: id is not a UUID");
  // Made storable as a worker's outcome is (outcome.hpp): no NUL or broken UTF-8, bounded.
  Completion c;
  c.outcome = f.state == state::kSucceeded ? Outcome::kSucceeded : Outcome::kFailed;
  c.result = f.result.value_or("null");
  c.error_type = f.error_type;
  c.error = f.error;
  c.traceback = f.traceback;
  sanitize_outcome(c, OutcomeLimits{});
  const Dialect d = session.dialect();
  const bool pg = d == Dialect::kPostgres;
  auto when = [&](Micros t) -> SqlParam {
    return pg ? SqlParam{std::int64_t{t}} : SqlParam{format_utc(t)};
  };
  const std::string stored_state =
      c.outcome == Outcome::kSucceeded ? state::kSucceeded : state::kFailed;
  const SqlParam params[] = {
      pg ? f.job.id : to_hex_id(f.job.id),
      f.job.task,
      f.job.queue,
      std::int64_t{f.job.priority},
      f.job.args,
      f.job.kwargs,
      std::int64_t{f.job.max_attempts},
      stored_state,
      c.outcome == Outcome::kSucceeded ? SqlParam{c.result} : SqlParam{},
      c.error_type,
      c.error,
      c.traceback,
      when(f.started_at),
      when(f.finished_at),
      f.job.group_label.empty() ? SqlParam{} : SqlParam{f.job.group_label},
      std::int64_t{kEnvelopeVersion},
  };
  session.run(sql::statement(d, "record_finished"), params);
}

bool set_custom_state(Session& session, const std::string& id, const std::string& json) {
  if (!is_uuid_text(id)) return false;
  const Dialect d = session.dialect();
  const SqlParam params[] = {d == Dialect::kPostgres ? id : to_hex_id(id), json};
  const auto rows = session.run(sql::statement(d, "set_custom_state"), params);
  return d == Dialect::kPostgres ? count_cell(rows) > 0 : !rows.empty();
}

bool write_attempt_log(Session& session, const std::string& id,
                       std::optional<std::int64_t> lease_token, const std::string& text) {
  if (!is_uuid_text(id)) return false;
  const Dialect d = session.dialect();
  // Repaired, never cut: a JSON text cut short is no longer one (task_errors bounds it).
  const std::string stored = storable_text(text, std::numeric_limits<std::size_t>::max());
  const SqlParam params[] = {
      d == Dialect::kPostgres ? id : to_hex_id(id),
      lease_token ? SqlParam{*lease_token} : SqlParam{},
      stored,
  };
  return !session.run(sql::statement(d, "write_attempt_log"), params).empty();
}

Micros record_schedule_run(Session& session, const std::string& name, const std::string& job_id,
                           std::optional<Micros> at) {
  if (!is_uuid_text(job_id)) {
    throw std::invalid_argument("record_schedule_run: job id is not a UUID");
  }
  const Dialect d = session.dialect();
  const std::string& slot_sql = sql::statement(d, "run_now_slot");
  if (d == Dialect::kPostgres) {
    std::vector<SqlParam> params{name, SqlParam{}, job_id, SqlParam{}};  // $2 NULL: now()
    if (at) params[1] = std::int64_t{*at};
    for (std::int64_t k = 0; k < kRunNowSlotTries; ++k) {
      params[3] = k;
      const auto rows = session.run(slot_sql, params);
      if (rows.empty()) continue;  // taken: the next microsecond
      const SqlParam ran[] = {name, job_id};
      session.run(sql::statement(d, "fire_ran"), ran);
      const SqlCell& slot = rows.at(0).at(0);
      return slot ? std::atoll(slot->c_str()) : 0;
    }
  } else {
    const Micros now = now_micros();
    const Micros first = at.value_or(now);
    const std::string hex = to_hex_id(job_id);
    for (Micros k = 0; k < kRunNowSlotTries; ++k) {
      const SqlParam params[] = {name, format_utc(first + k), hex, format_utc(now)};
      if (session.run(slot_sql, params).empty()) continue;
      const SqlParam ran[] = {name, format_utc(first), hex};
      session.run(sql::statement(d, "fire_ran"), ran);
      return first + k;
    }
  }
  throw std::runtime_error("record_schedule_run: schedule '" + name + "' has no free slot within " +
                           std::to_string(kRunNowSlotTries) + " microseconds of the run's");
}

void set_schedule_outcome(Session& session, const std::string& name,
                          const std::string& outcome) {
  const Dialect d = session.dialect();
  const SqlParam params[] = {name, storable_chars(outcome, 64)};
  session.run(sql::statement(d, "fire_outcome"), params);
}

std::size_t purge_queued(Session& session, std::span<const std::string> queues) {
  const Dialect d = session.dialect();
  SqlParam which;  // NULL: every queue
  if (!queues.empty()) {
    which = d == Dialect::kPostgres ? pg_text_array(queues) : json_string_array(queues);
  }
  const SqlParam params[] = {which};
  const auto rows = session.run(sql::statement(d, "purge_queued"), params);
  return d == Dialect::kPostgres ? count_cell(rows) : rows.size();
}

std::string one_line(std::string msg) {
  for (char& c : msg) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  while (!msg.empty() && msg.back() == ' ') msg.pop_back();
  return msg;
}

std::string pg_text_array(std::span<const std::string> items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    out.push_back('"');
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

}  // namespace fastq
