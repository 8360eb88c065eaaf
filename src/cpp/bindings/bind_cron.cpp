// fastq.Cron: a cron expression bound to an IANA time zone, evaluated by the C++ core.
// Nothing here blocks (zones load once from local files), so the GIL stays held.
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/stl.h>

#include "common.hpp"
#include "fastq/cron.hpp"

// After pybind11, which brings in Python.h.
#include <datetime.h>

namespace fastq::py_bindings {

namespace {

struct PyCron {
  PyCron(const std::string& expression, const std::string& timezone)
      : cron(expression), zone(timezone) {
    try {
      tzinfo = py::module_::import("zoneinfo").attr("ZoneInfo")(timezone);
    } catch (py::error_already_set&) {
      // The C++ side found the zone; Python's zoneinfo reads another database.
      throw py::value_error("time zone \"" + timezone + "\" is unknown to Python's zoneinfo");
    }
  }

  Cron cron;
  TimeZone zone;
  py::object tzinfo;  // zoneinfo.ZoneInfo of the same zone, for the datetimes returned
};

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// An aware datetime as microseconds since the Unix epoch, exactly (no float on the way).
UtcMicros to_utc(py::handle dt) {
  if (!PyDateTime_Check(dt.ptr())) {
    throw py::type_error(std::string("Cron.next_after() takes a datetime.datetime, not ") +
                         Py_TYPE(dt.ptr())->tp_name);
  }
  const py::object offset = dt.attr("utcoffset")();
  if (offset.is_none()) {
    throw py::value_error("Cron.next_after() needs an aware datetime (tzinfo set); got naive " +
                          py::str(dt).cast<std::string>());
  }
  const std::int64_t days = days_from_civil(PyDateTime_GET_YEAR(dt.ptr()),
                                            static_cast<unsigned>(PyDateTime_GET_MONTH(dt.ptr())),
                                            static_cast<unsigned>(PyDateTime_GET_DAY(dt.ptr())));
  const std::int64_t wall =
      (days * 86400 + PyDateTime_DATE_GET_HOUR(dt.ptr()) * 3600 +
       PyDateTime_DATE_GET_MINUTE(dt.ptr()) * 60 + PyDateTime_DATE_GET_SECOND(dt.ptr())) *
          1'000'000 +
      PyDateTime_DATE_GET_MICROSECOND(dt.ptr());
  const std::int64_t off = (std::int64_t{PyDateTime_DELTA_GET_DAYS(offset.ptr())} * 86400 +
                            PyDateTime_DELTA_GET_SECONDS(offset.ptr())) *
                               1'000'000 +
                           PyDateTime_DELTA_GET_MICROSECONDS(offset.ptr());
  return UtcMicros{std::chrono::microseconds{wall - off}};
}

// A UTC instant as an aware datetime in `tzinfo` (via tzinfo.fromutc, which sets fold).
py::object from_utc(std::chrono::sys_seconds t, const py::object& tzinfo) {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  const int y = static_cast<int>(ymd.year());
  if (y < 1 || y > 9999) {
    PyErr_SetString(PyExc_OverflowError, "the next fire time is past datetime's year 9999");
    throw py::error_already_set();
  }
  PyObject* raw = PyDateTimeAPI->DateTime_FromDateAndTime(
      y, static_cast<int>(unsigned(ymd.month())), static_cast<int>(unsigned(ymd.day())),
      static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
      static_cast<int>(hms.seconds().count()), 0, tzinfo.ptr(), PyDateTimeAPI->DateTimeType);
  if (raw == nullptr) throw py::error_already_set();
  return tzinfo.attr("fromutc")(py::reinterpret_steal<py::object>(raw));
}

}  // namespace

void bind_cron(py::module_& m) {
  PyDateTime_IMPORT;
  if (PyDateTimeAPI == nullptr) throw py::error_already_set();

  py::register_exception<CronError>(m, "CronError", PyExc_ValueError);

  m.def(
      "set_zone_path", [](std::vector<std::string> dirs) { set_zone_path(std::move(dirs)); },
      py::arg("directories"),
      "Where the core looks for TZif zone files, in order (fastq sets zoneinfo.TZPATH and "
      "the tzdata package at import). Zones already loaded stay as they are.");
  m.def("zone_path", &zone_path, "The directories the core reads zone files from, in order.");

  py::class_<PyCron>(m, "Cron",
                     "A cron expression evaluated in an IANA time zone (see "
                     "docs/scheduling.md). Invalid expressions or zones raise CronError, a "
                     "ValueError.")
      .def(py::init<const std::string&, const std::string&>(), py::arg("expression"),
           py::arg("timezone") = "UTC")
      .def_property_readonly("expression", [](const PyCron& c) { return c.cron.expression(); })
      .def_property_readonly("timezone", [](const PyCron& c) { return c.zone.name(); })
      .def(
          "next_after",
          [](const PyCron& c, py::handle after) {
            return from_utc(c.cron.next_after(to_utc(after), c.zone), c.tzinfo);
          },
          py::arg("after"),
          "The first fire time strictly after the aware datetime `after`, as an aware "
          "datetime in the schedule's time zone.")
      .def("__repr__",
           [](const PyCron& c) {
             return "Cron(" + py::repr(py::str(c.cron.expression())).cast<std::string>() +
                    ", timezone=" + py::repr(py::str(c.zone.name())).cast<std::string>() + ")";
           })
      .def(
          "__eq__",
          [](const PyCron& a, py::object other) -> py::object {
            if (!py::isinstance<PyCron>(other))
              return py::reinterpret_borrow<py::object>(Py_NotImplemented);
            const auto& b = other.cast<const PyCron&>();
            return py::bool_(a.cron.expression() == b.cron.expression() &&
                             a.zone.name() == b.zone.name());
          },
          py::is_operator())
      .def("__hash__",
           [](const PyCron& c) {
             return py::hash(py::make_tuple(c.cron.expression(), c.zone.name()));
           })
      .def(py::pickle(
          [](const PyCron& c) { return py::make_tuple(c.cron.expression(), c.zone.name()); },
          [](const py::tuple& t) {
            if (t.size() != 2) throw py::value_error("invalid pickled Cron");
            return PyCron(t[0].cast<std::string>(), t[1].cast<std::string>());
          }));
}

}  // namespace fastq::py_bindings
