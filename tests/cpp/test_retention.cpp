// Retention: the pruner's pacing (pure, no thread, no database) and Driver::prune_jobs on
// every driver (what a batch deletes, what it must leave alone).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include <chrono>
#include <string>
#include <thread>

#include "fastq/driver.hpp"
#include "fastq/retention.hpp"
#include "fastq/scheduler.hpp"
#include "fastq/time.hpp"
#include "fixtures.hpp"
#include "memory_tables.hpp"

namespace fastq {
namespace {

using namespace std::chrono_literals;

constexpr Micros kSecond = 1'000'000;
constexpr Micros kDay = 86'400 * kSecond;

// ---- the pacing ------------------------------------------------------------------------

RetentionConfig small_config() {
  RetentionConfig c;
  c.keep = {60 * kSecond, std::nullopt, 3600 * kSecond, std::nullopt, std::nullopt};
  c.batch = 100;
  c.pass_budget = 200'000;
  c.breath = 50'000;
  c.idle = 5 * kSecond;
  return c;
}

PruneResult batch(std::size_t deleted, std::size_t scanned, std::string at = "",
                  std::string id = "") {
  return PruneResult{deleted, scanned, std::move(at), std::move(id)};
}

TEST(Pruner, DefaultsKeepSucceededADayAndTheRestTwoWeeks) {
  const RetentionConfig c;
  EXPECT_EQ(c.keep[0], 86'400 * kSecond);
  for (int i = 1; i < 5; ++i) EXPECT_EQ(c.keep[i], 14 * 86'400 * kSecond) << kFinalStates[i];
  EXPECT_TRUE(c.enabled());
  EXPECT_EQ(final_state_index("dead"), 2);
  EXPECT_EQ(final_state_index("queued"), -1);
}

TEST(RetentionCutoffs, EachStateWithARetentionAndTheTimeItsJobsGoBefore) {
  RetentionConfig cfg;
  const Micros now = 10 * kDay;
  const auto cut = retention_cutoffs(cfg, now);
  ASSERT_EQ(cut.size(), 5u);
  EXPECT_EQ(cut[0], (std::pair<std::string, Micros>{"succeeded", now - kDay}));
  EXPECT_EQ(cut[1], (std::pair<std::string, Micros>{"failed", now - 14 * kDay}));
  // A state kept for ever is left out: its jobs stay whatever day they finished.
  cfg.keep[1] = std::nullopt;
  cfg.keep[4] = Micros{0};
  const auto some = retention_cutoffs(cfg, now);
  ASSERT_EQ(some.size(), 4u);
  EXPECT_EQ(some[0].first, "succeeded");
  EXPECT_EQ(some[1].first, "dead");
  EXPECT_EQ(some[3], (std::pair<std::string, Micros>{"cancelled", now}));
  for (auto& k : cfg.keep) k = std::nullopt;
  EXPECT_TRUE(retention_cutoffs(cfg, now).empty());
}

TEST(LogPartitions, DaysForADayOrMoreAndATenthOfTheWindowBelow) {
  RetentionConfig cfg;  // successes a day: day partitions a week ahead, hourly upkeep
  auto p = log_partitions(cfg);
  EXPECT_EQ(p.width, 86'400);
  EXPECT_EQ(p.ahead, 7 * 86'400);
  EXPECT_EQ(p.every, 3600 * kSecond);
  EXPECT_TRUE(p.drops_succeeded);
  cfg.keep[0] = 30 * kDay;
  EXPECT_EQ(log_partitions(cfg).width, 86'400);
  cfg.keep[0] = std::nullopt;  // kept for ever: days, and nothing dropped
  p = log_partitions(cfg);
  EXPECT_EQ(p.width, 86'400);
  EXPECT_FALSE(p.drops_succeeded);

  cfg.keep[0] = 60 * kSecond;  // a minute: 6 s partitions, two minutes ahead
  p = log_partitions(cfg);
  EXPECT_EQ(p.width, 6);
  EXPECT_EQ(p.ahead, 120);
  EXPECT_EQ(p.every, 3 * kSecond);
  EXPECT_TRUE(p.drops_succeeded);
  cfg.keep[0] = 3600 * kSecond;  // an hour: 5 min (6 min is not on the list)
  p = log_partitions(cfg);
  EXPECT_EQ(p.width, 300);
  EXPECT_EQ(p.ahead, 1200);
  EXPECT_EQ(p.every, 150 * kSecond);
  cfg.keep[0] = kDay - kSecond;  // just under a day: 2 h
  EXPECT_EQ(log_partitions(cfg).width, 7200);
  EXPECT_EQ(log_partitions(cfg).every, 3600 * kSecond) << "an hour at the most";
  for (const Micros keep : {Micros{0}, 5 * kSecond, -kSecond}) {
    cfg.keep[0] = keep;  // shorter than ten seconds: a second, upkeep every second
    p = log_partitions(cfg);
    EXPECT_EQ(p.width, 1) << keep;
    EXPECT_EQ(p.every, kSecond) << keep;
    EXPECT_EQ(p.ahead, 120) << keep;
  }
  // Every width divides a day, so partitions line up with midnight UTC.
  for (Micros keep = kSecond; keep < kDay; keep = keep * 3 / 2 + kSecond) {
    cfg.keep[0] = keep;
    const auto w = log_partitions(cfg).width;
    EXPECT_EQ(86'400 % w, 0) << keep;
    EXPECT_LE(w * 10 * kSecond, std::max(keep, 10 * kSecond)) << keep;
  }
}

TEST(Pruner, BatchesAStateUntilABatchComesBackShortThenMovesOn) {
  Pruner p(small_config());
  const Micros now = 1000 * kSecond;
  auto a = p.next(now);
  ASSERT_TRUE(a.request);
  EXPECT_EQ(a.request->state, "succeeded");
  EXPECT_EQ(a.request->before, now - 60 * kSecond);
  EXPECT_EQ(a.request->limit, 100);
  EXPECT_EQ(a.request->after_at, "") << "from the oldest";
  p.done(batch(90, 100, "t1", "id1"));  // full (ten kept among them): more to do
  a = p.next(now + 1000);
  ASSERT_TRUE(a.request);
  EXPECT_EQ(a.request->state, "succeeded");
  EXPECT_EQ(a.request->before, now - 60 * kSecond) << "cutoffs stay put within a pass";
  EXPECT_EQ(a.request->after_at, "t1") << "on from the last row seen";
  EXPECT_EQ(a.request->after_id, "id1");
  p.done(batch(17, 17, "t2", "id2"));  // short: caught up
  a = p.next(now + 2000);
  ASSERT_TRUE(a.request);
  EXPECT_EQ(a.request->state, "dead") << "failed is kept for ever, so skipped";
  EXPECT_EQ(a.request->before, now - 3600 * kSecond);
  EXPECT_EQ(a.request->after_at, "") << "a new state starts from its oldest";
  p.done(batch(0, 0));
  a = p.next(now + 3000);
  EXPECT_FALSE(a.request) << "every state caught up";
  EXPECT_EQ(a.wake, now + 3000 + 5 * kSecond);
  EXPECT_EQ(p.deleted(), 107u);
  // Nothing until then; then a new pass from the first state with fresh cutoffs.
  EXPECT_FALSE(p.next(now + 4 * kSecond).request);
  a = p.next(now + 6 * kSecond);
  ASSERT_TRUE(a.request);
  EXPECT_EQ(a.request->state, "succeeded");
  EXPECT_EQ(a.request->before, now + 6 * kSecond - 60 * kSecond);
  EXPECT_EQ(a.request->after_at, "");
}

TEST(Pruner, APassStopsAtItsBudgetAndResumesWhereItWasAfterABreath) {
  Pruner p(small_config());
  const Micros now = 1000 * kSecond;
  int batches = 0;
  Micros t = now;
  for (;;) {
    auto a = p.next(t);
    if (!a.request) {
      EXPECT_EQ(a.wake, t + 50'000) << "a pass cut short breathes, it does not idle";
      break;
    }
    ++batches;
    // A backlog of jobs that must be kept: every batch full, nothing deleted.
    p.done(batch(0, 100, "t" + std::to_string(batches), "id"));
    t += 30'000;  // each batch takes 30 ms
  }
  EXPECT_EQ(batches, 7) << "200 ms of 30 ms batches";
  t += 50'000;
  auto a = p.next(t);
  ASSERT_TRUE(a.request);
  EXPECT_EQ(a.request->state, "succeeded") << "the backlog's state again";
  EXPECT_EQ(a.request->before, t - 60 * kSecond);
  EXPECT_EQ(a.request->after_at, "t7") << "where the walk was: kept rows are not read again";
}

TEST(Pruner, KeepingEverythingForEverNeverAsks) {
  RetentionConfig c = small_config();
  c.keep = {};
  Pruner p(c);
  EXPECT_FALSE(c.enabled());
  const auto a = p.next(0);
  EXPECT_FALSE(a.request);
  EXPECT_EQ(a.wake, 5 * kSecond);
}

TEST(Pruner, RefusesAReportWithoutARequest) {
  Pruner p(small_config());
  EXPECT_THROW(p.done(batch(1, 1)), std::logic_error);
  ASSERT_TRUE(p.next(0).request);
  EXPECT_THROW(p.next(0), std::logic_error);
}

// ---- every driver ----------------------------------------------------------------------

class Retention : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    FASTQ_OPEN_DRIVER(GetParam(), db);
    if (GetParam() == "sqlite") {
      path = testing::temp_sqlite_path(
          ::testing::UnitTest::GetInstance()->current_test_info()->name());
    }
  }

  long long sql(const std::string& q) { return testing::probe_int(GetParam(), path, q); }
  // An id as the database spells it (SQLite: 32 hex digits).
  std::string db_id(std::string id) {
    if (GetParam() == "sqlite") std::erase(id, '-');
    return id;
  }

  NewJob job(std::string workflow = "") {
    NewJob j;
    j.id = new_job_id();
    j.task = "t";
    j.workflow_id = std::move(workflow);
    return j;
  }
  // Claims every runnable job and ends each with `outcome`; returns their ids.
  std::vector<std::string> finish(Outcome outcome = Outcome::kSucceeded) {
    std::vector<std::string> ids;
    for (;;) {
      auto claimed = db->claim(ClaimRequest{{"default"}, 500, 30s, "t:1"});
      if (claimed.empty()) return ids;
      std::vector<Completion> cs;
      for (const auto& c : claimed) {
        Completion x;
        x.id = c.id;
        x.lease_token = c.lease_token;
        x.outcome = outcome;
        x.result = "null";
        if (outcome != Outcome::kSucceeded) x.error_type = "E";
        cs.push_back(std::move(x));
        ids.push_back(c.id);
      }
      EXPECT_EQ(db->complete(cs), cs.size());
    }
  }
  std::vector<std::string> enqueue_and_finish(int n, Outcome outcome = Outcome::kSucceeded) {
    std::vector<NewJob> jobs;
    for (int i = 0; i < n; ++i) jobs.push_back(job());
    db->enqueue(jobs);
    return finish(outcome);
  }
  // A cutoff after everything finished so far (the database's clock, where it has one).
  Micros later() {
    std::this_thread::sleep_for(20ms);
    const Micros t = db->database_now().value_or(now_micros());
    std::this_thread::sleep_for(20ms);
    return t;
  }
  PruneResult batch(const std::string& state, Micros before, int limit = 1000,
                    bool dry_run = false, const PruneResult& after = {}) {
    PruneRequest r;
    r.state = state;
    r.before = before;
    r.limit = limit;
    r.dry_run = dry_run;
    r.after_at = after.last_at;
    r.after_id = after.last_id;
    return db->prune_jobs(r);
  }
  // One batch from the oldest: how many it deleted.
  std::size_t prune(const std::string& state, Micros before, int limit = 1000,
                    bool dry_run = false) {
    return batch(state, before, limit, dry_run).deleted;
  }

  std::unique_ptr<Driver> db;
  std::string path;
};

TEST_P(Retention, DeletesOldFinishedJobsOfOneStateInBoundedBatches) {
  const auto old_ok = enqueue_and_finish(25);
  const auto old_failed = enqueue_and_finish(3, Outcome::kFailed);
  const Micros cutoff = later();
  const auto young = enqueue_and_finish(4);
  std::vector<NewJob> waiting{job()};
  db->enqueue(waiting);  // queued: never pruned

  EXPECT_EQ(prune("succeeded", cutoff, 10, true), 25u) << "a dry run counts them all";
  EXPECT_EQ(prune("succeeded", cutoff, 10), 10u);
  EXPECT_EQ(prune("succeeded", cutoff, 10), 10u);
  EXPECT_EQ(prune("succeeded", cutoff, 10), 5u);
  EXPECT_EQ(prune("succeeded", cutoff, 10), 0u);
  for (const auto& id : old_ok) EXPECT_FALSE(db->get(id)) << id;
  for (const auto& id : young) EXPECT_TRUE(db->get(id)) << "finished after the cutoff";
  for (const auto& id : old_failed) EXPECT_TRUE(db->get(id)) << "another state";
  EXPECT_TRUE(db->get(waiting[0].id));
  EXPECT_EQ(prune("failed", cutoff), 3u);
  EXPECT_EQ(prune("queued", now_micros() + 3600 * kSecond), 0u) << "never an unfinished job";
  EXPECT_TRUE(db->get(waiting[0].id));
}

TEST_P(Retention, UpkeepDropsTheDaysPastTheShortestRetentionKeepingTheRest) {
  enqueue_and_finish(5);
  const auto failed = enqueue_and_finish(2, Outcome::kFailed);
  const LogPartitions days;  // a retention of a day or more: day partitions
  EXPECT_EQ(db->upkeep({}, days), 0u);  // retention off: partitions made, nothing dropped
  const Micros now = db->database_now().value_or(now_micros());
  // Today's day ends within a day: past the successes' cutoff. Failed jobs have none.
  const std::size_t dropped = db->upkeep({{"succeeded", now + kDay}}, days);
  if (GetParam() != "postgres") {
    EXPECT_EQ(dropped, 0u);  // no partitions: the row-wise prune does it all
    EXPECT_TRUE(db->get(failed[0]).has_value());
    return;
  }
  EXPECT_EQ(dropped, 1u);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job"), 2);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job WHERE state = 'failed' AND id IN ('" +
                failed[0] + "', '" + failed[1] + "')"),
            2);
  // The day is made again the next time (nothing of it was left in the default partition
  // but what was kept, and those two go with the next drop too).
  EXPECT_EQ(db->upkeep({}, days), 0u);
}

TEST_P(Retention, UpkeepMakesPartitionsOfTheRetentionsWidthAndDropsThoseItPassed) {
  RetentionConfig cfg;
  cfg.keep[0] = 60 * kSecond;  // 6 s partitions
  const LogPartitions parts = log_partitions(cfg);
  ASSERT_EQ(parts.width, 6);
  // Jobs finished today before the width changed: in today's day partition.
  const auto before = enqueue_and_finish(4);
  const auto failed = enqueue_and_finish(2, Outcome::kFailed);
  EXPECT_EQ(db->upkeep({}, parts), 0u);
  if (GetParam() != "postgres") {
    EXPECT_EQ(db->upkeep({{"succeeded", now_micros() + kDay}}, parts), 0u);
    EXPECT_TRUE(db->get(before[0]).has_value()) << "no partitions: the row-wise prune";
    return;
  }
  const auto count = [&](const std::string& where) {
    return sql("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
               "WHERE i.inhparent = 'fastq_finished'::regclass AND " + where);
  };
  // The day partitions that still take rows were made again 6 s wide, from the current
  // slot to two minutes ahead (20 or 21 of them), their jobs moved into them.
  EXPECT_EQ(count("c.relname ~ '^fastq_finished_p[0-9]{8}$' AND "
                  "pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT' AND "
                  "substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']+)''\\)')"
                  "::timestamptz > now()"),
            0);
  const long long made = count("c.relname ~ '^fastq_finished_p[0-9]{8}_[0-9]{6}$'");
  EXPECT_GE(made, 20);
  EXPECT_LE(made, 21);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job WHERE state IN ('succeeded', 'failed')"), 6);
  // Idempotent: nothing made twice, nothing moved.
  EXPECT_EQ(db->upkeep({}, parts), 0u);
  const long long again = count("c.relname ~ '^fastq_finished_p[0-9]{8}_[0-9]{6}$'");
  EXPECT_GE(again, made);
  EXPECT_LE(again, made + 1) << "one more when the clock crossed a slot in between";

  // Jobs finishing now land in a 6 s partition (or the default one, for jobs of the slot
  // that began before it was made: those are the row-wise prune's).
  const auto now_ok = enqueue_and_finish(3);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_finished_default d WHERE d.state = 'succeeded' "
                "AND d.finished_at >= (SELECT min(substring(pg_get_expr(c.relpartbound, c.oid) "
                "FROM 'FROM \\(''([^'']+)''\\)')::timestamptz) FROM pg_inherits i JOIN "
                "pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
                "'fastq_finished'::regclass AND c.relname ~ '_[0-9]{6}$')"),
            0);
  // Every partition ending by the cutoff goes; failed jobs (no key: kept for ever) stay.
  const Micros now = db->database_now().value_or(now_micros());
  const std::size_t dropped = db->upkeep({{"succeeded", now + 3600 * kSecond}}, parts);
  EXPECT_GE(dropped, 20u);
  for (const auto& id : now_ok) EXPECT_FALSE(db->get(id).has_value()) << id;
  for (const auto& id : failed) EXPECT_TRUE(db->get(id).has_value()) << id;
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_finished_default WHERE state = 'failed'"), 2);

  // Back to days (a retention of a day): the 6 s partitions still ahead are made again a
  // day wide, and nothing is lost on the way.
  const auto later_ok = enqueue_and_finish(2);
  EXPECT_EQ(db->upkeep({}, log_partitions(RetentionConfig{})), 0u);
  EXPECT_EQ(count("c.relname ~ '_[0-9]{6}$' AND substring(pg_get_expr(c.relpartbound, c.oid) "
                  "FROM 'TO \\(''([^'']+)''\\)')::timestamptz > now()"),
            0);
  EXPECT_GE(count("c.relname ~ '^fastq_finished_p[0-9]{8}$'"), 7);
  for (const auto& id : later_ok) EXPECT_TRUE(db->get(id).has_value()) << id;
}

TEST_P(Retention, TheLeadersPruneLeavesThePartitionedSuccessesToTheUpkeep) {
  const auto ok = enqueue_and_finish(3);
  const Micros cutoff = later();
  PruneRequest r;
  r.state = "succeeded";
  r.before = cutoff;
  r.keep = 60 * kSecond;  // the leader's request: partitions drop these
  const auto n = db->prune_jobs(r).deleted;
  if (GetParam() == "postgres") {
    EXPECT_EQ(n, 0u) << "in a partition: dropped whole by the upkeep";
  } else {
    EXPECT_EQ(n, 3u) << "no partitions: deleted row by row";
  }
  r.keep = 0;  // fastq_prune by hand: every row
  EXPECT_EQ(db->prune_jobs(r).deleted, GetParam() == "postgres" ? 3u : 0u);
  for (const auto& id : ok) EXPECT_FALSE(db->get(id).has_value()) << id;
}

TEST_P(Retention, ReclaimVacuumsTheStoreTablesWhoseDeadRowsPassTheThreshold) {
  enqueue_and_finish(300);  // each completion leaves a dead row in the active table
  std::vector<NewJob> live;
  for (int i = 0; i < 300; ++i) live.push_back(job());
  db->enqueue(live);  // and these live ones
  if (GetParam() != "postgres") {
    EXPECT_EQ(db->reclaim({0, 0.0}), 0u);  // nothing to vacuum: deleted space is reused
    return;
  }
  const auto stat = [&](const std::string& column) {
    return sql("SELECT " + column + " FROM pg_stat_user_tables WHERE relid = 'fastq_active'::regclass");
  };
  // Backends report their counts when idle, within seconds.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while ((stat("n_dead_tup") < 300 || stat("n_live_tup") < 300) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_GE(stat("n_dead_tup"), 300);
  ASSERT_GE(stat("n_live_tup"), 300);
  const long long vacuums = stat("vacuum_count");
  EXPECT_EQ(db->reclaim({1'000'000, 0.0}), 0u) << "under the floor: left alone";
  EXPECT_EQ(db->reclaim({0, 10.0}), 0u) << "few dead rows for the live ones: left alone";
  EXPECT_EQ(stat("vacuum_count"), vacuums);
  EXPECT_GE(db->reclaim({100, 0.0}), 1u);
  EXPECT_EQ(stat("vacuum_count"), vacuums + 1);
  EXPECT_EQ(stat("n_dead_tup"), 0);
  EXPECT_EQ(stat("analyze_count"), 1) << "and its statistics made: the claim's plan needs them";
  EXPECT_EQ(db->reclaim({100, 0.0}), 0u) << "nothing left to reclaim";
}

// SQLite: with a reader on the write-ahead log the whole time, automatic checkpoints
// cannot restart it and it only grows; the leader's reclaim truncates it once the
// readers of the moment are done.
TEST_P(Retention, ReclaimTruncatesAWriteAheadLogReadersKeptGrowing) {
  if (GetParam() != "sqlite") GTEST_SKIP() << "SQLite's write-ahead log";
  sqlite3* reader = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &reader), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM fastq_job;", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  enqueue_and_finish(2000);
  const auto wal = path + "-wal";
  const auto grown = std::filesystem::file_size(wal);
  EXPECT_GT(grown, 1u << 20) << "a reader on it: the log is not restarted";
  ReclaimLimits limits;
  EXPECT_EQ(db->reclaim(limits), 0u) << "under the default bound: left alone";
  ASSERT_EQ(sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(reader);
  limits.wal_frames = 100;
  EXPECT_EQ(db->reclaim(limits), 1u);
  EXPECT_EQ(std::filesystem::file_size(wal), 0u);
  EXPECT_EQ(db->reclaim(limits), 0u) << "nothing left to reclaim";
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job"), 2000) << "every job still there";
}

TEST_P(Retention, ABatchTakesTheOldestFirst) {
  const auto first = enqueue_and_finish(5);
  later();
  const auto second = enqueue_and_finish(5);
  const Micros cutoff = later();
  EXPECT_EQ(prune("succeeded", cutoff, 5), 5u);
  for (const auto& id : first) EXPECT_FALSE(db->get(id));
  for (const auto& id : second) EXPECT_TRUE(db->get(id));
}

TEST_P(Retention, CancelledBeforeStartIsFinishedToo) {
  std::vector<NewJob> jobs{job()};
  db->enqueue(jobs);
  EXPECT_EQ(db->cancel(jobs[0].id), CancelResult::kCancelled);
  EXPECT_EQ(prune("cancelled", later()), 1u);
  EXPECT_FALSE(db->get(jobs[0].id));
}

TEST_P(Retention, AJobAScheduleRunNamesIsKeptWhileTheRunIs) {
  ASSERT_TRUE(db->hold_lease("scheduler", "A", 15s));
  if (GetParam() == "memory") {
    ScheduleRow row;
    row.name = "tick";
    row.task = "t";
    row.every = 60;
    memory_put_schedule(*db, row);
  } else {
    sql("INSERT INTO fastq_schedule (name, task, every, enabled, max_instances, catch_up, "
        "source) VALUES ('tick', 't', 60, true, 0, 'latest', 'code')");
  }
  ScheduleFire f;
  f.lease_name = "scheduler";
  f.holder = "A";
  f.schedule = "tick";
  f.next_run_at = now_micros();
  ASSERT_EQ(db->fire_schedule(f), FireResult::kAdvanced);
  const Micros slot = db->load_schedules().at(0).next_run_at.value();
  f.expect_next = slot;
  f.slot = slot;
  f.next_run_at = slot + 60 * kSecond;
  f.job = job();
  ASSERT_EQ(db->fire_schedule(f), FireResult::kFired);
  enqueue_and_finish(2);  // the fired job and two others
  const Micros cutoff = later();
  EXPECT_EQ(prune("succeeded", cutoff, 1000, true), 2u);
  EXPECT_EQ(prune("succeeded", cutoff), 2u);
  EXPECT_TRUE(db->get(f.job.id)) << "the run still names it";
  EXPECT_EQ(db->prune_schedule_runs(slot + 1), 1u);
  EXPECT_EQ(prune("succeeded", cutoff), 1u);
  EXPECT_FALSE(db->get(f.job.id));
}

TEST_P(Retention, AStepIsKeptWhileItsWorkflowRunsThenGoesWithItsEdges) {
  const std::string wf = new_job_id();
  std::vector<NewJob> jobs{job(wf), job(wf), job(wf)};
  std::vector<Dependency> deps{{jobs[0].id, jobs[1].id, 0}, {jobs[1].id, jobs[2].id, 0}};
  db->enqueue_workflow(jobs, deps);
  if (GetParam() != "memory") {
    sql("INSERT INTO fastq_workflow (id, root_id, kind, name, members, created_at) VALUES ('" +
        db_id(wf) + "', '" + db_id(wf) + "', 'chain', '', '[]', '2026-01-01 00:00:00')");
  }
  const auto a = db->claim(ClaimRequest{{"default"}, 1, 30s, "t:1"});
  ASSERT_EQ(a.size(), 1u);
  Completion x;
  x.id = a[0].id;
  x.lease_token = a[0].lease_token;
  x.result = "1";
  ASSERT_EQ(db->complete(std::span<const Completion>(&x, 1)), 1u);
  // The first step finished, its child is queued (it reads the parent's result when it
  // runs, and the step after it waits): nothing of the workflow may go.
  EXPECT_EQ(prune("succeeded", later(), 1000, true), 0u);
  EXPECT_EQ(prune("succeeded", later()), 0u);
  EXPECT_TRUE(db->get(jobs[0].id));
  finish();  // the rest of the chain
  const Micros cutoff = later();
  EXPECT_EQ(prune("succeeded", cutoff, 2), 2u);
  EXPECT_EQ(prune("succeeded", cutoff, 2), 1u);
  for (const auto& j : jobs) EXPECT_FALSE(db->get(j.id));
  if (GetParam() != "memory") {
    EXPECT_EQ(sql("SELECT count(*) FROM fastq_dependency"), 0);
    EXPECT_EQ(sql("SELECT count(*) FROM fastq_workflow"), 0) << "with its last step";
  }
}

TEST_P(Retention, AnAlertJobIsKeptWhileItsPollerMarkIs) {
  if (GetParam() == "memory") GTEST_SKIP() << "the memory store has no poller marks";
  std::vector<std::string> keys{"k1", "k2"};
  std::vector<NewJob> alerts{job(), job()};
  ASSERT_EQ(keyset_source(*db).enqueue_once("tracker", keys, alerts), 2u);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_poller_mark WHERE job_id IS NOT NULL"), 2);
  std::vector<NewJob> other{job()};
  db->enqueue(other);
  ASSERT_EQ(finish().size(), 3u);  // the alerts and the other job
  const Micros cutoff = later();
  EXPECT_EQ(prune("succeeded", cutoff), 1u);
  EXPECT_FALSE(db->get(other[0].id));
  for (const auto& a : alerts) EXPECT_TRUE(db->get(a.id));
  sql("DELETE FROM fastq_poller_mark WHERE key = 'k1'");
  EXPECT_EQ(prune("succeeded", cutoff), 1u);
  EXPECT_FALSE(db->get(alerts[0].id));
  EXPECT_TRUE(db->get(alerts[1].id));
}

TEST_P(Retention, ACursorWalksPastJobsThatAreKept) {
  // Three runs of a schedule at the head of the order, then two free jobs.
  ASSERT_TRUE(db->hold_lease("scheduler", "A", 15s));
  if (GetParam() == "memory") {
    ScheduleRow row;
    row.name = "tick";
    row.task = "t";
    row.every = 60;
    memory_put_schedule(*db, row);
  } else {
    sql("INSERT INTO fastq_schedule (name, task, every, enabled, max_instances, catch_up, "
        "source) VALUES ('tick', 't', 60, true, 0, 'latest', 'code')");
  }
  ScheduleFire f;
  f.lease_name = "scheduler";
  f.holder = "A";
  f.schedule = "tick";
  f.next_run_at = now_micros();
  ASSERT_EQ(db->fire_schedule(f), FireResult::kAdvanced);
  Micros slot = db->load_schedules().at(0).next_run_at.value();
  std::vector<std::string> fired;
  for (int i = 0; i < 3; ++i) {
    f.expect_next = slot;
    f.slot = slot;
    f.next_run_at = slot + 60 * kSecond;
    f.job = job();
    ASSERT_EQ(db->fire_schedule(f), FireResult::kFired);
    fired.push_back(f.job.id);
    slot += 60 * kSecond;
    finish();
    later();  // each finishes apart from the others
  }
  const auto free = enqueue_and_finish(2);
  const Micros cutoff = later();
  // Batches of 2 from the oldest: the kept runs fill the first batch, and it is full, so
  // the walk goes on from its last row instead of reading the same two again.
  PruneResult r = batch("succeeded", cutoff, 2);
  EXPECT_EQ(r.deleted, 0u);
  EXPECT_EQ(r.scanned, 2u);
  EXPECT_FALSE(r.last_at.empty());
  r = batch("succeeded", cutoff, 2, false, r);
  EXPECT_EQ(r.deleted, 1u);
  EXPECT_EQ(r.scanned, 2u);
  r = batch("succeeded", cutoff, 2, false, r);
  EXPECT_EQ(r.deleted, 1u);
  EXPECT_EQ(r.scanned, 1u) << "short: the end of the range";
  for (const auto& id : free) EXPECT_FALSE(db->get(id));
  for (const auto& id : fired) EXPECT_TRUE(db->get(id));
}

TEST_P(Retention, TheLeaderPrunesInBatchesAndCountsThem) {
  enqueue_and_finish(30);
  std::this_thread::sleep_for(20ms);
  SchedulerConfig c;
  c.holder = "L";
  c.retention.keep = {Micros{1}, std::nullopt, std::nullopt, std::nullopt, std::nullopt};
  c.retention.batch = 7;
  c.retention.pass_budget = 3600 * kSecond;  // no budget cut in this test
  Scheduler s(db->connect_another(), c);
  s.step(db->database_now().value_or(now_micros()));
  EXPECT_TRUE(s.stats().leader);
  if (GetParam() != "postgres") {
    EXPECT_EQ(s.stats().pruned, 30u);
    EXPECT_EQ(prune("succeeded", now_micros() + 3600 * kSecond, 1000, true), 0u);
    return;
  }
  // PostgreSQL: the upkeep made the log's partitions a second wide (log_partitions())
  // and moved the jobs of today's day partition into them, or into the default partition
  // for those finished before the current second, which the prune empties row by row. The
  // current second's partition goes whole once the second is past the retention.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (sql("SELECT count(*) FROM fastq_job") > 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    s.step(db->database_now().value_or(now_micros()));
  }
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job"), 0);
  EXPECT_LE(s.stats().pruned, 30u);
  EXPECT_TRUE(s.stats().pruned == 30u || s.stats().partitions_dropped >= 1u);
}

INSTANTIATE_TEST_SUITE_P(Drivers, Retention, ::testing::Values("memory", "sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace fastq
