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
// store's upkeep (Driver::upkeep) drops whole partitions of the finished log by: every
// partition ending by the succeeded jobs' cutoff (most jobs end succeeded), the jobs in
// it that stay (a later cutoff, kept for ever, depended on) copied out first. Pure.
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
  // The state's retention (0: not said). With succeeded jobs kept for a while, a store
  // that drops whole partitions of the log (Driver::upkeep, log_partitions()) leaves
  // them to it and deletes row by row only what lies outside them.
  Micros keep = 0;
};

// How the finished log is partitioned where the store partitions it (PostgreSQL,
// migrations 0017 and 0018), and how often the leader's upkeep (Driver::upkeep) runs: the
// partitions make retention a DROP of whole partitions instead of a DELETE (and then a
// VACUUM) of every row. A partition is dropped once it ends by the succeeded jobs' cutoff,
// so a success lives between its retention and its retention plus a partition's width.
struct LogPartitions {
  std::int64_t width = 86'400;     // seconds a partition covers, aligned to the epoch
  std::int64_t ahead = 7 * 86'400;  // seconds of partitions made ahead of now
  Micros every = 3'600'000'000;    // between two upkeeps
  // Whether the partitions drop the succeeded jobs (some retention for them): then the
  // leader's row-by-row prune of them reads only what lies outside the partitions.
  bool drops_succeeded = false;
};

// Days, as before, when successes are kept a day or more (or for ever); kept less, the
// largest width of a fixed list dividing a day (1, 2, 3, 5, 6, 10, 15, 20, 30 s, 1, 2, 5,
// 10, 15, 30 min, 1, 2, 3, 4, 6, 12 h) that fits ten times in the retention, so that a
// partition holds at most a tenth of the window (6 s for a minute, 5 min for an hour,
// 1 s below 20 s). Then partitions are made two minutes or four widths ahead, whichever is
// longer (a new leader takes over within a lease, well inside that; every partition is
// planned for by the statements that read the whole log, so no more), and the upkeep runs
// every half width (at least every second, at most every hour), so a partition is dropped
// within half a width of its end passing the cutoff. Pure.
LogPartitions log_partitions(const RetentionConfig& config);

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
