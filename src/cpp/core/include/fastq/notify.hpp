// systemd's notify protocol (sd_notify(3)) without libsystemd: one datagram per message
// to the unix socket named by NOTIFY_SOCKET (a path, or "@name" in the abstract
// namespace). A unit with Type=notify learns that the worker is ready (READY=1) and, with
// WatchdogSec=, that it is alive (WATCHDOG=1, sent every WATCHDOG_USEC / 2).
//
//   fastq::SystemdNotifier notify = fastq::SystemdNotifier::from_environment();
//   notify.send("READY=1\nSTATUS=running");
//   if (notify.watchdog_interval()) ... notify.send("WATCHDOG=1") every interval ...
//   notify.send("STOPPING=1");
#pragma once

#include <chrono>
#include <string>

namespace fastq {

class SystemdNotifier {
 public:
  SystemdNotifier() = default;
  // NOTIFY_SOCKET and WATCHDOG_USEC (honoured only when WATCHDOG_PID is unset or ours).
  static SystemdNotifier from_environment();
  SystemdNotifier(std::string socket_path, std::chrono::microseconds watchdog);

  bool enabled() const { return !path_.empty(); }
  // Half the watchdog timeout (0 when systemd set none): how often to send WATCHDOG=1.
  std::chrono::microseconds watchdog_interval() const { return watchdog_ / 2; }
  // Sends one message; false (and nothing else) when disabled or the send failed. Safe
  // from any thread; never blocks.
  bool send(const std::string& message) const;

 private:
  std::string path_;
  std::chrono::microseconds watchdog_{0};
};

}  // namespace fastq
