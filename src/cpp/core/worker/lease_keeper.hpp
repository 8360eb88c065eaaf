// Lease keeper: renews the lease of every job this worker holds every lease/3 (one
// statement), brings back cancel requests, beats the worker registry row and pings the
// systemd watchdog. Owning thread: the completer (its timers run on `done_io` and it uses
// the completer's connection, so a stuck completer stops renewing and the jobs go to a live
// worker). renew_now and beat are for that thread only (and for run() before the
// completer has work).
//
// Other threads: run() enables systemd notifications before the completer starts its
// timers, and the poller says STOPPING through tell_systemd (SystemdNotifier::send is safe
// from any thread).
//
// When a held lease is in doubt is decided in fastq/worker/lease_keeper.hpp.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <string>

#include "completer.hpp"
#include "context.hpp"
#include "fastq/notify.hpp"
#include "fastq/worker/lease_table.hpp"

namespace fastq::worker {

class LeaseKeeper {
 public:
  LeaseKeeper(Context& ctx, boost::asio::io_context& done_io, Completer& completer,
              LeaseTable& leases);

  // run(), before start(): notify systemd if it asked for it (NOTIFY_SOCKET).
  void enable_systemd();
  // Any thread.
  void tell_systemd(const std::string& message) const { systemd_.send(message); }

  // Completer thread: the first registry beat, READY=1, then the watchdog and renewal
  // timers.
  void start();
  // Completer thread, at the end: no more renewals or watchdog pings.
  void stop();

  // Completer thread: extends the lease of every held job. True if the renewal was written.
  bool renew_now();
  // Completer thread: the registry row, as a heartbeat or (stopped) as stopped.
  void beat(bool stopped);

 private:
  void arm_renew();
  void arm_watchdog();

  Context& ctx_;
  Completer& completer_;
  LeaseTable& leases_;
  boost::asio::steady_timer renew_timer_;
  boost::asio::steady_timer watchdog_timer_;
  SystemdNotifier systemd_;  // disabled unless cfg.notify_systemd and NOTIFY_SOCKET
};

}  // namespace fastq::worker
