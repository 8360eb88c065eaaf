#include "fastq/worker/lease_table.hpp"

namespace fastq {

void LeaseTable::hold(const std::vector<ClaimedJob>& jobs, std::int64_t sent_us) {
  std::lock_guard lock(mu_);
  // insert_or_assign: a job rescued from this worker and claimed by it again has a
  // new token; the old attempt's outcome, if still held, is fenced and forgotten.
  for (const auto& j : jobs) leases_.insert_or_assign(j.id, Lease{j.lease_token, sent_us});
}

void LeaseTable::forget(const std::vector<ClaimedJob>& jobs) {
  std::lock_guard lock(mu_);
  for (const auto& j : jobs) {
    auto it = leases_.find(j.id);
    if (it != leases_.end() && it->second.token == j.lease_token) {
      leases_.erase(it);
      cancels_.erase(j.id);  // handed back: its cancel is the row's now, not ours
    }
  }
}

void LeaseTable::settle(const std::vector<Completion>& written) {
  std::lock_guard lock(mu_);
  for (const auto& c : written) {
    // Only this attempt's lease: the job may have been claimed again since.
    auto it = leases_.find(c.id);
    if (it != leases_.end() && it->second.token == c.lease_token) {
      leases_.erase(it);
      cancels_.erase(c.id);
    }
  }
}

void LeaseTable::started(const ClaimedJob& job) {
  std::lock_guard lock(mu_);
  auto it = leases_.find(job.id);
  if (it != leases_.end() && it->second.token == job.lease_token) it->second.started = true;
}

std::optional<std::int64_t> LeaseTable::confirmed_us(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  return it->second.confirmed_us;
}

std::vector<JobRef> LeaseTable::refs() const {
  std::vector<JobRef> refs;
  std::lock_guard lock(mu_);
  refs.reserve(leases_.size());
  for (const auto& [id, lease] : leases_) refs.push_back(JobRef{id, lease.token});
  return refs;
}

void LeaseTable::renewed(const std::vector<std::string>& renewed,
                         std::vector<std::string>& cancelled, std::int64_t sent_us) {
  std::lock_guard lock(mu_);
  for (const auto& id : renewed) {
    auto it = leases_.find(id);
    if (it != leases_.end()) it->second.confirmed_us = sent_us;
  }
  for (auto& id : cancelled) {
    if (leases_.contains(id)) cancels_.insert(std::move(id));
  }
}

bool LeaseTable::cancel_requested(const std::string& id) const {
  std::lock_guard lock(mu_);
  return cancels_.contains(id);
}

void LeaseTable::split_held(std::vector<ClaimedJob>& running,
                            std::vector<ClaimedJob>& unstarted) const {
  std::lock_guard lock(mu_);
  for (const auto& [id, lease] : leases_) {
    ClaimedJob j;
    j.id = id;
    j.lease_token = lease.token;
    (lease.started ? running : unstarted).push_back(std::move(j));
  }
}

std::size_t LeaseTable::size() const {
  std::lock_guard lock(mu_);
  return leases_.size();
}

}  // namespace fastq
