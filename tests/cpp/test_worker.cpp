#include <gtest/gtest.h>

#include <atomic>
#include <algorithm>
#include <map>
#include <set>
#include <mutex>
#include <thread>

#include "fastq/worker.hpp"
#include "fixtures.hpp"

namespace fastq {
namespace {

using namespace std::chrono_literals;

class RecordingRunner : public TaskRunner {
 public:
  void run(const ClaimedJob& job, Completion& out) override {
    {
      std::lock_guard lock(mu);
      runs[job.id]++;
    }
    if (job.task == "fail") {
      out.outcome = Outcome::kFailed;
      out.error_type = "RuntimeError";
      out.error = "boom";
      return;
    }
    if (sleep_for.count()) std::this_thread::sleep_for(sleep_for);
    out.result = job.args;
  }
  std::mutex mu;
  std::map<std::string, int> runs;
  std::chrono::milliseconds sleep_for{0};
};

NewJob job(std::string task, std::string args = "[1]") {
  NewJob j;
  j.id = new_job_id();
  j.task = std::move(task);
  j.args = std::move(args);
  return j;
}

WorkerConfig config() {
  WorkerConfig c;
  c.registered = {"ok", "fail"};
  c.concurrency = 4;
  c.burst = true;
  c.handle_signals = false;
  c.name = "test:1";
  return c;
}

class WorkerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { FASTQ_OPEN_DRIVER(GetParam(), db); }
  // Enqueues `n` jobs of task "ok"; returns them.
  std::vector<NewJob> enqueue_ok(int n) {
    std::vector<NewJob> jobs;
    for (int i = 0; i < n; ++i) jobs.push_back(job("ok"));
    db->enqueue(jobs);
    return jobs;
  }
  std::unique_ptr<Driver> db;
};

TEST_P(WorkerTest, BurstRunsEveryJobExactlyOnce) {
  std::vector<NewJob> jobs;
  for (int i = 0; i < 3000; ++i) jobs.push_back(job("ok", "[" + std::to_string(i) + "]"));
  db->enqueue(jobs);
  auto probe = db->connect_another();
  RecordingRunner runner;
  Worker worker(std::move(db), runner, config());
  auto stats = worker.run();
  EXPECT_EQ(stats.succeeded, 3000u);
  EXPECT_EQ(stats.completed_written, 3000u);
  EXPECT_EQ(stats.fenced, 0u);
  ASSERT_EQ(runner.runs.size(), 3000u);
  for (auto& [id, n] : runner.runs) EXPECT_EQ(n, 1) << id;
  auto rec = probe->get(jobs[1234].id);
  EXPECT_EQ(rec->state, "succeeded");
  EXPECT_EQ(rec->result, "[1234]");
}

TEST_P(WorkerTest, BadJobsAreDeadWithAReasonAndTheWorkerGoesOn) {
  std::vector<NewJob> jobs{job("ok"), job("not.registered"), job("ok", "{not json"),
                           job("fail"), job("ok"), job("ok", "[\"" + std::string(300, 'x') + "\"]")};
  jobs[2].kwargs = "{}";
  db->enqueue(jobs);
  auto probe = db->connect_another();
  RecordingRunner runner;
  auto cfg = config();
  cfg.max_payload_bytes = 200;
  Worker worker(std::move(db), runner, cfg);
  auto stats = worker.run();
  EXPECT_EQ(stats.succeeded, 2u);
  EXPECT_EQ(stats.failed, 4u);
  EXPECT_EQ(stats.rejected, 3u);
  EXPECT_EQ(runner.runs.size(), 3u) << "unknown tasks and bad payloads never reach the runner";
  auto unknown = probe->get(jobs[1].id);
  EXPECT_EQ(unknown->state, "dead");
  EXPECT_EQ(unknown->error_type, "fastq.UnknownTask");
  EXPECT_NE(unknown->error.find("not.registered"), std::string::npos);
  auto bad = probe->get(jobs[2].id);
  EXPECT_EQ(bad->state, "dead");
  EXPECT_EQ(bad->error_type, "fastq.InvalidPayload");
  EXPECT_NE(bad->error.find("args is not valid JSON"), std::string::npos);
  EXPECT_EQ(probe->get(jobs[3].id)->state, "failed");
  EXPECT_EQ(probe->get(jobs[3].id)->error, "boom");
  EXPECT_EQ(probe->get(jobs[4].id)->state, "succeeded");
  auto big = probe->get(jobs[5].id);
  EXPECT_EQ(big->state, "dead");
  EXPECT_EQ(big->error_type, "fastq.PayloadTooLarge");
}

// Records when each job started, and which jobs the tracker saw claimed/started/forgotten.
class TimingRunner : public TaskRunner {
 public:
  void run(const ClaimedJob& job, Completion& out) override {
    std::lock_guard lock(mu);
    starts[job.rate_key.empty() ? job.task : job.rate_key].push_back(
        std::chrono::steady_clock::now());
    out.result = "null";
  }
  std::mutex mu;
  std::map<std::string, std::vector<std::chrono::steady_clock::time_point>> starts;
};

TEST_P(WorkerTest, RateLimitSpacesStartsAcrossTheBucket) {
  // 30 jobs at 100/s (burst 1) in one bucket, 30 in a second bucket of the same task:
  // each bucket takes about 290 ms and the two run side by side.
  std::vector<NewJob> jobs;
  for (int i = 0; i < 60; ++i) {
    jobs.push_back(job("ok"));
    jobs.back().rate_key = i % 2 ? "ok:provider-a" : "ok:provider-b";
  }
  db->enqueue(jobs);
  auto probe = db->connect_another();
  TimingRunner runner;
  auto cfg = config();
  cfg.rate_limits["ok"] = RateLimit{10'000, 1};
  cfg.rate_horizon = 100ms;  // most jobs go back to the queue and come round again
  Worker worker(std::move(db), runner, cfg);
  auto stats = worker.run();
  EXPECT_EQ(stats.succeeded, 60u);
  EXPECT_GT(stats.deferred, 0u);
  for (const char* key : {"ok:provider-a", "ok:provider-b"}) {
    auto& t = runner.starts[key];
    ASSERT_EQ(t.size(), 30u) << key;
    std::sort(t.begin(), t.end());
    EXPECT_GE(t.back() - t.front(), 285ms) << key;
    // No 100 ms window holds more than 10 starts, give or take a few a loaded machine
    // starts late (the executors may be busy when a token falls due).
    for (std::size_t i = 0; i + 14 < t.size(); ++i) {
      EXPECT_GE(t[i + 14] - t[i], 100ms) << key << " at " << i;
    }
  }
  for (const auto& j : jobs) EXPECT_EQ(probe->get(j.id)->attempts, 1) << "deferral is free";
}

class CountingTracker : public JobTracker {
 public:
  void claimed(const ClaimedJob& j) override {
    std::lock_guard lock(mu);
    live.insert(j.id);
    ++claims;
  }
  void started(const ClaimedJob& j, int executor) override {
    std::lock_guard lock(mu);
    EXPECT_TRUE(live.contains(j.id));
    EXPECT_GE(executor, 0);
    ++starts;
  }
  void forgotten(const std::string& id) override {
    std::lock_guard lock(mu);
    EXPECT_EQ(live.erase(id), 1u);
  }
  std::mutex mu;
  std::set<std::string> live;
  int claims = 0, starts = 0;
};

// Async jobs finish on threads of their own, 100 ms after they start.
class AsyncRunner : public TaskRunner {
 public:
  ~AsyncRunner() override {
    for (auto& t : threads) t.join();
  }
  void run(const ClaimedJob&, Completion& out) override { out.result = "null"; }
  void start_async(const ClaimedJob&, Done done) override {
    std::lock_guard lock(mu);
    peak = std::max(peak, ++inflight);
    threads.emplace_back([this, done = std::move(done)] {
      std::this_thread::sleep_for(100ms);
      {
        std::lock_guard l(mu);
        --inflight;
      }
      Completion c;
      c.result = "\"async\"";
      done(std::move(c));
    });
  }
  std::mutex mu;
  std::vector<std::thread> threads;
  int inflight = 0, peak = 0;
};

TEST_P(WorkerTest, AsyncJobsRunManyAtOnceOnOneExecutor) {
  const auto jobs = enqueue_ok(40);
  auto probe = db->connect_another();
  AsyncRunner runner;
  auto cfg = config();
  cfg.concurrency = 1;
  cfg.async_tasks = {"ok"};
  Worker worker(std::move(db), runner, cfg);
  auto stats = worker.run();
  EXPECT_EQ(stats.succeeded, 40u);
  // One executor thread, yet the jobs overlapped instead of running one after another.
  EXPECT_GE(runner.peak, 10);
  for (const auto& j : jobs) EXPECT_EQ(probe->get(j.id)->result, "\"async\"");
}

TEST_P(WorkerTest, MaxJobsRetiresTheWorkerAndTheTrackerSeesEveryJob) {
  const auto jobs = enqueue_ok(50);
  auto probe = db->connect_another();
  RecordingRunner runner;
  CountingTracker tracker;
  auto cfg = config();
  cfg.burst = false;
  cfg.max_jobs = 20;
  cfg.tracker = &tracker;
  Worker worker(std::move(db), runner, cfg);
  auto stats = worker.run();  // returns by itself after 20 jobs
  EXPECT_EQ(stats.succeeded, 20u);
  EXPECT_EQ(probe->count_runnable(std::vector<std::string>{"default"}), 30u);
  EXPECT_EQ(tracker.claims, 20);
  EXPECT_EQ(tracker.starts, 20);
  EXPECT_TRUE(tracker.live.empty());
}

TEST_P(WorkerTest, RescuesJobsOfADeadWorker) {
  std::vector<NewJob> jobs{job("ok"), job("ok")};
  db->enqueue(jobs);
  // A "worker" claims both with a tiny lease and dies without completing them.
  auto dead = db->connect_another();
  const auto held = dead->claim(ClaimRequest{{"default"}, 10, 1ms, "dead:1"});
  ASSERT_EQ(held.size(), 2u);
  // It had started one of them (jobs[0]); the other never ran.
  const auto& began = held[0].id == jobs[0].id ? held[0] : held[1];
  const StartMark mark{began.id, began.lease_token, now_micros()};
  ASSERT_EQ(dead->mark_started(std::span(&mark, 1)), 1u);
  std::this_thread::sleep_for(20ms);
  auto probe = db->connect_another();
  RecordingRunner runner;
  auto cfg = config();
  cfg.rescue_interval = 10ms;
  Worker worker(std::move(db), runner, cfg);
  auto stats = worker.run();
  EXPECT_EQ(stats.rescued, 2u);
  EXPECT_EQ(stats.succeeded, 2u);
  auto rec = probe->get(jobs[0].id);
  EXPECT_EQ(rec->state, "succeeded");
  EXPECT_EQ(rec->attempts, 2) << "the started run was charged";
  EXPECT_EQ(rec->interrupted, 0);
  rec = probe->get(jobs[1].id);
  EXPECT_EQ(rec->state, "succeeded");
  EXPECT_EQ(rec->attempts, 1) << "the claim that never started was refunded";
  EXPECT_EQ(rec->interrupted, 1);
}

// The rescuer runs on one worker only, the holder of the leader lease "rescuer": while
// another (live) worker holds it, this one leaves dead workers' jobs alone; once that
// lease expires (its holder died) this one takes it over and rescues them. A worker that
// stops hands the lease on at once.
TEST_P(WorkerTest, OnlyTheRescuerLeaseHolderRescues) {
  std::vector<NewJob> jobs{job("ok"), job("ok")};
  db->enqueue(jobs);
  auto dead = db->connect_another();
  const auto held = dead->claim(ClaimRequest{{"default"}, 10, 1ms, "dead:1"});
  ASSERT_EQ(held.size(), 2u);
  auto probe = db->connect_another();
  ASSERT_TRUE(probe->hold_lease("rescuer", "leader:elsewhere", 400ms));
  std::this_thread::sleep_for(20ms);  // the dead worker's leases have expired
  {
    RecordingRunner runner;
    auto cfg = config();
    cfg.rescue_interval = 10ms;
    Worker follower(db->connect_another(), runner, cfg);
    const auto stats = follower.run();  // burst: nothing runnable, so it ends at once
    EXPECT_EQ(stats.rescued, 0u) << "not the leader: rescues nothing";
    EXPECT_EQ(probe->get(jobs[0].id)->state, "running");
  }
  std::this_thread::sleep_for(450ms);  // the leader "died": its lease expires
  RecordingRunner runner;
  auto cfg = config();
  cfg.rescue_interval = 10ms;
  Worker worker(std::move(db), runner, cfg);
  const auto stats = worker.run();
  EXPECT_EQ(stats.rescued, 2u);
  EXPECT_EQ(stats.succeeded, 2u);
  for (const auto& j : jobs) EXPECT_EQ(probe->get(j.id)->state, "succeeded");
  EXPECT_TRUE(probe->hold_lease("rescuer", "next:1", 30s))
      << "the stopped leader handed the lease on";
}

TEST_P(WorkerTest, StartsAreRecordedWhileJobsRun) {
  std::vector<NewJob> jobs{job("ok"), job("ok")};
  db->enqueue(jobs);
  auto probe = db->connect_another();
  RecordingRunner runner;
  runner.sleep_for = 300ms;
  auto cfg = config();
  cfg.concurrency = 2;
  Worker worker(std::move(db), runner, cfg);
  std::thread t([&] { worker.run(); });
  bool seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {
    seen = true;
    for (const auto& j : jobs) {
      auto rec = probe->get(j.id);
      seen = seen && rec->state == "running" && rec->started_at.has_value();
    }
    if (!seen) std::this_thread::sleep_for(2ms);
  }
  t.join();
  EXPECT_TRUE(seen) << "both starts are in the rows while the jobs run";
  for (const auto& j : jobs) {
    auto rec = probe->get(j.id);
    EXPECT_EQ(rec->state, "succeeded");
    EXPECT_TRUE(rec->started_at);
  }
}

// Forwards to a driver, except that while `down` is set every call fails as a lost
// connection would (transient). Its siblings share the switch.
class OutageDriver final : public Driver {
 public:
  OutageDriver(std::unique_ptr<Driver> inner, std::shared_ptr<std::atomic<bool>> down)
      : inner_(std::move(inner)), down_(std::move(down)) {}
  std::string name() const override { return inner_->name(); }
  std::unique_ptr<Driver> connect_another() const override {
    return std::make_unique<OutageDriver>(inner_->connect_another(), down_);
  }
  std::vector<std::string> enqueue(std::span<const NewJob> j) override { return up().enqueue(j); }
  std::vector<ClaimedJob> claim(const ClaimRequest& r) override { return up().claim(r); }
  std::size_t complete(std::span<const Completion> c) override { return up().complete(c); }
  std::size_t renew(std::span<const JobRef> j, std::chrono::milliseconds l,
                    std::vector<std::string>* c, std::vector<std::string>* r) override {
    return up().renew(j, l, c, r);
  }
  std::size_t release(std::span<const JobRef> j) override { return up().release(j); }
  std::size_t mark_started(std::span<const StartMark> m) override { return up().mark_started(m); }
  std::size_t interrupt(std::span<const JobRef> j) override { return up().interrupt(j); }
  std::size_t release_claim(std::int64_t t) override { return up().release_claim(t); }
  std::size_t defer(std::span<const Deferral> j) override { return up().defer(j); }
  RateGrant acquire_rate(const std::string& k, Micros i, int b, int w, Micros h) override {
    return up().acquire_rate(k, i, b, w, h);
  }
  std::size_t rescue_expired() override { return up().rescue_expired(); }
  CancelResult cancel(const std::string& id) override { return up().cancel(id); }
  bool hold_lease(const std::string& n, const std::string& h, std::chrono::milliseconds l) override {
    return up().hold_lease(n, h, l);
  }
  void drop_lease(const std::string& n, const std::string& h) override { up().drop_lease(n, h); }
  std::vector<ScheduleRow> load_schedules() override { return up().load_schedules(); }
  FireResult fire_schedule(const ScheduleFire& f) override { return up().fire_schedule(f); }
  std::size_t prune_schedule_runs(Micros b) override { return up().prune_schedule_runs(b); }
  std::size_t count_runnable(std::span<const std::string> q) override {
    return up().count_runnable(q);
  }
  std::optional<JobRecord> get(const std::string& id) override { return up().get(id); }
  PruneResult prune_jobs(const PruneRequest& r) override { return up().prune_jobs(r); }
  std::size_t quarantine(const ClaimRequest& r, const std::string& why) override {
    return up().quarantine(r, why);
  }
  std::vector<std::string> enqueue_workflow(std::span<const NewJob> j,
                                            std::span<const Dependency> d) override {
    return up().enqueue_workflow(j, d);
  }
  std::size_t cancel_workflow(const std::string& w) override { return up().cancel_workflow(w); }
  std::optional<Micros> database_now() override { return up().database_now(); }
  void beat_worker(const WorkerRow& r) override { up().beat_worker(r); }
  void stop_worker(const WorkerRow& r) override { up().stop_worker(r); }
  std::size_t reap_workers(std::chrono::milliseconds k) override { return up().reap_workers(k); }
  std::vector<WorkerRecord> workers() override { return up().workers(); }
  std::vector<std::string> paused_queues(std::span<const std::string> q) override {
    return up().paused_queues(q);
  }
  // Wake-ups are in-process (the inner store is the memory driver): no outage stops them.
  int notification_fd() override { return inner_->notification_fd(); }
  bool drain_notifications() override { return inner_->drain_notifications(); }
  bool queues_changed() override { return inner_->queues_changed(); }
  void set_wakeup(std::function<void()> w) override { inner_->set_wakeup(std::move(w)); }

 private:
  Driver& up() {
    if (down_->load()) throw DriverError("database unreachable (test outage)", true);
    return *inner_;
  }
  std::unique_ptr<Driver> inner_;
  std::shared_ptr<std::atomic<bool>> down_;
};

// An outage longer than the lease: the worker finishes jobs while the database is away
// and holds their outcomes; on the database's clock their leases have expired. When it
// returns, the worker must write those outcomes (and renew its leases) before any rescue
// pass, never hand its own finished jobs back to be run again.
TEST(WorkerOutageTest, OutcomesHeldThroughAnOutageAreWrittenNotRescued) {
  auto down = std::make_shared<std::atomic<bool>>(false);
  auto db = std::make_unique<OutageDriver>(make_memory_driver(), down);
  std::vector<NewJob> jobs;
  for (int i = 0; i < 8; ++i) jobs.push_back(job("ok"));
  db->enqueue(jobs);
  auto probe = db->connect_another();

  class GatedRunner : public RecordingRunner {
   public:
    void run(const ClaimedJob& j, Completion& out) override {
      started++;
      RecordingRunner::run(j, out);
    }
    std::atomic<int> started{0};
  } runner;
  runner.sleep_for = 150ms;
  auto cfg = config();
  cfg.burst = false;
  cfg.lease = 300ms;
  cfg.rescue_interval = 20ms;  // rescue passes far more often than renewals (lease/3)
  Worker worker(std::move(db), runner, cfg);
  std::thread t([&] { worker.run(); });
  while (runner.started.load() < 4) std::this_thread::sleep_for(1ms);
  down->store(true);  // the jobs running now finish while the database is away
  std::this_thread::sleep_for(900ms);  // three leases
  down->store(false);
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  auto all_done = [&] {
    for (const auto& j : jobs) {
      auto rec = probe->get(j.id);
      if (!rec || rec->state != "succeeded") return false;
    }
    return true;
  };
  while (!all_done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  worker.stop();
  t.join();
  ASSERT_TRUE(all_done());
  const auto stats = worker.stats();
  EXPECT_EQ(stats.fenced, 0u) << "an outcome was refused: its job had been rescued";
  for (const auto& j : jobs) EXPECT_EQ(runner.runs[j.id], 1) << j.id;
}

TEST_P(WorkerTest, StopReleasesUnstartedJobs) {
  const auto jobs = enqueue_ok(200);
  auto probe = db->connect_another();
  RecordingRunner runner;
  runner.sleep_for = 20ms;
  auto cfg = config();
  cfg.burst = false;
  cfg.concurrency = 2;
  Worker worker(std::move(db), runner, cfg);
  std::thread stopper([&] {
    std::this_thread::sleep_for(150ms);
    worker.stop();
  });
  auto stats = worker.run();
  stopper.join();
  EXPECT_GT(stats.released, 0u);
  EXPECT_EQ(stats.succeeded + stats.released, stats.claimed);
  int queued = 0, succeeded = 0;
  for (auto& j : jobs) {
    auto rec = probe->get(j.id);
    if (rec->state == "queued") {
      ++queued;
      EXPECT_EQ(rec->attempts, 0);
    } else if (rec->state == "succeeded") {
      ++succeeded;
    } else {
      ADD_FAILURE() << "unexpected state " << rec->state;
    }
  }
  EXPECT_EQ(succeeded, static_cast<int>(stats.succeeded));
  EXPECT_EQ(queued + succeeded, 200);
}

// The supervisor raises its stop word before it relays SIGTERM to its processes: from
// then on a process whose own signal is still on its way claims nothing and starts none
// of the jobs it holds, which go back unspent when the stop arrives.
class StopWordTracker : public CountingTracker {
 public:
  bool stop_requested() const override { return stop.load(); }
  std::atomic<bool> stop{false};
};

class RaisingRunner : public TaskRunner {
 public:
  explicit RaisingRunner(StopWordTracker& t) : tracker(t) {}
  void run(const ClaimedJob&, Completion& out) override {
    ++runs;
    tracker.stop = true;  // the supervisor takes a SIGTERM while this job runs
    out.result = "null";
  }
  StopWordTracker& tracker;
  std::atomic<int> runs{0};
};

TEST_P(WorkerTest, NothingStartsOnceTheSupervisorsStopWordIsUp) {
  const auto jobs = enqueue_ok(50);
  auto probe = db->connect_another();
  StopWordTracker tracker;
  RaisingRunner runner(tracker);
  auto cfg = config();
  cfg.burst = false;
  cfg.concurrency = 2;
  cfg.tracker = &tracker;
  Worker worker(std::move(db), runner, cfg);
  std::thread stopper([&] {
    while (!tracker.stop.load()) std::this_thread::sleep_for(1ms);
    // The signal is late: room for the executors to start more, if they would.
    std::this_thread::sleep_for(200ms);
    worker.stop();
  });
  auto stats = worker.run();
  stopper.join();
  // Both executors may have begun a job before either set the word; nothing after.
  EXPECT_GE(runner.runs.load(), 1);
  EXPECT_LE(runner.runs.load(), 2);
  EXPECT_EQ(stats.succeeded, static_cast<std::uint64_t>(runner.runs.load()));
  EXPECT_EQ(stats.succeeded + stats.released, stats.claimed);
  int queued = 0;
  for (const auto& j : jobs) {
    auto rec = probe->get(j.id);
    if (rec->state == "queued") {
      ++queued;
      EXPECT_EQ(rec->attempts, 0) << j.id;
    }
  }
  EXPECT_EQ(queued, 50 - runner.runs.load());
  EXPECT_TRUE(tracker.live.empty());
}

// A run cut off at the end of the grace period goes back with interrupted + 1; its attempt
// is refunded kMaxUnspentHandbacks times, and charged after that.
TEST_P(WorkerTest, GraceExpiryCountsTheCutOffRunAndRefundsItUpToTheBound) {
  auto j = job("ok");
  db->enqueue(std::span(&j, 1));
  auto probe = db->connect_another();
  for (int round = 1; round <= kMaxUnspentHandbacks + 1; ++round) {
    auto runner = std::make_shared<RecordingRunner>();
    runner->sleep_for = 400ms;
    auto cfg = config();
    cfg.burst = false;
    cfg.grace = 50ms;
    auto worker = std::make_shared<Worker>(probe->connect_another(), *runner, cfg);
    std::thread stopper([&] {
      for (int i = 0; i < 200; ++i) {
        {
          std::lock_guard lock(runner->mu);
          if (!runner->runs.empty()) break;
        }
        std::this_thread::sleep_for(5ms);
      }
      worker->stop();
    });
    auto stats = worker->run();
    stopper.join();
    EXPECT_TRUE(stats.hard_stopped);
    EXPECT_EQ(stats.released, 1u);
    auto rec = probe->get(j.id);
    EXPECT_EQ(rec->state, "queued");
    EXPECT_EQ(rec->interrupted, round);
    EXPECT_EQ(rec->attempts, round <= kMaxUnspentHandbacks ? 0 : 1) << "round " << round;
    // The abandoned executor finishes its sleep; outlive it before tearing down.
    std::this_thread::sleep_for(600ms);
  }
}

TEST_P(WorkerTest, IdleWorkerWakesForNewWork) {
  auto producer = db->connect_another();
  RecordingRunner runner;
  auto cfg = config();
  cfg.burst = false;
  Worker worker(std::move(db), runner, cfg);
  std::thread t([&] { worker.run(); });
  std::this_thread::sleep_for(100ms);
  auto j = job("ok");
  producer->enqueue(std::span(&j, 1));
  for (int i = 0; i < 500; ++i) {
    auto rec = producer->get(j.id);
    if (rec && rec->state == "succeeded") break;
    std::this_thread::sleep_for(10ms);
  }
  worker.stop();
  t.join();
  EXPECT_EQ(producer->get(j.id)->state, "succeeded");
}

TEST_P(WorkerTest, ExpiredJobsEndWithoutRunning) {
  auto stale = job("ok");
  stale.expires_at = now_micros() - 1;
  auto fresh = job("ok");
  std::vector<NewJob> jobs{stale, fresh};
  db->enqueue(jobs);
  auto probe = db->connect_another();
  RecordingRunner runner;
  Worker worker(std::move(db), runner, config());
  auto stats = worker.run();
  EXPECT_EQ(stats.skipped, 1u);
  EXPECT_EQ(stats.succeeded, 1u);
  EXPECT_EQ(runner.runs.count(stale.id), 0u);
  auto rec = probe->get(stale.id);
  EXPECT_EQ(rec->state, "expired");
  EXPECT_EQ(rec->error_type, "fastq.Expired");
}

INSTANTIATE_TEST_SUITE_P(Drivers, WorkerTest, ::testing::Values("memory", "sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

TEST(WorkerConfigTest, RejectsNonsense) {
  RecordingRunner runner;
  auto cfg = config();
  cfg.queues.clear();
  EXPECT_THROW(Worker(make_memory_driver(), runner, cfg), std::invalid_argument);
  cfg = config();
  cfg.concurrency = 0;
  EXPECT_THROW(Worker(make_memory_driver(), runner, cfg), std::invalid_argument);
}

}  // namespace
}  // namespace fastq
