// The bookkeeping of PgSession's named prepared statements (fastq/prepared_names.hpp).
#include "fastq/prepared_names.hpp"

#include <algorithm>

namespace fastq {
namespace {

std::string name_of(std::uint64_t generation, std::uint32_t statement) {
  return "fastq_" + std::to_string(generation) + "_" + std::to_string(statement);
}

}  // namespace

PreparedNames::PreparedNames(std::size_t max_sessions, std::size_t max_statements)
    : max_sessions_(std::max<std::size_t>(max_sessions, 1)), max_statements_(max_statements) {}

PreparedNames::ServerSession& PreparedNames::session_of(const void* conn, int pid) {
  auto it = sessions_.find(conn);
  if (it == sessions_.end()) {
    if (sessions_.size() >= max_sessions_) {
      // The least recently used: most often a connection closed long ago.
      sessions_.erase(std::min_element(sessions_.begin(), sessions_.end(),
                                       [](const auto& a, const auto& b) {
                                         return a.second.last_use < b.second.last_use;
                                       }));
    }
    it = sessions_.emplace(conn, ServerSession{}).first;
    it->second.pid = pid;
    it->second.generation = ++generations_;
  } else if (it->second.pid != pid) {
    // The same PGconn address, another server process: a new connection.
    it->second = ServerSession{};
    it->second.pid = pid;
    it->second.generation = ++generations_;
  }
  it->second.last_use = ++clock_;
  return it->second;
}

PreparedNames::Plan PreparedNames::plan(const void* conn, int backend_pid, const std::string& sql) {
  std::lock_guard<std::mutex> lock(mu_);
  auto id_at = statement_ids_.find(sql);
  if (id_at == statement_ids_.end()) {
    if (statement_ids_.size() >= max_statements_) return {};
    id_at = statement_ids_.emplace(sql, static_cast<std::uint32_t>(statement_ids_.size())).first;
  }
  const std::uint32_t id = id_at->second;
  ServerSession& s = session_of(conn, backend_pid);
  std::uint8_t& state = s.state[id];
  if (state == 0) {
    state = 1;
    return {};
  }
  return {state == 2 ? Action::kExecute : Action::kPrepare, name_of(s.generation, id)};
}

void PreparedNames::prepared(const void* conn, int backend_pid, const std::string& sql,
                             const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto id_at = statement_ids_.find(sql);
  const auto it = sessions_.find(conn);
  if (id_at == statement_ids_.end() || it == sessions_.end() || it->second.pid != backend_pid) {
    return;
  }
  // Only under the name plan() gave for this server session as it is now (not one
  // forgotten meanwhile and seen again under a new generation).
  if (name_of(it->second.generation, id_at->second) == name) it->second.state[id_at->second] = 2;
}

void PreparedNames::forget(const void* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(conn);
}

std::size_t PreparedNames::sessions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

std::size_t PreparedNames::prepared_count(const void* conn) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = sessions_.find(conn);
  if (it == sessions_.end()) return 0;
  return static_cast<std::size_t>(std::count_if(it->second.state.begin(), it->second.state.end(),
                                                [](const auto& e) { return e.second == 2; }));
}

PreparedNames& PreparedNames::process() {
  static PreparedNames* names = new PreparedNames();  // never destroyed: used at exit
  return *names;
}

}  // namespace fastq
