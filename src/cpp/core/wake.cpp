// Local wake-ups for SQLite: see wake.hpp.
#include "fastq/wake.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fastq {
namespace {

std::uint64_t fnv1a64(const std::string& s) {
  std::uint64_t h = 14695981039346656037ull;
  for (const unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool fill_address(const std::string& path, sockaddr_un& addr) {
  if (path.size() > kSunPathMax) return false;
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return true;
}

int datagram_socket() {
  return ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

// The wake directory exists (created if not) and is a real directory, not a symlink;
// under /tmp (the fallback) it must also be ours.
bool ensure_dir(const std::string& dir) {
  const bool shared_tmp = dir.starts_with("/tmp/");
  if (::mkdir(dir.c_str(), shared_tmp ? 0700 : 0777) != 0 && errno != EEXIST) return false;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  return !shared_tmp || st.st_uid == ::geteuid();
}

}  // namespace

std::string wake_dir_for_real_path(const std::string& real_path) {
  std::string dir = real_path + ".fastq-wake";
  if (dir.size() + 1 + kWakeNameMax <= kSunPathMax) return dir;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(fnv1a64(real_path)));
  return std::string("/tmp/fastq-wake-") + hex;
}

std::optional<std::string> wake_dir(const std::string& db_path) {
  if (db_path.empty() || db_path == ":memory:" || db_path.starts_with("file:") ||
      db_path.find("mode=memory") != std::string::npos) {
    return std::nullopt;
  }
  char* real = ::realpath(db_path.c_str(), nullptr);
  if (real == nullptr) return std::nullopt;
  std::string resolved(real);
  std::free(real);  // NOLINT: realpath's buffer
  return wake_dir_for_real_path(resolved);
}

std::unique_ptr<WakeSocket> WakeSocket::listen(const std::string& dir) {
  static std::atomic<unsigned> counter{0};
  if (!ensure_dir(dir)) return nullptr;
  const std::string path = dir + "/w" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1)) + ".sock";
  sockaddr_un addr{};
  if (!fill_address(path, addr)) return nullptr;
  const int fd = datagram_socket();
  if (fd < 0) return nullptr;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
      return std::unique_ptr<WakeSocket>(new WakeSocket(fd, path, ::getpid()));
    }
    if (errno == ENOENT && ensure_dir(dir)) continue;  // the last worker just removed it
    if (errno != EADDRINUSE || attempt) break;
    // A socket of a dead process that had our pid: nobody receives on it any more.
    const int probe = datagram_socket();
    const bool dead = probe >= 0 &&
                      ::sendto(probe, "", 0, 0, reinterpret_cast<const sockaddr*>(&addr),
                               sizeof addr) < 0 &&
                      errno == ECONNREFUSED;
    if (probe >= 0) ::close(probe);
    struct stat st {};
    if (!dead || ::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) break;
    ::unlink(path.c_str());
  }
  ::close(fd);
  return nullptr;
}

WakeSocket::~WakeSocket() {
  ::close(fd_);
  if (::getpid() != owner_) return;
  ::unlink(path_.c_str());
  // The last worker out removes the directory (fails, harmlessly, while others listen).
  ::rmdir(path_.substr(0, path_.rfind('/')).c_str());
}

std::size_t WakeSocket::drain() {
  std::size_t n = 0;
  char buf[64];
  while (::recv(fd_, buf, sizeof buf, MSG_DONTWAIT) >= 0) ++n;
  return n;
}

std::size_t wake_poke(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  const int fd = datagram_socket();
  std::size_t poked = 0;
  if (fd >= 0) {
    sockaddr_un addr{};
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      if (e->d_type != DT_SOCK) {
        if (e->d_type != DT_UNKNOWN) continue;
        struct stat st {};
        if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISSOCK(st.st_mode)) {
          continue;
        }
      }
      const std::string path = dir + "/" + e->d_name;
      if (!fill_address(path, addr)) continue;
      if (::sendto(fd, "w", 1, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&addr),
                   sizeof addr) >= 0) {
        ++poked;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ++poked;  // its buffer is full of pokes it has not read yet: it will wake
      } else if (errno == ECONNREFUSED) {
        ::unlinkat(::dirfd(d), e->d_name, 0);  // its worker died without cleaning up
      }
    }
    ::close(fd);
  }
  ::closedir(d);
  return poked;
}

}  // namespace fastq
