#include "fastq/notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace fastq {

SystemdNotifier::SystemdNotifier(std::string socket_path, std::chrono::microseconds watchdog)
    : path_(std::move(socket_path)), watchdog_(watchdog) {}

SystemdNotifier SystemdNotifier::from_environment() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (!socket || !*socket) return {};
  std::chrono::microseconds watchdog{0};
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  if (usec && *usec && (!pid || !*pid || std::atoll(pid) == static_cast<long long>(::getpid()))) {
    watchdog = std::chrono::microseconds(std::atoll(usec));
  }
  return SystemdNotifier(socket, watchdog);
}

bool SystemdNotifier::send(const std::string& message) const {
  if (path_.empty() || (path_[0] != '/' && path_[0] != '@')) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  if (path_[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const auto len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size());
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  const auto sent = ::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&addr), len);
  ::close(fd);
  return sent == static_cast<ssize_t>(message.size());
}

}  // namespace fastq
