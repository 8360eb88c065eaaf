// The worker's per-job log lines (fastq/job_log.hpp): what each outcome says, and that a
// hostile message never splits, loses or bloats a line.
#include <gtest/gtest.h>

#include <string>

#include "fastq/job_log.hpp"
#include "fastq/outcome.hpp"
#include "fastq/time.hpp"

namespace fastq {
namespace {

const JobLogSubject kJob{"0193a000-0000-7000-8000-000000000001", "shop.tasks.charge", 1, 4};

Completion outcome(Outcome o, std::string type = "", std::string error = "") {
  Completion c;
  c.id = std::string(kJob.id);
  c.outcome = o;
  c.error_type = std::move(type);
  c.error = std::move(error);
  return c;
}

bool valid_utf8_one_line(const std::string& s) {
  if (s.find('\n') != std::string::npos || s.find('\r') != std::string::npos) return false;
  if (s.find('\0') != std::string::npos) return false;
  return storable_text(s, s.size() + 1) == s;
}

TEST(JobLog, FailedIsAnErrorWithTypeMessageAndAttempt) {
  auto line = outcome_line(kJob, outcome(Outcome::kFailed, "ValueError", "card declined"), false, 0);
  ASSERT_TRUE(line);
  EXPECT_EQ(line->level, LogLevel::kError);
  EXPECT_EQ(line->text,
            "job 0193a000-0000-7000-8000-000000000001 shop.tasks.charge failed (attempt 1/4): "
            "ValueError: card declined");
}

TEST(JobLog, RetryIsAWarningWithTheNextRunTime) {
  Completion c = outcome(Outcome::kRetry, "ConnectionError", "provider down");
  c.retry_at = *parse_utc("2026-11-30 07:01:02.123456");
  auto line = outcome_line(kJob, c, false, 0);
  ASSERT_TRUE(line);
  EXPECT_EQ(line->level, LogLevel::kWarning);
  EXPECT_EQ(line->text,
            "job 0193a000-0000-7000-8000-000000000001 shop.tasks.charge will retry at "
            "2026-11-30 07:01:02.123Z (attempt 1/4): ConnectionError: provider down");
}

TEST(JobLog, DeadExpiredAndTimeLimit) {
  auto dead = outcome_line(kJob, outcome(Outcome::kDead, "fastq.UnknownTask", "not registered"),
                           false, 0);
  ASSERT_TRUE(dead);
  EXPECT_EQ(dead->level, LogLevel::kError);
  EXPECT_NE(dead->text.find(" is dead (attempt 1/4): fastq.UnknownTask: not registered"),
            std::string::npos);

  auto expired = outcome_line(kJob, outcome(Outcome::kExpired, "fastq.Expired", "too late"),
                              false, 0);
  ASSERT_TRUE(expired);
  EXPECT_EQ(expired->level, LogLevel::kWarning);
  EXPECT_NE(expired->text.find(" expired (attempt 1/4): fastq.Expired: too late"),
            std::string::npos);

  Completion t = outcome(Outcome::kRetry, kTimeLimitType, "timeout");
  t.retry_at = 0;
  auto limited = outcome_line(kJob, t, false, 0);
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->level, LogLevel::kWarning);
  EXPECT_NE(limited->text.find(" ran past its time limit, will retry at "), std::string::npos);
  t.outcome = Outcome::kDead;
  auto limited_dead = outcome_line(kJob, t, false, 0);
  ASSERT_TRUE(limited_dead);
  EXPECT_EQ(limited_dead->level, LogLevel::kError);
  EXPECT_NE(limited_dead->text.find(" ran past its time limit and is dead (attempt 1/4): "
                                    "fastq.TimeLimitExceeded: timeout"),
            std::string::npos);
}

TEST(JobLog, SucceededAndCancelledOnlyWhenAsked) {
  Completion ok = outcome(Outcome::kSucceeded);
  ok.started_at = 1'000'000;
  EXPECT_FALSE(outcome_line(kJob, ok, false, 1'250'000));
  auto line = outcome_line(kJob, ok, true, 1'250'000);
  ASSERT_TRUE(line);
  EXPECT_EQ(line->level, LogLevel::kInfo);
  EXPECT_EQ(line->text,
            "job 0193a000-0000-7000-8000-000000000001 shop.tasks.charge succeeded in 0.250s "
            "(attempt 1/4)");
  Completion cancelled = outcome(Outcome::kCancelled, kCancelledType, "cancelled");
  EXPECT_FALSE(outcome_line(kJob, cancelled, false, 0));
  ASSERT_TRUE(outcome_line(kJob, cancelled, true, 0));
  EXPECT_EQ(started_line(kJob),
            "job 0193a000-0000-7000-8000-000000000001 shop.tasks.charge started (attempt 1/4)");
}

TEST(JobLog, HostileMessagesStayOneBoundedValidLine) {
  std::string hostile = "a\nb\r\tc";
  hostile += '\0';
  hostile += "\xED\xA0\x80";  // an encoded lone surrogate
  hostile += "\xFF\x1B[31m";  // an invalid byte and an escape sequence
  auto line = outcome_line(kJob, outcome(Outcome::kFailed, "Evil\nType", hostile), false, 0);
  ASSERT_TRUE(line);
  EXPECT_TRUE(valid_utf8_one_line(line->text)) << line->text;
  EXPECT_NE(line->text.find("Evil\\nType: a\\nb\\r\\tc"), std::string::npos) << line->text;
  EXPECT_NE(line->text.find("\\x1b[31m"), std::string::npos) << line->text;

  const std::string huge(10u << 20, 'x');
  auto big = outcome_line(kJob, outcome(Outcome::kFailed, "ValueError", huge), false, 0);
  ASSERT_TRUE(big);
  EXPECT_LE(big->text.size(), kLogMessageBytes + 200);
  EXPECT_NE(big->text.find("[10485760 bytes in all]"), std::string::npos);
  EXPECT_TRUE(valid_utf8_one_line(big->text));

  // Multi-byte characters are never cut in half at the bound.
  std::string wide;
  for (int i = 0; i < 3000; ++i) wide += "\xE2\x82\xAC";  // €
  EXPECT_TRUE(valid_utf8_one_line(log_text(wide, 100)));
  EXPECT_LE(log_text(wide, 100).size(), 100u);
}

TEST(JobLog, TracebackLineKeepsLinesAndIsBounded) {
  Completion c = outcome(Outcome::kFailed, "ValueError", "x");
  EXPECT_FALSE(traceback_line(kJob, c));
  c.traceback = "Traceback (most recent call last):\n  File \"t.py\", line 1\nValueError: x\n";
  auto tb = traceback_line(kJob, c);
  ASSERT_TRUE(tb);
  EXPECT_NE(tb->find("traceback (attempt 1/4):\nTraceback (most recent call last):\n"),
            std::string::npos);
  c.traceback = std::string(1u << 20, 'y');
  EXPECT_LE(traceback_line(kJob, c)->size(), kLogTracebackBytes + 200);
}

}  // namespace
}  // namespace fastq
