#include "fastq/metrics.hpp"

#include <algorithm>
#include <cstdio>
#include <string>

namespace fastq {
namespace {

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void sample(std::string& out, const std::string& name, double value) {
  out += name;
  out += ' ';
  out += number(value);
  out += '\n';
}

void counter(std::string& out, const char* name, const char* help, std::uint64_t value) {
  family(out, name, "counter", help);
  sample(out, name, static_cast<double>(value));
}

// `scale` turns the stored unit into the exposed one (µs -> s: 1e-6).
void histogram(std::string& out, const char* name, const char* help,
               std::span<const WorkerMetrics* const> processes, Histogram WorkerMetrics::*field,
               const std::uint64_t (&bounds)[Histogram::kBuckets], double scale) {
  family(out, name, "histogram", help);
  std::uint64_t per_bucket[Histogram::kBuckets + 1] = {};
  std::uint64_t count = 0, sum = 0;
  for (const auto* p : processes) {
    const Histogram& h = p->*field;
    for (int i = 0; i <= Histogram::kBuckets; ++i) {
      per_bucket[i] += h.buckets[i].load(std::memory_order_relaxed);
    }
    count += h.count.load(std::memory_order_relaxed);
    sum += h.sum.load(std::memory_order_relaxed);
  }
  std::uint64_t cumulative = 0;
  for (int i = 0; i < Histogram::kBuckets; ++i) {
    cumulative += per_bucket[i];
    sample(out, std::string(name) + "_bucket{le=\"" + number(static_cast<double>(bounds[i]) * scale) +
                    "\"}",
           static_cast<double>(cumulative));
  }
  cumulative += per_bucket[Histogram::kBuckets];
  // Buckets and count are read one after the other while workers add: make +Inf and
  // _count agree, and never below a finite bucket.
  const std::uint64_t total = std::max(cumulative, count);
  sample(out, std::string(name) + "_bucket{le=\"+Inf\"}", static_cast<double>(total));
  sample(out, std::string(name) + "_sum", static_cast<double>(sum) * scale);
  sample(out, std::string(name) + "_count", static_cast<double>(total));
}

std::uint64_t total(std::span<const WorkerMetrics* const> processes,
                    std::atomic<std::uint64_t> WorkerMetrics::*field) {
  std::uint64_t n = 0;
  for (const auto* p : processes) n += (p->*field).load(std::memory_order_relaxed);
  return n;
}

}  // namespace

std::string render_metrics(std::span<const WorkerMetrics* const> processes,
                           const SupervisorGauges& gauges) {
  std::string out;
  out.reserve(8192);
  counter(out, "fastq_worker_claims_total", "Claim statements sent by this host's workers.",
          total(processes, &WorkerMetrics::claim_statements));
  counter(out, "fastq_worker_claimed_jobs_total", "Jobs those claims returned.",
          total(processes, &WorkerMetrics::claimed));
  counter(out, "fastq_worker_executed_jobs_total", "Jobs an executor thread ran (sync tasks).",
          total(processes, &WorkerMetrics::executed));
  family(out, "fastq_worker_executor_busy_seconds_total", "counter",
         "Executor thread time spent inside jobs (its rate over the executor count is the "
         "utilisation).");
  sample(out, "fastq_worker_executor_busy_seconds_total",
         static_cast<double>(total(processes, &WorkerMetrics::busy_us)) * 1e-6);
  counter(out, "fastq_worker_flushes_total", "Outcome flushes written.",
          total(processes, &WorkerMetrics::flushes));
  counter(out, "fastq_worker_outcomes_total", "Outcomes the database accepted.",
          total(processes, &WorkerMetrics::outcomes));
  histogram(out, "fastq_worker_claim_batch_size", "Jobs per claim statement that returned any.",
            processes, &WorkerMetrics::claim_batch, kBatchBounds, 1.0);
  histogram(out, "fastq_worker_job_wait_seconds",
            "From claim to start inside the worker (local queue, rate-limit waits).", processes,
            &WorkerMetrics::wait_us, kTimeBoundsUs, 1e-6);
  histogram(out, "fastq_worker_job_run_seconds", "Run time of synchronous jobs.", processes,
            &WorkerMetrics::run_us, kTimeBoundsUs, 1e-6);
  histogram(out, "fastq_worker_flush_seconds", "Latency of one outcome flush statement.",
            processes, &WorkerMetrics::flush_us, kTimeBoundsUs, 1e-6);
  family(out, "fastq_worker_processes", "gauge", "Worker processes alive under this supervisor.");
  sample(out, "fastq_worker_processes", gauges.processes);
  counter(out, "fastq_worker_processes_started_total", "Worker processes forked.",
          gauges.started);
  counter(out, "fastq_worker_processes_crashed_total",
          "Worker processes that died other than by a clean exit.", gauges.crashed);
  counter(out, "fastq_worker_time_limit_kills_total",
          "Jobs whose process was killed at their hard time limit.", gauges.timeouts);
  counter(out, "fastq_worker_memory_recycles_total",
          "Worker processes asked to stop above --max-memory-per-child.", gauges.recycled);
  return out;
}

}  // namespace fastq
