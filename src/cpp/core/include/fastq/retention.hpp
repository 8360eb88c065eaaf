// Retention: how long finished jobs are kept, and the pruner's pacing (FASTQ["RETENTION"]).
//
// The elected leader (scheduler.cpp) prunes continuously in small batches: every batch is
// one DELETE of at most `batch` rows of one final state (Driver::prune_jobs), and a pass
// stops when every state is caught up or when it has run for `pass_budget`, whichever
// comes first, so that a backlog of millions of rows never holds the database (or the
// scheduler's thread) for long. The decision "what to prune now, how many, when next" is
// Pruner::next()/done(): pure, no thread, no database (tests/cpp/test_retention.cpp).
//
// A job something still depends on is never pruned before it (the drivers' statement):
//  * a job a fastq_schedule_run row names (until that row is pruned, keep_runs);
//  * a job a fastq_poller_mark row names (the alert enqueued for that mark);
//  * a step of a workflow that still has a waiting, queued or running step (the steps to
//    come read their parents' results from the parents' rows). With the last steps the
//    workflow's fastq_dependency edges and its fastq_workflow row go too.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fastq/types.hpp"

namespace fastq {

// The final states, in the order a pass visits them.
inline constexpr std::array<const char*, 5> kFinalStates = {"succeeded", "failed", "dead",
                                                            "expired", "cancelled"};

// Index into kFinalStates; -1 when `state` is not a final state.
int final_state_index(const std::string& state);

struct RetentionConfig {
  // Per final state (kFinalStates order): how long a finished job is kept, in
  // microseconds since its finished_at; nullopt keeps it for ever.
  std::array<std::optional<Micros>, 5> keep = {
      Micros{86'400'000'000}, Micros{14 * 86'400'000'000LL}, Micros{14 * 86'400'000'000LL},
      Micros{14 * 86'400'000'000LL}, Micros{14 * 86'400'000'000LL}};
  int batch = 1000;                // rows per DELETE at most
  Micros pass_budget = 200'000;    // a pass stops after this long (then `breath`)
  Micros breath = 100'000;         // pause after a pass cut short by its budget
  Micros idle = 5'000'000;         // pause after a pass that caught every state up
  bool enabled() const;            // some state has a retention
};

// Each final state with a retention and the time before which its jobs go (`now` minus
// its retention), in kFinalStates order; states kept for ever are left out. What the
// store's upkeep (Driver::upkeep) drops whole days of the finished log by: every day
// ending by the succeeded jobs' cutoff (most jobs end succeeded), the jobs in it that
// stay (a later cutoff, kept for ever, depended on) copied out first. Pure.
using RetentionCutoffs = std::vector<std::pair<std::string, Micros>>;
RetentionCutoffs retention_cutoffs(const RetentionConfig& config, Micros now);

// One batch to run: of the jobs in `state` finished before `before`, the next `limit` in
// (finished_at, id) order after the cursor (empty: from the oldest), delete those nothing
// depends on. The cursor makes a pass walk past the jobs it must keep instead of reading
// them again with every batch.
struct PruneRequest {
  std::string state;
  Micros before = 0;
  int limit = 1000;
  bool dry_run = false;  // count every job the request would delete (no limit), delete none
  std::string after_at;  // cursor: the last row of the previous batch (PruneResult), as
  std::string after_id;  // the driver wrote it; empty: from the oldest
  // The state's retention (0: not said). With succeeded jobs kept a day or more, a store
  // that drops whole days of the log (Driver::upkeep) leaves those days to it and deletes
  // row by row only what lies outside them.
  Micros keep = 0;
};

// Succeeded jobs kept at least this long are dropped a day at a time where the store can
// (PostgreSQL's day partitions); kept shorter, they are deleted row by row everywhere.
inline constexpr Micros kWholeDaysFrom = 86'400'000'000;

struct PruneResult {
  std::size_t deleted = 0;  // (a dry run: how many would be)
  std::size_t scanned = 0;  // rows of the batch, kept ones included: < limit means the end
  std::string last_at;      // the cursor for the next batch
  std::string last_id;
};

// What next() says: run `request`, or nothing until `wake`.
struct PruneAction {
  std::optional<PruneRequest> request;
  Micros wake = 0;
};

// The pacing of the leader's pruning. Call next(now); when it gives a request, run it and
// report with done(result); call next() again. Time is the database's clock.
class Pruner {
 public:
  explicit Pruner(RetentionConfig config = {}) : cfg_(std::move(config)) {}

  PruneAction next(Micros now);
  void done(const PruneResult& result);

  const RetentionConfig& config() const { return cfg_; }
  std::uint64_t deleted() const { return deleted_; }  // in total

 private:
  RetentionConfig cfg_;
  bool in_pass_ = false;
  Micros pass_start_ = 0;
  Micros pass_now_ = 0;  // `now` of the pass's first request: the cutoffs stay put
  int index_ = 0;        // the state being pruned
  Micros wake_ = 0;
  std::optional<PruneRequest> pending_;
  std::string after_at_, after_id_;  // the cursor within the state being pruned
  std::uint64_t deleted_ = 0;
};

}  // namespace fastq
