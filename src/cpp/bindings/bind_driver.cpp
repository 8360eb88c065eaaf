#include <pybind11/stl.h>

#include "common.hpp"
#include "fastq/time.hpp"

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
  return d;
}
}  // namespace

void bind_driver(py::module_& m) {
  static py::exception<DriverError> driver_error(m, "DriverError", PyExc_RuntimeError);

  py::class_<Driver, DriverPtr>(m, "Driver")
      .def_property_readonly("name", &Driver::name)
      .def(
          "enqueue",
          [](Driver& d, const std::vector<std::tuple<std::string, std::string, std::string, int,
                                                     std::string, std::string,
                                                     std::optional<std::int64_t>, int,
                                                     std::optional<std::int64_t>,
                                                     std::string, std::optional<double>,
                                                     std::optional<double>, std::string>>&
                 rows) {
            std::vector<NewJob> jobs;
            jobs.reserve(rows.size());
            for (const auto& [id, task, queue, priority, args, kwargs, run_at, max_attempts,
                              expires_at, unique_key, time_limit, soft_time_limit, rate_key] :
                 rows) {
              jobs.push_back(NewJob{id, task, queue, priority, args, kwargs, run_at,
                                    max_attempts, expires_at, unique_key,
                                    time_limit.value_or(0), soft_time_limit.value_or(0),
                                    rate_key});
            }
            py::gil_scoped_release release;
            return d.enqueue(jobs);
          },
          py::arg("jobs"))
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
  m.def("new_job_id", &new_job_id, "A fresh UUIDv7 in canonical text form.");
  m.attr("ENVELOPE_VERSION") = kEnvelopeVersion;
}

}  // namespace fastq::py_bindings
