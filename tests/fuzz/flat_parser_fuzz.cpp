// Fuzz target: http::flat_parser, the local server's reader of requests and the proxy's reader
// of upstream answers, against Beast's own parsers. The input's first two bytes choose what is
// read (a request, an answer, or an answer to a HEAD) and how the rest arrives (the size of
// each read, the body buffer's size); the two parsers must agree on everything the broker uses:
// the line, the fields in order, the framing, the body bytes and any error.
#include "fuzz_support.hpp"
#include "support/message_reading.hpp"

using namespace tokenbroker;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::size_t piece = 1 + data[0] % 64;
  bool request = (data[0] & 0x80) != 0;
  std::size_t room = 1 + (data[1] & 0x7f) % 32;
  bool head = (data[1] & 0x80) != 0;
  auto wire = fuzz::as_view(data + 2, size - 2);
  if (request) {
    testing::beast_request_parser theirs;
    http::request_reader ours;
    auto expected = testing::read_message(theirs, wire, piece, room);
    auto got = testing::read_message(ours, wire, piece, room);
    fuzz::require(got == expected, "request_reader reads what Beast's request_parser reads");
  } else {
    testing::beast_answer_parser theirs;
    http::answer_parser ours;
    auto expected = testing::read_message(theirs, wire, piece, room, head);
    auto got = testing::read_message(ours, wire, piece, room, head);
    fuzz::require(got == expected, "answer_parser reads what Beast's response_parser reads");
  }
  return 0;
}
