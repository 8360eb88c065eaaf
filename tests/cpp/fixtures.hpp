// Driver fixtures: memory always; SQLite in a temp file; PostgreSQL at FASTQ_TEST_PG_DSN
// (default: host=127.0.0.1 user=postgres dbname=fastq_cpp_test, created if missing).
// Locally a missing PostgreSQL skips its tests; with CI=true it fails them.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <type_traits>

#include "fastq/driver.hpp"
#include "schema.hpp"

namespace fastq::testing {

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

inline std::string pg_dsn() {
  const char* env = std::getenv("FASTQ_TEST_PG_DSN");
  return env ? env : "host=127.0.0.1 user=postgres dbname=fastq_cpp_test";
}

// Runs SQL on a fresh connection; returns an error message or "".
inline std::string pg_exec(const std::string& dsn, const std::string& sql) {
  PGconn* c = PQconnectdb(dsn.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    return msg.empty() ? "connection failed" : msg;
  }
  PQclear(PQexec(c, "SET client_min_messages = warning"));
  PGresult* r = PQexec(c, sql.c_str());
  std::string err;
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
    err = PQresultErrorMessage(r);
  }
  PQclear(r);
  PQfinish(c);
  return err;
}

// Each test process works in its own schema, so ctest may run tests in parallel.
inline std::string pg_schema() { return "fq_test_" + std::to_string(::getpid()); }
inline std::string pg_test_dsn() {
  return pg_dsn() + " options='-csearch_path=" + pg_schema() + "'";
}

// Makes sure the test database exists and holds a fresh schema. "" on success.
inline std::string pg_prepare() {
  std::string err = pg_exec(pg_dsn(), "SELECT 1");
  if (!err.empty()) {
    // Maybe only the database is missing: create it through the maintenance database.
    std::string admin = "host=127.0.0.1 user=postgres dbname=postgres";
    if (const char* a = std::getenv("FASTQ_TEST_PG_ADMIN_DSN")) admin = a;
    pg_exec(admin, "CREATE DATABASE fastq_cpp_test");
    err = pg_exec(pg_dsn(), "SELECT 1");
    if (!err.empty()) return err;
  }
  const auto schema = pg_schema();
  return pg_exec(pg_dsn(), "DROP SCHEMA IF EXISTS " + schema + " CASCADE; CREATE SCHEMA " +
                               schema + "; SET search_path = " + schema + ";" +
                               kPostgresSchema);
}

inline std::string sqlite_prepare(const std::string& path) {
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  std::filesystem::remove_all(path + ".fastq-wake");  // wake.hpp's socket directory
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return "cannot open " + path;
  char* msg = nullptr;
  std::string err;
  if (sqlite3_exec(db, kSqliteSchema, nullptr, nullptr, &msg) != SQLITE_OK) {
    err = msg ? msg : "schema failed";
    sqlite3_free(msg);
  }
  sqlite3_close(db);
  return err;
}

inline std::string temp_sqlite_path(const std::string& tag) {
  std::string safe = tag;
  for (char& c : safe) {
    if (c == '/') c = '_';
  }
  return (std::filesystem::temp_directory_path() /
          ("fastq_test_" + safe + "_" + std::to_string(::getpid()) + ".sqlite3"))
      .string();
}

// Runs SQL on its own connection to the test database of `kind` ("sqlite": the file at
// `sqlite_path`); returns the first column of the first row as text ("" when none).
inline std::string probe_text(const std::string& kind, const std::string& sqlite_path,
                              const std::string& q) {
  std::string v;
  if (kind == "sqlite") {
    sqlite3* db = nullptr;
    sqlite3_open(sqlite_path.c_str(), &db);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, q.c_str(), -1, &st, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db) << " in " << q;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
      v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
  }
  PGconn* c = PQconnectdb(pg_test_dsn().c_str());
  PGresult* r = PQexec(c, q.c_str());
  const auto st = PQresultStatus(r);
  EXPECT_TRUE(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) << PQresultErrorMessage(r);
  if (st == PGRES_TUPLES_OK && PQntuples(r) > 0) v = PQgetvalue(r, 0, 0);
  PQclear(r);
  PQfinish(c);
  return v;
}

// The same as a number (0 when none).
inline long long probe_int(const std::string& kind, const std::string& sqlite_path,
                           const std::string& q) {
  return std::atoll(probe_text(kind, sqlite_path, q).c_str());
}

// Opens a driver by kind ("memory", "sqlite", "postgres") on a fresh schema, or skips
// (fails under CI) when PostgreSQL is not reachable.
#define FASTQ_OPEN_DRIVER(kind, out)                                                     \
  do {                                                                                    \
    if (std::string(kind) == "memory") {                                                  \
      out = ::fastq::make_memory_driver();                                                \
    } else if (std::string(kind) == "sqlite") {                                           \
      const auto path_ = ::fastq::testing::temp_sqlite_path(                              \
          ::testing::UnitTest::GetInstance()->current_test_info()->name());              \
      const auto err_ = ::fastq::testing::sqlite_prepare(path_);                          \
      ASSERT_EQ(err_, "");                                                                \
      out = ::fastq::make_sqlite_driver(path_);                                           \
    } else {                                                                              \
      const auto err_ = ::fastq::testing::pg_prepare();                                   \
      if (!err_.empty()) {                                                                \
        if (::fastq::testing::in_ci()) FAIL() << "PostgreSQL unavailable in CI: " << err_; \
        GTEST_SKIP() << "PostgreSQL unavailable: " << err_;                               \
      }                                                                                   \
      out = ::fastq::make_postgres_driver(::fastq::testing::pg_test_dsn());                    \
    }                                                                                     \
  } while (0)

// The conformance fixture of one store (job_store.hpp, leader_store.hpp, ...): opens the
// driver of the parameter's kind on a fresh schema and hands the test that store's
// interface as `db`, so that a suite speaks only to the store it checks; `driver` is there
// for what only a driver does (connect_another, name). Instantiate it with the kinds that
// offer the store (kAllDrivers, kSqlDrivers).
template <class Store>
class StoreConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    FASTQ_OPEN_DRIVER(GetParam(), driver);
    db = store_of(*driver);
    ASSERT_NE(db, nullptr) << "the " << GetParam() << " driver does not offer this store";
  }

  static Store* store_of(Driver& d) {
    if constexpr (std::is_base_of_v<Store, Driver>) {
      return &d;
    } else {
      return dynamic_cast<Store*>(&d);
    }
  }

  std::unique_ptr<Driver> driver;
  Store* db = nullptr;
};

// The driver kinds a conformance suite runs on.
inline const auto kAllDrivers = ::testing::Values("memory", "sqlite", "postgres");
inline const auto kSqlDrivers = ::testing::Values("sqlite", "postgres");
inline std::string driver_kind_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace fastq::testing
