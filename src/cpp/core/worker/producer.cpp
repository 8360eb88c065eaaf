#include "producer.hpp"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <algorithm>

#include "fastq/metrics.hpp"

namespace asio = boost::asio;

namespace fastq::worker {

using std::chrono::milliseconds;

Producer::Producer(Context& ctx, Driver& claim_db, asio::io_context& poll_io,
                   LeaseTable& leases, LocalQueue& queue, RateGate& rate_gate,
                   const Completer& completer, std::function<void()> stop)
    : ctx_(ctx),
      claim_db_(claim_db),
      poll_io_(poll_io),
      leases_(leases),
      queue_(queue),
      rate_gate_(rate_gate),
      completer_(completer),
      stop_(std::move(stop)),
      idle_timer_(poll_io),
      notify_retry_(poll_io),
      pause_timer_(poll_io) {
  capacity_ = ctx.cfg.capacity();
  low_water_ = std::max(1, capacity_ / 4);
  backoff_ = ctx.cfg.idle_poll_min;
}

void Producer::listen() {
  claim_db_.set_wakeup([this] { notified(); });
  watch_notifications();
}

void Producer::start() {
  asio::post(poll_io_, [this] { maybe_claim(); });
  arm_pause_check();
}

void Producer::stop_claiming() {
  idle_timer_.cancel();
  notify_retry_.cancel();
  if (notify_sd_) notify_sd_->cancel();
  pause_timer_.cancel();
}

void Producer::stop_listening() {
  claim_db_.set_wakeup(nullptr);
  notify_sd_.reset();
  claim_db_.stop_listening();
}

std::size_t Producer::quarantine(const ClaimRequest& request, const std::string& why) {
  try {
    return claim_db_.quarantine(request, why);
  } catch (const DriverError& e) {
    ctx_.log(LogLevel::kWarning, std::string("looking for the row that failed the claim: ") +
                                     e.what());
    return 0;
  }
}

void Producer::maybe_claim() {
  const auto& cfg = ctx_.cfg;
  auto& counters = ctx_.counters;
  if (ctx_.stopping) return;
  // A stop under way that this process's signal has not reached yet: no claim (the
  // signal follows at once and ends the run).
  if (cfg.tracker && cfg.tracker->stop_requested()) return;
  const auto taken = counters.claimed.load() - counters.deferred.load();
  const auto decision = producer::claim_decision(
      {capacity_, low_water_, held_.load(), cfg.claim_batch, cfg.max_jobs, taken});
  if (decision.kind == producer::ClaimDecision::kRetire) {
    // Retiring: what we held has run; stop (the supervisor starts a fresh child).
    ctx_.log(LogLevel::kInfo, "ran " + std::to_string(taken) +
                                  " job(s), the most a worker process may: retiring");
    stop_();
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
    jobs = claim_db_.claim(request);
  } catch (const DriverError& e) {
    ctx_.note_db_error();
    if (!e.transient()) {
      // Perhaps one row no claim can take (values outside the table's bounds): end
      // those rows with the reason and claim again, rather than stop every queue.
      if (const auto ended = quarantine(request, e.what())) {
        counters.rejected += ended;
        ctx_.log(LogLevel::kError, std::to_string(ended) +
                                       " queued row(s) that no claim could take are dead "
                                       "(fastq.InvalidJob); the claim had failed with: " +
                                       e.what());
        asio::post(poll_io_, [this] { maybe_claim(); });
        return;
      }
      fatal_ = std::current_exception();
      stop_();
      return;
    }
    ctx_.log(LogLevel::kWarning, std::string("claim failed, retrying: ") + e.what());
    const auto next = producer::after_claim_error(idle_backoff());
    idle_ = true;
    arm_idle(next.wait);
    backoff_ = next.next;
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
    leases_.hold(jobs, claim_sent);
    if (cfg.tracker) {
      for (const auto& j : jobs) cfg.tracker->claimed(j);
    }
  }
  if (cfg.tracker) cfg.tracker->claiming(0);
  if (got > 0) {
    held_ += got;
    if (!cfg.rate_limits.empty()) rate_gate_.apply(jobs);
    queue_.push(jobs);
  }
  const auto next = producer::after_claim(got, want, idle_backoff(), notify_sd_.has_value(),
                                          cfg.burst);
  idle_ = next.idle;
  backoff_ = next.next;
  if (next.claim_again) {
    asio::post(poll_io_, [this] { maybe_claim(); });
    return;
  }
  if (next.check_burst_end && held_.load() == 0 && completer_.unflushed() == 0 &&
      now_micros() >= rate_gate_.deferred_until()) {
    try {
      if (claim_db_.count_runnable(cfg.queues) == 0) {
        stop_();
        return;
      }
    } catch (const DriverError& e) {
      ctx_.note_db_error();
      ctx_.log(LogLevel::kWarning, std::string("count failed: ") + e.what());
    }
  }
  arm_idle(next.wait);
}

producer::Backoff Producer::idle_backoff() const {
  return producer::Backoff{backoff_, ctx_.cfg.idle_poll_min, ctx_.cfg.idle_poll_max};
}

void Producer::forget(std::vector<ClaimedJob>& jobs) {
  leases_.forget(jobs);
  if (ctx_.cfg.tracker) {
    for (const auto& j : jobs) ctx_.cfg.tracker->forgotten(j.id);
  }
  held_ -= static_cast<int>(jobs.size());
  jobs.clear();
}

void Producer::arm_idle(milliseconds after) {
  idle_timer_.expires_after(after);
  idle_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    idle_ = false;
    maybe_claim();
  });
}

void Producer::on_notified() {
  if (ctx_.stopping) return;
  idle_ = false;
  backoff_ = ctx_.cfg.idle_poll_min;
  idle_timer_.cancel();
  maybe_claim();
}

void Producer::notified() {
  asio::post(poll_io_, [this] { on_notified(); });
}

void Producer::wake_if_idle() {
  asio::post(poll_io_, [this] {
    if (idle_) on_notified();
  });
}

void Producer::poke() {
  if (ctx_.stopping || idle_) return;
  if (capacity_ - held_.load() < low_water_ && held_.load() > 0) return;
  if (!claim_posted_.exchange(true)) {
    asio::post(poll_io_, [this] {
      claim_posted_ = false;
      maybe_claim();
    });
  }
}

void Producer::watch_notifications() {
  if (ctx_.stopping) return;
  const int fd = claim_db_.notification_fd();
  if (fd < 0) {
    notify_sd_.reset();
    // Not available (memory/SQLite) or the listener is down: retry only for drivers
    // that can notify at all (PostgreSQL says so by having given us a socket before).
    if (had_notify_fd_) {
      notify_retry_.expires_after(std::chrono::seconds(1));
      notify_retry_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) watch_notifications();
      });
    }
    return;
  }
  had_notify_fd_ = true;
  if (!notify_sd_ || notify_fd_ != fd) {
    notify_sd_.emplace(poll_io_, ::dup(fd));
    notify_fd_ = fd;
  }
  notify_sd_->async_wait(asio::posix::stream_descriptor::wait_read,
                         [this](const boost::system::error_code& ec) {
                           if (ec == asio::error::operation_aborted || ctx_.stopping) return;
                           const bool any = claim_db_.drain_notifications();
                           if (claim_db_.queues_changed()) check_paused();
                           if (any || ec) on_notified();
                           watch_notifications();
                         });
}

// Poller thread. Reads which of our queues are paused and hands back the jobs of those
// that this worker holds and has not started (a pause stops new starts fleet-wide
// within a second; running jobs finish). Claims skip paused queues by themselves, so
// only a worker holding jobs (or knowing of a pause, to notice the resume) asks.
void Producer::check_paused() {
  if (ctx_.stopping) return;
  std::vector<std::string> now_paused;
  try {
    now_paused = claim_db_.paused_queues(ctx_.cfg.queues);
  } catch (const DriverError& e) {
    ctx_.note_db_error();
    ctx_.log(LogLevel::kWarning, std::string("could not read paused queues: ") + e.what());
    return;
  }
  std::vector<ClaimedJob> back, held_back;
  queue_.pause(now_paused, back, held_back);
  if (!now_paused.empty()) {
    rate_gate_.take_paused(now_paused, back);
    for (auto& j : held_back) back.push_back(std::move(j));
  }
  if (!back.empty()) {
    ctx_.log(LogLevel::kInfo, std::to_string(back.size()) +
                                  " held job(s) of paused queues handed back unstarted");
    release(back);
  }
}

// Poller thread: every 250 ms while this worker holds claimed jobs or knows of a pause
// (the polling half of pausing; PostgreSQL's NOTIFY 'queues' also calls check_paused).
void Producer::arm_pause_check() {
  pause_timer_.expires_after(milliseconds(250));
  pause_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || ctx_.stopping) return;
    if (held_.load() > 0 || queue_.any_paused()) check_paused();
    arm_pause_check();
  });
}

void Producer::release_paused_soon() {
  asio::post(poll_io_, [this] { release_paused(); });
}

void Producer::release_paused() {
  std::vector<ClaimedJob> jobs = queue_.take_paused();
  release(jobs);
}

void Producer::release_stale_soon() {
  asio::post(poll_io_, [this] { release_stale(); });
}

void Producer::release_stale() {
  std::vector<ClaimedJob> jobs = queue_.take_stale();
  if (jobs.empty()) return;
  ctx_.log(LogLevel::kWarning, std::to_string(jobs.size()) +
                                   " held job(s) not started: this worker was paused or cut "
                                   "off past their lease, so another worker may own them now");
  release(jobs);
}

void Producer::release(std::vector<ClaimedJob>& jobs) {
  if (jobs.empty()) return;
  std::vector<JobRef> refs;
  refs.reserve(jobs.size());
  for (const auto& j : jobs) refs.push_back(JobRef{j.id, j.lease_token});
  try {
    ctx_.counters.released += claim_db_.release(refs);
  } catch (const DriverError& e) {
    ctx_.note_db_error();
    ctx_.log(LogLevel::kWarning, std::string("could not release unstarted jobs (they return "
                                             "when their lease expires): ") +
                                     e.what());
  }
  forget(jobs);
  // Room freed: a claim may have been skipped while these were held (maybe_claim waits
  // for the executors to poke it), and no executor will, since none ran them.
  poke();
}

// Each counts as interrupted; the attempt is refunded only kMaxUnspentHandbacks times
// (Driver::interrupt).
void Producer::interrupt(std::vector<ClaimedJob>& jobs) {
  if (jobs.empty()) return;
  std::vector<JobRef> refs;
  refs.reserve(jobs.size());
  for (const auto& j : jobs) refs.push_back(JobRef{j.id, j.lease_token});
  try {
    ctx_.counters.released += claim_db_.interrupt(refs);
  } catch (const DriverError& e) {
    ctx_.note_db_error();
    ctx_.log(LogLevel::kWarning, std::string("could not hand back the jobs cut off (they "
                                             "return when their lease expires): ") +
                                     e.what());
  }
  forget(jobs);
}

}  // namespace fastq::worker
