// Rate gate: holds rate-limited jobs until their token is due. Owning thread: the poller
// (it takes tokens from the database with Driver::acquire_rate right after a claim and
// keeps the jobs whose token is not due yet on a timer).
// Its thread code is the class RateGate, src/cpp/core/worker/rate_gate.cpp.
//
// The bucket arithmetic (GCRA) is fastq/rate.hpp; what the gate does with one grant is
// decided here, as pure functions tested without threads or a database.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>

#include "fastq/types.hpp"

namespace fastq::rate_gate {

enum class Admission {
  kNow,    // its token is due: to the local queue
  kWait,   // its token is due within the horizon: held here `delay` microseconds
  kDefer,  // beyond the horizon: back to the database, due `delay` microseconds from now
};

struct Admit {
  Admission kind = Admission::kNow;
  Micros delay = 0;
};

// The n-th job (0-based) of a bucket that asked `grant` for tokens one `interval` apart.
constexpr Admit admit(const RateGrant& grant, std::size_t n, Micros interval) {
  const Micros delay =
      std::max<Micros>(0, grant.base_delay + static_cast<Micros>(n) * interval);
  if (n < static_cast<std::size_t>(std::max(grant.granted, 0))) {
    return {delay > 0 ? Admission::kWait : Admission::kNow, delay};
  }
  return {Admission::kDefer, delay};
}

// A held job whose token came due at `now`: nullopt lets it start; otherwise the instant
// it must wait for, an `interval` after this worker's last start in the bucket (`last`,
// empty if none), so that a late timer does not start overdue tokens in a bunch.
template <class TimePoint, class Duration>
constexpr std::optional<TimePoint> hold_until(std::optional<TimePoint> last, TimePoint now,
                                              Duration interval) {
  if (last && *last + interval > now) return *last + interval;
  return std::nullopt;
}

}  // namespace fastq::rate_gate
