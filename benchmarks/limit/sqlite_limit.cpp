// The SQLite floor: fastq's own statements (the bulk INSERT of task.map; the claim and
// completion of src/cpp/core/sqlite_driver.cpp) in a tight loop on one connection, with
// no queue logic around them.
//
//   sqlite_limit DB JOBS INSERT_BATCH CLAIM_BATCH
//
// DB must hold the fastq_job table (manage.py migrate). Inserts JOBS jobs INSERT_BATCH at a
// time, then claims and completes CLAIM_BATCH at a time until none is left, and prints
// {"insert_jobs_per_s": ..., "drain_jobs_per_s": ..., "drained": ...} as JSON.
// Built by benchmarks/harness/limit.py: g++ -O2 -std=c++20 sqlite_limit.cpp -lsqlite3
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

void check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db));
  }
}

sqlite3_stmt* prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* s = nullptr;
  check(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), db, sql.c_str());
  return s;
}

// The timestamp format of Django's SQLite backend, as the driver writes it (UTC).
std::string now_text() {
  const auto now = std::chrono::system_clock::now();
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06lld", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(us % 1000000));
  return buf;
}

void bind_text(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s DB JOBS INSERT_BATCH CLAIM_BATCH\n", argv[0]);
    return 2;
  }
  const long jobs = std::atol(argv[2]);
  const long insert_batch = std::atol(argv[3]);
  const long claim_batch = std::atol(argv[4]);
  sqlite3* db = nullptr;
  if (sqlite3_open(argv[1], &db) != SQLITE_OK) return 1;
  try {
    // fastq's pragmas, and no automatic checkpoints: the WAL just grows during the run,
    // so the figure is the statements' own cost, an upper bound (a single connection
    // would otherwise pay a full checkpoint every 1,000 pages, which halves it).
    check(sqlite3_exec(db,
                       "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                       "PRAGMA wal_autocheckpoint=0;",
                       nullptr, nullptr, nullptr),
          db, "pragma");
    // task.map's INSERT on SQLite (django_integration/fastq_django/broker.py,
    // _insert_sqlite): multi-row VALUES, 11 parameters a row. The worker's own enqueue
    // (sqlite_driver.cpp) goes through json_each instead; bulk enqueue uses this one.
    const std::string row = "(?, ?, ?, ?, 'queued', ?, ?, ?, 0, ?, ?, 0, ?, '', '', '', '', ?)";
    auto insert_sql = [&](long rows) {
      std::string sql =
          "INSERT INTO fastq_job (id, task, queue, priority, state, args, kwargs, run_at, "
          "attempts, max_attempts, expires_at, cancel_requested, unique_key, worker, "
          "error_type, error, traceback, created_at) VALUES ";
      for (long i = 0; i < rows; ++i) sql += (i ? ", " : "") + row;
      return sql;
    };
    sqlite3_stmt* enqueue = prepare(db, insert_sql(insert_batch));
    sqlite3_stmt* claim = prepare(
        db,
        "UPDATE fastq_job SET state = 'running', attempts = attempts + 1, "
        "lease_token = ?3, lease_expires_at = ?2, started_at = ?1, worker = ?4 "
        "WHERE id IN (SELECT id FROM (SELECT * FROM (SELECT id, priority, run_at FROM "
        "fastq_job WHERE state = 'queued' AND queue = 'default' AND run_at <= ?1 ORDER BY "
        "priority DESC, run_at, id LIMIT ?5)) ORDER BY priority DESC, run_at, id LIMIT ?5) "
        "RETURNING id, task, queue, args, kwargs, priority, attempts, max_attempts, "
        "expires_at IS NOT NULL AND expires_at < ?1, cancel_requested");
    sqlite3_stmt* complete = prepare(
        db,
        "UPDATE fastq_job SET state = v.state, result = v.result, "
        "error_type = coalesce(v.error_type, ''), error = coalesce(v.error, ''), "
        "traceback = coalesce(v.traceback, ''), "
        "finished_at = CASE WHEN v.state = 'queued' THEN NULL ELSE ?2 END, "
        "run_at = coalesce(v.retry_at, fastq_job.run_at), "
        "lease_token = NULL, lease_expires_at = NULL FROM (SELECT "
        "value->>'id' AS id, value->>'token' AS token, value->>'state' AS state, "
        "value->>'result' AS result, value->>'error_type' AS error_type, "
        "value->>'error' AS error, value->>'traceback' AS traceback, "
        "value->>'retry_at' AS retry_at FROM json_each(?1)) AS v WHERE fastq_job.id = v.id "
        "AND fastq_job.lease_token = v.token");

    std::mt19937_64 rng(std::random_device{}());
    char hex[33];
    const auto started = std::chrono::steady_clock::now();
    for (long done = 0; done < jobs;) {
      const long n = std::min(insert_batch, jobs - done);
      sqlite3_stmt* stmt = n == insert_batch ? enqueue : prepare(db, insert_sql(n));
      const std::string now = now_text();
      int p = 1;
      for (long i = 0; i < n; ++i) {
        std::snprintf(hex, sizeof hex, "%016llx%016llx",
                      static_cast<unsigned long long>(rng()),
                      static_cast<unsigned long long>(rng()));
        bind_text(stmt, p++, hex);
        bind_text(stmt, p++, "bench.tasks.noop");
        bind_text(stmt, p++, "default");
        sqlite3_bind_int64(stmt, p++, 0);
        bind_text(stmt, p++, "[]");
        bind_text(stmt, p++, "{}");
        bind_text(stmt, p++, now);
        sqlite3_bind_int64(stmt, p++, 4);
        sqlite3_bind_null(stmt, p++);
        sqlite3_bind_null(stmt, p++);
        bind_text(stmt, p++, now);
      }
      check(sqlite3_step(stmt), db, "enqueue");
      if (stmt == enqueue) {
        sqlite3_reset(enqueue);
      } else {
        sqlite3_finalize(stmt);
      }
      done += n;
    }
    const double insert_s = seconds_since(started);

    const auto drain_started = std::chrono::steady_clock::now();
    long drained = 0;
    for (long token = 1;; ++token) {
      const std::string now = now_text();
      bind_text(claim, 1, now);
      bind_text(claim, 2, now);
      sqlite3_bind_int64(claim, 3, token);
      bind_text(claim, 4, "limit");
      sqlite3_bind_int64(claim, 5, claim_batch);
      std::string j = "[";
      long n = 0;
      int rc;
      while ((rc = sqlite3_step(claim)) == SQLITE_ROW) {
        if (n++) j += ',';
        j += "{\"id\":\"";
        j += reinterpret_cast<const char*>(sqlite3_column_text(claim, 0));
        j += "\",\"token\":" + std::to_string(token) +
             ",\"state\":\"succeeded\",\"result\":\"null\"}";
      }
      check(rc, db, "claim");
      sqlite3_reset(claim);
      if (n == 0) break;
      j += ']';
      bind_text(complete, 1, j);
      bind_text(complete, 2, now_text());
      check(sqlite3_step(complete), db, "complete");
      sqlite3_reset(complete);
      drained += n;
    }
    const double drain_s = seconds_since(drain_started);
    std::printf("{\"insert_jobs_per_s\": %.1f, \"drain_jobs_per_s\": %.1f, \"drained\": %ld}\n",
                static_cast<double>(jobs) / insert_s, static_cast<double>(drained) / drain_s,
                drained);
    sqlite3_finalize(enqueue);
    sqlite3_finalize(claim);
    sqlite3_finalize(complete);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    sqlite3_close(db);
    return 1;
  }
  sqlite3_close(db);
  return 0;
}
