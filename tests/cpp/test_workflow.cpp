// Workflows: the dependency state machine without a database (settle_step, the argument
// builders, check_workflow), then the same contract on every driver.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "fastq/workflow.hpp"
#include "fixtures.hpp"

namespace fastq {
namespace {

FinishedStep done(std::string id, std::string st, std::string error = "") {
  return FinishedStep{std::move(id), std::move(st), "", std::move(error)};
}

std::vector<const FinishedStep*> ptrs(const std::vector<FinishedStep>& v) {
  std::vector<const FinishedStep*> out;
  for (const auto& f : v) out.push_back(&f);
  return out;
}

TEST(SettleStep, WaitsUntilTheLastParentThenReleases) {
  WaitingStep child{"c", 3, PassResults::kList, OnFailure::kCancel, "[]"};
  const std::vector<FinishedStep> one{done("a", state::kSucceeded)};
  auto ch = settle_step(child, ptrs(one));
  EXPECT_EQ(ch.decision, StepDecision::kWait);
  EXPECT_EQ(ch.parents_pending, 2);
  child.parents_pending = 2;
  const std::vector<FinishedStep> two{done("b", state::kSucceeded), done("d", state::kSucceeded)};
  ch = settle_step(child, ptrs(two));
  EXPECT_EQ(ch.decision, StepDecision::kRelease);
  EXPECT_EQ(ch.parents_pending, 0);
}

TEST(SettleStep, AFailedParentCancelsNamingIt) {
  WaitingStep child{"c", 2, PassResults::kOne, OnFailure::kCancel, "[]"};
  const std::vector<FinishedStep> f{done("a", state::kFailed)};
  auto ch = settle_step(child, ptrs(f));
  EXPECT_EQ(ch.decision, StepDecision::kCancel);
  EXPECT_EQ(ch.reason, "upstream job a failed");
  const std::vector<FinishedStep> d{done("x", state::kDead)};
  EXPECT_EQ(settle_step(child, ptrs(d)).reason, "upstream job x failed");
  const std::vector<FinishedStep> e{done("y", state::kExpired)};
  EXPECT_EQ(settle_step(child, ptrs(e)).reason, "upstream job y expired");
  const std::vector<FinishedStep> c{done("z", state::kCancelled, "cancelled before it started")};
  EXPECT_EQ(settle_step(child, ptrs(c)).reason, "upstream job z was cancelled");
}

TEST(SettleStep, ACascadeKeepsNamingTheJobThatFailedFirst) {
  WaitingStep child{"c", 1, PassResults::kOne, OnFailure::kCancel, "[]"};
  const std::vector<FinishedStep> f{done("b", state::kCancelled, "upstream job a failed")};
  EXPECT_EQ(settle_step(child, ptrs(f)).reason, "upstream job a failed");
}

TEST(SettleStep, RunAnywayCountsFailuresAsFinished) {
  WaitingStep child{"c", 2, PassResults::kList, OnFailure::kRunAnyway, "[]"};
  const std::vector<FinishedStep> f{done("a", state::kFailed)};
  auto ch = settle_step(child, ptrs(f));
  EXPECT_EQ(ch.decision, StepDecision::kWait);
  EXPECT_EQ(ch.parents_pending, 1);
  child.parents_pending = 1;
  const std::vector<FinishedStep> g{done("b", state::kDead)};
  EXPECT_EQ(settle_step(child, ptrs(g)).decision, StepDecision::kRelease);
}

TEST(SettleStep, AHandlerRunsOnAFailureAndIsCancelledOtherwise) {
  WaitingStep h{"h", 2, PassResults::kOne, OnFailure::kHandler, "[]"};
  const std::vector<FinishedStep> ok{done("a", state::kSucceeded)};
  auto ch = settle_step(h, ptrs(ok));
  EXPECT_EQ(ch.decision, StepDecision::kWait);
  h.parents_pending = 1;
  const std::vector<FinishedStep> ok2{done("b", state::kSucceeded)};
  ch = settle_step(h, ptrs(ok2));
  EXPECT_EQ(ch.decision, StepDecision::kCancel);
  EXPECT_EQ(ch.reason, kHandlerNotNeeded);
  h.parents_pending = 2;
  const std::vector<FinishedStep> bad{done("b", state::kDead)};
  ch = settle_step(h, ptrs(bad));
  EXPECT_EQ(ch.decision, StepDecision::kRelease);
  EXPECT_EQ(ch.failed_parent, "b");
  // A cancelled parent is not a failure of its own: the handler is not run for it.
  h.parents_pending = 1;
  const std::vector<FinishedStep> cancelled{done("b", state::kCancelled, "upstream job a failed")};
  EXPECT_EQ(settle_step(h, ptrs(cancelled)).decision, StepDecision::kCancel);
}

TEST(ReleasedArgs, PrependsOneResultAListOrTheFailedId) {
  EXPECT_EQ(prepend_arg("[]", "1"), "[1]");
  EXPECT_EQ(prepend_arg("[2,3]", "1"), "[1,2,3]");
  EXPECT_EQ(prepend_arg(" [ ] ", "{\"a\":1}"), "[{\"a\":1} ] ");
  EXPECT_THROW(prepend_arg("{}", "1"), std::invalid_argument);
  std::vector<ParentResult> ps{{"c", "p1", state::kSucceeded, "10", "", ""},
                               {"c", "p2", state::kFailed, std::nullopt, "ValueError", "no"}};
  EXPECT_EQ(released_args("[5]", PassResults::kNone, OnFailure::kCancel, ps, ""), "[5]");
  EXPECT_EQ(released_args("[5]", PassResults::kOne, OnFailure::kCancel, ps, ""), "[10,5]");
  EXPECT_EQ(released_args("[]", PassResults::kList, OnFailure::kRunAnyway, ps, ""),
            "[[10,{\"__fastq_failed__\":{\"job_id\":\"p2\",\"state\":\"failed\","
            "\"error_type\":\"ValueError\",\"error\":\"no\"}}]]");
  EXPECT_EQ(released_args("[]", PassResults::kOne, OnFailure::kHandler, ps, "p2"), "[\"p2\"]");
  EXPECT_EQ(released_args("[]", PassResults::kNone, OnFailure::kHandler, ps, "p2"), "[]");
  // A succeeded parent that stored no result passes null.
  std::vector<ParentResult> none{{"c", "p", state::kSucceeded, std::nullopt, "", ""}};
  EXPECT_EQ(released_args("[]", PassResults::kOne, OnFailure::kCancel, none, ""), "[null]");
}

Completion succeeded(const ClaimedJob& c, std::string result, std::int64_t token = 0) {
  Completion x;
  x.id = c.id;
  x.lease_token = token ? token : c.lease_token;
  x.result = std::move(result);
  return x;
}

NewJob step(std::string id, PassResults pass = PassResults::kOne,
            OnFailure on_failure = OnFailure::kCancel, std::string wf = "") {
  NewJob j;
  j.id = std::move(id);
  j.task = "t";
  j.args = "[]";
  j.workflow_id = std::move(wf);
  j.pass_results = pass;
  j.on_failure = on_failure;
  return j;
}

TEST(CheckWorkflow, CountsParentsAndRefusesBadGraphs) {
  std::vector<NewJob> jobs{step("a"), step("b"), step("c")};
  std::vector<Dependency> deps{{"a", "c", 0}, {"b", "c", 1}};
  EXPECT_EQ(check_workflow(jobs, deps), (std::vector<int>{0, 0, 2}));
  std::vector<Dependency> cycle{{"a", "b", 0}, {"b", "c", 0}, {"c", "a", 0}};
  EXPECT_THROW(check_workflow(jobs, cycle), std::invalid_argument);
  std::vector<Dependency> outside{{"a", "zz", 0}};
  EXPECT_THROW(check_workflow(jobs, outside), std::invalid_argument);
  std::vector<Dependency> twice{{"a", "b", 0}, {"a", "b", 1}};
  EXPECT_THROW(check_workflow(jobs, twice), std::invalid_argument);
  std::vector<Dependency> self{{"a", "a", 0}};
  EXPECT_THROW(check_workflow(jobs, self), std::invalid_argument);
  std::vector<NewJob> lone{step("h", PassResults::kOne, OnFailure::kHandler)};
  EXPECT_THROW(check_workflow(lone, {}), std::invalid_argument);
  std::vector<NewJob> uniq{step("u")};
  uniq[0].unique_key = "k";
  EXPECT_THROW(check_workflow(uniq, {}), std::invalid_argument);
}

// settle() over an in-memory graph: the waves, without a driver.
TEST(Settle, CascadesAFailureDownAChainInWaves) {
  std::map<std::string, WaitingStep> waiting{
      {"b", {"b", 1, PassResults::kOne, OnFailure::kCancel, "[]"}},
      {"c", {"c", 1, PassResults::kOne, OnFailure::kCancel, "[]"}},
      {"d", {"d", 1, PassResults::kOne, OnFailure::kCancel, "[]"}}};
  std::vector<Dependency> deps{{"a", "b", 0}, {"b", "c", 0}, {"c", "d", 0}};
  int waves = 0;
  SettleOps ops;
  ops.load = [&](const std::vector<std::string>& parents) {
    ++waves;
    std::vector<std::pair<Dependency, WaitingStep>> out;
    for (const auto& d : deps) {
      for (const auto& p : parents) {
        if (d.parent == p && waiting.contains(d.child)) out.emplace_back(d, waiting.at(d.child));
      }
    }
    return out;
  };
  ops.parents = [](const std::vector<std::string>&) { return std::vector<ParentResult>{}; };
  std::map<std::string, std::string> reasons;
  ops.write = [&](std::span<const StepUpdate> ups) {
    for (const auto& u : ups) {
      ASSERT_EQ(u.decision, StepDecision::kCancel);
      reasons[u.id] = u.reason;
      waiting.erase(u.id);
    }
  };
  EXPECT_EQ(settle({done("a", state::kFailed)}, ops), 0u);
  EXPECT_EQ(waves, 4);  // b, c, d, then nothing left below d
  EXPECT_EQ(reasons.size(), 3u);
  for (const auto& [id, why] : reasons) EXPECT_EQ(why, "upstream job a failed") << id;
}

TEST(Settle, AReleasedStepWhoseArgumentsAreNotAnArrayEndsCancelled) {
  SettleOps ops;
  ops.load = [](const std::vector<std::string>& parents) {
    std::vector<std::pair<Dependency, WaitingStep>> out;
    if (parents == std::vector<std::string>{"a"}) {
      out.emplace_back(Dependency{"a", "b", 0},
                       WaitingStep{"b", 1, PassResults::kOne, OnFailure::kCancel, "{\"x\":1}"});
    }
    return out;
  };
  ops.parents = [](const std::vector<std::string>&) {
    return std::vector<ParentResult>{{"b", "a", state::kSucceeded, "1", "", ""}};
  };
  std::vector<StepUpdate> written;
  ops.write = [&](std::span<const StepUpdate> ups) { written.assign(ups.begin(), ups.end()); };
  EXPECT_EQ(settle({done("a", state::kSucceeded)}, ops), 0u);
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].decision, StepDecision::kCancel);
  EXPECT_EQ(written[0].reason, kArgumentsNotAnArray);
}

// ---- every driver ----------------------------------------------------------------------

class Workflows : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { FASTQ_OPEN_DRIVER(GetParam(), db); }

  NewJob wf_step(PassResults pass = PassResults::kOne, OnFailure of = OnFailure::kCancel,
                 std::string args = "[]") {
    NewJob j = step(new_job_id(), pass, of, workflow);
    j.args = std::move(args);
    return j;
  }
  // Claims everything runnable and completes it: `result(task args)` gives each result,
  // `fail` the ids to fail. Returns the ids it ran.
  std::vector<std::string> run_all(const std::set<std::string>& fail = {}) {
    std::vector<std::string> ran;
    for (;;) {
      auto claimed = db->claim(ClaimRequest{{"default"}, 100, std::chrono::milliseconds(30000),
                                            "t:1"});
      if (claimed.empty()) return ran;
      std::vector<Completion> cs;
      for (const auto& c : claimed) {
        ran.push_back(c.id);
        Completion x;
        x.id = c.id;
        x.lease_token = c.lease_token;
        if (fail.contains(c.id)) {
          x.outcome = Outcome::kFailed;
          x.error_type = "ValueError";
          x.error = "boom";
        } else {
          x.result = c.args;  // echo: a step's result is the arguments it ran with
        }
        cs.push_back(std::move(x));
      }
      EXPECT_EQ(db->complete(cs), cs.size());
    }
  }
  std::string st(const std::string& id) { return db->get(id)->state; }

  std::unique_ptr<Driver> db;
  std::string workflow = new_job_id();
};

TEST_P(Workflows, AChainPassesEachResultOnAndWaitsUntilThen) {
  std::vector<NewJob> jobs{wf_step(PassResults::kNone, OnFailure::kCancel, "[1]"), wf_step(),
                           wf_step(PassResults::kOne, OnFailure::kCancel, "[3]")};
  std::vector<Dependency> deps{{jobs[0].id, jobs[1].id, 0}, {jobs[1].id, jobs[2].id, 0}};
  db->enqueue_workflow(jobs, deps);
  EXPECT_EQ(st(jobs[0].id), "queued");
  EXPECT_EQ(st(jobs[1].id), "waiting");
  EXPECT_EQ(db->get(jobs[1].id)->parents_pending, 1);
  EXPECT_EQ(db->get(jobs[1].id)->workflow_id, workflow);
  const std::vector<std::string> q{"default"};
  EXPECT_EQ(db->count_runnable(q), 1u) << "a waiting step is not runnable";
  const auto ran = run_all();
  EXPECT_EQ(ran, (std::vector<std::string>{jobs[0].id, jobs[1].id, jobs[2].id}));
  EXPECT_EQ(db->get(jobs[2].id)->result, "[[[1]],3]");
}

TEST_P(Workflows, AChordCallbackRunsOnceWithEveryResultInOrder) {
  std::vector<NewJob> jobs;
  std::vector<Dependency> deps;
  for (int i = 0; i < 20; ++i) {
    jobs.push_back(wf_step(PassResults::kNone, OnFailure::kCancel, "[" + std::to_string(i) + "]"));
  }
  NewJob cb = wf_step(PassResults::kList);
  for (int i = 0; i < 20; ++i) deps.push_back({jobs[i].id, cb.id, i});
  // Enqueue the callback first: order of rows must not matter.
  jobs.insert(jobs.begin(), cb);
  db->enqueue_workflow(jobs, deps);
  // Finish the members in reverse order, in batches of 3, on two connections.
  auto other = db->connect_another();
  auto claimed = db->claim(ClaimRequest{{"default"}, 100, std::chrono::milliseconds(30000), "t"});
  ASSERT_EQ(claimed.size(), 20u);
  std::reverse(claimed.begin(), claimed.end());
  for (std::size_t i = 0; i < claimed.size(); i += 3) {
    std::vector<Completion> cs;
    for (std::size_t k = i; k < std::min(i + 3, claimed.size()); ++k) {
      cs.push_back(succeeded(claimed[k], claimed[k].args));
    }
    EXPECT_EQ(((i / 3) % 2 ? *other : *db).complete(cs), cs.size());
    if (i + 3 < claimed.size()) {
      EXPECT_EQ(st(cb.id), "waiting");
    }
  }
  EXPECT_EQ(st(cb.id), "queued");
  auto last = db->claim(ClaimRequest{{"default"}, 100, std::chrono::milliseconds(30000), "t"});
  ASSERT_EQ(last.size(), 1u);
  std::string want = "[[";
  for (int i = 0; i < 20; ++i) want += (i ? ",[" : "[") + std::to_string(i) + "]";
  want += "]]";
  EXPECT_EQ(last[0].args, want);
}

TEST_P(Workflows, AFailureCancelsEverythingDownstreamNamingIt) {
  // a -> b -> c, and a -> d (diamond end: d also after c)
  std::vector<NewJob> jobs{wf_step(PassResults::kNone), wf_step(), wf_step(), wf_step(PassResults::kList)};
  const auto &a = jobs[0].id, &b = jobs[1].id, &c = jobs[2].id, &d = jobs[3].id;
  db->enqueue_workflow(jobs, std::vector<Dependency>{{a, b, 0}, {b, c, 0}, {a, d, 0}, {c, d, 1}});
  run_all({a});
  EXPECT_EQ(st(a), "failed");
  for (const auto& id : {b, c, d}) {
    auto rec = db->get(id);
    EXPECT_EQ(rec->state, "cancelled") << id;
    EXPECT_EQ(rec->error, "upstream job " + a + " failed") << id;
    EXPECT_EQ(rec->error_type, kCancelledType);
  }
}

TEST_P(Workflows, AllowFailuresRunsTheCallbackWithFailuresMarked) {
  std::vector<NewJob> jobs{wf_step(PassResults::kNone, OnFailure::kCancel, "[1]"),
                           wf_step(PassResults::kNone, OnFailure::kCancel, "[2]"),
                           wf_step(PassResults::kList, OnFailure::kRunAnyway)};
  db->enqueue_workflow(jobs, std::vector<Dependency>{{jobs[0].id, jobs[2].id, 0},
                                                     {jobs[1].id, jobs[2].id, 1}});
  run_all({jobs[1].id});
  auto cb = db->get(jobs[2].id);
  EXPECT_EQ(cb->state, "succeeded");
  EXPECT_EQ(cb->result, "[[[1],{\"__fastq_failed__\":{\"job_id\":\"" + jobs[1].id +
                            "\",\"state\":\"failed\",\"error_type\":\"ValueError\","
                            "\"error\":\"boom\"}}]]");
}

TEST_P(Workflows, AnErrorHandlerRunsOnceWithTheFailedIdOrIsCancelled) {
  std::vector<NewJob> jobs{wf_step(PassResults::kNone), wf_step(),
                           wf_step(PassResults::kOne, OnFailure::kHandler, "[\"x\"]")};
  const auto &a = jobs[0].id, &b = jobs[1].id, &h = jobs[2].id;
  db->enqueue_workflow(jobs, std::vector<Dependency>{{a, b, 0}, {a, h, 0}, {b, h, 1}});
  run_all({b});
  EXPECT_EQ(st(a), "succeeded");
  EXPECT_EQ(st(b), "failed");
  auto handler = db->get(h);
  EXPECT_EQ(handler->state, "succeeded");
  EXPECT_EQ(handler->result, "[\"" + b + "\",\"x\"]");

  // Nothing failed: the handler ends cancelled, not needed.
  workflow = new_job_id();
  std::vector<NewJob> more{wf_step(PassResults::kNone),
                           wf_step(PassResults::kOne, OnFailure::kHandler)};
  db->enqueue_workflow(more, std::vector<Dependency>{{more[0].id, more[1].id, 0}});
  run_all();
  EXPECT_EQ(st(more[1].id), "cancelled");
  EXPECT_EQ(db->get(more[1].id)->error, kHandlerNotNeeded);
}

TEST_P(Workflows, RetriesStayInsideTheStep) {
  std::vector<NewJob> jobs{wf_step(PassResults::kNone), wf_step()};
  db->enqueue_workflow(jobs, std::vector<Dependency>{{jobs[0].id, jobs[1].id, 0}});
  auto c = db->claim(ClaimRequest{{"default"}, 10, std::chrono::milliseconds(30000), "t"});
  ASSERT_EQ(c.size(), 1u);
  Completion retry = succeeded(c[0], "");
  retry.outcome = Outcome::kRetry;
  retry.error_type = "E";
  retry.retry_at = now_micros() - 1;
  EXPECT_EQ(db->complete(std::span(&retry, 1)), 1u);
  EXPECT_EQ(st(jobs[1].id), "waiting");
  run_all();
  EXPECT_EQ(st(jobs[1].id), "succeeded");
}

TEST_P(Workflows, AFencedCompletionReleasesNothing) {
  std::vector<NewJob> jobs{wf_step(PassResults::kNone), wf_step()};
  db->enqueue_workflow(jobs, std::vector<Dependency>{{jobs[0].id, jobs[1].id, 0}});
  auto c = db->claim(ClaimRequest{{"default"}, 10, std::chrono::milliseconds(30000), "t"});
  ASSERT_EQ(c.size(), 1u);
  Completion stale = succeeded(c[0], "1", c[0].lease_token + 1);
  EXPECT_EQ(db->complete(std::span(&stale, 1)), 0u);
  EXPECT_EQ(st(jobs[1].id), "waiting");
  Completion real = succeeded(c[0], "1");
  EXPECT_EQ(db->complete(std::span(&real, 1)), 1u);
  EXPECT_EQ(db->complete(std::span(&real, 1)), 0u) << "a second completion is fenced off";
  EXPECT_EQ(st(jobs[1].id), "queued");
  EXPECT_EQ(db->get(jobs[1].id)->parents_pending, 0);
}

TEST_P(Workflows, ALostWorkerPastItsAttemptsCancelsDependents) {
  std::vector<NewJob> jobs{wf_step(PassResults::kNone), wf_step()};
  jobs[0].max_attempts = 1;
  db->enqueue_workflow(jobs, std::vector<Dependency>{{jobs[0].id, jobs[1].id, 0}});
  auto c = db->claim(ClaimRequest{{"default"}, 10, std::chrono::milliseconds(1), "t"});
  ASSERT_EQ(c.size(), 1u);
  StartMark m{c[0].id, c[0].lease_token, now_micros()};
  db->mark_started(std::span(&m, 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the 1 ms lease runs out
  EXPECT_EQ(db->rescue_expired(), 1u);
  EXPECT_EQ(st(jobs[0].id), "dead");
  EXPECT_EQ(st(jobs[1].id), "cancelled");
  EXPECT_EQ(db->get(jobs[1].id)->error, "upstream job " + jobs[0].id + " failed");
}

TEST_P(Workflows, CancellingAStepCascadesAndCancelWorkflowStopsEveryUnfinishedStep) {
  std::vector<NewJob> jobs{wf_step(PassResults::kNone), wf_step(), wf_step()};
  db->enqueue_workflow(jobs, std::vector<Dependency>{{jobs[0].id, jobs[1].id, 0},
                                                     {jobs[1].id, jobs[2].id, 0}});
  EXPECT_EQ(db->cancel(jobs[1].id), CancelResult::kCancelled) << "a waiting step cancels";
  EXPECT_EQ(st(jobs[2].id), "cancelled");
  EXPECT_EQ(db->get(jobs[2].id)->error, "upstream job " + jobs[1].id + " was cancelled");

  workflow = new_job_id();
  std::vector<NewJob> more{wf_step(PassResults::kNone), wf_step(PassResults::kNone), wf_step()};
  db->enqueue_workflow(more, std::vector<Dependency>{{more[1].id, more[2].id, 0}});
  auto c = db->claim(ClaimRequest{{"default"}, 1, std::chrono::milliseconds(30000), "t"});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(db->cancel_workflow(workflow), 3u);
  for (const auto& j : more) {
    auto rec = db->get(j.id);
    if (j.id == c[0].id) {
      EXPECT_EQ(rec->state, "running");
      EXPECT_TRUE(rec->cancel_requested);
    } else {
      EXPECT_EQ(rec->state, "cancelled");
    }
  }
}

TEST_P(Workflows, ABadGraphWritesNothing) {
  std::vector<NewJob> jobs{wf_step(PassResults::kNone), wf_step()};
  std::vector<Dependency> cycle{{jobs[0].id, jobs[1].id, 0}, {jobs[1].id, jobs[0].id, 0}};
  EXPECT_THROW(db->enqueue_workflow(jobs, cycle), std::invalid_argument);
  EXPECT_FALSE(db->get(jobs[0].id));
  // A duplicate id fails the whole workflow, not half of it.
  std::vector<NewJob> first{wf_step(PassResults::kNone)};
  db->enqueue_workflow(first, {});
  std::vector<NewJob> again{wf_step(PassResults::kNone), first[0]};
  EXPECT_THROW(db->enqueue_workflow(again, {}), DriverError);
  EXPECT_FALSE(db->get(again[0].id));
}

// Fan-in exactly once: siblings completed at the same time on separate connections.
TEST_P(Workflows, ConcurrentSiblingCompletionsReleaseTheCallbackExactlyOnce) {
  constexpr int kMembers = 200;
  constexpr int kThreads = 4;
  std::vector<NewJob> jobs;
  std::vector<Dependency> deps;
  NewJob cb = wf_step(PassResults::kList);
  for (int i = 0; i < kMembers; ++i) {
    jobs.push_back(wf_step(PassResults::kNone, OnFailure::kCancel, "[" + std::to_string(i) + "]"));
    deps.push_back({jobs.back().id, cb.id, i});
  }
  jobs.push_back(cb);
  db->enqueue_workflow(jobs, deps);
  std::atomic<int> released_seen{0};
  std::vector<std::thread> threads;
  std::atomic<bool> failed{false};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, conn = std::shared_ptr<Driver>(db->connect_another())] {
      try {
        for (;;) {
          auto claimed =
              conn->claim(ClaimRequest{{"default"}, 7, std::chrono::milliseconds(30000), "t"});
          if (claimed.empty()) return;
          std::vector<Completion> cs;
          for (const auto& c : claimed) {
            if (c.id == cb.id) {
              released_seen++;
              cs.push_back(succeeded(c, "\"cb\""));
            } else {
              cs.push_back(succeeded(c, c.args));
            }
          }
          conn->complete(cs);
        }
      } catch (const std::exception& e) {
        failed = true;
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_FALSE(failed);
  // The callback may have been released after every thread had seen an empty claim.
  auto rest = db->claim(ClaimRequest{{"default"}, 10, std::chrono::milliseconds(30000), "t"});
  for (const auto& c : rest) {
    EXPECT_EQ(c.id, cb.id);
    released_seen++;
    std::string want = "[[";
    for (int i = 0; i < kMembers; ++i) want += (i ? ",[" : "[") + std::to_string(i) + "]";
    EXPECT_EQ(c.args, want + "]]");
  }
  EXPECT_EQ(released_seen.load(), 1);
  EXPECT_EQ(db->get(cb.id)->parents_pending, 0);
}

// A step no claim can take (a row that breaks a constraint) is ended dead by quarantine();
// its dependents are cancelled in that same write.
TEST(PostgresWorkflows, AQuarantinedStepCancelsItsDependents) {
  std::unique_ptr<Driver> db;
  FASTQ_OPEN_DRIVER("postgres", db);
  const std::string wf = new_job_id();
  std::vector<NewJob> jobs{step(new_job_id(), PassResults::kNone, OnFailure::kCancel, wf),
                           step(new_job_id(), PassResults::kOne, OnFailure::kCancel, wf)};
  db->enqueue_workflow(jobs, std::vector<Dependency>{{jobs[0].id, jobs[1].id, 0}});
  // Any claim of the queued step now violates a constraint (attempts would become 1).
  ASSERT_EQ(testing::pg_exec(testing::pg_test_dsn(),
                             "ALTER TABLE fastq_active ADD CONSTRAINT no_claims CHECK "
                             "(state <> 'running' OR attempts < 1)"),
            "");
  const ClaimRequest req{{"default"}, 10, std::chrono::milliseconds(30000), "t"};
  EXPECT_THROW(db->claim(req), DriverError);
  EXPECT_EQ(db->quarantine(req, "refused"), 1u);
  EXPECT_EQ(db->get(jobs[0].id)->state, "dead");
  auto child = db->get(jobs[1].id);
  EXPECT_EQ(child->state, "cancelled");
  EXPECT_EQ(child->error, "upstream job " + jobs[0].id + " failed");
}

INSTANTIATE_TEST_SUITE_P(Drivers, Workflows, ::testing::Values("memory", "sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace fastq
