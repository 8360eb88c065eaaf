// The queue controls' conformance suite (queue_controls.hpp; table fastq_queue), every
// driver: paused queues are skipped by claim() and named by paused_queues(); a queue's
// concurrency bounds its running jobs across every connection claiming from it, and an
// expired lease frees its place.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "fastq/time.hpp"
#include "fixtures.hpp"
#include "memory_tables.hpp"

namespace fastq {
namespace {

NewJob job(std::string queue) {
  NewJob j;
  j.id = new_job_id();
  j.task = "t";
  j.queue = std::move(queue);
  return j;
}

ClaimRequest req(int limit, std::vector<std::string> queues,
                 std::chrono::milliseconds lease = std::chrono::milliseconds(30000)) {
  return ClaimRequest{std::move(queues), limit, lease, "test:1"};
}

std::vector<Completion> done(const std::vector<ClaimedJob>& jobs) {
  std::vector<Completion> out;
  for (const auto& j : jobs) {
    Completion c;
    c.id = j.id;
    c.lease_token = j.lease_token;
    c.result = "null";
    out.push_back(c);
  }
  return out;
}

class QueueControlsConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { FASTQ_OPEN_DRIVER(GetParam(), db); }

  // What fastq_queues / the admin write: one row per controlled queue.
  void set_queue(const std::string& name, bool paused, std::optional<int> concurrency) {
    if (GetParam() == "memory") {
      memory_set_queue(*db, name, paused, concurrency);
      return;
    }
    const std::string c = concurrency ? std::to_string(*concurrency) : "NULL";
    const std::string p = GetParam() == "sqlite" ? (paused ? "1" : "0") : (paused ? "true" : "false");
    const auto path = testing::temp_sqlite_path(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    testing::probe_text(GetParam(), path,
                        "INSERT INTO fastq_queue (name, paused, concurrency) VALUES ('" + name +
                            "', " + p + ", " + c +
                            ") ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, "
                            "concurrency = excluded.concurrency");
  }

  std::unique_ptr<Driver> db;
};

TEST_P(QueueControlsConformance, APausedQueueIsSkippedUntilResumed) {
  std::vector<NewJob> jobs{job("a"), job("a"), job("a"), job("b"), job("b")};
  db->enqueue(jobs);
  set_queue("a", true, std::nullopt);
  const std::vector<std::string> both{"a", "b"};
  EXPECT_EQ(db->paused_queues(both), std::vector<std::string>{"a"});
  auto got = db->claim(req(10, both));
  ASSERT_EQ(got.size(), 2u);
  for (const auto& j : got) EXPECT_EQ(j.queue, "b");
  EXPECT_TRUE(db->claim(req(10, {"a"})).empty());
  EXPECT_EQ(db->count_runnable(both), 0u) << "a paused queue's jobs are not runnable";
  // Enqueueing into a paused queue still works; the job waits.
  auto more = job("a");
  db->enqueue(std::span(&more, 1));
  EXPECT_EQ(db->get(more.id)->state, "queued");
  set_queue("a", false, std::nullopt);
  EXPECT_TRUE(db->paused_queues(both).empty());
  EXPECT_EQ(db->count_runnable(both), 4u);
  EXPECT_EQ(db->claim(req(10, both)).size(), 4u);
}

TEST_P(QueueControlsConformance, ConcurrencyBoundsRunningJobsAndCompletionFreesPlaces) {
  std::vector<NewJob> jobs;
  for (int i = 0; i < 6; ++i) jobs.push_back(job("limited"));
  for (int i = 0; i < 3; ++i) jobs.push_back(job("free"));
  db->enqueue(jobs);
  set_queue("limited", false, 2);
  const std::vector<std::string> both{"limited", "free"};
  auto first = db->claim(req(10, both));
  const auto limited = std::count_if(first.begin(), first.end(),
                                     [](const ClaimedJob& j) { return j.queue == "limited"; });
  EXPECT_EQ(limited, 2);
  EXPECT_EQ(first.size(), 5u) << "the unlimited queue gives all it has";
  EXPECT_TRUE(db->claim(req(10, both)).empty()) << "both places of 'limited' are taken";
  std::vector<ClaimedJob> one{*std::find_if(first.begin(), first.end(), [](const ClaimedJob& j) {
    return j.queue == "limited";
  })};
  EXPECT_EQ(db->complete(done(one)), 1u);
  auto again = db->claim(req(10, both));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].queue, "limited");
  // A place is also freed by handing a job back unstarted.
  std::vector<JobRef> back{JobRef{again[0].id, again[0].lease_token}};
  EXPECT_EQ(db->release(back), 1u);
  EXPECT_EQ(db->claim(req(10, both)).size(), 1u);
}

TEST_P(QueueControlsConformance, AnExpiredLeaseFreesItsPlace) {
  std::vector<NewJob> jobs{job("q"), job("q")};
  db->enqueue(jobs);
  set_queue("q", false, 1);
  auto first = db->claim(req(10, {"q"}, std::chrono::milliseconds(1)));
  ASSERT_EQ(first.size(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // Its worker is presumed lost: the place is free before any rescue runs.
  auto second = db->claim(req(10, {"q"}));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(second[0].id, first[0].id);
}

TEST_P(QueueControlsConformance, ConcurrentClaimersNeverExceedTheLimit) {
  std::vector<NewJob> jobs;
  for (int i = 0; i < 300; ++i) jobs.push_back(job("q"));
  db->enqueue(jobs);
  set_queue("q", false, 3);
  std::atomic<int> holding{0}, most{0}, finished{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      auto conn = db->connect_another();
      int idle = 0;
      while (finished.load() < 300 && idle < 2000) {
        auto got = conn->claim(req(2, {"q"}));
        if (got.empty()) {
          ++idle;
          std::this_thread::sleep_for(std::chrono::microseconds(200));
          continue;
        }
        idle = 0;
        const int now = holding += static_cast<int>(got.size());
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        holding -= static_cast<int>(got.size());
        EXPECT_EQ(conn->complete(done(got)), got.size());
        finished += static_cast<int>(got.size());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(finished.load(), 300);
  EXPECT_LE(most.load(), 3);
  EXPECT_GE(most.load(), 2) << "claimers did overlap";
}

INSTANTIATE_TEST_SUITE_P(Drivers, QueueControlsConformance, testing::kAllDrivers,
                         testing::driver_kind_name);

TEST(Postgres, AQueuesNotificationIsReportedOnce) {
  std::unique_ptr<Driver> db;
  FASTQ_OPEN_DRIVER("postgres", db);
  ASSERT_GE(db->notification_fd(), 0);
  db->drain_notifications();
  EXPECT_FALSE(db->queues_changed());
  ASSERT_EQ(testing::pg_exec(testing::pg_test_dsn(), "SELECT pg_notify('fastq', 'queues')"), "");
  bool got = false;
  for (int i = 0; i < 200 && !got; ++i) {
    db->drain_notifications();
    got = db->queues_changed();
    if (!got) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(got);
  EXPECT_FALSE(db->queues_changed());
}

}  // namespace
}  // namespace fastq
