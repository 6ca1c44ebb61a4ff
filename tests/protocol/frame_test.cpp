// Framing: parse_frame over whole, split, concatenated and malformed input.
#include "protocol/frame.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/builder.hpp"
#include "protocol/error.hpp"
#include "test_util.hpp"

namespace pgshift::protocol {
namespace {

using namespace std::string_literals;
using test::build;
using test::SampleMessage;

constexpr Direction kDirections[] = {Direction::frontend, Direction::backend};

// Asserts `r` is need_more with no error; once the header is in, it is decoded.
void expect_need_more(const ParseResult& r, std::string_view buf) {
  EXPECT_EQ(r.status, ParseStatus::need_more) << "at " << buf.size() << " bytes";
  EXPECT_FALSE(r.error) << r.error.message();
  if (buf.size() >= header_size) {
    EXPECT_EQ(r.header.type, buf[0]);
    EXPECT_EQ(r.header.length, read_u32(buf.data() + 1));
  }
}

void expect_error(const ParseResult& r, errc e) {
  EXPECT_EQ(r.status, ParseStatus::error);
  EXPECT_EQ(r.error, make_error_code(e)) << r.error.message();
}

// Accumulates bytes the way a connection buffer does and collects every
// complete frame as (type, body) strings.
struct Stream {
  Direction dir;
  Limits limits;
  std::string buffer;
  std::vector<std::pair<char, std::string>> frames;

  ParseStatus feed(std::string_view chunk) {
    buffer.append(chunk);
    for (;;) {
      const ParseResult r = parse_frame(buffer, dir, limits);
      if (r.status != ParseStatus::complete) return r.status;
      frames.emplace_back(r.frame.type, std::string(r.frame.body));
      buffer.erase(0, r.frame.bytes.size());
    }
  }
};

// ---- every sample split at every byte offset ----

class FrameSplit : public ::testing::TestWithParam<SampleMessage> {};

TEST_P(FrameSplit, SampleIsWellFormed) {
  const auto& m = GetParam();
  ASSERT_GE(m.bytes.size(), header_size);
  EXPECT_EQ(m.bytes[0], m.type);
  EXPECT_EQ(read_u32(m.bytes.data() + 1), m.bytes.size() - 1);
  EXPECT_EQ(test::hex(m.bytes.substr(header_size)), test::hex(m.body));
}

TEST_P(FrameSplit, EveryPrefixNeedsMoreThenCompletes) {
  const auto& m = GetParam();
  const std::string_view all = m.bytes;
  for (std::size_t n = 0; n < all.size(); ++n)
    expect_need_more(parse_frame(all.substr(0, n), m.dir, {}), all.substr(0, n));

  const ParseResult r = parse_frame(all, m.dir, {});
  ASSERT_EQ(r.status, ParseStatus::complete) << r.error.message();
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.frame.type, m.type);
  EXPECT_EQ(test::hex(r.frame.body), test::hex(m.body));
  EXPECT_EQ(r.frame.bytes, all);
  // Views over the caller's bytes, never copies.
  EXPECT_EQ(r.frame.bytes.data(), all.data());
  EXPECT_EQ(r.frame.body.data(), all.data() + header_size);
  EXPECT_EQ(r.header.type, m.type);
  EXPECT_EQ(r.header.total(), all.size());
  EXPECT_EQ(r.header.body_size(), m.body.size());
}

TEST_P(FrameSplit, StopsAtTheEndOfTheMessage) {
  const auto& m = GetParam();
  const std::string buf = m.bytes + "\xff\xff garbage that is not a header";
  const ParseResult r = parse_frame(buf, m.dir, {});
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_EQ(r.frame.bytes, m.bytes);
  EXPECT_EQ(r.frame.body, m.body);
}

TEST_P(FrameSplit, TwoPiecesAtEveryOffset) {
  const auto& m = GetParam();
  for (std::size_t cut = 0; cut <= m.bytes.size(); ++cut) {
    Stream s{m.dir, {}, {}, {}};
    s.feed(std::string_view(m.bytes).substr(0, cut));
    EXPECT_EQ(s.frames.size(), cut == m.bytes.size() ? 1u : 0u) << "cut " << cut;
    EXPECT_EQ(s.feed(std::string_view(m.bytes).substr(cut)), ParseStatus::need_more);
    ASSERT_EQ(s.frames.size(), 1u) << "cut " << cut;
    EXPECT_EQ(s.frames[0].first, m.type);
    EXPECT_EQ(s.frames[0].second, m.body);
    EXPECT_TRUE(s.buffer.empty());
  }
}

std::string sample_name(const ::testing::TestParamInfo<SampleMessage>& p) { return p.param.name; }

INSTANTIATE_TEST_SUITE_P(AllMessages, FrameSplit, ::testing::ValuesIn(test::all_samples()), sample_name);

// ---- several messages in one buffer, delivered in chunks of any size ----

std::vector<SampleMessage> samples_for(Direction dir) {
  return dir == Direction::frontend ? test::frontend_samples() : test::backend_samples();
}

TEST(FrameSequence, BackToBackInOneBuffer) {
  for (Direction dir : kDirections) {
    SCOPED_TRACE(test::direction_name(dir));
    const auto samples = samples_for(dir);
    std::string buf;
    for (const auto& m : samples) buf += m.bytes;

    std::string_view rest = buf;
    for (const auto& m : samples) {
      const ParseResult r = parse_frame(rest, dir, {});
      ASSERT_EQ(r.status, ParseStatus::complete) << m.name;
      EXPECT_EQ(r.frame.type, m.type) << m.name;
      EXPECT_EQ(r.frame.body, m.body) << m.name;
      EXPECT_EQ(r.frame.bytes.data(), rest.data()) << m.name;
      rest.remove_prefix(r.frame.bytes.size());
    }
    EXPECT_TRUE(rest.empty());
    expect_need_more(parse_frame(rest, dir, {}), rest);
  }
}

class FrameChunked : public ::testing::TestWithParam<std::size_t> {};

TEST_P(FrameChunked, AllSamplesPlusALargeOneInChunks) {
  const std::size_t chunk = GetParam();
  for (Direction dir : kDirections) {
    SCOPED_TRACE(test::direction_name(dir));
    auto samples = samples_for(dir);
    const char big_type = dir == Direction::frontend ? 'd' : 'D';
    const std::string big_body(70000, 'z');
    samples.push_back({"Big", dir, test::typed(big_type, big_body), big_type, big_body});
    std::string wire;
    for (const auto& m : samples) wire += m.bytes;

    Stream s{dir, {}, {}, {}};
    for (std::size_t pos = 0; pos < wire.size(); pos += chunk)
      ASSERT_EQ(s.feed(std::string_view(wire).substr(pos, chunk)), ParseStatus::need_more);

    ASSERT_EQ(s.frames.size(), samples.size());
    for (std::size_t i = 0; i < samples.size(); ++i) {
      EXPECT_EQ(s.frames[i].first, samples[i].type) << samples[i].name;
      EXPECT_EQ(s.frames[i].second, samples[i].body) << samples[i].name;
    }
    EXPECT_TRUE(s.buffer.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(ChunkSizes, FrameChunked,
                         ::testing::Values(1, 2, 3, 4, 5, 6, 7, 13, 64, 1000, 8192, 1 << 20));

TEST(FrameLarge, QueryArrivesInPieces) {
  const std::string sql(3 << 20, 'x');
  const std::string wire = build([&](auto& o) { append_query(o, sql); });
  constexpr std::size_t piece = 64 * 1024;

  std::string received;
  for (std::size_t pos = 0; pos + piece < wire.size(); pos += piece) {
    received.append(wire, pos, piece);
    const ParseResult r = parse_frame(received, Direction::frontend, {});
    ASSERT_EQ(r.status, ParseStatus::need_more) << "after " << received.size();
    ASSERT_EQ(r.header.type, 'Q');
    ASSERT_EQ(r.header.total(), wire.size());
  }
  received.append(wire, received.size());
  const ParseResult r = parse_frame(received, Direction::frontend, {});
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_EQ(r.frame.body.size(), sql.size() + 1);
  EXPECT_EQ(r.frame.body.substr(0, sql.size()), sql);
  EXPECT_EQ(r.frame.bytes.size(), wire.size());
}

TEST(FrameLarge, DataRowOneBytePastTheHeaderAtATime) {
  const std::string body = test::be16(1) + test::be32(40000) + std::string(40000, 'r');
  const std::string wire = test::typed('D', body);
  std::string_view view = wire;
  for (std::size_t n = header_size; n < wire.size(); n += 997)
    expect_need_more(parse_frame(view.substr(0, n), Direction::backend, {}), view.substr(0, n));
  const ParseResult r = parse_frame(view, Direction::backend, {});
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_EQ(r.frame.body, body);
}

// ---- header edge cases ----

TEST(FrameHeader, FewerThanFiveBytesIsNeedMoreWhateverTheBytes) {
  const std::string partials[] = {"", "Q", "\xff", "Q\0\0\0"s, "\xff\xff\xff\xff", "p\xff\xff\xff"};
  for (Direction dir : kDirections)
    for (const auto& p : partials) expect_need_more(parse_frame(p, dir, {}), p);
}

TEST(FrameHeader, DecodeAndCheckHeaderDirectly) {
  Header h;
  EXPECT_FALSE(decode_header(test::header('Q', 9), Direction::frontend, {}, h));
  EXPECT_EQ(h.type, 'Q');
  EXPECT_EQ(h.length, 9u);
  EXPECT_EQ(h.total(), 10u);
  EXPECT_EQ(h.body_size(), 5u);

  EXPECT_EQ(check_header(Direction::frontend, {'Q', 3}, {}), make_error_code(errc::message_too_short));
  EXPECT_EQ(check_header(Direction::backend, {'Q', 4}, {}), make_error_code(errc::unknown_message_type));
  EXPECT_EQ(check_header(Direction::frontend, {'S', 10001}, {}), make_error_code(errc::message_too_long));
  EXPECT_FALSE(check_header(Direction::backend, {'S', 10001}, {}));
}

// Every known type in both directions, for tests that sweep the type table.
struct TypeCase {
  Direction dir;
  char type;
};

std::vector<TypeCase> all_known_types() {
  std::vector<TypeCase> out;
  for (Direction dir : kDirections)
    for (char t : test::known_types(dir)) out.push_back({dir, t});
  return out;
}

std::string type_case_name(const ::testing::TestParamInfo<TypeCase>& info) {
  // Upper and lower case types ('D'/'d') must map to distinct test names.
  const char t = info.param.type;
  std::string name = test::direction_name(info.param.dir);
  name += '_';
  if (t >= 'a' && t <= 'z') name += "lower_";
  name += t;
  return name;
}

class FrameType : public ::testing::TestWithParam<TypeCase> {};

TEST_P(FrameType, IsKnown) { EXPECT_TRUE(known_type(GetParam().dir, GetParam().type)); }

TEST_P(FrameType, LengthFourIsAnEmptyBody) {
  const auto [dir, type] = GetParam();
  const std::string buf = test::header(type, 4) + "next";
  const ParseResult r = parse_frame(buf, dir, {});
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_EQ(r.frame.type, type);
  EXPECT_TRUE(r.frame.body.empty());
  EXPECT_EQ(r.frame.bytes.size(), header_size);
}

TEST_P(FrameType, LengthBelowFourIsTooShort) {
  const auto [dir, type] = GetParam();
  for (std::uint32_t len = 0; len < 4; ++len) {
    SCOPED_TRACE(len);
    expect_error(parse_frame(test::header(type, len), dir, {}), errc::message_too_short);
    expect_error(parse_frame(test::header(type, len) + "more bytes", dir, {}), errc::message_too_short);
  }
}

TEST_P(FrameType, MaxLengthFollowsItsSizeClass) {
  const auto [dir, type] = GetParam();
  EXPECT_EQ(max_length(dir, type, {}), test::expected_limit(dir, type, {}));
  // Distinct values show which field of Limits each type uses.
  const Limits custom{.small = 101, .large = 102, .auth = 103, .backend_small = 104};
  EXPECT_EQ(max_length(dir, type, custom), test::expected_limit(dir, type, custom));
}

void expect_limit_enforced(Direction dir, char type, const Limits& limits) {
  const std::uint32_t limit = max_length(dir, type, limits);
  ASSERT_GE(limit, 4u);
  // The header alone decides: exactly at the limit is fine, one more is not.
  expect_need_more(parse_frame(test::header(type, limit), dir, limits), test::header(type, limit));
  expect_error(parse_frame(test::header(type, limit + 1), dir, limits), errc::message_too_long);
  if (limit <= 100000) {
    const ParseResult r = parse_frame(test::typed(type, std::string(limit - 4, 'x')), dir, limits);
    ASSERT_EQ(r.status, ParseStatus::complete) << r.error.message();
    EXPECT_EQ(r.header.length, limit);
    EXPECT_EQ(r.frame.body.size(), limit - 4);
    expect_error(parse_frame(test::typed(type, std::string(limit - 3, 'x')), dir, limits),
                 errc::message_too_long);
  }
}

TEST_P(FrameType, DefaultLimitIsInclusive) {
  const auto [dir, type] = GetParam();
  expect_limit_enforced(dir, type, {});
}

TEST_P(FrameType, CustomLimitIsInclusive) {
  const auto [dir, type] = GetParam();
  expect_limit_enforced(dir, type, {.small = 50, .large = 64, .auth = 40, .backend_small = 30});
}

TEST_P(FrameType, HugeDeclaredLengthIsRejectedByDefault) {
  const auto [dir, type] = GetParam();
  for (std::uint32_t len : {0xffffffffu, 0xfffffffbu, 0x80000000u, (1u << 30) + 1}) {
    SCOPED_TRACE(len);
    expect_error(parse_frame(test::header(type, len), dir, {}), errc::message_too_long);
    expect_error(parse_frame(test::header(type, len) + "abc", dir, {}), errc::message_too_long);
  }
}

TEST_P(FrameType, HugeDeclaredLengthNeverOverflows) {
  const auto [dir, type] = GetParam();
  constexpr std::uint32_t max = std::numeric_limits<std::uint32_t>::max();
  const Limits unbounded{.small = max, .large = max, .auth = max, .backend_small = max};
  const std::string buf = test::header(type, max) + "abc";
  const ParseResult r = parse_frame(buf, dir, unbounded);
  expect_need_more(r, buf);
  EXPECT_EQ(r.header.length, max);
  EXPECT_EQ(r.header.total(), std::size_t{max} + 1);
  EXPECT_EQ(r.header.body_size(), std::size_t{max} - 4);
}

INSTANTIATE_TEST_SUITE_P(KnownTypes, FrameType, ::testing::ValuesIn(all_known_types()), type_case_name);

TEST(FrameUnknownType, EveryByteValueInBothDirections) {
  for (Direction dir : kDirections) {
    for (int v = 0; v < 256; ++v) {
      const char type = static_cast<char>(v);
      SCOPED_TRACE(::testing::Message() << test::direction_name(dir) << " type " << v);
      ASSERT_EQ(known_type(dir, type), test::expected_known(dir, type));
      if (test::expected_known(dir, type)) continue;
      EXPECT_EQ(max_length(dir, type, {}), 0u);
      for (std::uint32_t len : {4u, 5u, 100u}) {
        expect_error(parse_frame(test::header(type, len), dir, {}), errc::unknown_message_type);
        expect_error(parse_frame(test::typed(type, std::string(len - 4, 'x')), dir, {}),
                     errc::unknown_message_type);
      }
      EXPECT_EQ(parse_frame(test::header(type, 0xffffffff), dir, {}).status, ParseStatus::error);
    }
  }
}

TEST(FrameUnknownType, TypesOfTheOtherDirection) {
  for (char t : {'Q', 'P', 'B', 'F', 'p', 'X', 'f'})
    expect_error(parse_frame(test::header(t, 4), Direction::backend, {}), errc::unknown_message_type);
  for (char t : {'R', 'K', 'Z', 'T', 'N', 'A', 'v', '1', '2', '3', 'n', 's', 't', 'G', 'W', 'I', 'V'})
    expect_error(parse_frame(test::header(t, 4), Direction::frontend, {}), errc::unknown_message_type);
}

TEST(FrameUnknownType, StartupPacketIsNotATypedMessage) {
  // A StartupMessage starts with a zero length byte: never a valid type.
  const std::string startup = build([](auto& o) { append_startup_message(o, {{"user", "u"}}); });
  expect_error(parse_frame(startup, Direction::frontend, {}), errc::unknown_message_type);
}

}  // namespace
}  // namespace pgshift::protocol
