// The batch poller's cycle on SQLite and PostgreSQL (real databases): keyset walking,
// spreading, one pending check per row, stale alerts once per row.
#include <gtest/gtest.h>

#include <string>

#include "fastq/poller.hpp"
#include "fastq/time.hpp"
#include "fixtures.hpp"

namespace fastq {
namespace {

TEST(PollerText, DjangoPlaceholdersBecomeNative) {
  const std::string sql = "SELECT id FROM t WHERE a = %s AND b LIKE '10%%' AND c IN (%s, %s)";
  EXPECT_EQ(native_placeholders(sql, true),
            "SELECT id FROM t WHERE a = $1 AND b LIKE '10%' AND c IN ($2, $3)");
  EXPECT_EQ(native_placeholders(sql, false),
            "SELECT id FROM t WHERE a = ? AND b LIKE '10%' AND c IN (?, ?)");
  EXPECT_EQ(native_placeholders("a = %s", true, 4), "a = $4");
  EXPECT_THROW(native_placeholders("a = %d", true), std::invalid_argument);
  EXPECT_THROW(native_placeholders("a = %", false), std::invalid_argument);
}

TEST(PollerText, KeysAsTextAndJson) {
  EXPECT_EQ(key_text(SqlValue(std::int64_t{42})), "42");
  EXPECT_EQ(key_json(SqlValue(std::int64_t{42})), "42");
  EXPECT_EQ(key_text(SqlValue(std::string("ab\"c"))), "ab\"c");
  EXPECT_EQ(key_json(SqlValue(std::string("ab\"c"))), "\"ab\\\"c\"");
}

TEST(PollerMemory, RefusesClearly) {
  auto d = make_memory_driver();
  PollCycle c;
  c.name = "p";
  c.rows = {"SELECT id FROM t", {}, "id"};
  c.check.task = "app.check";
  try {
    run_poll(*d, c);
    FAIL() << "expected DriverError";
  } catch (const DriverError& e) {
    EXPECT_NE(std::string(e.what()).find("memory"), std::string::npos) << e.what();
  }
}

class PollerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    FASTQ_OPEN_DRIVER(GetParam(), d_);
    if (GetParam() == "sqlite") {
      path_ = testing::temp_sqlite_path(
          ::testing::UnitTest::GetInstance()->current_test_info()->name());
    }
    const bool pg = GetParam() == "postgres";
    sql(std::string("CREATE TABLE shop_order (id ") +
        (pg ? "bigint" : "integer") +
        " NOT NULL PRIMARY KEY, status varchar(20) NOT NULL, tracking_id varchar(40) NOT "
        "NULL, sent_at bigint NOT NULL)");
    // 1..1000: every third row delivered, the rest shipped; sent_at = id.
    sql(pg ? "INSERT INTO shop_order SELECT g, CASE WHEN g % 3 = 0 THEN 'delivered' ELSE "
             "'shipped' END, 'T' || g, g FROM generate_series(1, 1000) g"
           : "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 1000) "
             "INSERT INTO shop_order SELECT n, CASE WHEN n % 3 = 0 THEN 'delivered' ELSE "
             "'shipped' END, 'T' || n, n FROM g");
  }

  long long sql(const std::string& q) { return testing::probe_int(GetParam(), path_, q); }
  std::string text(const std::string& q) { return testing::probe_text(GetParam(), path_, q); }

  // What Django's sql_with_params() gives for
  // Order.objects.filter(status="shipped").exclude(tracking_id="").values_list("pk").
  PollCycle cycle() {
    PollCycle c;
    c.name = "track";
    c.rows.sql =
        "SELECT \"shop_order\".\"id\" FROM \"shop_order\" WHERE (\"shop_order\".\"status\" "
        "= %s AND NOT (\"shop_order\".\"tracking_id\" = %s))";
    c.rows.params = {std::string("shipped"), std::string("")};
    c.rows.key = "\"id\"";
    c.check.task = "shop.tasks.track_order";
    c.check.queue = "tracking";
    c.start = 1'700'000'000'000'000;
    c.span = 10'000'000;  // 10 s
    c.batch = 64;
    return c;
  }

  std::unique_ptr<Driver> d_;
  std::string path_;
};

TEST_P(PollerTest, EnqueuesOneSpreadCheckPerRowInPages) {
  PollCycle c = cycle();
  const PollStats st = run_poll(*d_, c);
  EXPECT_EQ(st.rows, 667);  // 1000 minus the 333 delivered
  EXPECT_EQ(st.enqueued, 667);
  EXPECT_EQ(st.pending, 0);
  EXPECT_EQ(st.pages, 11);  // ceil(667 / 64)
  EXPECT_EQ(st.gap, 10'000'000 / 667);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job WHERE task = 'shop.tasks.track_order' AND "
                "queue = 'tracking' AND state = 'queued'"),
            667);
  // One job per row, argument = the row's key (an integer), unique key per row.
  EXPECT_EQ(sql("SELECT count(DISTINCT unique_key) FROM fastq_job"), 667);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job WHERE args = '[3]'"), 0);  // delivered
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job WHERE args = '[1000]' AND unique_key = "
                "'poll:track:1000'"),
            1);
  // Spread evenly: the first at start, the last one gap before start + span.
  const bool pg = GetParam() == "postgres";
  const std::string span_sql =
      pg ? "SELECT (extract(epoch FROM max(run_at) - min(run_at)) * 1000000)::bigint FROM "
           "fastq_job"
         : "SELECT CAST(round((julianday(max(run_at)) - julianday(min(run_at))) * 86400000000)"
           " AS integer) FROM fastq_job";
  EXPECT_NEAR(static_cast<double>(sql(span_sql)), 666.0 * static_cast<double>(st.gap), 2000.0);
  EXPECT_EQ(parse_utc(text(pg ? "SELECT to_char(min(run_at) AT TIME ZONE 'UTC', "
                                "'YYYY-MM-DD HH24:MI:SS.US') FROM fastq_job"
                              : "SELECT min(run_at) FROM fastq_job")),
            c.start);
}

TEST_P(PollerTest, NeverTwoPendingChecksForARowAndLeftRowsAreDropped) {
  PollCycle c = cycle();
  run_poll(*d_, c);
  // Nothing ran yet: the next cycle finds every row's check pending.
  PollStats st = run_poll(*d_, c);
  EXPECT_EQ(st.enqueued, 0);
  EXPECT_EQ(st.pending, 667);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job"), 667);
  // Checks of rows 1 and 2 ran; row 1 was delivered meanwhile.
  sql("UPDATE fastq_job SET state = 'succeeded' WHERE unique_key IN ('poll:track:1', "
      "'poll:track:2')");
  sql("UPDATE shop_order SET status = 'delivered' WHERE id = 1");
  st = run_poll(*d_, c);
  EXPECT_EQ(st.rows, 666);
  EXPECT_EQ(st.enqueued, 1);
  EXPECT_EQ(st.pending, 665);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job WHERE args = '[2]'"), 2);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job WHERE args = '[1]'"), 1);
}

TEST_P(PollerTest, RateLimitSetsTheLeastGap) {
  PollCycle c = cycle();
  c.min_gap = 100'000;  // 10/s: 667 rows take 66.7 s, longer than the 10 s cycle
  const PollStats st = run_poll(*d_, c);
  EXPECT_EQ(st.gap, 100'000);
}

TEST_P(PollerTest, StaleRowsAreAlertedOncePerRow) {
  PollCycle c = cycle();
  c.stale = c.rows;
  c.stale->sql += " AND \"shop_order\".\"sent_at\" < %s";
  c.stale->params.emplace_back(std::int64_t{101});  // rows 1..100 waited too long
  c.alert.task = "shop.tasks.alert_long_pending";
  PollStats st = run_poll(*d_, c);
  EXPECT_EQ(st.stale, 67);  // 1..100 minus 33 delivered
  EXPECT_EQ(st.alerted, 67);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job WHERE task = 'shop.tasks.alert_long_pending'"),
            67);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_poller_mark WHERE poller = 'track'"), 67);
  // Still stale next cycle, and three more: only the new ones alert.
  c.stale->params.back() = std::int64_t{105};
  st = run_poll(*d_, c);
  EXPECT_EQ(st.alerted, 3);  // 101, 103, 104 (102 is delivered)
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job WHERE task = 'shop.tasks.alert_long_pending'"),
            70);
}

TEST_P(PollerTest, TextKeysAndEmptyQueries) {
  sql("CREATE TABLE parcel (code varchar(20) NOT NULL PRIMARY KEY, done integer NOT NULL)");
  sql("INSERT INTO parcel VALUES ('b-2', 0), ('a-1', 0), ('c-3', 1), ('a''4', 0)");
  PollCycle c;
  c.name = "parcels";
  c.rows = {"SELECT \"parcel\".\"code\" FROM \"parcel\" WHERE \"parcel\".\"done\" = %s",
            {std::int64_t{0}},
            "\"code\""};
  c.check.task = "app.check_parcel";
  c.batch = 2;
  const PollStats st = run_poll(*d_, c);
  EXPECT_EQ(st.rows, 3);
  EXPECT_EQ(st.enqueued, 3);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job WHERE args = '[\"a''4\"]'"), 1);
  EXPECT_EQ(sql("SELECT count(*) FROM fastq_job WHERE unique_key = 'poll:parcels:b-2'"), 1);

  c.rows.params = {std::int64_t{7}};
  const PollStats none = run_poll(*d_, c);
  EXPECT_EQ(none.rows, 0);
  EXPECT_EQ(none.pages, 1);
}

TEST_P(PollerTest, ABadQueryIsADriverError) {
  PollCycle c = cycle();
  c.rows.sql = "SELECT \"id\" FROM \"no_such_table\"";
  c.rows.params.clear();
  EXPECT_THROW(run_poll(*d_, c), DriverError);
}

INSTANTIATE_TEST_SUITE_P(Drivers, PollerTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace fastq
