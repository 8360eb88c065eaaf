// Producer: claims jobs into the worker's local queue, wakes on LISTEN notifications, backs
// off when idle. Owning thread: the poller (the thread that called Worker::run(), running a
// Boost.Asio io_context with the claim connection, the LISTEN socket and the signals).
// Its thread code is the class Producer, src/cpp/core/worker/producer.cpp.
//
// Its decisions are pure functions of (state, inputs), tested without threads or a
// database (tests/cpp/test_worker_services.cpp):
//
//   auto d = fastq::producer::claim_decision({capacity, low_water, held, batch, max, taken});
//   if (d.kind == ClaimDecision::kClaim) got = driver.claim({.., d.want, ..});
//   auto next = fastq::producer::after_claim(got, d.want, state, can_notify, burst);
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace fastq::producer {

using std::chrono::milliseconds;

// Longest idle back-off for a broker that cannot notify: bounds enqueue-to-start latency.
inline constexpr milliseconds kPollingCeiling{100};
// After a failed claim: wait at least this, doubling up to kErrorBackoffMax.
inline constexpr milliseconds kErrorBackoffMin{200};
inline constexpr milliseconds kErrorBackoffMax{5000};

struct ClaimInputs {
  int capacity = 1;        // concurrency + prefetch: jobs this worker may hold
  int low_water = 1;       // with jobs held, claim only once this much room is free
  int held = 0;            // claimed and not yet executed (or handed back)
  int claim_batch = 256;   // most jobs one claim statement takes
  std::uint64_t max_jobs = 0;  // retire after this many (0: never)
  std::uint64_t taken = 0;     // jobs claimed and kept so far (deferred ones excluded)
};

struct ClaimDecision {
  enum Kind { kWait, kClaim, kRetire } kind = kWait;
  int want = 0;  // kClaim: how many to ask for
};

// How many jobs to claim now: as many as there is room for, in one statement, but not a
// trickle (room below low_water while jobs are held waits for the executors to free more),
// and never past max_jobs; once max_jobs are taken and none is held, retire.
constexpr ClaimDecision claim_decision(const ClaimInputs& in) {
  const int free = in.capacity - in.held;
  if (free <= 0 || (in.held > 0 && free < in.low_water)) return {};
  int want = std::min(free, in.claim_batch);
  if (in.max_jobs > 0) {
    if (in.taken >= in.max_jobs) {
      return in.held == 0 ? ClaimDecision{ClaimDecision::kRetire, 0} : ClaimDecision{};
    }
    want = static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(want),
                                                    in.max_jobs - in.taken));
  }
  return {ClaimDecision::kClaim, want};
}

// The idle back-off between claims.
struct Backoff {
  milliseconds current{5};
  milliseconds min{5};     // idle_poll_min
  milliseconds max{1000};  // idle_poll_max
};

struct AfterClaim {
  bool claim_again = false;     // claim at once (the claim came back full)
  bool idle = false;            // waiting: executors' pokes are ignored until a wake-up
  bool check_burst_end = false; // nothing came back: a burst run may be done
  milliseconds wait{0};         // otherwise claim again after this (or a notification)
  milliseconds next{0};         // the back-off to keep
};

// What to do after a claim that asked for `want` and got `got` jobs. A full claim claims
// again at once; a short one looks again soon (others took the rows); an empty one waits
// for a notification with a long fallback poll when the broker can notify, and otherwise
// polls with a back-off doubling up to kPollingCeiling (an idle SQLite poll is a read).
constexpr AfterClaim after_claim(int got, int want, const Backoff& b, bool can_notify,
                                 bool burst) {
  AfterClaim a;
  if (got >= want) {
    a.claim_again = true;
    a.next = b.min;
    return a;
  }
  a.idle = true;
  if (got > 0) {
    a.wait = a.next = b.min;
    return a;
  }
  a.check_burst_end = burst;
  if (can_notify && !burst) {
    a.wait = b.max;
    a.next = b.current;
    return a;
  }
  a.wait = b.current;
  a.next = std::min(b.current * 2, std::min(b.max, kPollingCeiling));
  return a;
}

// After a claim that failed with a transient error: wait, then try again.
constexpr AfterClaim after_claim_error(const Backoff& b) {
  AfterClaim a;
  a.idle = true;
  a.wait = std::max(b.current, kErrorBackoffMin);
  a.next = std::min(b.current * 2, kErrorBackoffMax);
  return a;
}

}  // namespace fastq::producer
