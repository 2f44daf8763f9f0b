// Fuzz target: http::answer_parser, the proxy's reader of upstream answers, against Beast's own
// response_parser. The input's first two bytes choose how the rest arrives (the size of each
// read, the body buffer's size, whether it answers a HEAD); the two parsers must agree on
// everything the proxy relays: the status, the fields in order, the framing, the body bytes and
// any error.
#include "fuzz_support.hpp"
#include "support/answer_reading.hpp"

using namespace tokenbroker;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::size_t piece = 1 + data[0] % 64;
  std::size_t room = 1 + (data[1] & 0x7f) % 32;
  bool head = (data[1] & 0x80) != 0;
  auto wire = fuzz::as_view(data + 2, size - 2);
  testing::beast_answer_parser theirs;
  http::answer_parser ours;
  auto expected = testing::read_answer(theirs, wire, piece, room, head);
  auto got = testing::read_answer(ours, wire, piece, room, head);
  fuzz::require(got == expected, "answer_parser reads what Beast's response_parser reads");
  return 0;
}
