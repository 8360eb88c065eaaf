// Queue controls (table fastq_queue: a queue's pause and concurrency limit, written by the
// Django admin and manage.py fastq_queues). claim() honours them (job_store.hpp); this
// store names the paused queues. Offered by every driver; conformance suite
// QueueControlsConformance (tests/cpp/test_queue_controls.cpp).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "fastq/driver_error.hpp"

namespace fastq {

class QueueControls {
 public:
  virtual ~QueueControls() = default;

  // The paused queues among `queues` (one indexed read of the small fastq_queue table);
  // the worker asks it to drop jobs it claimed before a pause and had not started.
  virtual std::vector<std::string> paused_queues(std::span<const std::string> queues) = 0;
};

}  // namespace fastq
