// What an outcome may hold so that every store accepts it, and how a batch of outcomes is
// written so that one outcome no store accepts costs only its own job.
//
//   fastq::sanitize_outcome(c, limits);        // executor thread, before the completer
//   auto report = fastq::write_outcomes(driver, batch);   // completer thread
//
// Both are free of threads and state: the worker calls them, tests call them directly.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fastq/driver.hpp"
#include "fastq/types.hpp"

namespace fastq {

inline constexpr const char* kResultTooLargeType = "fastq.ResultTooLarge";
inline constexpr const char* kOutcomeNotStoredType = "fastq.OutcomeNotStored";

// Bounds on what one outcome stores. error_type is a varchar(255) column (counted in
// characters); the texts are bounded so that one runaway message (a 10 MB repr) cannot
// bloat the table or a flush.
struct OutcomeLimits {
  std::size_t max_result_bytes = 1 << 20;  // FASTQ["MAX_PAYLOAD_BYTES"], as for arguments
  std::size_t max_error_type_chars = 255;
  std::size_t max_error_bytes = 64 << 10;
  std::size_t max_traceback_bytes = 256 << 10;
};

// `in` as text every store accepts: valid UTF-8 (each invalid byte, encoded surrogate or
// overlong form replaced by U+FFFD), no NUL (also U+FFFD: PostgreSQL's text cannot hold
// one), at most `max_bytes` bytes, cut on a character boundary and ended with a marker
// saying how long it was. Returns `in` unchanged when it already qualifies.
std::string storable_text(std::string_view in, std::size_t max_bytes);

// The same bounded by characters (code points) rather than bytes: for varchar columns.
std::string storable_chars(std::string_view in, std::size_t max_chars);

// Makes an outcome storable in place: every text field through storable_text, error_type
// within its column. A result longer than max_result_bytes is not truncated (it would no
// longer be JSON): the outcome becomes a failure of type fastq.ResultTooLarge. A result
// that is not valid UTF-8 cannot come from the JSON encoder; it becomes a failure too.
// Returns true when anything changed.
bool sanitize_outcome(Completion& c, const OutcomeLimits& limits);

// What write_outcomes did.
struct WriteReport {
  std::size_t written = 0;   // rows the store updated (fenced outcomes are not counted)
  std::size_t settled = 0;   // outcomes done with: batch[0, settled) after the call
  std::size_t isolated = 0;  // outcomes the store refused, replaced by fastq.OutcomeNotStored
  std::size_t dropped = 0;   // refused even then: their jobs are rescued after the lease
  std::size_t statements = 0;
  std::string transient_error;        // set when a transient error stopped the writing
  std::vector<std::string> problems;  // one line per refused outcome, for the log
};

// Writes `batch` with driver.complete(). A permanent (non-transient) error is narrowed by
// halving the failing range until the refused outcome is alone; that outcome is replaced by
// a failure naming the store's error (fastq.OutcomeNotStored, no result, no traceback)
// and written again, and only if that too is refused is it dropped. Every other outcome
// of the batch is written. A transient error stops the writing (transient_error says
// why). On return `batch` is reordered: batch[0, settled) were written, isolated or
// dropped; batch[settled, end) are still to write, in their original order.
WriteReport write_outcomes(JobStore& driver, std::vector<Completion>& batch);

// The start marks a flush writes on their own (JobStore::mark_started): `marks` minus those
// of jobs (same id and lease token) whose outcome is in `outcomes`, which carry the start
// instead: such an outcome's started_at is set from its mark when it has none. Order kept.
// A flush whose marks all ride on outcomes writes no mark statement.
std::vector<StartMark> marks_to_write(std::vector<StartMark> marks,
                                      std::span<Completion> outcomes);

}  // namespace fastq
