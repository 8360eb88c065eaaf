// Local wake-ups for SQLite (wake.hpp): the directory a database's workers listen in, and
// datagram pokes through it, on a temporary directory.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "fastq/wake.hpp"

namespace fastq {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "fastq-wake-test-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string path;
};

bool exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

}  // namespace

TEST(WakeDir, SitsNextToTheDatabaseFile) {
  EXPECT_EQ(wake_dir_for_real_path("/srv/app/db.sqlite3"), "/srv/app/db.sqlite3.fastq-wake");
}

TEST(WakeDir, FallsBackToAShortHashedPathWhenASocketWouldNotFitInSunPath) {
  const std::string deep = "/" + std::string(100, 'd') + "/db.sqlite3";
  const std::string other = "/" + std::string(100, 'e') + "/db.sqlite3";
  const std::string dir = wake_dir_for_real_path(deep);
  EXPECT_TRUE(dir.starts_with("/tmp/fastq-wake-")) << dir;
  EXPECT_EQ(dir.size(), std::string("/tmp/fastq-wake-").size() + 16);
  EXPECT_EQ(dir, wake_dir_for_real_path(deep)) << "every process derives the same one";
  EXPECT_NE(dir, wake_dir_for_real_path(other));
  // The longest path that stays next to the file still leaves room for a socket name.
  for (std::size_t n = 1; n < 120; ++n) {
    const std::string d = wake_dir_for_real_path("/" + std::string(n, 'x'));
    EXPECT_LE(d.size() + 1 + kWakeNameMax, kSunPathMax) << n;
  }
}

TEST(WakeDir, NoneForMemoryOrMissingDatabases) {
  EXPECT_FALSE(wake_dir(":memory:"));
  EXPECT_FALSE(wake_dir(""));
  EXPECT_FALSE(wake_dir("file::memory:?cache=shared"));
  TempDir tmp;
  EXPECT_FALSE(wake_dir(tmp.path + "/missing.sqlite3"));
  const std::string db = tmp.path + "/db.sqlite3";
  std::ofstream(db) << "";
  char* real = ::realpath(db.c_str(), nullptr);
  ASSERT_NE(real, nullptr);
  EXPECT_EQ(wake_dir(db), std::string(real) + ".fastq-wake");
  std::free(real);
}

TEST(WakeSocket, APokeReachesEveryListenerOnce) {
  TempDir tmp;
  const std::string dir = tmp.path + "/db.sqlite3.fastq-wake";
  EXPECT_EQ(wake_poke(dir), 0u) << "no directory yet: nobody to wake";
  auto a = WakeSocket::listen(dir);
  auto b = WakeSocket::listen(dir);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->path(), b->path());
  EXPECT_LE(a->path().size() - dir.size() - 1, kWakeNameMax);
  EXPECT_EQ(a->drain(), 0u);
  EXPECT_EQ(wake_poke(dir), 2u);
  EXPECT_EQ(a->drain(), 1u);
  EXPECT_EQ(b->drain(), 1u);
  EXPECT_EQ(a->drain(), 0u);
  const std::string gone = b->path();
  b.reset();
  EXPECT_FALSE(exists(gone)) << "a worker that stops removes its socket";
  EXPECT_EQ(wake_poke(dir), 1u);
  EXPECT_EQ(a->drain(), 1u);
  a.reset();
  EXPECT_FALSE(exists(dir)) << "the last worker out removes the directory";
}

TEST(WakeSocket, ADeadWorkersSocketIsRemovedAndHostileEntriesAreLeftAlone) {
  TempDir tmp;
  const std::string dir = tmp.path + "/db.sqlite3.fastq-wake";
  auto live = WakeSocket::listen(dir);
  ASSERT_TRUE(live);
  // A socket bound by a process that died (closed, never unlinked).
  const std::string stale = dir + "/w999999-0.sock";
  {
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, stale.data(), stale.size());
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }
  // Entries with socket-like names that are not sockets.
  const std::string file = dir + "/w1-0.sock";
  const std::string sub = dir + "/w2-0.sock";
  std::ofstream(file) << "not a socket";
  ASSERT_EQ(::mkdir(sub.c_str(), 0700), 0);
  ASSERT_TRUE(exists(stale));

  EXPECT_EQ(wake_poke(dir), 1u);
  EXPECT_EQ(live->drain(), 1u);
  EXPECT_FALSE(exists(stale));
  EXPECT_TRUE(exists(file));
  EXPECT_TRUE(exists(sub));
}

TEST(WakeSocket, AForkedChildLeavesItsParentsSocketInPlace) {
  TempDir tmp;
  const std::string dir = tmp.path + "/db.sqlite3.fastq-wake";
  auto a = WakeSocket::listen(dir);
  ASSERT_TRUE(a);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    a.reset();
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(exists(a->path()));
  EXPECT_EQ(wake_poke(dir), 1u);
  EXPECT_EQ(a->drain(), 1u);
}

TEST(WakeSocket, ListeningFailsQuietlyWhereTheDirectoryCannotBe) {
  TempDir tmp;
  const std::string file = tmp.path + "/blocker";
  std::ofstream(file) << "x";
  EXPECT_EQ(WakeSocket::listen(file), nullptr) << "a file where the directory should be";
  EXPECT_EQ(wake_poke(file), 0u);
}

}  // namespace fastq
