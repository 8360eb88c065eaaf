// The one JSON encoder for what crosses into a job: the arguments of every enqueue path
// (.delay, .apply_async, task.map, schedules) and the results a worker stores. It writes
// what Python's json.dumps(value, separators=(",", ":"), ensure_ascii=False,
// allow_nan=False) writes, and refuses, naming where the bad value sits, what a worker
// or a database would choke on later: integers outside signed 64 bits, NaN and infinity,
// strings that are not valid Unicode (lone surrogates), non-string dict keys, nesting
// deeper than kMaxJsonDepth, and any type JSON has no form for.
#pragma once

#include <Python.h>

#include <string>
#include <vector>

namespace fastq::py_bindings {

// Containers nested deeper than this (the outer arguments array counts) are refused:
// the worker's decoder (simdjson, 1024) and json.loads (eager mode) read up to it.
inline constexpr int kMaxJsonDepth = 1000;

// Why a value cannot be encoded. `path` grows while the encoder unwinds, innermost first
// ("[3]", "['key']").
struct JsonError {
  PyObject* type = nullptr;  // PyExc_TypeError or PyExc_ValueError; null: a Python error
                             // is set (raised by a dict subclass's items(), say)
  std::string problem;       // follows the value's name: " is nan; ..."
  std::vector<std::string> path;

  // `name` (e.g. "positional argument 1") followed by the path to the bad value.
  std::string where(const std::string& name) const;
  // Sets the Python exception `prefix + where(name) + problem` (or leaves the pending
  // one) and throws pybind11::error_already_set.
  [[noreturn]] void raise(const std::string& prefix, const std::string& name) const;
};

// Appends the JSON of `o` to `out`. On a value JSON must not carry, fills `err` and
// returns false (`out` then holds a partial text). `depth`: containers around `o`.
bool encode_json(PyObject* o, std::string& out, JsonError& err, int depth);

// Appends the JSON array of a call's positional arguments (any iterable; a list or tuple
// as is). Returns -1, or the index of the first argument JSON must not carry (`err` says
// why; the caller names it "positional argument <index>").
Py_ssize_t append_args(PyObject* args, std::string& out, JsonError& err);

// The JSON texts of a call's positional arguments (any iterable; a list or tuple as is)
// and keyword arguments (a dict with str keys, or None). A bad value raises TypeError or
// ValueError "<prefix>positional argument 1[2]['x'] is nan; ...".
void encode_call(PyObject* args, PyObject* kwargs, const std::string& prefix,
                 std::string& args_json, std::string& kwargs_json);

}  // namespace fastq::py_bindings
