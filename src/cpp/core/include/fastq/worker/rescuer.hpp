// Rescuer: returns the jobs of workers presumed dead (expired leases) to the queue. It runs
// on one elected worker only: the holder of the leader lease "rescuer" (Driver::hold_lease,
// table fastq_leader), renewed with every pass; when that worker dies its lease expires and
// the next live worker to pass takes it over. Owning thread: the completer (a rescue must
// follow this worker's own flush and renewal, see rescue_step).
// Its thread code is the class Rescuer, src/cpp/core/worker/rescuer.cpp.
//
// Its decisions are pure functions, tested without threads or a database.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace fastq::rescuer {

// The leader lease row the rescuers of every worker compete for.
inline constexpr const char* kLeaseName = "rescuer";

// An expired lease means "presumed dead" only while the database was reachable: after an
// outage every worker's leases expire at once, and live workers still hold outcomes of
// jobs they finished meanwhile. Each of them writes those and renews its leases within a
// lease of coming back (renewals run every lease/3, outcome retries back off to at most
// 5 s), so a rescuer waits one lease after its own last database error before rescuing.
// Times are steady-clock microseconds of this process.
constexpr bool rescue_may_run(std::int64_t now_us, std::int64_t last_db_error_us,
                              std::int64_t lease_us) {
  return now_us - last_db_error_us >= lease_us;
}

enum class Step {
  kSkip,    // not the leader, or too soon after a database error
  kRescue,  // flush own outcomes, renew own leases, then rescue
};

// One rescue pass: only the leader rescues, and not within a lease of this worker's last
// database error (unless this is the pass at start, before the worker holds anything).
constexpr Step rescue_step(bool leader, bool at_start, std::int64_t now_us,
                           std::int64_t last_db_error_us, std::int64_t lease_us) {
  if (!leader) return Step::kSkip;
  if (!at_start && !rescue_may_run(now_us, last_db_error_us, lease_us)) return Step::kSkip;
  return Step::kRescue;
}

// How often the rescuer passes when not configured: half a lease, within [0.5 s, 5 s], so
// a dead worker's jobs come back within about one lease, also for short leases.
constexpr std::chrono::milliseconds default_interval(std::chrono::milliseconds lease) {
  return std::clamp(lease / 2, std::chrono::milliseconds(500), std::chrono::milliseconds(5000));
}

}  // namespace fastq::rescuer
