// Storable outcomes and the isolating outcome writer (see outcome.hpp).
#include "fastq/outcome.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <utility>

namespace fastq {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is invalid (bad lead
// byte, truncated, overlong, an encoded surrogate, past U+10FFFF) or a NUL.
std::size_t valid_sequence(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 == 0) return 0;
  if (b0 < 0x80) return 1;
  auto cont = [&](std::size_t k) {
    return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    const auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b0 == 0xE0 && b1 < 0xA0) return 0;   // overlong
    if (b0 == 0xED && b1 >= 0xA0) return 0;  // U+D800..U+DFFF: a lone surrogate
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b0 == 0xF0 && b1 < 0x90) return 0;  // overlong
    if (b0 == 0xF4 && b1 >= 0x90) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

bool clean(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto n = valid_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// `s` with every invalid sequence and NUL replaced by U+FFFD.
std::string repaired(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (std::size_t i = 0; i < s.size();) {
    const auto n = valid_sequence(s, i);
    if (n == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

// Largest cut <= `at` that does not split a UTF-8 sequence of the (valid) text `s`.
std::size_t boundary(std::string_view s, std::size_t at) {
  if (at >= s.size()) return s.size();
  while (at > 0 && (static_cast<unsigned char>(s[at]) & 0xC0) == 0x80) --at;
  return at;
}

std::string truncation_marker(std::size_t total) {
  return "\xE2\x80\xA6 [truncated by fastq: " + std::to_string(total) + " bytes in all]";
}

}  // namespace

std::string storable_text(std::string_view in, std::size_t max_bytes) {
  std::string text = clean(in) ? std::string(in) : repaired(in);
  if (text.size() <= max_bytes) return text;
  const std::string marker = truncation_marker(text.size());
  const std::size_t keep = max_bytes > marker.size() ? max_bytes - marker.size() : 0;
  text.resize(boundary(text, keep));
  if (text.size() + marker.size() <= max_bytes) text += marker;
  return text;
}

std::string storable_chars(std::string_view in, std::size_t max_chars) {
  std::string text = clean(in) ? std::string(in) : repaired(in);
  std::size_t chars = 0;
  for (std::size_t i = 0; i < text.size(); i += valid_sequence(text, i)) ++chars;
  if (chars <= max_chars) return text;
  // Too long: the first max_chars - 1 characters and an ellipsis.
  std::size_t cut = 0;
  for (std::size_t k = 0; k + 1 < max_chars; ++k) cut += valid_sequence(text, cut);
  text.resize(cut);
  if (max_chars > 0) text += "\xE2\x80\xA6";
  return text;
}

bool sanitize_outcome(Completion& c, const OutcomeLimits& limits) {
  bool changed = false;
  auto fix = [&changed](std::string& field, std::string next) {
    if (next != field) {
      field = std::move(next);
      changed = true;
    }
  };
  if (c.outcome == Outcome::kSucceeded) {
    if (c.result.size() > limits.max_result_bytes) {
      const auto size = c.result.size();
      c = Completion{std::move(c.id), c.lease_token, Outcome::kFailed, {},
                     kResultTooLargeType,
                     "the task's result encodes to " + std::to_string(size) +
                         " bytes of JSON, over the limit of " +
                         std::to_string(limits.max_result_bytes) +
                         " bytes (FASTQ['MAX_PAYLOAD_BYTES']); store large data elsewhere "
                         "and return a reference to it",
                     {}, 0};
      return true;
    }
    if (!clean(c.result)) {
      c = Completion{std::move(c.id), c.lease_token, Outcome::kFailed, {}, kOutcomeNotStoredType,
                     "the task's result is not valid UTF-8 JSON text", {}, 0};
      return true;
    }
  } else if (!c.result.empty()) {
    c.result.clear();  // only a success stores a result
    changed = true;
  }
  if (!clean(c.error_type) || c.error_type.size() > limits.max_error_type_chars) {
    fix(c.error_type, storable_chars(c.error_type, limits.max_error_type_chars));
  }
  if (!clean(c.error) || c.error.size() > limits.max_error_bytes) {
    fix(c.error, storable_text(c.error, limits.max_error_bytes));
  }
  if (!clean(c.traceback) || c.traceback.size() > limits.max_traceback_bytes) {
    fix(c.traceback, storable_text(c.traceback, limits.max_traceback_bytes));
  }
  return changed;
}

WriteReport write_outcomes(JobStore& driver, std::vector<Completion>& batch) {
  WriteReport report;
  // Ranges [first, last) of `batch` still to write, front first.
  std::deque<std::pair<std::size_t, std::size_t>> todo;
  if (!batch.empty()) todo.emplace_back(0, batch.size());
  std::vector<char> settled(batch.size(), 0);
  while (!todo.empty()) {
    const auto [first, last] = todo.front();
    try {
      ++report.statements;
      report.written +=
          driver.complete(std::span<const Completion>(batch.data() + first, last - first));
      std::fill(settled.begin() + static_cast<std::ptrdiff_t>(first),
                settled.begin() + static_cast<std::ptrdiff_t>(last), 1);
      todo.pop_front();
      continue;
    } catch (const DriverError& e) {
      if (e.transient()) {
        report.transient_error = e.what();
        break;
      }
      todo.pop_front();
      if (last - first > 1) {
        const auto mid = first + (last - first) / 2;
        todo.emplace_front(mid, last);
        todo.emplace_front(first, mid);
        continue;
      }
      // One outcome the store refuses: record that instead, so the job ends with a
      // reason rather than running again after its lease.
      const Completion& bad = batch[first];
      report.problems.push_back("the outcome of job " + bad.id + " could not be stored (" +
                                e.what() + "); recording " + kOutcomeNotStoredType +
                                " instead");
      Completion instead{bad.id, bad.lease_token, Outcome::kFailed, {}, kOutcomeNotStoredType,
                         storable_text(std::string("the outcome could not be stored: ") +
                                           e.what(),
                                       4096),
                         {}, 0};
      try {
        ++report.statements;
        report.written += driver.complete(std::span<const Completion>(&instead, 1));
        ++report.isolated;
      } catch (const DriverError& again) {
        if (again.transient()) {
          report.transient_error = again.what();
          break;
        }
        ++report.dropped;
        report.problems.push_back("job " + bad.id +
                                  ": even that was refused; it is rescued after its lease: " +
                                  again.what());
      }
      settled[first] = 1;
    }
  }
  // Settled outcomes first, the ones still to write after them, each group in order.
  std::vector<Completion> ordered;
  ordered.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (settled[i]) ordered.push_back(std::move(batch[i]));
  }
  report.settled = ordered.size();
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!settled[i]) ordered.push_back(std::move(batch[i]));
  }
  batch.swap(ordered);
  return report;
}

std::vector<StartMark> marks_to_write(std::vector<StartMark> marks,
                                      std::span<Completion> outcomes) {
  if (marks.empty() || outcomes.empty()) return marks;
  std::unordered_map<std::string_view, Completion*> by_id;
  by_id.reserve(outcomes.size());
  for (auto& c : outcomes) by_id.emplace(c.id, &c);
  std::size_t out = 0;
  for (std::size_t i = 0; i < marks.size(); ++i) {
    auto it = by_id.find(marks[i].id);
    if (it != by_id.end() && it->second->lease_token == marks[i].lease_token) {
      if (it->second->started_at == 0) it->second->started_at = marks[i].started_at;
      continue;
    }
    if (out != i) marks[out] = std::move(marks[i]);
    ++out;
  }
  marks.resize(out);
  return marks;
}

}  // namespace fastq
