// Which of the core's statements each PostgreSQL server session has prepared, and under
// what name: the bookkeeping of PgSession's named prepared statements (session.cpp).
//
// A PgSession may be made per call on a connection someone else owns (psycopg's, lent by
// Django), so what a server session has prepared is kept here, process-wide, keyed by the
// connection (its PGconn) and its server process (PQbackendPID): a reconnect that reuses
// the PGconn's address has another backend and starts afresh. A statement is prepared on
// its second run on a server session (the first runs unnamed, as a connection used once,
// Django's default of a connection per request, gains nothing from preparing), then
// executed by name. Names are "fastq_<generation>_<statement>": the generation is new for
// each server session seen, so a session forgotten and seen again never reuses a name its
// server may still hold, and none can clash with psycopg's own ("_pg3_<n>").
//
// Bounded: at most `max_sessions` server sessions (the least recently used is forgotten:
// those of closed connections first) and `max_statements` distinct statement texts
// process-wide (beyond that, statements run unnamed). Thread-safe (one mutex, held only for
// the lookup, never across a call to the server).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace fastq {

class PreparedNames {
 public:
  enum class Action {
    kUnnamed,  // run it unnamed (first run, or no room)
    kPrepare,  // prepare it as `name`, then run it by name; call prepared() once done
    kExecute,  // prepared already: run `name`
  };
  struct Plan {
    Action action = Action::kUnnamed;
    std::string name;
  };

  explicit PreparedNames(std::size_t max_sessions = 1024, std::size_t max_statements = 256);

  // What to do for `sql` on the server session (`conn`, `backend_pid`).
  Plan plan(const void* conn, int backend_pid, const std::string& sql);
  // `sql` is now prepared on that server session under `name` (from plan()).
  void prepared(const void* conn, int backend_pid, const std::string& sql, const std::string& name);
  // Whatever `conn`'s server session had prepared is gone (DEALLOCATE ALL, DISCARD ALL):
  // its statements are prepared again, under new names.
  void forget(const void* conn);

  std::size_t sessions() const;
  // Statements prepared on `conn`'s server session as far as this knows.
  std::size_t prepared_count(const void* conn) const;

  // The process-wide instance PgSession uses.
  static PreparedNames& process();

 private:
  struct ServerSession {
    int pid = 0;
    std::uint64_t generation = 0;
    std::uint64_t last_use = 0;
    // Per statement id: 1 run once, 2 prepared.
    std::unordered_map<std::uint32_t, std::uint8_t> state;
  };
  ServerSession& session_of(const void* conn, int pid);  // mu_ held

  mutable std::mutex mu_;
  std::size_t max_sessions_;
  std::size_t max_statements_;
  std::uint64_t clock_ = 0;
  std::uint64_t generations_ = 0;
  std::unordered_map<std::string, std::uint32_t> statement_ids_;
  std::unordered_map<const void*, ServerSession> sessions_;
};

}  // namespace fastq
