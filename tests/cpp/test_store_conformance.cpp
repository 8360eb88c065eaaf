// Conformance suites of the stores other than the job store (test_driver_conformance.cpp)
// and the queue controls (test_queue_controls.cpp): one suite per store interface, each run
// on every driver that offers that store. A suite speaks to the store through its own
// interface (`db`); it reaches the driver (`driver`) only for siblings and, where the
// store's rows are written by the Django app, to write them as the app would.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <thread>

#include "fastq/time.hpp"
#include "fixtures.hpp"
#include "memory_tables.hpp"

namespace fastq {
namespace {

using namespace std::chrono_literals;

NewJob job(std::string task, std::string queue = "default") {
  NewJob j;
  j.id = new_job_id();
  j.task = std::move(task);
  j.queue = std::move(queue);
  return j;
}

std::string sqlite_path_of_this_test() {
  return testing::temp_sqlite_path(::testing::UnitTest::GetInstance()->current_test_info()->name());
}

// ---------------------------------------------------------------------------------------
// LeaderStore (leader_store.hpp): every driver.

using LeaderStoreConformance = testing::StoreConformance<LeaderStore>;

TEST_P(LeaderStoreConformance, DatabaseNowIsTheServersClockWhereTheServerMayBeElsewhere) {
  const auto server = db->database_now();
  if (GetParam() != "postgres") {
    EXPECT_FALSE(server) << "a local database's clock is this machine's";
    return;
  }
  ASSERT_TRUE(server);
  // The test server runs on this machine: the same clock, give or take scheduling.
  EXPECT_LT(std::llabs(*server - now_micros()), 5'000'000);
}

TEST_P(LeaderStoreConformance, ALeaseIsHeldByOneHolderAtATime) {
  auto other = driver->connect_another();
  EXPECT_TRUE(db->hold_lease("scheduler", "A", 15s));
  EXPECT_FALSE(other->hold_lease("scheduler", "B", 15s));
  EXPECT_TRUE(db->hold_lease("scheduler", "A", 15s)) << "renewal";
  other->drop_lease("scheduler", "B");  // not B's: nothing happens
  EXPECT_FALSE(other->hold_lease("scheduler", "B", 15s));
  db->drop_lease("scheduler", "A");
  EXPECT_TRUE(other->hold_lease("scheduler", "B", 15s));
  EXPECT_FALSE(db->hold_lease("scheduler", "A", 15s));
  EXPECT_TRUE(db->hold_lease("maintenance", "A", 15s)) << "lease names are independent";
  db->drop_lease("nobody-holds-this", "A");  // dropping a lease never taken is harmless
}

TEST_P(LeaderStoreConformance, AnExpiredLeaseIsTakenOver) {
  auto other = driver->connect_another();
  EXPECT_TRUE(db->hold_lease("scheduler", "A", 1ms));
  std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(other->hold_lease("scheduler", "B", 15s));
  EXPECT_FALSE(db->hold_lease("scheduler", "A", 15s)) << "the old leader is fenced off";
}

TEST_P(LeaderStoreConformance, HostileNamesAndHoldersAreKeptApart) {
  // Quotes, SQL, multi-byte text and the longest holder the table allows (255 characters).
  const std::string name = "l'e\"ader; DROP TABLE fastq_leader; --";
  const std::string a = std::string("h\xc3\xa9te-") + std::string(250, 'a');
  const std::string b = std::string("h\xc3\xa9te-") + std::string(250, 'b');
  ASSERT_EQ(a.size(), 256u);  // 255 characters in 256 bytes
  auto other = driver->connect_another();
  EXPECT_TRUE(db->hold_lease(name, a, 15s));
  EXPECT_FALSE(other->hold_lease(name, b, 15s));
  EXPECT_TRUE(db->hold_lease(name, a, 15s));
  db->drop_lease(name, a);
  EXPECT_TRUE(other->hold_lease(name, b, 15s));
}

INSTANTIATE_TEST_SUITE_P(Drivers, LeaderStoreConformance, testing::kAllDrivers,
                         testing::driver_kind_name);

// ---------------------------------------------------------------------------------------
// ScheduleStore (schedule_store.hpp): every driver. The Django app writes fastq_schedule;
// here the SQL drivers get the row as the app writes it, the memory store through its own
// table (memory_tables.hpp).

class ScheduleStoreConformance : public testing::StoreConformance<ScheduleStore> {
 protected:
  void SetUp() override {
    testing::StoreConformance<ScheduleStore>::SetUp();
    if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure()) return;
    leader = driver.get();
    ASSERT_TRUE(leader->hold_lease("scheduler", "A", 15s));
  }

  void put(const ScheduleRow& row, bool enabled = true) {
    if (GetParam() == "memory") {
      memory_put_schedule(*driver, row, enabled);
      return;
    }
    const bool pg = GetParam() == "postgres";
    auto quote = [](const std::string& s) {
      std::string out = "'";
      for (char c : s) {
        out += c;
        if (c == '\'') out += '\'';
      }
      return out + "'";
    };
    const std::string every = row.every > 0 ? std::to_string(row.every) : "NULL";
    const std::string on = enabled ? (pg ? "true" : "1") : (pg ? "false" : "0");
    sql("INSERT INTO fastq_schedule (name, task, args, kwargs, queue, priority, cron, timezone, "
        "every, enabled, catch_up, max_instances, source) VALUES (" +
        quote(row.name) + ", " + quote(row.task) + ", " + quote(row.args) + ", " +
        quote(row.kwargs) + ", " + quote(row.queue) + ", " + std::to_string(row.priority) +
        ", " + quote(row.cron) + ", " + quote(row.timezone) + ", " + every + ", " + on + ", " +
        quote(row.catch_up) + ", " + std::to_string(row.max_instances) + ", 'code')");
  }

  long long sql(const std::string& q) {
    return testing::probe_int(GetParam(), sqlite_path_of_this_test(), q);
  }

  ScheduleRow tick(std::string name = "tick", int max_instances = 1) {
    ScheduleRow r;
    r.name = std::move(name);
    r.task = "app.tick";
    r.every = 60;
    r.max_instances = max_instances;
    return r;
  }

  ScheduleFire fire(const std::string& schedule, std::optional<Micros> expect,
                    Micros next, std::optional<Micros> slot) {
    ScheduleFire f;
    f.lease_name = "scheduler";
    f.holder = "A";
    f.schedule = schedule;
    f.expect_next = expect;
    f.next_run_at = next;
    f.slot = slot;
    f.job = job("app.tick");
    return f;
  }

  LeaderStore* leader = nullptr;
};

TEST_P(ScheduleStoreConformance, LoadsTheEnabledSchedulesWithEveryField) {
  ScheduleRow cron;
  cron.name = "nightly \"report\" \xe2\x9c\x93";
  cron.task = "app.report";
  cron.args = "[1,\"it's\"]";
  cron.kwargs = "{\"k\":null}";
  cron.queue = "reports";
  cron.priority = SHRT_MAX;
  cron.cron = "0 3 * * 1-5";
  cron.timezone = "Europe/Zurich";
  cron.catch_up = "all";
  cron.max_instances = 0;
  put(cron);
  ScheduleRow every = tick("every");
  every.every = 0.5;
  every.priority = SHRT_MIN;
  put(every);
  put(tick("off"), /*enabled=*/false);

  auto rows = db->load_schedules();
  ASSERT_EQ(rows.size(), 2u) << "a disabled schedule is not loaded";
  std::sort(rows.begin(), rows.end(),
            [](const ScheduleRow& a, const ScheduleRow& b) { return a.name < b.name; });
  EXPECT_EQ(rows[0].name, "every");
  EXPECT_DOUBLE_EQ(rows[0].every, 0.5);
  EXPECT_EQ(rows[0].priority, SHRT_MIN);
  EXPECT_TRUE(rows[0].cron.empty());
  EXPECT_FALSE(rows[0].next_run_at) << "not computed yet";
  const ScheduleRow& c = rows[1];
  EXPECT_EQ(c.name, cron.name);
  EXPECT_EQ(c.task, "app.report");
  EXPECT_EQ(c.args, cron.args);
  EXPECT_EQ(c.kwargs, cron.kwargs);
  EXPECT_EQ(c.queue, "reports");
  EXPECT_EQ(c.priority, SHRT_MAX);
  EXPECT_EQ(c.cron, "0 3 * * 1-5");
  EXPECT_EQ(c.timezone, "Europe/Zurich");
  EXPECT_DOUBLE_EQ(c.every, 0);
  EXPECT_EQ(c.catch_up, "all");
  EXPECT_EQ(c.max_instances, 0);
}

TEST_P(ScheduleStoreConformance, ASlotFiresOnceForTheLeaderOnly) {
  put(tick());
  const Micros slot = (now_micros() / 1'000'000) * 1'000'000;
  ScheduleFire first = fire("tick", std::nullopt, slot, std::nullopt);
  EXPECT_EQ(db->fire_schedule(first), FireResult::kAdvanced);
  auto rows = db->load_schedules();
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_TRUE(rows[0].next_run_at);
  EXPECT_EQ(*rows[0].next_run_at, slot);

  ScheduleFire f = fire("tick", slot, slot + 60'000'000, slot);
  ScheduleFire not_leader = f;
  not_leader.holder = "B";
  EXPECT_EQ(db->fire_schedule(not_leader), FireResult::kNotLeader);
  EXPECT_FALSE(driver->get(not_leader.job.id)) << "a stale leader writes nothing";

  EXPECT_EQ(db->fire_schedule(f), FireResult::kFired);
  const auto rec = driver->get(f.job.id);
  ASSERT_TRUE(rec) << "the job is in the job store";
  EXPECT_EQ(rec->state, "queued");
  EXPECT_EQ(rec->task, "app.tick");

  ScheduleFire stale = f;
  stale.job = job("app.tick");
  EXPECT_EQ(db->fire_schedule(stale), FireResult::kStale) << "next_run_at moved on";
  EXPECT_FALSE(driver->get(stale.job.id));

  // next_run_at rewound (a hand edit, a clock-skewed leader): the slot still fires once.
  ScheduleFire rewind = fire("tick", slot + 60'000'000, slot, std::nullopt);
  EXPECT_EQ(db->fire_schedule(rewind), FireResult::kAdvanced);
  ScheduleFire again = fire("tick", slot, slot + 60'000'000, slot);
  EXPECT_EQ(db->fire_schedule(again), FireResult::kAlreadyFired);
  EXPECT_FALSE(driver->get(again.job.id));

  EXPECT_EQ(db->fire_schedule(fire("missing", std::nullopt, slot, std::nullopt)),
            FireResult::kStale)
      << "a schedule that is not there";
}

TEST_P(ScheduleStoreConformance, OverlapSkipsWhileMaxInstancesAreActive) {
  put(tick("tick", 1));
  const Micros slot = (now_micros() / 1'000'000) * 1'000'000;
  ASSERT_EQ(db->fire_schedule(fire("tick", std::nullopt, slot, std::nullopt)),
            FireResult::kAdvanced);
  ScheduleFire one = fire("tick", slot, slot + 1'000'000, slot);
  ASSERT_EQ(db->fire_schedule(one), FireResult::kFired);
  ScheduleFire two = fire("tick", slot + 1'000'000, slot + 2'000'000, slot + 1'000'000);
  EXPECT_EQ(db->fire_schedule(two), FireResult::kSkipped) << "the first run is still queued";
  EXPECT_FALSE(driver->get(two.job.id));
  // Without the overlap check (catch-up "all" fires regardless) the slot fires.
  ScheduleFire three = fire("tick", slot + 2'000'000, slot + 3'000'000, slot + 2'000'000);
  three.check_overlap = false;
  EXPECT_EQ(db->fire_schedule(three), FireResult::kFired);
  EXPECT_TRUE(driver->get(three.job.id));
}

TEST_P(ScheduleStoreConformance, PruneDeletesOnlyRunsBeforeTheCut) {
  put(tick("tick", 0));
  const Micros slot = (now_micros() / 1'000'000) * 1'000'000;
  ASSERT_EQ(db->fire_schedule(fire("tick", std::nullopt, slot, std::nullopt)),
            FireResult::kAdvanced);
  for (int i = 0; i < 3; ++i) {
    const Micros at = slot + i * 1'000'000;
    ScheduleFire f = fire("tick", at, at + 1'000'000, at);
    f.check_overlap = false;
    ASSERT_EQ(db->fire_schedule(f), FireResult::kFired);
  }
  EXPECT_EQ(db->prune_schedule_runs(slot), 0u) << "no run is before the first slot";
  EXPECT_EQ(db->prune_schedule_runs(slot + 2'000'000), 2u);
  EXPECT_EQ(db->prune_schedule_runs(slot + 2'000'000), 0u);
  EXPECT_EQ(db->prune_schedule_runs(std::numeric_limits<Micros>::min()), 0u);
  // The kept run still fences its slot.
  const Micros kept = slot + 2'000'000;
  ScheduleFire rewind = fire("tick", slot + 3'000'000, kept, std::nullopt);
  ASSERT_EQ(db->fire_schedule(rewind), FireResult::kAdvanced);
  EXPECT_EQ(db->fire_schedule(fire("tick", kept, kept + 1'000'000, kept)),
            FireResult::kAlreadyFired);
}

INSTANTIATE_TEST_SUITE_P(Drivers, ScheduleStoreConformance, testing::kAllDrivers,
                         testing::driver_kind_name);

// ---------------------------------------------------------------------------------------
// RateStore (rate_store.hpp): every driver.

using RateStoreConformance = testing::StoreConformance<RateStore>;

TEST_P(RateStoreConformance, ABucketGrantsItsBurstThenSpacesTokens) {
  const Micros second = 1'000'000;
  // Burst 3 at one token a second, nothing beyond now: the burst, at once.
  RateGrant g = db->acquire_rate("sms", second, 3, 5, 0);
  EXPECT_EQ(g.granted, 3);
  EXPECT_LE(g.base_delay, 0);
  // The bucket is empty now: no token is due within the horizon 0...
  g = db->acquire_rate("sms", second, 3, 5, 0);
  EXPECT_EQ(g.granted, 0);
  EXPECT_GT(g.base_delay, 0);
  EXPECT_LE(g.base_delay, second);
  // ...and within a horizon of 2.5 s, the tokens due by then.
  g = db->acquire_rate("sms", second, 3, 5, 2'500'000);
  EXPECT_GE(g.granted, 2);
  EXPECT_LE(g.granted, 3);
}

TEST_P(RateStoreConformance, BucketsAreSharedBySiblingsAndSeparateByKey) {
  auto other = driver->connect_another();
  EXPECT_EQ(db->acquire_rate("k'1", 60'000'000, 2, 2, 0).granted, 2);
  EXPECT_EQ(other->acquire_rate("k'1", 60'000'000, 2, 1, 0).granted, 0)
      << "one bucket for every connection";
  EXPECT_EQ(other->acquire_rate("k'2", 60'000'000, 2, 1, 0).granted, 1) << "another key";
}

TEST_P(RateStoreConformance, ExtremeArgumentsStayWithinBounds) {
  // No interval: no limit.
  EXPECT_EQ(db->acquire_rate("free", 0, 1, INT_MAX, 0).granted, INT_MAX);
  // Nothing wanted: nothing granted, nothing spent.
  EXPECT_EQ(db->acquire_rate("none", 1'000'000, 1, 0, 0).granted, 0);
  EXPECT_EQ(db->acquire_rate("none", 1'000'000, 1, 1, 0).granted, 1);
  // A huge burst and want at a tiny interval: granted, never more than wanted.
  const RateGrant g = db->acquire_rate("wide", 1, 1'000'000, 1'000'000, 0);
  EXPECT_EQ(g.granted, 1'000'000);
  // A year per token: one now, the next a year on.
  const Micros year = 365LL * 24 * 3600 * 1'000'000;
  EXPECT_EQ(db->acquire_rate("slow", year, 1, 2, 0).granted, 1);
  const RateGrant next = db->acquire_rate("slow", year, 1, 1, 0);
  EXPECT_EQ(next.granted, 0);
  EXPECT_GT(next.base_delay, year - 60'000'000);
}

INSTANTIATE_TEST_SUITE_P(Drivers, RateStoreConformance, testing::kAllDrivers,
                         testing::driver_kind_name);

// ---------------------------------------------------------------------------------------
// WorkerRegistry (worker_registry.hpp): every driver.

using WorkerRegistryConformance = testing::StoreConformance<WorkerRegistry>;

WorkerRow worker_row(std::string id, std::int64_t lease_ms = 30000) {
  WorkerRow w;
  w.id = std::move(id);
  w.host = "host-a";
  w.pid = 4242;
  w.version = "1.2.3";
  w.queues = "[\"default\",\"mail\"]";
  w.tasks = "[\"app.tasks.add\"]";
  w.concurrency = 8;
  w.lease_ms = lease_ms;
  return w;
}

const WorkerRecord* find_worker(const std::vector<WorkerRecord>& all, const std::string& id) {
  for (const auto& w : all) {
    if (w.row.id == id) return &w;
  }
  return nullptr;
}

TEST_P(WorkerRegistryConformance, WorkerRegistersBeatsAndStops) {
  auto row = worker_row("host-a:4242:1");
  db->beat_worker(row);
  auto all = db->workers();
  const auto* w = find_worker(all, row.id);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->state, "running");
  EXPECT_EQ(w->row.kind, "worker");
  EXPECT_EQ(w->row.host, "host-a");
  EXPECT_EQ(w->row.pid, 4242);
  EXPECT_EQ(w->row.version, "1.2.3");
  EXPECT_EQ(w->row.queues, "[\"default\",\"mail\"]");
  EXPECT_EQ(w->row.tasks, "[\"app.tasks.add\"]");
  EXPECT_EQ(w->row.concurrency, 8);
  EXPECT_EQ(w->started_at, w->last_heartbeat);
  EXPECT_EQ(w->expires_at - w->last_heartbeat, 30'000'000);
  EXPECT_FALSE(w->stopped_at);
  const Micros started = w->started_at;

  // A heartbeat updates the counters and the clock, never started_at.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  row.processed = 1'000'000'000'000;
  row.failed = 7;
  row.rss_bytes = 123456789;
  driver->connect_another()->beat_worker(row);
  all = db->workers();
  w = find_worker(all, row.id);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->started_at, started);
  EXPECT_GT(w->last_heartbeat, started);
  EXPECT_EQ(w->row.processed, 1'000'000'000'000);
  EXPECT_EQ(w->row.failed, 7);
  EXPECT_EQ(w->row.rss_bytes, 123456789);

  row.processed += 1;
  db->stop_worker(row);
  all = db->workers();
  w = find_worker(all, row.id);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->state, "stopped");
  ASSERT_TRUE(w->stopped_at);
  EXPECT_EQ(w->row.processed, 1'000'000'000'001);
  EXPECT_EQ(w->started_at, started);

  // A late heartbeat (the completer's last tick racing the stop) does not revive it.
  db->beat_worker(row);
  all = db->workers();
  EXPECT_EQ(find_worker(all, row.id)->state, "stopped");
}

TEST_P(WorkerRegistryConformance, ReapMarksSilentWorkersLostAndForgetsOldRows) {
  auto live = worker_row("live:1");
  auto silent = worker_row("silent:2", 1);  // a 1 ms lease: silent past it at once
  auto sup = worker_row("sup:3");
  sup.kind = "supervisor";
  sup.processes = 2;
  db->beat_worker(live);
  db->beat_worker(silent);
  db->beat_worker(sup);
  db->stop_worker(worker_row("stopped:4"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));

  EXPECT_EQ(db->reap_workers(std::chrono::hours(1)), 1u);
  auto all = db->workers();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(find_worker(all, "live:1")->state, "running");
  EXPECT_EQ(find_worker(all, "silent:2")->state, "lost");
  EXPECT_EQ(find_worker(all, "sup:3")->row.kind, "supervisor");
  EXPECT_EQ(find_worker(all, "sup:3")->row.processes, 2);
  EXPECT_EQ(find_worker(all, "stopped:4")->state, "stopped");
  EXPECT_EQ(db->reap_workers(std::chrono::hours(1)), 0u) << "already lost";

  // A lost worker that beats again (it was only cut off) is running again.
  silent.lease_ms = 30000;
  db->beat_worker(silent);
  all = db->workers();
  EXPECT_EQ(find_worker(all, "silent:2")->state, "running");

  // Stopped and lost rows older than `keep` are deleted; running ones stay.
  db->stop_worker(silent);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(db->reap_workers(std::chrono::milliseconds(1)), 0u);
  all = db->workers();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(find_worker(all, "live:1"));
  EXPECT_TRUE(find_worker(all, "sup:3"));
}

TEST_P(WorkerRegistryConformance, WorkerRowKeepsHostileTextVerbatim) {
  auto row = worker_row("odd:5");
  row.host = std::string("h\xc3\xa9te-\xe2\x9c\x93 ") + std::string(200, 'x');
  row.queues = "[\"q'\\\"; DROP TABLE fastq_job; --\"]";
  db->beat_worker(row);
  auto all = db->workers();
  const auto* w = find_worker(all, "odd:5");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->row.host, row.host);
  EXPECT_EQ(w->row.queues, row.queues);
}

TEST_P(WorkerRegistryConformance, WorkerRowKeepsExtremeNumbersAndLongLists) {
  auto row = worker_row("big:6");
  row.pid = INT_MAX;
  row.concurrency = INT_MAX;
  row.processes = INT_MAX;
  row.processed = std::numeric_limits<std::int64_t>::max();
  row.failed = std::numeric_limits<std::int64_t>::max() - 1;
  row.rss_bytes = std::numeric_limits<std::int64_t>::max();
  // A worker of many queues and tasks: lists far longer than any name column.
  row.queues = "[";
  row.tasks = "[";
  for (int i = 0; i < 5000; ++i) {
    row.queues += (i ? ",\"q" : "\"q") + std::to_string(i) + "\"";
    row.tasks += (i ? ",\"app.tasks.t" : "\"app.tasks.t") + std::to_string(i) + "\"";
  }
  row.queues += "]";
  row.tasks += "]";
  db->beat_worker(row);
  auto all = db->workers();
  const auto* w = find_worker(all, "big:6");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->row.pid, INT_MAX);
  EXPECT_EQ(w->row.concurrency, INT_MAX);
  EXPECT_EQ(w->row.processes, INT_MAX);
  EXPECT_EQ(w->row.processed, std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(w->row.failed, std::numeric_limits<std::int64_t>::max() - 1);
  EXPECT_EQ(w->row.rss_bytes, std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(w->row.queues, row.queues);
  EXPECT_EQ(w->row.tasks, row.tasks);
}

INSTANTIATE_TEST_SUITE_P(Drivers, WorkerRegistryConformance, testing::kAllDrivers,
                         testing::driver_kind_name);

// ---------------------------------------------------------------------------------------
// Notifier (notifier.hpp): every driver answers, each as its contract says: PostgreSQL
// pushes through a file descriptor, the memory store wakes its own process, SQLite cannot
// notify but its wake socket carries local pokes after an enqueue commits (wake.hpp).

using NotifierConformance = testing::StoreConformance<Notifier>;

TEST_P(NotifierConformance, AnEnqueueOnASiblingIsAnnouncedWhereTheStoreCanAnnounce) {
  std::atomic<int> woken{0};
  db->set_wakeup([&woken] { woken.fetch_add(1); });
  const int fd = db->notification_fd();
  EXPECT_FALSE(db->drain_notifications()) << "nothing happened yet";
  auto other = driver->connect_another();
  auto j = job("t");
  other->enqueue(std::span(&j, 1));

  if (GetParam() == "postgres") {
    ASSERT_GE(fd, 0);
    bool got = false;
    for (int i = 0; i < 200 && !got; ++i) {
      got = db->drain_notifications();
      if (!got) std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(got);
    EXPECT_FALSE(db->queues_changed()) << "an enqueue is not a queue change";
  } else if (GetParam() == "memory") {
    EXPECT_EQ(fd, -1) << "in-process only";
    EXPECT_GE(woken.load(), 1) << "a sibling's enqueue wakes this process";
    EXPECT_FALSE(db->drain_notifications());
    EXPECT_FALSE(db->queues_changed());
  } else {
    // SQLite cannot notify; its wake socket (wake.hpp) stands in: the sibling's enqueue
    // poked it right after its commit, before enqueue returned.
    ASSERT_GE(fd, 0) << "a database file has a wake socket";
    EXPECT_EQ(woken.load(), 0);
    EXPECT_TRUE(db->drain_notifications());
    EXPECT_FALSE(db->drain_notifications()) << "one poke, read once";
    EXPECT_FALSE(db->queues_changed());
  }
  db->set_wakeup(nullptr);
}

INSTANTIATE_TEST_SUITE_P(Drivers, NotifierConformance, testing::kAllDrivers,
                         testing::driver_kind_name);

// ---------------------------------------------------------------------------------------
// KeysetSource (keyset_source.hpp): the SQL drivers only; the memory driver says so.

TEST(KeysetSourceOffer, TheMemoryDriverOffersNoneAndSaysSo) {
  auto d = make_memory_driver();
  try {
    keyset_source(*d);
    FAIL() << "expected DriverError";
  } catch (const DriverError& e) {
    EXPECT_FALSE(e.transient());
    EXPECT_NE(std::string(e.what()).find("memory"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("keyset source"), std::string::npos) << e.what();
  }
}

class KeysetSourceConformance : public testing::StoreConformance<KeysetSource> {
 protected:
  void SetUp() override {
    testing::StoreConformance<KeysetSource>::SetUp();
    if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure()) return;
    EXPECT_EQ(db, &keyset_source(*driver)) << "the accessor hands out the driver's own";
    const bool pg = GetParam() == "postgres";
    sql(std::string("CREATE TABLE parcel (id ") + (pg ? "bigint" : "integer") +
        " NOT NULL PRIMARY KEY, code varchar(40) NOT NULL, done integer NOT NULL)");
    // Keys at the ends of the 64-bit range, negative ones, and hostile codes.
    sql("INSERT INTO parcel VALUES (-9223372036854775808, 'min', 0), "
        "(9223372036854775807, 'max', 0), (-1, 'neg', 0), (0, 'zero', 0), (1, 'o''ne', 0), "
        "(2, 'done', 1), (3, 'xyz', 0)");
  }

  long long sql(const std::string& q) {
    return testing::probe_int(GetParam(), sqlite_path_of_this_test(), q);
  }

  static KeysetQuery open_parcels() {
    return KeysetQuery{"SELECT \"parcel\".\"id\" FROM \"parcel\" WHERE \"parcel\".\"done\" = %s",
                       {std::int64_t{0}},
                       "\"id\"",
                       ""};
  }
};

std::vector<std::int64_t> ints(const std::vector<SqlValue>& keys) {
  std::vector<std::int64_t> out;
  for (const auto& k : keys) {
    const auto* i = std::get_if<std::int64_t>(&k);
    EXPECT_NE(i, nullptr);
    out.push_back(i ? *i : 0);
  }
  return out;
}

TEST_P(KeysetSourceConformance, PagesWalkEveryKeyInOrderOnce) {
  const KeysetQuery q = open_parcels();
  EXPECT_EQ(db->count_rows(q), 6);
  const std::int64_t lo = std::numeric_limits<std::int64_t>::min();
  const std::int64_t hi = std::numeric_limits<std::int64_t>::max();
  auto page = db->select_keys(q, std::nullopt, 4);
  EXPECT_EQ(ints(page), (std::vector<std::int64_t>{lo, -1, 0, 1}));
  page = db->select_keys(q, page.back(), 4);
  EXPECT_EQ(ints(page), (std::vector<std::int64_t>{3, hi}));
  page = db->select_keys(q, page.back(), 4);
  EXPECT_TRUE(page.empty()) << "nothing after the largest key";
}

TEST_P(KeysetSourceConformance, TextKeysAndParamsAreBoundNotSpliced) {
  const KeysetQuery q{
      "SELECT \"parcel\".\"code\" FROM \"parcel\" WHERE \"parcel\".\"code\" <> %s AND "
      "\"parcel\".\"code\" NOT LIKE '%%yz%%'",
      {std::string("'; DROP TABLE parcel; --")},
      "\"code\"",
      ""};
  EXPECT_EQ(db->count_rows(q), 6) << "'%%' is a literal %: xyz is left out";
  const auto keys = db->select_keys(q, SqlValue(std::string("m")), 100);
  std::vector<std::string> codes;
  for (const auto& k : keys) codes.push_back(std::get<std::string>(k));
  EXPECT_EQ(codes, (std::vector<std::string>{"max", "min", "neg", "o'ne", "zero"}));
  EXPECT_EQ(sql("SELECT count(*) FROM parcel"), 7) << "the parameter was data, not SQL";
}

TEST_P(KeysetSourceConformance, PendingFlagsFollowTheUniqueKeys) {
  KeysetQuery q = open_parcels();
  q.pending_prefix = "poll:parcels:";
  NewJob held = job("app.check");
  held.unique_key = "poll:parcels:0";
  driver->enqueue(std::span(&held, 1));
  std::vector<char> pending;
  const auto keys = db->select_keys(q, std::nullopt, 100, &pending);
  ASSERT_EQ(keys.size(), 6u);
  ASSERT_EQ(pending.size(), keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(pending[i] != 0, std::get<std::int64_t>(keys[i]) == 0) << "key index " << i;
  }
  // A page after a key flags its keys too (key 0 is still held).
  const std::int64_t later = std::get<std::int64_t>(keys[3]);
  NewJob held_later = job("app.check");
  held_later.unique_key = "poll:parcels:" + std::to_string(later);
  driver->enqueue(std::span(&held_later, 1));
  pending.clear();
  const auto rest = db->select_keys(q, keys[0], 100, &pending);
  ASSERT_EQ(rest.size(), 5u);
  ASSERT_EQ(pending.size(), rest.size());
  for (std::size_t i = 0; i < rest.size(); ++i) {
    const std::int64_t k = std::get<std::int64_t>(rest[i]);
    EXPECT_EQ(pending[i] != 0, k == 0 || k == later) << "key index " << i;
  }
}

TEST_P(KeysetSourceConformance, EnqueueOnceActsOnAKeyOnceEver) {
  std::vector<std::string> keys{"a", "b'", std::string(255, 'k')};
  std::vector<NewJob> jobs{job("app.alert"), job("app.alert"), job("app.alert")};
  EXPECT_EQ(db->enqueue_once("stale", keys, jobs), 3u);
  for (const auto& j : jobs) EXPECT_TRUE(driver->get(j.id)) << j.id;
  // Offered again (with fresh jobs), and with one new key: only the new key acts.
  std::vector<std::string> again{"a", "c", std::string(255, 'k')};
  std::vector<NewJob> more{job("app.alert"), job("app.alert"), job("app.alert")};
  EXPECT_EQ(db->enqueue_once("stale", again, more), 1u);
  EXPECT_FALSE(driver->get(more[0].id));
  EXPECT_TRUE(driver->get(more[1].id));
  EXPECT_FALSE(driver->get(more[2].id));
  // Another scope keeps its own marks.
  std::vector<NewJob> other{job("app.alert")};
  EXPECT_EQ(db->enqueue_once("late", std::vector<std::string>{"a"}, other), 1u);
  // Keys and jobs must pair up.
  EXPECT_THROW(db->enqueue_once("stale", std::vector<std::string>{"z"}, {}),
               std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Drivers, KeysetSourceConformance, testing::kSqlDrivers,
                         testing::driver_kind_name);

}  // namespace
}  // namespace fastq
