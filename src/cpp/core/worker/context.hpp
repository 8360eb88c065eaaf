// What every service of the worker shares: its config, counters and log, the time of its
// last database error and whether it is stopping. Any thread: the config does not change
// once the worker is built; everything else here is atomic.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include "fastq/outcome.hpp"
#include "fastq/worker.hpp"

namespace fastq::worker {

inline std::int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Counters {
  std::atomic<std::uint64_t> claimed{0}, claims{0}, succeeded{0}, failed{0}, retried{0},
      skipped{0},
      completed_written{0}, fenced{0}, flushes{0}, released{0}, rescued{0}, db_errors{0},
      rejected{0}, deferred{0}, stale{0}, sanitized{0}, isolated{0};
  std::atomic<bool> hard_stopped{false};
  WorkerStats snapshot() const {
    return WorkerStats{claimed.load(),  claims.load(),   succeeded.load(),
                       failed.load(),   retried.load(),  skipped.load(),
                       completed_written.load(),
                       fenced.load(),   flushes.load(),  released.load(),
                       rescued.load(),  db_errors.load(), rejected.load(),
                       deferred.load(), stale.load(), sanitized.load(), isolated.load(),
                       hard_stopped.load()};
  }
};

struct Context {
  explicit Context(WorkerConfig c) : cfg(std::move(c)) {
    outcome_limits.max_result_bytes = cfg.max_payload_bytes;
  }

  const WorkerConfig cfg;
  OutcomeLimits outcome_limits;
  Counters counters;
  std::atomic<std::int64_t> last_db_error_us{std::numeric_limits<std::int64_t>::min() / 2};
  // Set once by the poller's shutdown(): no new claims, no new starts.
  std::atomic<bool> stopping{false};

  void log(LogLevel level, const std::string& msg) const {
    if (cfg.log) cfg.log(level, msg);
  }

  // Any thread: a statement failed. Rescues hold off for a lease after the last one.
  void note_db_error() {
    counters.db_errors++;
    last_db_error_us = steady_us();
  }
};

}  // namespace fastq::worker
