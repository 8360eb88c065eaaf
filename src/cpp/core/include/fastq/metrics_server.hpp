// A small HTTP/1.0 endpoint for Prometheus (Boost.Asio, one io_context, no thread of its
// own): the prefork supervisor calls poll() from its loop every tick, so serving needs no
// lock and no thread survives a fork. GET /metrics answers the text `body()` returns;
// any other path 404, any other method 405; a request must arrive within 5 s and fit in
// 8 KiB.
//
//   fastq::MetricsServer server("0.0.0.0", 9808, [] { return fastq::render_metrics(...); });
//   server.port();          // the bound port (useful with port 0)
//   while (...) server.poll();
#pragma once

#include <functional>
#include <memory>
#include <string>

namespace fastq {

class MetricsServer {
 public:
  // Binds and listens at once; throws std::runtime_error with the reason if it cannot.
  MetricsServer(const std::string& address, int port, std::function<std::string()> body);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const;
  // Runs whatever is ready (accepts, reads, writes) without blocking.
  void poll();
  // Blocks running handlers until stop() (tests, a process of its own).
  void run();
  void stop();
  // The listening socket's descriptor (a forked child closes it: close_in_child()).
  int native_handle() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace fastq
