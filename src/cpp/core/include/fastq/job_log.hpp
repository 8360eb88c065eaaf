// The worker's log lines about single jobs (logger `fastq.worker` in Python): one line per
// job that failed, will be retried, is dead, expired or ran past its time limit, at
// WARNING or ERROR; per job started and succeeded (and cancelled) only when asked
// (WorkerConfig::log_jobs, `fastq_worker --log-jobs`), at INFO; the traceback at DEBUG.
//
//   job 0193...  shop.tasks.charge failed (attempt 1/4): ValueError: card declined
//   job 0193...  shop.tasks.sync will retry at 2026-11-30 07:01:02.123Z (attempt 1/4):
//       ConnectionError: provider down                          (one line, wrapped here)
//
// Every line is one line of valid UTF-8 whatever the job held: control characters are
// escaped (a newline in a message is written \n), invalid UTF-8 and NUL become U+FFFD,
// and the task name and the message are cut (the traceback too, at DEBUG), so that a
// hostile or runaway exception message can neither split, lose nor bloat a log line.
// Pure functions: the worker and the supervisor call them, tests call them directly.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "fastq/types.hpp"
#include "fastq/worker.hpp"

namespace fastq {

inline constexpr std::size_t kLogTaskBytes = 255;
inline constexpr std::size_t kLogMessageBytes = 2000;
inline constexpr std::size_t kLogTracebackBytes = 64 << 10;

// What the log says about one job (copied out of the claimed row).
struct JobLogSubject {
  std::string_view id;
  std::string_view task;
  int attempt = 0;
  int max_attempts = 0;
};

struct JobLogLine {
  LogLevel level = LogLevel::kInfo;
  std::string text;
};

// `in` on one line: C0 controls and DEL escaped (\n, \r, \t, \xHH), valid UTF-8 (NUL and
// invalid sequences as U+FFFD), at most `max_bytes` bytes plus a marker saying how long
// it was.
std::string log_text(std::string_view in, std::size_t max_bytes);

// The line for outcome `c` of `job`, or nullopt when nothing is logged for it: succeeded
// and cancelled jobs are logged (INFO) only with `log_jobs`. `now` (wall clock) gives a
// succeeded job's run time from c.started_at.
std::optional<JobLogLine> outcome_line(const JobLogSubject& job, const Completion& c,
                                       bool log_jobs, Micros now);

// "job <id> <task> started (attempt a/m)" (INFO, with log_jobs).
std::string started_line(const JobLogSubject& job);

// The DEBUG line carrying the traceback of a failed or retried attempt, or nullopt when
// the outcome has none.
std::optional<std::string> traceback_line(const JobLogSubject& job, const Completion& c);

}  // namespace fastq
