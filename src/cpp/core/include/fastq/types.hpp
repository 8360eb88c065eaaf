// Plain data shared by drivers, the worker and the bindings. No I/O, no Python.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fastq {

using Clock = std::chrono::system_clock;
// All persisted instants are microseconds since the Unix epoch, UTC.
using Micros = std::int64_t;

Micros now_micros();

// Job states as stored in the `state` column (lower case, stable: SQL and admin use them).
namespace state {
inline constexpr const char* kQueued = "queued";
inline constexpr const char* kRunning = "running";
inline constexpr const char* kSucceeded = "succeeded";
inline constexpr const char* kFailed = "failed";
}  // namespace state

// A job to insert. `args` must be a JSON array and `kwargs` a JSON object (text).
struct NewJob {
  std::string id;  // canonical UUID text (8-4-4-4-12, lower case)
  std::string task;
  std::string queue = "default";
  int priority = 0;
  std::string args = "[]";
  std::string kwargs = "{}";
  std::optional<Micros> run_at;  // empty: now
};

// A job handed to this worker by a claim. `lease_token` fences every later write.
struct ClaimedJob {
  std::string id;
  std::string task;
  std::string queue;
  std::string args;
  std::string kwargs;
  int priority = 0;
  int attempts = 0;  // including this one
  std::int64_t lease_token = 0;
};

enum class Outcome : std::uint8_t { kSucceeded, kFailed };

// The result of running one claimed job, written back by a batched completion.
struct Completion {
  std::string id;
  std::int64_t lease_token = 0;
  Outcome outcome = Outcome::kSucceeded;
  std::string result;      // JSON text when succeeded ("null" for None)
  std::string error_type;  // when failed: exception type (or a fastq reason)
  std::string error;       // when failed: message
  std::string traceback;   // when failed: formatted traceback, may be empty
};

// A job as read back for status and results (AsyncResult on the memory driver, tests).
struct JobRecord {
  std::string id;
  std::string task;
  std::string queue;
  std::string state;
  int priority = 0;
  int attempts = 0;
  std::string args;
  std::string kwargs;
  std::optional<std::string> result;
  std::string error_type;
  std::string error;
  std::string traceback;
};

struct ClaimRequest {
  std::vector<std::string> queues;  // never empty
  int limit = 100;
  std::chrono::milliseconds lease{30000};
  std::string worker;  // "host:pid", stored for operators
};

// A claimed job named by id and the lease token of its claim (renew, release).
struct JobRef {
  std::string id;
  std::int64_t lease_token = 0;
};

// A fresh random 63-bit fencing token (never 0).
std::int64_t new_lease_token();
// A fresh UUIDv7 in canonical text form (time-ordered: friendly to B-tree indexes).
std::string new_job_id();

}  // namespace fastq
