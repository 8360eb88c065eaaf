// Bulk enqueue helpers shared by the drivers and the Python bindings: a batch of new jobs
// as the text of PostgreSQL's COPY ... FROM STDIN.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "fastq/types.hpp"

namespace fastq {

// Rows of fastq_job for `COPY fastq_job (<columns>) FROM STDIN` in text format. Only the
// columns some job in the batch needs are listed (id, task, queue, priority, args, kwargs,
// max_attempts and envelope always; run_at, expires_at, unique_key, time limits and
// rate_key when a job sets them); the rest take the table's defaults (state 'queued',
// attempts 0, created_at and, for jobs without one, run_at = statement_timestamp()).
struct PgCopyBatch {
  std::string columns;  // "id, task, ..." in the order of the fields of each row
  std::string data;     // one line per job, tab-separated, COPY text escapes
};

// A job without run_at in a batch where another job has one gets `now` (microseconds
// since the epoch) in that column.
PgCopyBatch pg_copy_batch(std::span<const NewJob> jobs, Micros now);

// Appends `text` with COPY's text-format escapes (backslash, tab, newline, carriage
// return).
void append_copy_text(std::string& out, std::string_view text);

}  // namespace fastq
