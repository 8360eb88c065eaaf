#include <gtest/gtest.h>

#include "fastq/bulk.hpp"

namespace fastq {

TEST(Bulk, CopyTextEscapesWhatCopyWouldRead) {
  std::string out;
  append_copy_text(out, "a\tb\nc\rd\\e\"f");
  EXPECT_EQ(out, "a\\tb\\nc\\rd\\\\e\"f");
  out.clear();
  append_copy_text(out, "");
  EXPECT_EQ(out, "");
}

TEST(Bulk, CopyListsOnlyTheColumnsTheBatchUses) {
  std::vector<NewJob> jobs(2);
  jobs[0].id = "01a214b8-ad59-7ba3-a9f3-47781564e3bd";
  jobs[0].task = "t";
  jobs[0].args = "[\"x\\ty\"]";
  jobs[1].id = "01a214b8-ad59-74cf-97aa-9403903d7c35";
  jobs[1].task = "t";
  jobs[1].queue = "q";
  jobs[1].priority = -3;
  jobs[1].max_attempts = 1;
  const auto plain = pg_copy_batch(jobs, 0);
  EXPECT_EQ(plain.columns, "id, task, queue, priority, args, kwargs, max_attempts, envelope");
  EXPECT_EQ(plain.data,
            "01a214b8-ad59-7ba3-a9f3-47781564e3bd\tt\tdefault\t0\t[\"x\\\\ty\"]\t{}\t4\t1\n"
            "01a214b8-ad59-74cf-97aa-9403903d7c35\tt\tq\t-3\t[]\t{}\t1\t1\n");

  jobs[1].run_at = 1'700'000'000'123'456;
  jobs[1].expires_at = 1'000'000;
  jobs[0].unique_key = "k\n";
  jobs[0].time_limit = 2.5;
  jobs[1].soft_time_limit = 1;
  jobs[1].rate_key = "r";
  const auto full = pg_copy_batch(jobs, 2'000'000);
  EXPECT_EQ(full.columns,
            "id, task, queue, priority, args, kwargs, max_attempts, envelope, run_at, "
            "expires_at, unique_key, time_limit, soft_time_limit, rate_key");
  EXPECT_EQ(full.data,
            "01a214b8-ad59-7ba3-a9f3-47781564e3bd\tt\tdefault\t0\t[\"x\\\\ty\"]\t{}\t4\t1\t"
            "1970-01-01 00:00:02.000000+00\t\\N\tk\\n\t2.5\t\\N\t\\N\n"
            "01a214b8-ad59-74cf-97aa-9403903d7c35\tt\tq\t-3\t[]\t{}\t1\t1\t"
            "2023-11-14 22:13:20.123456+00\t1970-01-01 00:00:01.000000+00\t\\N\t\\N\t1\tr\n");

  const auto second = pg_copy_batch(std::span<const NewJob>(jobs).subspan(1), 0);
  EXPECT_EQ(second.columns,
            "id, task, queue, priority, args, kwargs, max_attempts, envelope, run_at, "
            "expires_at, soft_time_limit, rate_key");
  EXPECT_TRUE(pg_copy_batch(std::span<const NewJob>(jobs).subspan(2), 0).data.empty());

  jobs[0].group_label = "g\t1";
  const auto grouped = pg_copy_batch(jobs, 2'000'000);
  EXPECT_TRUE(grouped.columns.ends_with(", rate_key, group_label")) << grouped.columns;
  EXPECT_NE(grouped.data.find("\t\\N\tg\\t1\n"), std::string::npos) << grouped.data;
  EXPECT_NE(grouped.data.find("\t1\tr\t\\N\n"), std::string::npos) << grouped.data;
}

}  // namespace fastq
