// The Python side of the worker: a TaskRunner that calls into the interpreter, holding
// the GIL only while Python runs (per batch of jobs on an executor thread), and a
// Worker whose run() releases the GIL for its whole life.
#include <pybind11/functional.h>
#include <pybind11/stl.h>
#include <simdjson.h>

#include <algorithm>
#include <type_traits>

#include "common.hpp"
#include "json_encode.hpp"
#include "fastq/json_dom.hpp"
#include "fastq/supervisor.hpp"
#include "fastq/worker.hpp"

namespace fastq::py_bindings {

namespace {

JobTracker* current_tracker() { return Supervisor::child_tracker(); }

// JSON text -> Python objects, decoded by simdjson. Only ever fed payloads the core has
// already validated, but every error is still reported rather than assumed away.
py::object to_python(simdjson::dom::element el) {
  using simdjson::dom::element_type;
  switch (el.type()) {
    case element_type::ARRAY: {
      simdjson::dom::array arr = el.get_array().value_unsafe();
      py::list out(arr.size());
      std::size_t i = 0;
      for (auto child : arr) out[i++] = to_python(child);
      return out;
    }
    case element_type::OBJECT: {
      simdjson::dom::object obj = el.get_object().value_unsafe();
      py::dict out;
      for (auto field : obj) {
        out[py::str(field.key.data(), field.key.size())] = to_python(field.value);
      }
      return out;
    }
    case element_type::INT64:
      return py::int_(el.get_int64().value_unsafe());
    case element_type::UINT64:
      return py::int_(el.get_uint64().value_unsafe());
    case element_type::DOUBLE:
      return py::float_(el.get_double().value_unsafe());
    case element_type::STRING: {
      std::string_view s = el.get_string().value_unsafe();
      return py::str(s.data(), s.size());
    }
    case element_type::BOOL:
      return py::bool_(el.get_bool().value_unsafe());
    case element_type::NULL_VALUE:
      return py::none();
  }
  return py::none();
}

py::object decode(simdjson::dom::parser& parser, const std::string& text) {
  simdjson::dom::element el;
  if (auto err = parser.parse(text).get(el)) {
    throw std::invalid_argument(std::string("invalid JSON: ") + simdjson::error_message(err));
  }
  return to_python(el);
}

class PyRunner final : public TaskRunner {
 public:
  PyRunner(py::function execute, py::object retry_type, py::object execute_async)
      : execute_(std::move(execute)),
        retry_type_(std::move(retry_type)),
        execute_async_(std::move(execute_async)) {
    py::module_ tb = py::module_::import("traceback");
    format_exception_ = tb.attr("format_exception");
  }
  ~PyRunner() override {
    py::gil_scoped_acquire gil;
    execute_ = py::function();
    retry_type_ = py::object();
    execute_async_ = py::object();
    format_exception_ = py::object();
  }

  // Each executor thread keeps one Python thread state for its whole life, so
  // thread-locals (Django's per-thread database connections) survive between batches.
  void thread_started() override {
    state_.gil = PyGILState_Ensure();
    state_.ts = PyEval_SaveThread();
  }
  void thread_stopping() override {
    PyEval_RestoreThread(state_.ts);
    PyGILState_Release(state_.gil);
  }
  void begin_batch() override { PyEval_RestoreThread(state_.ts); }
  void end_batch() override { state_.ts = PyEval_SaveThread(); }

  void run(const ClaimedJob& job, Completion& out) override {
    try {
      auto [args, kwargs] = payload(job);
      py::object result =
          execute_(job.task, args, kwargs, job.id, job.attempts, job.max_attempts,
                   job.lease_token, job.soft_time_limit);
      fill_result(result, out);
    } catch (py::error_already_set& e) {
      fill_exception(e.value(), out);
    } catch (const std::exception& e) {
      fail(out, "fastq.InvalidPayload", e.what(), "");
    }
  }

  // async def tasks: handed to the worker's event loop; the loop thread reports back.
  void start_async(const ClaimedJob& job, Done done) override {
    auto shared = std::make_shared<Done>(std::move(done));
    try {
      if (execute_async_.is_none()) throw std::logic_error("no event loop for async tasks");
      auto [args, kwargs] = payload(job);
      py::cpp_function report([this, shared](bool ok, py::object value) {
        Completion c;
        if (ok) {
          fill_result(value, c);
        } else {
          fill_exception(value, c);
        }
        py::gil_scoped_release release;
        (*shared)(std::move(c));
      });
      execute_async_(job.task, args, kwargs, job.id, job.attempts, job.max_attempts,
                     job.lease_token, job.soft_time_limit, report);
    } catch (py::error_already_set& e) {
      Completion c;
      fill_exception(e.value(), c);
      (*shared)(std::move(c));
    } catch (const std::exception& e) {
      Completion c;
      fail(c, "fastq.InvalidPayload", e.what(), "");
      (*shared)(std::move(c));
    }
  }

 private:
  // The job's args and kwargs as Python objects, from the documents the envelope check
  // parsed just before on this thread (the payload is parsed once), else parsed here.
  static std::pair<py::object, py::object> payload(const ClaimedJob& job) {
    if (auto parsed = take_parsed_payload(job)) {
      return {to_python(parsed->args), to_python(parsed->kwargs)};
    }
    return {decode(parser_, job.args), decode(parser_, job.kwargs)};
  }

  void fill_result(const py::object& result, Completion& out) {
    // The encoder of the arguments (json_encode.hpp): what it refuses there, a result
    // may not carry either.
    std::string text;
    JsonError err;
    if (!encode_json(result.ptr(), text, err, 0)) {
      std::string message;
      if (err.type == nullptr) {
        py::error_already_set e;
        message = e.what();
      } else {
        message = err.where("result") + err.problem;
      }
      fail(out, "fastq.ResultNotSerializable",
           "the task returned a value JSON cannot encode: " + message, "");
      return;
    }
    out.result = std::move(text);
    out.outcome = Outcome::kSucceeded;
  }

  // The outcome of an attempt that ended in `exc`: a retry the front end asked for (and
  // filled in), or a failure with the exception's type, message and traceback.
  void fill_exception(const py::object& exc, Completion& out) {
    if (retry_type_ && py::isinstance(exc, retry_type_)) {
      try {
        out.outcome = Outcome::kRetry;
        out.retry_at = py::cast<Micros>(exc.attr("eta_us"));
        out.error_type = text_of(exc.attr("error_type"));
        out.error = text_of(exc.attr("error"));
        out.traceback = text_of(exc.attr("traceback"));
        return;
      } catch (py::error_already_set& bad) {
        fail(out, "fastq.InvalidRetry", bad.what(), "");
        return;
      }
    }
    // Each part on its own: an exception whose __str__ raises, or whose text holds lone
    // surrogates, still records its type and traceback. The core makes the texts storable.
    std::string type = "Exception", tb, message;
    try {
      py::handle t = py::type::handle_of(exc);
      const std::string module = text_of(t.attr("__module__"));
      const std::string qualname = text_of(t.attr("__qualname__"));
      type = module == "builtins" ? qualname : module + "." + qualname;
    } catch (py::error_already_set&) {
    }
    try {
      tb = text_of(py::str("").attr("join")(format_exception_(exc)));
    } catch (py::error_already_set&) {
      tb = "<traceback could not be formatted>";
    }
    try {
      message = text_of(py::str(exc));
    } catch (py::error_already_set&) {
      message = "<unprintable exception>";
    }
    fail(out, type, message, tb);
    // Retried as the task asked, and no attempts are left: the job is given up (dead).
    if (py::hasattr(exc, "_fastq_gave_up")) out.outcome = Outcome::kDead;
  }

  // A Python str (or subclass) as UTF-8, lone surrogates written as \udcXX escapes
  // rather than failing. Anything else is passed through str() first.
  static std::string text_of(const py::handle& obj) {
    py::object s = PyUnicode_Check(obj.ptr()) ? py::reinterpret_borrow<py::object>(obj)
                                              : py::object(py::str(obj));
    PyObject* bytes = PyUnicode_AsEncodedString(s.ptr(), "utf-8", "backslashreplace");
    if (!bytes) throw py::error_already_set();
    std::string out(PyBytes_AS_STRING(bytes), static_cast<std::size_t>(PyBytes_GET_SIZE(bytes)));
    Py_DECREF(bytes);
    return out;
  }

  static void fail(Completion& out, std::string type, std::string message, std::string tb) {
    out.outcome = Outcome::kFailed;
    out.error_type = std::move(type);
    out.error = std::move(message);
    out.traceback = std::move(tb);
  }

  struct ThreadState {
    PyGILState_STATE gil{};
    PyThreadState* ts = nullptr;
  };
  static thread_local ThreadState state_;
  static thread_local simdjson::dom::parser parser_;

  py::function execute_;
  py::object retry_type_;
  py::object execute_async_;
  py::object format_exception_;
};

thread_local PyRunner::ThreadState PyRunner::state_;
thread_local simdjson::dom::parser PyRunner::parser_;

class PyWorker {
 public:
  PyWorker(const DriverPtr& driver, py::function execute, py::object retry_type,
           py::object execute_async, WorkerConfig cfg, std::optional<py::function> log)
      : runner_(std::move(execute), std::move(retry_type), std::move(execute_async)) {
    cfg.log = log_hook(std::move(log), log_, "fastq worker log callback");
    std::unique_ptr<Driver> own;
    {
      py::gil_scoped_release release;
      own = driver->connect_another();
    }
    worker_ = std::make_unique<Worker>(std::move(own), runner_, std::move(cfg));
  }
  ~PyWorker() {
    // The log callback may be the last owner of a Python object: drop it under the GIL.
    worker_.reset();
    log_.reset();
  }

  WorkerStats run() {
    py::gil_scoped_release release;
    return worker_->run();
  }
  void stop() { worker_->stop(); }
  WorkerStats stats() const { return worker_->stats(); }
  bool cancel_requested(const std::string& id) const { return worker_->cancel_requested(id); }

 private:
  PyRunner runner_;
  std::shared_ptr<py::function> log_;
  std::unique_ptr<Worker> worker_;
};

class PySupervisor {
 public:
  PySupervisor(const DriverPtr& driver, SupervisorConfig cfg, py::function spawn,
               std::optional<py::function> log) {
    auto spawn_fn = std::make_shared<py::function>(std::move(spawn));
    spawn_ = spawn_fn;
    cfg.log = log_hook(std::move(log), log_, "fastq supervisor log callback");
    std::unique_ptr<Driver> own;
    {
      py::gil_scoped_release release;
      own = driver->connect_another();
    }
    sup_ = std::make_unique<Supervisor>(
        std::move(own), std::move(cfg), [spawn_fn](int index) -> pid_t {
          py::gil_scoped_acquire gil;
          // In the child this call never returns: the spawn function runs the worker and
          // leaves with os._exit().
          return py::cast<pid_t>((*spawn_fn)(index));
        });
  }
  ~PySupervisor() {
    sup_.reset();
    log_.reset();
    spawn_.reset();
  }
  SupervisorStats run() {
    py::gil_scoped_release release;
    return sup_->run();
  }

 private:
  std::shared_ptr<py::function> spawn_;
  std::shared_ptr<py::function> log_;
  std::unique_ptr<Supervisor> sup_;
};

// The caller's part of a registry row: {"id", "host", "version", "supervisor"}.
std::optional<WorkerRow> registry_row(const std::optional<std::map<std::string, std::string>>& d) {
  if (!d) return std::nullopt;
  WorkerRow row;
  auto get = [&](const char* key) {
    auto it = d->find(key);
    return it == d->end() ? std::string() : it->second;
  };
  row.id = get("id");
  row.host = get("host");
  row.version = get("version");
  row.supervisor = get("supervisor");
  if (row.id.empty()) throw std::invalid_argument("registry needs an id");
  return row;
}

}  // namespace

void bind_worker(py::module_& m) {
  py::class_<SupervisorStats>(m, "SupervisorStats")
      .def_readonly("started", &SupervisorStats::started)
      .def_readonly("crashed", &SupervisorStats::crashed)
      .def_readonly("timeouts", &SupervisorStats::timeouts)
      .def_readonly("lost", &SupervisorStats::lost)
      .def_readonly("released", &SupervisorStats::released)
      .def_readonly("recycled", &SupervisorStats::recycled)
      .def_readonly("exit_code", &SupervisorStats::exit_code);

  py::class_<PySupervisor>(m, "Supervisor")
      .def(py::init([](const DriverPtr& driver, py::function spawn, int processes,
                       int slots_per_child, int grace_ms, std::uint64_t max_memory_kb,
                       bool burst, std::optional<py::function> log, bool restore_signals,
                       std::optional<std::map<std::string, std::string>> registry,
                       int lease_ms, bool notify_systemd, int metrics_port,
                       std::string metrics_address) {
             SupervisorConfig cfg;
             cfg.metrics_port = metrics_port;
             cfg.metrics_address = std::move(metrics_address);
             cfg.registry = registry_row(registry);
             if (cfg.registry) cfg.registry->lease_ms = lease_ms;
             cfg.notify_systemd = notify_systemd;
             cfg.processes = processes;
             cfg.slots_per_child = slots_per_child;
             cfg.grace = std::chrono::milliseconds(grace_ms);
             cfg.max_memory_kb = max_memory_kb;
             cfg.burst = burst;
             cfg.restore_signals = restore_signals;
             return std::make_unique<PySupervisor>(driver, std::move(cfg), std::move(spawn),
                                                   std::move(log));
           }),
           py::arg("driver"), py::arg("spawn"), py::arg("processes"),
           py::arg("slots_per_child"),
           py::arg("grace_ms") = static_cast<int>(SupervisorConfig{}.grace.count()),
           py::arg("max_memory_kb") = 0, py::arg("burst") = false,
           py::arg("log") = py::none(), py::arg("restore_signals") = true,
           py::arg("registry") = py::none(),
           py::arg("lease_ms") = static_cast<int>(WorkerConfig{}.lease.count()),
           py::arg("notify_systemd") = true, py::arg("metrics_port") = -1,
           py::arg("metrics_address") = "0.0.0.0")
      .def("run", &PySupervisor::run,
           "Fork the worker processes and look after them until they have all stopped.");
  m.def("enter_child", &Supervisor::enter_child, py::arg("index"),
        "Call first thing in a child forked by Supervisor's spawn function.");

  py::class_<WorkerStats>(m, "WorkerStats")
      .def_readonly("claimed", &WorkerStats::claimed)
      .def_readonly("claims", &WorkerStats::claims)
      .def_readonly("succeeded", &WorkerStats::succeeded)
      .def_readonly("failed", &WorkerStats::failed)
      .def_readonly("retried", &WorkerStats::retried)
      .def_readonly("skipped", &WorkerStats::skipped)
      .def_readonly("completed_written", &WorkerStats::completed_written)
      .def_readonly("fenced", &WorkerStats::fenced)
      .def_readonly("flushes", &WorkerStats::flushes)
      .def_readonly("released", &WorkerStats::released)
      .def_readonly("rescued", &WorkerStats::rescued)
      .def_readonly("db_errors", &WorkerStats::db_errors)
      .def_readonly("rejected", &WorkerStats::rejected)
      .def_readonly("deferred", &WorkerStats::deferred)
      .def_readonly("stale", &WorkerStats::stale)
      .def_readonly("sanitized", &WorkerStats::sanitized)
      .def_readonly("isolated", &WorkerStats::isolated)
      .def_readonly("hard_stopped", &WorkerStats::hard_stopped)
      .def("__repr__", [](const WorkerStats& s) {
        return "WorkerStats(claimed=" + std::to_string(s.claimed) +
               ", succeeded=" + std::to_string(s.succeeded) +
               ", failed=" + std::to_string(s.failed) +
               ", retried=" + std::to_string(s.retried) + ", fenced=" + std::to_string(s.fenced) +
               ", released=" + std::to_string(s.released) +
               ", rescued=" + std::to_string(s.rescued) + ")";
      });

  // The worker's options: one object with named fields whose defaults are those of the
  // C++ struct (fastq/worker.hpp), the only ones. Durations are in seconds.
  using Cfg = WorkerConfig;
  auto seconds = [](auto Cfg::*member) {
    return py::cpp_function([member](const Cfg& c) {
      return std::chrono::duration<double>(c.*member).count();
    });
  };
  auto set_seconds = [](auto Cfg::*member) {
    return py::cpp_function([member](Cfg& c, double s) {
      if (!(s >= 0)) throw py::value_error("a duration must be 0 or more seconds");
      using D = std::remove_reference_t<decltype(c.*member)>;
      c.*member = std::chrono::duration_cast<D>(std::chrono::duration<double>(s));
    });
  };
  py::class_<RateLimit>(m, "RateLimit")
      .def(py::init([](Micros interval_us, int burst) { return RateLimit{interval_us, burst}; }),
           py::arg("interval_us"), py::arg("burst") = 1)
      .def_readwrite("interval_us", &RateLimit::interval_us)
      .def_readwrite("burst", &RateLimit::burst);
  py::class_<Cfg>(m, "WorkerConfig")
      .def(py::init<>())
      .def("copy", [](const Cfg& c) { return Cfg(c); })
      .def_readwrite("queues", &Cfg::queues)
      .def_property(
          "registered",
          [](const Cfg& c) {
            std::vector<std::string> v(c.registered.begin(), c.registered.end());
            std::sort(v.begin(), v.end());
            return v;
          },
          [](Cfg& c, const std::vector<std::string>& v) { c.registered = {v.begin(), v.end()}; })
      .def_readwrite("concurrency", &Cfg::concurrency)
      .def_readwrite("prefetch", &Cfg::prefetch)
      .def_readwrite("claim_batch", &Cfg::claim_batch)
      .def_readwrite("exec_batch", &Cfg::exec_batch)
      .def_property("lease", seconds(&Cfg::lease), set_seconds(&Cfg::lease))
      .def_property("flush_interval", seconds(&Cfg::flush_interval),
                    set_seconds(&Cfg::flush_interval))
      .def_readwrite("flush_batch", &Cfg::flush_batch)
      .def_property("idle_poll_min", seconds(&Cfg::idle_poll_min),
                    set_seconds(&Cfg::idle_poll_min))
      .def_property("idle_poll_max", seconds(&Cfg::idle_poll_max),
                    set_seconds(&Cfg::idle_poll_max))
      .def_property("rescue_interval", seconds(&Cfg::rescue_interval),
                    set_seconds(&Cfg::rescue_interval))
      .def_readwrite("max_payload_bytes", &Cfg::max_payload_bytes)
      .def_readwrite("burst", &Cfg::burst)
      .def_property("grace", seconds(&Cfg::grace), set_seconds(&Cfg::grace))
      .def_readwrite("handle_signals", &Cfg::handle_signals)
      .def_readwrite("name", &Cfg::name)
      .def_readwrite("max_jobs", &Cfg::max_jobs)
      .def_readwrite("rate_limits", &Cfg::rate_limits)
      .def_property("rate_horizon", seconds(&Cfg::rate_horizon), set_seconds(&Cfg::rate_horizon))
      .def_property(
          "async_tasks",
          [](const Cfg& c) {
            std::vector<std::string> v(c.async_tasks.begin(), c.async_tasks.end());
            std::sort(v.begin(), v.end());
            return v;
          },
          [](Cfg& c, const std::vector<std::string>& v) { c.async_tasks = {v.begin(), v.end()}; })
      .def_readwrite("log_jobs", &Cfg::log_jobs)
      .def_readwrite("log_tracebacks", &Cfg::log_tracebacks)
      .def_property(
          "registry",
          [](const Cfg& c) -> std::optional<std::map<std::string, std::string>> {
            if (!c.registry) return std::nullopt;
            return std::map<std::string, std::string>{{"id", c.registry->id},
                                                      {"host", c.registry->host},
                                                      {"version", c.registry->version},
                                                      {"supervisor", c.registry->supervisor}};
          },
          [](Cfg& c, const std::optional<std::map<std::string, std::string>>& d) {
            c.registry = registry_row(d);
          })
      .def_readwrite("notify_systemd", &Cfg::notify_systemd)
      .def_property_readonly("capacity", &Cfg::capacity,
                             "Jobs one worker holds at most: concurrency + prefetch.")
      .def("__repr__", [](const Cfg& c) {
        return "WorkerConfig(concurrency=" + std::to_string(c.concurrency) +
               ", prefetch=" + std::to_string(c.prefetch) +
               ", claim_batch=" + std::to_string(c.claim_batch) +
               ", lease=" + std::to_string(c.lease.count() / 1000.0) + ")";
      });

  py::class_<PyWorker>(m, "Worker")
      .def(py::init([](const DriverPtr& driver, Cfg cfg, py::function execute,
                       py::object retry_type, py::object execute_async,
                       std::optional<py::function> log) {
             if (auto* tracker = current_tracker()) {
               cfg.tracker = tracker;
               cfg.supervised = true;
               if (cfg.registry && cfg.registry->supervisor.empty()) {
                 cfg.registry->supervisor = Supervisor::child_supervisor_id();
               }
             }
             cfg.metrics = Supervisor::child_metrics();
             return std::make_unique<PyWorker>(driver, std::move(execute),
                                               std::move(retry_type), std::move(execute_async),
                                               std::move(cfg), std::move(log));
           }),
           py::arg("driver"), py::arg("config"), py::arg("execute"), py::arg("retry_type"),
           py::arg("execute_async") = py::none(), py::arg("log") = py::none())
      .def("run", &PyWorker::run,
           "Run until stop(), SIGINT/SIGTERM, or (burst) nothing runnable is left.")
      .def("stop", &PyWorker::stop, "Start a graceful stop; callable from any thread.")
      .def("stats", &PyWorker::stats)
      .def("cancel_requested", &PyWorker::cancel_requested, py::arg("job_id"),
           "Whether a cancel of this running job has reached the worker.");
}

}  // namespace fastq::py_bindings
