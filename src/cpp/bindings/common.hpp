// Shared by the binding translation units. pybind11 only; simdjson stays in bind_worker.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>

#include "fastq/driver.hpp"

namespace fastq::py_bindings {

namespace py = pybind11;

// Python keeps drivers in shared_ptr so a worker can take a sibling connection while the
// caller keeps enqueueing through the original.
using DriverPtr = std::shared_ptr<Driver>;

void bind_driver(py::module_& m);
void bind_worker(py::module_& m);
void bind_cron(py::module_& m);
void bind_scheduler(py::module_& m);

}  // namespace fastq::py_bindings
