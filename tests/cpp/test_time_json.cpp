#include <gtest/gtest.h>

#include <limits>
#include <set>

#include "fastq/json.hpp"
#include "fastq/json_dom.hpp"
#include "fastq/rate.hpp"
#include "fastq/time.hpp"

namespace fastq {

TEST(Time, FormatsLikeDjangoSqlite) {
  EXPECT_EQ(format_utc(0), "1970-01-01 00:00:00.000000");
  EXPECT_EQ(format_utc(1'700'000'000'123'456), "2023-11-14 22:13:20.123456");
  // Outside years 0001-9999: clamped to the ends, never undefined arithmetic.
  EXPECT_EQ(format_utc(std::numeric_limits<Micros>::min()), "0001-01-01 00:00:00.000000");
  EXPECT_EQ(format_utc(std::numeric_limits<Micros>::max()), "9999-12-31 23:59:59.999999");
  EXPECT_EQ(parse_utc(format_utc(-62'135'596'800'000'000)), -62'135'596'800'000'000);
}

TEST(Time, ParsesWhatDjangoAndPostgresWrite) {
  EXPECT_EQ(parse_utc("2023-11-14 22:13:20.123456"), 1'700'000'000'123'456);
  EXPECT_EQ(parse_utc("2023-11-14 22:13:20"), 1'700'000'000'000'000);
  EXPECT_EQ(parse_utc("2023-11-14T22:13:20.5+00"), 1'700'000'000'500'000);
  EXPECT_EQ(parse_utc("2023-11-14 22:13:20.1234567Z"), 1'700'000'000'123'456);
  EXPECT_FALSE(parse_utc("2023-13-14 22:13:20"));
  EXPECT_FALSE(parse_utc("yesterday"));
  EXPECT_FALSE(parse_utc("2023-11-14 22:13:20+05"));
}

TEST(Time, RoundTrips) {
  for (Micros t : {Micros{0}, Micros{1}, Micros{951'782'400'000'001}, now_micros()}) {
    EXPECT_EQ(parse_utc(format_utc(t)), t);
  }
}

TEST(Ids, AreUuidV7AndTimeOrdered) {
  std::set<std::string> seen;
  std::string prev;
  for (int i = 0; i < 1000; ++i) {
    auto id = new_job_id();
    ASSERT_EQ(id.size(), 36u);
    EXPECT_EQ(id[14], '7');
    EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
    EXPECT_GE(id.substr(0, 13), prev.substr(0, std::min<std::size_t>(13, prev.size())));
    prev = id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Tokens, AreNonZeroAndDistinct) {
  std::set<std::int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    auto t = new_lease_token();
    EXPECT_GT(t, 0);
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Json, EscapesStrings) {
  std::string out;
  append_json_string(out, "a\"b\\c\nd\x01");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\nd\\u0001\"");
}

TEST(Json, ValidatesPayloads) {
  EXPECT_FALSE(validate_payload("[1, \"x\"]", "{\"a\": null}", 1 << 20));
  EXPECT_EQ(*validate_payload("{", "{}", 1 << 20).value().data(), 'a');
  EXPECT_NE(validate_payload("{", "{}", 1 << 20)->find("args is not valid JSON"),
            std::string::npos);
  EXPECT_EQ(validate_payload("{}", "{}", 1 << 20), "args must be a JSON array");
  EXPECT_EQ(validate_payload("[]", "[]", 1 << 20), "kwargs must be a JSON object");
  EXPECT_NE(validate_payload("[]", "{\"a\":", 1 << 20)->find("kwargs is not valid JSON"),
            std::string::npos);
  EXPECT_NE(validate_payload("[\"0123456789\"]", "{}", 8)->find("exceeds the limit"),
            std::string::npos);
}

}  // namespace fastq

namespace fastq {
namespace {

TEST(EnvelopeTest, RejectsWhatMustNotRunWithItsReason) {
  const std::unordered_set<std::string> registered{"app.tasks.ok"};
  ClaimedJob j;
  j.task = "app.tasks.ok";
  j.args = "[1]";
  j.kwargs = "{}";
  EXPECT_FALSE(check_envelope(j, registered, 100));
  j.envelope = 99;
  auto r = check_envelope(j, registered, 100);
  ASSERT_TRUE(r);
  EXPECT_STREQ(r->type, "fastq.UnknownEnvelope");
  EXPECT_NE(r->message.find("99"), std::string::npos);
  j.envelope = kEnvelopeVersion;
  j.task = "app.tasks.nope";
  EXPECT_STREQ(check_envelope(j, registered, 100)->type, "fastq.UnknownTask");
  j.task = "app.tasks.ok";
  j.args = "[\"" + std::string(200, 'x') + "\"]";
  EXPECT_STREQ(check_envelope(j, registered, 100)->type, "fastq.PayloadTooLarge");
  j.args = "[1,";
  EXPECT_STREQ(check_envelope(j, registered, 100)->type, "fastq.InvalidPayload");
}

TEST(EnvelopeTest, ThePayloadItPassedIsHandedToTheRunnerOnce) {
  const std::unordered_set<std::string> registered{"app.tasks.ok"};
  ClaimedJob j;
  j.id = "0190f8a0-0000-7000-8000-000000000001";
  j.task = "app.tasks.ok";
  j.args = R"([1,"x",{"deep":[true,null]}])";
  j.kwargs = R"({"a":2,"b":"\u00e9"})";
  ASSERT_FALSE(check_envelope(j, registered, 1000));
  auto parsed = take_parsed_payload(j);
  ASSERT_TRUE(parsed);
  ASSERT_TRUE(parsed->args.is_array());
  EXPECT_EQ(parsed->args.get_array().size(), 3u);
  EXPECT_EQ(int64_t(parsed->args.at(0)), 1);
  EXPECT_EQ(std::string_view(parsed->args.at(1)), "x");
  EXPECT_EQ(int64_t(parsed->kwargs["a"]), 2);
  EXPECT_EQ(std::string_view(parsed->kwargs["b"]), "\xc3\xa9");
  EXPECT_FALSE(take_parsed_payload(j)) << "handed over once";

  // Another object with the same fields, or the same object with another id: not it.
  ASSERT_FALSE(check_envelope(j, registered, 1000));
  ClaimedJob copy = j;
  EXPECT_FALSE(take_parsed_payload(copy));
  ClaimedJob other = j;
  other.id = "0190f8a0-0000-7000-8000-000000000002";
  ASSERT_FALSE(check_envelope(other, registered, 1000));
  other.id = j.id;
  EXPECT_FALSE(take_parsed_payload(other));
  EXPECT_FALSE(take_parsed_payload(j)) << "a later check supersedes an earlier one";

  // A later check that refuses its job, before or after parsing, leaves nothing.
  ASSERT_FALSE(check_envelope(j, registered, 1000));
  other.id = "0190f8a0-0000-7000-8000-000000000003";
  other.task = "app.tasks.nope";
  ASSERT_TRUE(check_envelope(other, registered, 1000));
  EXPECT_FALSE(take_parsed_payload(j));
  ASSERT_FALSE(check_envelope(j, registered, 1000));
  other.task = "app.tasks.ok";
  other.kwargs = "{\"a\":";
  ASSERT_TRUE(check_envelope(other, registered, 1000));
  EXPECT_FALSE(take_parsed_payload(j));
  EXPECT_FALSE(take_parsed_payload(other));
}

TEST(RowBoundsTest, ARowOutsideTheTablesBoundsIsInvalid) {
  ClaimedJob j;
  j.id = new_job_id();
  j.attempts = 1;
  j.max_attempts = 4;
  EXPECT_FALSE(check_row_bounds(j));
  j.attempts = 4;
  EXPECT_FALSE(check_row_bounds(j)) << "the last attempt is within bounds";
  j.time_limit = kMaxTimeLimitSeconds;
  EXPECT_FALSE(check_row_bounds(j));
  auto invalid = [](ClaimedJob job) {
    auto r = check_row_bounds(job);
    return r && std::string(r->type) == "fastq.InvalidJob" && !r->message.empty();
  };
  for (int attempts : {0, -1, 5, kAttemptsCeiling, std::numeric_limits<int>::max(),
                       std::numeric_limits<int>::min()}) {
    ClaimedJob k = j;
    k.attempts = attempts;
    EXPECT_TRUE(invalid(k)) << attempts;
  }
  for (int max : {0, -5, kMaxAttemptsLimit + 1, std::numeric_limits<int>::max()}) {
    ClaimedJob k = j;
    k.max_attempts = max;
    EXPECT_TRUE(invalid(k)) << max;
  }
  for (double limit : {-1.0, 1e300, std::numeric_limits<double>::quiet_NaN(),
                       std::numeric_limits<double>::infinity()}) {
    ClaimedJob k = j;
    k.time_limit = limit;
    EXPECT_TRUE(invalid(k)) << limit;
    k = j;
    k.soft_time_limit = limit;
    EXPECT_TRUE(invalid(k)) << limit;
  }
  for (const char* id : {"", "42", "not-a-uuid", "0190c3c2-7d1e-7abc-8def-0123456789ag",
                         "0190c3c27d1e7abc8def0123456789ab"}) {
    ClaimedJob k = j;
    k.id = id;
    EXPECT_TRUE(invalid(k)) << id;
  }
  EXPECT_TRUE(is_uuid_text("0190C3C2-7D1E-7ABC-8DEF-0123456789AB"));
}

TEST(RateTest, GcraReservesTokensWithinTheHorizon) {
  Micros tat = 0;
  const Micros now = 1'000'000'000;
  // 10 tokens/s, burst 1, 1 s horizon: 11 tokens (0 ms .. 1000 ms).
  auto g = gcra_reserve(tat, now, 100'000, 1, 50, 1'000'000);
  EXPECT_EQ(g.granted, 11);
  EXPECT_EQ(g.base_delay, 0);
  EXPECT_EQ(tat, now + 11 * 100'000);
  // Asked again at once: the next token is 1.1 s away, beyond a 1 s horizon.
  auto h = gcra_reserve(tat, now, 100'000, 1, 5, 1'000'000);
  EXPECT_EQ(h.granted, 0);
  EXPECT_EQ(h.base_delay, 1'100'000);
  // Burst 5 after a long pause: 5 usable at once.
  Micros idle = 0;
  auto b = gcra_reserve(idle, now, 100'000, 5, 5, 0);
  EXPECT_EQ(b.granted, 5);
  EXPECT_LT(b.base_delay, 0);
  EXPECT_EQ(parse_rate("20/s"), 50'000);
  EXPECT_EQ(parse_rate("120/m"), 500'000);
  EXPECT_EQ(parse_rate("2/h"), 1'800'000'000);
  EXPECT_FALSE(parse_rate("20/d"));
  EXPECT_FALSE(parse_rate("x/s"));
  EXPECT_FALSE(parse_rate("0/s"));
}

}  // namespace
}  // namespace fastq
