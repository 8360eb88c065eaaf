// Lease keeper: renews the lease of every job this worker holds every lease/3 (one
// statement), brings back cancel requests, beats the worker registry row and pings the
// systemd watchdog. Owning thread: the completer (the same io_context that writes outcomes,
// so a stuck completer stops renewing and the jobs go to a live worker).
// Its thread code is the class LeaseKeeper, src/cpp/core/worker/lease_keeper.cpp.
//
// When a held lease is in doubt is decided here, as a pure function tested without threads.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace fastq::lease_keeper {

constexpr std::chrono::milliseconds renew_interval(std::chrono::milliseconds lease) {
  return std::max(lease / 3, std::chrono::milliseconds(1));
}

// Whether a held job's lease may have run out, so it must not start: neither its claim
// (sent at claimed_us) nor a renewal since (sent at confirmed_us) is recent enough to vouch
// for it at now_us, with a tenth of the lease to spare. `held`: this worker still holds
// the lease at all. Steady-clock microseconds of this process.
constexpr bool lease_in_doubt(bool held, std::int64_t claimed_us, std::int64_t confirmed_us,
                              std::int64_t now_us, std::int64_t lease_us) {
  if (!held) return true;
  const std::int64_t since = std::max(claimed_us, confirmed_us);
  return now_us > since + lease_us - lease_us / 10;
}

}  // namespace fastq::lease_keeper
