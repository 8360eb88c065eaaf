#include "completer.hpp"

#include <boost/asio/post.hpp>
#include <algorithm>
#include <iterator>
#include <thread>

#include "fastq/outcome.hpp"

namespace asio = boost::asio;

namespace fastq::worker {

Completer::Completer(Context& ctx, asio::io_context& done_io, LeaseTable& leases,
                     std::function<void()> flushed)
    : ctx_(ctx), done_io_(done_io), leases_(leases), flushed_(std::move(flushed)) {}

// Executor thread, just before a job runs: the claim left started_at NULL, and a rescue
// hands a lease that never started back unspent. The completer writes the start with
// its next flush (one statement for all the starts of that flush), or not at all when
// the job's outcome goes in the same flush (the completion carries the start).
Micros Completer::note_started(const ClaimedJob& job) {
  const Micros now = now_micros();
  leases_.started(job);
  bool post_arm = false;
  {
    std::lock_guard lock(out_mu_);
    marks_.push_back(StartMark{job.id, job.lease_token, now});
    if (!flush_armed_ && !flush_posted_) flush_armed_ = post_arm = true;
  }
  if (post_arm) arm_flush();
  return now;
}

void Completer::arm_flush() {
  asio::post(done_io_, [this] {
    flush_timer_.expires_after(ctx_.cfg.flush_interval);
    flush_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) flush();
    });
  });
}

void Completer::add_outcomes(std::vector<Completion>& outs) {
  auto& counters = ctx_.counters;
  for (auto& c : outs) {
    if (sanitize_outcome(c, ctx_.outcome_limits)) counters.sanitized++;
    switch (c.outcome) {
      case Outcome::kSucceeded: counters.succeeded++; break;
      case Outcome::kFailed:
      case Outcome::kDead: counters.failed++; break;
      case Outcome::kRetry: counters.retried++; break;
      case Outcome::kExpired:
      case Outcome::kCancelled: counters.skipped++; break;
    }
  }
  bool post_flush = false, post_arm = false;
  {
    std::lock_guard lock(out_mu_);
    unflushed_ += outs.size();
    for (auto& c : outs) pending_.push_back(std::move(c));
    switch (completer::flush_action(pending_.size(), ctx_.cfg.flush_batch, flush_armed_,
                                    flush_posted_)) {
      case completer::FlushAction::kFlushNow: flush_posted_ = post_flush = true; break;
      case completer::FlushAction::kArm: flush_armed_ = post_arm = true; break;
      case completer::FlushAction::kNone: break;
    }
  }
  outs.clear();
  if (post_flush) {
    asio::post(done_io_, [this] { flush(); });
  } else if (post_arm) {
    arm_flush();
  }
}

bool Completer::has_pending() {
  std::lock_guard lock(out_mu_);
  return !pending_.empty() || !marks_.empty();
}

// Completer thread: writes the start marks of this flush that no outcome carries (one
// statement). Returns the transient error that kept them for the next flush, or "".
std::string Completer::write_marks(std::vector<StartMark>& starts,
                                   std::vector<Completion>& batch) {
  starts = marks_to_write(std::move(starts), batch);
  if (starts.empty()) return {};
  try {
    db_->mark_started(starts);  // fenced: a lease that moved on is left alone
    starts.clear();
    return {};
  } catch (const DriverError& e) {
    if (e.transient()) return e.what();
    ctx_.log(LogLevel::kError, std::string("could not record that ") +
                                   std::to_string(starts.size()) + " job(s) started: " + e.what());
    starts.clear();
    return {};
  }
}

// Completer thread. Returns false if a transient error kept some outcomes for a retry.
// One outcome the store refuses costs only its own job (write_outcomes narrows it down).
bool Completer::flush() {
  auto& cfg = ctx_.cfg;
  auto& counters = ctx_.counters;
  std::vector<Completion> batch;
  std::vector<StartMark> starts;
  {
    std::lock_guard lock(out_mu_);
    batch.swap(pending_);
    starts.swap(marks_);
    flush_posted_ = false;
    flush_armed_ = false;
  }
  if (batch.empty() && starts.empty()) return true;
  const std::string marks_error = write_marks(starts, batch);
  if (!marks_error.empty()) {
    ctx_.note_db_error();
    ctx_.log(LogLevel::kWarning, "recording job starts failed, keeping " +
                                     std::to_string(starts.size()) +
                                     " and retrying: " + marks_error);
    std::lock_guard lock(out_mu_);
    starts.insert(starts.end(), std::make_move_iterator(marks_.begin()),
                  std::make_move_iterator(marks_.end()));
    marks_.swap(starts);
  }
  if (batch.empty()) {
    if (marks_error.empty()) return true;
    arm_retry();
    return false;
  }
  const auto flush_began = steady_us();
  const WriteReport rep = write_outcomes(*db_, batch);
  if (auto* m = cfg.metrics) {
    const auto took = std::max<std::int64_t>(0, steady_us() - flush_began);
    m->flushes.fetch_add(1, std::memory_order_relaxed);
    m->outcomes.fetch_add(rep.written, std::memory_order_relaxed);
    m->flush_us.observe(static_cast<std::uint64_t>(took), kTimeBoundsUs);
  }
  counters.flushes++;
  counters.completed_written += rep.written;
  counters.isolated += rep.isolated;
  for (const auto& problem : rep.problems) ctx_.log(LogLevel::kError, problem);
  const std::size_t fenced = rep.settled - rep.written - rep.dropped;
  if (fenced > 0) {
    counters.fenced += fenced;
    ctx_.log(LogLevel::kWarning, std::to_string(fenced) +
                                     " outcome(s) refused: their lease had moved to another "
                                     "worker (this worker was presumed dead)");
  }
  // Forget the settled ones; keep the rest (a transient error) and retry with back-off.
  std::vector<Completion> kept(std::make_move_iterator(batch.begin() + rep.settled),
                               std::make_move_iterator(batch.end()));
  batch.resize(rep.settled);
  leases_.settle(batch);
  if (cfg.tracker) {
    for (const auto& c : batch) cfg.tracker->forgotten(c.id);
  }
  unflushed_ -= batch.size();
  if (!rep.transient_error.empty()) {
    ctx_.note_db_error();
    ctx_.log(LogLevel::kWarning, "writing outcomes failed, keeping " +
                                     std::to_string(kept.size()) +
                                     " and retrying: " + rep.transient_error);
    std::lock_guard lock(out_mu_);
    kept.insert(kept.end(), std::make_move_iterator(pending_.begin()),
                std::make_move_iterator(pending_.end()));
    pending_.swap(kept);
  }
  if (!rep.transient_error.empty() || !marks_error.empty()) {
    arm_retry();
    return false;
  }
  flush_backoff_ = completer::kRetryFirst;
  if (cfg.burst && flushed_) flushed_();
  return true;
}

// Completer thread: after a transient error, flush again with back-off.
void Completer::arm_retry() {
  {
    std::lock_guard lock(out_mu_);
    if (flush_armed_ || flush_posted_) return;
    flush_armed_ = true;
  }
  retry_timer_.expires_after(flush_backoff_);
  retry_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) flush();
  });
  flush_backoff_ = completer::next_retry(flush_backoff_);
}

// Completer thread, at the end: write every remaining outcome, retrying transient
// failures for up to a lease (after that the rows are rescued anyway).
void Completer::final_flush() {
  const auto deadline = std::chrono::steady_clock::now() + ctx_.cfg.lease;
  flush_timer_.cancel();
  retry_timer_.cancel();
  while (true) {
    if (!has_pending()) break;
    if (!flush()) {
      retry_timer_.cancel();
      if (std::chrono::steady_clock::now() > deadline) {
        ctx_.log(LogLevel::kError, "giving up writing outcomes at shutdown; those jobs will "
                                   "be rescued and run again");
        break;
      }
      std::this_thread::sleep_for(flush_backoff_);
    }
  }
}

}  // namespace fastq::worker
