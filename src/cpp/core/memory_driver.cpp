// In-memory driver: the reference semantics of the contract in driver.hpp, used by the
// Python API tests and the worker's unit tests. Siblings share one store.
#include <algorithm>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "fastq/driver.hpp"
#include "fastq/rate.hpp"
#include "fastq/workflow.hpp"

namespace fastq {
namespace {

struct Row {
  JobRecord rec;
  Micros run_at = 0;
  std::int64_t lease_token = 0;
  Micros lease_expires = 0;
  std::optional<Micros> expires_at;
  std::uint64_t seq = 0;  // insertion order: the id tie-break of the SQL drivers
  int envelope = kEnvelopeVersion;
  double time_limit = 0;
  double soft_time_limit = 0;
  std::string rate_key;
  PassResults pass_results = PassResults::kNone;
  OnFailure on_failure = OnFailure::kCancel;
  Micros finished_at = 0;  // set when it reaches a final state (retention)
};

struct Store {
  std::mutex mu;
  std::unordered_map<std::string, Row> rows;
  std::uint64_t next_seq = 0;
  std::unordered_map<std::string, std::string> unique;  // key -> id of its latest job
  std::function<void()> wakeup;
  std::unordered_map<std::string, Micros> rate_tat;  // rate-limit buckets
  // Scheduler tables.
  struct Lease {
    std::string holder;
    Micros expires = 0;
  };
  std::map<std::string, Lease> leases;
  struct Schedule {
    ScheduleRow row;
    bool enabled = true;
    std::optional<Micros> last_run_at;
    std::string last_job_id;
    std::string last_outcome;
  };
  std::map<std::string, Schedule> schedules;
  std::map<std::string, std::map<Micros, std::string>> runs;  // schedule -> slot -> job id
  std::map<std::string, WorkerRecord> workers;  // the worker registry, by id
  // Queue controls (the fastq_queue table).
  struct QueueControl {
    bool paused = false;
    std::optional<int> concurrency;
  };
  std::map<std::string, QueueControl> queue_controls;
  // Workflow dependencies: parent -> edges, child -> edges (by position).
  std::unordered_map<std::string, std::vector<Dependency>> children;
  std::unordered_map<std::string, std::vector<Dependency>> parents;
};

class MemoryDriver final : public Driver {
 public:
  explicit MemoryDriver(std::shared_ptr<Store> store) : store_(std::move(store)) {}

  std::string name() const override { return "memory"; }
  std::unique_ptr<Driver> connect_another() const override {
    return std::make_unique<MemoryDriver>(store_);
  }

  std::vector<std::string> enqueue(std::span<const NewJob> jobs) override {
    std::function<void()> wake;
    std::vector<std::string> ids;
    ids.reserve(jobs.size());
    {
      std::lock_guard lock(store_->mu);
      const Micros now = now_micros();
      for (const auto& j : jobs) {
        if (!j.unique_key.empty()) {
          auto held = store_->unique.find(j.unique_key);
          if (held != store_->unique.end()) {
            const auto& st = store_->rows.at(held->second).rec.state;
            if (st == state::kQueued || st == state::kRunning) {
              ids.push_back(held->second);
              continue;
            }
          }
          store_->unique[j.unique_key] = j.id;
        }
        ids.push_back(j.id);
        insert_row(j, now, 0);
      }
      wake = store_->wakeup;
    }
    if (wake) wake();
    return ids;
  }

  std::vector<std::string> enqueue_workflow(std::span<const NewJob> jobs,
                                            std::span<const Dependency> deps) override {
    const std::vector<int> pending = check_workflow(jobs, deps);
    std::function<void()> wake;
    std::vector<std::string> ids;
    {
      std::lock_guard lock(store_->mu);
      for (const auto& j : jobs) {
        if (store_->rows.contains(j.id)) throw DriverError("duplicate job id " + j.id, false);
      }
      const Micros now = now_micros();
      for (std::size_t i = 0; i < jobs.size(); ++i) {
        insert_row(jobs[i], now, pending[i]);
        ids.push_back(jobs[i].id);
      }
      for (const auto& d : deps) {
        store_->children[d.parent].push_back(d);
        auto& ps = store_->parents[d.child];
        ps.push_back(d);
        std::stable_sort(ps.begin(), ps.end(), [](const Dependency& a, const Dependency& b) {
          return a.position < b.position;
        });
      }
      wake = store_->wakeup;
    }
    if (wake) wake();
    return ids;
  }

  std::size_t cancel_workflow(const std::string& workflow_id) override {
    std::lock_guard lock(store_->mu);
    std::size_t n = 0;
    if (workflow_id.empty()) return 0;
    for (auto& [id, r] : store_->rows) {
      if (r.rec.workflow_id != workflow_id) continue;
      if (r.rec.state == state::kQueued || r.rec.state == state::kWaiting) {
        r.rec.state = state::kCancelled;
        r.finished_at = now_micros();
        r.rec.error_type = kCancelledType;
        r.rec.error = kWorkflowCancelled;
        ++n;
      } else if (r.rec.state == state::kRunning) {
        r.rec.cancel_requested = true;
        ++n;
      }
    }
    return n;
  }

 private:
  // store_->mu held.
  void insert_row(const NewJob& j, Micros now, int parents_pending) {
    {
      {
        Row row;
        row.rec.id = j.id;
        row.rec.task = j.task;
        row.rec.queue = j.queue;
        row.rec.state = state::kQueued;
        row.rec.priority = j.priority;
        row.rec.args = j.args;
        row.rec.kwargs = j.kwargs;
        row.rec.max_attempts = j.max_attempts;
        row.expires_at = j.expires_at;
        row.run_at = j.run_at.value_or(now);
        row.time_limit = j.time_limit;
        row.soft_time_limit = j.soft_time_limit;
        row.rate_key = j.rate_key;
        row.rec.workflow_id = j.workflow_id;
        row.rec.parents_pending = parents_pending;
        if (parents_pending > 0) row.rec.state = state::kWaiting;
        row.pass_results = j.pass_results;
        row.on_failure = j.on_failure;
        row.seq = store_->next_seq++;
        if (!store_->rows.emplace(j.id, std::move(row)).second) {
          throw DriverError("duplicate job id " + j.id, false);
        }
      }
    }
  }

  static bool is_final(const std::string& st) {
    return st == state::kSucceeded || st == state::kFailed || st == state::kDead ||
           st == state::kExpired || st == state::kCancelled;
  }

  // Collects a row that just reached a final state for settle_locked().
  static void note_finished(std::vector<FinishedStep>& out, const Row& r) {
    if (!r.rec.workflow_id.empty() && is_final(r.rec.state)) {
      out.push_back(FinishedStep{r.rec.id, r.rec.state, r.rec.error_type, r.rec.error});
    }
  }

  // Settles the children of `finished` (store_->mu held), as the SQL drivers do in the
  // transaction of the write that finished them.
  std::size_t settle_locked(std::vector<FinishedStep> finished) {
    if (finished.empty()) return 0;
    Store& st = *store_;
    SettleOps ops;
    ops.load = [&st](const std::vector<std::string>& parents) {
      std::vector<std::pair<Dependency, WaitingStep>> out;
      for (const auto& p : parents) {
        auto it = st.children.find(p);
        if (it == st.children.end()) continue;
        for (const auto& d : it->second) {
          const Row& c = st.rows.at(d.child);
          if (c.rec.state != state::kWaiting) continue;
          out.emplace_back(d, WaitingStep{c.rec.id, c.rec.parents_pending, c.pass_results,
                                          c.on_failure, c.rec.args});
        }
      }
      return out;
    };
    ops.parents = [&st](const std::vector<std::string>& children) {
      std::vector<ParentResult> out;
      for (const auto& c : children) {
        for (const auto& d : st.parents[c]) {
          const Row& p = st.rows.at(d.parent);
          out.push_back(ParentResult{c, p.rec.id, p.rec.state, p.rec.result, p.rec.error_type,
                                     p.rec.error});
        }
      }
      return out;
    };
    ops.write = [&st](std::span<const StepUpdate> updates) {
      for (const auto& u : updates) {
        Row& c = st.rows.at(u.id);
        c.rec.parents_pending = u.parents_pending;
        if (u.decision == StepDecision::kRelease) {
          c.rec.state = state::kQueued;
          c.rec.args = u.args;
          c.run_at = std::max(c.run_at, now_micros());
        } else if (u.decision == StepDecision::kCancel) {
          c.rec.state = state::kCancelled;
          c.finished_at = now_micros();
          c.rec.error_type = kCancelledType;
          c.rec.error = u.reason;
        }
      }
    };
    return settle(std::move(finished), ops);
  }

 public:

  std::vector<ClaimedJob> claim(const ClaimRequest& req) override {
    std::lock_guard lock(store_->mu);
    const Micros now = now_micros();
    // Places left per queue: paused queues none, limited ones their limit minus the jobs
    // running under a live lease (the store's mutex makes the count and the claim one step).
    std::unordered_map<std::string, long> room;
    for (const auto& q : req.queues) {
      long r = req.limit;
      auto c = store_->queue_controls.find(q);
      if (c != store_->queue_controls.end()) {
        if (c->second.paused) {
          r = 0;
        } else if (c->second.concurrency) {
          long running = 0;
          for (const auto& [id, row] : store_->rows) {
            if (row.rec.queue == q && row.rec.state == state::kRunning && row.lease_expires > now) {
              ++running;
            }
          }
          r = std::clamp<long>(*c->second.concurrency - running, 0, r);
        }
      }
      room[q] = r;
    }
    std::vector<Row*> due;
    for (auto& [id, row] : store_->rows) {
      if (row.rec.state == state::kQueued && row.run_at <= now) {
        auto it = room.find(row.rec.queue);
        if (it != room.end() && it->second > 0) due.push_back(&row);
      }
    }
    const auto order = [](const Row* a, const Row* b) {
      if (a->rec.priority != b->rec.priority) return a->rec.priority > b->rec.priority;
      if (a->run_at != b->run_at) return a->run_at < b->run_at;
      return a->seq < b->seq;
    };
    std::sort(due.begin(), due.end(), order);
    {
      std::vector<Row*> kept;
      for (Row* r : due) {
        if (kept.size() >= static_cast<std::size_t>(std::max(req.limit, 0))) break;
        auto& left = room[r->rec.queue];
        if (left <= 0) continue;
        --left;
        kept.push_back(r);
      }
      due.swap(kept);
    }
    const auto n = std::min<std::size_t>(due.size(), static_cast<std::size_t>(req.limit));
    const std::int64_t token = req.lease_token ? req.lease_token : new_lease_token();
    std::vector<ClaimedJob> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      Row& r = *due[i];
      r.rec.state = state::kRunning;
      if (r.rec.attempts < kAttemptsCeiling) r.rec.attempts += 1;
      r.rec.started_at.reset();  // a claim is not a start (mark_started records it)
      r.lease_token = token;
      r.lease_expires = now + req.lease.count() * 1000;
      out.push_back(ClaimedJob{r.rec.id, r.rec.task, r.rec.queue, r.rec.args, r.rec.kwargs,
                               r.rec.priority, r.rec.attempts, r.rec.max_attempts, token,
                               r.expires_at && *r.expires_at < now, r.rec.cancel_requested,
                               r.envelope, r.time_limit, r.soft_time_limit, r.rate_key});
    }
    return out;
  }

  std::size_t complete(std::span<const Completion> done) override {
    std::size_t released = 0;
    const std::size_t n = complete_locked(done, released);
    if (released) wake();
    return n;
  }

  std::size_t complete_locked(std::span<const Completion> done, std::size_t& released) {
    std::lock_guard lock(store_->mu);
    std::size_t n = 0;
    std::vector<FinishedStep> finished;
    for (const auto& c : done) {
      auto it = store_->rows.find(c.id);
      if (it == store_->rows.end() || it->second.lease_token != c.lease_token ||
          it->second.rec.state != state::kRunning) {
        continue;
      }
      Row& r = it->second;
      r.lease_token = 0;
      r.rec.state = outcome_state(c.outcome);
      if (final_state_index(r.rec.state) >= 0) r.finished_at = now_micros();
      if (c.outcome == Outcome::kSucceeded) {
        r.rec.result = c.result;
      } else {
        r.rec.error_type = c.error_type;
        r.rec.error = c.error;
        r.rec.traceback = c.traceback;
      }
      if (c.outcome == Outcome::kRetry) r.run_at = c.retry_at;
      if (!r.rec.started_at && c.started_at > 0) r.rec.started_at = c.started_at;
      note_finished(finished, r);
      ++n;
    }
    released = settle_locked(std::move(finished));
    return n;
  }

  std::size_t renew(std::span<const JobRef> jobs, std::chrono::milliseconds lease,
                    std::vector<std::string>* cancel_requested,
                    std::vector<std::string>* renewed) override {
    std::lock_guard lock(store_->mu);
    const Micros until = now_micros() + lease.count() * 1000;
    std::size_t n = 0;
    for (const auto& j : jobs) {
      auto it = store_->rows.find(j.id);
      if (it != store_->rows.end() && it->second.rec.state == state::kRunning &&
          it->second.lease_token == j.lease_token) {
        it->second.lease_expires = until;
        if (cancel_requested && it->second.rec.cancel_requested) {
          cancel_requested->push_back(j.id);
        }
        if (renewed) renewed->push_back(j.id);
        ++n;
      }
    }
    return n;
  }

  CancelResult cancel(const std::string& id) override {
    std::lock_guard lock(store_->mu);
    auto it = store_->rows.find(id);
    if (it == store_->rows.end()) return CancelResult::kNotFound;
    JobRecord& r = it->second.rec;
    if (r.state == state::kQueued || r.state == state::kWaiting) {
      r.state = state::kCancelled;
      it->second.finished_at = now_micros();
      r.error_type = kCancelledType;
      r.error = kCancelledBeforeStart;
      std::vector<FinishedStep> finished;
      note_finished(finished, it->second);
      settle_locked(std::move(finished));
      return CancelResult::kCancelled;
    }
    if (r.state == state::kRunning) {
      r.cancel_requested = true;
      return CancelResult::kRequested;
    }
    return CancelResult::kFinished;
  }

  std::size_t release(std::span<const JobRef> jobs) override {
    std::size_t n = 0;
    {
      std::lock_guard lock(store_->mu);
      for (const auto& j : jobs) {
        auto it = store_->rows.find(j.id);
        if (it == store_->rows.end() || it->second.lease_token != j.lease_token ||
            it->second.rec.state != state::kRunning) {
          continue;
        }
        it->second.rec.state = state::kQueued;
        if (it->second.rec.attempts > 0) it->second.rec.attempts -= 1;
        it->second.rec.started_at.reset();
        it->second.lease_token = 0;
        ++n;
      }
    }
    wake();
    return n;
  }

  std::size_t mark_started(std::span<const StartMark> marks) override {
    std::lock_guard lock(store_->mu);
    std::size_t n = 0;
    for (const auto& m : marks) {
      auto it = store_->rows.find(m.id);
      if (it == store_->rows.end() || it->second.lease_token != m.lease_token ||
          it->second.rec.state != state::kRunning || it->second.rec.started_at) {
        continue;
      }
      it->second.rec.started_at = std::min(m.started_at, now_micros());
      ++n;
    }
    return n;
  }

  std::size_t interrupt(std::span<const JobRef> jobs) override {
    std::size_t n = 0;
    {
      std::lock_guard lock(store_->mu);
      std::vector<FinishedStep> finished;
      for (const auto& j : jobs) {
        auto it = store_->rows.find(j.id);
        if (it == store_->rows.end() || it->second.lease_token != j.lease_token ||
            it->second.rec.state != state::kRunning) {
          continue;
        }
        JobRecord& r = it->second.rec;
        const bool refund = r.interrupted < kMaxUnspentHandbacks;
        if (r.interrupted < kAttemptsCeiling) r.interrupted += 1;
        if (refund) {
          if (r.attempts > 0) r.attempts -= 1;
          r.state = state::kQueued;
        } else if (is_last_attempt(r.attempts, r.max_attempts)) {
          r.state = state::kDead;
          it->second.finished_at = now_micros();
          r.error_type = kInterruptedType;
          r.error = interrupted_message(r.interrupted);
          note_finished(finished, it->second);
        } else {
          r.state = state::kQueued;
        }
        it->second.lease_token = 0;
        ++n;
      }
      settle_locked(std::move(finished));
    }
    if (n) wake();
    return n;
  }

  std::size_t release_claim(std::int64_t lease_token) override {
    std::size_t n = 0;
    {
      std::lock_guard lock(store_->mu);
      for (auto& [id, r] : store_->rows) {
        if (r.rec.state == state::kRunning && r.lease_token == lease_token) {
          r.rec.state = state::kQueued;
          if (r.rec.attempts > 0) r.rec.attempts -= 1;
          r.rec.started_at.reset();
          r.lease_token = 0;
          ++n;
        }
      }
    }
    if (n) wake();
    return n;
  }

  std::size_t defer(std::span<const Deferral> jobs) override {
    std::size_t n = 0;
    {
      std::lock_guard lock(store_->mu);
      for (const auto& j : jobs) {
        auto it = store_->rows.find(j.id);
        if (it == store_->rows.end() || it->second.lease_token != j.lease_token ||
            it->second.rec.state != state::kRunning) {
          continue;
        }
        it->second.rec.state = state::kQueued;
        if (it->second.rec.attempts > 0) it->second.rec.attempts -= 1;
        it->second.rec.started_at.reset();
        it->second.lease_token = 0;
        it->second.run_at = j.run_at;
        ++n;
      }
    }
    return n;
  }

  RateGrant acquire_rate(const std::string& key, Micros interval_us, int burst, int want,
                         Micros horizon_us) override {
    std::lock_guard lock(store_->mu);
    return gcra_reserve(store_->rate_tat[key], now_micros(), interval_us, burst, want,
                        horizon_us);
  }

  std::size_t rescue_expired() override {
    std::size_t n = 0;
    {
      std::lock_guard lock(store_->mu);
      const Micros now = now_micros();
      std::vector<FinishedStep> finished;
      for (auto& [id, r] : store_->rows) {
        if (r.rec.state == state::kRunning && r.lease_expires < now) {
          r.lease_token = 0;
          if (!r.rec.started_at && r.rec.interrupted < kMaxUnspentHandbacks) {
            // Never started: back unspent, counted against the hand-back bound.
            r.rec.state = state::kQueued;
            if (r.rec.attempts > 0) r.rec.attempts -= 1;
            r.rec.interrupted += 1;
          } else if (is_last_attempt(r.rec.attempts, r.rec.max_attempts)) {
            r.rec.state = state::kDead;
            r.finished_at = now_micros();
            r.rec.error_type = kWorkerLostType;
            r.rec.error = worker_lost_message(r.rec.attempts);
            note_finished(finished, r);
          } else {
            r.rec.state = state::kQueued;
          }
          ++n;
        }
      }
      settle_locked(std::move(finished));
    }
    if (n) wake();
    return n;
  }

  void beat_worker(const WorkerRow& row) override {
    std::lock_guard lock(store_->mu);
    const Micros now = now_micros();
    auto [it, inserted] = store_->workers.try_emplace(row.id);
    auto& w = it->second;
    if (inserted || w.state == "stopped") {
      // A stopped row is final: a late heartbeat does not bring it back.
      if (!inserted) return;
      w.started_at = now;
    }
    w.row = row;
    w.state = "running";
    w.last_heartbeat = now;
    w.expires_at = now + row.lease_ms * 1000;
  }

  void stop_worker(const WorkerRow& row) override {
    std::lock_guard lock(store_->mu);
    const Micros now = now_micros();
    auto [it, inserted] = store_->workers.try_emplace(row.id);
    auto& w = it->second;
    if (inserted) w.started_at = now;
    w.row = row;
    w.state = "stopped";
    w.last_heartbeat = now;
    w.expires_at = now;
    w.stopped_at = now;
  }

  std::size_t reap_workers(std::chrono::milliseconds keep) override {
    std::lock_guard lock(store_->mu);
    const Micros now = now_micros();
    std::size_t lost = 0;
    for (auto it = store_->workers.begin(); it != store_->workers.end();) {
      auto& w = it->second;
      if (w.state == "running" && w.expires_at < now) {
        w.state = "lost";
        ++lost;
      }
      if (w.state != "running" && w.last_heartbeat < now - keep.count() * 1000) {
        it = store_->workers.erase(it);
      } else {
        ++it;
      }
    }
    return lost;
  }

  std::vector<WorkerRecord> workers() override {
    std::lock_guard lock(store_->mu);
    std::vector<WorkerRecord> out;
    for (const auto& [id, w] : store_->workers) out.push_back(w);
    return out;
  }

  bool hold_lease(const std::string& name, const std::string& holder,
                  std::chrono::milliseconds lease) override {
    std::lock_guard lock(store_->mu);
    const Micros now = now_micros();
    auto& l = store_->leases[name];
    if (l.holder.empty() || l.holder == holder || l.expires < now) {
      l.holder = holder;
      l.expires = now + lease.count() * 1000;
    }
    return l.holder == holder;
  }

  void drop_lease(const std::string& name, const std::string& holder) override {
    std::lock_guard lock(store_->mu);
    auto it = store_->leases.find(name);
    if (it != store_->leases.end() && it->second.holder == holder) store_->leases.erase(it);
  }

  std::vector<ScheduleRow> load_schedules() override {
    std::lock_guard lock(store_->mu);
    std::vector<ScheduleRow> out;
    for (const auto& [name, s] : store_->schedules) {
      if (s.enabled) out.push_back(s.row);
    }
    return out;
  }

  FireResult fire_schedule(const ScheduleFire& f) override {
    {
      std::lock_guard lock(store_->mu);
      const auto l = store_->leases.find(f.lease_name);
      if (l == store_->leases.end() || l->second.holder != f.holder ||
          l->second.expires <= now_micros()) {
        return FireResult::kNotLeader;
      }
      const auto it = store_->schedules.find(f.schedule);
      if (it == store_->schedules.end() || !it->second.enabled ||
          it->second.row.next_run_at != f.expect_next) {
        return FireResult::kStale;
      }
      auto& sched = it->second;
      sched.row.next_run_at = f.next_run_at;
      if (!f.slot) {
        if (!f.outcome.empty()) sched.last_outcome = f.outcome;
        return FireResult::kAdvanced;
      }
      auto& runs = store_->runs[f.schedule];
      if (runs.contains(*f.slot)) return FireResult::kAlreadyFired;
      if (f.check_overlap && f.max_instances > 0) {
        int active = 0;
        for (const auto& [slot, id] : runs) {
          const auto row = store_->rows.find(id);
          if (row != store_->rows.end() && (row->second.rec.state == state::kQueued ||
                                            row->second.rec.state == state::kRunning)) {
            ++active;
          }
        }
        if (active >= f.max_instances) {
          runs.emplace(*f.slot, std::string());
          sched.last_outcome = kSkippedRunningOutcome;
          return FireResult::kSkipped;
        }
      }
      runs.emplace(*f.slot, f.job.id);
      sched.last_run_at = now_micros();
      sched.last_job_id = f.job.id;
      sched.last_outcome = state::kQueued;
    }
    enqueue(std::span<const NewJob>(&f.job, 1));
    return FireResult::kFired;
  }

  std::size_t prune_schedule_runs(Micros before) override {
    std::lock_guard lock(store_->mu);
    std::size_t n = 0;
    for (auto& [name, runs] : store_->runs) {
      for (auto it = runs.begin(); it != runs.end() && it->first < before;) {
        it = runs.erase(it);
        ++n;
      }
    }
    return n;
  }

  // Retention: the reference semantics of one batch (driver.hpp). The memory store has no
  // poller marks; schedule runs and workflows are honoured as on the SQL drivers.
  PruneResult prune_jobs(const PruneRequest& req) override {
    std::lock_guard lock(store_->mu);
    std::set<std::string> run_jobs;
    for (const auto& [name, runs] : store_->runs) {
      for (const auto& [slot, id] : runs) run_jobs.insert(id);
    }
    std::set<std::string> live_workflows;
    for (const auto& [id, r] : store_->rows) {
      if (!r.rec.workflow_id.empty() &&
          (r.rec.state == state::kWaiting || r.rec.state == state::kQueued ||
           r.rec.state == state::kRunning)) {
        live_workflows.insert(r.rec.workflow_id);
      }
    }
    // The range after the cursor, in (finished_at, id) order; the cursor's time is its
    // microseconds as decimal text.
    const std::pair<Micros, std::string> after{
        req.after_at.empty() ? std::numeric_limits<Micros>::min() : std::stoll(req.after_at),
        req.after_id};
    std::vector<std::pair<Micros, std::string>> range;
    for (const auto& [id, r] : store_->rows) {
      if (r.rec.state != req.state || r.finished_at == 0 || r.finished_at >= req.before) continue;
      std::pair<Micros, std::string> key{r.finished_at, id};
      if (key > after) range.push_back(std::move(key));
    }
    std::sort(range.begin(), range.end());
    const auto kept = [&](const std::string& id) {
      return run_jobs.contains(id) || live_workflows.contains(store_->rows.at(id).rec.workflow_id);
    };
    PruneResult out;
    if (req.dry_run) {
      for (const auto& [at, id] : range) out.deleted += kept(id) ? 0 : 1;
      return out;
    }
    if (range.size() > static_cast<std::size_t>(std::max(req.limit, 1))) {
      range.resize(static_cast<std::size_t>(std::max(req.limit, 1)));
    }
    out.scanned = range.size();
    if (!range.empty()) {
      out.last_at = std::to_string(range.back().first);
      out.last_id = range.back().second;
    }
    for (const auto& [at, id] : range) {
      if (kept(id)) continue;
      ++out.deleted;
      // Its edges go with it, from both indexes.
      const auto unlink = [&](auto& index, const std::string& key, const Dependency& d) {
        auto o = index.find(key);
        if (o == index.end()) return;
        std::erase_if(o->second, [&](const Dependency& x) {
          return x.parent == d.parent && x.child == d.child;
        });
        if (o->second.empty()) index.erase(o);
      };
      if (auto e = store_->children.find(id); e != store_->children.end()) {
        const auto edges = e->second;
        store_->children.erase(e);
        for (const auto& d : edges) unlink(store_->parents, d.child, d);
      }
      if (auto e = store_->parents.find(id); e != store_->parents.end()) {
        const auto edges = e->second;
        store_->parents.erase(e);
        for (const auto& d : edges) unlink(store_->children, d.parent, d);
      }
      store_->rows.erase(id);
    }
    return out;
  }

  std::vector<std::string> paused_queues(std::span<const std::string> queues) override {
    std::lock_guard lock(store_->mu);
    std::vector<std::string> out;
    for (const auto& q : queues) {
      auto it = store_->queue_controls.find(q);
      if (it != store_->queue_controls.end() && it->second.paused) out.push_back(q);
    }
    return out;
  }

  void set_queue(const std::string& queue, bool paused, std::optional<int> concurrency) {
    std::function<void()> wake;
    {
      std::lock_guard lock(store_->mu);
      store_->queue_controls[queue] = Store::QueueControl{paused, concurrency};
      wake = store_->wakeup;
    }
    if (wake) wake();  // a resumed queue's jobs are runnable again
  }

  void put_schedule(const ScheduleRow& row, bool enabled) {
    std::lock_guard lock(store_->mu);
    auto& s = store_->schedules[row.name];
    s.row = row;
    s.enabled = enabled;
  }

  std::size_t count_runnable(std::span<const std::string> queues) override {
    std::lock_guard lock(store_->mu);
    const Micros now = now_micros();
    std::size_t n = 0;
    for (auto& [id, r] : store_->rows) {
      if (r.rec.state == state::kQueued && r.run_at <= now &&
          std::find(queues.begin(), queues.end(), r.rec.queue) != queues.end()) {
        auto c = store_->queue_controls.find(r.rec.queue);
        if (c == store_->queue_controls.end() || !c->second.paused) ++n;
      }
    }
    return n;
  }

  std::optional<JobRecord> get(const std::string& id) override {
    std::lock_guard lock(store_->mu);
    auto it = store_->rows.find(id);
    if (it == store_->rows.end()) return std::nullopt;
    return it->second.rec;
  }

  void set_wakeup(std::function<void()> wakeup) override {
    std::lock_guard lock(store_->mu);
    store_->wakeup = std::move(wakeup);
  }

  // Notifier: the memory store wakes its own process only (set_wakeup); it has no file
  // descriptor to wait on and no queue notifications (set_queue wakes instead).
  int notification_fd() override { return -1; }
  bool drain_notifications() override { return false; }
  bool queues_changed() override { return false; }

  // Leader store: the memory store lives in this process, on this machine's clock.
  std::optional<Micros> database_now() override { return std::nullopt; }

  // Every row of the memory store is a valid job (no column bounds, no constraints): no
  // claim fails for a row's sake, so no row is ever to blame.
  std::size_t quarantine(const ClaimRequest& /*request*/, const std::string& /*why*/) override {
    return 0;
  }

 private:
  void wake() {
    std::function<void()> w;
    {
      std::lock_guard lock(store_->mu);
      w = store_->wakeup;
    }
    if (w) w();
  }

  std::shared_ptr<Store> store_;
};

}  // namespace

// The memory store's own writes of its fastq_schedule and fastq_queue tables, which the
// Django app writes for the SQL drivers. No production header declares them: they are the
// tests' (tests/cpp/memory_tables.hpp), the memory store having no Django app to write them.
void memory_put_schedule(Driver& memory_driver, const ScheduleRow& row, bool enabled) {
  dynamic_cast<MemoryDriver&>(memory_driver).put_schedule(row, enabled);
}

void memory_set_queue(Driver& memory_driver, const std::string& queue, bool paused,
                      std::optional<int> concurrency) {
  dynamic_cast<MemoryDriver&>(memory_driver).set_queue(queue, paused, concurrency);
}

std::unique_ptr<Driver> make_memory_driver() {
  return std::make_unique<MemoryDriver>(std::make_shared<Store>());
}

}  // namespace fastq
