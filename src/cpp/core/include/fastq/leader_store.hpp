// The leader lease (table fastq_leader) and the database's clock: how one process of the
// fleet is elected to run the scheduler and the maintenance that must run once. Offered by
// every driver; conformance suite LeaderStoreConformance (tests/cpp/test_store_conformance.cpp).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "fastq/driver_error.hpp"
#include "fastq/types.hpp"

namespace fastq {

class LeaderStore {
 public:
  virtual ~LeaderStore() = default;

  // Takes the lease row `name` for `holder` when it is free, expired or already held by
  // `holder`, extending it to now + lease, in one conditional statement; true if `holder`
  // holds it afterwards.
  virtual bool hold_lease(const std::string& name, const std::string& holder,
                          std::chrono::milliseconds lease) = 0;
  // Gives the lease up (if `holder` holds it).
  virtual void drop_lease(const std::string& name, const std::string& holder) = 0;

  // The database server's clock (microseconds since the epoch), for a driver whose server
  // may run on another machine than this process (PostgreSQL); std::nullopt when this
  // machine's clock is the database's (SQLite, memory). The scheduler judges due slots on
  // it, so a leader whose wall clock is off fires each slot on time all the same.
  virtual std::optional<Micros> database_now() = 0;
};

}  // namespace fastq
