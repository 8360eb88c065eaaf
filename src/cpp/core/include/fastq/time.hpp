// Timestamps as the Django schema stores them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "fastq/types.hpp"

namespace fastq {

// "YYYY-MM-DD HH:MM:SS.ffffff" in UTC: the text form Django's SQLite backend writes,
// and (with "+00" appended) a timestamptz literal for PostgreSQL.
std::string format_utc(Micros t);
// Parses the form above (fraction optional, 1-6 digits; a trailing "+00"/"+00:00"/"Z"
// accepted). Returns std::nullopt when the text is not a timestamp.
std::optional<Micros> parse_utc(std::string_view text);

}  // namespace fastq
