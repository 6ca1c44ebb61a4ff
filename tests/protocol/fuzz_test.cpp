// Seeded random input: framing, startup packets and message views must never
// crash, and their results must agree with a simple model of the rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/builder.hpp"
#include "protocol/error.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"
#include "protocol/startup.hpp"
#include "test_util.hpp"

namespace pgshift::protocol {
namespace {

using namespace std::string_literals;

constexpr int kIterations = 20000;

class Random {
 public:
  explicit Random(std::uint32_t seed) : gen_(seed) {}

  std::uint32_t below(std::uint32_t n) {
    return std::uniform_int_distribution<std::uint32_t>(0, n - 1)(gen_);
  }
  std::uint32_t u32() { return static_cast<std::uint32_t>(gen_()); }
  bool chance(std::uint32_t percent) { return below(100) < percent; }
  char byte() { return static_cast<char>(below(256)); }

  // Random bytes, with NULs common so C strings end inside the buffer.
  std::string bytes(std::size_t max_len) {
    std::string s(below(static_cast<std::uint32_t>(max_len) + 1), '\0');
    for (char& c : s) c = chance(20) ? '\0' : byte();
    return s;
  }

  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(static_cast<std::uint32_t>(v.size()))];
  }

  Direction direction() { return chance(50) ? Direction::frontend : Direction::backend; }

  Limits limits() {
    if (chance(50)) return {};
    return {.small = 4 + below(40),
            .large = 4 + below(80),
            .auth = 4 + below(40),
            .backend_small = 4 + below(40)};
  }

 private:
  std::mt19937 gen_;
};

// What parse_frame must report for a buffer holding at least a header.
std::error_code model_error(std::string_view buf, Direction dir, const Limits& limits) {
  const std::uint32_t limit = test::expected_limit(dir, buf[0], limits);
  const std::uint32_t length = read_u32(buf.data() + 1);
  if (limit == 0) return errc::unknown_message_type;
  if (length < 4) return errc::message_too_short;
  if (length > limit) return errc::message_too_long;
  return {};
}

::testing::AssertionResult frame_matches_model(std::string_view buf, Direction dir, const Limits& limits) {
  const ParseResult r = parse_frame(buf, dir, limits);
  auto fail = [&] {
    return ::testing::AssertionFailure() << "buffer " << test::hex(buf.substr(0, 64)) << ": ";
  };
  if (buf.size() < header_size) {
    if (r.status != ParseStatus::need_more || r.error) return fail() << "expected need_more before a header";
    return ::testing::AssertionSuccess();
  }
  if (const auto ec = model_error(buf, dir, limits)) {
    if (r.status != ParseStatus::error || r.error != ec) return fail() << "expected " << ec.message();
    return ::testing::AssertionSuccess();
  }
  if (r.error) return fail() << "unexpected error " << r.error.message();
  if (r.header.type != buf[0] || r.header.length != read_u32(buf.data() + 1))
    return fail() << "header not decoded";
  const std::size_t total = std::size_t{r.header.length} + 1;
  if (total > buf.size()) {
    if (r.status != ParseStatus::need_more) return fail() << "expected need_more";
    return ::testing::AssertionSuccess();
  }
  if (r.status != ParseStatus::complete) return fail() << "expected complete";
  if (r.frame.type != buf[0] || r.frame.bytes.data() != buf.data() || r.frame.bytes.size() != total ||
      r.frame.body.data() != buf.data() + header_size || r.frame.body.size() != total - header_size)
    return fail() << "frame does not cover exactly the message";
  return ::testing::AssertionSuccess();
}

// The frames found in `wire`, and how parsing stopped, when all of it is
// available at once or when it arrives in random chunks.
struct Outcome {
  std::vector<std::string> frames;
  ParseStatus last = ParseStatus::need_more;
  std::error_code error;
  bool operator==(const Outcome&) const = default;
};

Outcome parse_all(std::string_view wire, Direction dir, const Limits& limits) {
  Outcome out;
  for (;;) {
    const ParseResult r = parse_frame(wire, dir, limits);
    out.last = r.status;
    out.error = r.error;
    if (r.status != ParseStatus::complete) return out;
    out.frames.emplace_back(r.frame.bytes);
    wire.remove_prefix(r.frame.bytes.size());
  }
}

Outcome parse_chunked(std::string_view wire, Direction dir, const Limits& limits, Random& rnd) {
  Outcome out;
  std::string buffer;
  while (!wire.empty()) {
    const std::size_t n = std::min<std::size_t>(wire.size(), 1 + rnd.below(12));
    buffer.append(wire.substr(0, n));
    wire.remove_prefix(n);
    for (;;) {
      const ParseResult r = parse_frame(buffer, dir, limits);
      out.last = r.status;
      out.error = r.error;
      if (r.status == ParseStatus::error) return out;
      if (r.status == ParseStatus::need_more) break;
      out.frames.emplace_back(r.frame.bytes);
      buffer.erase(0, r.frame.bytes.size());
    }
  }
  return out;
}

// Messages that are close to valid: known types, lengths near the truth.
std::string plausible_frames(Random& rnd, Direction dir) {
  const std::string types = test::known_types(dir);
  std::string wire;
  for (std::uint32_t i = 0, n = 1 + rnd.below(4); i < n; ++i) {
    const std::string body = rnd.bytes(24);
    const char type =
        rnd.chance(90) ? types[rnd.below(static_cast<std::uint32_t>(types.size()))] : rnd.byte();
    std::uint32_t length = static_cast<std::uint32_t>(body.size() + 4);
    if (rnd.chance(10)) length = rnd.below(12);
    if (rnd.chance(5)) length = rnd.u32();
    wire += test::header(type, length) + body;
  }
  if (rnd.chance(30)) wire.resize(rnd.below(static_cast<std::uint32_t>(wire.size()) + 1));
  return wire;
}

// Real messages with a few bytes changed.
std::string mutated_samples(Random& rnd, const std::vector<test::SampleMessage>& samples) {
  std::string wire;
  for (std::uint32_t i = 0, n = 1 + rnd.below(3); i < n; ++i) wire += rnd.pick(samples).bytes;
  for (std::uint32_t i = 0, n = rnd.below(4); i < n; ++i)
    wire[rnd.below(static_cast<std::uint32_t>(wire.size()))] = rnd.byte();
  return wire;
}

// How often each outcome was seen, so a test can show it reached all of them.
struct Tally {
  int complete = 0;
  int need_more = 0;
  int error = 0;
  void expect_all_seen() const {
    EXPECT_GT(complete, 0);
    EXPECT_GT(need_more, 0);
    EXPECT_GT(error, 0);
  }
};

void check_framing(std::string_view wire, Direction dir, const Limits& limits, Random& rnd, Tally& tally) {
  for (std::size_t n = 0; n <= wire.size(); n += 1 + rnd.below(3))
    ASSERT_TRUE(frame_matches_model(wire.substr(0, n), dir, limits));
  ASSERT_TRUE(frame_matches_model(wire, dir, limits));
  const Outcome whole = parse_all(wire, dir, limits);
  const Outcome chunked = parse_chunked(wire, dir, limits, rnd);
  tally.complete += static_cast<int>(whole.frames.size());
  (whole.last == ParseStatus::error ? tally.error : tally.need_more) += 1;
  ASSERT_EQ(whole.frames, chunked.frames) << test::hex(wire);
  if (whole.last == ParseStatus::error) {
    ASSERT_EQ(chunked.last, ParseStatus::error);
    ASSERT_EQ(chunked.error, whole.error);
  }
}

TEST(FrameFuzz, UniformRandomBytes) {
  Random rnd(0x5eed0001);
  Tally tally;
  for (int i = 0; i < kIterations; ++i) {
    const Direction dir = rnd.direction();
    check_framing(rnd.bytes(48), dir, rnd.limits(), rnd, tally);
    if (HasFatalFailure()) return;
  }
  // Complete frames are too unlikely from uniform bytes to require one.
  EXPECT_GT(tally.error, 0);
  EXPECT_GT(tally.need_more, 0);
}

TEST(FrameFuzz, PlausibleFrames) {
  Random rnd(0x5eed0002);
  Tally tally;
  for (int i = 0; i < kIterations; ++i) {
    const Direction dir = rnd.direction();
    check_framing(plausible_frames(rnd, dir), dir, rnd.limits(), rnd, tally);
    if (HasFatalFailure()) return;
  }
  tally.expect_all_seen();
}

TEST(FrameFuzz, MutatedSamples) {
  Random rnd(0x5eed0003);
  const auto frontend = test::frontend_samples();
  const auto backend = test::backend_samples();
  Tally tally;
  for (int i = 0; i < kIterations; ++i) {
    const Direction dir = rnd.direction();
    check_framing(mutated_samples(rnd, dir == Direction::frontend ? frontend : backend), dir, rnd.limits(),
                  rnd, tally);
    if (HasFatalFailure()) return;
  }
  tally.expect_all_seen();
}

// ---- startup packets ----

bool is_startup_error(const std::error_code& ec) {
  return ec == errc::startup_bad_length || ec == errc::startup_bad_layout ||
         ec == errc::startup_bad_version || ec == errc::startup_no_user;
}

std::string random_startup(Random& rnd) {
  static const std::vector<std::uint32_t> codes = {ssl_request_code, gssenc_request_code, cancel_request_code,
                                                   0x00030000,       0x00030002,          0x00020000};
  std::string body = test::be32(rnd.chance(80) ? rnd.pick(codes) : rnd.u32());
  if (rnd.chance(50)) body += "user\0"s + (rnd.chance(80) ? "u\0"s : "\0"s);
  body += rnd.bytes(24);
  std::string packet = test::untyped(body);
  if (rnd.chance(10)) packet.replace(0, 4, test::be32(rnd.chance(50) ? rnd.u32() : rnd.below(16)));
  if (rnd.chance(10)) packet.resize(rnd.below(static_cast<std::uint32_t>(packet.size()) + 1));
  return packet;
}

TEST(StartupFuzz, RandomPacketsAreAcceptedOnlyWhenValid) {
  Random rnd(0x5eed0004);
  int accepted = 0;
  for (int i = 0; i < kIterations; ++i) {
    const std::string packet = random_startup(rnd);
    StartupPacket out;
    const std::error_code ec = parse_startup(packet, out);
    if (ec) {
      ASSERT_TRUE(is_startup_error(ec)) << ec.message();
      continue;
    }
    ++accepted;
    ASSERT_GE(packet.size(), startup_min_length);
    ASSERT_EQ(read_u32(packet.data()), packet.size());
    switch (out.kind) {
      case StartupKind::ssl_request:
      case StartupKind::gssenc_request:
        ASSERT_EQ(packet.size(), 8u);
        break;
      case StartupKind::cancel_request:
        ASSERT_EQ(packet.size(), 16u);
        break;
      case StartupKind::startup:
        ASSERT_EQ(out.major, protocol_major);
        ASSERT_NE(out.param("user"), nullptr);
        ASSERT_FALSE(out.param("user")->empty());
        break;
    }
  }
  EXPECT_GT(accepted, 0);  // the generator does reach the valid paths
}

// ---- message views ----

bool inside(std::string_view outer, std::string_view part) {
  return part.empty() ||
         (part.data() >= outer.data() && part.data() + part.size() <= outer.data() + outer.size());
}

TEST(ViewFuzz, RandomBodiesNeverReadOutside) {
  Random rnd(0x5eed0005);
  const std::string types = "QPBEDCRKZSNx";
  for (int i = 0; i < kIterations; ++i) {
    std::string body = rnd.bytes(32);
    if (rnd.chance(30)) body = test::be32(rnd.below(14)) + body;  // plausible auth codes
    const Frame f{types[rnd.below(static_cast<std::uint32_t>(types.size()))], body, body};
    SCOPED_TRACE(test::hex(body));

    if (QueryView v; v.parse(f)) {
      ASSERT_TRUE(inside(body, v.sql));
    }
    if (ParseView v; v.parse(f)) {
      ASSERT_TRUE(inside(body, v.name) && inside(body, v.sql));
    }
    if (BindView v; v.parse(f)) {
      ASSERT_TRUE(inside(body, v.portal) && inside(body, v.statement));
    }
    if (ExecuteView v; v.parse(f)) {
      ASSERT_TRUE(inside(body, v.portal));
    }
    if (TargetView v; v.parse(f)) {
      ASSERT_TRUE(inside(body, v.name) && (v.kind == 'S' || v.kind == 'P'));
    }
    if (AuthenticationView v; v.parse(f)) {
      ASSERT_TRUE(inside(body, v.data));
    }
    if (BackendKeyDataView v; v.parse(f)) {
      ASSERT_EQ(body.size(), 8u);
    }
    if (ReadyForQueryView v; v.parse(f)) {
      ASSERT_EQ(body.size(), 1u);
    }
    if (ParameterStatusView v; v.parse(f)) {
      ASSERT_TRUE(inside(body, v.name) && inside(body, v.value));
    }
    if (CommandCompleteView v; v.parse(f)) {
      ASSERT_TRUE(inside(body, v.tag));
    }
    if (ErrorFieldsView v; v.parse(f)) {
      ASSERT_TRUE(inside(body, v.severity) && inside(body, v.message));
      ASSERT_TRUE(!v.sqlstate || inside(body, *v.sqlstate));
    }
  }
}

}  // namespace
}  // namespace pgshift::protocol
