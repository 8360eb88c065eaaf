// The worker's services decide with pure functions of (state, now, inputs): claim sizing and
// back-off (producer), rate admission (rate gate), batch sizes (executor pool), when to
// flush (completer), when a lease is in doubt (lease keeper), when to rescue (rescuer).
// No thread, no database.
#include <gtest/gtest.h>

#include <climits>

#include "fastq/worker/completer.hpp"
#include "fastq/worker/executor_pool.hpp"
#include "fastq/worker/lease_keeper.hpp"
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

}  // namespace
}  // namespace fastq
