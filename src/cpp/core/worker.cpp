#include "fastq/worker.hpp"

#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "fastq/job_log.hpp"
#include "fastq/json.hpp"
#include "fastq/notify.hpp"
#include "fastq/outcome.hpp"
#include "fastq/platform.hpp"
#include "fastq/rate.hpp"
#include "fastq/worker/executor_pool.hpp"
#include "fastq/worker/lease_keeper.hpp"
#include "fastq/worker/lease_table.hpp"
#include "fastq/worker/local_queue.hpp"
#include "fastq/worker/producer.hpp"
#include "fastq/worker/rate_gate.hpp"
#include "fastq/worker/rescuer.hpp"
#include "worker/completer.hpp"
#include "worker/context.hpp"
#include "worker/lease_keeper.hpp"
#include "worker/rescuer.hpp"

namespace asio = boost::asio;

namespace fastq {

namespace {
using std::chrono::milliseconds;
using worker::steady_us;


// Saves the process's SIGINT/SIGTERM dispositions and restores them on scope exit, so a
// worker embedded in Python hands the interpreter its own handlers back.
class SavedSignals {
 public:
  SavedSignals() {
    sigaction(SIGINT, nullptr, &int_);
    sigaction(SIGTERM, nullptr, &term_);
    sigaction(SIGUSR1, nullptr, &usr1_);
  }
  ~SavedSignals() {
    sigaction(SIGINT, &int_, nullptr);
    sigaction(SIGTERM, &term_, nullptr);
    sigaction(SIGUSR1, &usr1_, nullptr);
  }

 private:
  struct sigaction int_ {};
  struct sigaction term_ {};
  struct sigaction usr1_ {};
};

// The config as the worker uses it: checked, and its defaults that depend on other fields
// filled in.
WorkerConfig checked(WorkerConfig cfg) {
  if (cfg.queues.empty()) throw std::invalid_argument("worker needs at least one queue");
  if (cfg.concurrency < 1) throw std::invalid_argument("concurrency must be at least 1");
  if (cfg.claim_batch < 1) throw std::invalid_argument("claim_batch must be at least 1");
  if (cfg.burst) cfg.idle_poll_max = std::min(cfg.idle_poll_max, milliseconds(50));
  if (cfg.rescue_interval.count() <= 0) {
    cfg.rescue_interval = rescuer::default_interval(cfg.lease);
  }
  return cfg;
}
}  // namespace

struct Worker::Impl {
  Impl(std::unique_ptr<Driver> d, TaskRunner& r, WorkerConfig c)
      : ctx(checked(std::move(c))), runner(r), claim_db(std::move(d)) {
    capacity = cfg.capacity();
    low_water = std::max(1, capacity / 4);
    backoff = cfg.idle_poll_min;
  }

  worker::Context ctx;
  const WorkerConfig& cfg = ctx.cfg;
  const OutcomeLimits& outcome_limits = ctx.outcome_limits;
  worker::Counters& counters = ctx.counters;
  std::atomic<bool>& stopping = ctx.stopping;
  TaskRunner& runner;
  std::unique_ptr<Driver> claim_db;  // poller thread only

  // Poller (runs on the thread that called run()).
  asio::io_context poll_io;
  asio::steady_timer idle_timer{poll_io};
  asio::signal_set signals{poll_io};
  std::optional<asio::posix::stream_descriptor> notify_sd;
  asio::steady_timer notify_retry{poll_io};
  asio::steady_timer grace_timer{poll_io};
  // Rate-limited jobs holding a token that is not due yet (poller thread only).
  std::multimap<std::chrono::steady_clock::time_point, ClaimedJob> rate_wait;
  Micros deferred_until = 0;
  std::unordered_map<std::string, std::optional<std::chrono::steady_clock::time_point>>
      last_rate_start;  // burst mode waits for the jobs it handed back for later
  asio::steady_timer rate_timer{poll_io};
  bool hard = false;  // poller thread; read by run() after the poller stopped
  std::atomic<int> running_executors{0};
  std::atomic<int> async_inflight{0};  // started by start_async, outcome not back yet
  asio::steady_timer pause_timer{poll_io};
  int capacity = 0;
  int low_water = 1;
  milliseconds backoff{5};
  std::atomic<bool> idle{false};
  std::atomic<bool> claim_posted{false};
  std::atomic<int> held{0};  // claimed by us and not yet executed
  std::exception_ptr fatal;

  // Local queue (with the jobs set aside unstarted and the paused queues).
  LocalQueue queue;
  std::vector<std::thread> executors;

  // Leases held by this worker: id -> token, from claim until the outcome is written.
  LeaseTable leases;

  // Completer thread: the completer, the lease keeper and the rescuer.
  asio::io_context done_io;
  std::thread completer_thread;
  worker::Completer completer{ctx, done_io, leases, [this] {
    asio::post(poll_io, [this] {
      if (idle) on_notified();
    });
  }};
  worker::LeaseKeeper lease_keeper{ctx, done_io, completer, leases};
  worker::Rescuer rescuer{ctx, done_io, completer, lease_keeper,
                          [this] { asio::post(poll_io, [this] { on_notified(); }); }};

  void log(LogLevel level, const std::string& msg) { ctx.log(level, msg); }

  // Executor (or event loop) thread, once a job's outcome is known: its log line
  // (job_log.hpp). The outcome is made storable first (add_outcomes does it again, at no
  // cost) so that the line says what the row will say, a result too large included.
  void report(const JobLogSubject& job, Completion& c) {
    if (!cfg.log) return;
    if (c.outcome == Outcome::kSucceeded && !cfg.log_jobs &&
        c.result.size() <= outcome_limits.max_result_bytes) {
      return;  // the hot path: nothing to say
    }
    if (sanitize_outcome(c, outcome_limits)) counters.sanitized++;
    if (auto line = outcome_line(job, c, cfg.log_jobs, now_micros())) {
      cfg.log(line->level, line->text);
    }
    if (cfg.log_tracebacks && c.outcome != Outcome::kSucceeded) {
      if (auto tb = traceback_line(job, c)) cfg.log(LogLevel::kDebug, *tb);
    }
  }

  static JobLogSubject subject(const ClaimedJob& job) {
    return JobLogSubject{job.id, job.task, job.attempts, job.max_attempts};
  }

  void note_db_error() { ctx.note_db_error(); }

  // ---- poller -------------------------------------------------------------------------

  std::size_t quarantine(const ClaimRequest& request, const std::string& why) {
    try {
      return claim_db->quarantine(request, why);
    } catch (const DriverError& e) {
      log(LogLevel::kWarning, std::string("looking for the row that failed the claim: ") +
                                  e.what());
      return 0;
    }
  }

  void maybe_claim() {
    if (stopping) return;
    const auto taken = counters.claimed.load() - counters.deferred.load();
    const auto decision = producer::claim_decision(
        {capacity, low_water, held.load(), cfg.claim_batch, cfg.max_jobs, taken});
    if (decision.kind == producer::ClaimDecision::kRetire) {
      // Retiring: what we held has run; stop (the supervisor starts a fresh child).
      log(LogLevel::kInfo, "ran " + std::to_string(taken) +
                               " job(s), the most a worker process may: retiring");
      shutdown();
      return;
    }
    if (decision.kind == producer::ClaimDecision::kWait) return;  // executors poke us later
    const int want = decision.want;
    std::vector<ClaimedJob> jobs;
    const auto claim_sent = steady_us();
    const std::int64_t token = new_lease_token();
    if (cfg.tracker) cfg.tracker->claiming(token);
    const ClaimRequest request{cfg.queues, want, cfg.lease, cfg.name, token};
    try {
      jobs = claim_db->claim(request);
    } catch (const DriverError& e) {
      note_db_error();
      if (!e.transient()) {
        // Perhaps one row no claim can take (values outside the table's bounds): end
        // those rows with the reason and claim again, rather than stop every queue.
        if (const auto ended = quarantine(request, e.what())) {
          counters.rejected += ended;
          log(LogLevel::kError, std::to_string(ended) +
                                    " queued row(s) that no claim could take are dead "
                                    "(fastq.InvalidJob); the claim had failed with: " +
                                    e.what());
          asio::post(poll_io, [this] { maybe_claim(); });
          return;
        }
        fatal = std::current_exception();
        shutdown();
        return;
      }
      log(LogLevel::kWarning, std::string("claim failed, retrying: ") + e.what());
      const auto next = producer::after_claim_error(idle_backoff());
      idle = true;
      arm_idle(next.wait);
      backoff = next.next;
      return;
    }
    const int got = static_cast<int>(jobs.size());
    for (auto& j : jobs) j.claimed_at_steady_us = claim_sent;
    if (auto* m = cfg.metrics) {
      m->claim_statements.fetch_add(1, std::memory_order_relaxed);
      if (got > 0) {
        m->claimed.fetch_add(static_cast<std::uint64_t>(got), std::memory_order_relaxed);
        m->claim_batch.observe(static_cast<std::uint64_t>(got), kBatchBounds);
      }
    }
    if (got > 0) {
      counters.claims++;
      counters.claimed += static_cast<std::uint64_t>(got);
      leases.hold(jobs, claim_sent);
      if (cfg.tracker) {
        for (const auto& j : jobs) cfg.tracker->claimed(j);
      }
    }
    if (cfg.tracker) cfg.tracker->claiming(0);
    if (got > 0) {
      held += got;
      if (!cfg.rate_limits.empty()) apply_rate_limits(jobs);
      queue.push(jobs);
    }
    const auto next = producer::after_claim(got, want, idle_backoff(), notify_sd.has_value(),
                                            cfg.burst);
    idle = next.idle;
    backoff = next.next;
    if (next.claim_again) {
      asio::post(poll_io, [this] { maybe_claim(); });
      return;
    }
    if (next.check_burst_end && held.load() == 0 && completer.unflushed() == 0 &&
        now_micros() >= deferred_until) {
      try {
        if (claim_db->count_runnable(cfg.queues) == 0) {
          shutdown();
          return;
        }
      } catch (const DriverError& e) {
        note_db_error();
        log(LogLevel::kWarning, std::string("count failed: ") + e.what());
      }
    }
    arm_idle(next.wait);
  }

  producer::Backoff idle_backoff() const {
    return producer::Backoff{backoff, cfg.idle_poll_min, cfg.idle_poll_max};
  }

  // Poller thread. Takes tokens for the rate-limited jobs among `jobs`: those whose token
  // is due now stay in `jobs`, those due within the horizon wait here, the rest go back
  // to the queue (without spending an attempt) due when their turn is expected.
  void apply_rate_limits(std::vector<ClaimedJob>& jobs) {
    std::map<std::string, std::vector<std::size_t>> buckets;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      const auto& j = jobs[i];
      if (j.expired || j.cancel_requested || !cfg.rate_limits.contains(j.task)) continue;
      buckets[j.rate_key.empty() ? j.task : j.rate_key].push_back(i);
    }
    if (buckets.empty()) return;
    std::vector<bool> keep(jobs.size(), true);
    std::vector<Deferral> later;
    std::vector<ClaimedJob> later_jobs;
    const auto now_steady = std::chrono::steady_clock::now();
    const Micros now = now_micros();
    for (auto& [key, idx] : buckets) {
      const RateLimit limit = cfg.rate_limits.at(jobs[idx.front()].task);
      RateGrant g;
      try {
        g = claim_db->acquire_rate(key, limit.interval_us, limit.burst,
                                   static_cast<int>(idx.size()),
                                   cfg.rate_horizon.count() * 1000);
      } catch (const DriverError& e) {
        note_db_error();
        log(LogLevel::kWarning, "rate limit " + key + ": " + e.what() + "; retrying in 1 s");
        g.granted = 0;
        g.base_delay = 1'000'000;
      }
      for (std::size_t n = 0; n < idx.size(); ++n) {
        const auto admit = rate_gate::admit(g, n, limit.interval_us);
        auto& job = jobs[idx[n]];
        if (admit.kind == rate_gate::Admission::kWait) {
          keep[idx[n]] = false;
          rate_wait.emplace(now_steady + std::chrono::microseconds(admit.delay), std::move(job));
        } else if (admit.kind == rate_gate::Admission::kDefer) {
          keep[idx[n]] = false;
          later.push_back(Deferral{job.id, job.lease_token, now + admit.delay});
          deferred_until = std::max(deferred_until, now + admit.delay);
          later_jobs.push_back(std::move(job));
        }
      }
    }
    std::size_t out = 0;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      if (keep[i]) {
        if (out != i) jobs[out] = std::move(jobs[i]);
        ++out;
      }
    }
    jobs.resize(out);
    if (!later.empty()) {
      try {
        counters.deferred += claim_db->defer(later);
      } catch (const DriverError& e) {
        note_db_error();
        log(LogLevel::kWarning, std::string("could not hand rate-limited jobs back (they "
                                            "return when their lease expires): ") +
                                    e.what());
      }
      forget(later_jobs);
    }
    arm_rate_timer();
  }

  void arm_rate_timer() {
    if (rate_wait.empty()) return;
    rate_timer.expires_at(rate_wait.begin()->first);
    rate_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      const auto now = std::chrono::steady_clock::now();
      std::vector<ClaimedJob> due;
      while (!rate_wait.empty() && rate_wait.begin()->first <= now) {
        auto node = rate_wait.extract(rate_wait.begin());
        const ClaimedJob& job = node.mapped();
        // A late timer must not let overdue tokens start in a bunch: keep them an
        // interval apart from this worker's last start in the bucket.
        const auto interval =
            std::chrono::microseconds(cfg.rate_limits.at(job.task).interval_us);
        auto& last = last_rate_start[job.rate_key.empty() ? job.task : job.rate_key];
        if (const auto until = rate_gate::hold_until(last, now, interval)) {
          node.key() = *until;
          rate_wait.insert(std::move(node));
          continue;
        }
        last = now;
        due.push_back(std::move(node.mapped()));
      }
      queue.push(due);
      arm_rate_timer();
    });
  }

  // Drops jobs that left this worker (handed back) from the lease table and the tracker.
  void forget(std::vector<ClaimedJob>& jobs) {
    leases.forget(jobs);
    if (cfg.tracker) {
      for (const auto& j : jobs) cfg.tracker->forgotten(j.id);
    }
    held -= static_cast<int>(jobs.size());
    jobs.clear();
  }

  void arm_idle(milliseconds after) {
    idle_timer.expires_after(after);
    idle_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      idle = false;
      maybe_claim();
    });
  }

  void on_notified() {
    if (stopping) return;
    idle = false;
    backoff = cfg.idle_poll_min;
    idle_timer.cancel();
    maybe_claim();
  }

  // Called by executors and the completer when room frees up or work may be waiting.
  void poke() {
    if (stopping || idle) return;
    if (capacity - held.load() < low_water && held.load() > 0) return;
    if (!claim_posted.exchange(true)) {
      asio::post(poll_io, [this] {
        claim_posted = false;
        maybe_claim();
      });
    }
  }

  void watch_notifications() {
    if (stopping) return;
    const int fd = claim_db->notification_fd();
    if (fd < 0) {
      notify_sd.reset();
      // Not available (memory/SQLite) or the listener is down: retry only for drivers
      // that can notify at all (PostgreSQL says so by having given us a socket before).
      if (had_notify_fd) {
        notify_retry.expires_after(std::chrono::seconds(1));
        notify_retry.async_wait([this](const boost::system::error_code& ec) {
          if (!ec) watch_notifications();
        });
      }
      return;
    }
    had_notify_fd = true;
    if (!notify_sd || notify_fd != fd) {
      notify_sd.emplace(poll_io, ::dup(fd));
      notify_fd = fd;
    }
    notify_sd->async_wait(asio::posix::stream_descriptor::wait_read,
                          [this](const boost::system::error_code& ec) {
                            if (ec == asio::error::operation_aborted || stopping) return;
                            const bool any = claim_db->drain_notifications();
                            if (claim_db->queues_changed()) check_paused();
                            if (any || ec) on_notified();
                            watch_notifications();
                          });
  }
  bool had_notify_fd = false;
  int notify_fd = -1;

  void wait_signals() {
    signals.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (signo == SIGUSR1) {  // from the supervisor: a second Ctrl-C reached it
        log(LogLevel::kInfo, "told to stop now: returning running jobs to the queue");
        hard_stop();
        wait_signals();
        return;
      }
      const bool again = stopping;
      log(LogLevel::kInfo,
          std::string("received ") + (signo == SIGTERM ? "SIGTERM" : "SIGINT") +
              (!again ? ", stopping gracefully (running jobs get " +
                            std::to_string(cfg.grace.count() / 1000.0).substr(0, 5) + " s)"
               : signo == SIGINT ? " again: stopping now, returning running jobs to the queue"
                                 : ", already stopping"));
      if (again && signo == SIGINT) {
        hard_stop();
      } else {
        shutdown();
      }
      wait_signals();
    });
  }

  // Poller thread. Reads which of our queues are paused and hands back the jobs of those
  // that this worker holds and has not started (a pause stops new starts fleet-wide
  // within a second; running jobs finish). Claims skip paused queues by themselves, so
  // only a worker holding jobs (or knowing of a pause, to notice the resume) asks.
  void check_paused() {
    if (stopping) return;
    std::vector<std::string> now_paused;
    try {
      now_paused = claim_db->paused_queues(cfg.queues);
    } catch (const DriverError& e) {
      note_db_error();
      log(LogLevel::kWarning, std::string("could not read paused queues: ") + e.what());
      return;
    }
    std::vector<ClaimedJob> back, held_back;
    queue.pause(now_paused, back, held_back);
    if (!now_paused.empty()) {
      const std::unordered_set<std::string> paused(now_paused.begin(), now_paused.end());
      for (auto it = rate_wait.begin(); it != rate_wait.end();) {
        if (paused.contains(it->second.queue)) {
          back.push_back(std::move(it->second));
          it = rate_wait.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& j : held_back) back.push_back(std::move(j));
    }
    if (!back.empty()) {
      log(LogLevel::kInfo, std::to_string(back.size()) +
                               " held job(s) of paused queues handed back unstarted");
      release(back);
    }
  }

  // Poller thread: every 250 ms while this worker holds claimed jobs or knows of a pause
  // (the polling half of pausing; PostgreSQL's NOTIFY 'queues' also calls check_paused).
  void arm_pause_check() {
    pause_timer.expires_after(milliseconds(250));
    pause_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      if (held.load() > 0 || queue.any_paused()) check_paused();
      arm_pause_check();
    });
  }

  // Executor thread: whether `job` belongs to a paused queue; if so it is kept for the
  // poller to hand back.
  bool hold_back_paused(const ClaimedJob& job) {
    if (!queue.hold_back_if_paused(job)) return false;
    asio::post(poll_io, [this] { release_paused(); });
    return true;
  }

  void release_paused() {
    std::vector<ClaimedJob> jobs = queue.take_paused();
    release(jobs);
  }

  // Poller thread. Stops claiming, hands unstarted jobs back, lets the executors drain.
  void shutdown() {
    if (stopping.exchange(true)) return;
    lease_keeper.tell_systemd("STOPPING=1\nSTATUS=stopping");
    idle_timer.cancel();
    notify_retry.cancel();
    if (notify_sd) notify_sd->cancel();
    std::vector<ClaimedJob> unstarted = queue.close();
    rate_timer.cancel();
    pause_timer.cancel();
    for (auto& [due, job] : rate_wait) unstarted.push_back(std::move(job));
    rate_wait.clear();
    release(unstarted);
    if (running_executors.load() == 0 && async_inflight.load() == 0) {
      poll_io.stop();
      return;
    }
    grace_timer.expires_after(cfg.grace);
    grace_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      log(LogLevel::kWarning, "jobs still running after the grace period: returning them to "
                              "the queue and stopping now");
      hard_stop();
    });
  }

  // Poller thread: give up waiting for running jobs (run() releases them).
  void hard_stop() {
    shutdown();
    hard = true;
    grace_timer.cancel();
    poll_io.stop();
  }

  // Executor threads, when they leave, and async jobs, when they end: the last one out
  // ends a graceful stop.
  void executor_done() {
    if (--running_executors == 0) post_stop_if_idle();
  }
  void post_stop_if_idle() {
    asio::post(poll_io, [this] {
      if (running_executors.load() == 0 && async_inflight.load() == 0) {
        grace_timer.cancel();
        poll_io.stop();
      }
    });
  }

  void async_done(Completion&& c) {
    std::vector<Completion> one;
    one.push_back(std::move(c));
    completer.add_outcomes(one);
    held -= 1;
    if (--async_inflight == 0 && stopping) post_stop_if_idle();
    poke();
  }

  // ---- executors ----------------------------------------------------------------------

  // Executor thread: how long the job waited in this worker between claim and start.
  void observe_wait(const ClaimedJob& job) {
    if (!cfg.metrics || job.claimed_at_steady_us == 0) return;
    const auto waited = std::max<std::int64_t>(0, steady_us() - job.claimed_at_steady_us);
    cfg.metrics->wait_us.observe(static_cast<std::uint64_t>(waited), kTimeBoundsUs);
  }

  void execute_loop(int index) {
    runner.thread_started();
    std::vector<ClaimedJob> batch;
    std::vector<Completion> outs;
    // Slow start: batches grow while jobs are quick (amortising the GIL hand-off) and
    // drop to one job as soon as jobs take long, so a slow job never holds others back.
    const std::size_t max_batch = static_cast<std::size_t>(std::max(1, cfg.exec_batch));
    std::size_t limit = 1;
    while (queue.pop_batch(batch, static_cast<std::size_t>(cfg.concurrency), limit)) {
      outs.clear();
      outs.reserve(batch.size());
      const auto started = std::chrono::steady_clock::now();
      std::size_t ran = 0, started_async = 0;
      runner.begin_batch();
      std::size_t skipped = 0;
      for (const auto& job : batch) {
        if (stopping) break;  // not started: goes back to the queue
        ++ran;
        if (lease_in_doubt(job)) {
          // This process was paused or cut off past the lease: another worker may own
          // the job by now. Never start it; hand it back (fenced: a no-op if it moved).
          ++skipped;
          counters.stale++;
          queue.keep_stale(job);
          asio::post(poll_io, [this] { release_stale(); });
          continue;
        }
        if (hold_back_paused(job)) {
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
          async_inflight++;
          if (cfg.tracker) cfg.tracker->started(job, index);
          observe_wait(job);
          const Micros began = completer.note_started(job);
          if (cfg.log_jobs && cfg.log) cfg.log(LogLevel::kInfo, started_line(subject(job)));
          runner.start_async(job, [this, id = job.id, token = job.lease_token, began,
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
          c.started_at = completer.note_started(job);
          if (cfg.log_jobs && cfg.log) cfg.log(LogLevel::kInfo, started_line(subject(job)));
          const auto t0 = steady_us();
          runner.run(job, c);
          if (auto* m = cfg.metrics) {
            const auto took = static_cast<std::uint64_t>(std::max<std::int64_t>(0, steady_us() - t0));
            m->executed.fetch_add(1, std::memory_order_relaxed);
            m->busy_us.fetch_add(took, std::memory_order_relaxed);
            m->run_us.observe(took, kTimeBoundsUs);
          }
        }
        report(subject(job), c);
      }
      runner.end_batch();
      if (ran > started_async + skipped) {
        const auto per_job =
            (std::chrono::steady_clock::now() - started) / (ran - started_async - skipped);
        limit = executor_pool::next_batch_limit(limit, max_batch, per_job);
      }
      queue.keep_unrun(batch, ran);
      held -= static_cast<int>(ran - started_async - skipped);
      completer.add_outcomes(outs);
      poke();
    }
    runner.thread_stopping();
    executor_done();
  }

  // Whether this job's lease may have run out: neither its claim nor a renewal since is
  // recent enough to vouch for it (with a tenth of the lease to spare).
  bool lease_in_doubt(const ClaimedJob& job) const {
    const auto confirmed = leases.confirmed_us(job.id);
    return lease_keeper::lease_in_doubt(confirmed.has_value(), job.claimed_at_steady_us,
                                        confirmed.value_or(0), steady_us(),
                                        cfg.lease.count() * 1000);
  }

  void release_stale() {
    std::vector<ClaimedJob> jobs = queue.take_stale();
    if (jobs.empty()) return;
    log(LogLevel::kWarning, std::to_string(jobs.size()) +
                                " held job(s) not started: this worker was paused or cut off "
                                "past their lease, so another worker may own them now");
    release(jobs);
  }

  // Poller thread (or run() once the poller stopped): hands claimed jobs that never
  // started back to the queue without spending an attempt.
  void release(std::vector<ClaimedJob>& jobs) {
    if (jobs.empty()) return;
    std::vector<JobRef> refs;
    refs.reserve(jobs.size());
    for (const auto& j : jobs) refs.push_back(JobRef{j.id, j.lease_token});
    try {
      counters.released += claim_db->release(refs);
    } catch (const DriverError& e) {
      note_db_error();
      log(LogLevel::kWarning, std::string("could not release unstarted jobs (they return "
                                          "when their lease expires): ") +
                                  e.what());
    }
    forget(jobs);
    // Room freed: a claim may have been skipped while these were held (maybe_claim waits
    // for the executors to poke it), and no executor will, since none ran them.
    poke();
  }

  // run() after a hard stop: hands back jobs cut off while running. Each counts as
  // interrupted; the attempt is refunded only kMaxUnspentHandbacks times (Driver::interrupt).
  void interrupt(std::vector<ClaimedJob>& jobs) {
    if (jobs.empty()) return;
    std::vector<JobRef> refs;
    refs.reserve(jobs.size());
    for (const auto& j : jobs) refs.push_back(JobRef{j.id, j.lease_token});
    try {
      counters.released += claim_db->interrupt(refs);
    } catch (const DriverError& e) {
      note_db_error();
      log(LogLevel::kWarning, std::string("could not hand back the jobs cut off (they return "
                                          "when their lease expires): ") +
                                  e.what());
    }
    forget(jobs);
  }

  WorkerStats run() {
    std::optional<SavedSignals> saved;
    if (cfg.handle_signals) {
      saved.emplace();
      if (cfg.supervised) {
        signals.add(SIGTERM);
        signals.add(SIGUSR1);
      } else {
        signals.add(SIGINT);
        signals.add(SIGTERM);
      }
      wait_signals();
    }
    completer.connect(claim_db->connect_another());
    claim_db->set_wakeup([this] { asio::post(poll_io, [this] { on_notified(); }); });
    watch_notifications();

    auto guard = asio::make_work_guard(done_io);
    completer_thread = std::thread([this] { done_io.run(); });
    rescuer.rescue_now(true);  // before the first claim, so a burst run sees rescued jobs
    lease_keeper.enable_systemd();
    asio::post(done_io, [this] {
      lease_keeper.start();
      rescuer.start();
    });
    executors.reserve(static_cast<std::size_t>(cfg.concurrency));
    running_executors = cfg.concurrency;
    for (int i = 0; i < cfg.concurrency; ++i) {
      executors.emplace_back([this, i] { execute_loop(i); });
    }

    asio::post(poll_io, [this] { maybe_claim(); });
    arm_pause_check();
    auto poll_guard = asio::make_work_guard(poll_io);  // idle is not "done": shutdown() is
    poll_io.run();

    for (auto& t : executors) {
      if (hard) {
        t.detach();  // may be inside task code; the caller exits the process
      } else {
        t.join();
      }
    }
    executors.clear();
    // Popped by executors and never started, set aside as stale, held back as paused.
    std::vector<ClaimedJob> never_started = queue.take_leftovers();
    release(never_started);
    claim_db->set_wakeup(nullptr);
    notify_sd.reset();
    claim_db->stop_listening();
    asio::post(done_io, [this] {
      lease_keeper.stop();
      rescuer.stop();
      completer.final_flush();
      rescuer.drop_lease();
      lease_keeper.beat(true);
      done_io.stop();
    });
    completer_thread.join();
    if (hard) {
      // Whatever still holds a lease after the final flush is running right now, or was
      // taken by an executor that is stuck in an earlier job of its batch (never started).
      std::vector<ClaimedJob> running, unstarted;
      leases.split_held(running, unstarted);
      release(unstarted);
      interrupt(running);
      counters.hard_stopped = true;
    }
    signals.cancel();
    if (fatal) std::rethrow_exception(fatal);
    return counters.snapshot();
  }
};

Worker::Worker(std::unique_ptr<Driver> driver, TaskRunner& runner, WorkerConfig config)
    : impl_(std::make_unique<Impl>(std::move(driver), runner, std::move(config))) {}

Worker::~Worker() = default;

WorkerStats Worker::run() { return impl_->run(); }

void Worker::stop() {
  asio::post(impl_->poll_io, [impl = impl_.get()] { impl->shutdown(); });
}

WorkerStats Worker::stats() const { return impl_->ctx.counters.snapshot(); }

bool Worker::cancel_requested(const std::string& job_id) const {
  return impl_->leases.cancel_requested(job_id);
}

}  // namespace fastq
