#include "fastq/time.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <random>

namespace fastq {

Micros now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             Clock::now().time_since_epoch())
      .count();
}

std::string format_utc(Micros t) {
  using namespace std::chrono;
  // The text form holds years 0001 to 9999: an instant outside (a hostile or sentinel
  // value such as the smallest Micros) is clamped to the nearest end, which still sorts
  // before or after every instant that form can hold, and never overflows below.
  constexpr Micros kFirst = -62'135'596'800'000'000;  // 0001-01-01 00:00:00 UTC
  constexpr Micros kLast = 253'402'300'799'999'999;   // 9999-12-31 23:59:59.999999 UTC
  t = std::clamp(t, kFirst, kLast);
  const sys_time<microseconds> tp{microseconds{t}};
  const auto day = floor<days>(tp);
  const year_month_day ymd{day};
  const hh_mm_ss hms{tp - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02ld:%02ld:%02ld.%06ld",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<long>(hms.hours().count()),
                static_cast<long>(hms.minutes().count()),
                static_cast<long>(hms.seconds().count()),
                static_cast<long>(hms.subseconds().count()));
  return buf;
}

namespace {
bool take_int(std::string_view& s, std::size_t n, int& out) {
  if (s.size() < n) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + n, out);
  if (ec != std::errc() || p != s.data() + n) return false;
  s.remove_prefix(n);
  return true;
}
bool take_char(std::string_view& s, char c) {
  if (s.empty() || s.front() != c) return false;
  s.remove_prefix(1);
  return true;
}
}  // namespace

std::optional<Micros> parse_utc(std::string_view s) {
  using namespace std::chrono;
  int y, mo, d, h, mi, sec;
  if (!take_int(s, 4, y) || !take_char(s, '-') || !take_int(s, 2, mo) || !take_char(s, '-') ||
      !take_int(s, 2, d)) {
    return std::nullopt;
  }
  if (!take_char(s, ' ') && !take_char(s, 'T')) return std::nullopt;
  if (!take_int(s, 2, h) || !take_char(s, ':') || !take_int(s, 2, mi) || !take_char(s, ':') ||
      !take_int(s, 2, sec)) {
    return std::nullopt;
  }
  long frac = 0;
  if (take_char(s, '.')) {
    int digits = 0;
    while (!s.empty() && s.front() >= '0' && s.front() <= '9') {
      if (digits < 6) {
        frac = frac * 10 + (s.front() - '0');
        ++digits;
      }
      s.remove_prefix(1);
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 6; ++digits) frac *= 10;
  }
  if (!(s.empty() || s == "+00" || s == "+00:00" || s == "Z")) return std::nullopt;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  const auto tp = sys_days{ymd} + hours{h} + minutes{mi} + seconds{sec} + microseconds{frac};
  return duration_cast<microseconds>(tp.time_since_epoch()).count();
}

std::string worker_lost_message(int attempts) {
  return kWorkerLostPrefix + std::to_string(attempts) + kWorkerLostSuffix;
}

std::string interrupted_message(int interrupted) {
  return kInterruptedPrefix + std::to_string(interrupted) + kInterruptedSuffix;
}

std::int64_t new_lease_token() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::int64_t t;
  do {
    t = static_cast<std::int64_t>(rng() >> 1);
  } while (t == 0);
  return t;
}

std::string new_job_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto ms = static_cast<std::uint64_t>(now_micros() / 1000);
  const std::uint64_t r1 = rng();
  const std::uint64_t r2 = rng();
  unsigned char b[16];
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
  b[6] = static_cast<unsigned char>(0x70 | (r1 & 0x0F));
  b[7] = static_cast<unsigned char>(r1 >> 8);
  b[8] = static_cast<unsigned char>(0x80 | ((r1 >> 16) & 0x3F));
  for (int i = 9; i < 16; ++i) b[i] = static_cast<unsigned char>(r2 >> (8 * (i - 9)));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0xF]);
  }
  return out;
}

}  // namespace fastq
