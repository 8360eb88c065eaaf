// When a worker may return expired leases to the queue: a pure decision, tested without
// threads or a database (tests/cpp/test_outcome.cpp).
//
//   if (fastq::rescue_may_run(now_us, last_db_error_us, lease_us)) { flush; renew; rescue; }
#pragma once

#include <cstdint>

namespace fastq {

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

}  // namespace fastq
