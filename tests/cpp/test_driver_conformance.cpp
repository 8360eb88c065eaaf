// The job store's conformance suite (fastq/job_store.hpp), run on every driver: memory,
// SQLite and PostgreSQL. The other stores' suites are in test_store_conformance.cpp and
// test_queue_controls.cpp.
#include <gtest/gtest.h>

#include <climits>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "fastq/time.hpp"
#include "fixtures.hpp"

namespace fastq {
namespace {

NewJob job(std::string task, std::string queue = "default", int priority = 0) {
  NewJob j;
  j.id = new_job_id();
  j.task = std::move(task);
  j.queue = std::move(queue);
  j.priority = priority;
  j.args = "[1,\"two\"]";
  j.kwargs = "{\"k\":\"v\\\"q\"}";
  return j;
}

ClaimRequest req(int limit, std::vector<std::string> queues = {"default"},
                 std::chrono::milliseconds lease = std::chrono::milliseconds(30000)) {
  return ClaimRequest{std::move(queues), limit, lease, "test:1"};
}

Completion ok(const ClaimedJob& j, std::string result = "42") {
  Completion c;
  c.id = j.id;
  c.lease_token = j.lease_token;
  c.result = std::move(result);
  return c;
}

using JobStoreConformance = testing::StoreConformance<JobStore>;

TEST_P(JobStoreConformance, EnqueueClaimCompleteRoundTrip) {
  auto j = job("app.tasks.add");
  db->enqueue(std::span(&j, 1));
  auto rec = db->get(j.id);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->state, "queued");
  EXPECT_EQ(rec->attempts, 0);

  auto claimed = db->claim(req(10));
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].id, j.id);
  EXPECT_EQ(claimed[0].task, "app.tasks.add");
  EXPECT_EQ(claimed[0].args, j.args);
  EXPECT_EQ(claimed[0].kwargs, j.kwargs);
  EXPECT_EQ(claimed[0].attempts, 1);
  EXPECT_NE(claimed[0].lease_token, 0);
  EXPECT_EQ(db->get(j.id)->state, "running");
  EXPECT_TRUE(db->claim(req(10)).empty());

  auto c = ok(claimed[0], "{\"sum\":3}");
  EXPECT_EQ(db->complete(std::span(&c, 1)), 1u);
  rec = db->get(j.id);
  EXPECT_EQ(rec->state, "succeeded");
  EXPECT_EQ(rec->result, "{\"sum\":3}");
}

TEST_P(JobStoreConformance, FailureKeepsTypeMessageAndTraceback) {
  auto j = job("t");
  db->enqueue(std::span(&j, 1));
  auto claimed = db->claim(req(1));
  ASSERT_EQ(claimed.size(), 1u);
  Completion c;
  c.id = j.id;
  c.lease_token = claimed[0].lease_token;
  c.outcome = Outcome::kFailed;
  c.error_type = "ValueError";
  c.error = "bad \"value\"\nline";
  c.traceback = "Traceback (most recent call last):\n  ...";
  EXPECT_EQ(db->complete(std::span(&c, 1)), 1u);
  auto rec = db->get(j.id);
  EXPECT_EQ(rec->state, "failed");
  EXPECT_EQ(rec->error_type, "ValueError");
  EXPECT_EQ(rec->error, c.error);
  EXPECT_EQ(rec->traceback, c.traceback);
  EXPECT_FALSE(rec->result);
}

TEST_P(JobStoreConformance, ClaimTakesABatchInPriorityOrder) {
  std::vector<NewJob> jobs;
  for (int i = 0; i < 50; ++i) jobs.push_back(job("t", "default", i % 3));
  db->enqueue(jobs);
  auto first = db->claim(req(16));  // exactly the 16 jobs of priority 2
  ASSERT_EQ(first.size(), 16u);
  for (const auto& j : first) EXPECT_EQ(j.priority, 2) << "highest priority first";
  auto rest = db->claim(req(100));
  ASSERT_EQ(rest.size(), 34u);
  EXPECT_EQ(rest.front().priority, 1);
  EXPECT_EQ(rest.back().priority, 0);
  EXPECT_NE(first[0].lease_token, rest[0].lease_token) << "each claim has its own token";
  std::set<std::string> ids;
  for (auto& j : first) ids.insert(j.id);
  for (auto& j : rest) ids.insert(j.id);
  EXPECT_EQ(ids.size(), 50u);
}

TEST_P(JobStoreConformance, ClaimRespectsQueuesAndRunAt) {
  auto a = job("t", "a");
  auto b = job("t", "b");
  auto later = job("t", "a");
  later.run_at = now_micros() + 3'600'000'000;
  std::vector<NewJob> jobs{a, b, later};
  db->enqueue(jobs);
  EXPECT_EQ(db->count_runnable(std::vector<std::string>{"a"}), 1u);
  auto got = db->claim(req(10, {"a"}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, a.id);
  got = db->claim(req(10, {"a", "b"}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, b.id);
  EXPECT_EQ(db->get(later.id)->state, "queued");
}

TEST_P(JobStoreConformance, CompletionIsFencedByLeaseToken) {
  auto j = job("t");
  db->enqueue(std::span(&j, 1));
  auto first = db->claim(req(1, {"default"}, std::chrono::milliseconds(1)));
  ASSERT_EQ(first.size(), 1u);
  const StartMark began{first[0].id, first[0].lease_token, now_micros()};
  EXPECT_EQ(db->mark_started(std::span(&began, 1)), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(db->rescue_expired(), 1u);
  auto rec = db->get(j.id);
  EXPECT_EQ(rec->state, "queued");
  EXPECT_EQ(rec->attempts, 1) << "worker death counts as an attempt";
  auto second = db->claim(req(1));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].attempts, 2);

  auto zombie = ok(first[0], "\"zombie\"");
  EXPECT_EQ(db->complete(std::span(&zombie, 1)), 0u) << "the stale token must be refused";
  auto live = ok(second[0], "\"live\"");
  EXPECT_EQ(db->complete(std::span(&live, 1)), 1u);
  EXPECT_EQ(db->get(j.id)->result, "\"live\"");
  EXPECT_EQ(db->complete(std::span(&zombie, 1)), 0u);
  EXPECT_EQ(db->get(j.id)->result, "\"live\"");
}

TEST_P(JobStoreConformance, RenewKeepsLeaseAlive) {
  auto j = job("t");
  db->enqueue(std::span(&j, 1));
  auto got = db->claim(req(1, {"default"}, std::chrono::milliseconds(1)));
  ASSERT_EQ(got.size(), 1u);
  JobRef ref{got[0].id, got[0].lease_token};
  EXPECT_EQ(db->renew(std::span(&ref, 1), std::chrono::milliseconds(60000)), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(db->rescue_expired(), 0u);
  JobRef wrong{got[0].id, got[0].lease_token + 1};
  EXPECT_EQ(db->renew(std::span(&wrong, 1), std::chrono::milliseconds(60000)), 0u);
}

TEST_P(JobStoreConformance, ReleaseReturnsJobWithoutSpendingAnAttempt) {
  auto j = job("t");
  db->enqueue(std::span(&j, 1));
  auto got = db->claim(req(1));
  ASSERT_EQ(got.size(), 1u);
  JobRef ref{got[0].id, got[0].lease_token};
  EXPECT_EQ(db->release(std::span(&ref, 1)), 1u);
  auto rec = db->get(j.id);
  EXPECT_EQ(rec->state, "queued");
  EXPECT_EQ(rec->attempts, 0);
  EXPECT_EQ(db->release(std::span(&ref, 1)), 0u) << "a released token is spent";
}

TEST_P(JobStoreConformance, SiblingConnectionsShareTheQueue) {
  auto other = driver->connect_another();
  std::vector<NewJob> jobs;
  for (int i = 0; i < 100; ++i) jobs.push_back(job("t"));
  db->enqueue(jobs);
  auto a = db->claim(req(60));
  auto b = other->claim(req(60));
  EXPECT_EQ(a.size() + b.size(), 100u);
  std::set<std::string> ids;
  for (auto& j : a) ids.insert(j.id);
  for (auto& j : b) ids.insert(j.id);
  EXPECT_EQ(ids.size(), 100u) << "no job claimed twice";
}

TEST_P(JobStoreConformance, ConcurrentClaimersNeverShareAJob) {
  std::vector<NewJob> jobs;
  for (int i = 0; i < 2000; ++i) jobs.push_back(job("t"));
  db->enqueue(jobs);
  std::vector<std::vector<std::string>> seen(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto conn = driver->connect_another();
      while (true) {
        auto got = conn->claim(req(37));
        if (got.empty()) break;
        std::vector<Completion> done;
        for (auto& j : got) {
          seen[static_cast<std::size_t>(t)].push_back(j.id);
          done.push_back(ok(j));
        }
        EXPECT_EQ(conn->complete(done), done.size());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::multiset<std::string> all;
  for (auto& v : seen) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 2000u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 2000u);
}

TEST_P(JobStoreConformance, RetryRequeuesForLaterKeepingTheError) {
  auto j = job("t");
  db->enqueue(std::span(&j, 1));
  auto got = db->claim(req(1));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].max_attempts, kDefaultMaxAttempts);
  Completion c;
  c.id = j.id;
  c.lease_token = got[0].lease_token;
  c.outcome = Outcome::kRetry;
  c.error_type = "TimeoutError";
  c.error = "provider slow";
  c.retry_at = now_micros() + 3'600'000'000;
  EXPECT_EQ(db->complete(std::span(&c, 1)), 1u);
  auto rec = db->get(j.id);
  EXPECT_EQ(rec->state, "queued");
  EXPECT_EQ(rec->attempts, 1);
  EXPECT_EQ(rec->error, "provider slow");
  EXPECT_TRUE(db->claim(req(1)).empty()) << "not before retry_at";
  c.retry_at = now_micros() - 1;
  auto j2 = job("t");
  db->enqueue(std::span(&j2, 1));
  got = db->claim(req(1));
  ASSERT_EQ(got.size(), 1u);
  c.id = j2.id;
  c.lease_token = got[0].lease_token;
  EXPECT_EQ(db->complete(std::span(&c, 1)), 1u);
  got = db->claim(req(1));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, j2.id);
  EXPECT_EQ(got[0].attempts, 2);
}

TEST_P(JobStoreConformance, WorkerLostPastMaxAttemptsIsDead) {
  auto j = job("t");
  j.max_attempts = 2;
  db->enqueue(std::span(&j, 1));
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto got = db->claim(req(1, {"default"}, std::chrono::milliseconds(1)));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].attempts, attempt);
    EXPECT_EQ(got[0].max_attempts, 2);
    const StartMark began{got[0].id, got[0].lease_token, now_micros()};
    EXPECT_EQ(db->mark_started(std::span(&began, 1)), 1u);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(db->rescue_expired(), 1u);
  }
  auto rec = db->get(j.id);
  EXPECT_EQ(rec->state, "dead");
  EXPECT_EQ(rec->error_type, "fastq.WorkerLost");
  EXPECT_EQ(rec->error, worker_lost_message(2));
  EXPECT_TRUE(db->claim(req(1)).empty());
}

TEST_P(JobStoreConformance, ClaimFlagsExpiredJobs) {
  auto fresh = job("t");
  fresh.expires_at = now_micros() + 3'600'000'000;
  auto stale = job("t");
  stale.expires_at = now_micros() - 1'000'000;
  std::vector<NewJob> jobs{fresh, stale};
  db->enqueue(jobs);
  auto got = db->claim(req(10));
  ASSERT_EQ(got.size(), 2u);
  for (const auto& j : got) EXPECT_EQ(j.expired, j.id == stale.id) << j.id;
}

TEST_P(JobStoreConformance, CancelQueuedRunningFinishedAndMissing) {
  auto queued = job("t");
  auto running = job("t");
  db->enqueue(std::span(&running, 1));
  auto got = db->claim(req(1));
  ASSERT_EQ(got.size(), 1u);
  db->enqueue(std::span(&queued, 1));

  EXPECT_EQ(db->cancel(queued.id), CancelResult::kCancelled);
  auto rec = db->get(queued.id);
  EXPECT_EQ(rec->state, "cancelled");
  EXPECT_EQ(rec->error_type, "fastq.Cancelled");
  EXPECT_TRUE(db->claim(req(10)).empty()) << "a cancelled job never starts";

  EXPECT_EQ(db->cancel(running.id), CancelResult::kRequested);
  EXPECT_EQ(db->get(running.id)->state, "running");
  EXPECT_TRUE(db->get(running.id)->cancel_requested);
  JobRef ref{got[0].id, got[0].lease_token};
  std::vector<std::string> cancelled;
  EXPECT_EQ(db->renew(std::span(&ref, 1), std::chrono::milliseconds(30000), &cancelled), 1u);
  EXPECT_EQ(cancelled, std::vector<std::string>{running.id});

  auto done = ok(got[0]);
  EXPECT_EQ(db->complete(std::span(&done, 1)), 1u);
  EXPECT_EQ(db->cancel(running.id), CancelResult::kFinished);
  EXPECT_EQ(db->get(running.id)->state, "succeeded");
  EXPECT_EQ(db->cancel(new_job_id()), CancelResult::kNotFound);
}

TEST_P(JobStoreConformance, UniqueKeyYieldsTheActiveJob) {
  auto first = job("t");
  first.unique_key = "t:order-7";
  auto same_batch = job("t");
  same_batch.unique_key = "t:order-7";
  auto other = job("t");
  other.unique_key = "t:order-8";
  auto plain = job("t");
  std::vector<NewJob> jobs{first, same_batch, other, plain};
  auto ids = db->enqueue(jobs);
  EXPECT_EQ(ids, (std::vector<std::string>{first.id, first.id, other.id, plain.id}));
  EXPECT_FALSE(db->get(same_batch.id));

  auto later = job("t");
  later.unique_key = "t:order-7";
  EXPECT_EQ(db->enqueue(std::span(&later, 1)), std::vector<std::string>{first.id});
  auto got = db->claim(req(10));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(db->enqueue(std::span(&later, 1)), std::vector<std::string>{first.id})
      << "running still holds the key";
  std::vector<Completion> done;
  for (auto& g : got) done.push_back(ok(g));
  db->complete(done);
  EXPECT_EQ(db->enqueue(std::span(&later, 1)), std::vector<std::string>{later.id})
      << "a finished job frees its key";
}

// Large batches of unique-key jobs (a poller's pages) may take a faster path; a conflict
// anywhere in one still resolves every key the same way.
TEST_P(JobStoreConformance, LargeUniqueBatchesResolveConflicts) {
  std::vector<NewJob> first, second;
  for (int i = 0; i < 400; ++i) {
    first.push_back(job("t"));
    first.back().unique_key = "big:" + std::to_string(i);
  }
  EXPECT_EQ(db->enqueue(first).size(), 400u);
  for (int i = 399; i < 799; ++i) {  // key 399 is still held by the first batch
    second.push_back(job("t"));
    second.back().unique_key = "big:" + std::to_string(i);
  }
  const auto ids = db->enqueue(second);
  ASSERT_EQ(ids.size(), 400u);
  EXPECT_EQ(ids[0], first[399].id);
  for (std::size_t i = 1; i < ids.size(); ++i) EXPECT_EQ(ids[i], second[i].id);
  EXPECT_FALSE(db->get(second[0].id));
  EXPECT_TRUE(db->get(second[399].id));
}

TEST_P(JobStoreConformance, UniqueKeyHoldsUnderConcurrentEnqueues) {
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> seen(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto conn = driver->connect_another();
      for (int i = 0; i < 25; ++i) {
        auto j = job("t");
        j.unique_key = "t:the-one";
        auto ids = conn->enqueue(std::span(&j, 1));
        seen[static_cast<std::size_t>(t)].push_back(ids.at(0));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> distinct;
  for (auto& v : seen) distinct.insert(v.begin(), v.end());
  EXPECT_EQ(distinct.size(), 1u);
  EXPECT_EQ(db->count_runnable(std::vector<std::string>{"default"}), 1u);
}

TEST_P(JobStoreConformance, ABigBatchKeepsEveryField) {
  const Micros now = now_micros();
  for (const bool timed : {false, true}) {
    std::vector<NewJob> jobs;
    for (int i = 0; i < 3000; ++i) {
      auto j = job("t", "bulk", i % 3);
      j.args = "[" + std::to_string(i) + ",\"tab\\there\\nand \\\\ é\"]";
      j.max_attempts = 2;
      j.expires_at = now + 3'600'000'000;
      j.time_limit = 1.5;
      j.soft_time_limit = i % 2 ? 0.25 : 0;
      j.rate_key = i % 2 ? "t:r" : "";
      if (timed) j.run_at = now - 1'000'000;
      jobs.push_back(j);
    }
    const auto ids = db->enqueue(jobs);
    ASSERT_EQ(ids.size(), jobs.size());
    for (std::size_t i = 0; i < jobs.size(); ++i) EXPECT_EQ(ids[i], jobs[i].id);

    auto got = db->claim(req(5000, {"bulk"}));
    ASSERT_EQ(got.size(), jobs.size());
    std::map<std::string, const NewJob*> by_id;
    for (const auto& j : jobs) by_id[j.id] = &j;
    for (const auto& c : got) {
      const NewJob& j = *by_id.at(c.id);
      EXPECT_EQ(c.task, "t");
      EXPECT_EQ(c.queue, "bulk");
      EXPECT_EQ(c.args, j.args);
      EXPECT_EQ(c.kwargs, j.kwargs);
      EXPECT_EQ(c.priority, j.priority);
      EXPECT_EQ(c.max_attempts, 2);
      EXPECT_FALSE(c.expired);
      EXPECT_DOUBLE_EQ(c.time_limit, 1.5);
      EXPECT_DOUBLE_EQ(c.soft_time_limit, j.soft_time_limit);
      EXPECT_EQ(c.rate_key, j.rate_key);
    }
  }
}

TEST_P(JobStoreConformance, ABatchIsAllOrNothing) {
  if (GetParam() == "memory") GTEST_SKIP() << "no transactions in memory";
  auto taken = job("t");
  db->enqueue(std::span(&taken, 1));
  std::vector<NewJob> jobs;
  for (int i = 0; i < 100; ++i) jobs.push_back(job("t"));
  jobs.push_back(taken);  // a duplicate id fails the batch
  EXPECT_THROW(db->enqueue(jobs), DriverError);
  EXPECT_FALSE(db->get(jobs[0].id));
  EXPECT_EQ(db->count_runnable(std::vector<std::string>{"default"}), 1u);
  jobs.pop_back();
  jobs.back().unique_key = "t:k";  // and so does one with a unique key
  jobs.push_back(taken);
  EXPECT_THROW(db->enqueue(jobs), DriverError);
  EXPECT_FALSE(db->get(jobs[0].id));
  EXPECT_EQ(db->count_runnable(std::vector<std::string>{"default"}), 1u);
}

TEST_P(JobStoreConformance, DuplicateIdIsRefused) {
  auto j = job("t");
  db->enqueue(std::span(&j, 1));
  EXPECT_THROW(db->enqueue(std::span(&j, 1)), DriverError);
}

INSTANTIATE_TEST_SUITE_P(Drivers, JobStoreConformance, testing::kAllDrivers,
                         testing::driver_kind_name);

TEST_P(JobStoreConformance, DeferReturnsTheJobUnspentUntilItsRunAt) {
  std::vector<NewJob> jobs{job("t"), job("t")};
  db->enqueue(jobs);
  auto got = db->claim(req(2));
  ASSERT_EQ(got.size(), 2u);
  const Micros later = now_micros() + 3'600'000'000;
  std::vector<Deferral> d{{got[0].id, got[0].lease_token, later},
                          {got[1].id, got[1].lease_token + 1, later}};  // a stale token
  EXPECT_EQ(db->defer(d), 1u) << "fenced by the lease token";
  auto rec = db->get(got[0].id);
  EXPECT_EQ(rec->state, "queued");
  EXPECT_EQ(rec->attempts, 0) << "a deferral spends no attempt";
  EXPECT_FALSE(rec->started_at);
  EXPECT_EQ(db->get(got[1].id)->state, "running");
  EXPECT_EQ(db->count_runnable(std::vector<std::string>{"default"}), 0u) << "not before run_at";
  EXPECT_TRUE(db->claim(req(10)).empty());
  EXPECT_EQ(db->defer(d), 0u) << "a deferred job holds no lease any more";
  // A deferral to now (or the past) makes it runnable again at once.
  Deferral now{got[1].id, got[1].lease_token, 0};
  EXPECT_EQ(db->defer(std::span(&now, 1)), 1u);
  got = db->claim(req(10));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].attempts, 1);
}

TEST_P(JobStoreConformance, QuarantineFindsNoCulpritAmongValidRows) {
  std::vector<NewJob> jobs{job("t"), job("t"), job("t")};
  db->enqueue(jobs);
  EXPECT_EQ(db->quarantine(req(10), "claim failed"), 0u) << "every row can be claimed";
  for (const auto& j : jobs) EXPECT_EQ(db->get(j.id)->state, "queued");
  EXPECT_EQ(db->claim(req(10)).size(), 3u) << "and nothing was claimed or spent";
  EXPECT_EQ(db->get(jobs[0].id)->attempts, 1);
}

TEST_P(JobStoreConformance, ExtremeNumbersRoundTrip) {
  // The bounds of the columns: priority is a smallint, max_attempts an integer; run_at at
  // the epoch, expires_at on the last day of year 9999.
  auto top = job("t", "default", SHRT_MAX);
  auto bottom = job("t", "default", SHRT_MIN);
  top.max_attempts = INT_MAX;
  bottom.max_attempts = 1;
  top.run_at = 0;
  top.expires_at = 253'402'300'799'000'000;  // 9999-12-31 23:59:59 UTC
  bottom.time_limit = 1e9;
  bottom.soft_time_limit = 1e-3;
  std::vector<NewJob> jobs{bottom, top};
  db->enqueue(jobs);
  auto got = db->claim(req(10));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, top.id) << "the highest priority first";
  EXPECT_EQ(got[0].priority, SHRT_MAX);
  EXPECT_EQ(got[0].max_attempts, INT_MAX);
  EXPECT_FALSE(got[0].expired);
  EXPECT_EQ(got[1].priority, SHRT_MIN);
  EXPECT_DOUBLE_EQ(got[1].time_limit, 1e9);
  EXPECT_NEAR(got[1].soft_time_limit, 1e-3, 1e-9);
  // A retry far in the future keeps the job queued, not lost.
  Completion c;
  c.id = got[0].id;
  c.lease_token = got[0].lease_token;
  c.outcome = Outcome::kRetry;
  c.error_type = "Later";
  c.retry_at = 253'402'300'799'000'000;
  EXPECT_EQ(db->complete(std::span(&c, 1)), 1u);
  EXPECT_EQ(db->get(top.id)->state, "queued");
  EXPECT_TRUE(db->claim(req(10)).empty());
  EXPECT_EQ(db->release_claim(std::numeric_limits<std::int64_t>::max()), 0u);
  EXPECT_EQ(db->release_claim(std::numeric_limits<std::int64_t>::min()), 0u);
}

TEST_P(JobStoreConformance, HugeTextRoundTripsVerbatim) {
  // Megabytes of arguments, result, error and traceback, with escapes and multi-byte text.
  std::string big = "[\"";
  while (big.size() < 4'000'000) big += "\\\"q\\\\ \\n \xc3\xa9\xe2\x9c\x93 \\u0000 ";
  big += "\"]";
  auto j = job("t");
  j.args = big;
  j.kwargs = "{\"k\":" + big + "}";
  db->enqueue(std::span(&j, 1));
  auto got = db->claim(req(1));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].args, j.args);
  EXPECT_EQ(got[0].kwargs, j.kwargs);
  auto c = ok(got[0], big);
  EXPECT_EQ(db->complete(std::span(&c, 1)), 1u);
  EXPECT_EQ(db->get(j.id)->result, big);

  auto f = job("t");
  db->enqueue(std::span(&f, 1));
  got = db->claim(req(1));
  ASSERT_EQ(got.size(), 1u);
  Completion fail;
  fail.id = f.id;
  fail.lease_token = got[0].lease_token;
  fail.outcome = Outcome::kFailed;
  fail.error_type = std::string(255, 'E');
  // Cut on whole repetitions (22 bytes after the 2 of `["`): valid UTF-8 text.
  fail.error = big.substr(2, 22 * 45'000);
  fail.traceback = big.substr(2, 22 * 90'000);
  EXPECT_EQ(db->complete(std::span(&fail, 1)), 1u);
  const auto rec = db->get(f.id);
  EXPECT_EQ(rec->error_type, fail.error_type);
  EXPECT_EQ(rec->error, fail.error);
  EXPECT_EQ(rec->traceback, fail.traceback);
}

// A NUL byte in a text value is stored verbatim where the database's text allows it, or
// refused as a DriverError where it does not (PostgreSQL text): never cut short silently.
TEST_P(JobStoreConformance, ANulByteInTextIsKeptOrRefusedNeverCut) {
  auto j = job("t");
  db->enqueue(std::span(&j, 1));
  auto got = db->claim(req(1));
  ASSERT_EQ(got.size(), 1u);
  Completion fail;
  fail.id = j.id;
  fail.lease_token = got[0].lease_token;
  fail.outcome = Outcome::kFailed;
  fail.error_type = "ValueError";
  fail.error = std::string("before\0after", 12);
  fail.traceback = std::string("tb\0", 3);
  bool refused = false;
  try {
    EXPECT_EQ(db->complete(std::span(&fail, 1)), 1u);
  } catch (const DriverError& e) {
    refused = true;
    EXPECT_FALSE(e.transient()) << e.what();
  }
  const auto rec = db->get(j.id);
  ASSERT_TRUE(rec);
  if (refused) {
    EXPECT_EQ(rec->state, "running") << "a refused outcome writes nothing";
  } else {
    EXPECT_EQ(rec->state, "failed");
    EXPECT_EQ(rec->error, fail.error);
    EXPECT_EQ(rec->traceback, fail.traceback);
  }

  auto named = job(std::string("app.t\0ask", 9));
  refused = false;
  try {
    db->enqueue(std::span(&named, 1));
  } catch (const DriverError& e) {
    refused = true;
  }
  const auto stored = db->get(named.id);
  if (refused) {
    EXPECT_FALSE(stored);
  } else {
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->task, named.task);
  }
}

TEST(Sqlite, RefusesInMemoryDatabase) {
  EXPECT_THROW(make_sqlite_driver(":memory:"), DriverError);
}

TEST(Postgres, BadConninfoFailsClearly) {
  try {
    make_postgres_driver("host=127.0.0.1 port=1 connect_timeout=2");
    FAIL() << "expected DriverError";
  } catch (const DriverError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot connect to PostgreSQL"), std::string::npos);
  }
}

}  // namespace
}  // namespace fastq

namespace fastq {
namespace {

TEST_P(JobStoreConformance, ReleaseClaimReturnsWhatOneClaimTookUnspent) {
  std::vector<NewJob> jobs{job("a"), job("b"), job("c")};
  db->enqueue(jobs);
  ClaimRequest req{{"default"}, 2, std::chrono::milliseconds(30000), "w:1", 424242};
  const auto claimed = db->claim(req);
  ASSERT_EQ(claimed.size(), 2u);
  EXPECT_EQ(claimed[0].lease_token, 424242);
  auto other = db->claim(ClaimRequest{{"default"}, 5, std::chrono::milliseconds(30000), "w:2"});
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(db->release_claim(424242), 2u);
  for (const auto& c : claimed) {
    const auto rec = db->get(c.id);
    EXPECT_EQ(rec->state, "queued");
    EXPECT_EQ(rec->attempts, 0);
  }
  EXPECT_EQ(db->get(other[0].id)->state, "running") << "another claim is left alone";
  EXPECT_EQ(db->release_claim(424242), 0u);
}

}  // namespace
}  // namespace fastq

namespace fastq {
namespace {

StartMark mark(const ClaimedJob& j, Micros at = 0) {
  return StartMark{j.id, j.lease_token, at ? at : now_micros()};
}

// Claims `j` with a lease that is over at once, and lets it expire.
ClaimedJob claim_expiring(JobStore& db, const std::string& id) {
  auto got = db.claim(req(1, {"default"}, std::chrono::milliseconds(1)));
  EXPECT_EQ(got.size(), 1u);
  if (got.empty()) return {};
  EXPECT_EQ(got[0].id, id);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return got[0];
}

TEST_P(JobStoreConformance, ClaimLeavesStartedAtNullAndMarkStartedIsFencedByToken) {
  auto j = job("t");
  db->enqueue(std::span(&j, 1));
  auto got = db->claim(req(1));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(db->get(j.id)->started_at) << "a claim is not a start";
  // PostgreSQL stores the database's clock minus the start's age when sent: the stored start
  // may lie later than the one sent by at most the time the calls took.
  const Micros before = now_micros();
  const Micros t = before - 1'000'000;
  const StartMark wrong{j.id, got[0].lease_token + 1, t};
  EXPECT_EQ(db->mark_started(std::span(&wrong, 1)), 0u);
  EXPECT_FALSE(db->get(j.id)->started_at);
  const StartMark right = mark(got[0], t);
  EXPECT_EQ(db->mark_started(std::span(&right, 1)), 1u);
  const Micros took = now_micros() - before;
  const auto at = db->get(j.id)->started_at;
  ASSERT_TRUE(at);
  EXPECT_GE(*at, t - 1000);
  EXPECT_LE(*at, t + took + 1000);
  const StartMark again = mark(got[0], t + 500'000);
  EXPECT_EQ(db->mark_started(std::span(&again, 1)), 0u) << "the first start stands";
  EXPECT_EQ(*db->get(j.id)->started_at, *at);
  EXPECT_EQ(db->mark_started({}), 0u);
}

TEST_P(JobStoreConformance, MarkStartedWritesABatch) {
  std::vector<NewJob> jobs{job("a"), job("b"), job("c")};
  db->enqueue(jobs);
  auto got = db->claim(req(3));
  ASSERT_EQ(got.size(), 3u);
  std::vector<StartMark> marks{mark(got[0]), mark(got[2])};
  EXPECT_EQ(db->mark_started(marks), 2u);
  EXPECT_TRUE(db->get(got[0].id)->started_at);
  EXPECT_FALSE(db->get(got[1].id)->started_at);
  EXPECT_TRUE(db->get(got[2].id)->started_at);
}

TEST_P(JobStoreConformance, CompletionFillsStartedAtWhenNoMarkDid) {
  std::vector<NewJob> jobs{job("a"), job("b")};
  db->enqueue(jobs);
  auto got = db->claim(req(2));
  ASSERT_EQ(got.size(), 2u);
  // PostgreSQL stores a start as the database's clock minus the start's age when sent, so
  // a stored start may lie later than the one sent by at most the time the call took.
  const Micros before_mark = now_micros();
  const Micros marked = before_mark - 2'000'000, carried = before_mark - 1'000'000;
  const StartMark m = mark(got[0], marked);
  ASSERT_EQ(db->mark_started(std::span(&m, 1)), 1u);
  const Micros mark_took = now_micros() - before_mark;
  std::vector<Completion> done{ok(got[0]), ok(got[1])};
  done[0].started_at = carried;
  done[1].started_at = carried;
  EXPECT_EQ(db->complete(done), 2u);
  const Micros complete_took = now_micros() - before_mark;
  const Micros a_start = *db->get(got[0].id)->started_at;
  const Micros b_start = *db->get(got[1].id)->started_at;
  EXPECT_GE(a_start, marked - 1000) << "a recorded start stands";
  EXPECT_LE(a_start, marked + mark_took + 1000) << "a recorded start stands";
  EXPECT_GE(b_start, carried - 1000);
  EXPECT_LE(b_start, carried + complete_took + 1000);
  // A job ended without running (expired, cancelled, bad message) has no start.
  auto k = job("c");
  db->enqueue(std::span(&k, 1));
  got = db->claim(req(1));
  ASSERT_EQ(got.size(), 1u);
  Completion c = ok(got[0]);
  c.outcome = Outcome::kDead;
  c.error_type = "fastq.UnknownTask";
  EXPECT_EQ(db->complete(std::span(&c, 1)), 1u);
  EXPECT_FALSE(db->get(k.id)->started_at);
}

TEST_P(JobStoreConformance, ARetriedJobsNextClaimIsNotStartedYet) {
  auto j = job("t");
  db->enqueue(std::span(&j, 1));
  auto got = db->claim(req(1));
  ASSERT_EQ(got.size(), 1u);
  Completion c = ok(got[0]);
  c.outcome = Outcome::kRetry;
  c.retry_at = now_micros() - 1;
  c.started_at = now_micros();
  ASSERT_EQ(db->complete(std::span(&c, 1)), 1u);
  got = db->claim(req(1));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(db->get(j.id)->started_at) << "the start of the previous attempt is not this one's";
}

TEST_P(JobStoreConformance, RescueOfALeaseThatNeverStartedRefundsTheAttempt) {
  auto j = job("t");
  j.max_attempts = 1;
  db->enqueue(std::span(&j, 1));
  claim_expiring(*db, j.id);
  EXPECT_EQ(db->rescue_expired(), 1u);
  auto rec = db->get(j.id);
  EXPECT_EQ(rec->state, "queued") << "never started: not charged, even on its last attempt";
  EXPECT_EQ(rec->attempts, 0);
  EXPECT_EQ(rec->interrupted, 1);
  EXPECT_FALSE(rec->started_at);
  EXPECT_EQ(db->claim(req(1)).size(), 1u) << "runnable again at once";
}

TEST_P(JobStoreConformance, RescueOfAStartedLeaseIsCharged) {
  auto j = job("t");
  j.max_attempts = 2;
  db->enqueue(std::span(&j, 1));
  auto got = claim_expiring(*db, j.id);
  const StartMark m = mark(got);
  ASSERT_EQ(db->mark_started(std::span(&m, 1)), 1u);
  EXPECT_EQ(db->rescue_expired(), 1u);
  auto rec = db->get(j.id);
  EXPECT_EQ(rec->state, "queued");
  EXPECT_EQ(rec->attempts, 1);
  EXPECT_EQ(rec->interrupted, 0);
  got = claim_expiring(*db, j.id);
  const StartMark m2 = mark(got);
  ASSERT_EQ(db->mark_started(std::span(&m2, 1)), 1u);
  EXPECT_EQ(db->rescue_expired(), 1u);
  rec = db->get(j.id);
  EXPECT_EQ(rec->state, "dead");
  EXPECT_EQ(rec->error_type, kWorkerLostType);
  EXPECT_EQ(rec->attempts, 2);
}

// The rescue statement's "give up?" is is_last_attempt (types.hpp), the answer the
// supervisor and Python's retry policy give: attempt by attempt, on both sides of the bound.
TEST_P(JobStoreConformance, RescueGivesUpExactlyWhereIsLastAttemptSays) {
  for (const int max_attempts : {1, 3}) {
    auto j = job("t");
    j.max_attempts = max_attempts;
    db->enqueue(std::span(&j, 1));
    for (int attempt = 1; attempt <= max_attempts; ++attempt) {
      const auto got = claim_expiring(*db, j.id);
      ASSERT_EQ(got.attempts, attempt);
      const StartMark m = mark(got);
      ASSERT_EQ(db->mark_started(std::span(&m, 1)), 1u);
      EXPECT_EQ(db->rescue_expired(), 1u);
      EXPECT_EQ(db->get(j.id)->state,
                is_last_attempt(attempt, max_attempts) ? "dead" : "queued")
          << "attempt " << attempt << " of " << max_attempts;
    }
  }
  static_assert(!is_last_attempt(0, 1) && is_last_attempt(1, 1) && !is_last_attempt(2, 3));
}

TEST_P(JobStoreConformance, UnstartedRescuesAreRefundedOnlyUpToTheBound) {
  auto j = job("t");
  j.max_attempts = 1;
  db->enqueue(std::span(&j, 1));
  for (int n = 1; n <= kMaxUnspentHandbacks; ++n) {
    claim_expiring(*db, j.id);
    EXPECT_EQ(db->rescue_expired(), 1u);
    auto rec = db->get(j.id);
    EXPECT_EQ(rec->state, "queued");
    EXPECT_EQ(rec->attempts, 0);
    EXPECT_EQ(rec->interrupted, n);
  }
  claim_expiring(*db, j.id);
  EXPECT_EQ(db->rescue_expired(), 1u);
  auto rec = db->get(j.id);
  EXPECT_EQ(rec->state, "dead") << "past the bound it is charged like a started run";
  EXPECT_EQ(rec->error_type, kWorkerLostType);
  EXPECT_EQ(rec->attempts, 1);
  EXPECT_EQ(rec->interrupted, kMaxUnspentHandbacks);
}

TEST_P(JobStoreConformance, InterruptCountsTheCutOffRunAndRefundsUpToTheBound) {
  auto j = job("t");
  j.max_attempts = 2;
  db->enqueue(std::span(&j, 1));
  for (int n = 1; n <= kMaxUnspentHandbacks; ++n) {
    auto got = db->claim(req(1));
    ASSERT_EQ(got.size(), 1u);
    const StartMark m = mark(got[0]);
    ASSERT_EQ(db->mark_started(std::span(&m, 1)), 1u);
    JobRef ref{got[0].id, got[0].lease_token};
    JobRef stale{got[0].id, got[0].lease_token + 1};
    EXPECT_EQ(db->interrupt(std::span(&stale, 1)), 0u) << "fenced by token";
    EXPECT_EQ(db->interrupt(std::span(&ref, 1)), 1u);
    EXPECT_EQ(db->interrupt(std::span(&ref, 1)), 0u);
    auto rec = db->get(j.id);
    EXPECT_EQ(rec->state, "queued");
    EXPECT_EQ(rec->attempts, 0) << "refunded while below the bound";
    EXPECT_EQ(rec->interrupted, n);
  }
  // Past the bound each cut-off is charged: attempt 1 of 2 stays spent...
  auto got = db->claim(req(1));
  ASSERT_EQ(got.size(), 1u);
  JobRef ref{got[0].id, got[0].lease_token};
  EXPECT_EQ(db->interrupt(std::span(&ref, 1)), 1u);
  auto rec = db->get(j.id);
  EXPECT_EQ(rec->state, "queued");
  EXPECT_EQ(rec->attempts, 1);
  EXPECT_EQ(rec->interrupted, kMaxUnspentHandbacks + 1);
  // ...and with none left the job ends.
  got = db->claim(req(1));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].attempts, 2);
  ref = JobRef{got[0].id, got[0].lease_token};
  EXPECT_EQ(db->interrupt(std::span(&ref, 1)), 1u);
  rec = db->get(j.id);
  EXPECT_EQ(rec->state, "dead");
  EXPECT_EQ(rec->attempts, 2);
  EXPECT_EQ(rec->interrupted, kMaxUnspentHandbacks + 2);
  EXPECT_EQ(rec->error_type, kInterruptedType);
  EXPECT_EQ(rec->error, interrupted_message(kMaxUnspentHandbacks + 2));
  EXPECT_TRUE(db->claim(req(1)).empty());
}

}  // namespace
}  // namespace fastq

namespace fastq {
namespace {

// A worker's claim connection commits without waiting for the WAL flush
// (JobStore::commit_claims_async); every other connection keeps durable commits, and the
// claim connection keeps its setting after a reconnect.
TEST(PostgresDriver, OnlyTheClaimConnectionCommitsAsyncAndKeepsItAfterAReconnect) {
  std::unique_ptr<Driver> d;
  FASTQ_OPEN_DRIVER("postgres", d);
  const KeysetQuery setting{"SELECT current_setting('synchronous_commit') AS k", {}, "k", ""};
  const KeysetQuery pid{"SELECT pg_backend_pid()::bigint AS k", {}, "k", ""};
  const auto text = [](Driver& drv, const KeysetQuery& q) {
    const auto keys = keyset_source(drv).select_keys(q, std::nullopt, 1);
    return keys.empty() ? std::string("-") : std::get<std::string>(keys.front());
  };
  EXPECT_EQ(text(*d, setting), "on");
  d->commit_claims_async();
  EXPECT_EQ(text(*d, setting), "off");
  auto other = d->connect_another();
  EXPECT_EQ(text(*other, setting), "on") << "a sibling connection keeps durable commits";

  // The server ends the claim connection; the driver reconnects and sets it again.
  const auto keys = keyset_source(*d).select_keys(pid, std::nullopt, 1);
  ASSERT_EQ(keys.size(), 1u);
  const auto backend = std::get<std::int64_t>(keys.front());
  testing::probe_text("postgres", "",
                      "SELECT pg_terminate_backend(" + std::to_string(backend) + ")");
  for (int i = 0; i < 50; ++i) {  // the first call after the kill fails (transient)
    try {
      EXPECT_EQ(text(*d, setting), "off");
      break;
    } catch (const DriverError& e) {
      EXPECT_TRUE(e.transient()) << e.what();
    }
  }
  EXPECT_NE(std::get<std::int64_t>(keyset_source(*d).select_keys(pid, std::nullopt, 1).front()),
            backend);
  EXPECT_EQ(text(*d, setting), "off");
}

}  // namespace
}  // namespace fastq
