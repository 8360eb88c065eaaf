// Process metrics, their Prometheus text, the HTTP endpoint (Boost.Asio) and systemd's
// notify protocol on a real unix datagram socket.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "fastq/metrics.hpp"
#include "fastq/metrics_server.hpp"
#include "fastq/notify.hpp"

namespace fastq {
namespace {

std::string line_of(const std::string& text, const std::string& prefix) {
  const auto at = text.find("\n" + prefix);
  if (at == std::string::npos) return "";
  const auto end = text.find('\n', at + 1);
  return text.substr(at + 1, end - at - 1);
}

TEST(Metrics, HistogramBucketsAreCumulativeAndSummedAcrossProcesses) {
  WorkerMetrics a, b;
  a.run_us.observe(400, kTimeBoundsUs);      // <= 0.5 ms
  a.run_us.observe(3000, kTimeBoundsUs);     // <= 5 ms
  b.run_us.observe(20'000'000, kTimeBoundsUs);  // past the last bound: +Inf only
  a.claim_statements = 3;
  b.claim_statements = 4;
  a.busy_us = 1'500'000;
  const WorkerMetrics* all[] = {&a, &b};
  SupervisorGauges g;
  g.processes = 2;
  g.crashed = 1;
  const std::string text = render_metrics(all, g);
  EXPECT_EQ(line_of(text, "fastq_worker_claims_total "), "fastq_worker_claims_total 7");
  EXPECT_EQ(line_of(text, "fastq_worker_job_run_seconds_bucket{le=\"0.0005\"}"),
            "fastq_worker_job_run_seconds_bucket{le=\"0.0005\"} 1");
  EXPECT_EQ(line_of(text, "fastq_worker_job_run_seconds_bucket{le=\"0.005\"}"),
            "fastq_worker_job_run_seconds_bucket{le=\"0.005\"} 2");
  EXPECT_EQ(line_of(text, "fastq_worker_job_run_seconds_bucket{le=\"10\"}"),
            "fastq_worker_job_run_seconds_bucket{le=\"10\"} 2");
  EXPECT_EQ(line_of(text, "fastq_worker_job_run_seconds_bucket{le=\"+Inf\"}"),
            "fastq_worker_job_run_seconds_bucket{le=\"+Inf\"} 3");
  EXPECT_EQ(line_of(text, "fastq_worker_job_run_seconds_count"),
            "fastq_worker_job_run_seconds_count 3");
  EXPECT_EQ(line_of(text, "fastq_worker_job_run_seconds_sum"),
            "fastq_worker_job_run_seconds_sum 20.0034");
  EXPECT_EQ(line_of(text, "fastq_worker_executor_busy_seconds_total"),
            "fastq_worker_executor_busy_seconds_total 1.5");
  EXPECT_EQ(line_of(text, "fastq_worker_processes "), "fastq_worker_processes 2");
  EXPECT_EQ(line_of(text, "fastq_worker_processes_crashed_total"),
            "fastq_worker_processes_crashed_total 1");
  EXPECT_NE(text.find("# TYPE fastq_worker_job_run_seconds histogram"), std::string::npos);
}

std::string http_get(int port, const std::string& request, MetricsServer& server) {
  std::string response;
  std::atomic<bool> done{false};
  std::thread client([&] {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket s(io);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
    boost::system::error_code ec;
    boost::asio::write(s, boost::asio::buffer(request), ec);
    char buf[4096];
    for (;;) {
      const auto n = s.read_some(boost::asio::buffer(buf), ec);
      if (ec) break;
      response.append(buf, n);
    }
    done = true;
  });
  // The server is polled as the supervisor polls it, until the client has its answer.
  while (!done) {
    server.poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  client.join();
  return response;
}

TEST(MetricsServer, ServesMetricsAndRefusesTheRest) {
  int calls = 0;
  MetricsServer server("127.0.0.1", 0, [&] {
    ++calls;
    return std::string("fastq_up 1\n");
  });
  const int port = server.port();
  ASSERT_GT(port, 0);
  const auto ok = http_get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", server);
  EXPECT_EQ(ok.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_EQ(ok.substr(ok.size() - 11), "fastq_up 1\n");
  EXPECT_EQ(calls, 1);
  const auto missing = http_get(port, "GET /other HTTP/1.0\r\n\r\n", server);
  EXPECT_EQ(missing.rfind("HTTP/1.0 404", 0), 0u) << missing;
  const auto post = http_get(port, "POST /metrics HTTP/1.0\r\n\r\n", server);
  EXPECT_EQ(post.rfind("HTTP/1.0 405", 0), 0u) << post;
  EXPECT_EQ(calls, 1);
}

TEST(MetricsServer, APortInUseFailsClearly) {
  MetricsServer first("127.0.0.1", 0, [] { return std::string(); });
  try {
    MetricsServer second("127.0.0.1", first.port(), [] { return std::string(); });
    FAIL() << "expected the second bind to fail";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot serve metrics on 127.0.0.1:"), std::string::npos);
  }
  EXPECT_THROW(MetricsServer("not-an-ip", 0, [] { return std::string(); }), std::runtime_error);
}

TEST(SystemdNotifier, SendsDatagramsToNotifySocket) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("fastq-notify-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "notify.sock").string();
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);

  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "3000000", 1);
  ::unsetenv("WATCHDOG_PID");
  const auto n = SystemdNotifier::from_environment();
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ASSERT_TRUE(n.enabled());
  EXPECT_EQ(n.watchdog_interval(), std::chrono::microseconds(1500000));
  EXPECT_TRUE(n.send("READY=1"));
  EXPECT_TRUE(n.send("WATCHDOG=1"));
  char buf[256];
  auto got = ::recv(fd, buf, sizeof buf, 0);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(got)), "READY=1");
  got = ::recv(fd, buf, sizeof buf, 0);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(got)), "WATCHDOG=1");
  ::close(fd);
  std::filesystem::remove_all(dir);

  // Another process's watchdog, no socket, a socket that is gone: nothing sent, no error.
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "3000000", 1);
  ::setenv("WATCHDOG_PID", "1", 1);
  const auto other = SystemdNotifier::from_environment();
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  EXPECT_EQ(other.watchdog_interval().count(), 0);
  EXPECT_FALSE(other.send("READY=1")) << "the socket was removed";
  EXPECT_FALSE(SystemdNotifier::from_environment().enabled());
  EXPECT_FALSE(SystemdNotifier().send("READY=1"));
}

}  // namespace
}  // namespace fastq
