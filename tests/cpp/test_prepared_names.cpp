// PgSession's named prepared statements: the bookkeeping (PreparedNames, pure) and, on
// PostgreSQL, sessions made per call on one connection, as Django lends psycopg's.
#include <gtest/gtest.h>

#include <set>

#include "fastq/prepared_names.hpp"
#include "fastq/session.hpp"
#include "fastq/time.hpp"
#include "fixtures.hpp"

namespace fastq {
namespace {

using Action = PreparedNames::Action;

int tag;  // addresses to stand for connections
const void* const kConnA = &tag;
const void* const kConnB = reinterpret_cast<const char*>(&tag) + 1;
const void* const kConnC = reinterpret_cast<const char*>(&tag) + 2;

TEST(PreparedNames, FirstRunUnnamedSecondPreparesThenExecutes) {
  PreparedNames names;
  EXPECT_EQ(names.plan(kConnA, 10, "SELECT 1").action, Action::kUnnamed);
  const auto second = names.plan(kConnA, 10, "SELECT 1");
  ASSERT_EQ(second.action, Action::kPrepare);
  EXPECT_TRUE(second.name.starts_with("fastq_")) << second.name;
  // Not prepared until said so (a failed prepare is tried again).
  EXPECT_EQ(names.plan(kConnA, 10, "SELECT 1").action, Action::kPrepare);
  names.prepared(kConnA, 10, "SELECT 1", second.name);
  const auto third = names.plan(kConnA, 10, "SELECT 1");
  EXPECT_EQ(third.action, Action::kExecute);
  EXPECT_EQ(third.name, second.name);
  EXPECT_EQ(names.prepared_count(kConnA), 1u);
}

TEST(PreparedNames, NamesDifferPerStatementAndPerServerSession) {
  PreparedNames names;
  std::set<std::string> seen;
  for (const void* conn : {kConnA, kConnB}) {
    for (const char* sql : {"SELECT 1", "SELECT 2"}) {
      names.plan(conn, 10, sql);
      const auto p = names.plan(conn, 10, sql);
      ASSERT_EQ(p.action, Action::kPrepare);
      EXPECT_TRUE(seen.insert(p.name).second) << p.name;
    }
  }
  EXPECT_EQ(names.sessions(), 2u);
}

TEST(PreparedNames, AnotherBackendOnTheSameConnectionStartsAfresh) {
  PreparedNames names;
  names.plan(kConnA, 10, "SELECT 1");
  const auto old = names.plan(kConnA, 10, "SELECT 1");
  names.prepared(kConnA, 10, "SELECT 1", old.name);
  // A reconnect that reuses the PGconn's address: another backend, nothing prepared.
  EXPECT_EQ(names.plan(kConnA, 11, "SELECT 1").action, Action::kUnnamed);
  const auto again = names.plan(kConnA, 11, "SELECT 1");
  ASSERT_EQ(again.action, Action::kPrepare);
  EXPECT_NE(again.name, old.name);
  // A late prepared() for the old backend changes nothing.
  names.prepared(kConnA, 10, "SELECT 1", old.name);
  EXPECT_EQ(names.prepared_count(kConnA), 0u);
}

TEST(PreparedNames, ForgetPreparesAgainUnderNewNames) {
  PreparedNames names;
  names.plan(kConnA, 10, "SELECT 1");
  const auto p = names.plan(kConnA, 10, "SELECT 1");
  names.prepared(kConnA, 10, "SELECT 1", p.name);
  names.forget(kConnA);
  EXPECT_EQ(names.prepared_count(kConnA), 0u);
  names.plan(kConnA, 10, "SELECT 1");
  const auto q = names.plan(kConnA, 10, "SELECT 1");
  ASSERT_EQ(q.action, Action::kPrepare);
  EXPECT_NE(q.name, p.name) << "the server may still hold the old name";
}

TEST(PreparedNames, BoundedInSessionsAndStatements) {
  PreparedNames names(/*max_sessions=*/2, /*max_statements=*/2);
  names.plan(kConnA, 1, "SELECT 1");
  names.plan(kConnB, 1, "SELECT 1");
  names.plan(kConnA, 1, "SELECT 1");  // A used last
  names.plan(kConnC, 1, "SELECT 1");  // evicts B, the least recently used
  EXPECT_EQ(names.sessions(), 2u);
  EXPECT_EQ(names.plan(kConnA, 1, "SELECT 1").action, Action::kPrepare) << "A was kept";
  EXPECT_EQ(names.plan(kConnB, 1, "SELECT 1").action, Action::kUnnamed) << "B was forgotten";
  // A third distinct statement text: no room, always unnamed.
  names.plan(kConnA, 1, "SELECT 2");
  EXPECT_EQ(names.plan(kConnA, 1, "SELECT 2").action, Action::kPrepare);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(names.plan(kConnA, 1, "SELECT 3").action, Action::kUnnamed);
}

// PostgreSQL: a session per call on one connection, as the Django broker makes them.
class PgPrepared : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto err = testing::pg_prepare();
    if (!err.empty()) {
      if (testing::in_ci()) FAIL() << err;
      GTEST_SKIP() << err;
    }
    conn_ = connect();
  }
  void TearDown() override {
    if (conn_) PQfinish(conn_);
  }
  static PGconn* connect() {
    PGconn* c = PQconnectdb(testing::pg_test_dsn().c_str());
    EXPECT_EQ(PQstatus(c), CONNECTION_OK);
    return c;
  }
  static NewJob job() {
    NewJob j;
    j.id = new_job_id();
    j.task = "t.prepared";
    j.args = "[]";
    j.kwargs = "{}";
    return j;
  }
  static void enqueue(PGconn* c, bool prepare, bool begin_if_idle = false) {
    auto j = job();
    auto s = pg_session(c, begin_if_idle, prepare);
    EXPECT_EQ(enqueue_jobs(*s, std::span(&j, 1)), std::vector<std::string>{j.id});
  }
  static long long fastq_prepared(PGconn* c) {
    PGresult* r = PQexec(c, "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'fastq\\_%'");
    EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
    const long long n = std::atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
  }
  static void exec(PGconn* c, const char* sql) {
    PGresult* r = PQexec(c, sql);
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
  }
  long long jobs() {
    return testing::probe_int("postgres", "", "SELECT count(*) FROM fastq_job WHERE task = 't.prepared'");
  }
  PGconn* conn_ = nullptr;
};

TEST_F(PgPrepared, RepeatedRunsAreExecutedByName) {
  for (int i = 0; i < 3; ++i) enqueue(conn_, /*prepare=*/true);
  EXPECT_EQ(fastq_prepared(conn_), 1);
  EXPECT_EQ(PreparedNames::process().prepared_count(conn_), 1u);
  EXPECT_EQ(jobs(), 3);
}

TEST_F(PgPrepared, WithoutPrepareNothingIsLeftOnTheConnection) {
  for (int i = 0; i < 3; ++i) enqueue(conn_, /*prepare=*/false);
  EXPECT_EQ(fastq_prepared(conn_), 0);
  EXPECT_EQ(jobs(), 3);
}

TEST_F(PgPrepared, PreparedInARolledBackTransactionStaysUsable) {
  exec(conn_, "BEGIN");
  enqueue(conn_, true);
  enqueue(conn_, true);  // prepared here
  exec(conn_, "ROLLBACK");
  EXPECT_EQ(jobs(), 0);
  exec(conn_, "BEGIN");
  enqueue(conn_, true);
  exec(conn_, "COMMIT");
  EXPECT_EQ(jobs(), 1);
}

TEST_F(PgPrepared, DeallocatedStatementsArePreparedAgain) {
  for (int i = 0; i < 2; ++i) enqueue(conn_, true);
  exec(conn_, "DEALLOCATE ALL");
  // Autocommit: the run that finds its statement gone runs unnamed, the next prepares.
  for (int i = 0; i < 3; ++i) enqueue(conn_, true);
  EXPECT_EQ(fastq_prepared(conn_), 1);
  EXPECT_EQ(jobs(), 5);
  // Inside a transaction block the error stands (the block is aborted), once.
  exec(conn_, "DEALLOCATE ALL");
  exec(conn_, "BEGIN");
  auto j = job();
  auto s = pg_session(conn_, false, true);
  EXPECT_THROW(enqueue_jobs(*s, std::span(&j, 1)), DriverError);
  exec(conn_, "ROLLBACK");
  for (int i = 0; i < 2; ++i) enqueue(conn_, true);
  EXPECT_EQ(jobs(), 7);
}

TEST_F(PgPrepared, ANewConnectionPreparesAfresh) {
  for (int i = 0; i < 2; ++i) enqueue(conn_, true);
  PQfinish(conn_);
  // Often at the same address: told apart by its backend.
  conn_ = connect();
  for (int i = 0; i < 3; ++i) enqueue(conn_, true, /*begin_if_idle=*/true);
  exec(conn_, "COMMIT");
  EXPECT_EQ(fastq_prepared(conn_), 1);
  EXPECT_EQ(jobs(), 5);
}

}  // namespace
}  // namespace fastq
