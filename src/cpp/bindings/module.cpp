// fastq._core: the private extension. The public API is the Python package `fastq`.
#include "common.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() =
      "fastq's C++ core: broker drivers, the worker, cron schedules and the scheduler (private; use the "
      "fastq package)";
  fastq::py_bindings::bind_driver(m);
  fastq::py_bindings::bind_bulk(m);
  fastq::py_bindings::bind_worker(m);
  fastq::py_bindings::bind_cron(m);
  fastq::py_bindings::bind_scheduler(m);
  fastq::py_bindings::bind_session(m);
}
