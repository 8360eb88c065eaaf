#include "fastq/metrics_server.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <istream>
#include <stdexcept>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace fastq {

namespace {

constexpr std::size_t kMaxRequest = 8192;

struct Connection : std::enable_shared_from_this<Connection> {
  Connection(tcp::socket s, const std::function<std::string()>& body)
      : socket(std::move(s)), timer(socket.get_executor()), body(body), request(kMaxRequest) {}

  tcp::socket socket;
  asio::steady_timer timer;
  const std::function<std::string()>& body;
  asio::streambuf request;
  std::string response;

  void start() {
    timer.expires_after(std::chrono::seconds(5));
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) {
        boost::system::error_code ignored;
        self->socket.close(ignored);
      }
    });
    asio::async_read_until(socket, request, "\r\n\r\n",
                           [self = shared_from_this()](const boost::system::error_code& ec,
                                                       std::size_t) { self->on_request(ec); });
  }

  void on_request(const boost::system::error_code& ec) {
    if (ec) {
      if (ec == asio::error::not_found) reply(431, "request too large\n", "text/plain");
      else finish();
      return;
    }
    std::istream in(&request);
    std::string method, target, version;
    in >> method >> target >> version;
    const auto query = target.find('?');
    const std::string path = target.substr(0, query);
    if (method != "GET" && method != "HEAD") {
      reply(405, "method not allowed\n", "text/plain");
    } else if (path != "/metrics" && path != "/") {
      reply(404, "not found: try /metrics\n", "text/plain");
    } else {
      std::string text;
      try {
        text = body();
      } catch (const std::exception& e) {
        reply(500, std::string("metrics failed: ") + e.what() + "\n", "text/plain");
        return;
      }
      reply(200, method == "HEAD" ? std::string() : text,
            "text/plain; version=0.0.4; charset=utf-8");
    }
  }

  void reply(int status, const std::string& text, const char* type) {
    const char* reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 431 ? "Request Header Fields Too Large"
                                         : "Internal Server Error";
    response = "HTTP/1.0 " + std::to_string(status) + " " + reason +
               "\r\nContent-Type: " + type + "\r\nContent-Length: " +
               std::to_string(text.size()) + "\r\nConnection: close\r\n\r\n" + text;
    asio::async_write(socket, asio::buffer(response),
                      [self = shared_from_this()](const boost::system::error_code&,
                                                  std::size_t) { self->finish(); });
  }

  void finish() {
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    timer.cancel();
  }
};

}  // namespace

struct MetricsServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::function<std::string()> body;
  bool accepting = false;

  void accept() {
    acceptor.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec) std::make_shared<Connection>(std::move(socket), body)->start();
      accept();
    });
  }
};

MetricsServer::MetricsServer(const std::string& address, int port,
                             std::function<std::string()> body)
    : impl_(std::make_shared<Impl>()) {
  if (port < 0 || port > 65535) throw std::runtime_error("metrics port must be 0..65535");
  impl_->body = std::move(body);
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) throw std::runtime_error("metrics address " + address + ": " + ec.message());
  const tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot serve metrics on " + address + ":" +
                             std::to_string(port) + ": " + ec.message());
  }
  impl_->accept();
}

MetricsServer::~MetricsServer() {
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
  impl_->io.stop();
}

int MetricsServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void MetricsServer::poll() {
  impl_->io.poll();
  impl_->io.restart();
}

void MetricsServer::run() {
  auto guard = asio::make_work_guard(impl_->io);
  impl_->io.run();
}

void MetricsServer::stop() { impl_->io.stop(); }

int MetricsServer::native_handle() const {
  return const_cast<tcp::acceptor&>(impl_->acceptor).native_handle();
}

}  // namespace fastq
