// Wake-ups: how a store tells a waiting worker that there is new work or that a queue's
// controls changed, so that it need not poll. Every driver answers, each explicitly:
// PostgreSQL pushes (LISTEN on a file descriptor), the memory driver wakes in-process
// (set_wakeup), SQLite cannot notify: on a database file its fd is a local wake socket
// that enqueuers on this machine poke after they commit (wake.hpp), else -1 and the
// worker polls it.
// Conformance suite NotifierConformance (tests/cpp/test_store_conformance.cpp).
#pragma once

#include <functional>

#include "fastq/driver_error.hpp"

namespace fastq {

class Notifier {
 public:
  virtual ~Notifier() = default;

  // A file descriptor that becomes readable when a notification arrives (PostgreSQL
  // LISTEN); the worker waits on it and calls drain_notifications(). -1 when the store
  // cannot push notifications.
  virtual int notification_fd() = 0;
  // Consumes pending notifications; true if any announced new work.
  virtual bool drain_notifications() = 0;
  // True once since a notification said a queue's pause or limit changed (PostgreSQL
  // NOTIFY 'queues'); stores that cannot say so return false and are polled instead.
  virtual bool queues_changed() = 0;
  // In-process wake-up (memory driver): called after every enqueue. May be called from
  // any thread; must be cheap and must not call back into the driver. A store that has no
  // in-process wake-up ignores it.
  virtual void set_wakeup(std::function<void()> wakeup) = 0;
  // The worker is done waiting (the end of Worker::run): a store that listens on a
  // resource others can see (SQLite's wake socket) gives it up now, since the process
  // may _exit without destroying the driver. Nothing to do for the others.
  virtual void stop_listening() {}
};

}  // namespace fastq
