// _core.job_batch: the jobs of task.map() built in one call. Arguments are encoded to JSON
// here (the common plain types; anything else goes through the Python encoder), ids are
// UUIDv7, and the batch is handed to the broker as COPY text, SQLite parameters or
// driver rows without a Python object per field.
#include <Python.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "fastq/bulk.hpp"
#include "fastq/json.hpp"
#include "fastq/time.hpp"

namespace fastq::py_bindings {

namespace {

void append_json_string(std::string& out, const char* s, Py_ssize_t n) {
  fastq::append_json_string(out, std::string_view(s, static_cast<std::size_t>(n)));
}

// Python's json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
// for exact None, bool, int, float, str, list, tuple and dict with str keys. Returns false
// (with no Python error set) for anything else, so the caller can use the Python encoder
// and its error messages.
bool encode_json(PyObject* o, std::string& out, int depth) {
  if (depth > 64) return false;
  if (o == Py_None) {
    out += "null";
  } else if (o == Py_True) {
    out += "true";
  } else if (o == Py_False) {
    out += "false";
  } else if (PyLong_CheckExact(o)) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow != 0 || (v == -1 && PyErr_Occurred())) {
      PyErr_Clear();
      return false;
    }
    out += std::to_string(v);
  } else if (PyUnicode_CheckExact(o)) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(o, &n);
    if (s == nullptr) {  // lone surrogates
      PyErr_Clear();
      return false;
    }
    append_json_string(out, s, n);
  } else if (PyFloat_CheckExact(o)) {
    const double v = PyFloat_AS_DOUBLE(o);
    if (!(v == v) || v > 1.7976931348623157e308 || v < -1.7976931348623157e308) return false;
    char* text = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, nullptr);
    if (text == nullptr) {
      PyErr_Clear();
      return false;
    }
    out += text;
    PyMem_Free(text);
  } else if (PyList_CheckExact(o) || PyTuple_CheckExact(o)) {
    const bool list = PyList_CheckExact(o);
    const Py_ssize_t n = list ? PyList_GET_SIZE(o) : PyTuple_GET_SIZE(o);
    out += '[';
    for (Py_ssize_t i = 0; i < n; ++i) {
      if (i) out += ',';
      // A list may change size only through Python code, and none runs here.
      PyObject* item = list ? PyList_GET_ITEM(o, i) : PyTuple_GET_ITEM(o, i);
      if (!encode_json(item, out, depth + 1)) return false;
    }
    out += ']';
  } else if (PyDict_CheckExact(o)) {
    out += '{';
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    bool first = true;
    while (PyDict_Next(o, &pos, &key, &value)) {
      if (!PyUnicode_CheckExact(key)) return false;
      if (!first) out += ',';
      first = false;
      Py_ssize_t n = 0;
      const char* s = PyUnicode_AsUTF8AndSize(key, &n);
      if (s == nullptr) {
        PyErr_Clear();
        return false;
      }
      append_json_string(out, s, n);
      out += ':';
      if (!encode_json(value, out, depth + 1)) return false;
    }
    out += '}';
  } else {
    return false;
  }
  return true;
}

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
          py::arg("start"), py::arg("stop"))
      .def(
          "sqlite_params",
          [](const JobBatch& b, std::size_t start, std::size_t stop, const py::object& now,
             const py::function& timestamp) {
            // The parameters of fastq_django's multi-row SQLite INSERT, 14 per job:
            // id (32 hex digits, as Django stores UUIDs there), task, queue, priority,
            // args, kwargs, run_at, max_attempts, expires_at, unique_key, created_at,
            // time_limit, soft_time_limit, rate_key. `timestamp(micros)` adapts a time.
            stop = std::min(stop, b.jobs.size());
            start = std::min(start, stop);
            py::list out((stop - start) * 14);
            std::size_t k = 0;
            auto opt_str = [](const std::string& s) -> py::object {
              return s.empty() ? py::object(py::none()) : py::object(py::str(s));
            };
            auto opt_seconds = [](double s) -> py::object {
              return s > 0 ? py::object(py::float_(s)) : py::object(py::none());
            };
            py::str task_s, queue_s;
            const std::string* last_task = nullptr;
            const std::string* last_queue = nullptr;
            for (std::size_t i = start; i < stop; ++i) {
              const NewJob& j = b.jobs[i];
              std::string hex;
              hex.reserve(32);
              for (char c : j.id) {
                if (c != '-') hex += c;
              }
              if (last_task == nullptr || *last_task != j.task) {
                task_s = py::str(j.task);
                last_task = &j.task;
              }
              if (last_queue == nullptr || *last_queue != j.queue) {
                queue_s = py::str(j.queue);
                last_queue = &j.queue;
              }
              out[k++] = py::str(hex);
              out[k++] = task_s;
              out[k++] = queue_s;
              out[k++] = py::int_(j.priority);
              out[k++] = py::str(j.args);
              out[k++] = py::str(j.kwargs);
              out[k++] = j.run_at ? timestamp(*j.run_at) : now;
              out[k++] = py::int_(j.max_attempts);
              out[k++] = j.expires_at ? timestamp(*j.expires_at) : py::object(py::none());
              out[k++] = opt_str(j.unique_key);
              out[k++] = now;
              out[k++] = opt_seconds(j.time_limit);
              out[k++] = opt_seconds(j.soft_time_limit);
              out[k++] = opt_str(j.rate_key);
            }
            return out;
          },
          py::arg("start"), py::arg("stop"), py::arg("now"), py::arg("timestamp"));

  m.def(
      "job_batch",
      [](const std::string& task, const std::string& queue, int priority, int max_attempts,
         std::optional<std::int64_t> run_at, std::optional<std::int64_t> expires_at,
         std::optional<double> time_limit, std::optional<double> soft_time_limit,
         const py::iterable& calls, const py::function& encode_args) {
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
        for (py::handle call : calls) {
          args.clear();
          PyObject* o = call.ptr();
          bool ok = PyTuple_CheckExact(o) || PyList_CheckExact(o);
          if (ok) ok = encode_json(o, args, 0);
          NewJob& job = batch->jobs.emplace_back(proto);
          if (ok) {
            job.args = args;
          } else {
            const py::object text = encode_args(call);
            Py_ssize_t n = 0;
            const char* s = PyUnicode_Check(text.ptr())
                                ? PyUnicode_AsUTF8AndSize(text.ptr(), &n)
                                : nullptr;
            if (s == nullptr) {
              if (PyErr_Occurred()) throw py::error_already_set();  // lone surrogates
              throw py::type_error("encode_args must return str");
            }
            job.args.assign(s, static_cast<std::size_t>(n));
          }
          job.id = new_job_id();
        }
        return batch;
      },
      py::arg("task"), py::arg("queue"), py::arg("priority"), py::arg("max_attempts"),
      py::arg("run_at"), py::arg("expires_at"), py::arg("time_limit"),
      py::arg("soft_time_limit"), py::arg("calls"), py::arg("encode_args"),
      "The jobs of task.map(): one per argument tuple in `calls`, with these options. "
      "`encode_args(call)` encodes a call whose arguments are not plain JSON types (and "
      "raises the TypeError naming the bad one).");
}

}  // namespace fastq::py_bindings
