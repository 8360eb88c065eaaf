#include "fastq/cron.hpp"

#include <date/date.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <span>
#include <vector>

namespace fastq {

namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::sys_seconds;

// ---------------------------------------------------------------------------------------
// Parsing

constexpr std::array<std::string_view, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kDayNames = {"SUN", "MON", "TUE", "WED",
                                                       "THU", "FRI", "SAT"};

struct FieldSpec {
  std::string_view name;
  int min;
  int max;
  int count;  // distinct values; the largest step that still makes sense
  std::span<const std::string_view> names;
  int first_named;  // value of names[0]
  std::string_view names_hint;
};

constexpr FieldSpec kSecond{"second", 0, 59, 60, {}, 0, ""};
constexpr FieldSpec kMinute{"minute", 0, 59, 60, {}, 0, ""};
constexpr FieldSpec kHour{"hour", 0, 23, 24, {}, 0, ""};
constexpr FieldSpec kDayOfMonth{"day-of-month", 1, 31, 31, {}, 0, ""};
constexpr FieldSpec kMonth{"month", 1, 12, 12, kMonthNames, 1, "a month name (JAN-DEC)"};
// 0-7: both 0 and 7 are Sunday; 7 is folded onto 0 after parsing.
constexpr FieldSpec kDayOfWeek{"day-of-week", 0, 7, 7, kDayNames, 0, "a day name (SUN-SAT)"};

struct ParsedField {
  std::uint64_t bits = 0;  // bit v set when value v matches
  bool star = false;       // the field's text begins with '*' (Vixie's *_STAR flags)
};

class FieldError {
 public:
  explicit FieldError(std::string message) : message(std::move(message)) {}
  std::string message;
};

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string quoted(std::string_view s) {
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "\"" + std::string.
  std::string out;
  out.reserve(s.size() + 2);
  out.append(1, '"').append(s).append(1, '"');
  return out;
}

// A value: digits, or a name when the field has names. Range-checked.
int parse_value(std::string_view text, const FieldSpec& spec) {
  if (text.empty()) throw FieldError("a value is missing");
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    long long v = 0;
    for (char c : text) {
      v = v * 10 + (c - '0');
      if (v > 1'000'000) break;  // far out of range already; keep the message short
    }
    if (v < spec.min || v > spec.max) {
      throw FieldError(std::string(text) + " is out of range " + std::to_string(spec.min) + "-" +
                       std::to_string(spec.max));
    }
    return static_cast<int>(v);
  }
  if (!spec.names.empty() && text.size() == 3) {
    std::string upper(text);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (std::size_t i = 0; i < spec.names.size(); ++i) {
      if (spec.names[i] == upper) return spec.first_named + static_cast<int>(i);
    }
  }
  if (spec.names.empty()) throw FieldError(quoted(text) + " is not a number");
  throw FieldError(quoted(text) + " is not a number or " + std::string(spec.names_hint));
}

ParsedField parse_field(std::string_view text, const FieldSpec& spec) {
  ParsedField out;
  out.star = !text.empty() && text.front() == '*';
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.empty()) throw FieldError("empty item in list " + quoted(text));

    std::string_view base = item;
    int step = 1;
    bool has_step = false;
    if (const auto slash = item.find('/'); slash != std::string_view::npos) {
      base = item.substr(0, slash);
      const std::string_view step_text = item.substr(slash + 1);
      if (step_text.find('/') != std::string_view::npos) {
        throw FieldError(quoted(item) + " has more than one step");
      }
      if (step_text.empty() || !std::all_of(step_text.begin(), step_text.end(),
                                            [](char c) { return c >= '0' && c <= '9'; })) {
        throw FieldError("step " + quoted(step_text) + " in " + quoted(item) + " is not a number");
      }
      long long s = 0;
      for (char c : step_text) {
        s = s * 10 + (c - '0');
        if (s > 1'000'000) break;
      }
      if (s < 1) throw FieldError("step " + std::string(step_text) + " must be at least 1");
      if (s > spec.count) {
        throw FieldError("step " + std::string(step_text) + " is larger than the " +
                         std::to_string(spec.count) + " values of the field");
      }
      step = static_cast<int>(s);
      has_step = true;
    }

    int lo = 0;
    int hi = 0;
    if (base == "*") {
      lo = spec.min;
      hi = spec.max;
    } else if (const auto dash = base.find('-'); dash != std::string_view::npos) {
      const std::string_view a = base.substr(0, dash);
      const std::string_view b = base.substr(dash + 1);
      if (a.empty() || b.empty() || b.find('-') != std::string_view::npos) {
        throw FieldError("malformed range " + quoted(base));
      }
      lo = parse_value(a, spec);
      hi = parse_value(b, spec);
      if (lo > hi) {
        throw FieldError("range " + std::string(base) +
                         " runs backwards (ranges do not wrap; use a list of two ranges)");
      }
    } else if (base.empty()) {
      throw FieldError(quoted(item) + " has no value before the step");
    } else {
      lo = parse_value(base, spec);
      hi = has_step ? spec.max : lo;  // "5/15" means 5-max/15
    }
    for (int v = lo; v <= hi; v += step) out.bits |= std::uint64_t{1} << v;

    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

struct Macro {
  std::string_view name;
  std::string_view fields;
};
constexpr std::array<Macro, 7> kMacros = {{{"@yearly", "0 0 1 1 *"},
                                           {"@annually", "0 0 1 1 *"},
                                           {"@monthly", "0 0 1 * *"},
                                           {"@weekly", "0 0 * * 0"},
                                           {"@daily", "0 0 * * *"},
                                           {"@midnight", "0 0 * * *"},
                                           {"@hourly", "0 * * * *"}}};

std::vector<std::string_view> split_blanks(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_blank(s[i])) ++i;
    const std::size_t j = i;
    while (i < s.size() && !is_blank(s[i])) ++i;
    if (i > j) out.push_back(s.substr(j, i - j));
  }
  return out;
}

constexpr std::array<int, 13> kMaxDays = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

int days_in_month(int y, int m) {
  if (m != 2) return kMaxDays[static_cast<std::size_t>(m)];
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return leap ? 29 : 28;
}

// ---------------------------------------------------------------------------------------
// Time zones

// A span of UTC time with one offset from UTC: [begin, end).
struct Segment {
  sys_seconds begin;
  sys_seconds end;
  seconds offset;
};

// Earlier than any real transition: a segment that begins here has no predecessor.
const sys_seconds kFarPast = date::sys_days{date::year{-30000} / 1 / 1};
// Later than any real transition: a segment that ends here has no successor.
const sys_seconds kFarFuture = date::sys_days{date::year{30000} / 1 / 1};

// The rule string that closes a TZif file (RFC 8536 section 3.3: a POSIX TZ string with the
// extensions that allow transition times of -167..167 hours). Only strings with DST rules
// are kept: a fixed offset is already the last listed segment.
struct PosixDate {
  enum class Kind : std::uint8_t { kJulianNoLeap, kZeroBased, kMonthWeekDay };
  Kind kind = Kind::kMonthWeekDay;
  int n = 0;  // Jn: 1-365, Feb 29 never counted; n: 0-365
  int month = 0;
  int week = 0;  // 1-5, 5 = the last such weekday of the month
  int weekday = 0;
  seconds time = hours{2};  // local time of day of the change, may be negative or > 24 h
};

struct PosixRule {
  seconds std_offset{0};
  seconds dst_offset{0};
  PosixDate start;  // into DST, in standard local time
  PosixDate end;    // out of DST, in DST local time
};

class PosixParser {
 public:
  explicit PosixParser(std::string_view s) : s_(s) {}

  std::optional<PosixRule> parse() {
    PosixRule r;
    if (!name()) return std::nullopt;
    seconds off{0};
    if (!time(off, 24)) return std::nullopt;
    r.std_offset = -off;              // POSIX counts west of Greenwich as positive
    if (done()) return std::nullopt;  // no DST
    if (!name()) return std::nullopt;
    r.dst_offset = r.std_offset + hours{1};
    if (!done() && peek() != ',') {
      if (!time(off, 24)) return std::nullopt;
      r.dst_offset = -off;
    }
    if (!eat(',') || !date(r.start) || !eat(',') || !date(r.end) || !done()) {
      return std::nullopt;
    }
    return r;
  }

 private:
  bool done() const { return i_ == s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++i_;
    return true;
  }
  bool number(int& out, int max_digits) {
    int digits = 0;
    out = 0;
    while (!done() && std::isdigit(static_cast<unsigned char>(peek())) && digits < max_digits) {
      out = out * 10 + (s_[i_++] - '0');
      ++digits;
    }
    return digits > 0;
  }
  bool name() {
    if (eat('<')) {
      const auto close = s_.find('>', i_);
      if (close == std::string_view::npos) return false;
      i_ = close + 1;
      return true;
    }
    const std::size_t from = i_;
    while (!done() && std::isalpha(static_cast<unsigned char>(peek()))) ++i_;
    return i_ - from >= 3;
  }
  // [+-]hh[:mm[:ss]] with hh up to max_hours.
  bool time(seconds& out, int max_hours) {
    int sign = 1;
    if (eat('-')) {
      sign = -1;
    } else {
      eat('+');
    }
    int h = 0;
    int m = 0;
    int sec = 0;
    if (!number(h, 3) || h > max_hours) return false;
    if (eat(':')) {
      if (!number(m, 2) || m > 59) return false;
      if (eat(':') && (!number(sec, 2) || sec > 59)) return false;
    }
    out = sign * (hours{h} + minutes{m} + seconds{sec});
    return true;
  }
  bool date(PosixDate& d) {
    if (eat('J')) {
      d.kind = PosixDate::Kind::kJulianNoLeap;
      if (!number(d.n, 3) || d.n < 1 || d.n > 365) return false;
    } else if (eat('M')) {
      d.kind = PosixDate::Kind::kMonthWeekDay;
      if (!number(d.month, 2) || d.month < 1 || d.month > 12 || !eat('.')) return false;
      if (!number(d.week, 1) || d.week < 1 || d.week > 5 || !eat('.')) return false;
      if (!number(d.weekday, 1) || d.weekday > 6) return false;
    } else {
      d.kind = PosixDate::Kind::kZeroBased;
      if (!number(d.n, 3) || d.n > 365) return false;
    }
    if (eat('/') && !time(d.time, 167)) return false;
    return true;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

date::sys_days posix_day(const PosixDate& d, date::year y) {
  switch (d.kind) {
    case PosixDate::Kind::kJulianNoLeap: {
      const int extra = (y.is_leap() && d.n >= 60) ? 1 : 0;
      return date::sys_days{y / 1 / 1} + days{d.n - 1 + extra};
    }
    case PosixDate::Kind::kZeroBased:
      return date::sys_days{y / 1 / 1} + days{d.n};
    case PosixDate::Kind::kMonthWeekDay: {
      const auto m = date::month{static_cast<unsigned>(d.month)};
      const auto wd = date::weekday{static_cast<unsigned>(d.weekday)};
      if (d.week == 5) return date::sys_days{y / m / wd[date::last]};
      return date::sys_days{y / m / wd[static_cast<unsigned>(d.week)]};
    }
  }
  return date::sys_days{y / 1 / 1};
}

Segment posix_segment(const PosixRule& r, sys_seconds t) {
  struct Change {
    sys_seconds at;
    seconds offset;
  };
  const int y = static_cast<int>(date::year_month_day{std::chrono::floor<days>(t)}.year());
  // Two years either side: transition times of up to a week past midnight can move a
  // change across a year boundary.
  std::vector<Change> changes;
  changes.reserve(10);
  for (int yy = y - 2; yy <= y + 2; ++yy) {
    const auto year = date::year{yy};
    changes.push_back({posix_day(r.start, year) + r.start.time - r.std_offset, r.dst_offset});
    changes.push_back({posix_day(r.end, year) + r.end.time - r.dst_offset, r.std_offset});
  }
  std::stable_sort(changes.begin(), changes.end(),
                   [](const Change& a, const Change& b) { return a.at < b.at; });
  Segment seg{kFarPast, date::sys_days{date::year{30000} / 1 / 1}, r.std_offset};
  for (const auto& c : changes) {
    if (c.at <= t) {
      seg.begin = c.at;
      seg.offset = c.offset;
    } else {
      seg.end = c.at;
      break;
    }
  }
  return seg;
}

// Where zone files are looked for, in order (set_zone_path); guarded by zone_path_mutex.
std::mutex zone_path_mutex;
std::vector<std::string>& zone_path_storage() {
  static std::vector<std::string> path = {"/usr/share/zoneinfo", "/usr/lib/zoneinfo",
                                          "/usr/share/lib/zoneinfo", "/etc/zoneinfo"};
  return path;
}

// A zone name as the IANA database spells them: relative, no "." or ".." component, no
// NUL, nothing that could leave the zone directory.
bool valid_zone_name(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '/' || name.back() == '/') return false;
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t slash = std::min(name.find('/', start), name.size());
    const std::string_view part = name.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    for (char c : part) {
      const auto u = static_cast<unsigned char>(c);
      if (!(std::isalnum(u) || c == '_' || c == '-' || c == '+' || c == '.')) return false;
    }
    start = slash + 1;
  }
  return true;
}

// One zone file (RFC 8536, TZif version 2 or later) as offsets over time.
struct ZoneData {
  seconds initial_offset{0};            // before the first transition (time type 0)
  std::vector<sys_seconds> at;          // transitions, ascending, offset changes only
  std::vector<seconds> offset;          // offset[i] holds from at[i]
  std::optional<std::string> footer;    // the POSIX TZ rule for times past the last one
};

std::int64_t read_be(const std::string& d, std::size_t pos, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(d[pos + i]);
  if (n == 4) return static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
  return static_cast<std::int64_t>(v);
}

// Nothing for a file that is not TZif version 2+ or is cut short.
std::optional<ZoneData> parse_tzif(const std::string& d) {
  constexpr std::size_t kHeader = 44;
  auto counts = [&](std::size_t h, std::array<std::uint32_t, 6>& c) {
    if (d.size() < h + kHeader || d.compare(h, 4, "TZif") != 0) return false;
    for (std::size_t i = 0; i < 6; ++i) {
      c[i] = static_cast<std::uint32_t>(read_be(d, h + 20 + 4 * i, 4));
    }
    return true;
  };
  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
  std::array<std::uint32_t, 6> c{};
  if (!counts(0, c) || d[4] < '2') return std::nullopt;
  const std::size_t v1 = std::size_t{c[3]} * 5 + std::size_t{c[4]} * 6 + c[5] +
                         std::size_t{c[2]} * 8 + c[1] + c[0];
  const std::size_t h2 = kHeader + v1;
  if (!counts(h2, c)) return std::nullopt;
  const std::size_t timecnt = c[3], typecnt = c[4];
  const std::size_t times = h2 + kHeader;
  const std::size_t idx = times + timecnt * 8;
  const std::size_t types = idx + timecnt;
  const std::size_t end = types + typecnt * 6 + c[5] + std::size_t{c[2]} * 12 + c[1] + c[0];
  if (typecnt == 0 || d.size() < end) return std::nullopt;

  ZoneData z;
  auto type_offset = [&](std::size_t t) { return seconds{read_be(d, types + t * 6, 4)}; };
  z.initial_offset = type_offset(0);
  seconds current = z.initial_offset;
  for (std::size_t i = 0; i < timecnt; ++i) {
    const auto t = static_cast<unsigned char>(d[idx + i]);
    if (t >= typecnt) return std::nullopt;
    const seconds off = type_offset(t);
    const sys_seconds when{seconds{read_be(d, times + i * 8, 8)}};
    if (!z.at.empty() && when <= z.at.back()) return std::nullopt;
    if (off == current) continue;  // an abbreviation or DST flag change only
    z.at.push_back(when);
    z.offset.push_back(off);
    current = off;
  }
  // The footer: "\n<rule>\n" after the version 2 data.
  if (d.size() >= end + 2 && d[end] == '\n' && d.back() == '\n') {
    z.footer = d.substr(end + 1, d.size() - end - 2);
  }
  return z;
}

// The zone file for `name` from the first directory of the path that has it.
std::optional<ZoneData> read_zone(std::string_view name) {
  std::vector<std::string> path;
  {
    std::lock_guard lock(zone_path_mutex);
    path = zone_path_storage();
  }
  for (const auto& dir : path) {
    std::ifstream in(dir + "/" + std::string(name), std::ios::binary);
    if (!in) continue;
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (auto z = parse_tzif(data)) return z;
  }
  return std::nullopt;
}

}  // namespace

void set_zone_path(std::vector<std::string> directories) {
  std::lock_guard lock(zone_path_mutex);
  zone_path_storage() = std::move(directories);
}

std::vector<std::string> zone_path() {
  std::lock_guard lock(zone_path_mutex);
  return zone_path_storage();
}

struct TimeZone::Impl {
  std::string name;
  ZoneData data;
  // Past `tail_from` (the last transition the file lists) the offsets come from `tail`.
  std::optional<PosixRule> tail;
  sys_seconds tail_from{};

  Segment listed(sys_seconds t) const {
    const auto it = std::upper_bound(data.at.begin(), data.at.end(), t);
    const auto i = static_cast<std::size_t>(it - data.at.begin());
    Segment s{kFarPast, kFarFuture, data.initial_offset};
    if (i > 0) {
      s.begin = data.at[i - 1];
      s.offset = data.offset[i - 1];
    }
    if (i < data.at.size()) s.end = data.at[i];
    return s;
  }

  Segment segment(sys_seconds t) const {
    if (tail && t >= tail_from) {
      Segment s = posix_segment(*tail, t);
      s.begin = std::max(s.begin, tail_from);
      return s;
    }
    Segment s = listed(t);
    if (tail) s.end = std::min(s.end, tail_from);
    return s;
  }
};

namespace {

std::shared_ptr<const TimeZone::Impl> load_zone(std::string_view name) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const TimeZone::Impl>, std::less<>> cache;
  std::lock_guard lock(mu);
  if (auto it = cache.find(name); it != cache.end()) return it->second;

  auto data = valid_zone_name(name) ? read_zone(name) : std::nullopt;
  if (!data) throw CronError("unknown time zone " + quoted(name));
  auto impl = std::make_shared<TimeZone::Impl>();
  impl->name = std::string(name);
  impl->data = std::move(*data);
  // Zone files list transitions only up to some year (2037 in many) and leave later years
  // to the footer rule, so apply it from the last listed transition on.
  if (!impl->data.at.empty() && impl->data.footer) {
    if (auto rule = PosixParser(*impl->data.footer).parse()) {
      const sys_seconds last = impl->data.at.back();
      if (posix_segment(*rule, last).offset == impl->data.offset.back()) {
        impl->tail = *rule;
        impl->tail_from = last;
      }
    }
  }
  cache.emplace(impl->name, impl);
  return impl;
}

[[noreturn]] void fail(std::string_view expression, const std::string& message) {
  throw CronError("cron " + quoted(expression) + ": " + message);
}

}  // namespace

TimeZone::TimeZone(std::string_view name) : impl_(load_zone(name)) {}

const std::string& TimeZone::name() const noexcept { return impl_->name; }

// ---------------------------------------------------------------------------------------
// Cron

Cron::Cron(std::string_view expression) {
  while (!expression.empty() && is_blank(expression.front())) expression.remove_prefix(1);
  while (!expression.empty() && is_blank(expression.back())) expression.remove_suffix(1);
  expression_ = std::string(expression);
  if (expression.empty()) {
    fail(expression, "empty expression; expected 5 fields, 6 with seconds, or a macro like @daily");
  }

  std::vector<std::string_view> fields = split_blanks(expression);
  if (fields.front().front() == '@') {
    std::string name(fields.front());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "@reboot") fail(expression, "@reboot is not a schedule (it has no fire times)");
    const auto it = std::find_if(kMacros.begin(), kMacros.end(),
                                 [&](const Macro& m) { return m.name == name; });
    if (it == kMacros.end()) {
      fail(expression, "unknown macro " + std::string(fields.front()) +
                           "; known: @yearly, @annually, @monthly, @weekly, @daily, "
                           "@midnight, @hourly");
    }
    if (fields.size() > 1) fail(expression, "a macro stands alone; remove the other fields");
    fields = split_blanks(it->fields);
  }
  if (fields.size() != 5 && fields.size() != 6) {
    fail(expression,
         "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second "
         "first), found " +
             std::to_string(fields.size()));
  }
  has_seconds_ = fields.size() == 6;
  const std::size_t o = has_seconds_ ? 1 : 0;

  auto parse = [&](std::string_view text, const FieldSpec& spec) {
    try {
      return parse_field(text, spec);
    } catch (const FieldError& e) {
      fail(expression, std::string(spec.name) + " field: " + e.message);
    }
  };
  const ParsedField second = has_seconds_ ? parse(fields[0], kSecond) : ParsedField{1, false};
  const ParsedField minute = parse(fields[o], kMinute);
  const ParsedField hour = parse(fields[o + 1], kHour);
  const ParsedField dom = parse(fields[o + 2], kDayOfMonth);
  const ParsedField month = parse(fields[o + 3], kMonth);
  ParsedField dow = parse(fields[o + 4], kDayOfWeek);
  if (dow.bits & (std::uint64_t{1} << 7)) dow.bits = (dow.bits | 1) & ~(std::uint64_t{1} << 7);

  seconds_ = std::bitset<60>(second.bits);
  minutes_ = std::bitset<60>(minute.bits);
  hours_ = std::bitset<24>(hour.bits);
  days_ = std::bitset<32>(dom.bits);
  months_ = std::bitset<13>(month.bits);
  weekdays_ = std::bitset<7>(dow.bits);
  day_of_month_star_ = dom.star;
  day_of_week_star_ = dow.star;
  elapsed_ = second.star || minute.star || hour.star;

  // When the two day fields are ANDed, a day-of-month that no selected month has (February
  // 30) would never fire. With OR the day-of-week alone fires every week.
  if (day_of_month_star_ || day_of_week_star_) {
    bool possible = false;
    for (int m = 1; m <= 12 && !possible; ++m) {
      if (!months_[static_cast<std::size_t>(m)]) continue;
      for (int d = 1; d <= kMaxDays[static_cast<std::size_t>(m)]; ++d) {
        if (days_[static_cast<std::size_t>(d)]) possible = true;
      }
    }
    if (!possible) {
      fail(expression,
           "day-of-month field: none of the selected days occurs in the selected months, so "
           "the schedule would never fire");
    }
  }
}

bool Cron::day_matches(int month_day, int weekday) const {
  const bool dom = days_[static_cast<std::size_t>(month_day)];
  const bool dow = weekdays_[static_cast<std::size_t>(weekday)];
  return (day_of_month_star_ || day_of_week_star_) ? (dom && dow) : (dom || dow);
}

std::optional<int> Cron::next_time_of_day(int from) const {
  int h = from / 3600;
  int m = from / 60 % 60;
  int s = from % 60;
  for (; h < 24; ++h, m = 0, s = 0) {
    if (!hours_[static_cast<std::size_t>(h)]) continue;
    for (; m < 60; ++m, s = 0) {
      if (!minutes_[static_cast<std::size_t>(m)]) continue;
      for (; s < 60; ++s) {
        if (seconds_[static_cast<std::size_t>(s)]) return h * 3600 + m * 60 + s;
      }
    }
  }
  return std::nullopt;
}

std::optional<seconds> Cron::next_local(seconds from, seconds limit) const {
  if (from >= limit) return std::nullopt;
  const auto first_day = std::chrono::floor<days>(from);
  int sod = static_cast<int>((from - first_day).count());
  const date::year_month_day ymd{date::sys_days{first_day}};
  int y = static_cast<int>(ymd.year());
  int m = static_cast<int>(unsigned(ymd.month()));
  int d = static_cast<int>(unsigned(ymd.day()));
  auto next_month = [&] {
    if (++m > 12) {
      m = 1;
      ++y;
    }
    d = 1;
    sod = 0;
  };
  while (true) {
    const date::sys_days day{date::year{y} / date::month{static_cast<unsigned>(m)} / 1};
    const seconds day_start = (day + days{d - 1}).time_since_epoch();
    if (day_start >= limit) return std::nullopt;
    if (!months_[static_cast<std::size_t>(m)]) {
      next_month();
      continue;
    }
    if (d > days_in_month(y, m)) {
      next_month();
      continue;
    }
    const int wd = static_cast<int>(date::weekday{day + days{d - 1}}.c_encoding());
    if (day_matches(d, wd)) {
      if (auto tod = next_time_of_day(sod)) {
        const seconds at = day_start + seconds{*tod};
        if (at >= limit) return std::nullopt;
        return at;
      }
    }
    ++d;
    sod = 0;
  }
}

sys_seconds Cron::next_after(UtcMicros after, const TimeZone& zone) const {
  const TimeZone::Impl& tz = *zone.impl_;
  sys_seconds t = std::chrono::floor<seconds>(after) + seconds{1};
  // Every valid expression fires within 28 years (a weekday on a given date); the horizon
  // only guards against a bug turning into an endless loop.
  const sys_seconds horizon = t + days{366 * 401};
  Segment seg = tz.segment(t);
  while (t < horizon) {
    std::optional<Segment> prev;
    if (seg.begin > kFarPast) prev = tz.segment(seg.begin - seconds{1});
    if (prev && !elapsed_ && seg.begin >= t && seg.offset > prev->offset) {
      // Clocks went forward at seg.begin: local times in the gap never happen. A fixed-time
      // schedule due in the gap fires once, at the change.
      const seconds gap_from = seg.begin.time_since_epoch() + prev->offset;
      const seconds gap_to = seg.begin.time_since_epoch() + seg.offset;
      if (next_local(gap_from, gap_to)) return seg.begin;
    }
    seconds from = t.time_since_epoch() + seg.offset;
    if (prev && !elapsed_ && prev->offset > seg.offset) {
      // Clocks went back at seg.begin: local times up to the old wall time happen again.
      // A fixed-time schedule already fired at their first occurrence.
      from = std::max(from, seg.begin.time_since_epoch() + prev->offset);
    }
    const seconds limit = std::min(seg.end, horizon).time_since_epoch() + seg.offset;
    if (auto local = next_local(from, limit)) return sys_seconds{*local - seg.offset};
    if (seg.end <= t) break;  // a segment must move time forward; never loop in place
    t = seg.end;
    seg = tz.segment(t);
  }
  throw CronError("cron " + quoted(expression_) + ": no fire time within 400 years");
}

sys_seconds Cron::next_after(UtcMicros after, std::string_view time_zone) const {
  return next_after(after, TimeZone(time_zone));
}

UtcMicros next_interval(UtcMicros after, std::chrono::microseconds every, UtcMicros anchor) {
  if (every.count() <= 0) throw std::invalid_argument("interval must be positive");
  const std::int64_t diff = (after - anchor).count();
  const std::int64_t step = every.count();
  std::int64_t k = diff / step;
  if (diff % step < 0) --k;  // floor division
  return anchor + every * (k + 1);
}

}  // namespace fastq
