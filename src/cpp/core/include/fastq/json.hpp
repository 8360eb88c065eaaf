// Small JSON helpers for the core: escaping for statements we build, and validation of
// job payloads before any Python sees them. Decoding uses simdjson (see json.cpp).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>

#include "fastq/types.hpp"

namespace fastq {

// Appends `s` as a JSON string literal (with quotes) to `out`.
void append_json_string(std::string& out, std::string_view s);

// A JSON array of strings, e.g. for SQLite's json_each().
std::string json_string_array(std::span<const std::string> items);

// Checks a claimed job's payload. Returns an error message when `args` is not a JSON
// array, `kwargs` is not a JSON object, either is malformed, or together they exceed
// `max_bytes`; std::nullopt when the payload may be handed to the task.
std::optional<std::string> validate_payload(std::string_view args, std::string_view kwargs,
                                            std::size_t max_bytes);

// Why a claimed job must not run: `type` is the error_type recorded on the dead job.
struct Rejection {
  const char* type;
  std::string message;
};
inline constexpr const char* kUnknownEnvelopeType = "fastq.UnknownEnvelope";
inline constexpr const char* kUnknownTaskType = "fastq.UnknownTask";
inline constexpr const char* kPayloadTooLargeType = "fastq.PayloadTooLarge";
inline constexpr const char* kInvalidPayloadType = "fastq.InvalidPayload";
inline constexpr const char* kInvalidJobType = "fastq.InvalidJob";

// A claimed row's counters and limits within their bounds (kMaxAttemptsLimit, attempts in
// 1..max_attempts, time limits in 0..kMaxTimeLimitSeconds). A row written behind fastq's
// back that breaks them ends as fastq.InvalidJob instead of confusing the worker.
std::optional<Rejection> check_row_bounds(const ClaimedJob& job);

// True for a UUID in its canonical text form (8-4-4-4-12 hex digits, either case).
bool is_uuid_text(std::string_view id);

// The envelope decoder's verdict on a claimed job, before any task code (or import) is
// involved: the envelope version, the task name, the payload size, and that args/kwargs
// are a JSON array/object. std::nullopt: the job may run, and the parsed payload waits
// for the runner on this thread (take_parsed_payload, json_dom.hpp).
std::optional<Rejection> check_envelope(const ClaimedJob& job,
                                        const std::unordered_set<std::string>& registered,
                                        std::size_t max_bytes);

}  // namespace fastq
