#include "fastq/worker/local_queue.hpp"

#include <iterator>

#include "fastq/worker/executor_pool.hpp"

namespace fastq {

void LocalQueue::push(std::vector<ClaimedJob>& jobs) {
  const auto n = jobs.size();
  {
    std::lock_guard lock(mu_);
    for (auto& j : jobs) queue_.push_back(std::move(j));
  }
  jobs.clear();
  if (n == 1) {
    cv_.notify_one();
  } else if (n > 1) {
    cv_.notify_all();
  }
}

// Takes up to `limit` jobs, and never more than an even share of what is waiting, so
// no executor hoards jobs that an idle sibling could start.
bool LocalQueue::pop_batch(std::vector<ClaimedJob>& batch, std::size_t concurrency,
                           std::size_t limit) {
  batch.clear();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return !queue_.empty() || closed_; });
  if (queue_.empty()) return false;
  const std::size_t n = executor_pool::batch_share(queue_.size(), concurrency, limit);
  for (std::size_t i = 0; i < n; ++i) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return true;
}

std::vector<ClaimedJob> LocalQueue::close() {
  std::vector<ClaimedJob> waiting;
  {
    std::lock_guard lock(mu_);
    waiting.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
    queue_.clear();
    closed_ = true;
  }
  cv_.notify_all();
  return waiting;
}

void LocalQueue::keep_unrun(std::vector<ClaimedJob>& batch, std::size_t from) {
  if (from >= batch.size()) return;
  std::lock_guard lock(mu_);
  for (std::size_t i = from; i < batch.size(); ++i) unrun_.push_back(std::move(batch[i]));
}

void LocalQueue::keep_stale(const ClaimedJob& job) {
  std::lock_guard lock(mu_);
  stale_.push_back(job);
}

std::vector<ClaimedJob> LocalQueue::take_stale() {
  std::vector<ClaimedJob> jobs;
  std::lock_guard lock(mu_);
  jobs.swap(stale_);
  return jobs;
}

void LocalQueue::pause(const std::vector<std::string>& names, std::vector<ClaimedJob>& from_queue,
                       std::vector<ClaimedJob>& held_back) {
  std::lock_guard lock(mu_);
  paused_ = std::unordered_set<std::string>(names.begin(), names.end());
  any_paused_.store(!paused_.empty(), std::memory_order_relaxed);
  if (paused_.empty()) return;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (paused_.contains(it->queue)) {
      from_queue.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& j : paused_jobs_) held_back.push_back(std::move(j));
  paused_jobs_.clear();
}

bool LocalQueue::hold_back_if_paused(const ClaimedJob& job) {
  if (!any_paused_.load(std::memory_order_relaxed)) return false;
  std::lock_guard lock(mu_);
  if (!paused_.contains(job.queue)) return false;
  paused_jobs_.push_back(job);
  return true;
}

std::vector<ClaimedJob> LocalQueue::take_paused() {
  std::vector<ClaimedJob> jobs;
  std::lock_guard lock(mu_);
  jobs.swap(paused_jobs_);
  return jobs;
}

std::vector<ClaimedJob> LocalQueue::take_leftovers() {
  std::vector<ClaimedJob> jobs;
  std::lock_guard lock(mu_);
  jobs.swap(unrun_);
  for (auto& j : stale_) jobs.push_back(std::move(j));
  for (auto& j : paused_jobs_) jobs.push_back(std::move(j));
  stale_.clear();
  paused_jobs_.clear();
  return jobs;
}

}  // namespace fastq
