// libFuzzer target: the envelope decoder (check_envelope) on arbitrary bytes.
//
//   make fuzz                      # FUZZ_SECONDS=600 by default; make test runs 15 s
//
// Input layout: byte 0 picks the envelope version (mostly the current one), the rest is
// split at the first two NUL bytes into task name, args and kwargs. Whatever the bytes,
// the decoder must return a verdict without crashing, and a job it lets through must be
// exactly what the Python bindings rely on: args a JSON array, kwargs a JSON object,
// within the size limit, for a registered task.
#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <unordered_set>

#include "fastq/json.hpp"

namespace {

std::size_t walk(simdjson::dom::element el, int depth = 0) {
  std::size_t n = 1;
  if (depth > 2000) std::abort();
  switch (el.type()) {
    case simdjson::dom::element_type::ARRAY: {
      simdjson::dom::array arr = el.get_array().value_unsafe();  // as the bindings do
      for (auto child : arr) n += walk(child, depth + 1);
      break;
    }
    case simdjson::dom::element_type::OBJECT: {
      simdjson::dom::object obj = el.get_object().value_unsafe();
      for (auto field : obj) n += walk(field.value, depth + 1);
      break;
    }
    default:
      break;
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::unordered_set<std::string> registered{"app.tasks.ok", ""};
  constexpr std::size_t kLimit = 4096;
  fastq::ClaimedJob job;
  std::size_t pos = 0;
  if (size > 0) {
    job.envelope = data[0] < 240 ? fastq::kEnvelopeVersion : data[0] - 240;
    pos = 1;
  }
  std::string parts[3];
  int part = 0;
  for (; pos < size; ++pos) {
    if (data[pos] == 0 && part < 2) {
      ++part;
    } else {
      parts[part].push_back(static_cast<char>(data[pos]));
    }
  }
  job.task = parts[0];
  job.args = parts[1];
  job.kwargs = parts[2];
  const auto verdict = fastq::check_envelope(job, registered, kLimit);
  if (verdict) {
    if (!verdict->type || verdict->message.empty()) std::abort();
    return 0;
  }
  // Accepted: the invariants the bindings' decoder depends on.
  if (job.envelope != fastq::kEnvelopeVersion || !registered.contains(job.task)) std::abort();
  if (job.args.size() + job.kwargs.size() > kLimit) std::abort();
  simdjson::dom::parser parser;
  simdjson::dom::element args, kwargs;
  if (parser.parse(job.args).get(args) || !args.is_array()) std::abort();
  walk(args);
  simdjson::dom::parser parser2;
  if (parser2.parse(job.kwargs).get(kwargs) || !kwargs.is_object()) std::abort();
  walk(kwargs);
  return 0;
}
