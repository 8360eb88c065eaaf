// The batch poller's cycle (see poller.hpp). The SQL is in the drivers (select_keys,
// count_rows, enqueue_once).
#include "fastq/poller.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "fastq/json.hpp"

namespace fastq {

std::vector<SqlValue> Driver::select_keys(const KeysetQuery&, const std::optional<SqlValue>&,
                                          int) {
  throw DriverError("the " + name() + " broker cannot run a poller's query", false);
}

std::int64_t Driver::count_rows(const KeysetQuery&) {
  throw DriverError("the " + name() + " broker cannot run a poller's query", false);
}

std::size_t Driver::enqueue_once(const std::string&, std::span<const std::string>,
                                 std::span<const NewJob>) {
  throw DriverError("the " + name() + " broker cannot record poller marks", false);
}

std::string key_text(const SqlValue& key) {
  if (const auto* i = std::get_if<std::int64_t>(&key)) return std::to_string(*i);
  if (const auto* s = std::get_if<std::string>(&key)) return *s;
  if (const auto* d = std::get_if<double>(&key)) {
    std::string out = std::to_string(*d);
    return out;
  }
  return "null";
}

std::string key_json(const SqlValue& key) {
  if (const auto* i = std::get_if<std::int64_t>(&key)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&key)) {
    return std::isfinite(*d) ? std::to_string(*d) : "null";
  }
  if (const auto* s = std::get_if<std::string>(&key)) {
    std::string out;
    append_json_string(out, *s);
    return out;
  }
  return "null";
}

std::string native_placeholders(const std::string& sql, bool numbered, int first_index) {
  std::string out;
  out.reserve(sql.size() + 16);
  int next = first_index;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    const char n = i + 1 < sql.size() ? sql[i + 1] : '\0';
    if (n == '%') {
      out.push_back('%');
    } else if (n == 's') {
      if (numbered) {
        out.push_back('$');
        out += std::to_string(next++);
      } else {
        out.push_back('?');
      }
    } else {
      std::string msg = "poller query: unexpected '%";
      if (n) msg.push_back(n);
      msg += "' (parameters must be %s, a literal % is %%)";
      throw std::invalid_argument(msg);
    }
    ++i;
  }
  return out;
}

PollStats run_poll(Driver& driver, const PollCycle& c) {
  if (c.rows.key.empty()) throw std::invalid_argument("poller query: no key column");
  if (c.check.task.empty()) throw std::invalid_argument("poller: no task to enqueue");
  const int batch = std::max(c.batch, 1);
  PollStats st;

  const std::int64_t total = driver.count_rows(c.rows);
  if (total > 0) st.gap = c.span / total;
  st.gap = std::max(st.gap, c.min_gap);

  std::optional<SqlValue> after;
  std::vector<NewJob> jobs;
  jobs.reserve(static_cast<std::size_t>(batch));
  const std::string prefix = "poll:" + c.name + ":";
  for (;;) {
    auto keys = driver.select_keys(c.rows, after, batch);
    ++st.pages;
    if (keys.empty()) break;
    jobs.clear();
    for (const auto& key : keys) {
      NewJob job = c.check;
      job.id = new_job_id();
      job.args = "[" + key_json(key) + "]";
      job.kwargs = "{}";
      job.run_at = c.start + st.rows * st.gap;
      job.unique_key = prefix + key_text(key);
      jobs.push_back(std::move(job));
      ++st.rows;
    }
    const auto ids = driver.enqueue(jobs);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] == jobs[i].id) {
        ++st.enqueued;
      } else {
        ++st.pending;
      }
    }
    if (keys.size() < static_cast<std::size_t>(batch)) break;
    after = std::move(keys.back());
  }

  if (c.stale && !c.alert.task.empty()) {
    after.reset();
    std::vector<std::string> texts;
    for (;;) {
      auto keys = driver.select_keys(*c.stale, after, batch);
      ++st.pages;
      if (keys.empty()) break;
      jobs.clear();
      texts.clear();
      for (const auto& key : keys) {
        NewJob job = c.alert;
        job.id = new_job_id();
        job.args = "[" + key_json(key) + "]";
        job.kwargs = "{}";
        texts.push_back(key_text(key));
        jobs.push_back(std::move(job));
        ++st.stale;
      }
      st.alerted += static_cast<std::int64_t>(driver.enqueue_once(c.name, texts, jobs));
      if (keys.size() < static_cast<std::size_t>(batch)) break;
      after = std::move(keys.back());
    }
  }
  return st;
}

}  // namespace fastq
