// The system's trust anchors for verified upstream TLS, looked up on demand where that is safe.
#pragma once

#include <string>

#include <boost/asio/ssl/context.hpp>

namespace tokenbroker::http {

/// Where a context's system CAs come from.
enum class trust_source {
  hashed_dir,   // the hashed certificate directory, each CA read when a handshake needs it
  bundle_file,  // the bundle parsed whole at once (and the directory, if any)
};

/// Whether `dir` can stand in for `bundle`: it holds OpenSSL's hash links (8 hex digits, a dot,
/// a number) and the bundle lives in it, as Debian's update-ca-certificates keeps both from
/// one list. Symbolic links in either path are followed.
bool hashed_dir_covers(const std::string& bundle, const std::string& dir);

/// Makes `ctx` trust the CAs in `bundle` and `dir`: from `dir` on demand when it covers
/// `bundle`, else both as OpenSSL's default paths load them (`dir` may then be a list, "a:b").
/// The bundle parsed whole holds
/// about 0.9 MiB of certificates for the daemon's life; a handshake reads one or two from the
/// directory. A CA missing from the directory fails closed (verification fails), never open.
trust_source load_system_trust(boost::asio::ssl::context& ctx, const std::string& bundle,
                               const std::string& dir);

/// The same for the file and directory OpenSSL trusts by default: SSL_CERT_FILE and
/// SSL_CERT_DIR when set, as OpenSSL honours them, else its built-in paths.
trust_source load_system_trust(boost::asio::ssl::context& ctx);

}  // namespace tokenbroker::http
