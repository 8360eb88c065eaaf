#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "fastq/cron.hpp"
#include "fastq/time.hpp"

namespace fastq {
namespace {

using std::chrono::microseconds;
using std::chrono::seconds;

UtcMicros at(std::string_view utc_text) {
  const auto m = parse_utc(utc_text);
  EXPECT_TRUE(m) << utc_text;
  return UtcMicros{microseconds{m.value_or(0)}};
}

std::string text(UtcMicros t) {
  std::string s = format_utc(t.time_since_epoch().count());
  if (s.ends_with(".000000")) s.resize(s.size() - 7);
  return s;
}

std::string text(std::chrono::sys_seconds t) { return text(UtcMicros{t}); }

// The next `n` fire times after `after`, as UTC text.
std::vector<std::string> fires(std::string_view expr, std::string_view zone, std::string_view after,
                               int n) {
  const Cron cron(expr);
  const TimeZone tz(zone);
  std::vector<std::string> out;
  UtcMicros t = at(after);
  for (int i = 0; i < n; ++i) {
    const auto next = cron.next_after(t, tz);
    out.push_back(text(next));
    t = next;
  }
  return out;
}

std::string next(std::string_view expr, std::string_view after, std::string_view zone = "UTC") {
  return text(Cron(expr).next_after(at(after), zone));
}

std::string error_of(std::string_view expr) {
  try {
    const Cron cron(expr);
  } catch (const CronError& e) {
    return e.what();
  }
  return "(no error)";
}

using Times = std::vector<std::string>;

// --- parsing -----------------------------------------------------------------------------

TEST(CronParse, StepsListsAndRanges) {
  EXPECT_EQ(fires("*/20 * * * *", "UTC", "2026-01-01 00:00:00", 4),
            (Times{"2026-01-01 00:20:00", "2026-01-01 00:40:00", "2026-01-01 01:00:00",
                   "2026-01-01 01:20:00"}));
  EXPECT_EQ(fires("5/15 * * * *", "UTC", "2026-01-01 00:00:00", 5),
            (Times{"2026-01-01 00:05:00", "2026-01-01 00:20:00", "2026-01-01 00:35:00",
                   "2026-01-01 00:50:00", "2026-01-01 01:05:00"}));
  EXPECT_EQ(fires("0 1-23/10 * * *", "UTC", "2026-01-01 00:00:00", 4),
            (Times{"2026-01-01 01:00:00", "2026-01-01 11:00:00", "2026-01-01 21:00:00",
                   "2026-01-02 01:00:00"}));
  EXPECT_EQ(fires("0,30 9-10 * * *", "UTC", "2026-01-01 00:00:00", 5),
            (Times{"2026-01-01 09:00:00", "2026-01-01 09:30:00", "2026-01-01 10:00:00",
                   "2026-01-01 10:30:00", "2026-01-02 09:00:00"}));
  EXPECT_EQ(fires("0 0 1,15 */4 *", "UTC", "2026-01-01 00:00:00", 4),
            (Times{"2026-01-15 00:00:00", "2026-05-01 00:00:00", "2026-05-15 00:00:00",
                   "2026-09-01 00:00:00"}));
}

TEST(CronParse, SecondsField) {
  const Cron every20("*/20 * * * * *");
  EXPECT_TRUE(every20.has_seconds());
  EXPECT_EQ(fires("*/20 * * * * *", "UTC", "2026-01-01 00:00:00", 4),
            (Times{"2026-01-01 00:00:20", "2026-01-01 00:00:40", "2026-01-01 00:01:00",
                   "2026-01-01 00:01:20"}));
  EXPECT_EQ(next("30 0 12 * * *", "2026-01-01 00:00:00"), "2026-01-01 12:00:30");
  // Five fields fire at second 0.
  EXPECT_FALSE(Cron("* * * * *").has_seconds());
  EXPECT_EQ(next("* * * * *", "2026-01-01 00:00:00.5"), "2026-01-01 00:01:00");
}

TEST(CronParse, MonthAndDayNamesAnyCase) {
  // 2026-01-01 is a Thursday.
  EXPECT_EQ(fires("0 9 * jan,Mar MON-fri", "UTC", "2026-01-29 12:00:00", 3),
            (Times{"2026-01-30 09:00:00", "2026-03-02 09:00:00", "2026-03-03 09:00:00"}));
  EXPECT_EQ(next("0 0 * FEB-feb *", "2026-01-01 00:00:00"), "2026-02-01 00:00:00");
  EXPECT_EQ(next("0 0 * JAN/3 *", "2026-01-31 12:00:00"), "2026-04-01 00:00:00");
}

TEST(CronParse, SundayIsZeroOrSeven) {
  const auto sunday = Times{"2026-01-04 00:00:00", "2026-01-11 00:00:00"};
  EXPECT_EQ(fires("0 0 * * 0", "UTC", "2026-01-01 00:00:00", 2), sunday);
  EXPECT_EQ(fires("0 0 * * 7", "UTC", "2026-01-01 00:00:00", 2), sunday);
  EXPECT_EQ(fires("0 0 * * SUN", "UTC", "2026-01-01 00:00:00", 2), sunday);
  EXPECT_EQ(fires("0 0 * * 5-7", "UTC", "2026-01-01 00:00:00", 4),
            (Times{"2026-01-02 00:00:00", "2026-01-03 00:00:00", "2026-01-04 00:00:00",
                   "2026-01-09 00:00:00"}));
}

TEST(CronParse, Macros) {
  EXPECT_EQ(next("@yearly", "2026-03-01 00:00:00"), "2027-01-01 00:00:00");
  EXPECT_EQ(next("@annually", "2026-03-01 00:00:00"), "2027-01-01 00:00:00");
  EXPECT_EQ(next("@monthly", "2026-03-01 00:00:00"), "2026-04-01 00:00:00");
  EXPECT_EQ(next("@weekly", "2026-01-01 00:00:00"), "2026-01-04 00:00:00");
  EXPECT_EQ(next("@daily", "2026-01-01 00:00:00"), "2026-01-02 00:00:00");
  EXPECT_EQ(next("@midnight", "2026-01-01 00:00:00"), "2026-01-02 00:00:00");
  EXPECT_EQ(next("@hourly", "2026-01-01 00:00:00"), "2026-01-01 01:00:00");
  EXPECT_EQ(next("  @DAILY ", "2026-01-01 00:00:00"), "2026-01-02 00:00:00");
  EXPECT_TRUE(Cron("@hourly").follows_elapsed_time());
  EXPECT_FALSE(Cron("@daily").follows_elapsed_time());
}

TEST(CronParse, ExpressionIsKeptTrimmed) {
  EXPECT_EQ(Cron("  */5  *\t* * *  ").expression(), "*/5  *\t* * *");
}

TEST(CronParse, ElapsedOrFixedFollowsTheFirstCharacter) {
  EXPECT_TRUE(Cron("*/5 * * * *").follows_elapsed_time());
  EXPECT_TRUE(Cron("0 * * * *").follows_elapsed_time());
  EXPECT_TRUE(Cron("*/10 2 * * *").follows_elapsed_time());
  EXPECT_TRUE(Cron("* 30 2 * * *").follows_elapsed_time());
  EXPECT_FALSE(Cron("30 2 * * *").follows_elapsed_time());
  EXPECT_FALSE(Cron("0 30 2 * * *").follows_elapsed_time());
  EXPECT_FALSE(Cron("0-59 0-23 * * *").follows_elapsed_time());  // as in cronie
}

TEST(CronParse, ErrorsNameTheFieldAndTheProblem) {
  EXPECT_EQ(error_of("*/5 25 * * *"), "cron \"*/5 25 * * *\": hour field: 25 is out of range 0-23");
  EXPECT_EQ(error_of("60 * * * *"), "cron \"60 * * * *\": minute field: 60 is out of range 0-59");
  EXPECT_EQ(error_of("61 * * * * *"),
            "cron \"61 * * * * *\": second field: 61 is out of range 0-59");
  EXPECT_EQ(error_of("* * 0 * *"),
            "cron \"* * 0 * *\": day-of-month field: 0 is out of range 1-31");
  EXPECT_EQ(error_of("* * * 13 *"), "cron \"* * * 13 *\": month field: 13 is out of range 1-12");
  EXPECT_EQ(error_of("* * * * 8"), "cron \"* * * * 8\": day-of-week field: 8 is out of range 0-7");
  EXPECT_EQ(error_of("* * * FOO *"),
            "cron \"* * * FOO *\": month field: \"FOO\" is not a number or a month name "
            "(JAN-DEC)");
  EXPECT_EQ(error_of("* * * * MOX"),
            "cron \"* * * * MOX\": day-of-week field: \"MOX\" is not a number or a day name "
            "(SUN-SAT)");
  EXPECT_EQ(error_of("* MON * * *"), "cron \"* MON * * *\": hour field: \"MON\" is not a number");
  EXPECT_EQ(error_of("*/0 * * * *"),
            "cron \"*/0 * * * *\": minute field: step 0 must be at least 1");
  EXPECT_EQ(error_of("0 */25 * * *"),
            "cron \"0 */25 * * *\": hour field: step 25 is larger than the 24 values of the "
            "field");
  EXPECT_EQ(error_of("*/x * * * *"),
            "cron \"*/x * * * *\": minute field: step \"x\" in \"*/x\" is not a number");
  EXPECT_EQ(error_of("1/2/3 * * * *"),
            "cron \"1/2/3 * * * *\": minute field: \"1/2/3\" has more than one step");
  EXPECT_EQ(error_of("/5 * * * *"),
            "cron \"/5 * * * *\": minute field: \"/5\" has no value before the step");
  EXPECT_EQ(error_of("0 0 * * FRI-MON"),
            "cron \"0 0 * * FRI-MON\": day-of-week field: range FRI-MON runs backwards (ranges "
            "do not wrap; use a list of two ranges)");
  EXPECT_EQ(error_of("1- * * * *"), "cron \"1- * * * *\": minute field: malformed range \"1-\"");
  EXPECT_EQ(error_of("-1 * * * *"), "cron \"-1 * * * *\": minute field: malformed range \"-1\"");
  EXPECT_EQ(error_of("1,,2 * * * *"),
            "cron \"1,,2 * * * *\": minute field: empty item in list \"1,,2\"");
  EXPECT_EQ(error_of("1, * * * *"), "cron \"1, * * * *\": minute field: empty item in list \"1,\"");
  EXPECT_EQ(error_of("99999999999999999999 * * * *"),
            "cron \"99999999999999999999 * * * *\": minute field: 99999999999999999999 is out "
            "of range 0-59");
}

TEST(CronParse, WrongShapeIsAClearError) {
  EXPECT_EQ(error_of("* * * *"),
            "cron \"* * * *\": expected 5 fields (minute hour day-of-month month day-of-week) or "
            "6 (second first), found 4");
  EXPECT_EQ(error_of("* * * * * * *"),
            "cron \"* * * * * * *\": expected 5 fields (minute hour day-of-month month "
            "day-of-week) or 6 (second first), found 7");
  EXPECT_EQ(error_of("   "),
            "cron \"\": empty expression; expected 5 fields, 6 with seconds, or a macro like "
            "@daily");
  EXPECT_EQ(error_of("@fortnightly"),
            "cron \"@fortnightly\": unknown macro @fortnightly; known: @yearly, @annually, "
            "@monthly, @weekly, @daily, @midnight, @hourly");
  EXPECT_EQ(error_of("@reboot"),
            "cron \"@reboot\": @reboot is not a schedule (it has no fire times)");
  EXPECT_EQ(error_of("@daily *"),
            "cron \"@daily *\": a macro stands alone; remove the other fields");
}

TEST(CronParse, DatesThatNeverOccurAreRejected) {
  const std::string never =
      "day-of-month field: none of the selected days occurs in the selected months, so the "
      "schedule would never fire";
  EXPECT_EQ(error_of("0 0 30 2 *"), "cron \"0 0 30 2 *\": " + never);
  EXPECT_EQ(error_of("0 0 31 4,6,9,11 *"), "cron \"0 0 31 4,6,9,11 *\": " + never);
  // With a restricted day of week the two fields are ORed: Mondays in April still fire.
  EXPECT_EQ(next("0 0 31 4 MON", "2026-01-01 00:00:00"), "2026-04-06 00:00:00");
  EXPECT_EQ(next("0 0 31 4,5 *", "2026-01-01 00:00:00"), "2026-05-31 00:00:00");
}

// --- days --------------------------------------------------------------------------------

TEST(CronDays, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  // The 13th and every Friday (January 2026: Fridays 2, 9, 16; the 13th a Tuesday).
  EXPECT_EQ(fires("0 0 13 * FRI", "UTC", "2026-01-01 00:00:00", 4),
            (Times{"2026-01-02 00:00:00", "2026-01-09 00:00:00", "2026-01-13 00:00:00",
                   "2026-01-16 00:00:00"}));
}

TEST(CronDays, AndWhenEitherFieldBeginsWithAStar) {
  EXPECT_EQ(fires("0 0 * * MON", "UTC", "2026-01-01 00:00:00", 2),
            (Times{"2026-01-05 00:00:00", "2026-01-12 00:00:00"}));
  EXPECT_EQ(fires("0 0 13 * *", "UTC", "2026-01-01 00:00:00", 2),
            (Times{"2026-01-13 00:00:00", "2026-02-13 00:00:00"}));
  // Vixie's rule looks at the first character: "*/2" leaves the fields ANDed, so these are
  // Mondays on odd days (January 2026: 5 and 19; February: 9 and 23).
  EXPECT_EQ(fires("0 0 */2 * MON", "UTC", "2026-01-01 00:00:00", 4),
            (Times{"2026-01-05 00:00:00", "2026-01-19 00:00:00", "2026-02-09 00:00:00",
                   "2026-02-23 00:00:00"}));
}

TEST(CronDays, LeapDay) {
  EXPECT_EQ(next("0 0 29 2 *", "2026-03-01 00:00:00"), "2028-02-29 00:00:00");
  EXPECT_EQ(next("0 0 29 2 *", "2028-02-29 00:00:00"), "2032-02-29 00:00:00");
  // 2100 is not a leap year.
  EXPECT_EQ(next("0 0 29 2 *", "2096-03-01 00:00:00"), "2104-02-29 00:00:00");
  EXPECT_EQ(next("0 0 29 2 *", "2096-03-01 00:00:00", "Europe/Berlin"), "2104-02-28 23:00:00");
  // Leap day on a Sunday, fields ANDed by the leading '*': 2032, then 2060.
  EXPECT_EQ(next("0 0 29 2 */7", "2026-01-01 00:00:00"), "2032-02-29 00:00:00");
  EXPECT_EQ(next("0 0 29 2 */7", "2032-02-29 00:00:00"), "2060-02-29 00:00:00");
}

TEST(CronDays, LastDaysAndYearRollover) {
  EXPECT_EQ(next("0 0 1 1 *", "2026-12-31 23:59:59.999999"), "2027-01-01 00:00:00");
  EXPECT_EQ(next("59 23 31 12 *", "2026-12-31 23:59:00"), "2027-12-31 23:59:00");
  EXPECT_EQ(next("59 59 23 31 12 *", "2026-06-01 00:00:00"), "2026-12-31 23:59:59");
  EXPECT_EQ(fires("0 12 31 * *", "UTC", "2026-01-31 12:00:00", 3),
            (Times{"2026-03-31 12:00:00", "2026-05-31 12:00:00", "2026-07-31 12:00:00"}));
}

TEST(CronDays, StrictlyAfter) {
  EXPECT_EQ(next("0 12 * * *", "2026-01-01 12:00:00"), "2026-01-02 12:00:00");
  EXPECT_EQ(next("0 12 * * *", "2026-01-01 11:59:59.999999"), "2026-01-01 12:00:00");
  EXPECT_EQ(next("0 12 * * *", "2026-01-01 12:00:00.000001"), "2026-01-02 12:00:00");
  EXPECT_EQ(next("* * * * * *", "2026-01-01 12:00:00"), "2026-01-01 12:00:01");
}

TEST(CronDays, BeforeTheEpoch) {
  EXPECT_EQ(next("30 6 * * *", "1969-12-31 12:00:00"), "1970-01-01 06:30:00");
}

// --- time zones and daylight saving time --------------------------------------------------

TEST(CronZone, UnknownZoneIsAClearError) {
  try {
    const TimeZone tz("Mars/Olympus_Mons");
    FAIL() << "no error";
  } catch (const CronError& e) {
    EXPECT_STREQ(e.what(), "unknown time zone \"Mars/Olympus_Mons\"");
  }
  EXPECT_THROW(Cron("* * * * *").next_after(at("2026-01-01 00:00:00"), "europe/berlin"), CronError);
  EXPECT_THROW(TimeZone(""), CronError);
  EXPECT_EQ(TimeZone("Europe/Berlin").name(), "Europe/Berlin");
}

TEST(CronZone, ZonePathDecidesWhereZonesAreRead) {
  namespace fs = std::filesystem;
  const auto saved = zone_path();
  const fs::path dir = fs::temp_directory_path() / ("fastq_zone_path_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "Asia");
  fs::create_directories(dir / "Bad");
  // Zones no other test loads (loaded zones are kept for the process).
  fs::copy_file("/usr/share/zoneinfo/Asia/Kabul", dir / "Asia" / "Kabul");
  { std::ofstream(dir / "Bad" / "Zone") << "not a zone file\n"; }

  set_zone_path({(dir / "missing").string(), dir.string()});
  EXPECT_EQ(zone_path().size(), 2U);
  // Kabul is UTC+04:30 all year: 09:00 there is 04:30 UTC.
  EXPECT_EQ(next("0 9 * * *", "2026-03-01 06:00:00", "Asia/Kabul"), "2026-03-02 04:30:00");
  EXPECT_THROW(TimeZone("Pacific/Chatham"), CronError);  // not in the path
  EXPECT_THROW(TimeZone("Bad/Zone"), CronError);         // not TZif
  for (const char* name : {"../Asia/Kabul", "Asia/../Asia/Kabul", "./Asia/Kabul", "/etc/passwd",
                           "Asia//Kabul", "Asia/Kabul/"}) {
    EXPECT_THROW(TimeZone{name}, CronError) << name;
  }
  set_zone_path({});
  EXPECT_THROW(TimeZone("Pacific/Chatham"), CronError);
  EXPECT_EQ(TimeZone("Asia/Kabul").name(), "Asia/Kabul");  // loaded zones stay

  set_zone_path(saved);
  EXPECT_EQ(TimeZone("Pacific/Chatham").name(), "Pacific/Chatham");
  fs::remove_all(dir);
}

TEST(CronZone, FixedOffsetZones) {
  EXPECT_EQ(next("0 9 * * *", "2026-01-01 00:00:00", "Asia/Kolkata"), "2026-01-01 03:30:00");
  EXPECT_EQ(next("0 9 * * *", "2026-01-01 00:00:00", "Etc/GMT+5"), "2026-01-01 14:00:00");
}

// Europe/Berlin 2026: 02:00 CET -> 03:00 CEST on 29 March (01:00 UTC); 03:00 CEST -> 02:00
// CET on 25 October (01:00 UTC).
TEST(CronDstBerlin, FixedTimeInTheSpringGapFiresAtTheChange) {
  EXPECT_EQ(fires("30 2 * * *", "Europe/Berlin", "2026-03-27 12:00:00", 3),
            (Times{"2026-03-28 01:30:00",     // 02:30 CET
                   "2026-03-29 01:00:00",     // 02:30 does not exist: 03:00 CEST
                   "2026-03-30 00:30:00"}));  // 02:30 CEST
  // Several times in the gap still fire once.
  EXPECT_EQ(fires("0,15,30 2 * * *", "Europe/Berlin", "2026-03-28 23:00:00", 2),
            (Times{"2026-03-29 01:00:00", "2026-03-30 00:00:00"}));
  // Right before and right at the change.
  EXPECT_EQ(next("30 2 * * *", "2026-03-29 00:59:59.999999", "Europe/Berlin"),
            "2026-03-29 01:00:00");
  EXPECT_EQ(next("30 2 * * *", "2026-03-29 01:00:00", "Europe/Berlin"), "2026-03-30 00:30:00");
  // A job at 03:00 CEST coincides with the change and is not doubled.
  EXPECT_EQ(fires("0 2,3 * * *", "Europe/Berlin", "2026-03-28 23:00:00", 2),
            (Times{"2026-03-29 01:00:00", "2026-03-30 00:00:00"}));
}

TEST(CronDstBerlin, FixedTimeInTheRepeatedHourFiresOnce) {
  EXPECT_EQ(fires("30 2 * * *", "Europe/Berlin", "2026-10-23 12:00:00", 3),
            (Times{"2026-10-24 00:30:00",     // 02:30 CEST
                   "2026-10-25 00:30:00",     // 02:30 CEST, the first of two
                   "2026-10-26 01:30:00"}));  // 02:30 CET
  // Asked from inside the second 02:xx hour: already fired at the first.
  EXPECT_EQ(next("30 2 * * *", "2026-10-25 01:10:00", "Europe/Berlin"), "2026-10-26 01:30:00");
}

TEST(CronDstBerlin, ElapsedTimeJobsRunThroughBothRepeatedHours) {
  EXPECT_EQ(fires("*/15 * * * *", "Europe/Berlin", "2026-10-24 23:50:00", 9),
            (Times{"2026-10-25 00:00:00", "2026-10-25 00:15:00", "2026-10-25 00:30:00",
                   "2026-10-25 00:45:00",  // 02:00-02:45 CEST
                   "2026-10-25 01:00:00", "2026-10-25 01:15:00", "2026-10-25 01:30:00",
                   "2026-10-25 01:45:00",  // 02:00-02:45 CET
                   "2026-10-25 02:00:00"}));
  EXPECT_EQ(fires("0 * * * *", "Europe/Berlin", "2026-10-24 23:30:00", 3),
            (Times{"2026-10-25 00:00:00", "2026-10-25 01:00:00", "2026-10-25 02:00:00"}));
  // Every 30 minutes of hour 2 only (minute field begins with '*'): both 02:xx hours.
  EXPECT_EQ(fires("*/30 2 * * *", "Europe/Berlin", "2026-10-24 12:00:00", 5),
            (Times{"2026-10-25 00:00:00", "2026-10-25 00:30:00", "2026-10-25 01:00:00",
                   "2026-10-25 01:30:00", "2026-10-26 01:00:00"}));
}

TEST(CronDstBerlin, ElapsedTimeJobsSkipTheSpringGap) {
  EXPECT_EQ(fires("*/15 * * * *", "Europe/Berlin", "2026-03-29 00:30:00", 3),
            (Times{"2026-03-29 00:45:00",  // 01:45 CET
                   "2026-03-29 01:00:00",  // 03:00 CEST
                   "2026-03-29 01:15:00"}));
  // Only 02:xx, which does not exist that day.
  EXPECT_EQ(next("*/15 2 * * *", "2026-03-28 23:00:00", "Europe/Berlin"), "2026-03-30 00:00:00");
}

TEST(CronDstBerlin, AfterTheLastListedTransition) {
  // Zone files list changes up to 2037; later ones come from the rule at the file's end.
  EXPECT_EQ(fires("30 2 * * *", "Europe/Berlin", "2040-03-24 12:00:00", 2),
            (Times{"2040-03-25 01:00:00", "2040-03-26 00:30:00"}));
  EXPECT_EQ(next("0 12 * * *", "2040-07-01 00:00:00", "Europe/Berlin"), "2040-07-01 10:00:00");
  EXPECT_EQ(fires("30 2 * * *", "Europe/Berlin", "2040-10-27 12:00:00", 2),
            (Times{"2040-10-28 00:30:00", "2040-10-29 01:30:00"}));
  EXPECT_EQ(fires("0 * * * *", "Europe/Berlin", "2040-10-27 23:30:00", 3),
            (Times{"2040-10-28 00:00:00", "2040-10-28 01:00:00", "2040-10-28 02:00:00"}));
  // Across the boundary: the last listed change (October 2037), then the rule's.
  EXPECT_EQ(fires("0 12 1 * *", "Europe/Berlin", "2037-09-15 00:00:00", 8),
            (Times{"2037-10-01 10:00:00", "2037-11-01 11:00:00", "2037-12-01 11:00:00",
                   "2038-01-01 11:00:00", "2038-02-01 11:00:00", "2038-03-01 11:00:00",
                   "2038-04-01 10:00:00", "2038-05-01 10:00:00"}));
}

// America/New_York 2026: 02:00 EST -> 03:00 EDT on 8 March (07:00 UTC); 02:00 EDT -> 01:00
// EST on 1 November (06:00 UTC), so 01:xx happens twice.
TEST(CronDstNewYork, SpringForward) {
  EXPECT_EQ(fires("30 2 * * *", "America/New_York", "2026-03-06 12:00:00", 3),
            (Times{"2026-03-07 07:30:00",     // 02:30 EST
                   "2026-03-08 07:00:00",     // gap: 03:00 EDT
                   "2026-03-09 06:30:00"}));  // 02:30 EDT
  EXPECT_EQ(next("30 2 * * *", "2040-03-10 12:00:00", "America/New_York"), "2040-03-11 07:00:00");
}

TEST(CronDstNewYork, FallBack) {
  // 02:30 is not repeated in New York; 01:30 is.
  EXPECT_EQ(fires("30 2 * * *", "America/New_York", "2026-10-30 12:00:00", 3),
            (Times{"2026-10-31 06:30:00", "2026-11-01 07:30:00", "2026-11-02 07:30:00"}));
  EXPECT_EQ(fires("30 1 * * *", "America/New_York", "2026-10-30 12:00:00", 3),
            (Times{"2026-10-31 05:30:00", "2026-11-01 05:30:00", "2026-11-02 06:30:00"}));
  EXPECT_EQ(fires("*/15 * * * *", "America/New_York", "2026-11-01 04:50:00", 9),
            (Times{"2026-11-01 05:00:00", "2026-11-01 05:15:00", "2026-11-01 05:30:00",
                   "2026-11-01 05:45:00", "2026-11-01 06:00:00", "2026-11-01 06:15:00",
                   "2026-11-01 06:30:00", "2026-11-01 06:45:00", "2026-11-01 07:00:00"}));
}

// Asia/Tehran: +03:30 with DST (+04:30) until 2022. In 2021 clocks went from 00:00 to
// 01:00 on 22 March (21 March 20:30 UTC) and from 00:00 back to 23:00 on 22 September (21
// September 19:30 UTC), so 23:xx of 21 September happened twice.
TEST(CronDstTehran, SpringForward2021) {
  EXPECT_EQ(fires("30 2 * * *", "Asia/Tehran", "2021-03-20 12:00:00", 3),
            (Times{"2021-03-20 23:00:00",  // 21 March 02:30 +0330
                   "2021-03-21 22:00:00",  // 22 March 02:30 +0430
                   "2021-03-22 22:00:00"}));
  EXPECT_EQ(fires("0 0 * * *", "Asia/Tehran", "2021-03-20 12:00:00", 3),
            (Times{"2021-03-20 20:30:00",     // 21 March 00:00 +0330
                   "2021-03-21 20:30:00",     // 22 March 00:00 does not exist: 01:00 +0430
                   "2021-03-22 19:30:00"}));  // 23 March 00:00 +0430
}

TEST(CronDstTehran, FallBack2021) {
  EXPECT_EQ(fires("30 2 * * *", "Asia/Tehran", "2021-09-20 12:00:00", 3),
            (Times{"2021-09-20 22:00:00",  // 21 September 02:30 +0430
                   "2021-09-21 23:00:00",  // 22 September 02:30 +0330
                   "2021-09-22 23:00:00"}));
  EXPECT_EQ(fires("30 23 * * *", "Asia/Tehran", "2021-09-20 12:00:00", 3),
            (Times{"2021-09-20 19:00:00",     // 20 September 23:30 +0430
                   "2021-09-21 19:00:00",     // the first 23:30 of 21 September (+0430)
                   "2021-09-22 20:00:00"}));  // 22 September 23:30 +0330
  EXPECT_EQ(fires("*/15 * * * *", "Asia/Tehran", "2021-09-21 18:50:00", 9),
            (Times{"2021-09-21 19:00:00", "2021-09-21 19:15:00", "2021-09-21 19:30:00",
                   "2021-09-21 19:45:00", "2021-09-21 20:00:00", "2021-09-21 20:15:00",
                   "2021-09-21 20:30:00", "2021-09-21 20:45:00", "2021-09-21 21:00:00"}));
}

TEST(CronDstTehran, NoDstSince2023) {
  EXPECT_EQ(next("30 2 * * *", "2026-03-21 12:00:00", "Asia/Tehran"), "2026-03-21 23:00:00");
  EXPECT_EQ(next("0 0 * * *", "2026-03-21 12:00:00", "Asia/Tehran"), "2026-03-21 20:30:00");
  EXPECT_EQ(next("30 2 * * *", "2026-09-21 12:00:00", "Asia/Tehran"), "2026-09-21 23:00:00");
  EXPECT_EQ(next("30 23 * * *", "2026-09-21 12:00:00", "Asia/Tehran"), "2026-09-21 20:00:00");
}

// Australia/Lord_Howe shifts by 30 minutes: 02:00 -> 02:30 (+1030 -> +11) on 4 October
// 2026, 02:00 -> 01:30 on 5 April 2026.
TEST(CronDstLordHowe, HalfHourShift) {
  EXPECT_EQ(next("15 2 * * *", "2026-10-03 12:00:00", "Australia/Lord_Howe"),
            "2026-10-03 15:30:00");
  EXPECT_EQ(fires("45 1 * * *", "Australia/Lord_Howe", "2026-04-03 12:00:00", 3),
            (Times{"2026-04-03 14:45:00",     // 4 April 01:45 +11
                   "2026-04-04 14:45:00",     // 5 April: the first 01:45 (+11), not +1030
                   "2026-04-05 15:15:00"}));  // 6 April 01:45 +1030
  EXPECT_EQ(fires("*/30 * * * *", "Australia/Lord_Howe", "2026-04-04 14:10:00", 3),
            (Times{"2026-04-04 14:30:00", "2026-04-04 15:00:00", "2026-04-04 15:30:00"}));
}

// America/Nuuk's rule changes at -01:00 local (23:00 of the Saturday before): a rule time
// before midnight.
TEST(CronDstNuuk, NegativeRuleTime) {
  // 24 March 2040, 23:00 -02 -> 25 March 00:00 -01 (01:00 UTC).
  EXPECT_EQ(next("30 23 * * *", "2040-03-24 12:00:00", "America/Nuuk"), "2040-03-25 01:00:00");
  EXPECT_EQ(next("30 23 * * *", "2040-03-23 12:00:00", "America/Nuuk"), "2040-03-24 01:30:00");
  EXPECT_EQ(next("30 23 * * *", "2040-03-25 12:00:00", "America/Nuuk"), "2040-03-26 00:30:00");
}

TEST(CronZone, SkippedCalendarDayFiresAtTheChange) {
  // Samoa skipped 30 December 2011 (23:59:59 -10 on the 29th, then 00:00 +14 on the 31st).
  EXPECT_EQ(fires("0 9 * * *", "Pacific/Apia", "2011-12-29 12:00:00", 3),
            (Times{"2011-12-29 19:00:00",     // 29 December 09:00 -10
                   "2011-12-30 10:00:00",     // 30 December never happened: 31 Dec 00:00 +14
                   "2011-12-30 19:00:00"}));  // 31 December 09:00 +14
}

TEST(CronZone, StringAndZoneOverloadsAgree) {
  const Cron cron("*/7 3-5 * * *");
  const TimeZone tz("America/New_York");
  UtcMicros t = at("2026-03-07 00:00:00");
  for (int i = 0; i < 200; ++i) {
    const auto a = cron.next_after(t, tz);
    EXPECT_EQ(a, cron.next_after(t, "America/New_York"));
    t = a;
  }
}

TEST(CronZone, SafeFromSeveralThreads) {
  const Cron cron("*/5 * * * *");
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  const char* zones[] = {"Europe/Paris", "America/Chicago", "Asia/Tokyo", "Europe/Paris"};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      UtcMicros t = at("2026-01-01 00:00:00");
      for (int k = 0; k < 500; ++k) {
        const auto n = cron.next_after(t, zones[i]);
        if (n - t <= std::chrono::minutes(5)) ++ok[static_cast<std::size_t>(i)];
        t = n;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int n : ok) EXPECT_EQ(n, 500);
}

TEST(CronSpeed, SkipsByFieldNotByMinute) {
  // A minute-by-minute scan would take millions of steps per call here.
  const Cron leap("0 0 29 2 *");
  const Cron rare("59 23 31 12 SUN");
  const TimeZone tz("Europe/Berlin");
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(text(leap.next_after(at("2096-03-01 00:00:00"), tz)), "2104-02-28 23:00:00");
    (void)rare.next_after(at("2026-01-01 00:00:00"), tz);
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

// --- intervals ---------------------------------------------------------------------------

TEST(Interval, SlotsAnchoredToAnEpoch) {
  const auto anchor = at("2026-01-01 00:00:00");
  const auto every = std::chrono::duration_cast<microseconds>(std::chrono::minutes(10));
  EXPECT_EQ(text(next_interval(at("2026-01-01 00:00:00"), every, anchor)), "2026-01-01 00:10:00");
  EXPECT_EQ(text(next_interval(at("2026-01-01 00:09:59.999999"), every, anchor)),
            "2026-01-01 00:10:00");
  EXPECT_EQ(text(next_interval(at("2026-03-01 12:34:56"), every, anchor)), "2026-03-01 12:40:00");
  // Before the anchor the grid extends backwards.
  EXPECT_EQ(text(next_interval(at("2025-12-31 23:55:00"), every, anchor)), "2026-01-01 00:00:00");
  EXPECT_EQ(text(next_interval(at("2025-12-31 23:45:00"), every, anchor)), "2025-12-31 23:50:00");
  EXPECT_THROW(next_interval(anchor, microseconds{0}, anchor), std::invalid_argument);
  EXPECT_THROW(next_interval(anchor, microseconds{-5}, anchor), std::invalid_argument);
}

}  // namespace
}  // namespace fastq
