// The batch poller: one cycle of a tracking poller (`@fastq.poller` in Python).
//
// A cycle walks the keys (primary keys) of a query in keyset-paginated pages: each page is
// one round trip, `WHERE key > last ORDER BY key LIMIT batch`, so memory stays flat and no
// page is skipped or repeated when rows come and go meanwhile. For every key it enqueues
// one check job, task(key), with the unique key "poll:<poller>:<key>": a row whose
// previous check is still queued or running gets no second one (the read flags such rows,
// and the unique index holds against a race). The jobs' run_at are spread evenly over
// the cycle (start + i * gap for the i-th row by key, gap = span / rows, but never less
// than min_gap, the task's rate-limit interval), so a provider sees a steady trickle
// rather than a burst, and each row a steady cadence. Rows that left the query
// (delivered, cancelled) are simply not walked.
//
// With a stale query (the rows waiting too long), a second walk offers their keys to
// KeysetSource::enqueue_once(), which enqueues alert(key) once per row, ever.
//
// Python only supplies the SQL (QuerySet.query.sql_with_params()); walking, spreading and
// the bulk inserts are here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "fastq/driver.hpp"
#include "fastq/types.hpp"

namespace fastq {

struct PollCycle {
  std::string name;  // the poller: unique keys and stale marks are scoped by it
  KeysetQuery rows;
  std::optional<KeysetQuery> stale;
  // Templates: task, queue, priority, max_attempts, limits, rate_key. The id, args
  // ([key]), run_at and unique key are set per row.
  NewJob check;
  NewJob alert;  // task empty: no alerts
  Micros start = 0;    // run_at of the first check
  Micros span = 0;     // spread the checks over this long
  Micros min_gap = 0;  // but at least this far apart
  int batch = 5000;    // keys per page (and per INSERT)
};

struct PollStats {
  std::int64_t rows = 0;       // rows of the query (counted before the walk)
  std::int64_t enqueued = 0;   // checks enqueued
  std::int64_t pending = 0;    // rows whose previous check was still queued or running
  std::int64_t stale = 0;      // stale keys walked
  std::int64_t alerted = 0;    // alerts enqueued (stale rows seen for the first time)
  std::int64_t pages = 0;      // round trips of select_keys
  Micros gap = 0;              // spacing of the checks' run_at
};

// Runs one cycle: reads through the driver's keyset source (keyset_source(), driver.hpp)
// and enqueues through its job store. Throws DriverError (database, or a driver that
// offers no keyset source) or std::invalid_argument (a bad query).
PollStats run_poll(Driver& driver, const PollCycle& cycle);

// A key as text (unique keys, marks) and as JSON (the check's argument).
std::string key_text(const SqlValue& key);
std::string key_json(const SqlValue& key);

// Django's "%s"/"%%" parameter style in the driver's: "$1".. (first_index = 1) for
// PostgreSQL, "?" for SQLite (numbered = false). Throws std::invalid_argument on another
// "%" escape, which Django never produces.
std::string native_placeholders(const std::string& sql, bool numbered, int first_index = 1);

}  // namespace fastq
