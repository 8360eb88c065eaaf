// The prefork supervisor against real databases: children are forked, die, and are
// replaced; the jobs they held are settled by the supervisor.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "fastq/supervisor.hpp"
#include "fixtures.hpp"

namespace fastq {
namespace {

using namespace std::chrono_literals;

class ChildRunner : public TaskRunner {
 public:
  void run(const ClaimedJob& job, Completion& out) override {
    if (job.task == "crash") _exit(3);  // a poison pill: takes its process down
    if (job.task == "hang") std::this_thread::sleep_for(30s);
    out.result = "null";
  }
};

NewJob make(const std::string& task, int max_attempts = 4, double time_limit = 0) {
  NewJob j;
  j.id = new_job_id();
  j.task = task;
  j.max_attempts = max_attempts;
  j.time_limit = time_limit;
  return j;
}

class SupervisorTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { FASTQ_OPEN_DRIVER(GetParam(), db); }
  std::unique_ptr<Driver> db;
  bool registry = false;  // supervisor and children write their registry rows

  SupervisorStats supervise(int processes, std::uint64_t max_jobs = 0) {
    SupervisorConfig cfg;
    if (registry) {
      WorkerRow sup;
      sup.id = "sup:" + std::to_string(getpid());
      sup.host = "test-host";
      sup.lease_ms = 30000;
      cfg.registry = sup;
    }
    cfg.processes = processes;
    cfg.slots_per_child = 64;
    cfg.burst = true;
    Driver* shared = db.get();
    const bool with_registry = registry;
    Supervisor sup(db->connect_another(), cfg, [shared, max_jobs, with_registry](int index) -> pid_t {
      const pid_t pid = fork();
      if (pid != 0) return pid;
      Supervisor::enter_child(index);
      ChildRunner runner;
      WorkerConfig wc;
      wc.registered = {"ok", "crash", "hang"};
      wc.concurrency = 2;
      wc.prefetch = 4;
      wc.burst = true;
      wc.handle_signals = false;
      wc.max_jobs = max_jobs;
      wc.tracker = Supervisor::child_tracker();
      wc.supervised = true;
      wc.name = "child:" + std::to_string(getpid());
      wc.metrics = Supervisor::child_metrics();
      if (with_registry) {
        WorkerRow row;
        row.id = wc.name;
        row.host = "test-host";
        row.supervisor = "sup:" + std::to_string(getppid());
        wc.registry = row;
      }
      int code = 0;
      try {
        Worker worker(shared->connect_another(), runner, wc);
        const auto stats = worker.run();
        if (max_jobs && stats.claimed - stats.deferred >= max_jobs) code = kRetiredExit;
      } catch (...) {
        code = 1;
      }
      _exit(code);
    });
    return sup.run();
  }
};

TEST_P(SupervisorTest, PoisonPillIsDeadAfterItsAttemptsAndTheRestRun) {
  std::vector<NewJob> jobs{make("crash", 2)};
  for (int i = 0; i < 30; ++i) jobs.push_back(make("ok"));
  db->enqueue(jobs);
  const auto stats = supervise(1);
  const auto pill = db->get(jobs[0].id);
  EXPECT_EQ(pill->state, "dead");
  EXPECT_EQ(pill->error_type, "fastq.WorkerLost");
  EXPECT_NE(pill->error.find("exited with code 3"), std::string::npos) << pill->error;
  EXPECT_EQ(pill->attempts, 2);
  for (std::size_t i = 1; i < jobs.size(); ++i) {
    EXPECT_EQ(db->get(jobs[i].id)->state, "succeeded");
  }
  EXPECT_GE(stats.crashed, 2u);
  EXPECT_GE(stats.started, 3u);
}

TEST_P(SupervisorTest, HardTimeLimitKillsTheChildAndReleasesItsOtherJobs) {
  std::vector<NewJob> jobs{make("hang", 1, 0.3)};
  for (int i = 0; i < 10; ++i) jobs.push_back(make("ok"));
  db->enqueue(jobs);
  const auto stats = supervise(1);
  const auto hung = db->get(jobs[0].id);
  EXPECT_EQ(hung->state, "dead");
  EXPECT_EQ(hung->error_type, "fastq.TimeLimitExceeded");
  EXPECT_NE(hung->error.find("timeout"), std::string::npos);
  EXPECT_EQ(stats.timeouts, 1u);
  EXPECT_EQ(stats.lost, 0u) << "jobs interrupted by another job's timeout spend no attempt";
  for (std::size_t i = 1; i < jobs.size(); ++i) {
    const auto rec = db->get(jobs[i].id);
    EXPECT_EQ(rec->state, "succeeded");
    EXPECT_EQ(rec->attempts, 1);
  }
}

TEST_P(SupervisorTest, RetiredChildrenAreReplacedUntilTheWorkIsDone) {
  std::vector<NewJob> jobs;
  for (int i = 0; i < 40; ++i) jobs.push_back(make("ok"));
  db->enqueue(jobs);
  const auto stats = supervise(2, 5);
  for (const auto& j : jobs) EXPECT_EQ(db->get(j.id)->state, "succeeded");
  EXPECT_GE(stats.started, 8u);
  EXPECT_EQ(stats.crashed, 0u);
}

TEST_P(SupervisorTest, SupervisorAndChildrenRegisterAndEndStopped) {
  std::vector<NewJob> jobs;
  for (int i = 0; i < 20; ++i) jobs.push_back(make("ok"));
  db->enqueue(jobs);
  registry = true;
  const auto stats = supervise(2);
  EXPECT_EQ(stats.crashed, 0u);
  const auto rows = db->workers();
  const std::string sup_id = "sup:" + std::to_string(getpid());
  int children = 0;
  std::int64_t processed = 0;
  bool saw_supervisor = false;
  for (const auto& w : rows) {
    EXPECT_EQ(w.state, "stopped") << w.row.id;
    EXPECT_TRUE(w.stopped_at) << w.row.id;
    EXPECT_EQ(w.row.host, "test-host");
    if (w.row.id == sup_id) {
      saw_supervisor = true;
      EXPECT_EQ(w.row.kind, "supervisor");
      EXPECT_EQ(w.row.processes, 2);
      EXPECT_EQ(w.row.pid, getpid());
      EXPECT_GT(w.row.rss_bytes, 0);
    } else {
      ++children;
      EXPECT_EQ(w.row.kind, "worker");
      EXPECT_EQ(w.row.supervisor, sup_id);
      EXPECT_EQ(w.row.concurrency, 2);
      EXPECT_EQ(w.row.queues, "[\"default\"]");
      EXPECT_EQ(w.row.tasks, "[\"crash\",\"hang\",\"ok\"]");
      processed += w.row.processed;
    }
  }
  EXPECT_TRUE(saw_supervisor);
  EXPECT_GE(children, 2);
  EXPECT_EQ(processed, 20) << "every job counted once, by the child that ran it";
}

INSTANTIATE_TEST_SUITE_P(Drivers, SupervisorTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace fastq
