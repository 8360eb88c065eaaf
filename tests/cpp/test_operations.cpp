// The job operations (fastq/session.hpp) on connections the test owns, as Django lends
// its own: the statements run in the owner's transaction, and the core's drivers see the
// same rows. Each case runs on SQLite and PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

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

// A job alone (`.delay()`: PostgreSQL's single-row statement) and the same job in a batch
// (the JSON form) store the same row, every optional field set or left unset.
TEST_P(Operations, AJobAloneIsStoredAsInABatch) {
  auto full = job("t.fields");
  full.queue = "other";
  full.priority = -3;
  full.max_attempts = 9;
  full.run_at = 1'900'000'000'123'456;
  full.expires_at = 1'900'003'600'654'321;
  full.time_limit = 12.5;
  full.soft_time_limit = 10.25;
  full.rate_key = "acct:1";
  full.unique_key = "k:alone";
  full.group_label = "g:1";
  // One optional field set is enough to leave the plain statement (PostgreSQL's
  // enqueue_plain_job) for enqueue_job.
  auto one_set = job("t.one");
  one_set.priority = 7;
  one_set.max_attempts = 2;
  one_set.group_label = "g:one";
  auto upper = job("t.upper");  // an id in capitals
  for (auto& c : upper.id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& model : {job("t.bare"), full, one_set}) {
    auto alone = model;
    auto batched = model;
    batched.id = job("t").id;
    if (!batched.unique_key.empty()) batched.unique_key += ":b";
    auto other = job("t.other");
    EXPECT_EQ(enqueue_jobs(*session_, std::span(&alone, 1)), std::vector<std::string>{alone.id});
    std::vector<NewJob> two{batched, other};
    EXPECT_EQ(enqueue_jobs(*session_, two), (std::vector<std::string>{batched.id, other.id}));
    // run_at too when it is set (unset, it is each statement's own "now").
    const bool sqlite = GetParam() == "sqlite";
    const std::string run_at = model.run_at ? (sqlite ? "run_at" : "run_at::text") : "'now'";
    const std::string cols =
        sqlite ? "task || '|' || queue || '|' || priority || '|' || state || '|' || args || "
                 "'|' || kwargs || '|' || " + run_at + " || '|' || attempts || '|' || "
                 "max_attempts || '|' || coalesce(expires_at, '-') || '|' || "
                 "coalesce(substr(unique_key, 1, 7), '-') || '|' || coalesce(time_limit, '-') "
                 "|| '|' || coalesce(soft_time_limit, '-') || '|' || coalesce(rate_key, '-') "
                 "|| '|' || envelope || '|' || coalesce(group_label, '-')"
               : "concat_ws('|', task, queue, priority, state, args, kwargs, " + run_at +
                     ", attempts, max_attempts, coalesce(expires_at::text, '-'), "
                     "coalesce(left(unique_key, 7), '-'), coalesce(time_limit::text, '-'), "
                     "coalesce(soft_time_limit::text, '-'), coalesce(rate_key, '-'), envelope, "
                     "coalesce(group_label, '-'))";
    const auto row = [&](const std::string& id) {
      return testing::probe_text(GetParam(), path_,
                                 "SELECT " + cols + " FROM fastq_job WHERE id = '" +
                                     (sqlite ? to_hex_id(id) : id) + "'");
    };
    const auto a = row(alone.id);
    EXPECT_EQ(a, row(batched.id));
    EXPECT_NE(a.find("|queued|"), std::string::npos) << a;
    if (model.rate_key.empty()) {
      EXPECT_NE(a.find("|-|-|-|-|"), std::string::npos) << a;
    } else {
      EXPECT_NE(a.find("acct:1"), std::string::npos) << a;
      EXPECT_NE(a.find("12.5"), std::string::npos) << a;
      EXPECT_NE(a.find("k:alone"), std::string::npos) << a;
      EXPECT_TRUE(a.ends_with("|g:1")) << a;
    }
  }
  // The caller's id comes back as the caller wrote it; the row holds it canonically.
  EXPECT_EQ(enqueue_jobs(*session_, std::span(&upper, 1)), std::vector<std::string>{upper.id});
  std::string lower = upper.id;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(count("id = '" + (GetParam() == "sqlite" ? to_hex_id(lower) : lower) + "'"), 1);
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

TEST_P(Operations, AWorkflowGoesInWholeInTheLendersTransaction) {
  // a chord: two members (one with every field set) and a callback receiving their list.
  std::vector<NewJob> steps{job("t.wf"), job("t.wf"), job("t.wf")};
  const auto workflow = new_job_id();
  for (auto& s : steps) s.workflow_id = workflow;
  steps[0].queue = "other";
  steps[0].priority = 7;
  steps[0].max_attempts = 9;
  steps[0].run_at = now_micros() - 1'000'000;
  steps[0].expires_at = now_micros() + 3'600'000'000;
  steps[0].time_limit = 12.5;
  steps[0].soft_time_limit = 10.25;
  steps[0].rate_key = "acct:1";
  steps[0].args = "[\"a\\tb\"]";
  steps[1].queue = "other";
  steps[2].pass_results = PassResults::kList;
  steps[2].on_failure = OnFailure::kRunAnyway;
  const std::vector<Dependency> deps{{steps[1].id, steps[2].id, 1}, {steps[0].id, steps[2].id, 0}};
  const std::vector<WorkflowRecord> records{
      {workflow, workflow, "chord", "a \"named\" chord", {steps[2].id}}};

  lender("BEGIN");
  EXPECT_EQ(enqueue_workflow(*session_, steps, deps, records),
            (std::vector<std::string>{steps[0].id, steps[1].id, steps[2].id}));
  EXPECT_EQ(get_job(*session_, steps[2].id)->state, "waiting") << "visible inside";
  EXPECT_EQ(count("task = 't.wf'"), 0) << "not visible to others before the commit";
  lender("ROLLBACK");
  EXPECT_FALSE(get_job(*session_, steps[0].id));
  EXPECT_EQ(testing::probe_int(GetParam(), path_, "SELECT count(*) FROM fastq_dependency"), 0);
  EXPECT_EQ(testing::probe_int(GetParam(), path_, "SELECT count(*) FROM fastq_workflow"), 0);

  lender("BEGIN");
  enqueue_workflow(*session_, steps, deps, records);
  lender("COMMIT");
  const auto callback = driver_->get(steps[2].id);
  EXPECT_EQ(callback->state, "waiting");
  EXPECT_EQ(callback->parents_pending, 2);
  EXPECT_EQ(callback->workflow_id, workflow);
  EXPECT_EQ(driver_->get(steps[0].id)->state, "queued");
  EXPECT_EQ(driver_->get(steps[0].id)->workflow_id, workflow);
  EXPECT_EQ(testing::probe_int(GetParam(), path_, "SELECT count(*) FROM fastq_dependency"), 2);
  const std::string wid = GetParam() == "sqlite" ? to_hex_id(workflow) : workflow;
  EXPECT_EQ(testing::probe_text(GetParam(), path_,
                                "SELECT kind || '|' || name || '|' || members || '|' || "
                                "CASE WHEN root_id = id THEN 'root' END FROM fastq_workflow "
                                "WHERE id = '" + wid + "'"),
            "chord|a \"named\" chord|[\"" + steps[2].id + "\"]|root");

  // The members run (the first fails), and the callback runs anyway with both, in
  // position order, as a driver-enqueued workflow would.
  auto got = driver_->claim(ClaimRequest{{"other"}, 10, std::chrono::milliseconds(30000), "t:1"});
  ASSERT_EQ(got.size(), 2u);
  for (const auto& c : got) {
    if (c.id != steps[0].id) continue;
    EXPECT_EQ(c.args, steps[0].args);
    EXPECT_EQ(c.priority, 7);
    EXPECT_EQ(c.max_attempts, 9);
    EXPECT_DOUBLE_EQ(c.time_limit, 12.5);
    EXPECT_DOUBLE_EQ(c.soft_time_limit, 10.25);
    EXPECT_EQ(c.rate_key, "acct:1");
    EXPECT_FALSE(c.expired);
  }
  std::vector<Completion> done;
  for (const auto& c : got) {
    Completion x;
    x.id = c.id;
    x.lease_token = c.lease_token;
    x.outcome = c.id == steps[0].id ? Outcome::kFailed : Outcome::kSucceeded;
    x.result = "2";
    x.error_type = "E";
    done.push_back(x);
  }
  EXPECT_EQ(driver_->complete(done), 2u);
  auto last = driver_->claim(ClaimRequest{{"default"}, 10, std::chrono::milliseconds(30000), "t:1"});
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].id, steps[2].id);
  EXPECT_NE(last[0].args.find("__fastq_failed__"), std::string::npos) << last[0].args;
  EXPECT_NE(last[0].args.find(",2]"), std::string::npos) << last[0].args;
}

TEST_P(Operations, AWorkflowTheCheckRefusesWritesNothing) {
  std::vector<NewJob> steps{job("t.bad"), job("t.bad")};
  const std::vector<Dependency> cycle{{steps[0].id, steps[1].id, 0}, {steps[1].id, steps[0].id, 0}};
  EXPECT_THROW(enqueue_workflow(*session_, steps, cycle), std::invalid_argument);
  const std::vector<Dependency> outside{{steps[0].id, new_job_id(), 0}};
  EXPECT_THROW(enqueue_workflow(*session_, steps, outside), std::invalid_argument);
  steps[1].unique_key = "k";
  EXPECT_THROW(enqueue_workflow(*session_, steps, {}), std::invalid_argument);
  EXPECT_EQ(count("task = 't.bad'"), 0);
  EXPECT_TRUE(enqueue_workflow(*session_, {}, {}).empty());
}

// forget_jobs deletes finished jobs with their edges, in the lender's transaction, and
// leaves what is unfinished or still needed, as retention does.
TEST_P(Operations, ForgetDeletesTheFinishedJobsNothingStillNeeds) {
  const bool pg = GetParam() == "postgres";
  std::vector<NewJob> jobs;
  for (const char* t : {"t.ok", "t.bad", "t.queued", "t.running", "t.slot", "t.mark"}) {
    jobs.push_back(job(t));
  }
  enqueue_jobs(*session_, jobs);
  // A workflow: parent -> child (waiting), and a second one whose two steps both ended.
  std::vector<NewJob> flow{job("t.parent"), job("t.child")};
  std::vector<NewJob> done{job("t.done1"), job("t.done2")};
  const auto wf = new_job_id(), wf_done = new_job_id();
  for (auto& s : flow) s.workflow_id = wf;
  for (auto& s : done) s.workflow_id = wf_done;
  enqueue_workflow(*session_, flow, std::vector<Dependency>{{flow[0].id, flow[1].id, 0}},
                   std::vector<WorkflowRecord>{{wf, wf, "chain", "", {flow[1].id}}});
  enqueue_workflow(*session_, done, std::vector<Dependency>{{done[0].id, done[1].id, 0}},
                   std::vector<WorkflowRecord>{{wf_done, wf_done, "chain", "", {done[1].id}}});
  driver_->claim(ClaimRequest{{"default"}, 20, std::chrono::milliseconds(30000), "t:1"});
  const std::string ended = pg ? "now()" : "'2020-01-01 00:00:00.000000'";
  auto end = [&](const std::string& tasks, const char* state) {
    lender(("UPDATE fastq_job SET state = '" + std::string(state) + "', finished_at = " +
            ended + ", lease_token = NULL, lease_expires_at = NULL, result = '1' WHERE task IN (" +
            tasks + ")")
               .c_str());
  };
  end("'t.ok', 't.slot', 't.mark', 't.parent', 't.done1', 't.done2'", "succeeded");
  end("'t.bad'", "failed");
  lender("UPDATE fastq_job SET state = 'queued', lease_token = NULL, lease_expires_at = NULL, "
         "worker = '' WHERE task = 't.queued'");
  auto stored = [&](const std::string& id) { return pg ? id : to_hex_id(id); };
  const std::string now = pg ? "now()" : "'2020-01-01 00:00:00.000000'";
  lender(("INSERT INTO fastq_schedule_run (schedule, slot, job_id, created_at) VALUES ('s', " +
          now + ", '" + stored(jobs[4].id) + "', " + now + ")")
             .c_str());
  lender(("INSERT INTO fastq_poller_mark (poller, key, created_at, job_id) VALUES ('p', 'k', " +
          now + ", '" + stored(jobs[5].id) + "')")
             .c_str());

  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.id);
  for (const auto& j : flow) ids.push_back(j.id);
  for (const auto& j : done) ids.push_back(j.id);
  for (const char* hostile : {"not-a-uuid", "'); DELETE FROM fastq_job; --", "{\"a\",\"b\"}", "",
                              "00000000-0000-0000-0000-00000000000g"}) {
    ids.emplace_back(hostile);
  }
  ids.push_back(new_job_id());
  auto edges = [&] {
    return testing::probe_int(GetParam(), path_, "SELECT count(*) FROM fastq_dependency");
  };
  auto flows = [&] {
    return testing::probe_int(GetParam(), path_, "SELECT count(*) FROM fastq_workflow");
  };
  ASSERT_EQ(count("1 = 1"), 10);
  ASSERT_EQ(edges(), 2);
  lender("BEGIN");
  EXPECT_EQ(forget_jobs(*session_, ids), 4u);  // ok, bad, done1, done2
  lender("ROLLBACK");
  EXPECT_EQ(count("1 = 1"), 10) << "rolled back with the lender";
  lender("BEGIN");
  EXPECT_EQ(forget_jobs(*session_, ids), 4u);
  lender("COMMIT");
  for (const auto* gone : {&jobs[0], &jobs[1], &done[0], &done[1]}) {
    EXPECT_FALSE(get_job(*session_, gone->id)) << gone->task;
  }
  for (const auto* kept : {&jobs[2], &jobs[3], &jobs[4], &jobs[5], &flow[0], &flow[1]}) {
    EXPECT_TRUE(get_job(*session_, kept->id)) << kept->task;
  }
  EXPECT_EQ(edges(), 1) << "the finished workflow's edge went with its steps";
  EXPECT_EQ(flows(), 1) << "and its record with its last step";
  EXPECT_EQ(forget_jobs(*session_, ids), 0u);
  EXPECT_EQ(forget_jobs(*session_, {}), 0u);
  // The child ends: nothing needs the parent any more.
  end("'t.child'", "succeeded");
  EXPECT_EQ(forget_jobs(*session_, std::vector<std::string>{flow[0].id, flow[1].id}), 2u);
  EXPECT_EQ(edges(), 0);
  EXPECT_EQ(flows(), 0);
}

// relabel_jobs labels (or clears) jobs wherever they are, in the lender's transaction.
TEST_P(Operations, RelabelReachesQueuedAndFinishedJobs) {
  std::vector<NewJob> jobs{job("t.queued"), job("t.done"), job("t.other")};
  for (auto& j : jobs) j.group_label = "g";
  jobs[1].priority = 5;  // the one the claim takes, and then finishes
  enqueue_jobs(*session_, jobs);
  driver_->claim(ClaimRequest{{"default"}, 1, std::chrono::milliseconds(30000), "t:1"});
  lender((std::string("UPDATE fastq_job SET state = 'succeeded', finished_at = ") +
          (GetParam() == "postgres" ? "now()" : "'2020-01-01 00:00:00.000000'") +
          ", lease_token = NULL, lease_expires_at = NULL WHERE state = 'running'")
             .c_str());
  const std::vector<std::string> ids{jobs[0].id, jobs[1].id, "not-a-uuid", new_job_id()};
  const std::string hostile = "h\"'";
  const std::string is_hostile = "group_label = 'h\"'''";
  lender("BEGIN");
  EXPECT_EQ(relabel_jobs(*session_, ids, hostile), 2u);
  lender("ROLLBACK");
  EXPECT_EQ(count("group_label = 'g'"), 3);
  EXPECT_EQ(relabel_jobs(*session_, ids, hostile), 2u);
  EXPECT_EQ(count(is_hostile), 2);
  EXPECT_EQ(count("state = 'succeeded' AND " + is_hostile), 1);
  EXPECT_EQ(relabel_jobs(*session_, ids, ""), 2u);
  EXPECT_EQ(count("group_label IS NULL"), 2);
  EXPECT_EQ(count("group_label = 'g'"), 1) << "the job not named keeps its label";
  EXPECT_EQ(relabel_jobs(*session_, {}, "x"), 0u);
}

// record_finished stores a run made outside the queue as finished, in the lender's
// transaction, its texts made storable; set_custom_state reaches a job wherever it is.
TEST_P(Operations, ARunOutsideTheQueueIsStoredFinishedAndACustomStateReachesAnyJob) {
  const Micros now = now_micros();
  FinishedJob ok;
  ok.job = job("t.sync");
  ok.job.group_label = "g";
  ok.state = "succeeded";
  ok.result = "{\"a\":1}";
  ok.started_at = now - 2'000'000;
  ok.finished_at = now;
  FinishedJob bad;
  bad.job = job("t.sync");
  bad.state = "failed";
  bad.error_type = "ValueError";
  bad.error = std::string("nul\0here \xff", 10);
  bad.traceback = "tb";
  bad.started_at = bad.finished_at = now;
  lender("BEGIN");
  record_finished(*session_, ok);
  record_finished(*session_, bad);
  lender("ROLLBACK");
  EXPECT_EQ(count("1 = 1"), 0) << "rolled back with the lender";
  record_finished(*session_, ok);
  record_finished(*session_, bad);
  const auto a = get_job(*session_, ok.job.id);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state, "succeeded");
  EXPECT_EQ(a->attempts, 1);
  EXPECT_EQ(a->result, std::optional<std::string>("{\"a\":1}"));
  EXPECT_EQ(count("group_label = 'g' AND started_at < finished_at"), 1);
  const auto b = get_job(*session_, bad.job.id);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->state, "failed");
  EXPECT_EQ(b->error_type, "ValueError");
  EXPECT_EQ(b->error.find('\0'), std::string::npos) << "NUL made storable";
  EXPECT_NE(b->error.find("here"), std::string::npos);
  EXPECT_FALSE(b->result);
  FinishedJob running = ok;
  running.job.id = new_job_id();
  running.state = "running";
  EXPECT_THROW(record_finished(*session_, running), std::invalid_argument);
  running.state = "failed";
  running.job.id = "'); DROP TABLE fastq_job; --";
  EXPECT_THROW(record_finished(*session_, running), std::invalid_argument);
  EXPECT_EQ(count("1 = 1"), 2);

  auto queued = job("t.queued");
  enqueue_jobs(*session_, std::span(&queued, 1));
  EXPECT_TRUE(set_custom_state(*session_, queued.id, "{\"state\":\"PROGRESS\"}"));
  EXPECT_TRUE(set_custom_state(*session_, ok.job.id, "{\"state\":\"DONE'\"}"));
  EXPECT_FALSE(set_custom_state(*session_, new_job_id(), "{}"));
  EXPECT_FALSE(set_custom_state(*session_, "not-a-uuid", "{}"));
  EXPECT_EQ(count("custom_state = '{\"state\":\"PROGRESS\"}' AND state = 'queued'"), 1);
  EXPECT_EQ(count("custom_state = '{\"state\":\"DONE''\"}' AND state = 'succeeded'"), 1);
}

// write_attempt_log writes a running job's log only under its own lease token (none
// asked: any running job), in the lender's transaction; the text is made storable whole.
TEST_P(Operations, AnAttemptLogIsWrittenOnlyUnderTheRunningJobsLease) {
  auto a = job("t.log");
  auto b = job("t.log");
  auto queued = job("t.queued");
  enqueue_jobs(*session_, std::span(&a, 1));
  enqueue_jobs(*session_, std::span(&b, 1));
  auto got = driver_->claim(ClaimRequest{{"default"}, 2, std::chrono::milliseconds(30000), "t:1"});
  ASSERT_EQ(got.size(), 2u);
  enqueue_jobs(*session_, std::span(&queued, 1));
  std::int64_t token = 0;
  for (const auto& c : got) {
    if (c.id == a.id) token = c.lease_token;
  }
  ASSERT_NE(token, 0);
  const bool sqlite = GetParam() == "sqlite";
  auto stored = [&](const std::string& id) {
    return testing::probe_text(
        GetParam(), path_,
        "SELECT COALESCE(attempt_log, '<none>') FROM fastq_job WHERE id = '" +
            (sqlite ? to_hex_id(id) : id) + "'");
  };
  const std::string log = "[{\"attempt\":1,\"error\":\"bad 'quote'\"}]";

  lender("BEGIN");
  EXPECT_TRUE(write_attempt_log(*session_, a.id, token, log));
  lender("ROLLBACK");
  EXPECT_EQ(stored(a.id), "<none>") << "rolled back with the lender";

  EXPECT_FALSE(write_attempt_log(*session_, a.id, token + 1, "[\"fenced\"]"));
  EXPECT_EQ(stored(a.id), "<none>") << "another lease's token writes nothing";
  EXPECT_TRUE(write_attempt_log(*session_, a.id, token, log));
  EXPECT_EQ(stored(a.id), log);
  EXPECT_TRUE(write_attempt_log(*session_, b.id, std::nullopt, "[]")) << "no token: any";
  EXPECT_EQ(stored(b.id), "[]");
  EXPECT_FALSE(write_attempt_log(*session_, queued.id, std::nullopt, "[\"q\"]"));
  EXPECT_EQ(stored(queued.id), "<none>") << "not running: not written";
  EXPECT_FALSE(write_attempt_log(*session_, new_job_id(), std::nullopt, "[]"));
  EXPECT_FALSE(write_attempt_log(*session_, "'); DROP TABLE fastq_job; --", std::nullopt, "[]"));

  // A NUL and a byte that is not UTF-8 cannot fail the statement (PostgreSQL's text
  // holds neither); the JSON is repaired, not cut.
  const std::string hostile("[\"nul\0here \xff end\"]", 18);
  EXPECT_TRUE(write_attempt_log(*session_, a.id, token, hostile));
  const std::string text = stored(a.id);
  EXPECT_EQ(text.find('\0'), std::string::npos);
  EXPECT_EQ(text.front(), '[');
  EXPECT_EQ(text.substr(text.size() - 6), " end\"]") << text;

  // Finished: no longer the worker's to write.
  Completion done;
  done.id = a.id;
  done.lease_token = token;
  done.outcome = Outcome::kSucceeded;
  done.result = "1";
  ASSERT_EQ(driver_->complete(std::span(&done, 1)), 1u);
  EXPECT_FALSE(write_attempt_log(*session_, a.id, token, "[\"late\"]"));
  EXPECT_EQ(stored(a.id), text);
}

// record_schedule_run records a Run now as the scheduler records a fire: a slot row naming
// the job and the schedule's last run; a slot already taken moves to the next microsecond.
TEST_P(Operations, ARunNowIsRecordedInAFreeSlotOfItsSchedule) {
  const bool sqlite = GetParam() == "sqlite";
  auto probe = [&](const std::string& q) { return testing::probe_int(GetParam(), path_, q); };
  auto at = [&](Micros t) {
    return sqlite ? "'" + format_utc(t) + "'"
                  : "timestamptz 'epoch' + " + std::to_string(t) + " * interval '1 microsecond'";
  };
  auto stored_id = [&](const std::string& id) { return sqlite ? to_hex_id(id) : id; };
  lender("INSERT INTO fastq_schedule (name, task) VALUES ('s', 't.s'), ('other', 't.o')");
  const Micros t = 1'900'000'000'123'456;
  auto j = job("t.s");
  enqueue_jobs(*session_, std::span(&j, 1));

  lender("BEGIN");
  EXPECT_EQ(record_schedule_run(*session_, "s", j.id, t), t);
  lender("ROLLBACK");
  EXPECT_EQ(probe("SELECT count(*) FROM fastq_schedule_run"), 0) << "rolled back with the lender";
  EXPECT_EQ(probe("SELECT count(*) FROM fastq_schedule WHERE last_run_at IS NOT NULL"), 0);

  EXPECT_EQ(record_schedule_run(*session_, "s", j.id, t), t);
  EXPECT_EQ(probe("SELECT count(*) FROM fastq_schedule_run WHERE schedule = 's' AND slot = " +
                  at(t) + " AND job_id = '" + stored_id(j.id) + "'"),
            1);
  EXPECT_EQ(probe("SELECT count(*) FROM fastq_schedule WHERE name = 's' AND last_outcome = "
                  "'queued' AND last_run_at IS NOT NULL AND last_job_id = '" +
                  stored_id(j.id) + "'"),
            1);
  EXPECT_EQ(probe("SELECT count(*) FROM fastq_schedule WHERE name = 'other' AND "
                  "last_run_at IS NULL AND last_outcome = ''"),
            1);
  // A second Run now of the same instant, and one whose instant the scheduler fired (its
  // fire_slot row, skipped or not): each takes the next free microsecond.
  auto k = job("t.s");
  EXPECT_EQ(record_schedule_run(*session_, "s", k.id, t), t + 1);
  lender(("INSERT INTO fastq_schedule_run (schedule, slot, job_id, created_at) VALUES ('s', " +
          at(t + 2) + ", NULL, " + at(t) + ")")
             .c_str());
  EXPECT_EQ(record_schedule_run(*session_, "s", k.id, t), t + 3);
  EXPECT_EQ(record_schedule_run(*session_, "other", k.id, t), t) << "slots are per schedule";
  EXPECT_EQ(probe("SELECT count(*) FROM fastq_schedule_run WHERE schedule = 's' AND slot = " +
                  at(t + 3) + " AND job_id = '" + stored_id(k.id) + "'"),
            1);
  EXPECT_EQ(probe("SELECT count(*) FROM fastq_schedule WHERE last_job_id = '" + stored_id(k.id) +
                  "'"),
            2);
  // Now: the database's clock on PostgreSQL, the core's on SQLite.
  const Micros now = record_schedule_run(*session_, "s", j.id);
  EXPECT_LT(std::llabs(now - now_micros()), 600'000'000LL) << now;
  EXPECT_EQ(probe("SELECT count(*) FROM fastq_schedule_run WHERE slot = " + at(now)), 1);
  EXPECT_THROW(record_schedule_run(*session_, "s", "not-a-uuid", t), std::invalid_argument);
  // No free slot in reach: said, not written.
  const Micros full = t + 1'000'000;
  for (int i = 0; i < kRunNowSlotTries; ++i) {
    ASSERT_EQ(record_schedule_run(*session_, "other", j.id, full), full + i);
  }
  EXPECT_THROW(record_schedule_run(*session_, "other", k.id, full), std::runtime_error);
  EXPECT_EQ(probe("SELECT count(*) FROM fastq_schedule_run"), 6 + kRunNowSlotTries);
}

// set_schedule_outcome writes the last outcome within its varchar(64), cut on a character.
TEST_P(Operations, AScheduleOutcomeIsCutToItsColumnOnACharacter) {
  auto probe = [&](const std::string& q) { return testing::probe_text(GetParam(), path_, q); };
  lender("INSERT INTO fastq_schedule (name, task) VALUES ('p', 't.p')");
  lender("BEGIN");
  set_schedule_outcome(*session_, "p", "polled 9: 9 new, 0 pending");
  lender("ROLLBACK");
  EXPECT_EQ(probe("SELECT last_outcome FROM fastq_schedule WHERE name = 'p'"), "");
  set_schedule_outcome(*session_, "p", "polled 3: 1 new, 2 pending, 0 alerts 'x'");
  EXPECT_EQ(probe("SELECT last_outcome FROM fastq_schedule WHERE name = 'p'"),
            "polled 3: 1 new, 2 pending, 0 alerts 'x'");
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "\xC3\xA9";  // é, two bytes each
  set_schedule_outcome(*session_, "p", long_text);
  const std::string cut = probe("SELECT last_outcome FROM fastq_schedule WHERE name = 'p'");
  EXPECT_EQ(probe("SELECT length(last_outcome) FROM fastq_schedule WHERE name = 'p'"), "64");
  EXPECT_EQ(cut.substr(cut.size() - 3), "\xE2\x80\xA6") << "an ellipsis says it was cut";
  set_schedule_outcome(*session_, "p", std::string("nul\0here", 8));
  EXPECT_EQ(probe("SELECT count(*) FROM fastq_schedule WHERE last_outcome LIKE 'nul%here'"), "1");
  set_schedule_outcome(*session_, "missing", "x");  // no such schedule: nothing to write
  EXPECT_EQ(probe("SELECT count(*) FROM fastq_schedule WHERE last_outcome = 'x'"), "0");
}

// purge_queued deletes queued jobs, by queue or all, never a workflow step or a job that
// is running or finished.
TEST_P(Operations, PurgeDeletesQueuedJobsButNoWorkflowStep) {
  std::vector<NewJob> jobs{job("t.a1"), job("t.a2"), job("t.b"), job("t.c"), job("t.run")};
  jobs[0].queue = jobs[1].queue = "a";
  jobs[2].queue = "b q";
  jobs[3].queue = "c\"";
  enqueue_jobs(*session_, jobs);
  driver_->claim(ClaimRequest{{"default"}, 10, std::chrono::milliseconds(30000), "t:1"});
  std::vector<NewJob> flow{job("t.step")};
  flow[0].workflow_id = new_job_id();
  flow[0].queue = "a";
  enqueue_workflow(*session_, flow, {}, {});
  lender("BEGIN");
  EXPECT_EQ(purge_queued(*session_, std::vector<std::string>{"a", "nope"}), 2u);
  lender("ROLLBACK");
  EXPECT_EQ(count("state = 'queued'"), 5);
  EXPECT_EQ(purge_queued(*session_, std::vector<std::string>{"a", "nope"}), 2u);
  EXPECT_EQ(purge_queued(*session_, std::vector<std::string>{"'); DELETE FROM fastq_job; --"}),
            0u);
  EXPECT_EQ(count("state = 'queued'"), 3);
  EXPECT_EQ(purge_queued(*session_, {}), 2u);  // "b q" and "c\""
  EXPECT_EQ(count("state = 'queued'"), 1) << "the workflow step";
  EXPECT_EQ(count("state = 'running'"), 1);
}

TEST_P(Operations, RetryQueuesAgainOnlyJobsThatEndedUnsuccessfully) {
  std::vector<NewJob> jobs;
  for (const char* t : {"t.failed", "t.dead", "t.expired", "t.cancelled", "t.queued",
                        "t.succeeded", "t.running"}) {
    jobs.push_back(job(t));
  }
  enqueue_jobs(*session_, jobs);
  ASSERT_EQ(driver_->claim(ClaimRequest{{"default"}, 10, std::chrono::milliseconds(30000), "t:1"})
                .size(),
            jobs.size());
  const bool pg = GetParam() == "postgres";
  const std::string ended = pg ? "now()" : "'2020-01-01 00:00:00.000000'";
  for (const char* st : {"failed", "dead", "expired", "cancelled", "succeeded"}) {
    lender(("UPDATE fastq_job SET state = '" + std::string(st) +
            "', attempts = 3, error_type = 'E', error = 'boom', traceback = 'tb', result = "
            "'1', finished_at = " + ended + ", expires_at = " + ended +
            ", cancel_requested = " + (pg ? "true" : "1") + " WHERE task = 't." + st + "'")
               .c_str());
  }
  lender("UPDATE fastq_job SET state = 'queued', lease_token = NULL, lease_expires_at = NULL, "
         "worker = '' WHERE task = 't.queued'");
  if (pg) lender("LISTEN fastq");

  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.id);
  // Not ids at all, and a job that does not exist: skipped.
  for (const char* hostile : {"not-a-uuid", "'); DELETE FROM fastq_job; --",
                              "{\"a\",\"b\"}", "", "00000000-0000-0000-0000-00000000000g"}) {
    ids.emplace_back(hostile);
  }
  ids.push_back(new_job_id());
  lender("BEGIN");
  EXPECT_EQ(retry_jobs(*session_, ids), 4u);
  lender("ROLLBACK");
  EXPECT_EQ(count("state = 'queued'"), 1) << "rolled back with the lender";
  lender("BEGIN");
  EXPECT_EQ(retry_jobs(*session_, ids), 4u);
  lender("COMMIT");
  if (pg) {
    PQconsumeInput(pg_);
    int woken = 0;
    while (PGnotify* n = PQnotifies(pg_)) {
      woken += std::string(n->relname) == "fastq" && std::string(n->extra) == "retry";
      PQfreemem(n);
    }
    EXPECT_EQ(woken, 1) << "one wake-up at the commit that queued them, none at the rollback";
  }
  for (std::size_t i = 0; i < 4; ++i) {
    const auto rec = driver_->get(jobs[i].id);
    EXPECT_EQ(rec->state, "queued") << jobs[i].task;
    EXPECT_EQ(rec->attempts, 0);
    EXPECT_FALSE(rec->result);
    EXPECT_EQ(rec->error_type, "");
    EXPECT_EQ(rec->error, "");
    EXPECT_EQ(rec->traceback, "");
    EXPECT_FALSE(rec->cancel_requested);
    EXPECT_FALSE(rec->started_at);
  }
  EXPECT_EQ(count("state = 'queued' AND expires_at IS NULL AND finished_at IS NULL AND "
                  "lease_token IS NULL AND lease_expires_at IS NULL AND worker = ''"),
            5);
  EXPECT_EQ(driver_->get(jobs[5].id)->state, "succeeded");
  EXPECT_EQ(driver_->get(jobs[6].id)->state, "running");
  EXPECT_EQ(count("1 = 1"), 7) << "nothing deleted";
  EXPECT_EQ(retry_jobs(*session_, ids), 0u) << "nothing left to retry";
  EXPECT_EQ(retry_jobs(*session_, {}), 0u);
  // The retried jobs run again.
  EXPECT_EQ(driver_->claim(ClaimRequest{{"default"}, 10, std::chrono::milliseconds(30000), "t:1"})
                .size(),
            5u);
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
