#include "rate_gate.hpp"

#include <algorithm>
#include <unordered_set>

#include "fastq/worker/rate_gate.hpp"

namespace fastq::worker {

RateGate::RateGate(Context& ctx, Driver& claim_db, boost::asio::io_context& poll_io,
                   LocalQueue& queue, std::function<void(std::vector<ClaimedJob>&)> forget)
    : ctx_(ctx),
      claim_db_(claim_db),
      queue_(queue),
      forget_(std::move(forget)),
      timer_(poll_io) {}

// Poller thread. Takes tokens for the rate-limited jobs among `jobs`: those whose token
// is due now stay in `jobs`, those due within the horizon wait here, the rest go back
// to the queue (without spending an attempt) due when their turn is expected.
void RateGate::apply(std::vector<ClaimedJob>& jobs) {
  const auto& cfg = ctx_.cfg;
  std::map<std::string, std::vector<std::size_t>> buckets;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const auto& j = jobs[i];
    if (j.expired || j.cancel_requested || !cfg.rate_limits.contains(j.task)) continue;
    buckets[j.rate_key.empty() ? j.task : j.rate_key].push_back(i);
  }
  if (buckets.empty()) return;
  std::vector<bool> keep(jobs.size(), true);
  std::vector<Deferral> later;
  std::vector<ClaimedJob> later_jobs;
  const auto now_steady = std::chrono::steady_clock::now();
  const Micros now = now_micros();
  for (auto& [key, idx] : buckets) {
    const RateLimit limit = cfg.rate_limits.at(jobs[idx.front()].task);
    RateGrant g;
    try {
      g = claim_db_.acquire_rate(key, limit.interval_us, limit.burst,
                                 static_cast<int>(idx.size()), cfg.rate_horizon.count() * 1000);
    } catch (const DriverError& e) {
      ctx_.note_db_error();
      ctx_.log(LogLevel::kWarning, "rate limit " + key + ": " + e.what() + "; retrying in 1 s");
      g.granted = 0;
      g.base_delay = 1'000'000;
    }
    for (std::size_t n = 0; n < idx.size(); ++n) {
      const auto admit = rate_gate::admit(g, n, limit.interval_us);
      auto& job = jobs[idx[n]];
      if (admit.kind == rate_gate::Admission::kWait) {
        keep[idx[n]] = false;
        waiting_.emplace(now_steady + std::chrono::microseconds(admit.delay), std::move(job));
      } else if (admit.kind == rate_gate::Admission::kDefer) {
        keep[idx[n]] = false;
        later.push_back(Deferral{job.id, job.lease_token, now + admit.delay});
        deferred_until_ = std::max(deferred_until_, now + admit.delay);
        later_jobs.push_back(std::move(job));
      }
    }
  }
  std::size_t out = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (keep[i]) {
      if (out != i) jobs[out] = std::move(jobs[i]);
      ++out;
    }
  }
  jobs.resize(out);
  if (!later.empty()) {
    try {
      ctx_.counters.deferred += claim_db_.defer(later);
    } catch (const DriverError& e) {
      ctx_.note_db_error();
      ctx_.log(LogLevel::kWarning, std::string("could not hand rate-limited jobs back (they "
                                               "return when their lease expires): ") +
                                       e.what());
    }
    forget_(later_jobs);
  }
  arm_timer();
}

void RateGate::arm_timer() {
  if (waiting_.empty()) return;
  timer_.expires_at(waiting_.begin()->first);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || ctx_.stopping) return;
    const auto now = std::chrono::steady_clock::now();
    std::vector<ClaimedJob> due;
    while (!waiting_.empty() && waiting_.begin()->first <= now) {
      auto node = waiting_.extract(waiting_.begin());
      const ClaimedJob& job = node.mapped();
      // A late timer must not let overdue tokens start in a bunch: keep them an
      // interval apart from this worker's last start in the bucket.
      const auto interval =
          std::chrono::microseconds(ctx_.cfg.rate_limits.at(job.task).interval_us);
      auto& last = last_start_[job.rate_key.empty() ? job.task : job.rate_key];
      if (const auto until = rate_gate::hold_until(last, now, interval)) {
        node.key() = *until;
        waiting_.insert(std::move(node));
        continue;
      }
      last = now;
      due.push_back(std::move(node.mapped()));
    }
    queue_.push(due);
    arm_timer();
  });
}

void RateGate::take_paused(const std::vector<std::string>& paused,
                           std::vector<ClaimedJob>& back) {
  if (waiting_.empty()) return;
  const std::unordered_set<std::string> names(paused.begin(), paused.end());
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (names.contains(it->second.queue)) {
      back.push_back(std::move(it->second));
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
}

void RateGate::stop(std::vector<ClaimedJob>& back) {
  timer_.cancel();
  for (auto& [due, job] : waiting_) back.push_back(std::move(job));
  waiting_.clear();
}

}  // namespace fastq::worker
