// _core.job_batch: the jobs of task.map() built in one call. Arguments are encoded to JSON
// here (json_encode.hpp, the encoder every enqueue path uses), ids are UUIDv7, and the
// batch is handed to the broker as COPY text, SQLite parameters or driver rows without a
// Python object per field. Also _core.encode_call and _core.encode_json, that encoder
// for the other paths.
#include <Python.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "json_encode.hpp"
#include "fastq/bulk.hpp"
#include "fastq/json.hpp"
#include "fastq/session.hpp"
#include "fastq/time.hpp"

namespace fastq::py_bindings {

namespace {

std::optional<Micros> micros_or_none(const std::optional<std::int64_t>& v) {
  return v ? std::optional<Micros>(*v) : std::nullopt;
}

py::tuple driver_row(const NewJob& j) {
  auto opt_micros = [](const std::optional<Micros>& t) -> py::object {
    return t ? py::object(py::int_(*t)) : py::object(py::none());
  };
  auto opt_seconds = [](double s) -> py::object {
    return s > 0 ? py::object(py::float_(s)) : py::object(py::none());
  };
  return py::make_tuple(j.id, j.task, j.queue, j.priority, j.args, j.kwargs,
                        opt_micros(j.run_at), j.max_attempts, opt_micros(j.expires_at),
                        j.unique_key, opt_seconds(j.time_limit), opt_seconds(j.soft_time_limit),
                        j.rate_key);
}

}  // namespace

// The jobs of one task.map() call, owned by C++.
struct JobBatch {
  std::vector<NewJob> jobs;
};

void bind_bulk(py::module_& m) {
  py::class_<JobBatch>(m, "JobBatch")
      .def("__len__", [](const JobBatch& b) { return b.jobs.size(); })
      .def("ids",
           [](const JobBatch& b) {
             py::list out(b.jobs.size());
             for (std::size_t i = 0; i < b.jobs.size(); ++i) {
               out[i] = py::str(b.jobs[i].id);
             }
             return out;
           })
      .def("jobs", [](const JobBatch& b) { return b.jobs; }, "The jobs, as NewJob objects.")
      .def("rows",
           [](const JobBatch& b) {
             py::list out(b.jobs.size());
             for (std::size_t i = 0; i < b.jobs.size(); ++i) out[i] = driver_row(b.jobs[i]);
             return out;
           })
      .def(
          "pg_copy",
          [](const JobBatch& b, std::size_t start, std::size_t stop) {
            stop = std::min(stop, b.jobs.size());
            start = std::min(start, stop);
            PgCopyBatch copy;
            {
              py::gil_scoped_release release;
              copy = pg_copy_batch(std::span<const NewJob>(b.jobs).subspan(start, stop - start),
                                   now_micros());
            }
            return py::make_tuple(copy.columns, py::bytes(copy.data));
          },
          py::arg("start"), py::arg("stop"));

  m.def(
      "job_batch",
      [](const std::string& task, const std::string& queue, int priority, int max_attempts,
         std::optional<std::int64_t> run_at, std::optional<std::int64_t> expires_at,
         std::optional<double> time_limit, std::optional<double> soft_time_limit,
         const py::iterable& calls) {
        auto batch = std::make_unique<JobBatch>();
        NewJob proto;
        proto.task = task;
        proto.queue = queue;
        proto.priority = priority;
        proto.max_attempts = max_attempts;
        proto.run_at = micros_or_none(run_at);
        proto.expires_at = micros_or_none(expires_at);
        proto.time_limit = time_limit.value_or(0);
        proto.soft_time_limit = soft_time_limit.value_or(0);
        proto.args.clear();
        if (py::hasattr(calls, "__len__")) batch->jobs.reserve(py::len(calls));
        std::string args;
        std::size_t index = 0;
        JsonError err;
        for (py::handle call : calls) {
          args.clear();
          const Py_ssize_t bad = append_args(call.ptr(), args, err);
          if (bad >= 0) {
            err.raise(task + "(): ", "call " + std::to_string(index) +
                                         ", positional argument " + std::to_string(bad));
          }
          NewJob& job = batch->jobs.emplace_back(proto);
          job.args = args;
          job.id = new_job_id();
          ++index;
        }
        return batch;
      },
      py::arg("task"), py::arg("queue"), py::arg("priority"), py::arg("max_attempts"),
      py::arg("run_at"), py::arg("expires_at"), py::arg("time_limit"),
      py::arg("soft_time_limit"), py::arg("calls"),
      "The jobs of task.map(): one per argument tuple in `calls`, with these options. A "
      "value JSON must not carry raises TypeError or ValueError naming the call and the "
      "argument, and no batch is made.");

  m.def(
      "enqueue_batch",
      [](Session& s, const JobBatch& b, std::size_t copy_rows) {
        py::gil_scoped_release release;
        enqueue_batch(s, b.jobs, copy_rows);
      },
      py::arg("session"), py::arg("batch"), py::arg("copy_rows") = kBatchCopyRows,
      "Inserts the batch's jobs in the session's transaction: COPY on PostgreSQL "
      "(copy_rows jobs a statement), one INSERT on SQLite.");
  m.attr("BATCH_COPY_ROWS") = kBatchCopyRows;

  m.def(
      "encode_call",
      [](py::handle args, py::handle kwargs, const std::string& prefix) {
        std::string args_json, kwargs_json;
        encode_call(args.ptr(), kwargs.ptr(), prefix, args_json, kwargs_json);
        return py::make_tuple(py::str(args_json), py::str(kwargs_json));
      },
      py::arg("args"), py::arg("kwargs"), py::arg("prefix") = "",
      "(args JSON, kwargs JSON) of a call: its positional arguments (any iterable) and "
      "keyword arguments (a dict with str keys, or None). A value JSON must not carry "
      "(not a JSON type, an int outside signed 64 bits, NaN or infinity, a lone surrogate, "
      "a non-str dict key, nesting past 1000 levels) raises TypeError or ValueError "
      "'<prefix>positional argument 0[2][\'k\'] ...'.");

  m.def(
      "encode_json",
      [](py::handle value, const std::string& name, const std::string& prefix) {
        std::string out;
        JsonError err;
        if (!encode_json(value.ptr(), out, err, 0)) err.raise(prefix, name);
        return py::str(out);
      },
      py::arg("value"), py::arg("name") = "value", py::arg("prefix") = "",
      "One value as JSON text, refused as encode_call refuses an argument; the message "
      "names it `name` (and the path inside it), after `prefix`.");
  m.attr("MAX_JSON_DEPTH") = kMaxJsonDepth;
}

}  // namespace fastq::py_bindings
