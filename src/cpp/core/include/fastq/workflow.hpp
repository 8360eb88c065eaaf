// Workflows: the dependency state machine of chains, groups, chords and graphs, kept in
// the database. A step with parents is inserted in state `waiting` with parents_pending =
// its number of parents (table fastq_dependency holds the edges); no claim scans that
// state. The write that gives a parent its final state (a completion batch, a rescue, an
// interrupt, a cancel) settles the parent's children in the same transaction:
//
//   std::vector<FinishedStep> finished = ...;            // rows this write just finished
//   fastq::settle(finished, ops);                         // driver's load / results / write
//
// settle() runs waves: the children of the finished steps are read (locked on
// PostgreSQL), each is decided by settle_step() (a pure function), written, and the
// children it cancelled are the next wave's finished steps. A success path is one wave;
// only failures cascade. Because every edge is consumed by the one write that finished its
// parent (fenced by lease token) and the child's row is locked (PostgreSQL: FOR UPDATE;
// SQLite: the writer lock), a child is released exactly once.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fastq/types.hpp"

namespace fastq {

// error_type of a step cancelled by the workflow (its reason names the upstream job).
inline constexpr const char* kUpstreamReasonPrefix = "upstream job ";
// The key of the object standing in a results list for a parent that did not succeed
// (OnFailure::kRunAnyway): {"__fastq_failed__": {"job_id", "state", "error_type", "error"}}.
inline constexpr const char* kFailureMarkerKey = "__fastq_failed__";
// Reason of an error handler no parent needed.
inline constexpr const char* kHandlerNotNeeded = "not needed: no upstream step failed";
// Reason of a released step whose own arguments (written behind the API's back) are not a
// JSON array, so that its parents' results cannot be passed to it.
inline constexpr const char* kArgumentsNotAnArray =
    "its arguments are not a JSON array: its parents' results cannot be passed to it";
// Reason of a step cancelled with its whole workflow (cancel_workflow).
inline constexpr const char* kWorkflowCancelled = "cancelled with its workflow";

// A step that just reached a final state (succeeded, failed, dead, expired, cancelled).
struct FinishedStep {
  std::string id;
  std::string state;
  std::string error_type;
  std::string error;
};

// A child in state waiting, as stored.
struct WaitingStep {
  std::string id;
  int parents_pending = 0;
  PassResults pass_results = PassResults::kNone;
  OnFailure on_failure = OnFailure::kCancel;
  std::string args;  // its own arguments (JSON array)
};

enum class StepDecision : std::uint8_t { kWait, kRelease, kCancel };

struct StepChange {
  StepDecision decision = StepDecision::kWait;
  int parents_pending = 0;    // after these arrivals
  std::string reason;         // kCancel: the error recorded
  std::string failed_parent;  // kRelease of a handler: the parent whose failure it handles
};

// true for succeeded; false for the other final states.
bool step_succeeded(const FinishedStep& s);
// true for the states that make an error handler run (failed, dead).
bool step_failed(const FinishedStep& s);

// Why a child of `parent` (which did not succeed) is cancelled: "upstream job <id>
// failed" (failed, dead), "... was cancelled", "... expired"; a parent itself cancelled
// for an upstream reason passes that reason on, so the whole cascade names the job that
// failed first.
std::string upstream_reason(const FinishedStep& parent);

// Decides what the arrival of `arrivals` (parents of `child` that finished in this wave,
// one entry per edge) does to `child`. Pure.
StepChange settle_step(const WaitingStep& child, std::span<const FinishedStep* const> arrivals);

// One parent's contribution to a released child's arguments, in edge order.
struct ParentResult {
  std::string child;
  std::string parent;
  std::string state;
  std::optional<std::string> result;  // JSON text when succeeded
  std::string error_type;
  std::string error;
};

// The JSON value a parent contributes: its result, or the failure marker.
std::string parent_value(const ParentResult& p);
// `args` (a JSON array) with `first` (JSON text) as its new first element.
std::string prepend_arg(std::string_view args, std::string_view first);
// The arguments a released child runs with: its own `args`, with its parents' values
// prepended as `pass` says (kOne: the first parent's value; kList: a list of them all),
// or, for an error handler, the failed parent's id (unless kNone).
std::string released_args(const std::string& args, PassResults pass, OnFailure on_failure,
                          std::span<const ParentResult> parents, const std::string& failed_parent);

// A decided child, for the driver to write.
struct StepUpdate {
  std::string id;
  StepDecision decision = StepDecision::kWait;
  int parents_pending = 0;
  std::string reason;         // kCancel
  std::string failed_parent;  // kRelease of a handler
  PassResults pass_results = PassResults::kNone;
  OnFailure on_failure = OnFailure::kCancel;
  std::string args;           // kRelease: filled by settle() when parents' values pass
};

// What a driver lends settle().
struct SettleOps {
  // Edges from `parents` to children still waiting, each child read with its row locked
  // against concurrent settles (PostgreSQL: SELECT ... FOR UPDATE, in id order).
  std::function<std::vector<std::pair<Dependency, WaitingStep>>(
      const std::vector<std::string>& parents)>
      load;
  // Own args of these children and their parents' values, ordered by child then position.
  std::function<std::vector<ParentResult>(const std::vector<std::string>& children)> parents;
  // Writes the decided children (only those whose row changes).
  std::function<void(std::span<const StepUpdate>)> write;
};

// Runs the waves (see the top of this file); returns how many children it released.
std::size_t settle(std::vector<FinishedStep> finished, const SettleOps& ops);

}  // namespace fastq
