// What a batch poller (poller.hpp) reads and writes: keyset-paginated pages of a project
// query's keys, and the poller's once-per-key marks (table fastq_poller_mark). Offered by
// the SQL drivers only (sqlite, postgres): the memory driver cannot run a query, and
// keyset_source() (driver.hpp) says so. Conformance suite KeysetSourceConformance
// (tests/cpp/test_store_conformance.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fastq/driver_error.hpp"
#include "fastq/types.hpp"

namespace fastq {

class KeysetSource {
 public:
  virtual ~KeysetSource() = default;

  // Up to `limit` keys of `query`'s rows greater than `after` (all when it is empty), in
  // key order: one keyset-paginated page, one round trip. With query.pending_prefix,
  // `pending` (when given) receives one flag per key (see KeysetQuery).
  virtual std::vector<SqlValue> select_keys(const KeysetQuery& query,
                                            const std::optional<SqlValue>& after, int limit,
                                            std::vector<char>* pending = nullptr) = 0;
  // How many rows `query` has.
  virtual std::int64_t count_rows(const KeysetQuery& query) = 0;
  // One transaction: records (scope, keys[i]) in fastq_poller_mark where not recorded yet
  // and enqueues jobs[i] for each key newly recorded; returns how many were. A key is
  // thereby acted on once, however often it is offered.
  virtual std::size_t enqueue_once(const std::string& scope, std::span<const std::string> keys,
                                   std::span<const NewJob> jobs) = 0;
};

}  // namespace fastq
