// The scheduler's leader lease and its fire-each-slot-once transaction, on SQLite and
// PostgreSQL (real databases), plus the memory driver's reference semantics.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "fastq/scheduler.hpp"
#include "fastq/time.hpp"
#include "fixtures.hpp"
#include "memory_tables.hpp"

namespace fastq {
namespace {

using namespace std::chrono_literals;

class SchedulerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    FASTQ_OPEN_DRIVER(GetParam(), a_);
    b_ = a_->connect_another();
    if (GetParam() == "sqlite") {
      path_ = testing::temp_sqlite_path(
          ::testing::UnitTest::GetInstance()->current_test_info()->name());
    }
  }

  long long sql(const std::string& q) { return testing::probe_int(GetParam(), path_, q); }
  std::string text(const std::string& q) { return testing::probe_text(GetParam(), path_, q); }

  SchedulerConfig config(const std::string& holder, std::chrono::milliseconds lease = 15s) {
    SchedulerConfig c;
    c.holder = holder;
    c.lease = lease;
    c.reload = 100ms;
    return c;
  }

  std::unique_ptr<Driver> a_, b_;
  std::string path_;
};

TEST_P(SchedulerTest, LeaseIsHeldByOneHolderAtATime) {
  EXPECT_TRUE(a_->hold_lease("scheduler", "A", 15s));
  EXPECT_FALSE(b_->hold_lease("scheduler", "B", 15s));
  EXPECT_TRUE(a_->hold_lease("scheduler", "A", 15s));  // renewal
  EXPECT_FALSE(b_->hold_lease("scheduler", "B", 15s));
  a_->drop_lease("scheduler", "A");
  EXPECT_TRUE(b_->hold_lease("scheduler", "B", 15s));
  EXPECT_FALSE(a_->hold_lease("scheduler", "A", 15s));
  // Other lease names are independent.
  EXPECT_TRUE(a_->hold_lease("poller", "A", 15s));
}

// The leader vacuums the job store's tables on a thread of its own (Driver::reclaim):
// on PostgreSQL, where completions leave dead rows autovacuum may come late for.
TEST_P(SchedulerTest, TheLeaderReclaimsTheStoresSpaceOnAThreadOfItsOwn) {
  ASSERT_TRUE(a_->reclaims_space());  // PostgreSQL's dead rows, SQLite's write-ahead log
  if (GetParam() != "postgres") return;  // the log: Retention.ReclaimTruncates...
  std::vector<NewJob> jobs;
  for (int i = 0; i < 20'000; ++i) {
    NewJob j;
    j.id = new_job_id();
    j.task = "t";
    jobs.push_back(std::move(j));
  }
  a_->enqueue(jobs);
  for (;;) {  // 20,000 completions: 20,000 dead rows, past the reclaim's floor
    auto claimed = a_->claim(ClaimRequest{{"default"}, 1000, 30s, "t:1"});
    if (claimed.empty()) break;
    std::vector<Completion> cs;
    for (const auto& c : claimed) {
      Completion x;
      x.id = c.id;
      x.lease_token = c.lease_token;
      x.outcome = Outcome::kSucceeded;
      x.result = "null";
      cs.push_back(std::move(x));
    }
    a_->complete(cs);
  }
  Scheduler leader(a_->connect_another(), config("L"));
  leader.start();
  // Statistics reach PostgreSQL's views within seconds; a generous deadline.
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  while (leader.stats().reclaimed == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(leader.stats().leader);
  EXPECT_GE(leader.stats().reclaimed, 1u);
  EXPECT_GE(sql("SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = "
                "'fastq_active'::regclass"),
            1);
  leader.stop();  // joins the reclaimer thread too
}

TEST_P(SchedulerTest, OnlyTheLeaderMarksSilentWorkersLost) {
  WorkerRow silent;
  silent.id = "silent:1";
  silent.host = "h";
  silent.lease_ms = 1;
  a_->beat_worker(silent);
  WorkerRow live = silent;
  live.id = "live:2";
  live.lease_ms = 60000;
  a_->beat_worker(live);
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(b_->hold_lease("scheduler", "other", 15s));  // someone else leads
  Scheduler follower(a_->connect_another(), config("F"));
  follower.step(now_micros());
  EXPECT_EQ(follower.stats().workers_lost, 0u);
  b_->drop_lease("scheduler", "other");
  Scheduler leader(a_->connect_another(), config("L"));
  leader.step(now_micros());
  EXPECT_TRUE(leader.stats().leader);
  EXPECT_EQ(leader.stats().workers_lost, 1u);
  for (const auto& w : a_->workers()) {
    EXPECT_EQ(w.state, w.row.id == "silent:1" ? "lost" : "running") << w.row.id;
  }
}

TEST_P(SchedulerTest, ExpiredLeaseIsTakenOverAndTheOldLeaderIsFencedOff) {
  ASSERT_TRUE(a_->hold_lease("scheduler", "A", 300ms));
  EXPECT_FALSE(b_->hold_lease("scheduler", "B", 300ms));
  std::this_thread::sleep_for(450ms);
  EXPECT_TRUE(b_->hold_lease("scheduler", "B", 15s));
  EXPECT_FALSE(a_->hold_lease("scheduler", "A", 15s));

  sql("INSERT INTO fastq_schedule (name, task, every, enabled, max_instances, catch_up, "
      "source) VALUES ('tick', 'app.tick', 60, true, 1, 'latest', 'code')");
  ScheduleFire f;
  f.lease_name = "scheduler";
  f.holder = "A";
  f.schedule = "tick";
  f.next_run_at = now_micros() + 60'000'000;
  f.slot = now_micros();
  f.job.id = new_job_id();
  f.job.task = "app.tick";
  EXPECT_EQ(a_->fire_schedule(f), FireResult::kNotLeader);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job"), 0);
  f.holder = "B";
  EXPECT_EQ(b_->fire_schedule(f), FireResult::kFired);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job"), 1);
}

TEST_P(SchedulerTest, ASlotFiresOnceEvenWhenNextRunAtIsRewound) {
  ASSERT_TRUE(a_->hold_lease("scheduler", "A", 15s));
  sql("INSERT INTO fastq_schedule (name, task, every, enabled, max_instances, catch_up, "
      "source) VALUES ('tick', 'app.tick', 60, true, 0, 'latest', 'code')");
  const Micros slot = (now_micros() / 1'000'000) * 1'000'000;
  ScheduleFire f;
  f.lease_name = "scheduler";
  f.holder = "A";
  f.schedule = "tick";
  f.next_run_at = slot;
  EXPECT_EQ(a_->fire_schedule(f), FireResult::kAdvanced);  // first computation
  auto rows = a_->load_schedules();
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_TRUE(rows[0].next_run_at);
  EXPECT_EQ(*rows[0].next_run_at, slot);

  f.expect_next = slot;
  f.slot = slot;
  f.next_run_at = slot + 60'000'000;
  f.job.id = new_job_id();
  f.job.task = "app.tick";
  EXPECT_EQ(a_->fire_schedule(f), FireResult::kFired);
  // A stale read (the CAS on next_run_at) writes nothing.
  f.job.id = new_job_id();
  EXPECT_EQ(a_->fire_schedule(f), FireResult::kStale);
  // Even if next_run_at goes back (a clock-skewed leader, a hand edit), the slot does not
  // fire twice: fastq_schedule_run holds it.
  ScheduleFire rewind = f;
  rewind.expect_next = slot + 60'000'000;
  rewind.next_run_at = slot;
  rewind.slot.reset();
  EXPECT_EQ(a_->fire_schedule(rewind), FireResult::kAdvanced);
  EXPECT_EQ(a_->fire_schedule(f), FireResult::kAlreadyFired);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job"), 1);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_schedule_run"), 1);
  EXPECT_EQ(text("SELECT last_outcome FROM fastq_schedule"), "queued");
}

TEST_P(SchedulerTest, OverlapSkipsAndRecordsIt) {
  ASSERT_TRUE(a_->hold_lease("scheduler", "A", 15s));
  sql("INSERT INTO fastq_schedule (name, task, every, enabled, max_instances, catch_up, "
      "source) VALUES ('tick', 'app.tick', 1, true, 1, 'latest', 'code')");
  SchedulerConfig c = config("A");
  Scheduler s(a_->connect_another(), c);
  Micros now = now_micros();
  s.step(now);  // computes next_run_at = now + 1 s
  s.step(now + 1'100'000);
  EXPECT_EQ(s.stats().fired, 1u);
  s.step(now + 2'200'000);  // the first job is still queued
  EXPECT_EQ(s.stats().fired, 1u);
  EXPECT_EQ(s.stats().skipped, 1u);
  EXPECT_EQ(text("SELECT last_outcome FROM fastq_schedule"), kSkippedRunningOutcome);
  sql("UPDATE fastq_job SET state = 'succeeded'");
  s.step(now + 3'300'000);
  EXPECT_EQ(s.stats().fired, 2u);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job"), 2);
}

TEST_P(SchedulerTest, TwoSchedulersFireEachSlotExactlyOnceAndFailOver) {
  sql("INSERT INTO fastq_schedule (name, task, every, enabled, max_instances, catch_up, "
      "source) VALUES ('tick', 'app.tick', 0.2, true, 0, 'latest', 'code')");
  Scheduler a(a_->connect_another(), config("A", 600ms));
  Scheduler b(b_->connect_another(), config("B", 600ms));
  a.start();
  std::this_thread::sleep_for(100ms);
  b.start();
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(a.stats().leader);
  EXPECT_FALSE(b.stats().leader);
  const auto fired_by_a = a.stats().fired;
  EXPECT_GE(fired_by_a, 3u);
  EXPECT_EQ(b.stats().fired, 0u);
  // The leader goes away without giving the lease up (as if killed): pause it so it
  // stops renewing, and B takes over once the lease expires.
  a.pause();
  std::this_thread::sleep_for(2000ms);
  EXPECT_TRUE(b.stats().leader);
  EXPECT_GE(b.stats().fired, 2u);
  a.resume();  // the old leader comes back: it is fenced off and follows
  std::this_thread::sleep_for(800ms);
  a.stop();
  b.stop();
  EXPECT_EQ(a.stats().terms, 1u);
  const long long jobs = sql("SELECT count(*) FROM fastq_job");
  EXPECT_EQ(static_cast<std::uint64_t>(jobs), a.stats().fired + b.stats().fired);
  EXPECT_EQ(sql("SELECT count(DISTINCT slot) FROM fastq_schedule_run"), jobs);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_leader"), 0);  // the last leader gave it up
}

TEST_P(SchedulerTest, CatchUpPolicies) {
  ASSERT_TRUE(a_->hold_lease("scheduler", "A", 15s));
  for (const std::string policy : {"latest", "all", "none"}) {
    sql("INSERT INTO fastq_schedule (name, task, cron, timezone, enabled, max_instances, "
        "catch_up, source) VALUES ('" +
        policy + "', 'app.tick', '0 * * * *', 'UTC', true, 1, '" + policy + "', 'code')");
  }
  Scheduler s(a_->connect_another(), config("A"));
  // Half past an hour (slots are computed from the `now` given to step()).
  const Micros hour = 3'600'000'000LL;
  const Micros now = (now_micros() / hour - 1) * hour + hour / 2;
  s.step(now);  // next_run_at: the next hour
  // Pretend the workers were down for 4.5 hours: next_run_at 4 whole hours back.
  const Micros back = (now / hour - 4) * hour;
  const std::string back_s = format_utc(back);
  if (GetParam() == "sqlite") {
    sql("UPDATE fastq_schedule SET next_run_at = '" + back_s + "'");
  } else {
    sql("UPDATE fastq_schedule SET next_run_at = '" + back_s + "+00'");
  }
  s.step(now + 200'000);  // after the reload interval: sees the edit
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job j JOIN fastq_schedule_run r ON "
                "r.job_id = j.id WHERE r.schedule = 'latest'"),
            1);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job j JOIN fastq_schedule_run r ON "
                "r.job_id = j.id WHERE r.schedule = 'all'"),
            5);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_schedule_run WHERE schedule = 'none'"), 0);
  // Every schedule now waits for the next hour.
  for (const auto& row : a_->load_schedules()) {
    ASSERT_TRUE(row.next_run_at);
    EXPECT_EQ(*row.next_run_at, (now / hour + 1) * hour) << row.name;
  }
}

TEST_P(SchedulerTest, OldRunsArePruned) {
  ASSERT_TRUE(a_->hold_lease("scheduler", "A", 15s));
  sql("INSERT INTO fastq_schedule (name, task, every, enabled, max_instances, catch_up, "
      "source) VALUES ('tick', 'app.tick', 60, true, 0, 'latest', 'code')");
  const Micros day = 86'400'000'000LL;
  const Micros now = now_micros();
  for (const Micros slot : {now - 9 * day, now - 8 * day, now - day}) {
    ScheduleFire f;
    f.lease_name = "scheduler";
    f.holder = "A";
    f.schedule = "tick";
    f.max_instances = 0;
    f.slot = slot;
    f.next_run_at = slot + 1;
    f.job.id = new_job_id();
    f.job.task = "app.tick";
    sql("UPDATE fastq_schedule SET next_run_at = NULL");
    ASSERT_EQ(a_->fire_schedule(f), FireResult::kFired);
  }
  EXPECT_EQ(a_->prune_schedule_runs(now - 7 * day), 2u);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_schedule_run"), 1);
}

INSTANTIATE_TEST_SUITE_P(Drivers, SchedulerTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

TEST(MemorySchedulerTest, FiresAndSkipsOverlap) {
  auto d = make_memory_driver();
  ScheduleRow row;
  row.name = "tick";
  row.task = "app.tick";
  row.every = 1;
  memory_put_schedule(*d, row);
  SchedulerConfig c;
  c.holder = "A";
  Scheduler s(d->connect_another(), c);
  const Micros now = now_micros();
  s.step(now);
  s.step(now + 1'100'000);
  s.step(now + 2'200'000);
  EXPECT_EQ(s.stats().fired, 1u);
  EXPECT_EQ(s.stats().skipped, 1u);
  EXPECT_EQ(d->count_runnable(std::vector<std::string>{"default"}), 1u);
}

}  // namespace
}  // namespace fastq
