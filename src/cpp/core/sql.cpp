// The statement home's lookup (fastq/sql.hpp): the embedded files are parsed once, on
// first use.
#include "fastq/sql.hpp"

#include <algorithm>
#include <map>
#include <utility>

namespace fastq::sql {
namespace embedded {
extern const std::string_view k_postgres;
extern const std::string_view k_sqlite;
}  // namespace embedded

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

struct Home {
  std::vector<std::pair<std::string, std::string>> ordered;
  std::map<std::string, std::string, std::less<>> by_name;
  explicit Home(std::string_view text) : ordered(parse(text)) {
    for (const auto& [name, sql] : ordered) by_name.emplace(name, sql);
  }
};

const Home& home(Dialect dialect) {
  static const Home postgres(embedded::k_postgres);
  static const Home sqlite(embedded::k_sqlite);
  return dialect == Dialect::kPostgres ? postgres : sqlite;
}

const char* dialect_name(Dialect d) { return d == Dialect::kPostgres ? "postgres" : "sqlite"; }

}  // namespace

std::vector<std::pair<std::string, std::string>> parse(std::string_view text) {
  constexpr std::string_view kName = "-- name:";
  std::vector<std::pair<std::string, std::string>> out;
  std::map<std::string, bool, std::less<>> seen;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    const std::string_view raw = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    const std::string_view line = trim(raw);
    if (line.starts_with(kName)) {
      std::string name(trim(line.substr(kName.size())));
      if (name.empty()) throw std::invalid_argument("sql: '-- name:' without a name");
      if (!seen.emplace(name, true).second) {
        throw std::invalid_argument("sql: statement '" + name + "' is named twice");
      }
      out.emplace_back(std::move(name), std::string{});
      continue;
    }
    if (line.empty() || line.starts_with("--")) continue;
    if (out.empty()) throw std::invalid_argument("sql: SQL before the first '-- name:'");
    std::string& sql = out.back().second;
    if (!sql.empty()) sql.push_back(' ');
    sql.append(line);
  }
  for (auto& [name, sql] : out) {
    while (!sql.empty() && (sql.back() == ';' || sql.back() == ' ')) sql.pop_back();
    if (sql.empty()) throw std::invalid_argument("sql: statement '" + name + "' is empty");
  }
  return out;
}

const std::string& statement(Dialect dialect, std::string_view name) {
  const Home& h = home(dialect);
  const auto it = h.by_name.find(name);
  if (it == h.by_name.end()) {
    throw UnknownStatement("sql: no statement '" + std::string(name) + "' for " +
                           dialect_name(dialect));
  }
  return it->second;
}

std::vector<std::string> names(Dialect dialect) {
  std::vector<std::string> out;
  for (const auto& [name, sql] : home(dialect).ordered) out.push_back(name);
  return out;
}

std::string fill_template(std::string_view tmpl, Fill fill) {
  std::string out;
  std::size_t i = 0;
  while (i < tmpl.size()) {
    const auto open = tmpl.find('{', i);
    if (open == std::string_view::npos) break;
    const auto close = tmpl.find('}', open);
    if (close == std::string_view::npos) break;
    const std::string_view name = tmpl.substr(open + 1, close - open - 1);
    const auto it = std::find_if(fill.begin(), fill.end(),
                                 [&](const auto& f) { return f.first == name; });
    if (it == fill.end()) {
      out.append(tmpl.substr(i, close + 1 - i));
    } else {
      out.append(tmpl.substr(i, open - i));
      out.append(it->second);
    }
    i = close + 1;
  }
  out.append(tmpl.substr(i));
  return out;
}

}  // namespace fastq::sql
