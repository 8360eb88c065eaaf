// The statement home: every statement fastq runs on a job table lives once per dialect,
// in src/sql/postgres.sql and src/sql/sqlite.sql, under a name ("-- name: enqueue_jobs"
// then the SQL, as Procrastinate's queries.sql). The files are compiled into the core at
// build time (cmake/embed_sql.cmake); nothing is read from disk at run time.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fastq::sql {

enum class Dialect : std::uint8_t { kPostgres, kSqlite };

// Raised for a name no statement of the dialect has.
class UnknownStatement : public std::out_of_range {
 public:
  using std::out_of_range::out_of_range;
};

// The statement `name` of `dialect` (comments dropped, no trailing semicolon). The
// reference stays valid for the life of the process.
const std::string& statement(Dialect dialect, std::string_view name);

// The names of the dialect's statements, in file order.
std::vector<std::string> names(Dialect dialect);

// A statement template of the statement home with each {name} in it replaced by its text
// in `fill` (one pass: the text put in is not scanned again); a {name} not in `fill` stays
// as it is. For what no fixed statement can hold: a poller's own query and key column,
// COPY's column list, SQLite's claim branches. Only SQL text goes in, never a value.
using Fill = std::initializer_list<std::pair<std::string_view, std::string_view>>;
std::string fill_template(std::string_view tmpl, Fill fill);

// Parses a statement file's text: (name, statement) pairs in order. Throws
// std::invalid_argument on a repeated name, a name without a statement, or SQL before
// the first name.
std::vector<std::pair<std::string, std::string>> parse(std::string_view text);

}  // namespace fastq::sql
