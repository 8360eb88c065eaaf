// Fleet-wide rate-limit buckets (table fastq_rate_limit). Offered by every driver;
// conformance suite RateStoreConformance (tests/cpp/test_store_conformance.cpp).
#pragma once

#include <string>

#include "fastq/driver_error.hpp"
#include "fastq/types.hpp"

namespace fastq {

class RateStore {
 public:
  virtual ~RateStore() = default;

  // Generic cell rate algorithm over the bucket `key`, shared by every worker on this
  // database (gcra_reserve in rate.hpp, on the database's clock): reserves up to `want`
  // tokens usable within `horizon_us`.
  virtual RateGrant acquire_rate(const std::string& key, Micros interval_us, int burst,
                                 int want, Micros horizon_us) = 0;
};

}  // namespace fastq
