// Shared by the binding translation units. pybind11 only; simdjson stays in bind_worker.
#pragma once

#include <pybind11/pybind11.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "fastq/driver.hpp"
#include "fastq/worker.hpp"

namespace fastq::py_bindings {

namespace py = pybind11;

// Python keeps drivers in shared_ptr so a worker can take a sibling connection while the
// caller keeps enqueueing through the original.
using DriverPtr = std::shared_ptr<Driver>;

// A Python log(level, message) callable as the core's log hook: any C++ thread, takes the
// GIL, never throws (a failing callback is reported as unraisable). `keep` receives the
// function so that its owner can drop it while holding the GIL. Empty if `log` is.
inline std::function<void(LogLevel, const std::string&)> log_hook(
    std::optional<py::function> log, std::shared_ptr<py::function>& keep, const char* where) {
  if (!log) return {};
  auto fn = std::make_shared<py::function>(std::move(*log));
  keep = fn;
  return [fn, where](LogLevel level, const std::string& msg) {
    py::gil_scoped_acquire gil;
    try {
      // Decoded leniently: a line holding invalid UTF-8 (a driver's message, a job's
      // text) is logged with U+FFFD in place of the bad bytes rather than lost.
      PyObject* text = PyUnicode_DecodeUTF8(msg.data(), static_cast<Py_ssize_t>(msg.size()),
                                            "replace");
      if (text == nullptr) throw py::error_already_set();
      (*fn)(static_cast<int>(level), py::reinterpret_steal<py::str>(text));
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable(where);
    }
  };
}

void bind_driver(py::module_& m);
void bind_bulk(py::module_& m);
void bind_worker(py::module_& m);
void bind_cron(py::module_& m);
void bind_scheduler(py::module_& m);
void bind_session(py::module_& m);

}  // namespace fastq::py_bindings
