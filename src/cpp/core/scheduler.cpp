// The scheduler: leader lease, slot computation, misfire and overlap policies. The SQL is
// in the drivers (hold_lease, load_schedules, fire_schedule); see scheduler.hpp.
#include "fastq/scheduler.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <set>

#include "fastq/cron.hpp"
#include "fastq/time.hpp"

namespace fastq {

Micros next_slot(const ScheduleRow& row, Micros slot) {
  if (row.every > 0) {
    const auto every = static_cast<Micros>(std::llround(row.every * 1e6));
    return slot + std::max<Micros>(every, 1);
  }
  const Cron cron(row.cron);
  const auto next = cron.next_after(UtcMicros(std::chrono::microseconds(slot)),
                                    row.timezone.empty() ? "UTC" : row.timezone);
  return std::chrono::duration_cast<std::chrono::microseconds>(next.time_since_epoch()).count();
}

namespace {

// The latest slot at or before `now`, starting from the due slot `first`.
Micros latest_due(const ScheduleRow& row, Micros first, Micros now, std::uint64_t& skipped) {
  if (row.every > 0) {
    const auto every = std::max<Micros>(static_cast<Micros>(std::llround(row.every * 1e6)), 1);
    const Micros k = (now - first) / every;
    skipped = static_cast<std::uint64_t>(k);
    return first + k * every;
  }
  Micros s = first;
  for (;;) {
    const Micros n = next_slot(row, s);
    if (n > now) return s;
    s = n;
    ++skipped;
  }
}

}  // namespace

struct Scheduler::Impl {
  std::unique_ptr<Driver> driver;
  SchedulerConfig cfg;
  bool leader = false;
  Micros next_lease = 0;
  // The database's clock minus this machine's (0 when the driver has no clock of its own):
  // loop() judges slots on the database's time, so a leader whose clock is off by minutes
  // still fires each slot on time, and next_run_at stays true for the next leader.
  Micros clock_offset = 0;
  Micros next_clock = 0;  // this machine's time of the next measurement
  Micros next_reload = 0;
  Micros next_prune = 0;
  Micros next_reap = 0;
  Micros next_job_prune = 0;
  // The store's upkeep (Driver::upkeep): at leadership, then every LogPartitions::every.
  Micros next_upkeep = 0;
  // Whether this scheduler leads, for the reclaimer thread (`leader` is the scheduler
  // thread's own).
  std::atomic<bool> leading{false};
  Pruner pruner;
  std::vector<ScheduleRow> rows;
  std::set<std::string> reported;  // "name: error" already logged

  mutable std::mutex stats_mu;
  SchedulerStats stats;

  std::mutex mu;  // guards the fields below
  std::condition_variable cv;
  std::thread thread;
  std::thread reclaimer;  // reclaim_loop(), when the store reclaims space
  bool stopping = false;
  bool paused = false;
  bool in_step = false;

  void log(LogLevel level, const std::string& msg) const {
    if (cfg.log) cfg.log(level, msg);
  }
  void count(std::uint64_t SchedulerStats::*field, std::uint64_t n = 1) {
    std::lock_guard l(stats_mu);
    stats.*field += n;
  }
  void set_leader(bool now_leader) {
    if (now_leader && !leader) {
      log(LogLevel::kInfo, "scheduler: " + cfg.holder + " is now the leader");
      count(&SchedulerStats::terms);
      next_reload = 0;
      next_upkeep = 0;  // partitions made ahead before anything else
    } else if (!now_leader && leader) {
      log(LogLevel::kWarning, "scheduler: " + cfg.holder + " is no longer the leader");
    }
    leader = now_leader;
    leading.store(now_leader);
    std::lock_guard l(stats_mu);
    stats.leader = leader;
  }

  NewJob job_for(const ScheduleRow& row) const {
    NewJob job;
    job.id = new_job_id();
    job.task = row.task;
    const auto d = cfg.tasks.find(row.task);
    const TaskDefaults defaults = d == cfg.tasks.end() ? TaskDefaults{} : d->second;
    job.queue = row.queue.empty() ? defaults.queue : row.queue;
    job.priority = row.priority ? row.priority : defaults.priority;
    job.args = row.args.empty() ? "[]" : row.args;
    job.kwargs = row.kwargs.empty() ? "{}" : row.kwargs;
    job.max_attempts = defaults.max_attempts;
    job.time_limit = defaults.time_limit;
    job.soft_time_limit = defaults.soft_time_limit;
    return job;
  }

  ScheduleFire base_fire(const ScheduleRow& row) const {
    ScheduleFire f;
    f.lease_name = cfg.lease_name;
    f.holder = cfg.holder;
    f.schedule = row.name;
    f.expect_next = row.next_run_at;
    f.max_instances = row.max_instances;
    return f;
  }

  // False when the pass should stop (lease lost or the table changed under us).
  bool handle(FireResult r, const ScheduleRow& row) {
    switch (r) {
      case FireResult::kFired: count(&SchedulerStats::fired); return true;
      case FireResult::kSkipped:
        count(&SchedulerStats::skipped);
        log(LogLevel::kInfo, "scheduler: " + row.name + " skipped: still running");
        return true;
      case FireResult::kAdvanced: return true;
      case FireResult::kAlreadyFired: count(&SchedulerStats::lost); return true;
      case FireResult::kStale:
        count(&SchedulerStats::lost);
        next_reload = 0;
        return false;
      case FireResult::kNotLeader:
        set_leader(false);
        next_lease = 0;
        return false;
    }
    return false;
  }

  // Fires what is due of one schedule; false when the pass should stop.
  bool process(ScheduleRow& row, Micros now) {
    if (!row.next_run_at) {
      // New, edited or re-enabled: the first slot after now (intervals count from now).
      ScheduleFire f = base_fire(row);
      f.next_run_at = next_slot(row, now);
      if (!handle(driver->fire_schedule(f), row)) return false;
      row.next_run_at = f.next_run_at;
      return true;
    }
    const Micros first = *row.next_run_at;
    if (first > now) return true;

    std::vector<Micros> slots;
    Micros after = 0;  // next_run_at once these slots are done
    std::uint64_t missed = 0;
    if (row.catch_up == "all") {
      Micros s = first;
      while (s <= now && slots.size() < static_cast<std::size_t>(kMaxCatchUp)) {
        slots.push_back(s);
        s = next_slot(row, s);
      }
      after = s;
    } else {
      const Micros latest = latest_due(row, first, now, missed);
      after = next_slot(row, latest);
      if (row.catch_up == "none" && now - latest > cfg.misfire_grace.count() * 1000) {
        ++missed;
      } else {
        slots.push_back(latest);
      }
    }
    if (missed) count(&SchedulerStats::missed, missed);

    if (slots.empty()) {
      ScheduleFire f = base_fire(row);
      f.next_run_at = after;
      f.outcome = "skipped: " + std::to_string(missed) + " missed slot(s) (catch_up none)";
      if (!handle(driver->fire_schedule(f), row)) return false;
      log(LogLevel::kInfo, "scheduler: " + row.name + " " + f.outcome);
      row.next_run_at = after;
      return true;
    }
    for (std::size_t i = 0; i < slots.size(); ++i) {
      ScheduleFire f = base_fire(row);
      f.slot = slots[i];
      f.next_run_at = i + 1 < slots.size() ? slots[i + 1] : after;
      // Catch-up slots of one pass do not hold each other back.
      f.check_overlap = i == 0;
      f.job = job_for(row);
      const FireResult r = driver->fire_schedule(f);
      if (!handle(r, row)) return false;
      row.next_run_at = f.next_run_at;
      if (r == FireResult::kFired) {
        log(LogLevel::kDebug, "scheduler: fired " + row.name + " for " + format_utc(slots[i]) +
                                  " as job " + f.job.id);
      }
      if (r == FireResult::kSkipped && row.next_run_at != after) {
        // The previous run is still going: skip the rest of the backlog too.
        ScheduleFire rest = base_fire(row);
        rest.next_run_at = after;
        if (!handle(driver->fire_schedule(rest), row)) return false;
        row.next_run_at = after;
        break;
      }
    }
    return true;
  }

  // One pruning pass as the Pruner paces it: batches until every state is caught up or
  // the pass's budget is spent (time measured on this machine from `now`).
  void prune_jobs(Micros now) {
    const Micros start = now_micros();
    std::uint64_t n = 0;
    for (;;) {
      const PruneAction a = pruner.next(now + (now_micros() - start));
      if (!a.request) {
        next_job_prune = a.wake;
        break;
      }
      PruneResult r;
      try {
        r = driver->prune_jobs(*a.request);
      } catch (const DriverError&) {
        pruner.done(PruneResult{});  // that state again next pass
        next_job_prune = now + pruner.config().idle;
        if (n) count(&SchedulerStats::pruned, n);
        throw;
      }
      pruner.done(r);
      n += r.deleted;
    }
    if (n) {
      count(&SchedulerStats::pruned, n);
      log(LogLevel::kDebug, "scheduler: pruned " + std::to_string(n) +
                                " finished job(s) past their retention");
    }
  }

  Micros step(Micros now) {
    const auto renew = cfg.renew.count() > 0 ? cfg.renew : cfg.lease / 3;
    if (now >= next_lease) {
      try {
        set_leader(driver->hold_lease(cfg.lease_name, cfg.holder, cfg.lease));
      } catch (const DriverError& e) {
        log(LogLevel::kWarning, std::string("scheduler: lease: ") + e.what());
        set_leader(false);
      }
      next_lease = now + renew.count() * 1000;
    }
    if (!leader) return next_lease;
    try {
      if (now >= next_reload) {
        rows = driver->load_schedules();
        next_reload = now + cfg.reload.count() * 1000;
      }
      for (auto& row : rows) {
        bool go_on = true;
        try {
          go_on = process(row, now);
        } catch (const std::invalid_argument& e) {  // CronError, bad interval
          const std::string key = row.name + ": " + e.what();
          if (reported.insert(key).second) {
            log(LogLevel::kError, "scheduler: schedule " + key + " (not fired)");
          }
        }
        if (!go_on) break;
      }
      if (leader && cfg.reap_workers.count() > 0 && now >= next_reap) {
        next_reap = now + cfg.reap_workers.count() * 1000;
        const auto lost = driver->reap_workers(cfg.keep_workers);
        if (lost) {
          count(&SchedulerStats::workers_lost, lost);
          log(LogLevel::kWarning, "scheduler: " + std::to_string(lost) +
                                      " worker(s) silent past their lease: marked lost");
        }
      }
      if (leader && now >= next_upkeep) {
        // The log's partitions, sized to the retention (log_partitions(), retention.hpp).
        const LogPartitions parts = log_partitions(pruner.config());
        next_upkeep = now + parts.every;
        const auto dropped = driver->upkeep(
            pruner.config().enabled() ? retention_cutoffs(pruner.config(), now)
                                      : RetentionCutoffs{},
            parts);
        if (dropped) {
          count(&SchedulerStats::partitions_dropped, dropped);
          log(parts.width >= 86'400 ? LogLevel::kInfo : LogLevel::kDebug,
              "scheduler: dropped " + std::to_string(dropped) +
                  " partition(s) of finished jobs past their retention");
        }
      }
      if (leader && now >= next_job_prune) prune_jobs(now);
      if (leader && now >= next_prune) {
        const Micros keep = std::chrono::duration_cast<std::chrono::microseconds>(
                                cfg.keep_runs).count();
        driver->prune_schedule_runs(now - keep);
        next_prune = now + 600'000'000;
      }
    } catch (const DriverError& e) {
      log(LogLevel::kWarning, std::string("scheduler: ") + e.what());
      next_reload = 0;
      return std::min(next_lease, now + 1'000'000);
    }
    Micros wake = std::min({next_lease, next_reload, next_job_prune, next_upkeep});
    for (const auto& row : rows) {
      if (row.next_run_at) wake = std::min(wake, *row.next_run_at);
    }
    return wake;
  }

  // Scheduler thread: measures clock_offset, half a round trip accurate.
  void measure_clock() {
    try {
      const Micros before = now_micros();
      const std::optional<Micros> db = driver->database_now();
      const Micros after = now_micros();
      if (!db) return;
      const Micros offset = *db - (before + after) / 2;
      if (std::llabs(offset) > 1'000'000 && std::llabs(offset - clock_offset) > 1'000'000) {
        log(LogLevel::kWarning, "scheduler: this machine's clock is " +
                                    std::to_string(-offset / 1000) +
                                    " ms off the database's; slots are judged on the database's");
      }
      clock_offset = offset;
    } catch (const DriverError& e) {
      log(LogLevel::kWarning, std::string("scheduler: reading the database's clock: ") + e.what());
    }
  }

  // Reclaimer thread: while this scheduler leads, the store's space reclaim
  // (Driver::reclaim, ReclaimLimits' defaults: a table is worth a vacuum by autovacuum's
  // own rule with a lower floor) every reclaim_every(), on a connection of its own, so
  // that a VACUUM of seconds delays neither a schedule's slot nor a prune batch. At
  // 40,000 jobs a second a look every two seconds keeps PostgreSQL's active table under
  // about 100,000 dead rows.
  void reclaim_loop() {
    std::unique_ptr<Driver> own;
    const auto every = driver->reclaim_every();
    std::unique_lock l(mu);
    while (!stopping) {
      cv.wait_for(l, every, [&] { return stopping; });
      if (stopping || !leading.load()) continue;
      l.unlock();
      try {
        if (!own) own = driver->connect_another();  // reads only what the driver was made with
        const auto reclaimed = own->reclaim(ReclaimLimits{});
        if (reclaimed) {
          count(&SchedulerStats::reclaimed, reclaimed);
          log(LogLevel::kDebug,
              "scheduler: reclaimed the space of " + std::to_string(reclaimed) +
                  " table(s) of the job store");
        }
      } catch (const std::exception& e) {
        log(LogLevel::kWarning, std::string("scheduler: reclaiming the job store's space: ") +
                                    e.what());
      }
      l.lock();
    }
  }

  void loop() {
    std::unique_lock l(mu);
    while (!stopping) {
      if (paused) {
        cv.wait(l);
        continue;
      }
      in_step = true;
      l.unlock();
      Micros wake = 0;
      const Micros local = now_micros();
      if (local >= next_clock) {
        measure_clock();
        const auto every = cfg.renew.count() > 0 ? cfg.renew : cfg.lease / 3;
        next_clock = local + std::chrono::duration_cast<std::chrono::microseconds>(every).count();
      }
      const Micros now = local + clock_offset;
      try {
        wake = step(now);
      } catch (const std::exception& e) {
        log(LogLevel::kError, std::string("scheduler: ") + e.what());
        wake = now + 1'000'000;
      }
      l.lock();
      in_step = false;
      cv.notify_all();
      // Never sleep past a second: clocks jump, and stop() must be prompt anyway.
      wake = std::clamp(wake, now + 1000, now + 1'000'000);
      cv.wait_until(l, Clock::time_point(std::chrono::microseconds(wake - clock_offset)),
                    [&] { return stopping; });
    }
  }
};

Scheduler::Scheduler(std::unique_ptr<Driver> driver, SchedulerConfig config)
    : impl_(std::make_unique<Impl>()) {
  impl_->driver = std::move(driver);
  impl_->cfg = std::move(config);
  impl_->pruner = Pruner(impl_->cfg.retention);
}

Scheduler::~Scheduler() {
  try {
    stop();
  } catch (...) {
  }
}

Micros Scheduler::step(Micros now) { return impl_->step(now); }

void Scheduler::start() {
  std::lock_guard l(impl_->mu);
  if (impl_->thread.joinable()) return;
  impl_->stopping = false;
  // The thread never takes signals: SIGTERM/SIGINT/SIGCHLD belong to the worker or the
  // supervisor, which block them on their own thread and wait for them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  impl_->thread = std::thread([this] { impl_->loop(); });
  if (impl_->driver->reclaims_space()) {
    impl_->reclaimer = std::thread([this] { impl_->reclaim_loop(); });
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void Scheduler::stop() {
  {
    std::lock_guard l(impl_->mu);
    impl_->stopping = true;
    impl_->paused = false;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->reclaimer.joinable()) impl_->reclaimer.join();
  if (impl_->leader) {
    try {
      impl_->driver->drop_lease(impl_->cfg.lease_name, impl_->cfg.holder);
      impl_->log(LogLevel::kInfo, "scheduler: " + impl_->cfg.holder + " gave the lead up");
    } catch (const DriverError&) {
      // The lease expires by itself.
    }
    impl_->leader = false;
    std::lock_guard l(impl_->stats_mu);
    impl_->stats.leader = false;
  }
}

void Scheduler::pause() {
  std::unique_lock l(impl_->mu);
  impl_->paused = true;
  impl_->cv.wait(l, [&] { return !impl_->in_step; });
}

void Scheduler::resume() {
  {
    std::lock_guard l(impl_->mu);
    impl_->paused = false;
  }
  impl_->cv.notify_all();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard l(impl_->stats_mu);
  return impl_->stats;
}

}  // namespace fastq
