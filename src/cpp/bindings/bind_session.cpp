// Job operations (fastq/session.hpp) for Python: the bound NewJob, sessions on a
// connection Django lends, and enqueue/get/cancel over them.
#include <pybind11/stl.h>

#include "common.hpp"
#include "fastq/session.hpp"

namespace fastq::py_bindings {

namespace {

// datetime <-> microseconds since the epoch (UTC), for NewJob's run_at and expires_at.
struct Clock {
  py::object epoch;  // datetime(1970, 1, 1, tzinfo=UTC)
  py::object timedelta;
  py::object one_us;
  py::object datetime_type;
  static const Clock& get() {
    static const Clock* c = [] {
      auto dt = py::module_::import("datetime");
      auto* clock = new Clock{
          dt.attr("datetime")(1970, 1, 1, py::arg("tzinfo") = dt.attr("timezone").attr("utc")),
          dt.attr("timedelta"), dt.attr("timedelta")(py::arg("microseconds") = 1),
          dt.attr("datetime")};
      return clock;
    }();
    return *c;
  }
};

std::optional<Micros> to_micros(const py::handle& value, const char* what) {
  if (value.is_none()) return std::nullopt;
  const Clock& c = Clock::get();
  if (py::isinstance<py::int_>(value)) return value.cast<Micros>();
  if (!py::isinstance(value, c.datetime_type)) {
    throw py::type_error(std::string(what) + " must be a datetime or None");
  }
  if (value.attr("tzinfo").is_none() || value.attr("utcoffset")().is_none()) {
    throw py::value_error("eta must be a timezone-aware datetime");
  }
  return (value - c.epoch).attr("__floordiv__")(c.one_us).cast<Micros>();
}

py::object from_micros(const std::optional<Micros>& us) {
  if (!us) return py::none();
  const Clock& c = Clock::get();
  return c.epoch + c.timedelta(py::arg("microseconds") = *us);
}

const char* cancel_text(CancelResult r) {
  switch (r) {
    case CancelResult::kNotFound: return "not_found";
    case CancelResult::kCancelled: return "cancelled";
    case CancelResult::kRequested: return "requested";
    case CancelResult::kFinished: return "finished";
  }
  return "not_found";
}

// A Session run by a Python callable execute(sql, params) -> rows (a DB-API cursor's
// execute + fetchall): Django's SQLite connection, whose sqlite3 library is not the
// core's. Called with the GIL released; takes it for each statement.
class CallbackSession final : public Session {
 public:
  CallbackSession(sql::Dialect dialect, py::function execute)
      : dialect_(dialect), execute_(std::move(execute)) {}
  sql::Dialect dialect() const override { return dialect_; }
  std::vector<SqlRow> run(const std::string& sql, std::span<const SqlParam> params) override {
    py::gil_scoped_acquire gil;
    py::tuple args(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      const auto& p = params[i];
      if (const auto* v = std::get_if<std::int64_t>(&p)) {
        args[i] = py::int_(*v);
      } else if (const auto* d = std::get_if<double>(&p)) {
        args[i] = py::float_(*d);
      } else if (const auto* t = std::get_if<std::string>(&p)) {
        args[i] = py::str(*t);
      } else {
        args[i] = py::none();
      }
    }
    const py::object rows = execute_(sql, args);
    std::vector<SqlRow> out;
    if (rows.is_none()) return out;
    for (const py::handle row : rows) {
      SqlRow r;
      for (const py::handle cell : row) {
        if (cell.is_none()) {
          r.emplace_back(std::nullopt);
        } else if (py::isinstance<py::bool_>(cell)) {
          r.emplace_back(cell.cast<bool>() ? "1" : "0");
        } else if (py::isinstance<py::str>(cell)) {
          r.emplace_back(cell.cast<std::string>());
        } else {
          r.emplace_back(py::str(cell).cast<std::string>());
        }
      }
      out.push_back(std::move(r));
    }
    return out;
  }

 private:
  sql::Dialect dialect_;
  py::function execute_;
};

sql::Dialect dialect_named(const std::string& name) {
  if (name == "postgres" || name == "postgresql") return sql::Dialect::kPostgres;
  if (name == "sqlite") return sql::Dialect::kSqlite;
  throw py::value_error("unknown SQL dialect '" + name + "' (postgres, sqlite)");
}

// Python owns sessions through this holder; the callback kind keeps its function.
using SessionPtr = std::shared_ptr<Session>;

}  // namespace

void bind_session(py::module_& m) {
  py::class_<NewJob>(m, "NewJob",
                     "A job about to be inserted; ``args``/``kwargs`` are JSON text. The one "
                     "description of a new job, shared by the core and Python.")
      .def(py::init([](std::string id, std::string task, std::string queue, int priority,
                       std::string args, std::string kwargs, const py::object& run_at,
                       int max_attempts, const py::object& expires_at, std::string unique_key,
                       std::optional<double> time_limit, std::optional<double> soft_time_limit,
                       std::string rate_key, std::string workflow_id, int pass_results,
                       int on_failure, std::string group_label) {
             NewJob j;
             j.id = std::move(id);
             j.task = std::move(task);
             j.queue = std::move(queue);
             j.priority = priority;
             j.args = std::move(args);
             j.kwargs = std::move(kwargs);
             j.run_at = to_micros(run_at, "run_at");
             j.max_attempts = max_attempts;
             j.expires_at = to_micros(expires_at, "expires_at");
             j.unique_key = std::move(unique_key);
             j.time_limit = time_limit.value_or(0);
             j.soft_time_limit = soft_time_limit.value_or(0);
             j.rate_key = std::move(rate_key);
             j.workflow_id = std::move(workflow_id);
             j.group_label = std::move(group_label);
             if (pass_results < 0 || pass_results > 2) {
               throw py::value_error("pass_results must be 0, 1 or 2");
             }
             if (on_failure < 0 || on_failure > 2) {
               throw py::value_error("on_failure must be 0, 1 or 2");
             }
             j.pass_results = static_cast<PassResults>(pass_results);
             j.on_failure = static_cast<OnFailure>(on_failure);
             return j;
           }),
           py::kw_only(), py::arg("id"), py::arg("task"), py::arg("queue"), py::arg("priority"),
           py::arg("args"), py::arg("kwargs"), py::arg("run_at") = py::none(),
           py::arg("max_attempts") = kDefaultMaxAttempts, py::arg("expires_at") = py::none(),
           py::arg("unique_key") = "", py::arg("time_limit") = py::none(),
           py::arg("soft_time_limit") = py::none(), py::arg("rate_key") = "",
           py::arg("workflow_id") = "", py::arg("pass_results") = 0, py::arg("on_failure") = 0,
           py::arg("group_label") = "")
      .def_readwrite("id", &NewJob::id)
      .def_readwrite("task", &NewJob::task)
      .def_readwrite("queue", &NewJob::queue)
      .def_readwrite("priority", &NewJob::priority)
      .def_readwrite("args", &NewJob::args)
      .def_readwrite("kwargs", &NewJob::kwargs)
      .def_property(
          "run_at", [](const NewJob& j) { return from_micros(j.run_at); },
          [](NewJob& j, const py::object& v) { j.run_at = to_micros(v, "run_at"); },
          "When it may start (an aware datetime), or None: at once.")
      .def_property_readonly("run_at_us", [](const NewJob& j) { return j.run_at; })
      .def_readwrite("max_attempts", &NewJob::max_attempts)
      .def_property(
          "expires_at", [](const NewJob& j) { return from_micros(j.expires_at); },
          [](NewJob& j, const py::object& v) { j.expires_at = to_micros(v, "expires_at"); },
          "Never started after this: expired (an aware datetime), or None.")
      .def_readwrite("unique_key", &NewJob::unique_key,
                     "Non-empty: at most one queued-or-running job per key.")
      .def_property(
          "time_limit",
          [](const NewJob& j) { return j.time_limit > 0 ? py::object(py::float_(j.time_limit)) : py::object(py::none()); },
          [](NewJob& j, std::optional<double> v) { j.time_limit = v.value_or(0); },
          "Seconds: hard limit (the process is killed), or None.")
      .def_property(
          "soft_time_limit",
          [](const NewJob& j) {
            return j.soft_time_limit > 0 ? py::object(py::float_(j.soft_time_limit)) : py::object(py::none());
          },
          [](NewJob& j, std::optional<double> v) { j.soft_time_limit = v.value_or(0); },
          "Seconds: SoftTimeLimitExceeded is raised in the task, or None.")
      .def_readwrite("rate_key", &NewJob::rate_key, "Rate-limit bucket of a keyed limit.")
      .def_readwrite("group_label", &NewJob::group_label,
                     "A label several jobs share (Django-Q2's group); \"\": none.")
      .def_readwrite("workflow_id", &NewJob::workflow_id)
      .def_property(
          "pass_results", [](const NewJob& j) { return static_cast<int>(j.pass_results); },
          [](NewJob& j, int v) { j.pass_results = static_cast<PassResults>(v); },
          "What a workflow step receives from its parents: 0 nothing, 1 the result, 2 the list.")
      .def_property(
          "on_failure", [](const NewJob& j) { return static_cast<int>(j.on_failure); },
          [](NewJob& j, int v) { j.on_failure = static_cast<OnFailure>(v); },
          "What a failed parent does to a step: 0 cancel, 1 run anyway, 2 error handler.")
      .def("copy", [](const NewJob& j) { return j; }, "A copy to change.")
      .def("__eq__", [](const NewJob& a, const NewJob& b) { return a == b; })
      .def("__repr__", [](const NewJob& j) {
        return "NewJob(id='" + j.id + "', task='" + j.task + "', queue='" + j.queue + "')";
      });

  py::class_<Session, SessionPtr>(m, "Session",
                                  "Where a job operation runs: a connection lent by its owner.")
      .def_property_readonly("dialect", [](const Session& s) {
        return s.dialect() == sql::Dialect::kPostgres ? "postgres" : "sqlite";
      });
  m.def(
      "borrow_pg",
      [](std::uintptr_t pgconn_ptr, const std::string& libpq_path, bool begin_if_idle,
         bool prepare) -> SessionPtr {
        if (!pgconn_ptr) throw py::value_error("borrow_pg: no connection (pgconn_ptr is 0)");
        return pg_session_via(libpq_path, reinterpret_cast<pg_conn*>(pgconn_ptr), begin_if_idle,
                              prepare);
      },
      py::arg("pgconn_ptr"), py::arg("libpq_path") = "", py::arg("begin_if_idle") = false,
      py::arg("prepare") = false,
      "A session on a libpq connection someone else owns (psycopg 3's "
      "``pgconn.pgconn_ptr``), through the libpq at ``libpq_path`` that opened it. "
      "``prepare``: a statement run again on the same server session is prepared under a "
      "``fastq_`` name and executed by name (off behind a transaction-pooling PgBouncer).");
  m.def(
      "callback_session",
      [](const std::string& dialect, py::function execute) -> SessionPtr {
        return std::make_shared<CallbackSession>(dialect_named(dialect), std::move(execute));
      },
      py::arg("dialect"), py::arg("execute"),
      "A session whose statements run through ``execute(sql, params) -> rows``.");
  m.def(
      "enqueue_jobs",
      [](Session& s, const std::vector<NewJob>& jobs) {
        py::gil_scoped_release release;
        return enqueue_jobs(s, jobs);
      },
      py::arg("session"), py::arg("jobs"),
      "Inserts the jobs; for each, the id of the job standing for it.");
  m.def(
      "get_job",
      [](Session& s, const std::string& id) -> py::object {
        std::optional<JobRecord> rec;
        {
          py::gil_scoped_release release;
          rec = get_job(s, id);
        }
        if (!rec) return py::none();
        return py::make_tuple(rec->id, rec->task, rec->queue, rec->state, rec->attempts,
                              rec->result ? py::object(py::str(*rec->result)) : py::object(py::none()),
                              rec->error_type, rec->error, rec->traceback);
      },
      py::arg("session"), py::arg("id"),
      "(id, task, queue, state, attempts, result, error_type, error, traceback) or None.");
  m.def(
      "cancel_job",
      [](Session& s, const std::string& id) {
        CancelOutcome done;
        {
          py::gil_scoped_release release;
          done = cancel_job(s, id);
        }
        return py::make_tuple(cancel_text(done.result), done.workflow_step);
      },
      py::arg("session"), py::arg("id"),
      "(result, workflow_step): a queued or waiting workflow step is left to Driver.cancel.");
  m.def(
      "enqueue_workflow",
      [](Session& s, const std::vector<NewJob>& jobs,
         const std::vector<std::tuple<std::string, std::string, int>>& dependencies,
         const std::vector<std::tuple<std::string, std::string, std::string, std::string,
                                      std::vector<std::string>>>& records) {
        std::vector<Dependency> deps;
        deps.reserve(dependencies.size());
        for (const auto& [parent, child, position] : dependencies) {
          deps.push_back(Dependency{parent, child, position});
        }
        std::vector<WorkflowRecord> recs;
        recs.reserve(records.size());
        for (const auto& [id, root, kind, name, members] : records) {
          recs.push_back(WorkflowRecord{id, root, kind, name, members});
        }
        py::gil_scoped_release release;
        try {
          return enqueue_workflow(s, jobs, deps, recs);
        } catch (const std::invalid_argument& e) {
          py::gil_scoped_acquire gil;
          throw py::value_error(e.what());
        }
      },
      py::arg("session"), py::arg("jobs"), py::arg("dependencies"),
      py::arg("records") = std::vector<std::tuple<std::string, std::string, std::string,
                                                  std::string, std::vector<std::string>>>{},
      "Inserts a workflow's jobs, dependencies (parent, child, position) and records (id, "
      "root_id, kind, name, member ids); a step with parents starts waiting. ValueError for "
      "a graph check_workflow refuses, before any write. The jobs' ids.");
  m.def(
      "retry_jobs",
      [](Session& s, const std::vector<std::string>& ids) {
        py::gil_scoped_release release;
        return retry_jobs(s, ids);
      },
      py::arg("session"), py::arg("ids"),
      "Queues again those of the jobs that ended unsuccessfully (failed, dead, expired, "
      "cancelled); ids that are not UUIDs are skipped. How many; on PostgreSQL workers are "
      "woken at commit.");
  m.def(
      "forget_jobs",
      [](Session& s, const std::vector<std::string>& ids) {
        py::gil_scoped_release release;
        return forget_jobs(s, ids);
      },
      py::arg("session"), py::arg("ids"),
      "Deletes those of the jobs that are finished, with their workflow edges; a job a "
      "schedule slot, a poller mark or an unfinished workflow still needs stays, and ids "
      "that are not UUIDs are skipped. How many.");
  m.def(
      "relabel_jobs",
      [](Session& s, const std::vector<std::string>& ids, const std::string& label) {
        py::gil_scoped_release release;
        return relabel_jobs(s, ids, label);
      },
      py::arg("session"), py::arg("ids"), py::arg("label"),
      "Sets the group label of these jobs, wherever they are (\"\": none). How many.");
  m.def(
      "record_finished",
      [](Session& s, const NewJob& job, const std::string& state,
         std::optional<std::string> result, const std::string& error_type,
         const std::string& error, const std::string& traceback, const py::object& started_at,
         const py::object& finished_at) {
        FinishedJob f;
        f.job = job;
        f.state = state;
        f.result = std::move(result);
        f.error_type = error_type;
        f.error = error;
        f.traceback = traceback;
        f.started_at = to_micros(started_at, "started_at").value_or(now_micros());
        f.finished_at = to_micros(finished_at, "finished_at").value_or(now_micros());
        py::gil_scoped_release release;
        record_finished(s, f);
      },
      py::arg("session"), py::arg("job"), py::arg("state"), py::arg("result"),
      py::arg("error_type"), py::arg("error"), py::arg("traceback"), py::arg("started_at"),
      py::arg("finished_at"),
      "Stores a job run outside the queue as finished (state succeeded or failed) after one "
      "attempt; result is JSON text or None. Error texts are made storable as a worker's.");
  m.def(
      "set_custom_state",
      [](Session& s, const std::string& id, const std::string& json) {
        py::gil_scoped_release release;
        return set_custom_state(s, id, json);
      },
      py::arg("session"), py::arg("id"), py::arg("json"),
      "Celery's update_state: the job's custom_state (JSON text). Whether the job exists.");
  m.def(
      "write_attempt_log",
      [](Session& s, const std::string& id, std::optional<std::int64_t> lease_token,
         const std::string& text) {
        py::gil_scoped_release release;
        return write_attempt_log(s, id, lease_token, text);
      },
      py::arg("session"), py::arg("id"), py::arg("lease_token"), py::arg("text"),
      "The attempt log (JSON text) of the running job, fenced by its lease token (None: it "
      "has none). Whether a row was written.");
  m.def(
      "record_schedule_run",
      [](Session& s, const std::string& name, const std::string& job_id, const py::object& at) {
        const std::optional<Micros> when = to_micros(at, "at");
        py::gil_scoped_release release;
        return record_schedule_run(s, name, job_id, when);
      },
      py::arg("session"), py::arg("name"), py::arg("job_id"), py::arg("at") = py::none(),
      "A Run now of the schedule with this job: its slot row (at, None: now; a taken slot "
      "moves to the next free microsecond) and its last run. The slot, in microseconds.");
  m.def(
      "set_schedule_outcome",
      [](Session& s, const std::string& name, const std::string& outcome) {
        py::gil_scoped_release release;
        set_schedule_outcome(s, name, outcome);
      },
      py::arg("session"), py::arg("name"), py::arg("outcome"),
      "Sets the schedule's last outcome, cut to 64 characters.");
  m.def(
      "purge_queued",
      [](Session& s, const std::vector<std::string>& queues) {
        py::gil_scoped_release release;
        return purge_queued(s, queues);
      },
      py::arg("session"), py::arg("queues"),
      "Deletes the queued jobs of these queues (empty: every queue) that are not workflow "
      "steps. How many.");
  m.def(
      "cancel_workflow",
      [](Session& s, const std::string& workflow_id) {
        py::gil_scoped_release release;
        return cancel_workflow(s, workflow_id);
      },
      py::arg("session"), py::arg("workflow_id"),
      "Cancels every unfinished step of the workflow (running ones asked to stop); how "
      "many.");
}

}  // namespace fastq::py_bindings
