// Shared helpers for the protocol unit tests: byte encoders written
// independently of builder.cpp, a hex dumper for readable failures, and a
// catalogue of sample messages for every message type in both directions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/builder.hpp"
#include "protocol/frame.hpp"

namespace pgshift::protocol::test {

using namespace std::string_literals;

inline std::string be16(std::uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }

inline std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xff), static_cast<char>((v >> 8) & 0xff),
          static_cast<char>(v & 0xff)};
}

// A five-byte header: type byte plus the declared length.
inline std::string header(char type, std::uint32_t length) { return std::string(1, type) + be32(length); }

// A typed message assembled by hand: the length counts itself and the body.
inline std::string typed(char type, std::string_view body) {
  return header(type, static_cast<std::uint32_t>(body.size() + 4)) + std::string(body);
}

// An untyped (startup-style) packet: length, then the body.
inline std::string untyped(std::string_view body) {
  return be32(static_cast<std::uint32_t>(body.size() + 4)) + std::string(body);
}

// "00 0a ff" -> bytes; whitespace is ignored.
inline std::string unhex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
  };
  std::string out;
  int hi = -1;
  for (char c : hex) {
    if (c == ' ' || c == '\n') continue;
    if (hi < 0) {
      hi = nibble(c);
    } else {
      out.push_back(static_cast<char>((hi << 4) | nibble(c)));
      hi = -1;
    }
  }
  return out;
}

// Bytes -> "00 0a ff", so binary mismatches print legibly.
inline std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (!out.empty()) out.push_back(' ');
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0xf]);
  }
  return out;
}

// Runs a builder into a fresh buffer.
template <class F>
std::string build(F&& f) {
  std::string out;
  f(out);
  return out;
}

// The message types valid in each direction, grouped by size class.
inline constexpr std::string_view frontend_small_types = "CcfDEHSX";
inline constexpr std::string_view frontend_large_types = "QPBFd";
inline constexpr std::string_view frontend_auth_types = "p";
inline constexpr std::string_view backend_small_types = "RK123CcGHWInsZv";
inline constexpr std::string_view backend_large_types = "DdTVENAtS";

inline std::string known_types(Direction dir) {
  if (dir == Direction::frontend)
    return std::string(frontend_small_types) + std::string(frontend_large_types) +
           std::string(frontend_auth_types);
  return std::string(backend_small_types) + std::string(backend_large_types);
}

inline bool expected_known(Direction dir, char type) {
  return known_types(dir).find(type) != std::string::npos;
}

// The limit the test expects for a type, derived from the tables above.
inline std::uint32_t expected_limit(Direction dir, char type, const Limits& l) {
  auto in = [type](std::string_view set) { return set.find(type) != std::string_view::npos; };
  if (dir == Direction::frontend) {
    if (in(frontend_small_types)) return l.small;
    if (in(frontend_large_types)) return l.large;
    if (in(frontend_auth_types)) return l.auth;
    return 0;
  }
  if (in(backend_small_types)) return l.backend_small;
  if (in(backend_large_types)) return l.large;
  return 0;
}

inline const char* direction_name(Direction dir) {
  return dir == Direction::frontend ? "frontend" : "backend";
}

// One well-formed message with the type and body the parser must report.
struct SampleMessage {
  std::string name;
  Direction dir;
  std::string bytes;
  char type;
  std::string body;
};

inline std::vector<SampleMessage> frontend_samples() {
  const auto F = Direction::frontend;
  return {
      {"Query", F, build([](auto& o) { append_query(o, "SELECT 1"); }), 'Q', "SELECT 1\0"s},
      {"Parse", F, build([](auto& o) { append_parse(o, "s1", "SELECT $1", {23}); }), 'P',
       "s1\0SELECT $1\0"s + be16(1) + be32(23)},
      {"Bind", F, build([](auto& o) {
         append_bind(o, "p1", "s1", {"42", ""});
       }),
       'B', "p1\0s1\0"s + be16(0) + be16(2) + be32(2) + "42" + be32(0) + be16(0)},
      {"Execute", F, build([](auto& o) { append_execute(o, "p1", 10); }), 'E', "p1\0"s + be32(10)},
      {"Describe", F, build([](auto& o) { append_describe(o, 'S', "s1"); }), 'D', "Ss1\0"s},
      {"Close", F, build([](auto& o) { append_close(o, 'P', "p1"); }), 'C', "Pp1\0"s},
      {"Sync", F, build([](auto& o) { append_sync(o); }), 'S', ""},
      {"Terminate", F, build([](auto& o) { append_terminate(o); }), 'X', ""},
      {"CopyData", F, build([](auto& o) { append_copy_data(o, "a\tb\n"); }), 'd', "a\tb\n"},
      {"CopyDone", F, build([](auto& o) { append_copy_done(o); }), 'c', ""},
      {"Password", F, build([](auto& o) { append_password(o, "secret"); }), 'p', "secret\0"s},
      {"CopyFail", F, typed('f', "oops\0"s), 'f', "oops\0"s},
      {"Flush", F, typed('H', ""), 'H', ""},
      {"FunctionCall", F, typed('F', be32(1234) + be16(0) + be16(0) + be16(0)), 'F',
       be32(1234) + be16(0) + be16(0) + be16(0)},
  };
}

inline std::vector<SampleMessage> backend_samples() {
  const auto B = Direction::backend;
  const std::string row_description =
      be16(1) + "id\0"s + be32(0) + be16(0) + be32(23) + be16(4) + be32(0xffffffff) + be16(0);
  return {
      {"ErrorResponse", B, build([](auto& o) {
         append_error_response(o, {"ERROR", "42P01", "relation missing"});
       }),
       'E', "SERROR\0VERROR\0C42P01\0Mrelation missing\0\0"s},
      {"NoticeResponse", B, build([](auto& o) {
         append_notice_response(o, {"NOTICE", "00000", "hi"});
       }),
       'N', "SNOTICE\0VNOTICE\0C00000\0Mhi\0\0"s},
      {"ReadyForQuery", B, build([](auto& o) { append_ready_for_query(o, 'I'); }), 'Z', "I"},
      {"BackendKeyData", B, build([](auto& o) { append_backend_key_data(o, 1234, 0xdeadbeef); }), 'K',
       be32(1234) + be32(0xdeadbeef)},
      {"AuthenticationOk", B, build([](auto& o) { append_authentication_ok(o); }), 'R', be32(0)},
      {"AuthenticationSASL", B, build([](auto& o) { append_authentication_sasl(o, {"SCRAM-SHA-256"}); }), 'R',
       be32(10) + "SCRAM-SHA-256\0\0"s},
      {"ParameterStatus", B, build([](auto& o) { append_parameter_status(o, "client_encoding", "UTF8"); }),
       'S', "client_encoding\0UTF8\0"s},
      {"NegotiateProtocolVersion", B,
       build([](auto& o) { append_negotiate_protocol_version(o, 0, {"_pq_.foo"}); }), 'v',
       be32(0) + be32(1) + "_pq_.foo\0"s},
      {"ParseComplete", B, typed('1', ""), '1', ""},
      {"BindComplete", B, typed('2', ""), '2', ""},
      {"CloseComplete", B, typed('3', ""), '3', ""},
      {"NoData", B, typed('n', ""), 'n', ""},
      {"EmptyQueryResponse", B, typed('I', ""), 'I', ""},
      {"PortalSuspended", B, typed('s', ""), 's', ""},
      {"CopyDone", B, typed('c', ""), 'c', ""},
      {"CommandComplete", B, typed('C', "SELECT 1\0"s), 'C', "SELECT 1\0"s},
      {"CopyData", B, typed('d', "row\n"), 'd', "row\n"},
      {"DataRow", B, typed('D', be16(1) + be32(1) + "1"), 'D', be16(1) + be32(1) + "1"},
      {"RowDescription", B, typed('T', row_description), 'T', row_description},
      {"ParameterDescription", B, typed('t', be16(1) + be32(23)), 't', be16(1) + be32(23)},
      {"NotificationResponse", B, typed('A', be32(42) + "chan\0payload\0"s), 'A',
       be32(42) + "chan\0payload\0"s},
      {"FunctionCallResponse", B, typed('V', be32(1) + "x"), 'V', be32(1) + "x"},
      {"CopyInResponse", B, typed('G', "\0"s + be16(0)), 'G', "\0"s + be16(0)},
      {"CopyOutResponse", B, typed('H', "\0"s + be16(0)), 'H', "\0"s + be16(0)},
      {"CopyBothResponse", B, typed('W', "\0"s + be16(0)), 'W', "\0"s + be16(0)},
  };
}

// Both catalogues, with names made unique across directions.
inline std::vector<SampleMessage> all_samples() {
  std::vector<SampleMessage> all;
  for (auto& m : frontend_samples()) {
    m.name = "Frontend" + m.name;
    all.push_back(std::move(m));
  }
  for (auto& m : backend_samples()) {
    m.name = "Backend" + m.name;
    all.push_back(std::move(m));
  }
  return all;
}

}  // namespace pgshift::protocol::test
