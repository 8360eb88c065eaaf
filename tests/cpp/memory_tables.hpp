// Test helpers for the memory driver: what the Django app writes into the SQL drivers'
// fastq_schedule and fastq_queue tables, written into the memory store instead (defined
// in src/cpp/core/memory_driver.cpp, next to the store they write; production code does
// not declare or call them).
#pragma once

#include <optional>
#include <string>

#include "fastq/driver.hpp"

namespace fastq {

// Memory driver only: inserts or replaces a schedule row.
void memory_put_schedule(Driver& memory_driver, const ScheduleRow& row, bool enabled = true);
// Memory driver only: a queue's pause and concurrency limit (nullopt: none).
void memory_set_queue(Driver& memory_driver, const std::string& queue, bool paused,
                      std::optional<int> concurrency = std::nullopt);

}  // namespace fastq
