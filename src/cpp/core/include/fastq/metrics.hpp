// A worker process's own metrics, for `fastq_worker --metrics-port N`: counters and
// histograms made of lock-free atomics, so that executors, the poller and the completer
// add to them without locks, and so that they can live in memory shared between the
// prefork supervisor and its children (one WorkerMetrics per child slot, kept across
// restarts of that child, so every counter only grows). The supervisor sums them and
// serves the Prometheus text format (MetricsServer, metrics_server.hpp).
//
//   WorkerMetrics m;                  // or Supervisor::child_metrics() in a child
//   cfg.metrics = &m;                 // WorkerConfig: the worker fills it
//   std::string text = render_metrics(std::span(&ptr, 1), extra);
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>

namespace fastq {

struct Histogram {
  static constexpr int kBuckets = 14;
  std::atomic<std::uint64_t> buckets[kBuckets + 1] = {};  // cumulative on render; last: +Inf
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::uint64_t> sum{0};  // in the unit observed (µs, or jobs)

  // `bounds` has kBuckets ascending upper bounds in the unit observed.
  void observe(std::uint64_t value, const std::uint64_t (&bounds)[kBuckets]) {
    int i = 0;
    while (i < kBuckets && value > bounds[i]) ++i;
    buckets[i].fetch_add(1, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
    sum.fetch_add(value, std::memory_order_relaxed);
  }
};

// Upper bounds: times in microseconds (0.5 ms .. 10 s), batch sizes in jobs (1 .. 8192).
inline constexpr std::uint64_t kTimeBoundsUs[Histogram::kBuckets] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000};
inline constexpr std::uint64_t kBatchBounds[Histogram::kBuckets] = {
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};

struct WorkerMetrics {
  std::atomic<std::uint64_t> claim_statements{0};  // claim statements sent
  std::atomic<std::uint64_t> claimed{0};           // jobs they returned
  std::atomic<std::uint64_t> executed{0};          // jobs an executor ran (sync tasks)
  std::atomic<std::uint64_t> busy_us{0};           // executor time inside jobs
  std::atomic<std::uint64_t> flushes{0};           // outcome flushes written
  std::atomic<std::uint64_t> outcomes{0};          // outcomes the database accepted
  Histogram claim_batch;  // jobs per claim statement that returned any
  Histogram wait_us;      // claim to start, inside this worker (local queue, rate limits)
  Histogram run_us;       // start to end of a synchronous job
  Histogram flush_us;     // latency of one outcome flush (the complete statement)
};

// Extra lines for the exposition (the supervisor's own gauges and counters).
struct SupervisorGauges {
  int processes = 0;  // worker processes alive now
  std::uint64_t started = 0, crashed = 0, timeouts = 0, recycled = 0;
};

// The Prometheus text format (version 0.0.4) of the sum over `processes`, then `gauges`.
std::string render_metrics(std::span<const WorkerMetrics* const> processes,
                           const SupervisorGauges& gauges);

}  // namespace fastq
