// Storable outcomes and the isolating outcome writer (outcome.hpp): pure functions, and
// write_outcomes over a job store whose complete() refuses chosen outcomes.
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>

#include "fastq/outcome.hpp"

namespace fastq {
namespace {

bool valid_utf8_without_nul(const std::string& s) { return storable_text(s, s.size() + 1) == s; }

TEST(StorableText, KeepsCleanTextAsItIs) {
  EXPECT_EQ(storable_text("plain ascii", 100), "plain ascii");
  EXPECT_EQ(storable_text("caf\xC3\xA9 \xF0\x9F\x98\x80", 100), "caf\xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_EQ(storable_text("", 0), "");
}

TEST(StorableText, ReplacesNulAndInvalidBytes) {
  EXPECT_EQ(storable_text(std::string("a\0b", 3), 100), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(storable_text("\xFF\xFE", 100), "\xEF\xBF\xBD\xEF\xBF\xBD");
  // An encoded lone surrogate (what Python's surrogatepass writes), an overlong NUL, a
  // truncated sequence and a code point past U+10FFFF.
  EXPECT_EQ(storable_text("x\xED\xB2\x80y", 100), "x\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDy");
  EXPECT_TRUE(valid_utf8_without_nul(storable_text("\xC0\x80", 100)));
  EXPECT_TRUE(valid_utf8_without_nul(storable_text("ab\xE2\x82", 100)));
  EXPECT_TRUE(valid_utf8_without_nul(storable_text("\xF4\x90\x80\x80", 100)));
}

TEST(StorableText, CutsLongTextOnACharacterBoundaryWithAMarker) {
  std::string big;
  for (int i = 0; i < 10000; ++i) big += "\xC3\xA9";  // 20,000 bytes of two-byte characters
  const std::string out = storable_text(big, 1001);
  EXPECT_LE(out.size(), 1001u);
  EXPECT_TRUE(valid_utf8_without_nul(out));
  EXPECT_NE(out.find("[truncated by fastq: 20000 bytes in all]"), std::string::npos);
}

TEST(StorableChars, BoundsByCharactersNotBytes) {
  std::string name;
  for (int i = 0; i < 300; ++i) name += "\xC3\xA9";
  const std::string out = storable_chars(name, 255);
  EXPECT_EQ(out.size(), 254u * 2 + 3);  // 254 characters and an ellipsis
  EXPECT_TRUE(out.ends_with("\xE2\x80\xA6"));
  EXPECT_EQ(storable_chars(std::string(255, 'E'), 255), std::string(255, 'E'));
}

Completion failure(std::string type, std::string error, std::string tb) {
  Completion c;
  c.id = "j";
  c.lease_token = 7;
  c.outcome = Outcome::kFailed;
  c.error_type = std::move(type);
  c.error = std::move(error);
  c.traceback = std::move(tb);
  return c;
}

TEST(SanitizeOutcome, MakesEveryFieldStorable) {
  Completion c = failure(std::string(300, 'E'), std::string("x\0y", 3) + std::string(1 << 20, 'm'),
                         "\xFF" + std::string(1 << 20, 't'));
  const OutcomeLimits limits;
  EXPECT_TRUE(sanitize_outcome(c, limits));
  EXPECT_EQ(c.outcome, Outcome::kFailed);
  EXPECT_EQ(c.id, "j");
  EXPECT_EQ(c.lease_token, 7);
  EXPECT_EQ(storable_chars(c.error_type, 255), c.error_type);
  EXPECT_LE(c.error.size(), limits.max_error_bytes);
  EXPECT_LE(c.traceback.size(), limits.max_traceback_bytes);
  EXPECT_TRUE(valid_utf8_without_nul(c.error));
  EXPECT_TRUE(valid_utf8_without_nul(c.traceback));
  EXPECT_FALSE(sanitize_outcome(c, limits)) << "a sanitised outcome stays as it is";
}

TEST(SanitizeOutcome, AResultOverTheLimitFailsTheJob) {
  Completion c;
  c.id = "j";
  c.lease_token = 3;
  c.result = "\"" + std::string(2000, 'r') + "\"";
  OutcomeLimits limits;
  limits.max_result_bytes = 1000;
  EXPECT_TRUE(sanitize_outcome(c, limits));
  EXPECT_EQ(c.outcome, Outcome::kFailed);
  EXPECT_STREQ(c.error_type.c_str(), kResultTooLargeType);
  EXPECT_TRUE(c.result.empty());
  EXPECT_EQ(c.lease_token, 3);

  Completion ok;
  ok.result = "[1,2]";
  EXPECT_FALSE(sanitize_outcome(ok, limits));
  EXPECT_EQ(ok.outcome, Outcome::kSucceeded);
}

// A store that refuses outcomes whose error is "refuse" (permanently) and, while
// `transient_after` is reached, fails transiently; otherwise it counts what it wrote.
class RefusingStore final : public JobStore {
 public:
  std::set<std::string> written;
  int statements = 0;
  int transient_after = -1;  // fail transiently from this statement on

  std::size_t complete(std::span<const Completion> done) override {
    if (transient_after >= 0 && statements >= transient_after) {
      throw DriverError("connection lost", true);
    }
    ++statements;
    for (const auto& c : done) {
      if (c.error == "refuse") throw DriverError("check constraint violated", false);
    }
    for (const auto& c : done) written.insert(c.id + ":" + c.error_type);
    return done.size();
  }
  // The rest of the job store is not what write_outcomes uses: each refuses, loudly.
  std::vector<std::string> enqueue(std::span<const NewJob>) override { throw unused(); }
  std::vector<ClaimedJob> claim(const ClaimRequest&) override { throw unused(); }
  std::size_t quarantine(const ClaimRequest&, const std::string&) override { throw unused(); }
  std::size_t renew(std::span<const JobRef>, std::chrono::milliseconds, std::vector<std::string>*,
                    std::vector<std::string>*) override {
    throw unused();
  }
  std::size_t release(std::span<const JobRef>) override { throw unused(); }
  std::size_t mark_started(std::span<const StartMark>) override { throw unused(); }
  std::size_t interrupt(std::span<const JobRef>) override { throw unused(); }
  std::size_t release_claim(std::int64_t) override { throw unused(); }
  std::size_t defer(std::span<const Deferral>) override { throw unused(); }
  std::size_t rescue_expired() override { throw unused(); }
  CancelResult cancel(const std::string&) override { throw unused(); }
  std::vector<std::string> enqueue_workflow(std::span<const NewJob>,
                                            std::span<const Dependency>) override {
    throw unused();
  }
  std::size_t cancel_workflow(const std::string&) override { throw unused(); }
  std::size_t count_runnable(std::span<const std::string>) override { throw unused(); }
  std::optional<JobRecord> get(const std::string&) override { throw unused(); }
  PruneResult prune_jobs(const PruneRequest&) override { throw unused(); }

 private:
  static std::logic_error unused() { return std::logic_error("write_outcomes called this"); }
};

std::vector<Completion> batch_of(int n, std::set<int> refused) {
  std::vector<Completion> out;
  for (int i = 0; i < n; ++i) {
    Completion c = failure("T", refused.contains(i) ? "refuse" : "fine", "");
    c.id = "j" + std::to_string(i);
    out.push_back(std::move(c));
  }
  return out;
}

TEST(WriteOutcomes, WritesABatchInOneStatement) {
  RefusingStore d;
  auto batch = batch_of(100, {});
  const WriteReport r = write_outcomes(d, batch);
  EXPECT_EQ(r.written, 100u);
  EXPECT_EQ(r.settled, 100u);
  EXPECT_EQ(r.statements, 1u);
  EXPECT_TRUE(r.transient_error.empty());
}

TEST(WriteOutcomes, ARefusedOutcomeCostsOnlyItsOwnJob) {
  RefusingStore d;
  auto batch = batch_of(512, {3, 400});
  const WriteReport r = write_outcomes(d, batch);
  EXPECT_EQ(r.settled, 512u);
  EXPECT_EQ(r.written, 512u);  // 510 outcomes and 2 failure notes
  EXPECT_EQ(r.isolated, 2u);
  EXPECT_EQ(r.dropped, 0u);
  EXPECT_EQ(r.problems.size(), 2u);
  EXPECT_TRUE(d.written.contains("j3:fastq.OutcomeNotStored"));
  EXPECT_TRUE(d.written.contains("j400:fastq.OutcomeNotStored"));
  EXPECT_TRUE(d.written.contains("j0:T"));
  EXPECT_TRUE(d.written.contains("j511:T"));
  EXPECT_EQ(d.written.size(), 512u);
  // Halving finds each refused outcome in about 2 log2(n) statements, not n.
  EXPECT_LT(r.statements, 50u);
}

TEST(WriteOutcomes, ATransientErrorKeepsExactlyTheUnwrittenOutcomes) {
  RefusingStore d;
  d.transient_after = 3;  // the refused outcome's halving is interrupted
  auto batch = batch_of(64, {40});
  const WriteReport r = write_outcomes(d, batch);
  EXPECT_FALSE(r.transient_error.empty());
  ASSERT_EQ(batch.size(), 64u);
  for (std::size_t i = 0; i < r.settled; ++i) {
    EXPECT_TRUE(d.written.contains(batch[i].id + ":T")) << batch[i].id;
  }
  for (std::size_t i = r.settled; i < batch.size(); ++i) {
    EXPECT_FALSE(d.written.contains(batch[i].id + ":T")) << batch[i].id;
  }
  EXPECT_GT(r.settled, 0u);
  EXPECT_LT(r.settled, 64u);
}

}  // namespace
}  // namespace fastq

namespace fastq {
namespace {

Completion done_for(std::string id, std::int64_t token, Micros started_at = 0) {
  Completion c;
  c.id = std::move(id);
  c.lease_token = token;
  c.started_at = started_at;
  return c;
}

TEST(StartMarks, MarksOfJobsWithoutAnOutcomeInTheFlushAreWritten) {
  std::vector<StartMark> marks{{"a", 1, 100}, {"b", 1, 200}, {"c", 2, 300}};
  std::vector<Completion> outcomes;
  const auto out = marks_to_write(marks, outcomes);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].id, "a");
  EXPECT_EQ(out[2].id, "c");
}

TEST(StartMarks, AnOutcomeInTheSameFlushCarriesTheStartInstead) {
  std::vector<StartMark> marks{{"a", 1, 100}, {"b", 1, 200}, {"c", 2, 300}};
  std::vector<Completion> outcomes{done_for("b", 1), done_for("c", 2, 250), done_for("z", 9)};
  const auto out = marks_to_write(marks, outcomes);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, "a");
  EXPECT_EQ(outcomes[0].started_at, 200) << "filled from the mark";
  EXPECT_EQ(outcomes[1].started_at, 250) << "the executor's own note stands";
  EXPECT_EQ(outcomes[2].started_at, 0) << "never started (rejected, expired, cancelled)";
}

TEST(StartMarks, ANoOpDrainWritesNoMarkStatement) {
  std::vector<StartMark> marks{{"a", 1, 100}, {"b", 1, 200}};
  std::vector<Completion> outcomes{done_for("a", 1, 100), done_for("b", 1, 200)};
  EXPECT_TRUE(marks_to_write(marks, outcomes).empty());
  EXPECT_TRUE(marks_to_write({}, outcomes).empty());
}

TEST(StartMarks, AnOutcomeOfAnotherClaimOfTheJobDoesNotCoverItsMark) {
  // Rescued from this worker and claimed by it again: the old attempt's outcome (fenced
  // off anyway) says nothing about the new attempt's start.
  std::vector<StartMark> marks{{"a", 2, 100}};
  std::vector<Completion> outcomes{done_for("a", 1)};
  const auto out = marks_to_write(marks, outcomes);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(outcomes[0].started_at, 0);
}

}  // namespace
}  // namespace fastq
