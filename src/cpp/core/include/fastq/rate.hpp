// Rate limits: the generic cell rate algorithm (GCRA) over one bucket. Pure arithmetic;
// drivers keep each bucket's `tat` (theoretical arrival time) in the database so that
// every worker sharing the database draws from the same bucket.
#pragma once

#include <algorithm>
#include <charconv>
#include <optional>
#include <string_view>

#include "fastq/types.hpp"

namespace fastq {

// Reserves up to `want` tokens from a bucket granting one token per `interval`, at most
// `burst` at once, for use within `horizon` from `now`; updates `tat`. Token i of the
// grant may be used `max(0, base_delay + i * interval)` microseconds from now; tokens
// beyond `granted` would be due from `base_delay + granted * interval` on.
inline RateGrant gcra_reserve(Micros& tat, Micros now, Micros interval, int burst, int want,
                              Micros horizon) {
  RateGrant g;
  if (interval <= 0) {
    g.granted = want;
    return g;
  }
  const Micros tolerance = static_cast<Micros>(std::max(burst, 1) - 1) * interval;
  const Micros start = std::max(tat, now);
  g.base_delay = start - tolerance - now;
  const Micros room = now + horizon + tolerance - start;
  if (room >= 0 && want > 0) {
    g.granted = static_cast<int>(std::min<Micros>(room / interval + 1, want));
  }
  tat = start + static_cast<Micros>(g.granted) * interval;
  return g;
}

// "20/s", "100/m", "3/h" (also "/sec", "/min", "/hour") -> microseconds per token.
// Returns nullopt when the text is not a rate.
inline std::optional<Micros> parse_rate(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  double count = 0;
  const auto num = text.substr(0, slash);
  if (std::from_chars(num.data(), num.data() + num.size(), count).ec != std::errc{} ||
      count <= 0) {
    return std::nullopt;
  }
  const auto unit = text.substr(slash + 1);
  double seconds = 0;
  if (unit == "s" || unit == "sec" || unit == "second") {
    seconds = 1;
  } else if (unit == "m" || unit == "min" || unit == "minute") {
    seconds = 60;
  } else if (unit == "h" || unit == "hour") {
    seconds = 3600;
  } else {
    return std::nullopt;
  }
  return static_cast<Micros>(seconds * 1e6 / count);
}

}  // namespace fastq
