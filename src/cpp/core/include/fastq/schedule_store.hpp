// Periodic schedules (tables fastq_schedule, fastq_schedule_run): what the elected
// scheduler reads and its fire-each-slot-once transaction (scheduler.hpp). The rows are
// written by the Django app (settings sync, admin). Offered by every driver; conformance
// suite ScheduleStoreConformance (tests/cpp/test_store_conformance.cpp).
#pragma once

#include <cstddef>
#include <vector>

#include "fastq/driver_error.hpp"
#include "fastq/types.hpp"

namespace fastq {

class ScheduleStore {
 public:
  virtual ~ScheduleStore() = default;

  // The enabled schedules.
  virtual std::vector<ScheduleRow> load_schedules() = 0;
  // One transaction; see ScheduleFire.
  virtual FireResult fire_schedule(const ScheduleFire& fire) = 0;
  // Deletes fastq_schedule_run rows of slots before `before`; returns how many.
  virtual std::size_t prune_schedule_runs(Micros before) = 0;
};

}  // namespace fastq
