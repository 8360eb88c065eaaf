#include "fastq/supervisor.hpp"

#include "fastq/metrics.hpp"
#include "fastq/metrics_server.hpp"
#include "fastq/notify.hpp"
#include "fastq/platform.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fastq/job_log.hpp"

namespace fastq {

namespace {

std::int64_t monotonic_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

// One job held by a child, in memory shared with the supervisor. The child writes; the
// supervisor reads `state` and `deadline_us` while the child lives and the rest only
// after it died, so plain fields suffice beside the two atomics.
struct Slot {
  enum : std::uint32_t { kFree = 0, kHeld = 1, kRunning = 2 };
  std::atomic<std::uint32_t> state{kFree};
  std::atomic<std::int64_t> deadline_us{0};  // CLOCK_MONOTONIC; 0: no hard limit
  std::int64_t lease_token = 0;
  std::int64_t started_at = 0;  // wall-clock microseconds, once kRunning
  std::int32_t attempts = 0;
  std::int32_t max_attempts = 0;
  double time_limit = 0;
  char id[40] = {};
  char task[kLogTaskBytes + 1] = {};  // for the log line when the job is settled here
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic<std::int64_t>::is_always_lock_free);

struct Table {
  Slot* slots = nullptr;  // processes * per_child
  // Per child: the lease token of a claim in flight (its jobs not all in slots yet).
  std::atomic<std::int64_t>* claims = nullptr;
  WorkerMetrics* metrics = nullptr;  // per child index: its worker's metrics (--metrics-port)
  // Set by the supervisor before it relays a stop to its children (JobTracker::stop_requested).
  std::atomic<std::uint32_t>* stop = nullptr;
  int processes = 0;
  int per_child = 0;
  std::size_t bytes = 0;
  Slot* child(int index) const { return slots + static_cast<std::ptrdiff_t>(index) * per_child; }
};

Table g_table;         // mapped by the supervisor before the first fork; inherited
int g_child = -1;      // this process's index once it is a supervised child
int g_metrics_fd = -1;  // the supervisor's metrics listening socket, closed in children

class SlotTracker final : public JobTracker {
 public:
  SlotTracker(Slot* slots, int n, std::atomic<std::int64_t>* claim,
              const std::atomic<std::uint32_t>* stop)
      : slots_(slots), claim_(claim), stop_(stop) {
    free_.reserve(static_cast<std::size_t>(n));
    for (int i = n - 1; i >= 0; --i) free_.push_back(i);
  }
  void claiming(std::int64_t lease_token) override {
    claim_->store(lease_token, std::memory_order_release);
  }
  void claimed(const ClaimedJob& job) override {
    std::lock_guard lock(mu_);
    if (free_.empty()) return;  // untracked: its lease covers it
    const int i = free_.back();
    free_.pop_back();
    Slot& s = slots_[i];
    std::memset(s.id, 0, sizeof s.id);
    std::memcpy(s.id, job.id.data(), std::min(job.id.size(), sizeof s.id - 1));
    std::memset(s.task, 0, sizeof s.task);
    std::memcpy(s.task, job.task.data(), std::min(job.task.size(), sizeof s.task - 1));
    s.lease_token = job.lease_token;
    s.attempts = job.attempts;
    s.max_attempts = job.max_attempts;
    s.time_limit = job.time_limit;
    s.deadline_us.store(0, std::memory_order_relaxed);
    s.state.store(Slot::kHeld, std::memory_order_release);
    index_[job.id] = i;
  }
  void started(const ClaimedJob& job, int) override {
    std::lock_guard lock(mu_);
    auto it = index_.find(job.id);
    if (it == index_.end()) return;
    Slot& s = slots_[it->second];
    s.started_at = now_micros();
    s.deadline_us.store(
        job.time_limit > 0 ? monotonic_us() + static_cast<std::int64_t>(job.time_limit * 1e6)
                           : 0,
        std::memory_order_relaxed);
    s.state.store(Slot::kRunning, std::memory_order_release);
  }
  void forgotten(const std::string& id) override {
    std::lock_guard lock(mu_);
    auto it = index_.find(id);
    if (it == index_.end()) return;
    slots_[it->second].state.store(Slot::kFree, std::memory_order_release);
    free_.push_back(it->second);
    index_.erase(it);
  }
  bool stop_requested() const override {
    return stop_->load(std::memory_order_acquire) != 0;
  }

 private:
  std::mutex mu_;
  Slot* slots_;
  std::atomic<std::int64_t>* claim_;
  const std::atomic<std::uint32_t>* stop_;
  std::vector<int> free_;
  std::unordered_map<std::string, int> index_;
};

SlotTracker* g_tracker = nullptr;
std::string g_registry_id;  // this supervisor's worker-registry row, inherited by children

const char* signal_name(int sig) {
  switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    default: return nullptr;
  }
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = signal_name(sig);
    return std::string("was killed by ") + (name ? name : "signal " + std::to_string(sig));
  }
  return "stopped (status " + std::to_string(status) + ")";
}

}  // namespace

struct Supervisor::Impl {
  struct Child {
    pid_t pid = 0;
    std::int64_t started_us = 0;
    std::int64_t respawn_at_us = 0;
    bool done = false;        // burst child that finished: not replaced
    bool asked_to_stop = false;
    int timed_out_slot = -1;  // the slot whose job we killed this child for
  };

  std::unique_ptr<Driver> db;
  SupervisorConfig cfg;
  std::function<pid_t(int)> spawn;
  std::vector<Child> children;
  SupervisorStats stats;
  bool stopping = false;
  std::int64_t stop_began_us = 0;
  std::int64_t next_memory_check_us = 0;

  void log(LogLevel level, const std::string& msg) {
    if (cfg.log) cfg.log(level, msg);
  }

  void start_child(int i) {
    Child& c = children[static_cast<std::size_t>(i)];
    for (int s = 0; s < cfg.slots_per_child; ++s) {
      g_table.child(i)[s].state.store(Slot::kFree, std::memory_order_relaxed);
    }
    g_table.claims[i].store(0, std::memory_order_relaxed);
    wait_beat();  // no heartbeat thread inside libpq while we fork
    const pid_t pid = spawn(i);
    if (pid <= 0) {
      log(LogLevel::kError, "could not start worker process " + std::to_string(i) +
                                ": " + std::strerror(errno) + "; retrying in 1 s");
      c.respawn_at_us = monotonic_us() + 1'000'000;
      return;
    }
    c = Child{};
    c.pid = pid;
    c.started_us = monotonic_us();
    stats.started++;
  }

  // A child is gone: settle every job its slots still hold.
  void settle(int i, int status) {
    Child& c = children[static_cast<std::size_t>(i)];
    const bool clean = WIFEXITED(status) &&
                       (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == kRetiredExit);
    const bool timeout = c.timed_out_slot >= 0;
    std::vector<JobRef> release;
    std::vector<JobRef> interrupted;
    std::vector<Completion> outcomes;
    Slot* slots = g_table.child(i);
    for (int s = 0; s < cfg.slots_per_child; ++s) {
      Slot& slot = slots[s];
      const auto st = slot.state.load(std::memory_order_acquire);
      if (st == Slot::kFree) continue;
      const std::string id(slot.id);
      if (st == Slot::kHeld) {
        // Not started: no attempt spent.
        release.push_back(JobRef{id, slot.lease_token});
      } else if ((timeout && s != c.timed_out_slot) || clean) {
        // Started, and cut off through no fault of its own: counted as interrupted, the
        // attempt refunded up to kMaxUnspentHandbacks times (Driver::interrupt).
        interrupted.push_back(JobRef{id, slot.lease_token});
      } else {
        Completion out;
        out.id = id;
        out.lease_token = slot.lease_token;
        out.started_at = slot.started_at;
        const bool last = is_last_attempt(slot.attempts, slot.max_attempts);
        out.outcome = last ? Outcome::kDead : Outcome::kRetry;
        out.retry_at = now_micros();
        if (timeout) {
          out.error_type = kTimeLimitType;
          out.error = "timeout: ran longer than its time_limit of " +
                      std::to_string(slot.time_limit).substr(0, 8) +
                      " s; the worker process running it was killed (attempt " +
                      std::to_string(slot.attempts) + " of " +
                      std::to_string(slot.max_attempts) + ")";
          stats.timeouts++;
        } else {
          out.error_type = kWorkerLostType;
          out.error = "worker_lost: the worker process running it " + describe_status(status) +
                      " (attempt " + std::to_string(slot.attempts) + " of " +
                      std::to_string(slot.max_attempts) + ")";
          stats.lost++;
        }
        const JobLogSubject subject{id, slot.task, slot.attempts, slot.max_attempts};
        if (auto line = outcome_line(subject, out, false, now_micros())) {
          log(line->level, line->text);
        }
        outcomes.push_back(std::move(out));
      }
      slot.state.store(Slot::kFree, std::memory_order_relaxed);
    }
    // A claim in flight when the child died: its jobs that never reached a slot.
    const std::int64_t claim = g_table.claims[i].exchange(0);
    try {
      if (!release.empty()) stats.released += db->release(release);
      if (!interrupted.empty()) stats.released += db->interrupt(interrupted);
      if (!outcomes.empty()) db->complete(outcomes);
      if (claim != 0) stats.released += db->release_claim(claim);
    } catch (const DriverError& e) {
      log(LogLevel::kWarning, std::string("could not settle the jobs of a dead worker process "
                                          "(they return when their leases expire): ") +
                                  e.what());
    }
  }

  void reap() {
    while (true) {
      int status = 0;
      const pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      for (std::size_t i = 0; i < children.size(); ++i) {
        Child& c = children[i];
        if (c.pid != pid) continue;
        const bool retired = WIFEXITED(status) && WEXITSTATUS(status) == kRetiredExit;
        const bool clean = (WIFEXITED(status) && WEXITSTATUS(status) == 0) || retired;
        if (!clean && !(stopping && c.asked_to_stop)) {
          stats.crashed++;
          log(LogLevel::kWarning, "worker process " + std::to_string(pid) + " " +
                                      describe_status(status) +
                                      (stopping ? "" : "; starting a new one"));
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 78) {
          // EX_CONFIG: the child found the setup unusable (no table, bad credentials).
          log(LogLevel::kError, "a worker process could not run with this configuration; "
                                "stopping");
          stats.exit_code = 1;
          begin_stop(SIGTERM);
        }
        settle(static_cast<int>(i), status);
        c.pid = 0;
        c.done = stopping || (clean && !retired && cfg.burst);
        // A child that dies young is restarted after a pause, not in a tight loop.
        const bool young = monotonic_us() - c.started_us < 1'000'000;
        c.respawn_at_us = monotonic_us() + (young && !clean ? 1'000'000 : 0);
        c.asked_to_stop = false;
      }
    }
  }

  // First SIGINT/SIGTERM: children stop gracefully (SIGTERM). A later SIGINT: they stop
  // now (SIGUSR1), returning their running jobs to the queue. A later SIGTERM stays
  // graceful.
  void begin_stop(int received) {
    const int sig = stopping && received == SIGINT ? SIGUSR1 : SIGTERM;
    if (!stopping) {
      stopping = true;
      stop_began_us = monotonic_us();
      // Before the signals: a child that has not taken its own yet neither claims nor
      // starts a job from here on, so the jobs a sibling hands back stay in the queue.
      g_table.stop->store(1, std::memory_order_release);
    }
    for (auto& c : children) {
      if (c.pid > 0) {
        c.asked_to_stop = true;
        ::kill(c.pid, sig);
      }
    }
  }

  void check_deadlines() {
    const auto now = monotonic_us();
    for (std::size_t i = 0; i < children.size(); ++i) {
      Child& c = children[i];
      if (c.pid <= 0 || c.timed_out_slot >= 0) continue;
      Slot* slots = g_table.child(static_cast<int>(i));
      for (int s = 0; s < cfg.slots_per_child; ++s) {
        if (slots[s].state.load(std::memory_order_acquire) != Slot::kRunning) continue;
        const auto deadline = slots[s].deadline_us.load(std::memory_order_relaxed);
        if (deadline > 0 && now > deadline) {
          log(LogLevel::kWarning, std::string("job ") + slots[s].id +
                                      " ran past its time_limit: killing worker process " +
                                      std::to_string(c.pid));
          c.timed_out_slot = s;
          ::kill(c.pid, SIGKILL);
          break;
        }
      }
    }
  }

  void check_memory() {
    if (cfg.max_memory_kb == 0 || stopping) return;
    const auto now = monotonic_us();
    if (now < next_memory_check_us) return;
    next_memory_check_us = now + 1'000'000;
    for (auto& c : children) {
      if (c.pid <= 0 || c.asked_to_stop) continue;
      const auto kb = platform::resident_kb(c.pid);
      if (kb > cfg.max_memory_kb) {
        log(LogLevel::kInfo, "worker process " + std::to_string(c.pid) + " uses " +
                                 std::to_string(kb / 1024) + " MB, above --max-memory-per-child:"
                                 " recycling it after its running jobs");
        c.asked_to_stop = true;
        stats.recycled++;
        ::kill(c.pid, SIGTERM);
      }
    }
  }

  SystemdNotifier notifier;
  std::int64_t next_beat_us = 0;
  std::int64_t next_watchdog_us = 0;

  // The registry row is written on a thread of its own, on a connection of its own, so
  // that a database that hangs (a partition, a slow reconnect) never holds up the loop
  // that reaps children and enforces time limits. At most one beat is in flight; forks
  // wait for it (wait_beat), so no thread is inside libpq when a child is made.
  std::unique_ptr<Driver> beat_db;
  std::thread beat_thread;
  std::atomic<bool> beat_done{true};

  WorkerRow registry_row() const {
    WorkerRow row = *cfg.registry;
    row.kind = "supervisor";
    row.pid = ::getpid();
    row.processes = cfg.processes;
    row.rss_bytes = static_cast<std::int64_t>(platform::resident_kb(::getpid()) * 1024);
    row.processed = 0;  // its children count the jobs
    row.failed = static_cast<std::int64_t>(stats.lost + stats.timeouts);
    return row;
  }

  void write_row(const WorkerRow& row, bool stopped) {
    try {
      if (!beat_db) beat_db = db->connect_another();
      if (stopped) {
        beat_db->stop_worker(row);
      } else {
        beat_db->beat_worker(row);
      }
    } catch (const DriverError& e) {
      log(LogLevel::kWarning, std::string("worker registry: ") + e.what());
    }
  }

  void wait_beat() {
    if (beat_thread.joinable()) beat_thread.join();
  }
  ~Impl() { wait_beat(); }

  void beat(bool stopped) {
    if (!cfg.registry) return;
    if (stopped) {
      wait_beat();
      write_row(registry_row(), true);
      return;
    }
    if (!beat_done.load()) return;  // the last one is still on its way
    wait_beat();
    beat_done = false;
    beat_thread = std::thread([this, row = registry_row()] {
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals are the loop's business
      write_row(row, false);
      beat_done = true;
    });
  }

  // Every tick: the registry heartbeat and the systemd watchdog, when due.
  void keep_alive() {
    const auto now = monotonic_us();
    if (cfg.registry && now >= next_beat_us) {
      next_beat_us = now + std::max<std::int64_t>(cfg.registry->lease_ms * 1000 / 3, 100'000);
      beat(false);
    }
    const auto every = notifier.watchdog_interval().count();
    if (every > 0 && now >= next_watchdog_us) {
      next_watchdog_us = now + every;
      notifier.send("WATCHDOG=1");
    }
  }

  std::unique_ptr<MetricsServer> metrics_server;

  std::string render() const {
    std::vector<const WorkerMetrics*> all;
    SupervisorGauges g;
    for (int i = 0; i < g_table.processes; ++i) all.push_back(&g_table.metrics[i]);
    for (const auto& c : children) g.processes += c.pid > 0 ? 1 : 0;
    g.started = stats.started;
    g.crashed = stats.crashed;
    g.timeouts = stats.timeouts;
    g.recycled = stats.recycled;
    return render_metrics(all, g);
  }

  SupervisorStats run() {
    if (cfg.notify_systemd) notifier = SystemdNotifier::from_environment();
    if (cfg.metrics_port >= 0) {
      metrics_server = std::make_unique<MetricsServer>(cfg.metrics_address, cfg.metrics_port,
                                                       [this] { return render(); });
      g_metrics_fd = metrics_server->native_handle();
      log(LogLevel::kInfo, "serving worker metrics on http://" + cfg.metrics_address + ":" +
                               std::to_string(metrics_server->port()) + "/metrics");
    }
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &mask, &old);

    for (int i = 0; i < cfg.processes; ++i) start_child(i);
    keep_alive();
    notifier.send("READY=1\nSTATUS=" + std::to_string(cfg.processes) +
                  " worker process(es) running\nMAINPID=" + std::to_string(::getpid()));
    const timespec tick{0, static_cast<long>(cfg.tick.count()) * 1'000'000};
    while (true) {
      siginfo_t info{};
      const int sig = sigtimedwait(&mask, &info, &tick);
      if (sig == SIGINT || sig == SIGTERM) {
        const bool again = stopping;
        log(LogLevel::kInfo,
            std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                (again ? " again: passing it on to the worker processes"
                       : ": stopping the worker processes gracefully"));
        if (!stopping) notifier.send("STOPPING=1\nSTATUS=stopping");
        begin_stop(sig);
      }
      keep_alive();
      if (metrics_server) metrics_server->poll();
      reap();
      check_deadlines();
      check_memory();
      const auto now = monotonic_us();
      bool alive = false;
      for (std::size_t i = 0; i < children.size(); ++i) {
        Child& c = children[i];
        if (c.pid > 0) {
          alive = true;
        } else if (!stopping && !c.done && now >= c.respawn_at_us) {
          start_child(static_cast<int>(i));
          alive = alive || c.pid > 0;
        } else if (!stopping && !c.done) {
          alive = true;  // waiting to be restarted
        }
      }
      if (!alive) break;
      if (stopping && now - stop_began_us > cfg.grace.count() * 1000 + 10'000'000) {
        for (auto& c : children) {
          if (c.pid > 0) {
            log(LogLevel::kWarning, "worker process " + std::to_string(c.pid) +
                                        " did not stop in time: killing it");
            ::kill(c.pid, SIGKILL);
          }
        }
        stop_began_us = now;  // and wait for them to be reaped
      }
    }
    // Signals that arrived while the children were finishing were handled by forwarding;
    // left pending they would hit the interpreter (a KeyboardInterrupt at exit).
    const timespec zero{0, 0};
    siginfo_t info{};
    while (sigtimedwait(&mask, &info, &zero) > 0) {
    }
    beat(true);
    beat_db.reset();
    metrics_server.reset();
    g_metrics_fd = -1;
    if (cfg.restore_signals) pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return stats;
  }
};

Supervisor::Supervisor(std::unique_ptr<Driver> driver, SupervisorConfig config,
                       std::function<pid_t(int)> spawn)
    : impl_(std::make_unique<Impl>()) {
  if (config.processes < 1) throw std::invalid_argument("processes must be at least 1");
  if (config.slots_per_child < 1) throw std::invalid_argument("slots_per_child must be >= 1");
  if (g_table.slots) throw std::logic_error("one supervisor per process");
  impl_->db = std::move(driver);
  impl_->cfg = std::move(config);
  impl_->spawn = std::move(spawn);
  g_registry_id = impl_->cfg.registry ? impl_->cfg.registry->id : std::string();
  impl_->children.resize(static_cast<std::size_t>(impl_->cfg.processes));
  g_table.processes = impl_->cfg.processes;
  g_table.per_child = impl_->cfg.slots_per_child;
  const std::size_t slot_bytes = sizeof(Slot) * static_cast<std::size_t>(g_table.processes) *
                                 static_cast<std::size_t>(g_table.per_child);
  const std::size_t claims_bytes =
      sizeof(std::atomic<std::int64_t>) * static_cast<std::size_t>(g_table.processes);
  // The stop word after the claims (8-byte aligned like them), then WorkerMetrics,
  // aligned for its atomics.
  const std::size_t stop_offset = slot_bytes + claims_bytes;
  const std::size_t metrics_offset =
      (stop_offset + sizeof(std::int64_t) + alignof(WorkerMetrics) - 1) /
      alignof(WorkerMetrics) * alignof(WorkerMetrics);
  g_table.bytes =
      metrics_offset + sizeof(WorkerMetrics) * static_cast<std::size_t>(g_table.processes);
  void* mem = mmap(nullptr, g_table.bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
  if (mem == MAP_FAILED) throw std::runtime_error("mmap of the supervisor's job table failed");
  g_table.slots = static_cast<Slot*>(mem);
  g_table.claims = reinterpret_cast<std::atomic<std::int64_t>*>(static_cast<char*>(mem) +
                                                                 slot_bytes);
  for (int i = 0; i < g_table.processes; ++i) new (&g_table.claims[i]) std::atomic<std::int64_t>(0);
  g_table.stop = new (static_cast<char*>(mem) + stop_offset) std::atomic<std::uint32_t>(0);
  g_table.metrics =
      reinterpret_cast<WorkerMetrics*>(static_cast<char*>(mem) + metrics_offset);
  for (int i = 0; i < g_table.processes; ++i) new (&g_table.metrics[i]) WorkerMetrics();
  for (std::size_t i = 0; i < static_cast<std::size_t>(g_table.processes * g_table.per_child);
       ++i) {
    new (&g_table.slots[i]) Slot();
  }
}

Supervisor::~Supervisor() {
  if (g_child < 0 && g_table.slots) {
    munmap(g_table.slots, g_table.bytes);
    g_table = Table{};
  }
}

SupervisorStats Supervisor::run() { return impl_->run(); }

void Supervisor::enter_child(int index) {
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
  // Children share the supervisor's process group, so a signal to the group (a job
  // control SIGSTOP, a kill of the group) reaches every process. A terminal's Ctrl-C
  // does too: children ignore SIGINT and take their orders from the supervisor.
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_DFL);
  signal(SIGCHLD, SIG_DFL);
  const pid_t parent = getppid();
  platform::die_with_parent(SIGKILL);
  if (getppid() != parent) _exit(0);  // the supervisor died while we were starting
  g_child = index;
  if (g_metrics_fd >= 0) {
    ::close(g_metrics_fd);  // the port belongs to the supervisor
    g_metrics_fd = -1;
  }
  if (g_table.slots && index >= 0 && index < g_table.processes) {
    g_tracker = new SlotTracker(g_table.child(index), g_table.per_child,
                                &g_table.claims[index], g_table.stop);  // lives until exit
  }
}

JobTracker* Supervisor::child_tracker() { return g_tracker; }

std::string Supervisor::child_supervisor_id() { return g_child >= 0 ? g_registry_id : ""; }

WorkerMetrics* Supervisor::child_metrics() {
  if (g_child < 0 || !g_table.metrics || g_child >= g_table.processes) return nullptr;
  return &g_table.metrics[g_child];
}

}  // namespace fastq
