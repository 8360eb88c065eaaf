// Cron schedules: parse an expression once, then ask for fire times in an IANA time zone.
//
//   fastq::Cron cron("*/15 9-17 * * MON-FRI");     // throws fastq::CronError
//   fastq::TimeZone zone("Europe/Berlin");          // throws fastq::CronError
//   auto next = cron.next_after(now, zone);         // a UTC instant, strictly after `now`
//
// Syntax. Five fields, `minute hour day-of-month month day-of-week`, or six with a leading
// `second` field. Each field is a comma-separated list of items; an item is `*`, a value
// `v`, or a range `a-b`, each optionally followed by a step `/n` (`*/5`, `1-30/2`; `5/15`
// means `5-max/15`). Months accept JAN..DEC and days of week SUN..SAT (any case); day of
// week is 0-7 with both 0 and 7 for Sunday. Ranges never wrap (`FRI-MON` is an error). The
// macros @yearly (@annually), @monthly, @weekly, @daily (@midnight) and @hourly stand for
// `0 0 1 1 *`, `0 0 1 * *`, `0 0 * * 0`, `0 0 * * *` and `0 * * * *`.
//
// Days (Vixie cron). When neither the day-of-month nor the day-of-week field begins with
// `*`, a day matches if either field matches (`0 0 1 * MON`: the 1st and every Monday).
// Otherwise both must match, so `*` in one of them leaves the other in charge.
//
// Daylight saving time (cronie's rule). A schedule follows *elapsed time* when its
// second, minute or hour field begins with `*` (`*/5 * * * *`, `0 * * * *`, @hourly);
// otherwise it is *fixed-time* (`30 2 * * *`, `0 9 * * MON-FRI`, @daily). Then:
//   - Local times that occur twice when clocks go back: an elapsed-time schedule fires at
//     both occurrences; a fixed-time schedule fires only at the first one.
//   - Local times skipped when clocks go forward: an elapsed-time schedule simply does not
//     fire at them; a fixed-time schedule fires once, at the instant of the change (02:30 on
//     the spring-forward day in Europe/Berlin fires at 03:00 CEST), however many of its
//     times fell in the gap and however long the gap is.
// All other local times map to exactly one instant and fire there.
//
// Time zones come from TZif zone files (RFC 8536, version 2+), read from the first
// directory of the zone path that has the zone (set_zone_path; by default the system's
// /usr/share/zoneinfo and the other places Python's zoneinfo looks). The Python module
// puts Python's zoneinfo.TZPATH and the `tzdata` package first, so the core and
// zoneinfo.ZoneInfo read the same files, and a machine without a system tz database
// still has every zone. Past the last transition listed in a zone's file (2037 in some)
// the rule string at the end of the file gives the offsets.
#pragma once

#include <bitset>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fastq {

// A malformed expression or an unknown time zone. The message quotes the expression and
// names the field and the problem: `cron "*/5 25 * * *": hour field: 25 is out of range
// 0-23`.
class CronError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

using UtcMicros = std::chrono::sys_time<std::chrono::microseconds>;

// Where zone files are looked for, in order. Zones already loaded stay as they are.
void set_zone_path(std::vector<std::string> directories);
std::vector<std::string> zone_path();

// An IANA time zone from the zone path. Copies share one immutable loaded zone;
// zones are loaded once per process and kept. Safe to use from several threads.
class TimeZone {
 public:
  // Throws CronError for a name the database does not know ("Europe/Berln").
  explicit TimeZone(std::string_view name);
  const std::string& name() const noexcept;

  struct Impl;  // defined in cron.cpp

 private:
  friend class Cron;
  std::shared_ptr<const Impl> impl_;
};

// A parsed cron expression. Immutable; safe to share between threads.
class Cron {
 public:
  // Throws CronError when the expression is malformed or can never fire
  // (`0 0 30 2 *`: February has no 30th).
  explicit Cron(std::string_view expression);

  // The expression as given, without surrounding blanks.
  const std::string& expression() const noexcept { return expression_; }
  // Whether a seconds field was given (six fields).
  bool has_seconds() const noexcept { return has_seconds_; }
  // True for elapsed-time schedules, false for fixed-time ones (see the DST rule above).
  bool follows_elapsed_time() const noexcept { return elapsed_; }

  // The first fire time strictly after `after`, evaluated in `zone`, as a whole-second
  // UTC instant. Every valid expression fires within a few years, so this always returns;
  // the cost is a handful of steps per field and per DST change crossed.
  std::chrono::sys_seconds next_after(UtcMicros after, const TimeZone& zone) const;
  // The same with the zone named; throws CronError when the name is unknown.
  std::chrono::sys_seconds next_after(UtcMicros after, std::string_view time_zone) const;

 private:
  // The first matching local time in [from, limit), in local seconds.
  std::optional<std::chrono::seconds> next_local(std::chrono::seconds from,
                                                 std::chrono::seconds limit) const;
  std::optional<int> next_time_of_day(int from_second_of_day) const;
  bool day_matches(int month_day, int weekday) const;

  std::string expression_;
  std::bitset<60> seconds_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1-31
  std::bitset<13> months_;   // 1-12
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool day_of_month_star_ = false;
  bool day_of_week_star_ = false;
  bool has_seconds_ = false;
  bool elapsed_ = false;
};

// Fixed-rate schedules: the first instant anchor + k * every (any integer k) strictly
// after `after`. Time zones play no part: the slots are evenly spaced in real time.
// Throws std::invalid_argument unless `every` is positive.
UtcMicros next_interval(UtcMicros after, std::chrono::microseconds every, UtcMicros anchor);

}  // namespace fastq
