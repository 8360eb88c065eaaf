// fastq._core.Scheduler: the periodic-schedule leader (scheduler.hpp) on its own thread.
#include <pybind11/stl.h>

#include "common.hpp"
#include "fastq/scheduler.hpp"

namespace fastq::py_bindings {

namespace {

class PyScheduler {
 public:
  PyScheduler(const DriverPtr& driver, SchedulerConfig cfg, std::optional<py::function> log) {
    cfg.log = log_hook(std::move(log), log_, "fastq scheduler log callback");
    std::unique_ptr<Driver> own;
    {
      py::gil_scoped_release release;
      own = driver->connect_another();
    }
    sched_ = std::make_unique<Scheduler>(std::move(own), std::move(cfg));
  }
  ~PyScheduler() {
    {
      // The thread may be waiting for the GIL to log.
      py::gil_scoped_release release;
      sched_.reset();
    }
    log_.reset();
  }

  void start() { sched_->start(); }
  void stop() {
    py::gil_scoped_release release;
    sched_->stop();
  }
  void pause() {
    py::gil_scoped_release release;
    sched_->pause();
  }
  void resume() { sched_->resume(); }
  std::int64_t step(std::int64_t now) {
    py::gil_scoped_release release;
    return sched_->step(now);
  }
  SchedulerStats stats() const { return sched_->stats(); }

 private:
  std::shared_ptr<py::function> log_;
  std::unique_ptr<Scheduler> sched_;
};

}  // namespace

void bind_scheduler(py::module_& m) {
  py::class_<SchedulerStats>(m, "SchedulerStats")
      .def_readonly("fired", &SchedulerStats::fired)
      .def_readonly("skipped", &SchedulerStats::skipped)
      .def_readonly("missed", &SchedulerStats::missed)
      .def_readonly("lost", &SchedulerStats::lost)
      .def_readonly("terms", &SchedulerStats::terms)
      .def_readonly("workers_lost", &SchedulerStats::workers_lost)
      .def_readonly("pruned", &SchedulerStats::pruned)
      .def_readonly("reclaimed", &SchedulerStats::reclaimed)
      .def_readonly("partitions_dropped", &SchedulerStats::partitions_dropped)
      .def_readonly("leader", &SchedulerStats::leader);

  py::class_<PyScheduler>(m, "Scheduler")
      .def(py::init([](const DriverPtr& driver, const std::string& holder, int lease_ms,
                       int reload_ms, int misfire_grace_ms,
                       const std::map<std::string, std::tuple<std::string, int, int, double,
                                                              double>>& tasks,
                       std::optional<py::function> log,
                       const std::optional<std::map<std::string, std::optional<double>>>&
                           retention,
                       int prune_batch, int prune_budget_ms) {
             SchedulerConfig cfg;
             if (retention) {
               for (const auto& [state, keep] : *retention) {
                 const int i = final_state_index(state);
                 if (i < 0) throw py::value_error("retention: not a final state: " + state);
                 if (keep && !(*keep >= 0)) {
                   throw py::value_error("retention: " + state + " must be 0 or more seconds");
                 }
                 cfg.retention.keep[static_cast<std::size_t>(i)] =
                     keep ? std::optional<Micros>(static_cast<Micros>(*keep * 1e6))
                          : std::nullopt;
               }
             }
             if (prune_batch < 1 || prune_budget_ms < 1) {
               throw py::value_error("prune_batch and prune_budget_ms must be positive");
             }
             cfg.retention.batch = prune_batch;
             cfg.retention.pass_budget = Micros{prune_budget_ms} * 1000;
             cfg.holder = holder;
             cfg.lease = std::chrono::milliseconds(lease_ms);
             cfg.reload = std::chrono::milliseconds(reload_ms);
             cfg.misfire_grace = std::chrono::milliseconds(misfire_grace_ms);
             for (const auto& [name, t] : tasks) {
               const auto& [queue, priority, max_attempts, time_limit, soft_time_limit] = t;
               cfg.tasks[name] =
                   TaskDefaults{queue, priority, max_attempts, time_limit, soft_time_limit};
             }
             return std::make_unique<PyScheduler>(driver, std::move(cfg), std::move(log));
           }),
           py::arg("driver"), py::arg("holder"), py::arg("lease_ms") = 15000,
           py::arg("reload_ms") = 2000, py::arg("misfire_grace_ms") = 60000,
           py::arg("tasks") = std::map<std::string,
                                       std::tuple<std::string, int, int, double, double>>{},
           py::arg("log") = py::none(), py::arg("retention") = py::none(),
           py::arg("prune_batch") = 1000, py::arg("prune_budget_ms") = 200)
      .def("start", &PyScheduler::start, "Run on a background thread until stop().")
      .def("stop", &PyScheduler::stop, "Stop the thread and give the leader lease up.")
      .def("pause", &PyScheduler::pause, "Hold the thread between passes (around fork()).")
      .def("resume", &PyScheduler::resume)
      .def("step", &PyScheduler::step, py::arg("now_us"),
           "One pass at `now_us` (tests); returns when it wants to run again.")
      .def("stats", &PyScheduler::stats);
}

}  // namespace fastq::py_bindings
