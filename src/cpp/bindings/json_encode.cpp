#include "json_encode.hpp"

#include <pybind11/pybind11.h>

#include <charconv>
#include <cmath>
#include <cstdio>

#include "fastq/json.hpp"

namespace fastq::py_bindings {

namespace py = pybind11;

namespace {

// type(o).__name__, as Python's own messages name types.
std::string type_name(PyObject* o) {
  PyObject* name = PyType_GetName(Py_TYPE(o));
  if (name == nullptr) {
    PyErr_Clear();
    return Py_TYPE(o)->tp_name;
  }
  Py_ssize_t n = 0;
  const char* s = PyUnicode_AsUTF8AndSize(name, &n);
  std::string out = s ? std::string(s, static_cast<std::size_t>(n)) : Py_TYPE(o)->tp_name;
  if (s == nullptr) PyErr_Clear();
  Py_DECREF(name);
  return out;
}

// repr(o), cut to `max` characters for a message.
std::string short_repr(PyObject* o, std::size_t max = 60) {
  PyObject* r = PyObject_Repr(o);
  if (r == nullptr) {
    PyErr_Clear();
    return "<" + type_name(o) + " object>";
  }
  Py_ssize_t n = 0;
  const char* s = PyUnicode_AsUTF8AndSize(r, &n);
  std::string out;
  if (s == nullptr) {
    PyErr_Clear();
    out = "<" + type_name(o) + " object>";
  } else {
    out.assign(s, static_cast<std::size_t>(n));
  }
  Py_DECREF(r);
  if (out.size() > max) out = out.substr(0, max) + "...";
  return out;
}

// An int too large for 64 bits, for the message: its digits (cut), or its size when
// Python refuses to print it (past sys.get_int_max_str_digits()).
std::string big_int_text(PyObject* o) {
  PyObject* plain = PyNumber_Index(o);  // an IntEnum member's value as a plain int
  if (plain == nullptr) {
    PyErr_Clear();
    return "an integer";
  }
  PyObject* r = PyObject_Repr(plain);
  const char* s = r ? PyUnicode_AsUTF8(r) : nullptr;
  std::string out;
  if (s != nullptr) {
    out = s;
    if (out.size() > 40) out = out.substr(0, 20) + "..." + out.substr(out.size() - 8);
  } else {
    PyErr_Clear();
    PyObject* bits = PyObject_CallMethod(plain, "bit_length", nullptr);
    const long long n = bits ? PyLong_AsLongLong(bits) : -1;
    if (PyErr_Occurred()) PyErr_Clear();
    Py_XDECREF(bits);
    out = "an integer of " + std::to_string(n) + " bits";
  }
  Py_XDECREF(r);
  Py_DECREF(plain);
  return out;
}

// Where the first lone surrogate of `s` is, for the message.
std::string surrogate_at(PyObject* s) {
  const Py_ssize_t n = PyUnicode_GET_LENGTH(s);
  const int kind = PyUnicode_KIND(s);
  const void* data = PyUnicode_DATA(s);
  for (Py_ssize_t i = 0; i < n; ++i) {
    const Py_UCS4 c = PyUnicode_READ(kind, data, i);
    if (c >= 0xD800 && c <= 0xDFFF) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "U+%04X at index %zd", static_cast<unsigned>(c), i);
      return buf;
    }
  }
  return "a lone surrogate";
}

bool fail(JsonError& err, PyObject* type, std::string problem) {
  err.type = type;
  err.problem = std::move(problem);
  return false;
}

// A Python exception is pending (raised by Python code the encoder called).
bool python_error(JsonError& err) {
  err.type = nullptr;
  return false;
}

// Appends the string `s` (a str or subclass) as a JSON literal; `what` names it in the
// message when it cannot be encoded as UTF-8.
bool encode_str(PyObject* s, std::string& out, JsonError& err, const char* what) {
  Py_ssize_t n = 0;
  const char* utf8 = PyUnicode_AsUTF8AndSize(s, &n);
  if (utf8 == nullptr) {
    if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return python_error(err);
    PyErr_Clear();
    return fail(err, PyExc_ValueError,
                std::string(what) + " with a lone surrogate (" + surrogate_at(s) +
                    "), which UTF-8 cannot encode; decode bytes with errors='replace' or "
                    "pass them as base64 text");
  }
  append_json_string(out, std::string_view(utf8, static_cast<std::size_t>(n)));
  return true;
}

// Python code can run inside a container only (a dict subclass's items()), and it could
// drop what the encoder holds borrowed from an outer container: containers, and the keys
// they sit under, are held while encoded. Scalars are not (no refcount writes on the
// common path).
inline bool may_run_python(PyObject* o) {
  return PyList_Check(o) || PyTuple_Check(o) || PyDict_Check(o);
}

bool encode_item(PyObject* item, std::string& out, JsonError& err, int depth,
                 std::string (*segment)(PyObject*, Py_ssize_t), PyObject* key, Py_ssize_t i) {
  const bool hold = may_run_python(item);
  if (hold) {
    Py_INCREF(item);
    Py_XINCREF(key);
  }
  const bool ok = encode_json(item, out, err, depth);
  if (!ok) err.path.push_back(segment(key, i));
  if (hold) {
    Py_DECREF(item);
    Py_XDECREF(key);
  }
  return ok;
}

std::string index_segment(PyObject*, Py_ssize_t i) { return "[" + std::to_string(i) + "]"; }
std::string key_segment(PyObject* key, Py_ssize_t) { return "[" + short_repr(key) + "]"; }

bool encode_pair(PyObject* key, PyObject* value, std::string& out, JsonError& err, int depth,
                 bool first) {
  if (!PyUnicode_Check(key)) {
    return fail(err, PyExc_TypeError,
                " has the key " + short_repr(key) + " of type " + type_name(key) +
                    "; JSON object keys must be strings");
  }
  if (!first) out += ',';
  if (!encode_str(key, out, err, " has a key")) return false;
  out += ':';
  return encode_item(value, out, err, depth, key_segment, key, 0);
}

bool encode_dict(PyObject* o, std::string& out, JsonError& err, int depth) {
  out += '{';
  bool first = true;
  if (PyDict_CheckExact(o)) {
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(o, &pos, &key, &value)) {
      if (!encode_pair(key, value, out, err, depth, first)) return false;
      first = false;
    }
  } else {
    // A subclass (OrderedDict...): its own items(), in its order, as json does.
    PyObject* items = PyMapping_Items(o);
    if (items == nullptr) return python_error(err);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); ++i) {
      PyObject* item = PyList_GET_ITEM(items, i);
      if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
        Py_DECREF(items);
        return fail(err, PyExc_TypeError, ".items() does not return (key, value) pairs");
      }
      if (!encode_pair(PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1), out, err, depth,
                       first)) {
        Py_DECREF(items);
        return false;
      }
      first = false;
    }
    Py_DECREF(items);
  }
  out += '}';
  return true;
}

}  // namespace

std::string JsonError::where(const std::string& name) const {
  // Outermost first; a very deep path keeps its first and last steps.
  constexpr std::size_t kHead = 8, kTail = 3;
  std::string out = name;
  const std::size_t n = path.size();
  for (std::size_t k = 0; k < n; ++k) {
    if (n > kHead + kTail && k == kHead) {
      out += "...(" + std::to_string(n - kHead - kTail) + " more)...";
      k = n - kTail - 1;
      continue;
    }
    out += path[n - 1 - k];
  }
  return out;
}

void JsonError::raise(const std::string& prefix, const std::string& name) const {
  if (type == nullptr) throw py::error_already_set();
  PyErr_SetString(type, (prefix + where(name) + problem).c_str());
  throw py::error_already_set();
}

bool encode_json(PyObject* o, std::string& out, JsonError& err, int depth) {
  if (o == Py_None) {
    out += "null";
  } else if (o == Py_True) {
    out += "true";
  } else if (o == Py_False) {
    out += "false";
  } else if (PyLong_Check(o)) {  // int and subclasses (IntEnum): int.__repr__, as json
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow != 0) {
      return fail(err, PyExc_ValueError,
                  " is " + big_int_text(o) +
                      ", an integer outside the signed 64-bit range (-2**63 .. 2**63-1) "
                      "that a job's JSON may carry; pass it as a string");
    }
    if (v == -1 && PyErr_Occurred()) return python_error(err);
    char digits[24];
    out.append(digits, std::to_chars(digits, digits + sizeof digits, v).ptr);
  } else if (PyUnicode_Check(o)) {
    if (!encode_str(o, out, err, " is a string")) return false;
  } else if (PyList_Check(o) || PyTuple_Check(o)) {
    if (depth + 1 > kMaxJsonDepth) {
      return fail(err, PyExc_ValueError,
                  " is nested more than " + std::to_string(kMaxJsonDepth) +
                      " levels deep (a circular reference?)");
    }
    out += '[';
    // The size is read again each time: a dict subclass's items() could change a list.
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(o); ++i) {
      if (i) out += ',';
      if (!encode_item(PySequence_Fast_GET_ITEM(o, i), out, err, depth + 1, index_segment,
                       nullptr, i)) {
        return false;
      }
    }
    out += ']';
  } else if (PyDict_Check(o)) {
    if (depth + 1 > kMaxJsonDepth) {
      return fail(err, PyExc_ValueError,
                  " is nested more than " + std::to_string(kMaxJsonDepth) +
                      " levels deep (a circular reference?)");
    }
    return encode_dict(o, out, err, depth + 1);
  } else if (PyFloat_Check(o)) {  // after the flag-tested types: this walks the MRO
    const double v = PyFloat_AS_DOUBLE(o);
    if (!std::isfinite(v)) {
      return fail(err, PyExc_ValueError,
                  std::string(" is ") + (std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf") +
                      "; JSON has no NaN or infinity");
    }
    char* text = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, nullptr);
    if (text == nullptr) return python_error(err);
    out += text;
    PyMem_Free(text);
  } else {
    return fail(err, PyExc_TypeError,
                " of type " + type_name(o) +
                    " is not JSON serializable; pass ids and plain data, not objects");
  }
  return true;
}

Py_ssize_t append_args(PyObject* args, std::string& out, JsonError& err) {
  py::object held;
  if (!PyList_Check(args) && !PyTuple_Check(args)) {
    held = py::reinterpret_steal<py::object>(PySequence_Tuple(args));
    if (!held) throw py::error_already_set();
    args = held.ptr();
  }
  out += '[';
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(args); ++i) {
    if (i) out += ',';
    PyObject* item = PySequence_Fast_GET_ITEM(args, i);
    const bool hold = may_run_python(item);
    if (hold) Py_INCREF(item);
    const bool ok = encode_json(item, out, err, 1);
    if (hold) Py_DECREF(item);
    if (!ok) return i;
  }
  out += ']';
  return -1;
}

void encode_call(PyObject* args, PyObject* kwargs, const std::string& prefix,
                 std::string& args_json, std::string& kwargs_json) {
  JsonError err;
  const Py_ssize_t bad = append_args(args, args_json, err);
  if (bad >= 0) err.raise(prefix, "positional argument " + std::to_string(bad));
  if (kwargs == nullptr || kwargs == Py_None) {
    kwargs_json += "{}";
    return;
  }
  if (!PyDict_Check(kwargs)) {
    PyErr_SetString(PyExc_TypeError,
                    (prefix + "keyword arguments must be a dict, not " + type_name(kwargs))
                        .c_str());
    throw py::error_already_set();
  }
  kwargs_json += '{';
  PyObject *key, *value;
  Py_ssize_t pos = 0;
  bool first = true;
  while (PyDict_Next(kwargs, &pos, &key, &value)) {
    if (!PyUnicode_Check(key)) {
      PyErr_SetString(PyExc_TypeError, (prefix + "keyword names must be strings, got " +
                                        short_repr(key) + " of type " + type_name(key))
                                           .c_str());
      throw py::error_already_set();
    }
    if (!first) kwargs_json += ',';
    first = false;
    Py_INCREF(key);
    Py_INCREF(value);
    bool ok = encode_str(key, kwargs_json, err, " is a string");
    std::string name = ok ? "" : "keyword name " + short_repr(key);
    if (ok) {
      kwargs_json += ':';
      ok = encode_json(value, kwargs_json, err, 1);
      if (!ok) name = "argument " + short_repr(key);
    }
    Py_DECREF(value);
    Py_DECREF(key);
    if (!ok) err.raise(prefix, name);
  }
  kwargs_json += '}';
}

}  // namespace fastq::py_bindings
