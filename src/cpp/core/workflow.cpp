#include "fastq/workflow.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

#include "fastq/json.hpp"

namespace fastq {

bool step_succeeded(const FinishedStep& s) { return s.state == state::kSucceeded; }

bool step_failed(const FinishedStep& s) {
  return s.state == state::kFailed || s.state == state::kDead;
}

std::string upstream_reason(const FinishedStep& parent) {
  if (step_failed(parent)) return kUpstreamReasonPrefix + parent.id + " failed";
  if (parent.state == state::kCancelled && parent.error.starts_with(kUpstreamReasonPrefix)) {
    return parent.error;
  }
  if (parent.state == state::kExpired) return kUpstreamReasonPrefix + parent.id + " expired";
  return kUpstreamReasonPrefix + parent.id + " was cancelled";
}

StepChange settle_step(const WaitingStep& child, std::span<const FinishedStep* const> arrivals) {
  StepChange out;
  out.parents_pending = std::max(0, child.parents_pending - static_cast<int>(arrivals.size()));
  const FinishedStep* first_bad = nullptr;
  const FinishedStep* first_failed = nullptr;
  for (const FinishedStep* p : arrivals) {
    if (!first_bad && !step_succeeded(*p)) first_bad = p;
    if (!first_failed && step_failed(*p)) first_failed = p;
  }
  switch (child.on_failure) {
    case OnFailure::kCancel:
      if (first_bad) {
        out.decision = StepDecision::kCancel;
        out.reason = upstream_reason(*first_bad);
        return out;
      }
      break;
    case OnFailure::kRunAnyway:
      break;
    case OnFailure::kHandler:
      if (first_failed) {
        out.decision = StepDecision::kRelease;
        out.failed_parent = first_failed->id;
        return out;
      }
      if (out.parents_pending == 0) {
        out.decision = StepDecision::kCancel;
        out.reason = kHandlerNotNeeded;
        return out;
      }
      out.decision = StepDecision::kWait;
      return out;
  }
  out.decision = out.parents_pending == 0 ? StepDecision::kRelease : StepDecision::kWait;
  return out;
}

std::string parent_value(const ParentResult& p) {
  if (p.state == state::kSucceeded) return p.result.value_or("null");
  std::string m = "{\"";
  m += kFailureMarkerKey;
  m += "\":{\"job_id\":";
  append_json_string(m, p.parent);
  m += ",\"state\":";
  append_json_string(m, p.state);
  m += ",\"error_type\":";
  append_json_string(m, p.error_type);
  m += ",\"error\":";
  append_json_string(m, p.error);
  m += "}}";
  return m;
}

std::string prepend_arg(std::string_view args, std::string_view first) {
  std::size_t open = args.find_first_not_of(" \t\r\n");
  if (open == std::string_view::npos || args[open] != '[') {
    throw std::invalid_argument("workflow step arguments are not a JSON array");
  }
  std::size_t next = args.find_first_not_of(" \t\r\n", open + 1);
  std::string out = "[";
  out.append(first);
  if (next != std::string_view::npos && args[next] != ']') out.push_back(',');
  out.append(args.substr(open + 1));
  return out;
}

std::string released_args(const std::string& args, PassResults pass, OnFailure on_failure,
                          std::span<const ParentResult> parents,
                          const std::string& failed_parent) {
  if (pass == PassResults::kNone) return args;
  if (on_failure == OnFailure::kHandler) {
    std::string id;
    append_json_string(id, failed_parent);
    return prepend_arg(args, id);
  }
  if (pass == PassResults::kOne) {
    return prepend_arg(args, parents.empty() ? std::string("null") : parent_value(parents[0]));
  }
  std::string list = "[";
  for (std::size_t i = 0; i < parents.size(); ++i) {
    if (i) list.push_back(',');
    list += parent_value(parents[i]);
  }
  list.push_back(']');
  return prepend_arg(args, list);
}

std::size_t settle(std::vector<FinishedStep> finished, const SettleOps& ops) {
  std::size_t released = 0;
  // A guard against a cycle written behind the API's back: no step is settled twice.
  std::set<std::string> seen;
  while (!finished.empty()) {
    std::map<std::string, const FinishedStep*> by_id;
    std::vector<std::string> ids;
    for (const auto& f : finished) {
      if (seen.insert(f.id).second) {
        by_id.emplace(f.id, &f);
        ids.push_back(f.id);
      }
    }
    if (ids.empty()) break;
    const auto edges = ops.load(ids);
    if (edges.empty()) break;
    // Children in first-seen order, each with its arrivals.
    std::vector<std::string> order;
    std::map<std::string, std::pair<WaitingStep, std::vector<const FinishedStep*>>> kids;
    for (const auto& [dep, child] : edges) {
      auto it = by_id.find(dep.parent);
      if (it == by_id.end()) continue;
      auto [k, fresh] = kids.try_emplace(child.id, child, std::vector<const FinishedStep*>{});
      if (fresh) order.push_back(child.id);
      k->second.second.push_back(it->second);
    }
    std::vector<StepUpdate> updates;
    std::vector<std::string> need_parents;
    for (const auto& id : order) {
      const auto& [child, arrivals] = kids.at(id);
      const StepChange ch = settle_step(child, arrivals);
      StepUpdate u{child.id,         ch.decision,        ch.parents_pending, ch.reason,
                   ch.failed_parent, child.pass_results, child.on_failure,   child.args};
      if (u.decision == StepDecision::kRelease && child.pass_results != PassResults::kNone &&
          child.on_failure != OnFailure::kHandler) {
        need_parents.push_back(child.id);
      }
      updates.push_back(std::move(u));
    }
    std::map<std::string, std::vector<ParentResult>> results;
    if (!need_parents.empty()) {
      for (auto& p : ops.parents(need_parents)) results[p.child].push_back(std::move(p));
    }
    std::vector<FinishedStep> next;
    for (auto& u : updates) {
      if (u.decision == StepDecision::kRelease) {
        const auto it = results.find(u.id);
        static const std::vector<ParentResult> none;
        try {
          u.args = released_args(u.args, u.pass_results, u.on_failure,
                                 it == results.end() ? none : it->second, u.failed_parent);
          ++released;
        } catch (const std::invalid_argument&) {
          // A row written behind the API's back: its own arguments are not a JSON array,
          // so nothing can be passed to it. It ends here rather than stopping the writer.
          u.decision = StepDecision::kCancel;
          u.reason = kArgumentsNotAnArray;
        }
      }
      if (u.decision == StepDecision::kCancel) {
        next.push_back(FinishedStep{u.id, state::kCancelled, kCancelledType, u.reason});
      }
    }
    ops.write(updates);
    finished = std::move(next);
  }
  return released;
}

}  // namespace fastq

namespace fastq {

std::vector<int> check_workflow(std::span<const NewJob> jobs, std::span<const Dependency> deps) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (!index.emplace(jobs[i].id, i).second) {
      throw std::invalid_argument("workflow: job id " + jobs[i].id + " appears twice");
    }
    if (!jobs[i].unique_key.empty()) {
      throw std::invalid_argument("workflow: step " + jobs[i].id +
                                  " has a unique key; workflow steps cannot be unique jobs");
    }
  }
  std::vector<int> pending(jobs.size(), 0);
  std::vector<std::vector<std::size_t>> out(jobs.size());
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& d : deps) {
    const auto p = index.find(d.parent);
    const auto c = index.find(d.child);
    if (p == index.end() || c == index.end()) {
      throw std::invalid_argument("workflow: dependency " + d.parent + " -> " + d.child +
                                  " names a job outside the workflow");
    }
    if (!seen.emplace(d.parent, d.child).second) {
      throw std::invalid_argument("workflow: dependency " + d.parent + " -> " + d.child +
                                  " appears twice");
    }
    if (p->second == c->second) {
      throw std::invalid_argument("workflow: job " + d.parent + " depends on itself");
    }
    ++pending[c->second];
    out[p->second].push_back(c->second);
  }
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (jobs[i].on_failure == OnFailure::kHandler && pending[i] == 0) {
      throw std::invalid_argument("workflow: error handler " + jobs[i].id + " has no parent");
    }
  }
  // Kahn's algorithm: every job must be reachable in a topological order.
  std::vector<int> in = pending;
  std::vector<std::size_t> ready;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (in[i] == 0) ready.push_back(i);
  }
  std::size_t done = 0;
  while (!ready.empty()) {
    const std::size_t i = ready.back();
    ready.pop_back();
    ++done;
    for (std::size_t c : out[i]) {
      if (--in[c] == 0) ready.push_back(c);
    }
  }
  if (done != jobs.size()) throw std::invalid_argument("workflow: the dependencies form a cycle");
  return pending;
}

}  // namespace fastq
