// Reading into a Beast parser from bytes already at hand.
#pragma once

#include "http/beast.hpp"

namespace tokenbroker::http {

/// Feeds `parser` the bytes already in `buffer`, consuming what it takes. True when that
/// settled the read (`ec` says how): body bytes went into the body buffer, the body buffer is
/// full (need_buffer), the message ended, or it is malformed. False when the parser needs
/// more than is buffered: the caller reads from its stream. Beast's async_read_some does the
/// same first step, then posts its completion through the io_context even when no I/O was
/// needed; a small body that arrived with its header is taken here without that.
template <class Buffer, class Parser>
bool put_buffered(Buffer& buffer, Parser& parser, boost::system::error_code& ec) {
  ec = {};
  if (buffer.size() == 0) return false;
  buffer.consume(parser.put(buffer.data(), ec));
  if (ec != bhttp::error::need_more) return true;
  ec = {};
  return false;
}

}  // namespace tokenbroker::http
