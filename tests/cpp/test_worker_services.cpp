// The worker's services decide with pure functions of (state, now, inputs): claim sizing and
// back-off (producer), rate admission (rate gate), batch sizes (executor pool), when to
// flush (completer), when a lease is in doubt (lease keeper), when to rescue (rescuer).
// No thread, no database. The state they share (the lease table, the local queue) is
// tested here too, from one thread.
#include <gtest/gtest.h>

#include <climits>

#include "fastq/worker/completer.hpp"
#include "fastq/worker/executor_pool.hpp"
#include "fastq/worker/lease_keeper.hpp"
#include "fastq/worker/lease_table.hpp"
#include "fastq/worker/local_queue.hpp"
#include "fastq/worker/producer.hpp"
#include "fastq/worker/rate_gate.hpp"
#include "fastq/worker/rescuer.hpp"

namespace fastq {
namespace {

using namespace std::chrono_literals;
using producer::ClaimDecision;

TEST(Producer, ClaimsAllTheRoomUpToOneBatch) {
  auto d = producer::claim_decision({.capacity = 260, .low_water = 65, .held = 0,
                                     .claim_batch = 256});
  EXPECT_EQ(d.kind, ClaimDecision::kClaim);
  EXPECT_EQ(d.want, 256);
  d = producer::claim_decision({.capacity = 12, .low_water = 3, .held = 0, .claim_batch = 256});
  EXPECT_EQ(d.want, 12);
}

TEST(Producer, WaitsForRoomRatherThanClaimingATrickle) {
  // Full: nothing to claim.
  EXPECT_EQ(producer::claim_decision({.capacity = 8, .low_water = 2, .held = 8}).kind,
            ClaimDecision::kWait);
  // One free place while jobs are held: below low water, the executors poke later.
  EXPECT_EQ(producer::claim_decision({.capacity = 8, .low_water = 2, .held = 7}).kind,
            ClaimDecision::kWait);
  const auto d = producer::claim_decision({.capacity = 8, .low_water = 2, .held = 6});
  EXPECT_EQ(d.kind, ClaimDecision::kClaim);
  EXPECT_EQ(d.want, 2);
}

TEST(Producer, NeverTakesMoreThanMaxJobsAndRetiresWhenDone) {
  auto d = producer::claim_decision(
      {.capacity = 100, .low_water = 25, .held = 0, .claim_batch = 256, .max_jobs = 20,
       .taken = 15});
  EXPECT_EQ(d.kind, ClaimDecision::kClaim);
  EXPECT_EQ(d.want, 5);
  // All taken, some still running: wait for them.
  d = producer::claim_decision(
      {.capacity = 100, .low_water = 25, .held = 3, .max_jobs = 20, .taken = 20});
  EXPECT_EQ(d.kind, ClaimDecision::kWait);
  // All taken and run: retire.
  d = producer::claim_decision(
      {.capacity = 100, .low_water = 25, .held = 0, .max_jobs = 20, .taken = 20});
  EXPECT_EQ(d.kind, ClaimDecision::kRetire);
}

TEST(Producer, AFullClaimClaimsAgainAtOnce) {
  const producer::Backoff b{.current = 80ms, .min = 5ms, .max = 1000ms};
  const auto a = producer::after_claim(256, 256, b, true, false);
  EXPECT_TRUE(a.claim_again);
  EXPECT_FALSE(a.idle);
  EXPECT_EQ(a.next, 5ms) << "the back-off starts over";
}

TEST(Producer, AShortClaimLooksAgainSoon) {
  const producer::Backoff b{.current = 80ms, .min = 5ms, .max = 1000ms};
  const auto a = producer::after_claim(3, 256, b, true, false);
  EXPECT_FALSE(a.claim_again);
  EXPECT_TRUE(a.idle);
  EXPECT_EQ(a.wait, 5ms);
  EXPECT_EQ(a.next, 5ms);
}

TEST(Producer, AnEmptyClaimWaitsForANotificationWhenTheBrokerCanNotify) {
  const producer::Backoff b{.current = 5ms, .min = 5ms, .max = 1000ms};
  const auto a = producer::after_claim(0, 256, b, true, false);
  EXPECT_TRUE(a.idle);
  EXPECT_FALSE(a.check_burst_end);
  EXPECT_EQ(a.wait, 1000ms) << "the fallback poll";
  EXPECT_EQ(a.next, 5ms);
}

TEST(Producer, WithoutNotificationsPollingBacksOffUpToTheCeiling) {
  producer::Backoff b{.current = 5ms, .min = 5ms, .max = 1000ms};
  std::vector<std::chrono::milliseconds> waits;
  for (int i = 0; i < 8; ++i) {
    const auto a = producer::after_claim(0, 256, b, false, false);
    waits.push_back(a.wait);
    b.current = a.next;
  }
  EXPECT_EQ(waits, (std::vector<std::chrono::milliseconds>{5ms, 10ms, 20ms, 40ms, 80ms, 100ms,
                                                           100ms, 100ms}));
  EXPECT_EQ(producer::kPollingCeiling, 100ms);
}

TEST(Producer, ABurstRunChecksForTheEndAndPollsEvenWithNotifications) {
  const producer::Backoff b{.current = 5ms, .min = 5ms, .max = 50ms};
  const auto a = producer::after_claim(0, 10, b, true, true);
  EXPECT_TRUE(a.check_burst_end);
  EXPECT_EQ(a.wait, 5ms);
  EXPECT_EQ(a.next, 10ms);
}

TEST(Producer, FailedClaimsBackOffFrom200msTo5s) {
  producer::Backoff b{.current = 5ms, .min = 5ms, .max = 1000ms};
  std::vector<std::chrono::milliseconds> waits;
  for (int i = 0; i < 12; ++i) {
    const auto a = producer::after_claim_error(b);
    EXPECT_TRUE(a.idle);
    waits.push_back(a.wait);
    b.current = a.next;
  }
  EXPECT_EQ(waits.front(), 200ms);
  EXPECT_EQ(waits.back(), 5000ms);
  EXPECT_TRUE(std::is_sorted(waits.begin(), waits.end()));
}

TEST(RateGate, GrantedTokensStartNowOrWaitAndTheRestAreDeferred) {
  // Three tokens granted, the first due now, one every 100 ms.
  const RateGrant g{.granted = 3, .base_delay = 0};
  EXPECT_EQ(rate_gate::admit(g, 0, 100'000).kind, rate_gate::Admission::kNow);
  auto a = rate_gate::admit(g, 1, 100'000);
  EXPECT_EQ(a.kind, rate_gate::Admission::kWait);
  EXPECT_EQ(a.delay, 100'000);
  a = rate_gate::admit(g, 3, 100'000);
  EXPECT_EQ(a.kind, rate_gate::Admission::kDefer);
  EXPECT_EQ(a.delay, 300'000) << "due when its turn is expected";
}

TEST(RateGate, ABucketInCreditStartsAtOnce) {
  const RateGrant g{.granted = 2, .base_delay = -500'000};  // burst tolerance left
  EXPECT_EQ(rate_gate::admit(g, 0, 100'000).kind, rate_gate::Admission::kNow);
  EXPECT_EQ(rate_gate::admit(g, 1, 100'000).kind, rate_gate::Admission::kNow);
  EXPECT_EQ(rate_gate::admit(g, 1, 100'000).delay, 0);
}

TEST(RateGate, NothingGrantedDefersEverything) {
  const RateGrant g{.granted = 0, .base_delay = 1'000'000};
  const auto a = rate_gate::admit(g, 0, 50'000);
  EXPECT_EQ(a.kind, rate_gate::Admission::kDefer);
  EXPECT_EQ(a.delay, 1'000'000);
}

TEST(RateGate, ALateTimerKeepsStartsAnIntervalApart) {
  using tp = std::chrono::steady_clock::time_point;
  const tp now{10s};
  EXPECT_FALSE(rate_gate::hold_until<tp>(std::nullopt, now, 100ms)) << "no start yet";
  EXPECT_FALSE(rate_gate::hold_until<tp>(tp{9s}, now, 100ms)) << "long ago";
  const auto until = rate_gate::hold_until<tp>(tp{10s - 30ms}, now, 100ms);
  ASSERT_TRUE(until);
  EXPECT_EQ(*until, tp{10s + 70ms});
}

TEST(ExecutorPool, TakesAnEvenShareUpToTheLimit) {
  EXPECT_EQ(executor_pool::batch_share(100, 4, 32), 25u);
  EXPECT_EQ(executor_pool::batch_share(1000, 4, 32), 32u);
  EXPECT_EQ(executor_pool::batch_share(3, 4, 32), 1u) << "one each, none hoarded";
  EXPECT_EQ(executor_pool::batch_share(0, 4, 32), 0u);
  EXPECT_EQ(executor_pool::batch_share(5, 0, 32), 5u) << "no division by zero";
}

TEST(ExecutorPool, BatchesGrowWhileJobsAreQuickAndDropToOneWhenSlow) {
  std::size_t limit = 1;
  for (int i = 0; i < 10; ++i) limit = executor_pool::next_batch_limit(limit, 32, 10us);
  EXPECT_EQ(limit, 32u);
  limit = executor_pool::next_batch_limit(limit, 32, 5ms);
  EXPECT_EQ(limit, 1u);
  EXPECT_EQ(executor_pool::next_batch_limit(4, 0, 1us), 1u);
}

TEST(Completer, FlushesAFullBatchAtOnceElseArmsOneTimer) {
  using completer::FlushAction;
  EXPECT_EQ(completer::flush_action(1, 512, false, false), FlushAction::kArm);
  EXPECT_EQ(completer::flush_action(2, 512, true, false), FlushAction::kNone)
      << "the timer set by the first outcome flushes the second";
  EXPECT_EQ(completer::flush_action(512, 512, true, false), FlushAction::kFlushNow);
  EXPECT_EQ(completer::flush_action(900, 512, true, true), FlushAction::kNone)
      << "one flush posted at a time";
}

TEST(Completer, RetriesBackOffUpTo5s) {
  auto d = completer::kRetryFirst;
  for (int i = 0; i < 10; ++i) d = completer::next_retry(d);
  EXPECT_EQ(d, 5000ms);
  EXPECT_EQ(completer::next_retry(100ms), 200ms);
}

TEST(LeaseKeeper, ALeaseIsInDoubtPastNineTenthsOfItsTerm) {
  constexpr std::int64_t lease = 30'000'000;
  static_assert(!lease_keeper::lease_in_doubt(true, 0, 0, 0, lease));
  EXPECT_FALSE(lease_keeper::lease_in_doubt(true, 0, 0, 27'000'000, lease));
  EXPECT_TRUE(lease_keeper::lease_in_doubt(true, 0, 0, 27'000'001, lease));
  // A renewal sent later vouches for it again.
  EXPECT_FALSE(lease_keeper::lease_in_doubt(true, 0, 20'000'000, 40'000'000, lease));
  // A lease this worker no longer holds is always in doubt.
  EXPECT_TRUE(lease_keeper::lease_in_doubt(false, 0, 0, 0, lease));
}

TEST(LeaseKeeper, RenewsThreeTimesALease) {
  EXPECT_EQ(lease_keeper::renew_interval(30s), 10s);
  EXPECT_EQ(lease_keeper::renew_interval(2ms), 1ms);
}

TEST(Rescuer, HoldsOffForALeaseAfterTheLastDatabaseError) {
  constexpr std::int64_t lease = 10'000'000;
  static_assert(rescuer::rescue_may_run(100 * lease, 0, lease), "no error for a long time");
  EXPECT_FALSE(rescuer::rescue_may_run(5'000'000, 0, lease)) << "half a lease after an error";
  EXPECT_FALSE(rescuer::rescue_may_run(lease - 1, 0, lease));
  EXPECT_TRUE(rescuer::rescue_may_run(lease, 0, lease));
  // A worker that never saw an error (its last error stamped far in the past) may rescue
  // from its first pass on.
  EXPECT_TRUE(rescuer::rescue_may_run(0, INT64_MIN / 2, lease));
}

TEST(Rescuer, OnlyTheLeaderRescues) {
  constexpr std::int64_t lease = 10'000'000;
  EXPECT_EQ(rescuer::rescue_step(false, true, 0, INT64_MIN / 2, lease), rescuer::Step::kSkip);
  EXPECT_EQ(rescuer::rescue_step(false, false, 100 * lease, 0, lease), rescuer::Step::kSkip);
  EXPECT_EQ(rescuer::rescue_step(true, false, 100 * lease, 0, lease), rescuer::Step::kRescue);
  // The leader too holds off after its own database error, except in its pass at start.
  EXPECT_EQ(rescuer::rescue_step(true, false, 1, 0, lease), rescuer::Step::kSkip);
  EXPECT_EQ(rescuer::rescue_step(true, true, 1, 0, lease), rescuer::Step::kRescue);
}

TEST(Rescuer, PassesEveryHalfLeaseWithinHalfASecondAndFiveSeconds) {
  EXPECT_EQ(rescuer::default_interval(30s), 5s);
  EXPECT_EQ(rescuer::default_interval(2s), 1s);
  EXPECT_EQ(rescuer::default_interval(300ms), 500ms);
}

ClaimedJob job(std::string id, std::int64_t token, std::string queue = "default") {
  ClaimedJob j;
  j.id = std::move(id);
  j.lease_token = token;
  j.queue = std::move(queue);
  return j;
}

Completion outcome(std::string id, std::int64_t token) {
  Completion c;
  c.id = std::move(id);
  c.lease_token = token;
  return c;
}

std::vector<std::string> ids(const std::vector<ClaimedJob>& jobs) {
  std::vector<std::string> out;
  for (const auto& j : jobs) out.push_back(j.id);
  return out;
}

TEST(LeaseTable, ARenewalVouchesOnlyForTheLeasesItCovered) {
  LeaseTable t;
  t.hold({job("a", 1), job("b", 1)}, 100);
  EXPECT_EQ(t.confirmed_us("a"), 100);
  std::vector<std::string> cancelled;
  t.renewed({"a"}, cancelled, 500);
  EXPECT_EQ(t.confirmed_us("a"), 500);
  EXPECT_EQ(t.confirmed_us("b"), 100);
  EXPECT_EQ(t.confirmed_us("gone"), std::nullopt);
  EXPECT_EQ(t.refs().size(), 2u);
}

TEST(LeaseTable, CancelRequestsAreKeptForHeldJobsOnlyAndGoWhenSettled) {
  LeaseTable t;
  t.hold({job("a", 1)}, 0);
  std::vector<std::string> cancelled{"a", "not-held"};
  t.renewed({}, cancelled, 0);
  EXPECT_TRUE(t.cancel_requested("a"));
  EXPECT_FALSE(t.cancel_requested("not-held"));
  t.settle({outcome("a", 1)});
  EXPECT_FALSE(t.cancel_requested("a"));
  EXPECT_EQ(t.size(), 0u);
}

TEST(LeaseTable, OnlyTheSameAttemptSettlesOrForgetsALease) {
  LeaseTable t;
  t.hold({job("a", 1), job("b", 1)}, 0);
  // Rescued from this worker and claimed by it again: a new token.
  t.hold({job("a", 2)}, 10);
  t.settle({outcome("a", 1)});  // the old attempt's outcome
  EXPECT_EQ(t.confirmed_us("a"), 10);
  t.forget({job("b", 7)});
  EXPECT_EQ(t.confirmed_us("b"), 0);
  t.forget({job("b", 1)});
  EXPECT_EQ(t.confirmed_us("b"), std::nullopt);
  t.settle({outcome("a", 2)});
  EXPECT_EQ(t.size(), 0u);
}

// A job handed back leaves its cancel request with the row (the next claim reads it from
// there): the table keeps nothing of a job it no longer holds.
TEST(LeaseTable, AForgottenJobTakesItsCancelRequestWithIt) {
  LeaseTable t;
  t.hold({job("a", 1), job("b", 1)}, 0);
  std::vector<std::string> cancelled{"a", "b"};
  t.renewed({}, cancelled, 0);
  t.forget({job("a", 1), job("b", 2)});  // b: another attempt's token, b is still held
  EXPECT_EQ(t.size(), 1u);
  EXPECT_FALSE(t.cancel_requested("a"));
  EXPECT_TRUE(t.cancel_requested("b"));
}

TEST(LeaseTable, AHardStopInterruptsStartedJobsAndReleasesTheRest) {
  LeaseTable t;
  t.hold({job("a", 1), job("b", 1), job("c", 1)}, 0);
  t.started(job("a", 1));
  t.started(job("c", 9));  // another attempt's start does not count
  std::vector<ClaimedJob> running, unstarted;
  t.split_held(running, unstarted);
  EXPECT_EQ(ids(running), std::vector<std::string>{"a"});
  ASSERT_EQ(unstarted.size(), 2u);
  for (const auto& j : unstarted) EXPECT_EQ(j.lease_token, 1);
}

TEST(LocalQueue, ExecutorsTakeAnEvenShareUpToTheirLimit) {
  LocalQueue q;
  std::vector<ClaimedJob> jobs{job("a", 1), job("b", 1), job("c", 1), job("d", 1), job("e", 1)};
  q.push(jobs);
  EXPECT_TRUE(jobs.empty());
  std::vector<ClaimedJob> batch;
  ASSERT_TRUE(q.pop_batch(batch, 2, 32));
  EXPECT_EQ(ids(batch), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_TRUE(q.pop_batch(batch, 2, 1));
  EXPECT_EQ(ids(batch), std::vector<std::string>{"d"});
}

TEST(LocalQueue, CloseHandsBackWhatWaitedAndEndsThePops) {
  LocalQueue q;
  std::vector<ClaimedJob> jobs{job("a", 1), job("b", 1)};
  q.push(jobs);
  EXPECT_EQ(ids(q.close()), (std::vector<std::string>{"a", "b"}));
  std::vector<ClaimedJob> batch;
  EXPECT_FALSE(q.pop_batch(batch, 1, 1));
  EXPECT_TRUE(batch.empty());
}

TEST(LocalQueue, APauseTakesTheQueuedJobsOfPausedQueuesAndHoldsBackStarts) {
  LocalQueue q;
  std::vector<ClaimedJob> jobs{job("a", 1, "mail"), job("b", 1, "sms"), job("c", 1, "mail")};
  q.push(jobs);
  EXPECT_FALSE(q.any_paused());
  EXPECT_FALSE(q.hold_back_if_paused(job("x", 1, "mail")));
  std::vector<ClaimedJob> from_queue, held_back;
  q.pause({"mail"}, from_queue, held_back);
  EXPECT_TRUE(q.any_paused());
  EXPECT_EQ(ids(from_queue), (std::vector<std::string>{"a", "c"}));
  EXPECT_TRUE(held_back.empty());
  EXPECT_TRUE(q.hold_back_if_paused(job("x", 1, "mail")));
  EXPECT_FALSE(q.hold_back_if_paused(job("y", 1, "sms")));
  // The next pause read hands back what executors held back.
  from_queue.clear();
  q.pause({"mail"}, from_queue, held_back);
  EXPECT_EQ(ids(held_back), std::vector<std::string>{"x"});
  EXPECT_TRUE(q.take_paused().empty());
  // Resumed: nothing is held back any more.
  held_back.clear();
  q.pause({}, from_queue, held_back);
  EXPECT_FALSE(q.any_paused());
  EXPECT_FALSE(q.hold_back_if_paused(job("z", 1, "mail")));
  std::vector<ClaimedJob> batch;
  ASSERT_TRUE(q.pop_batch(batch, 1, 8));
  EXPECT_EQ(ids(batch), std::vector<std::string>{"b"});
}

TEST(LocalQueue, LeftoversAreTheUnrunThenTheStaleThenThePaused) {
  LocalQueue q;
  std::vector<ClaimedJob> batch{job("a", 1), job("b", 1), job("c", 1)};
  q.keep_unrun(batch, 1);
  q.keep_stale(job("s", 1));
  std::vector<ClaimedJob> from_queue, held_back;
  q.pause({"default"}, from_queue, held_back);
  ASSERT_TRUE(q.hold_back_if_paused(job("p", 1)));
  EXPECT_EQ(ids(q.take_leftovers()), (std::vector<std::string>{"b", "c", "s", "p"}));
  EXPECT_TRUE(q.take_stale().empty());
  EXPECT_TRUE(q.take_paused().empty());
}

}  // namespace
}  // namespace fastq
