#include "executor_pool.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "fastq/json.hpp"
#include "fastq/metrics.hpp"
#include "fastq/outcome.hpp"
#include "fastq/worker/executor_pool.hpp"
#include "fastq/worker/lease_keeper.hpp"

namespace fastq::worker {

ExecutorPool::ExecutorPool(Context& ctx, TaskRunner& runner, LocalQueue& queue,
                           LeaseTable& leases, Completer& completer, Producer& producer,
                           std::function<void()> idle_hook)
    : ctx_(ctx),
      runner_(runner),
      queue_(queue),
      leases_(leases),
      completer_(completer),
      producer_(producer),
      idle_hook_(std::move(idle_hook)) {}

void ExecutorPool::start() {
  const int n = ctx_.cfg.concurrency;
  threads_.reserve(static_cast<std::size_t>(n));
  running_ = n;
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([this, i] { execute_loop(i); });
  }
}

void ExecutorPool::finish(bool hard) {
  for (auto& t : threads_) {
    if (hard) {
      t.detach();  // may be inside task code; the caller exits the process
    } else {
      t.join();
    }
  }
  threads_.clear();
}

// Executor (or event loop) thread, once a job's outcome is known: its log line
// (job_log.hpp). The outcome is made storable first (add_outcomes does it again, at no
// cost) so that the line says what the row will say, a result too large included.
void ExecutorPool::report(const JobLogSubject& job, Completion& c) {
  const auto& cfg = ctx_.cfg;
  if (!cfg.log) return;
  if (c.outcome == Outcome::kSucceeded && !cfg.log_jobs &&
      c.result.size() <= ctx_.outcome_limits.max_result_bytes) {
    return;  // the hot path: nothing to say
  }
  if (sanitize_outcome(c, ctx_.outcome_limits)) ctx_.counters.sanitized++;
  if (auto line = outcome_line(job, c, cfg.log_jobs, now_micros())) {
    cfg.log(line->level, line->text);
  }
  if (cfg.log_tracebacks && c.outcome != Outcome::kSucceeded) {
    if (auto tb = traceback_line(job, c)) cfg.log(LogLevel::kDebug, *tb);
  }
}

JobLogSubject ExecutorPool::subject(const ClaimedJob& job) {
  return JobLogSubject{job.id, job.task, job.attempts, job.max_attempts};
}

// Executor threads, when they leave, and async jobs, when they end: the last one out
// ends a graceful stop.
void ExecutorPool::executor_done() {
  if (--running_ == 0) idle_hook_();
}

void ExecutorPool::async_done(Completion&& c) {
  std::vector<Completion> one;
  one.push_back(std::move(c));
  completer_.add_outcomes(one);
  producer_.finished(1);
  if (--async_inflight_ == 0 && ctx_.stopping) idle_hook_();
  producer_.poke();
}

// Executor thread: how long the job waited in this worker between claim and start.
void ExecutorPool::observe_wait(const ClaimedJob& job) const {
  if (!ctx_.cfg.metrics || job.claimed_at_steady_us == 0) return;
  const auto waited = std::max<std::int64_t>(0, steady_us() - job.claimed_at_steady_us);
  ctx_.cfg.metrics->wait_us.observe(static_cast<std::uint64_t>(waited), kTimeBoundsUs);
}

void ExecutorPool::execute_loop(int index) {
  const auto& cfg = ctx_.cfg;
  auto& counters = ctx_.counters;
  runner_.thread_started();
  std::vector<ClaimedJob> batch;
  std::vector<Completion> outs;
  // Slow start: batches grow while jobs are quick (amortising the GIL hand-off) and
  // drop to one job as soon as jobs take long, so a slow job never holds others back.
  const std::size_t max_batch = static_cast<std::size_t>(std::max(1, cfg.exec_batch));
  std::size_t limit = 1;
  while (queue_.pop_batch(batch, static_cast<std::size_t>(cfg.concurrency), limit)) {
    outs.clear();
    outs.reserve(batch.size());
    const auto started = std::chrono::steady_clock::now();
    std::size_t ran = 0, started_async = 0;
    runner_.begin_batch();
    std::size_t skipped = 0;
    bool stop_on_its_way = false;
    for (const auto& job : batch) {
      if (ctx_.stopping) break;  // not started: goes back to the queue
      if (cfg.tracker && cfg.tracker->stop_requested()) {
        // The supervisor is stopping the fleet and this process's signal is on its way:
        // start nothing more (a job a stopping sibling handed back and this process
        // claimed stays unstarted, and goes back with the rest when the signal lands).
        stop_on_its_way = true;
        break;
      }
      ++ran;
      if (lease_in_doubt(job)) {
        // This process was paused or cut off past the lease: another worker may own
        // the job by now. Never start it; hand it back (fenced: a no-op if it moved).
        ++skipped;
        counters.stale++;
        queue_.keep_stale(job);
        producer_.release_stale_soon();
        continue;
      }
      if (queue_.hold_back_if_paused(job)) {
        producer_.release_paused_soon();
        ++skipped;
        continue;
      }
      Completion& c = outs.emplace_back();
      c.id = job.id;
      c.lease_token = job.lease_token;
      if (job.cancel_requested) {
        c.outcome = Outcome::kCancelled;
        c.error_type = kCancelledType;
        c.error = "cancelled while an earlier attempt ran; not started again";
      } else if (job.expired) {
        c.outcome = Outcome::kExpired;
        c.error_type = "fastq.Expired";
        c.error = "not started before its expiry";
      } else if (auto bad = check_row_bounds(job) ? check_row_bounds(job)
                            : check_envelope(job, cfg.registered, cfg.max_payload_bytes)) {
        // A bad message: dead at once with the reason; no task code, no import.
        c.outcome = Outcome::kDead;
        c.error_type = bad->type;
        c.error = std::move(bad->message);
        counters.rejected++;
      } else if (cfg.async_tasks.contains(job.task)) {
        outs.pop_back();  // the outcome arrives later, through async_done
        ++started_async;
        async_inflight_++;
        if (cfg.tracker) cfg.tracker->started(job, index);
        observe_wait(job);
        const Micros began = completer_.note_started(job);
        if (cfg.log_jobs && cfg.log) cfg.log(LogLevel::kInfo, started_line(subject(job)));
        runner_.start_async(job, [this, id = job.id, token = job.lease_token, began,
                                  task = job.task, attempt = job.attempts,
                                  max_attempts = job.max_attempts](Completion&& out) {
          out.id = id;
          out.lease_token = token;
          out.started_at = began;
          report(JobLogSubject{id, task, attempt, max_attempts}, out);
          async_done(std::move(out));
        });
        continue;
      } else {
        if (cfg.tracker) cfg.tracker->started(job, index);
        observe_wait(job);
        c.started_at = completer_.note_started(job);
        if (cfg.log_jobs && cfg.log) cfg.log(LogLevel::kInfo, started_line(subject(job)));
        const auto t0 = steady_us();
        runner_.run(job, c);
        if (auto* m = cfg.metrics) {
          const auto took = static_cast<std::uint64_t>(std::max<std::int64_t>(0, steady_us() - t0));
          m->executed.fetch_add(1, std::memory_order_relaxed);
          m->busy_us.fetch_add(took, std::memory_order_relaxed);
          m->run_us.observe(took, kTimeBoundsUs);
        }
      }
      report(subject(job), c);
    }
    runner_.end_batch();
    if (ran > started_async + skipped) {
      const auto per_job =
          (std::chrono::steady_clock::now() - started) / (ran - started_async - skipped);
      limit = executor_pool::next_batch_limit(limit, max_batch, per_job);
    }
    queue_.keep_unrun(batch, ran);
    producer_.finished(static_cast<int>(ran - started_async - skipped));
    completer_.add_outcomes(outs);
    producer_.poke();
    // Until the signal lands (microseconds): wait rather than take the kept jobs again.
    if (stop_on_its_way) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  runner_.thread_stopping();
  executor_done();
}

// Whether this job's lease may have run out: neither its claim nor a renewal since is
// recent enough to vouch for it (with a tenth of the lease to spare).
bool ExecutorPool::lease_in_doubt(const ClaimedJob& job) const {
  const auto confirmed = leases_.confirmed_us(job.id);
  return lease_keeper::lease_in_doubt(confirmed.has_value(), job.claimed_at_steady_us,
                                      confirmed.value_or(0), steady_us(),
                                      ctx_.cfg.lease.count() * 1000);
}

}  // namespace fastq::worker
