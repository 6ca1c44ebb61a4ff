// One small view type per message, over the original bytes of a Frame. Each
// `parse` returns false when the body does not match the message's layout;
// the views borrow from the frame and must not outlive it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "protocol/frame.hpp"

namespace pgshift::protocol {

// Reads NUL-terminated strings and fixed-size integers from a body, never past its end.
class Reader {
 public:
  explicit Reader(std::string_view body) noexcept : rest_(body) {}
  bool cstring(std::string_view& out) noexcept;
  bool u8(std::uint8_t& out) noexcept;
  bool u16(std::uint16_t& out) noexcept;
  bool u32(std::uint32_t& out) noexcept;
  bool bytes(std::size_t n, std::string_view& out) noexcept;
  std::string_view rest() const noexcept { return rest_; }
  bool done() const noexcept { return rest_.empty(); }

 private:
  std::string_view rest_;
};

// ---- frontend ----
struct QueryView {  // 'Q'
  std::string_view sql;
  bool parse(const Frame& f) noexcept;
};

struct ParseView {  // 'P'
  std::string_view name;
  std::string_view sql;
  std::uint16_t param_count = 0;
  std::string_view types;  // the parameter count and types as sent, for re-sending with other SQL
  bool parse(const Frame& f) noexcept;
};

struct BindView {  // 'B': names only; parameters stay in the bytes
  std::string_view portal;
  std::string_view statement;
  bool parse(const Frame& f) noexcept;
};

struct ExecuteView {  // 'E'
  std::string_view portal;
  std::uint32_t max_rows = 0;
  bool parse(const Frame& f) noexcept;
};

struct TargetView {  // 'D' Describe and 'C' Close
  char kind = 0;  // 'S' statement or 'P' portal
  std::string_view name;
  bool parse(const Frame& f) noexcept;
};

// ---- backend ----
enum class AuthCode : std::uint32_t {
  ok = 0,
  kerberos_v5 = 2,
  cleartext = 3,
  md5 = 5,
  gss = 7,
  gss_continue = 8,
  sspi = 9,
  sasl = 10,
  sasl_continue = 11,
  sasl_final = 12,
};

struct AuthenticationView {  // 'R'
  std::uint32_t code = 0;
  std::string_view data;  // md5 salt, SASL mechanism list or SASL data
  bool parse(const Frame& f) noexcept;
  // Whether the client must answer with a 'p' message.
  bool expects_response() const noexcept;
};

struct BackendKeyDataView {  // 'K'
  std::uint32_t pid = 0;
  std::uint32_t key = 0;
  bool parse(const Frame& f) noexcept;
};

struct ReadyForQueryView {  // 'Z'
  char status = 'I';  // 'I' idle, 'T' in transaction, 'E' failed transaction
  bool parse(const Frame& f) noexcept;
};

struct ParameterStatusView {  // 'S'
  std::string_view name;
  std::string_view value;
  bool parse(const Frame& f) noexcept;
};

struct CommandCompleteView {  // 'C'
  std::string_view tag;
  bool parse(const Frame& f) noexcept;
};

// 'E' ErrorResponse and 'N' NoticeResponse: typed fields ending in a NUL.
// Any field may be missing, SQLSTATE included.
struct ErrorFieldsView {
  std::string_view severity;  // 'V' (or 'S' when 'V' is absent)
  std::optional<std::string_view> sqlstate;
  std::string_view message;
  bool parse(const Frame& f) noexcept;
};

}  // namespace pgshift::protocol
