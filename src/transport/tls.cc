#include <fstream>
#include <stdexcept>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "transport/tls_stream.h"

namespace herald {
namespace {

// OpenSSL's last error, in words, for a start-up message.
std::string openssl_error(const boost::system::error_code& ec) {
  std::string out = ec.message();
  if (const unsigned long e = ERR_get_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += " (";
    out += buf;
    out += ")";
  }
  ERR_clear_error();
  return out;
}

void readable(const std::string& key, const std::string& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error(key + ": cannot read '" + file + "'");
}

}  // namespace

tls_context::tls_context(std::string cert_file, std::string key_file)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)), ctx_(load()) {}

std::shared_ptr<ssl::context> tls_context::load() const {
  readable("core.tls_cert_file", cert_file_);
  readable("core.tls_key_file", key_file_);
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file_, ec);
  if (ec)
    throw std::runtime_error("core.tls_cert_file '" + cert_file_ +
                             "': not a PEM certificate: " + openssl_error(ec));
  ctx->use_private_key_file(key_file_, ssl::context::pem, ec);
  // Asio's code is OpenSSL's error, taken off its queue.
  const auto why = static_cast<unsigned long>(ec.value());
  if (ec && ec.category() == net::error::get_ssl_category() && ERR_GET_LIB(why) == ERR_LIB_X509 &&
      ERR_GET_REASON(why) == X509_R_KEY_VALUES_MISMATCH) {
    ERR_clear_error();
    throw std::runtime_error("core.tls_key_file '" + key_file_ +
                             "' does not match the certificate in '" + cert_file_ + "'");
  }
  if (ec)
    throw std::runtime_error("core.tls_key_file '" + key_file_ +
                             "': not a PEM private key: " + openssl_error(ec));
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    ERR_clear_error();
    throw std::runtime_error("core.tls_key_file '" + key_file_ +
                             "' does not match the certificate in '" + cert_file_ + "'");
  }
  return ctx;
}

std::string tls_context::reload() {
  try {
    auto fresh = load();
    std::lock_guard l(mu_);
    ctx_ = std::move(fresh);
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::shared_ptr<ssl::context> tls_context::current() const {
  std::lock_guard l(mu_);
  return ctx_;
}

void teardown(beast::role_type role, conn_stream& s, beast::error_code& ec) {
  if (s.is_tls()) {
    using beast::teardown;
    teardown(role, s.tls(), ec);
  } else {
    using websocket::teardown;
    teardown(role, s.socket(), ec);
  }
}

}  // namespace herald
