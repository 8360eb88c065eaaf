// The job operations (fastq/session.hpp) on connections the test owns, as Django lends
// its own: the statements run in the owner's transaction, and the core's drivers see the
// same rows. Each case runs on SQLite and PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>

#include "fastq/session.hpp"
#include "fastq/time.hpp"
#include "fastq/workflow.hpp"
#include "fixtures.hpp"

namespace fastq {
namespace {

NewJob job(std::string task) {
  NewJob j;
  j.id = new_job_id();
  j.task = std::move(task);
  j.args = "[1,\"two\"]";
  j.kwargs = "{\"k\":\"v\\\"q\"}";
  return j;
}

// A connection of the test's own (the "lender") and a session borrowing it.
class Operations : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      path_ = testing::temp_sqlite_path(
          ::testing::UnitTest::GetInstance()->current_test_info()->name());
      ASSERT_EQ(testing::sqlite_prepare(path_), "");
      ASSERT_EQ(sqlite3_open(path_.c_str(), &db_), SQLITE_OK);
      sqlite3_busy_timeout(db_, 5000);
      session_ = sqlite_session(db_);
      driver_ = make_sqlite_driver(path_);
    } else {
      const auto err = testing::pg_prepare();
      if (!err.empty()) {
        if (testing::in_ci()) FAIL() << "PostgreSQL unavailable in CI: " << err;
        GTEST_SKIP() << "PostgreSQL unavailable: " << err;
      }
      pg_ = PQconnectdb(testing::pg_test_dsn().c_str());
      ASSERT_EQ(PQstatus(pg_), CONNECTION_OK);
      session_ = pg_session(pg_);
      driver_ = make_postgres_driver(testing::pg_test_dsn());
    }
  }
  void TearDown() override {
    session_.reset();
    if (db_) sqlite3_close(db_);
    if (pg_) PQfinish(pg_);
  }
  // Runs a transaction-control statement on the lender's connection.
  void lender(const char* sql) {
    if (db_) {
      ASSERT_EQ(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), SQLITE_OK);
    } else {
      PGresult* r = PQexec(pg_, sql);
      ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
      PQclear(r);
    }
  }
  long long count(const std::string& where) {
    return testing::probe_int(GetParam(), path_, "SELECT count(*) FROM fastq_job WHERE " + where);
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  PGconn* pg_ = nullptr;
  std::unique_ptr<Session> session_;
  std::unique_ptr<Driver> driver_;
};

TEST_P(Operations, EnqueuedJobsExistOnlyIfTheLendersTransactionCommits) {
  auto kept = job("t.kept");
  auto dropped = job("t.dropped");
  lender("BEGIN");
  EXPECT_EQ(enqueue_jobs(*session_, std::span(&dropped, 1)), std::vector<std::string>{dropped.id});
  EXPECT_TRUE(get_job(*session_, dropped.id)) << "visible inside the transaction";
  lender("ROLLBACK");
  lender("BEGIN");
  EXPECT_EQ(enqueue_jobs(*session_, std::span(&kept, 1)), std::vector<std::string>{kept.id});
  EXPECT_EQ(count("task = 't.kept'"), 0) << "not visible to others before the commit";
  lender("COMMIT");
  EXPECT_EQ(count("task = 't.kept'"), 1);
  EXPECT_EQ(count("task = 't.dropped'"), 0);
  EXPECT_FALSE(driver_->get(dropped.id));
}

TEST_P(Operations, EveryFieldReachesTheWorker) {
  auto j = job("t.fields");
  j.queue = "other";
  j.priority = 7;
  j.max_attempts = 9;
  j.run_at = now_micros() - 1'000'000;
  j.expires_at = now_micros() + 3'600'000'000;
  j.time_limit = 12.5;
  j.soft_time_limit = 10.25;
  j.rate_key = "acct:1";
  enqueue_jobs(*session_, std::span(&j, 1));
  auto got = driver_->claim(ClaimRequest{{"other"}, 10, std::chrono::milliseconds(30000), "t:1"});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, j.id);
  EXPECT_EQ(got[0].task, "t.fields");
  EXPECT_EQ(got[0].args, j.args);
  EXPECT_EQ(got[0].kwargs, j.kwargs);
  EXPECT_EQ(got[0].priority, 7);
  EXPECT_EQ(got[0].max_attempts, 9);
  EXPECT_DOUBLE_EQ(got[0].time_limit, 12.5);
  EXPECT_DOUBLE_EQ(got[0].soft_time_limit, 10.25);
  EXPECT_EQ(got[0].rate_key, "acct:1");
  EXPECT_FALSE(got[0].expired);
  auto rec = get_job(*session_, j.id);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->state, "running");
  EXPECT_EQ(rec->attempts, 1);
  EXPECT_EQ(rec->queue, "other");
}

TEST_P(Operations, UniqueKeysYieldTheHolderInsideOneTransaction) {
  auto first = job("t");
  first.unique_key = "k:1";
  auto again = job("t");
  again.unique_key = "k:1";
  auto other = job("t");
  other.unique_key = "k:2";
  lender("BEGIN");
  EXPECT_EQ(enqueue_jobs(*session_, std::span(&first, 1)), std::vector<std::string>{first.id});
  std::vector<NewJob> both{again, other};
  EXPECT_EQ(enqueue_jobs(*session_, both), (std::vector<std::string>{first.id, other.id}));
  lender("COMMIT");
  EXPECT_EQ(count("unique_key = 'k:1'"), 1);
  EXPECT_EQ(driver_->enqueue(std::span(&again, 1)), std::vector<std::string>{first.id})
      << "the driver resolves the same key the same way";
}

TEST_P(Operations, CancelAndGetAgreeWithTheDriver) {
  auto queued = job("t");
  auto running = job("t");
  enqueue_jobs(*session_, std::span(&running, 1));
  ASSERT_EQ(driver_->claim(ClaimRequest{{"default"}, 1, std::chrono::milliseconds(30000), "t:1"})
                .size(),
            1u);
  enqueue_jobs(*session_, std::span(&queued, 1));
  lender("BEGIN");
  EXPECT_EQ(cancel_job(*session_, queued.id).result, CancelResult::kCancelled);
  EXPECT_EQ(cancel_job(*session_, running.id).result, CancelResult::kRequested);
  lender("COMMIT");
  EXPECT_EQ(driver_->get(queued.id)->state, "cancelled");
  EXPECT_EQ(driver_->get(queued.id)->error_type, "fastq.Cancelled");
  EXPECT_TRUE(get_job(*session_, running.id)->cancel_requested);
  EXPECT_EQ(cancel_job(*session_, queued.id).result, CancelResult::kFinished);
  EXPECT_EQ(cancel_job(*session_, new_job_id()).result, CancelResult::kNotFound);
  EXPECT_EQ(cancel_job(*session_, "not-a-uuid").result, CancelResult::kNotFound);
  EXPECT_FALSE(get_job(*session_, "not-a-uuid"));
  EXPECT_FALSE(get_job(*session_, new_job_id()));
}

TEST_P(Operations, AWorkflowStepIsLeftToTheDriver) {
  auto parent = job("t");
  auto child = job("t");
  parent.workflow_id = child.workflow_id = new_job_id();
  std::vector<NewJob> jobs{parent, child};
  Dependency dep{parent.id, child.id, 0};
  driver_->enqueue_workflow(jobs, std::span(&dep, 1));
  const auto done = cancel_job(*session_, parent.id);
  EXPECT_TRUE(done.workflow_step);
  EXPECT_EQ(driver_->get(parent.id)->state, "queued") << "left alone";
  EXPECT_EQ(driver_->cancel(parent.id), CancelResult::kCancelled);
  EXPECT_EQ(driver_->get(child.id)->state, "cancelled") << "its dependents settled";
}

TEST_P(Operations, ABatchGoesInWholeInTheLendersTransaction) {
  std::vector<NewJob> jobs;
  for (int i = 0; i < 3; ++i) jobs.push_back(job("t.batch"));
  lender("BEGIN");
  enqueue_batch(*session_, jobs);
  EXPECT_EQ(count("task = 't.batch'"), 0) << "not visible before the lender commits";
  lender("ROLLBACK");
  EXPECT_FALSE(get_job(*session_, jobs[0].id));

  // Tabs, newlines and backslashes in the arguments, a job with fields set next to one
  // without, and no unique key: the row each worker claims is the job as built.
  jobs[0].args = "[\"a\\tb\\nc\\\\d\"]";
  jobs[1].run_at = now_micros() - 1'000'000;
  jobs[1].expires_at = now_micros() + 3'600'000'000;
  jobs[1].time_limit = 12.5;
  jobs[1].soft_time_limit = 10.25;
  jobs[1].rate_key = "acct:1";
  jobs[1].priority = 7;
  jobs[1].max_attempts = 9;
  lender("BEGIN");
  enqueue_batch(*session_, jobs);
  lender("COMMIT");
  EXPECT_EQ(count("task = 't.batch' AND state = 'queued'"), 3);
  auto got = driver_->claim(ClaimRequest{{"default"}, 10, std::chrono::milliseconds(30000), "t:1"});
  ASSERT_EQ(got.size(), 3u);
  for (const auto& c : got) {
    const auto want = std::find_if(jobs.begin(), jobs.end(), [&](const NewJob& j) { return j.id == c.id; });
    ASSERT_NE(want, jobs.end());
    EXPECT_EQ(c.args, want->args);
    EXPECT_EQ(c.kwargs, want->kwargs);
    EXPECT_EQ(c.priority, want->priority);
    EXPECT_EQ(c.max_attempts, want->max_attempts);
    EXPECT_DOUBLE_EQ(c.time_limit, want->time_limit);
    EXPECT_DOUBLE_EQ(c.soft_time_limit, want->soft_time_limit);
    EXPECT_EQ(c.rate_key, want->rate_key);
    EXPECT_FALSE(c.expired);
  }
  EXPECT_EQ(get_job(*session_, jobs[2].id)->state, "running");
}

TEST_P(Operations, AWorkflowIsCancelledInTheLendersTransaction) {
  std::vector<NewJob> steps{job("t"), job("t"), job("t")};
  const auto workflow = new_job_id();
  for (auto& s : steps) s.workflow_id = workflow;
  Dependency dep{steps[1].id, steps[2].id, 0};
  driver_->enqueue_workflow(steps, std::span(&dep, 1));
  auto other = job("t.other");
  other.queue = "elsewhere";
  driver_->enqueue(std::span(&other, 1));
  auto running = driver_->claim(ClaimRequest{{"default"}, 1, std::chrono::milliseconds(30000), "t:1"});
  ASSERT_EQ(running.size(), 1u);
  lender("BEGIN");
  EXPECT_EQ(cancel_workflow(*session_, workflow), 3u);
  lender("ROLLBACK");
  EXPECT_EQ(count("state = 'cancelled'"), 0);
  EXPECT_EQ(cancel_workflow(*session_, workflow), 3u) << "queued, waiting and running steps";
  EXPECT_EQ(cancel_workflow(*session_, "not-a-uuid"), 0u);
  for (const auto& s : steps) {
    const auto rec = driver_->get(s.id);
    if (s.id == running[0].id) {
      EXPECT_EQ(rec->state, "running");
      EXPECT_TRUE(rec->cancel_requested);
    } else {
      EXPECT_EQ(rec->state, "cancelled");
      EXPECT_EQ(rec->error, kWorkflowCancelled);
    }
  }
  EXPECT_EQ(driver_->get(other.id)->state, "queued") << "another job is not touched";
}

INSTANTIATE_TEST_SUITE_P(Sessions, Operations, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

// PostgreSQL: a lender whose own transaction is not begun yet (psycopg 3 before its first
// command) gets one opened by the first statement, and keeps it for its COMMIT.
TEST(PgSession, BeginIfIdleOpensTheLendersTransaction) {
  const auto err = testing::pg_prepare();
  if (!err.empty()) {
    if (testing::in_ci()) FAIL() << err;
    GTEST_SKIP() << err;
  }
  PGconn* c = PQconnectdb(testing::pg_test_dsn().c_str());
  ASSERT_EQ(PQstatus(c), CONNECTION_OK);
  auto s = pg_session(c, /*begin_if_idle=*/true);
  auto j = job("t.begun");
  enqueue_jobs(*s, std::span(&j, 1));
  EXPECT_EQ(PQtransactionStatus(c), PQTRANS_INTRANS);
  EXPECT_EQ(testing::probe_int("postgres", "", "SELECT count(*) FROM fastq_job"), 0);
  PQclear(PQexec(c, "ROLLBACK"));
  EXPECT_FALSE(get_job(*pg_session(c), j.id));
  EXPECT_EQ(PQtransactionStatus(c), PQTRANS_IDLE) << "without begin_if_idle: autocommit";
  PQfinish(c);
}

}  // namespace
}  // namespace fastq
