#include <pybind11/stl.h>

#include "common.hpp"
#include "fastq/poller.hpp"
#include "fastq/time.hpp"
#include "fastq/wake.hpp"

namespace fastq::py_bindings {

namespace {
py::object record_to_dict(const JobRecord& r) {
  py::dict d;
  d["id"] = r.id;
  d["task"] = r.task;
  d["queue"] = r.queue;
  d["state"] = r.state;
  d["priority"] = r.priority;
  d["attempts"] = r.attempts;
  d["max_attempts"] = r.max_attempts;
  d["cancel_requested"] = r.cancel_requested;
  d["args"] = r.args;
  d["kwargs"] = r.kwargs;
  d["result"] = r.result ? py::object(py::str(*r.result)) : py::object(py::none());
  d["error_type"] = r.error_type;
  d["error"] = r.error;
  d["traceback"] = r.traceback;
  d["workflow_id"] = r.workflow_id.empty() ? py::object(py::none()) : py::object(py::str(r.workflow_id));
  d["parents_pending"] = r.parents_pending;
  return d;
}
std::vector<SqlValue> sql_values(const py::sequence& params) {
  std::vector<SqlValue> out;
  out.reserve(py::len(params));
  for (const py::handle item : params) {
    if (item.is_none()) {
      out.emplace_back(std::monostate{});
    } else if (py::isinstance<py::bool_>(item)) {
      out.emplace_back(static_cast<std::int64_t>(item.cast<bool>() ? 1 : 0));
    } else if (py::isinstance<py::int_>(item)) {
      out.emplace_back(item.cast<std::int64_t>());
    } else if (py::isinstance<py::float_>(item)) {
      out.emplace_back(item.cast<double>());
    } else if (py::isinstance<py::str>(item)) {
      out.emplace_back(item.cast<std::string>());
    } else {
      throw py::type_error("poller query parameter of type " +
                           py::str(py::type::of(item).attr("__name__")).cast<std::string>() +
                           ": only None, bool, int, float and str can be bound");
    }
  }
  return out;
}

// (task, queue, priority, max_attempts, time_limit, soft_time_limit, rate_key)
using JobTemplate = std::tuple<std::string, std::string, int, int, double, double, std::string>;

NewJob job_template(const JobTemplate& t) {
  NewJob j;
  std::tie(j.task, j.queue, j.priority, j.max_attempts, j.time_limit, j.soft_time_limit,
           j.rate_key) = t;
  return j;
}

}  // namespace

void bind_driver(py::module_& m) {
  static py::exception<DriverError> driver_error(m, "DriverError", PyExc_RuntimeError);
  // A DriverError from the core reaches Python as _core.DriverError with its `transient`
  // flag (a lost connection: retry) rather than as a plain RuntimeError, so callers can
  // tell an outage from a setup error (no table, bad credentials).
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const DriverError& e) {
      py::object exc = py::handle(driver_error.ptr())(e.what());
      exc.attr("transient") = e.transient();
      PyErr_SetObject(driver_error.ptr(), exc.ptr());
    }
  });

  py::class_<Driver, DriverPtr>(m, "Driver")
      .def_property_readonly("name", &Driver::name)
      .def(
          "enqueue",
          [](Driver& d, const std::vector<NewJob>& jobs) {
            py::gil_scoped_release release;
            return d.enqueue(jobs);
          },
          py::arg("jobs"))
      .def(
          "enqueue_workflow",
          [](Driver& d, const std::vector<NewJob>& jobs,
             const std::vector<std::tuple<std::string, std::string, int>>& edges) {
            std::vector<Dependency> deps;
            deps.reserve(edges.size());
            for (const auto& [parent, child, position] : edges) {
              deps.push_back(Dependency{parent, child, position});
            }
            py::gil_scoped_release release;
            try {
              return d.enqueue_workflow(jobs, deps);
            } catch (const std::invalid_argument& e) {
              py::gil_scoped_acquire gil;
              throw py::value_error(e.what());
            }
          },
          py::arg("jobs"), py::arg("dependencies"),
          "Inserts a workflow's jobs and dependencies in one transaction (workflow.hpp).")
      .def(
          "cancel_workflow",
          [](Driver& d, const std::string& workflow_id) {
            py::gil_scoped_release release;
            return d.cancel_workflow(workflow_id);
          },
          py::arg("workflow_id"))
      .def(
          "poll",
          [](Driver& d, const std::string& name, const std::string& sql,
             const py::sequence& params, const std::string& key, const JobTemplate& check,
             std::int64_t start_us, std::int64_t span_us, std::int64_t min_gap_us, int batch,
             const std::optional<std::string>& stale_sql, const py::sequence& stale_params,
             const std::optional<JobTemplate>& alert) {
            PollCycle c;
            c.name = name;
            c.rows = KeysetQuery{sql, sql_values(params), key, ""};
            if (stale_sql) c.stale = KeysetQuery{*stale_sql, sql_values(stale_params), key, ""};
            c.check = job_template(check);
            if (alert) c.alert = job_template(*alert);
            c.start = start_us;
            c.span = span_us;
            c.min_gap = min_gap_us;
            c.batch = batch;
            PollStats st;
            {
              py::gil_scoped_release release;
              try {
                st = run_poll(d, c);
              } catch (const std::invalid_argument& e) {
                py::gil_scoped_acquire gil;
                throw py::value_error(e.what());
              }
            }
            py::dict out;
            out["rows"] = st.rows;
            out["enqueued"] = st.enqueued;
            out["pending"] = st.pending;
            out["stale"] = st.stale;
            out["alerted"] = st.alerted;
            out["pages"] = st.pages;
            out["gap_us"] = st.gap;
            return out;
          },
          py::arg("name"), py::arg("sql"), py::arg("params"), py::arg("key"), py::arg("check"),
          py::arg("start_us"), py::arg("span_us"), py::arg("min_gap_us") = 0,
          py::arg("batch") = 5000, py::arg("stale_sql") = py::none(),
          py::arg("stale_params") = py::list(), py::arg("alert") = py::none(),
          "One cycle of a batch poller (poller.hpp): walks the query's keys and enqueues a "
          "spread check job per row; returns the cycle's counts.")
      .def(
          "get",
          [](Driver& d, const std::string& id) -> py::object {
            std::optional<JobRecord> rec;
            {
              py::gil_scoped_release release;
              rec = d.get(id);
            }
            return rec ? record_to_dict(*rec) : py::none();
          },
          py::arg("id"))
      .def(
          "count_runnable",
          [](Driver& d, const std::vector<std::string>& queues) {
            py::gil_scoped_release release;
            return d.count_runnable(queues);
          },
          py::arg("queues"))
      .def(
          "prune_jobs",
          [](Driver& d, const std::string& state, std::int64_t before_us, int limit,
             bool dry_run, const std::string& after_at, const std::string& after_id) {
            if (final_state_index(state) < 0) {
              throw py::value_error("prune_jobs: not a final state: " + state);
            }
            PruneRequest r;
            r.state = state;
            r.before = before_us;
            r.limit = limit;
            r.dry_run = dry_run;
            r.after_at = after_at;
            r.after_id = after_id;
            PruneResult out;
            {
              py::gil_scoped_release release;
              out = d.prune_jobs(r);
            }
            return py::make_tuple(out.deleted, out.scanned, out.last_at, out.last_id);
          },
          py::arg("state"), py::arg("before_us"), py::arg("limit") = 1000,
          py::arg("dry_run") = false, py::arg("after_at") = "", py::arg("after_id") = "",
          "One retention batch (Driver::prune_jobs): of the jobs in `state` finished before "
          "`before_us` (microseconds since the epoch), the next `limit` after the cursor "
          "(after_at, after_id), oldest first; deletes those nothing depends on. Returns "
          "(deleted, scanned, last_at, last_id): scanned < limit means the end, else pass "
          "last_at and last_id on. With dry_run, (how many would be deleted, 0, '', '').")
      .def(
          "database_now",
          [](Driver& d) -> py::object {
            std::optional<Micros> now;
            {
              py::gil_scoped_release release;
              now = d.database_now();
            }
            if (!now) return py::none();
            return py::int_(*now);
          },
          "The database server's clock in microseconds since the epoch (PostgreSQL), or None "
          "where this machine's clock is the database's (SQLite).")
      .def("rescue_expired",
           [](Driver& d) {
             py::gil_scoped_release release;
             return d.rescue_expired();
           })
      .def(
          "cancel",
          [](Driver& d, const std::string& id) {
            CancelResult r;
            {
              py::gil_scoped_release release;
              r = d.cancel(id);
            }
            switch (r) {
              case CancelResult::kNotFound: return "not_found";
              case CancelResult::kCancelled: return "cancelled";
              case CancelResult::kRequested: return "requested";
              case CancelResult::kFinished: return "finished";
            }
            return "not_found";
          },
          py::arg("id"));

  m.def(
      "memory_driver", []() -> DriverPtr { return make_memory_driver(); },
      "An in-process broker for tests: nothing persists.");
  m.def(
      "sqlite_driver",
      [](const std::string& path, int busy_timeout_ms) -> DriverPtr {
        py::gil_scoped_release release;
        return make_sqlite_driver(path, std::chrono::milliseconds(busy_timeout_ms));
      },
      py::arg("path"), py::arg("busy_timeout_ms") = 30000);
  m.def(
      "postgres_driver",
      [](const std::string& conninfo) -> DriverPtr {
        py::gil_scoped_release release;
        return make_postgres_driver(conninfo);
      },
      py::arg("conninfo"));
  m.def(
      "sqlite_wake_dir",
      [](const std::string& path) {
        py::gil_scoped_release release;
        return wake_dir(path);
      },
      py::arg("path"),
      "The directory whose sockets wake the workers of the SQLite database file `path` "
      "(wake.hpp); None for an in-memory or missing database.");
  m.def(
      "wake_poke",
      [](const std::string& dir) {
        py::gil_scoped_release release;
        return wake_poke(dir);
      },
      py::arg("dir"),
      "Pokes every worker socket in `dir` (nonblocking, removes dead workers' sockets); "
      "how many were poked.");
  m.def("new_job_id", &new_job_id, "A fresh UUIDv7 in canonical text form.");
  m.def("is_last_attempt", &is_last_attempt, py::arg("attempts"), py::arg("max_attempts"),
        "Whether the attempt that just ended (counted in `attempts`) was the job's last: "
        "fastq's one answer to \"retry or give up?\" (fastq/types.hpp).");
  m.attr("ENVELOPE_VERSION") = kEnvelopeVersion;
}

}  // namespace fastq::py_bindings
