// The payload a worker parsed once: check_envelope (json.hpp) parses a claimed job's
// args and kwargs to validate them, and keeps the documents for whoever runs the job
// next on the same thread (the Python runner decodes them into objects), so a payload is
// parsed once. A separate header because it brings simdjson's: only json.cpp and the
// runner include it.
#pragma once

#include <simdjson.h>

#include <optional>

#include "fastq/types.hpp"

namespace fastq {

struct ParsedPayload {
  simdjson::dom::element args;    // a JSON array
  simdjson::dom::element kwargs;  // a JSON object
};

// The documents check_envelope parsed on this thread when it passed `job` (this very
// object, with the same id and payload buffers), once: the first call hands them over,
// any later one (or one for another job, or after check_envelope looked at another
// job) returns std::nullopt and the caller parses for itself. The elements stay valid
// until check_envelope runs again on this thread.
std::optional<ParsedPayload> take_parsed_payload(const ClaimedJob& job);

}  // namespace fastq
