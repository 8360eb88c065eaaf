// The batch poller's cycle (see poller.hpp). The SQL is in the drivers' keyset sources
// (keyset_source.hpp: select_keys, count_rows, enqueue_once).
#include "fastq/poller.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "fastq/json.hpp"

namespace fastq {

KeysetSource& keyset_source(Driver& driver) {
  if (auto* source = dynamic_cast<KeysetSource*>(&driver)) return *source;
  throw DriverError("the " + driver.name() +
                        " driver offers no keyset source: a batch poller runs a query, which "
                        "needs the sqlite or postgres driver",
                    false);
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
  KeysetSource& source = keyset_source(driver);
  const int batch = std::max(c.batch, 1);
  PollStats st;

  const std::string prefix = "poll:" + c.name + ":";
  // Every row keeps its place in the interval from cycle to cycle (start + i * gap, i its
  // rank by key), so a row is checked at a steady cadence. Rows whose check is still
  // queued or running are flagged by the read and get no job.
  KeysetQuery walk = c.rows;
  walk.pending_prefix = prefix;
  st.rows = source.count_rows(c.rows);
  if (st.rows > 0) st.gap = c.span / st.rows;
  st.gap = std::max(st.gap, c.min_gap);

  std::optional<SqlValue> after;
  std::vector<NewJob> jobs;
  jobs.reserve(static_cast<std::size_t>(batch));
  std::vector<char> pending;
  std::int64_t rank = 0;
  for (;;) {
    pending.clear();
    auto keys = source.select_keys(walk, after, batch, &pending);
    ++st.pages;
    if (keys.empty()) break;
    jobs.clear();
    for (std::size_t i = 0; i < keys.size(); ++i, ++rank) {
      if (i < pending.size() && pending[i]) continue;
      NewJob job = c.check;
      job.id = new_job_id();
      job.args = "[" + key_json(keys[i]) + "]";
      job.kwargs = "{}";
      job.run_at = c.start + rank * st.gap;
      job.unique_key = prefix + key_text(keys[i]);
      jobs.push_back(std::move(job));
    }
    // A check that became pending since the read (a cycle run by hand) bounces here.
    const auto ids = driver.enqueue(jobs);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] == jobs[i].id) ++st.enqueued;
    }
    if (keys.size() < static_cast<std::size_t>(batch)) break;
    after = std::move(keys.back());
  }
  st.pending = std::max<std::int64_t>(rank - st.enqueued, 0);

  if (c.stale && !c.alert.task.empty()) {
    after.reset();
    std::vector<std::string> texts;
    for (;;) {
      auto keys = source.select_keys(*c.stale, after, batch);
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
      st.alerted += static_cast<std::int64_t>(source.enqueue_once(c.name, texts, jobs));
      if (keys.size() < static_cast<std::size_t>(batch)) break;
      after = std::move(keys.back());
    }
  }
  return st;
}

}  // namespace fastq
