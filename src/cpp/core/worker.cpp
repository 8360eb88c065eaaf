#include "fastq/worker.hpp"

#include <signal.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <optional>
#include <stdexcept>
#include <thread>

#include "fastq/worker/lease_table.hpp"
#include "fastq/worker/local_queue.hpp"
#include "fastq/worker/rescuer.hpp"
#include "worker/completer.hpp"
#include "worker/context.hpp"
#include "worker/executor_pool.hpp"
#include "worker/lease_keeper.hpp"
#include "worker/producer.hpp"
#include "worker/rate_gate.hpp"
#include "worker/rescuer.hpp"

// The worker's services, each in its own file under worker/ with the thread that owns it
// named in its header: the producer and the rate gate (poller thread), the executor pool
// (executor threads), the completer, the lease keeper and the rescuer (completer thread).
// The state several threads share is a class of its own with its lock inside: the lease
// table and the local queue (fastq/worker/), the counters (worker/context.hpp). What is
// left here is the wiring, run()'s start and stop sequence, signals and shutdown.

namespace asio = boost::asio;

namespace fastq {

namespace {
using std::chrono::milliseconds;

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
      : ctx(checked(std::move(c))), runner(r), claim_db(std::move(d)) {}

  worker::Context ctx;
  TaskRunner& runner;
  std::unique_ptr<Driver> claim_db;  // poller thread only

  // Poller (runs on the thread that called run()).
  asio::io_context poll_io;
  asio::signal_set signals{poll_io};
  asio::steady_timer grace_timer{poll_io};
  bool hard = false;  // poller thread; read by run() after the poller stopped

  // Completer.
  asio::io_context done_io;
  std::thread completer_thread;

  // Shared by the threads, each with its lock inside.
  LeaseTable leases;
  LocalQueue queue;

  // The services, in the order they depend on one another.
  worker::Completer completer{ctx, done_io, leases, [this] { producer.wake_if_idle(); }};
  worker::LeaseKeeper lease_keeper{ctx, done_io, completer, leases};
  worker::RateGate rate_gate{ctx, *claim_db, poll_io, queue,
                             [this](std::vector<ClaimedJob>& jobs) { producer.forget(jobs); }};
  worker::Producer producer{ctx,       *claim_db, poll_io, leases, queue,
                            rate_gate, completer, [this] { shutdown(); }};
  worker::Rescuer rescuer{ctx, done_io, completer, lease_keeper, [this] { producer.notified(); }};
  worker::ExecutorPool executors{ctx,       runner,   queue,
                                 leases,    completer, producer,
                                 [this] { post_stop_if_idle(); }};

  void wait_signals() {
    signals.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (signo == SIGUSR1) {  // from the supervisor: a second Ctrl-C reached it
        ctx.log(LogLevel::kInfo, "told to stop now: returning running jobs to the queue");
        hard_stop();
        wait_signals();
        return;
      }
      const bool again = ctx.stopping;
      ctx.log(LogLevel::kInfo,
              std::string("received ") + (signo == SIGTERM ? "SIGTERM" : "SIGINT") +
                  (!again ? ", stopping gracefully (running jobs get " +
                                std::to_string(ctx.cfg.grace.count() / 1000.0).substr(0, 5) +
                                " s)"
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

  // Poller thread. Stops claiming, hands unstarted jobs back, lets the executors drain.
  void shutdown() {
    if (ctx.stopping.exchange(true)) return;
    lease_keeper.tell_systemd("STOPPING=1\nSTATUS=stopping");
    producer.stop_claiming();
    std::vector<ClaimedJob> unstarted = queue.close();
    rate_gate.stop(unstarted);
    producer.release(unstarted);
    if (executors.drained()) {
      poll_io.stop();
      return;
    }
    grace_timer.expires_after(ctx.cfg.grace);
    grace_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      ctx.log(LogLevel::kWarning, "jobs still running after the grace period: returning them "
                                  "to the queue and stopping now");
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

  // Executor threads, when the last one leaves, and async jobs, when the last one ends
  // while stopping: the poller ends a graceful stop once nothing runs.
  void post_stop_if_idle() {
    asio::post(poll_io, [this] {
      if (executors.drained()) {
        grace_timer.cancel();
        poll_io.stop();
      }
    });
  }

  WorkerStats run() {
    const auto& cfg = ctx.cfg;
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
    // Claims need not wait for the WAL flush: a claim a server crash undoes only runs the
    // job again, and the outcome's durable commit flushes the claim before it.
    claim_db->commit_claims_async();
    producer.listen();

    auto guard = asio::make_work_guard(done_io);
    completer_thread = std::thread([this] { done_io.run(); });
    rescuer.rescue_now(true);  // before the first claim, so a burst run sees rescued jobs
    lease_keeper.enable_systemd();
    asio::post(done_io, [this] {
      lease_keeper.start();
      rescuer.start();
    });
    executors.start();

    producer.start();
    auto poll_guard = asio::make_work_guard(poll_io);  // idle is not "done": shutdown() is
    poll_io.run();

    executors.finish(hard);
    std::vector<ClaimedJob> never_started = queue.take_leftovers();
    producer.release(never_started);
    producer.stop_listening();
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
      producer.release(unstarted);
      producer.interrupt(running);
      ctx.counters.hard_stopped = true;
    }
    signals.cancel();
    if (auto fatal = producer.fatal()) std::rethrow_exception(fatal);
    return ctx.counters.snapshot();
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
