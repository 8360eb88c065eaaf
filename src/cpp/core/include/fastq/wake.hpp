// Local wake-ups for SQLite (issue 17): SQLite cannot notify, so a worker on an SQLite
// database file listens on a datagram UNIX socket in a directory next to that file
// (wake_dir), and whoever commits new jobs pokes every socket there (wake_poke). A poke
// is a hint, never a promise: it can be lost (a full buffer, a worker starting up), and
// the worker's idle poll stays the safety net. Linux/POSIX only; no Python here.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace fastq {

// The longest socket file name wake_listen() creates (sun_path holds 108 bytes with the
// terminating NUL).
inline constexpr std::size_t kWakeNameMax = 32;
inline constexpr std::size_t kSunPathMax = 107;

// The wake directory of an SQLite database: "<realpath(db)>.fastq-wake", or, when a
// socket path inside it would not fit in sun_path, "/tmp/fastq-wake-<16 hex digits>" (a
// 64-bit FNV-1a hash of the real path). nullopt for an in-memory or unnamed database, or
// a path that does not resolve (nothing to wake then; workers poll). Every process that
// opens the same file derives the same directory.
std::optional<std::string> wake_dir(const std::string& db_path);

// The pure part of wake_dir: the directory for an already resolved path.
std::string wake_dir_for_real_path(const std::string& real_path);

// One worker's socket: bound in the wake directory (created if missing) as
// "w<pid>-<n>.sock", nonblocking, unlinked when destroyed (and the directory with it
// when no other socket is left there).
class WakeSocket {
 public:
  ~WakeSocket();
  WakeSocket(const WakeSocket&) = delete;
  WakeSocket& operator=(const WakeSocket&) = delete;

  // nullptr (and errno-free: never throws) when the directory cannot be created or the
  // socket cannot be bound; the caller then polls as before.
  static std::unique_ptr<WakeSocket> listen(const std::string& dir);

  // Readable when a poke has arrived.
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Reads every pending poke; how many there were.
  std::size_t drain();

 private:
  WakeSocket(int fd, std::string path, int owner)
      : fd_(fd), path_(std::move(path)), owner_(owner) {}
  int fd_;
  std::string path_;
  int owner_;  // the pid that bound it: a forked child must not unlink its parent's socket
};

// Sends one nonblocking datagram to every socket in `dir`; returns how many accepted it.
// Entries that are not sockets are left alone; a socket nobody listens on any more (its
// worker died: ECONNREFUSED) is unlinked. Never throws, never blocks; a missing
// directory is zero workers.
std::size_t wake_poke(const std::string& dir);

}  // namespace fastq
