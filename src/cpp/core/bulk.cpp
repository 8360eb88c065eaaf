#include "fastq/bulk.hpp"

#include <charconv>

#include "fastq/time.hpp"

namespace fastq {

void append_copy_text(std::string& out, std::string_view text) {
  std::size_t clean = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const char* esc = nullptr;
    switch (c) {
      case '\\': esc = "\\\\"; break;
      case '\t': esc = "\\t"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      default: continue;
    }
    out.append(text.data() + clean, i - clean);
    out.append(esc);
    clean = i + 1;
  }
  out.append(text.data() + clean, text.size() - clean);
}

namespace {

void append_int(std::string& out, long long v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, p);
}

void append_double(std::string& out, double v) {
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, p);
}

void append_timestamp(std::string& out, Micros t) {
  out += format_utc(t);
  out += "+00";
}

}  // namespace

PgCopyBatch pg_copy_batch(std::span<const NewJob> jobs, Micros now) {
  bool run_at = false, expires_at = false, unique_key = false, time_limit = false,
       soft_time_limit = false, rate_key = false, group_label = false;
  std::size_t bytes = 0;
  for (const NewJob& j : jobs) {
    run_at |= j.run_at.has_value();
    expires_at |= j.expires_at.has_value();
    unique_key |= !j.unique_key.empty();
    time_limit |= j.time_limit > 0;
    soft_time_limit |= j.soft_time_limit > 0;
    rate_key |= !j.rate_key.empty();
    group_label |= !j.group_label.empty();
    bytes += 64 + j.task.size() + j.queue.size() + j.args.size() + j.kwargs.size() +
             j.unique_key.size() + j.rate_key.size() + j.group_label.size();
  }
  PgCopyBatch out;
  out.columns = "id, task, queue, priority, args, kwargs, max_attempts, envelope";
  if (run_at) out.columns += ", run_at";
  if (expires_at) out.columns += ", expires_at";
  if (unique_key) out.columns += ", unique_key";
  if (time_limit) out.columns += ", time_limit";
  if (soft_time_limit) out.columns += ", soft_time_limit";
  if (rate_key) out.columns += ", rate_key";
  if (group_label) out.columns += ", group_label";

  const std::string envelope = std::to_string(kEnvelopeVersion);
  std::string& d = out.data;
  d.reserve(bytes + (run_at ? 32 : 0) * jobs.size() + (expires_at ? 32 : 0) * jobs.size());
  for (const NewJob& j : jobs) {
    d += j.id;
    d += '\t';
    append_copy_text(d, j.task);
    d += '\t';
    append_copy_text(d, j.queue);
    d += '\t';
    append_int(d, j.priority);
    d += '\t';
    append_copy_text(d, j.args);
    d += '\t';
    append_copy_text(d, j.kwargs);
    d += '\t';
    append_int(d, j.max_attempts);
    d += '\t';
    d += envelope;
    if (run_at) {
      d += '\t';
      append_timestamp(d, j.run_at.value_or(now));
    }
    if (expires_at) {
      d += '\t';
      if (j.expires_at) {
        append_timestamp(d, *j.expires_at);
      } else {
        d += "\\N";
      }
    }
    if (unique_key) {
      d += '\t';
      if (j.unique_key.empty()) {
        d += "\\N";
      } else {
        append_copy_text(d, j.unique_key);
      }
    }
    if (time_limit) {
      d += '\t';
      if (j.time_limit > 0) {
        append_double(d, j.time_limit);
      } else {
        d += "\\N";
      }
    }
    if (soft_time_limit) {
      d += '\t';
      if (j.soft_time_limit > 0) {
        append_double(d, j.soft_time_limit);
      } else {
        d += "\\N";
      }
    }
    if (rate_key) {
      d += '\t';
      if (j.rate_key.empty()) {
        d += "\\N";
      } else {
        append_copy_text(d, j.rate_key);
      }
    }
    if (group_label) {
      d += '\t';
      if (j.group_label.empty()) {
        d += "\\N";
      } else {
        append_copy_text(d, j.group_label);
      }
    }
    d += '\n';
  }
  return out;
}

}  // namespace fastq
