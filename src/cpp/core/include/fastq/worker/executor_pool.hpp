// Executor pool: `concurrency` threads that take batches of jobs from the local queue and
// run them through the TaskRunner (the Python bindings enter the interpreter once per
// batch). Owning threads: the executors themselves; each owns its batch, the local queue
// is shared with the producer, its mutex inside (local_queue.hpp).
// Its thread code is the class ExecutorPool, src/cpp/core/worker/executor_pool.cpp.
//
// How much each executor takes is decided here, as pure functions tested without threads.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>

namespace fastq::executor_pool {

// Batches grow only while jobs take less than this each.
inline constexpr std::chrono::microseconds kQuickJob{200};

// How many of `queued` jobs one executor takes: at most `limit`, and never more than an
// even share, so that no executor hoards jobs an idle sibling could start.
constexpr std::size_t batch_share(std::size_t queued, std::size_t concurrency,
                                  std::size_t limit) {
  const std::size_t c = std::max<std::size_t>(concurrency, 1);
  return std::min({queued, (queued + c - 1) / c, limit});
}

// Slow start: the next batch limit after a batch whose jobs took `per_job` each. Batches
// double while jobs are quick (amortising the GIL hand-off) and drop to one job as soon as
// they take long, so a slow job never holds others back.
constexpr std::size_t next_batch_limit(std::size_t limit, std::size_t max_batch,
                                       std::chrono::nanoseconds per_job) {
  return per_job < kQuickJob ? std::min(limit * 2, std::max<std::size_t>(max_batch, 1)) : 1;
}

}  // namespace fastq::executor_pool
