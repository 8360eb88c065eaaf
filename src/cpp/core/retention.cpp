// The pruner's pacing (retention.hpp): pure, no thread, no database.
#include "fastq/retention.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

namespace fastq {

int final_state_index(const std::string& state) {
  for (std::size_t i = 0; i < kFinalStates.size(); ++i) {
    if (state == kFinalStates[i]) return static_cast<int>(i);
  }
  return -1;
}

bool RetentionConfig::enabled() const {
  for (const auto& k : keep) {
    if (k) return true;
  }
  return false;
}

RetentionCutoffs retention_cutoffs(const RetentionConfig& config, Micros now) {
  RetentionCutoffs out;
  for (std::size_t i = 0; i < config.keep.size(); ++i) {
    if (config.keep[i]) out.emplace_back(kFinalStates[i], now - *config.keep[i]);
  }
  return out;
}

LogPartitions log_partitions(const RetentionConfig& config) {
  LogPartitions out;
  const auto& succeeded = config.keep[0];
  out.drops_succeeded = succeeded.has_value();
  constexpr Micros kDay = 86'400'000'000;
  if (!succeeded || *succeeded >= kDay) return out;
  static constexpr std::array<std::int64_t, 21> kWidths = {
      1, 2, 3, 5, 6, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1'800, 3'600, 7'200, 10'800,
      14'400, 21'600, 43'200};
  const std::int64_t tenth = std::max<Micros>(*succeeded, 0) / 10 / 1'000'000;
  out.width = kWidths[0];
  for (const auto w : kWidths) {
    if (w <= tenth) out.width = w;
  }
  out.ahead = std::max<std::int64_t>(120, 4 * out.width);
  out.every = std::clamp<Micros>(out.width * 500'000, 1'000'000, 3'600'000'000);
  return out;
}

PruneAction Pruner::next(Micros now) {
  if (pending_) throw std::logic_error("Pruner::next() before done() for the last request");
  if (!in_pass_) {
    if (now < wake_) return {std::nullopt, wake_};
    if (!cfg_.enabled()) {
      wake_ = now + cfg_.idle;
      return {std::nullopt, wake_};
    }
    in_pass_ = true;
    pass_start_ = now;
    pass_now_ = now;
    // The cursor carries over from a pass cut short: the walk resumes where it was
    // (rows before it were seen; rows the later cutoff adds come after it).
  }
  if (now - pass_start_ >= cfg_.pass_budget) {
    // Out of time: breathe, and resume with the same state.
    in_pass_ = false;
    wake_ = now + cfg_.breath;
    return {std::nullopt, wake_};
  }
  while (index_ < static_cast<int>(cfg_.keep.size()) && !cfg_.keep[index_]) ++index_;
  if (index_ >= static_cast<int>(cfg_.keep.size())) {
    // Every state caught up.
    in_pass_ = false;
    index_ = 0;
    wake_ = now + cfg_.idle;
    return {std::nullopt, wake_};
  }
  PruneRequest req;
  req.state = kFinalStates[index_];
  req.before = pass_now_ - *cfg_.keep[index_];
  req.limit = cfg_.batch;
  req.keep = *cfg_.keep[index_];
  req.after_at = after_at_;
  req.after_id = after_id_;
  pending_ = req;
  return {req, now};
}

void Pruner::done(const PruneResult& result) {
  if (!pending_) throw std::logic_error("Pruner::done() without a request");
  deleted_ += result.deleted;
  if (result.scanned < static_cast<std::size_t>(pending_->limit)) {
    // A batch that came back short reached the cutoff: on to the next state.
    ++index_;
    after_at_.clear();
    after_id_.clear();
  } else {
    after_at_ = result.last_at;
    after_id_ = result.last_id;
  }
  pending_.reset();
}

}  // namespace fastq
