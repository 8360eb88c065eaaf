// Lease table: the leases this worker holds, id -> token, from claim until the outcome is
// written or the job is handed back, and the held jobs whose cancel was requested.
//
// Shared by every thread of the worker, its mutex inside: the poller adds claimed jobs
// (hold) and drops those it hands back (forget); executors mark a job started and ask
// whether its lease is still vouched for (confirmed_us); the completer settles the jobs
// whose outcome was written (settle) and records renewals and cancel requests (refs,
// renewed); Worker::cancel_requested reads it from any thread; run() splits what is left
// after a hard stop (split_held). Every method takes the lock for its own duration only.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fastq/types.hpp"

namespace fastq {

class LeaseTable {
 public:
  // A held job's lease: its token, and the steady-clock microseconds at which the claim
  // or the last renewal that covered it was sent (valid until at least then + lease).
  struct Lease {
    std::int64_t token = 0;
    std::int64_t confirmed_us = 0;
    bool started = false;  // an executor began running it (a hard stop interrupts it)
  };

  // Poller thread: `jobs` were claimed by a statement sent at `sent_us`.
  void hold(const std::vector<ClaimedJob>& jobs, std::int64_t sent_us);
  // Poller thread (or run()): `jobs` left this worker (handed back). Only their attempt's
  // lease goes (the job may have been claimed again since), with its cancel request.
  void forget(const std::vector<ClaimedJob>& jobs);
  // Completer thread: these outcomes were written (or refused); their leases and cancel
  // requests go.
  void settle(const std::vector<Completion>& written);
  // Executor thread: `job` is about to run (a hard stop interrupts it rather than release it).
  void started(const ClaimedJob& job);
  // Executor thread: when the claim or last renewal covering `id` was sent; nullopt if
  // this worker no longer holds it.
  std::optional<std::int64_t> confirmed_us(const std::string& id) const;
  // Completer thread: every held lease, to renew.
  std::vector<JobRef> refs() const;
  // Completer thread: a renewal sent at `sent_us` covered `renewed`; `cancelled` are jobs
  // whose cancel was requested (only those still held are kept; the vector is consumed).
  void renewed(const std::vector<std::string>& renewed, std::vector<std::string>& cancelled,
               std::int64_t sent_us);
  // Any thread.
  bool cancel_requested(const std::string& id) const;
  // run() after a hard stop: every lease still held, as jobs that started (running now)
  // and jobs that never did.
  void split_held(std::vector<ClaimedJob>& running, std::vector<ClaimedJob>& unstarted) const;
  std::size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, Lease> leases_;
  std::unordered_set<std::string> cancels_;  // held jobs whose cancel was requested
};

}  // namespace fastq
