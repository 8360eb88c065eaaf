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

// Every sql::statement(Dialect::kX, "name") in the core's sources names a statement of
// that dialect, and every statement of the files is used by some source.
TEST(Sql, EveryNameTheCodeUsesResolves) {
  const std::regex call(
      R"re(statement\(\s*(?:sql::)?(?:Dialect::(kPostgres|kSqlite)|(d))\s*,\s*"(\w+)"\s*\))re");
  std::set<std::pair<std::string, std::string>> used;  // (dialect or "d", name)
  const std::filesystem::path root = FASTQ_SOURCE_DIR;
  for (const auto* dir : {"src/cpp/core", "src/cpp/bindings"}) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(root / dir)) {
      if (e.path().extension() != ".cpp" && e.path().extension() != ".hpp") continue;
      std::ifstream in(e.path());
      std::stringstream text;
      text << in.rdbuf();
      const std::string s = text.str();
      for (std::sregex_iterator it(s.begin(), s.end(), call), end; it != end; ++it) {
        used.emplace((*it)[1].matched ? (*it)[1].str() : "d", (*it)[3].str());
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

}  // namespace
}  // namespace fastq::sql
