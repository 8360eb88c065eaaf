// The worker's per-job log lines (see job_log.hpp).
#include "fastq/job_log.hpp"

#include <algorithm>
#include <cstdio>

#include "fastq/outcome.hpp"
#include "fastq/time.hpp"

namespace fastq {
namespace {

std::string escaped_controls(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (const char ch : in) {
    const auto b = static_cast<unsigned char>(ch);
    if (b >= 0x20 && b != 0x7F) {
      out += ch;
      continue;
    }
    switch (ch) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\0': out += ch; break;  // storable_text makes it U+FFFD
      default: {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", b);
        out += buf;
      }
    }
  }
  return out;
}

std::string head(const JobLogSubject& job) {
  return "job " + log_text(job.id, 64) + " " + log_text(job.task, kLogTaskBytes);
}

std::string attempt_of(const JobLogSubject& job) {
  return "(attempt " + std::to_string(job.attempt) + "/" + std::to_string(job.max_attempts) +
         ")";
}

std::string error_of(const Completion& c) {
  std::string type = log_text(c.error_type.empty() ? "Exception" : c.error_type, 255);
  if (c.error.empty()) return type;
  return type + ": " + log_text(c.error, kLogMessageBytes);
}

std::string utc_text(Micros t) {
  std::string s = format_utc(t);  // "YYYY-MM-DD HH:MM:SS.ffffff"
  if (s.size() > 23) s.resize(23);  // milliseconds
  return s + "Z";
}

}  // namespace

std::string log_text(std::string_view in, std::size_t max_bytes) {
  // Escaping only lengthens the text: the first max_bytes bytes are all it can keep, so a
  // 10 MB message is never copied whole.
  const std::string_view part = in.substr(0, max_bytes);
  std::string text = storable_text(escaped_controls(part), std::string::npos);
  if (text.size() <= max_bytes && part.size() == in.size()) return text;
  const std::string marker =
      "\xE2\x80\xA6 [" + std::to_string(in.size()) + " bytes in all]";
  std::size_t keep = max_bytes > marker.size() ? max_bytes - marker.size() : 0;
  keep = std::min(keep, text.size());
  // Cut on a character boundary (text is valid UTF-8 here).
  while (keep > 0 && keep < text.size() &&
         (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) {
    --keep;
  }
  text.resize(keep);
  return text + marker;
}

std::optional<JobLogLine> outcome_line(const JobLogSubject& job, const Completion& c,
                                       bool log_jobs, Micros now) {
  const bool time_limit = c.error_type == kTimeLimitType;
  switch (c.outcome) {
    case Outcome::kSucceeded: {
      if (!log_jobs) return std::nullopt;
      std::string took;
      if (c.started_at > 0 && now >= c.started_at) {
        char buf[32];
        std::snprintf(buf, sizeof buf, " in %.3fs", static_cast<double>(now - c.started_at) / 1e6);
        took = buf;
      }
      return JobLogLine{LogLevel::kInfo, head(job) + " succeeded" + took + " " + attempt_of(job)};
    }
    case Outcome::kCancelled:
      if (!log_jobs) return std::nullopt;
      return JobLogLine{LogLevel::kInfo,
                        head(job) + " cancelled " + attempt_of(job) + ": " + error_of(c)};
    case Outcome::kExpired:
      return JobLogLine{LogLevel::kWarning,
                        head(job) + " expired " + attempt_of(job) + ": " + error_of(c)};
    case Outcome::kRetry:
      return JobLogLine{LogLevel::kWarning,
                        head(job) + (time_limit ? " ran past its time limit, will retry at "
                                                : " will retry at ") +
                            utc_text(c.retry_at) + " " + attempt_of(job) + ": " + error_of(c)};
    case Outcome::kFailed:
      return JobLogLine{LogLevel::kError, head(job) + (time_limit ? " ran past its time limit and failed "
                                                                  : " failed ") +
                                              attempt_of(job) + ": " + error_of(c)};
    case Outcome::kDead:
      return JobLogLine{LogLevel::kError, head(job) + (time_limit ? " ran past its time limit and is dead "
                                                                  : " is dead ") +
                                              attempt_of(job) + ": " + error_of(c)};
  }
  return std::nullopt;
}

std::string started_line(const JobLogSubject& job) {
  return head(job) + " started " + attempt_of(job);
}

std::optional<std::string> traceback_line(const JobLogSubject& job, const Completion& c) {
  if (c.traceback.empty()) return std::nullopt;
  // The traceback keeps its lines; only what could harm a log is repaired and bounded.
  return head(job) + " traceback " + attempt_of(job) + ":\n" +
         storable_text(c.traceback, kLogTracebackBytes);
}

}  // namespace fastq
