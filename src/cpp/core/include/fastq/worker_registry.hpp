// The worker registry (table fastq_worker). Offered by every driver; conformance suite
// WorkerRegistryConformance (tests/cpp/test_store_conformance.cpp).
//
// beat_worker() inserts the row (state running, started_at and last_heartbeat now on the
// database's clock) or updates its heartbeat, counters and RSS (a row marked lost that
// beats again is running again): one statement, sent with the lease renewal. stop_worker()
// marks it stopped (a graceful stop; a late heartbeat does not revive a stopped row).
// reap_workers() (the leader) marks running rows silent for longer than their lease
// (expires_at passed) as lost and deletes stopped and lost rows whose last heartbeat is
// older than `keep`; returns how many it marked lost. workers() reads every row (tests,
// tools without Django).
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include "fastq/driver_error.hpp"
#include "fastq/types.hpp"

namespace fastq {

class WorkerRegistry {
 public:
  virtual ~WorkerRegistry() = default;

  virtual void beat_worker(const WorkerRow& row) = 0;
  virtual void stop_worker(const WorkerRow& row) = 0;
  virtual std::size_t reap_workers(std::chrono::milliseconds keep) = 0;
  virtual std::vector<WorkerRecord> workers() = 0;
};

}  // namespace fastq
