#include "fastq/json.hpp"

#include <simdjson.h>

#include <cctype>

#include "fastq/json_dom.hpp"

namespace fastq {

void append_json_string(std::string& out, std::string_view s) {
  // Python's json.dumps escapes, byte runs that need none copied whole.
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t clean = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + clean, i - clean);
    clean = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
  }
  out.append(s.data() + clean, s.size() - clean);
  out.push_back('"');
}

std::string json_string_array(std::span<const std::string> items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(out, items[i]);
  }
  out.push_back(']');
  return out;
}

namespace {
// One parser per thread: simdjson reuses its buffers across documents.
simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

// What check_envelope parsed last on this thread, for take_parsed_payload: a parser for
// each half (the elements point into them), and the job they belong to until taken.
struct LastPayload {
  simdjson::dom::parser args_parser;
  simdjson::dom::parser kwargs_parser;
  simdjson::dom::element args;
  simdjson::dom::element kwargs;
  const ClaimedJob* job = nullptr;  // nullptr: nothing to hand over
  std::string id;                   // the job's id (assigned: no allocation once grown)
  const char* args_data = nullptr;
  const char* kwargs_data = nullptr;
};

LastPayload& last_payload() {
  thread_local LastPayload last;
  return last;
}

std::optional<std::string> parse_payload(std::string_view args, std::string_view kwargs,
                                         std::size_t max_bytes, simdjson::dom::parser& ap,
                                         simdjson::dom::parser& kp,
                                         simdjson::dom::element& args_doc,
                                         simdjson::dom::element& kwargs_doc) {
  if (args.size() + kwargs.size() > max_bytes) {
    return "payload of " + std::to_string(args.size() + kwargs.size()) +
           " bytes exceeds the limit of " + std::to_string(max_bytes) + " bytes";
  }
  if (auto err = ap.parse(args.data(), args.size()).get(args_doc)) {
    return std::string("args is not valid JSON: ") + simdjson::error_message(err);
  }
  if (!args_doc.is_array()) return "args must be a JSON array";
  if (auto err = kp.parse(kwargs.data(), kwargs.size()).get(kwargs_doc)) {
    return std::string("kwargs is not valid JSON: ") + simdjson::error_message(err);
  }
  if (!kwargs_doc.is_object()) return "kwargs must be a JSON object";
  return std::nullopt;
}
}  // namespace

std::optional<std::string> validate_payload(std::string_view args, std::string_view kwargs,
                                            std::size_t max_bytes) {
  auto& parser = thread_parser();
  simdjson::dom::element a, k;
  // One parser for both halves: nothing is kept, so the args document may go.
  return parse_payload(args, kwargs, max_bytes, parser, parser, a, k);
}

std::optional<ParsedPayload> take_parsed_payload(const ClaimedJob& job) {
  auto& last = last_payload();
  if (last.job != &job || last.id != job.id || last.args_data != job.args.data() ||
      last.kwargs_data != job.kwargs.data()) {
    return std::nullopt;
  }
  last.job = nullptr;
  return ParsedPayload{last.args, last.kwargs};
}

bool is_uuid_text(std::string_view id) {
  if (id.size() != 36) return false;
  for (std::size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

std::optional<Rejection> check_row_bounds(const ClaimedJob& job) {
  if (!is_uuid_text(job.id)) {
    std::string shown;
    append_json_string(shown, job.id.substr(0, 80));
    return Rejection{kInvalidJobType,
                     "id " + shown + " is not a UUID: the row was written behind fastq's back"};
  }
  if (job.max_attempts < 1 || job.max_attempts > kMaxAttemptsLimit) {
    return Rejection{kInvalidJobType, "max_attempts " + std::to_string(job.max_attempts) +
                                          " is outside 1.." + std::to_string(kMaxAttemptsLimit)};
  }
  if (job.attempts < 1 || job.attempts > job.max_attempts) {
    return Rejection{kInvalidJobType,
                     "attempt " + std::to_string(job.attempts) + " is outside 1.." +
                         std::to_string(job.max_attempts) +
                         " (max_attempts): the row's attempts were changed behind fastq's back"};
  }
  auto bad_limit = [](double v) { return !(v >= 0 && v <= kMaxTimeLimitSeconds); };
  if (bad_limit(job.time_limit) || bad_limit(job.soft_time_limit)) {
    return Rejection{kInvalidJobType, "time_limit " + std::to_string(job.time_limit) +
                                          " / soft_time_limit " +
                                          std::to_string(job.soft_time_limit) +
                                          " is not a number of seconds in 0..1e9"};
  }
  return std::nullopt;
}

std::optional<Rejection> check_envelope(const ClaimedJob& job,
                                        const std::unordered_set<std::string>& registered,
                                        std::size_t max_bytes) {
  auto& last = last_payload();
  last.job = nullptr;  // whatever the verdict, what an earlier check kept is stale now
  if (job.envelope != kEnvelopeVersion) {
    return Rejection{kUnknownEnvelopeType,
                     "envelope version " + std::to_string(job.envelope) +
                         " is not understood by this worker (it reads version " +
                         std::to_string(kEnvelopeVersion) +
                         "); the job was written by a newer or foreign producer"};
  }
  if (!registered.contains(job.task)) {
    std::string name;
    append_json_string(name, job.task.substr(0, 200));
    return Rejection{kUnknownTaskType,
                     "task " + name +
                         " is not registered in this worker; tasks are found in each "
                         "installed app's tasks module and in FASTQ['IMPORTS']"};
  }
  const std::size_t size = job.args.size() + job.kwargs.size();
  if (size > max_bytes) {
    return Rejection{kPayloadTooLargeType,
                     "payload of " + std::to_string(size) + " bytes exceeds the limit of " +
                         std::to_string(max_bytes) + " bytes (FASTQ['MAX_PAYLOAD_BYTES'])"};
  }
  if (auto err = parse_payload(job.args, job.kwargs, max_bytes, last.args_parser,
                               last.kwargs_parser, last.args, last.kwargs)) {
    return Rejection{kInvalidPayloadType, std::move(*err)};
  }
  // Kept for the runner (take_parsed_payload): the payload is parsed once.
  last.job = &job;
  last.id.assign(job.id);
  last.args_data = job.args.data();
  last.kwargs_data = job.kwargs.data();
  return std::nullopt;
}

}  // namespace fastq
