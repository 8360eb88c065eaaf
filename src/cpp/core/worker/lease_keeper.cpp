#include "lease_keeper.hpp"

#include <unistd.h>

#include <algorithm>

#include "fastq/json.hpp"
#include "fastq/platform.hpp"
#include "fastq/worker/lease_keeper.hpp"

namespace fastq::worker {

LeaseKeeper::LeaseKeeper(Context& ctx, boost::asio::io_context& done_io, Completer& completer,
                         LeaseTable& leases)
    : ctx_(ctx),
      completer_(completer),
      leases_(leases),
      renew_timer_(done_io),
      watchdog_timer_(done_io) {}

void LeaseKeeper::enable_systemd() {
  if (ctx_.cfg.notify_systemd) systemd_ = SystemdNotifier::from_environment();
}

void LeaseKeeper::start() {
  beat(false);
  systemd_.send("READY=1\nSTATUS=running\nMAINPID=" + std::to_string(::getpid()));
  arm_watchdog();
  arm_renew();
}

void LeaseKeeper::stop() {
  renew_timer_.cancel();
  watchdog_timer_.cancel();
}

// Completer thread: extends the lease of every job this worker holds (outcomes not yet
// written included). True if the renewal was written.
bool LeaseKeeper::renew_now() {
  std::vector<JobRef> refs = leases_.refs();
  if (refs.empty()) return true;
  try {
    std::vector<std::string> cancelled;
    std::vector<std::string> renewed;
    const auto sent = steady_us();
    completer_.db().renew(refs, ctx_.cfg.lease, &cancelled, &renewed);
    leases_.renewed(renewed, cancelled, sent);
    return true;
  } catch (const DriverError& e) {
    ctx_.note_db_error();
    ctx_.log(LogLevel::kWarning, std::string("lease renewal failed: ") + e.what());
    return false;
  }
}

void LeaseKeeper::arm_renew() {
  renew_timer_.expires_after(lease_keeper::renew_interval(ctx_.cfg.lease));
  renew_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    renew_now();
    beat(false);
    arm_renew();
  });
}

// Completer thread: tells systemd the worker is alive (WatchdogSec=), from the thread
// that also writes outcomes and renews leases, so a stuck completer stops the pings.
void LeaseKeeper::arm_watchdog() {
  const auto every = systemd_.watchdog_interval();
  if (every.count() <= 0) return;
  watchdog_timer_.expires_after(every);
  watchdog_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    systemd_.send("WATCHDOG=1");
    arm_watchdog();
  });
}

// Completer thread: the registry row with this moment's counters and RSS, written as a
// heartbeat (or, at the end, as stopped). A failure is logged and skipped: the next
// renewal tick writes it again, and being shown as lost meanwhile is the truth.
void LeaseKeeper::beat(bool stopped) {
  const auto& cfg = ctx_.cfg;
  if (!cfg.registry) return;
  WorkerRow row = *cfg.registry;
  row.kind = row.kind.empty() ? "worker" : row.kind;
  row.pid = ::getpid();
  row.queues = json_string_array(cfg.queues);
  std::vector<std::string> names(cfg.registered.begin(), cfg.registered.end());
  std::sort(names.begin(), names.end());
  row.tasks = json_string_array(names);
  row.concurrency = cfg.concurrency;
  row.lease_ms = cfg.lease.count();
  const auto c = ctx_.counters.snapshot();
  row.processed = static_cast<std::int64_t>(c.succeeded + c.failed + c.retried + c.rejected +
                                            c.skipped);
  row.failed = static_cast<std::int64_t>(c.failed + c.rejected);
  row.rss_bytes = static_cast<std::int64_t>(platform::resident_kb(::getpid()) * 1024);
  try {
    if (stopped) {
      completer_.db().stop_worker(row);
    } else {
      completer_.db().beat_worker(row);
    }
  } catch (const DriverError& e) {
    ctx_.note_db_error();
    ctx_.log(LogLevel::kWarning, std::string("worker registry: ") + e.what());
  }
}

}  // namespace fastq::worker
