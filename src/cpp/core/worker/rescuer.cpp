#include "rescuer.hpp"

#include "fastq/worker/rescuer.hpp"

namespace fastq::worker {

Rescuer::Rescuer(Context& ctx, boost::asio::io_context& done_io, Completer& completer,
                 LeaseKeeper& lease_keeper, std::function<void()> rescued)
    : ctx_(ctx),
      completer_(completer),
      lease_keeper_(lease_keeper),
      rescued_(std::move(rescued)),
      timer_(done_io),
      holder_((ctx.cfg.name.empty() ? std::string("worker") : ctx.cfg.name) + ":" +
              std::to_string(new_lease_token())) {}

// Completer thread (or run() before the completer starts). A rescue returns the jobs of
// workers presumed dead; it must never take a job whose outcome a live worker still
// holds. So: not within a lease of this worker's own last database error (an outage
// cut every worker off, and each needs up to a lease to come back, write its outcomes
// and renew its leases); and only after this worker has written its own outcomes and
// renewed its own leases in the same pass.
void Rescuer::rescue_now(bool at_start) {
  const bool leader = hold_lease();
  if (rescuer::rescue_step(leader, at_start, steady_us(), ctx_.last_db_error_us.load(),
                           ctx_.cfg.lease.count() * 1000) == rescuer::Step::kSkip) {
    return;
  }
  if (completer_.has_pending() && !completer_.flush()) return;
  if (!lease_keeper_.renew_now()) return;
  try {
    const auto n = completer_.db().rescue_expired();
    if (n) {
      ctx_.counters.rescued += n;
      ctx_.log(LogLevel::kWarning,
               "returned " + std::to_string(n) + " job(s) with expired leases to the queue");
      if (rescued_) rescued_();
    }
  } catch (const DriverError& e) {
    ctx_.note_db_error();
    ctx_.log(LogLevel::kWarning, std::string("rescue failed: ") + e.what());
  }
}

// Completer thread: takes or renews the rescuer's leader lease (rescuer.hpp). Only its
// holder rescues; when it dies the lease expires and the next live worker takes it.
bool Rescuer::hold_lease() {
  bool now_leader = false;
  try {
    now_leader = completer_.db().hold_lease(rescuer::kLeaseName, holder_, ctx_.cfg.lease);
  } catch (const DriverError& e) {
    ctx_.note_db_error();
    ctx_.log(LogLevel::kWarning, std::string("rescuer lease: ") + e.what());
  }
  if (now_leader != leader_) {
    ctx_.log(LogLevel::kDebug, "rescuer: " + holder_ +
                                   (now_leader ? " is now the leader" : " is no longer the leader"));
    leader_ = now_leader;
  }
  return now_leader;
}

void Rescuer::drop_lease() {
  if (!leader_) return;
  try {
    completer_.db().drop_lease(rescuer::kLeaseName, holder_);
  } catch (const DriverError& e) {
    ctx_.log(LogLevel::kWarning, std::string("rescuer lease: ") + e.what());
  }
  leader_ = false;
}

void Rescuer::start() { arm(ctx_.cfg.rescue_interval); }

void Rescuer::stop() { timer_.cancel(); }

void Rescuer::arm(std::chrono::milliseconds after) {
  timer_.expires_after(after);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    rescue_now();
    arm(ctx_.cfg.rescue_interval);
  });
}

}  // namespace fastq::worker
