// The statement home (fastq/sql.hpp): parsing, lookup, and every name the code asks for.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "fastq/sql.hpp"

namespace fastq::sql {
namespace {

TEST(Sql, ParsesNamedBlocksDroppingCommentsAndTheSemicolon) {
  const auto got = parse(
      "-- header comment\n\n-- name: one\n-- what it does\nSELECT 1\n  FROM t;\n"
      "-- name: two\nUPDATE t SET a = $1\n");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first, "one");
  EXPECT_EQ(got[0].second, "SELECT 1 FROM t");
  EXPECT_EQ(got[1].first, "two");
  EXPECT_EQ(got[1].second, "UPDATE t SET a = $1");
}

TEST(Sql, RefusesRepeatedEmptyAndUnnamedStatements) {
  EXPECT_THROW(parse("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n"), std::invalid_argument);
  EXPECT_THROW(parse("-- name: a\n-- name: b\nSELECT 2\n"), std::invalid_argument);
  EXPECT_THROW(parse("SELECT 1\n-- name: a\nSELECT 2\n"), std::invalid_argument);
  EXPECT_THROW(parse("-- name:\nSELECT 1\n"), std::invalid_argument);
}

TEST(Sql, FillTemplateReplacesEachMarkerInOnePass) {
  EXPECT_EQ(sql::fill_template("SELECT {key} FROM ({query}) q LIMIT {limit}",
                               {{"query", "SELECT id FROM t WHERE x = '{key}'"},
                                {"key", "id"},
                                {"limit", "?"}}),
            "SELECT id FROM (SELECT id FROM t WHERE x = '{key}') q LIMIT ?");
  // Markers not in the fill stay; an unclosed brace ends the scan.
  EXPECT_EQ(sql::fill_template("a {other} b {key", {{"key", "k"}}), "a {other} b {key");
  EXPECT_EQ(sql::fill_template("", {}), "");
}

TEST(Sql, UnknownNameIsAnError) {
  EXPECT_THROW(statement(Dialect::kPostgres, "no_such_statement"), UnknownStatement);
  EXPECT_THROW(statement(Dialect::kSqlite, "no_such_statement"), UnknownStatement);
}

TEST(Sql, BothDialectsAreEmbedded) {
  EXPECT_FALSE(names(Dialect::kPostgres).empty());
  EXPECT_FALSE(names(Dialect::kSqlite).empty());
  EXPECT_NE(statement(Dialect::kPostgres, "get_job").find("FROM fastq_job"), std::string::npos);
  EXPECT_NE(statement(Dialect::kSqlite, "get_job").find("?1"), std::string::npos);
}

std::string read_source(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every sql::statement(Dialect::kX, "name") in the core's sources, and every
// pg_sql("name") / lite_sql("name") of the drivers, names a statement of that dialect,
// and every statement of the files is used by some source.
TEST(Sql, EveryNameTheCodeUsesResolves) {
  const std::regex call(
      R"re(statement\(\s*(?:sql::)?(?:Dialect::(kPostgres|kSqlite)|(d))\s*,\s*"(\w+)"\s*\))re");
  const std::regex driver_call(R"re(\b(pg_sql|lite_sql)\(\s*"(\w+)"\s*\))re");
  std::set<std::pair<std::string, std::string>> used;  // (dialect or "d", name)
  const std::filesystem::path root = FASTQ_SOURCE_DIR;
  for (const auto* dir : {"src/cpp/core", "src/cpp/bindings"}) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(root / dir)) {
      if (e.path().extension() != ".cpp" && e.path().extension() != ".hpp") continue;
      const std::string s = read_source(e.path());
      for (std::sregex_iterator it(s.begin(), s.end(), call), end; it != end; ++it) {
        used.emplace((*it)[1].matched ? (*it)[1].str() : "d", (*it)[3].str());
      }
      for (std::sregex_iterator it(s.begin(), s.end(), driver_call), end; it != end; ++it) {
        used.emplace((*it)[1].str() == "pg_sql" ? "kPostgres" : "kSqlite", (*it)[2].str());
      }
    }
  }
  ASSERT_GT(used.size(), 5u) << "the scan found the calls";
  std::set<std::string> used_pg, used_sqlite;
  for (const auto& [dialect, name] : used) {
    // A name looked up with a dialect variable must exist in both dialects.
    if (dialect != "kSqlite") {
      EXPECT_NO_THROW(statement(Dialect::kPostgres, name)) << name;
      used_pg.insert(name);
    }
    if (dialect != "kPostgres") {
      EXPECT_NO_THROW(statement(Dialect::kSqlite, name)) << name;
      used_sqlite.insert(name);
    }
  }
  for (const auto& n : names(Dialect::kPostgres)) EXPECT_TRUE(used_pg.contains(n)) << n;
  for (const auto& n : names(Dialect::kSqlite)) EXPECT_TRUE(used_sqlite.contains(n)) << n;
}

// The drivers hold no SQL text: no string literal of theirs starts a statement. (BEGIN,
// COMMIT, ROLLBACK and SAVEPOINT stay in the code, with the transactions they frame.)
TEST(Sql, DriversHoldNoStatements) {
  const std::regex literal(R"re("((?:[^"\\\n]|\\.)*)")re");
  const std::regex statement_start(
      R"re(^\s*(SELECT|UPDATE|INSERT|DELETE|WITH|COPY|PRAGMA|SET|LISTEN)\s+\S)re");
  const std::filesystem::path root = FASTQ_SOURCE_DIR;
  for (const auto* file : {"src/cpp/core/postgres_driver.cpp", "src/cpp/core/sqlite_driver.cpp"}) {
    const std::string s = read_source(root / file);
    ASSERT_FALSE(s.empty()) << file;
    int literals = 0;
    for (std::sregex_iterator it(s.begin(), s.end(), literal), end; it != end; ++it) {
      ++literals;
      const std::string text = (*it)[1].str();
      EXPECT_FALSE(std::regex_search(text, statement_start)) << file << ": \"" << text << '"';
      for (const auto* word : {"SELECT ", "UPDATE ", "INSERT ", "DELETE ", " FROM ", " WHERE "}) {
        EXPECT_EQ(text.find(word), std::string::npos) << file << ": \"" << text << '"';
      }
    }
    EXPECT_GT(literals, 10) << file << ": the scan found the literals";
  }
}

// Every block of both files is a statement: non-empty, and a template's {markers} are
// only those the drivers fill.
TEST(Sql, EveryBlockIsAStatement) {
  const std::set<std::string> markers = {"query", "key",      "prefix", "after",
                                         "limit", "branches", "queue",  "columns", "log",
                                         "table"};
  const std::regex marker(R"re(\{(\w+)\})re");
  for (const auto dialect : {Dialect::kPostgres, Dialect::kSqlite}) {
    const auto all = names(dialect);
    EXPECT_GT(all.size(), 30u);
    for (const auto& n : all) {
      const std::string& text = statement(dialect, n);
      EXPECT_FALSE(text.empty()) << n;
      EXPECT_EQ(text.find(';'), std::string::npos) << n << ": one statement per block";
      for (std::sregex_iterator it(text.begin(), text.end(), marker), end; it != end; ++it) {
        EXPECT_TRUE(markers.contains((*it)[1].str())) << n << ": " << (*it)[0].str();
      }
    }
  }
}

}  // namespace
}  // namespace fastq::sql
