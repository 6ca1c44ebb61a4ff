#include "protocol/startup.hpp"

#include "protocol/error.hpp"
#include "protocol/frame.hpp"

namespace pgshift::protocol {

const std::string* StartupPacket::param(std::string_view key) const noexcept {
  for (const auto& [k, v] : params)
    if (k == key) return &v;
  return nullptr;
}

std::uint32_t startup_length(std::string_view first4, std::error_code& ec) noexcept {
  const std::uint32_t len = read_u32(first4.data());
  if (len < startup_min_length || len > startup_max_length) {
    ec = errc::startup_bad_length;
    return 0;
  }
  ec.clear();
  return len;
}

namespace {

// Splits "key\0value\0...\0" into pairs; the list ends with an empty key.
std::error_code parse_params(std::string_view body, StartupPacket& out) {
  if (body.empty() || body.back() != '\0') return errc::startup_bad_layout;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t kend = body.find('\0', pos);
    if (kend == pos) break;  // terminator
    const std::size_t vend = body.find('\0', kend + 1);
    if (vend == std::string_view::npos) return errc::startup_bad_layout;  // key without value
    out.params.emplace_back(std::string(body.substr(pos, kend - pos)),
                            std::string(body.substr(kend + 1, vend - kend - 1)));
    pos = vend + 1;
    if (pos >= body.size()) return errc::startup_bad_layout;  // missing final terminator
  }
  if (pos + 1 != body.size()) return errc::startup_bad_layout;  // bytes after the terminator
  return {};
}

}  // namespace

std::error_code parse_startup(std::string_view packet, StartupPacket& out) {
  std::error_code ec;
  if (packet.size() < 4) return errc::startup_bad_length;
  const std::uint32_t len = startup_length(packet, ec);
  if (ec) return ec;
  if (len != packet.size()) return errc::startup_bad_length;
  const std::uint32_t code = read_u32(packet.data() + 4);
  out = StartupPacket{};
  switch (code) {
    case ssl_request_code:
      out.kind = StartupKind::ssl_request;
      return len == 8 ? std::error_code{} : make_error_code(errc::startup_bad_length);
    case gssenc_request_code:
      out.kind = StartupKind::gssenc_request;
      return len == 8 ? std::error_code{} : make_error_code(errc::startup_bad_length);
    case cancel_request_code:
      out.kind = StartupKind::cancel_request;
      if (len != 16) return errc::startup_bad_length;
      out.cancel_pid = read_u32(packet.data() + 8);
      out.cancel_key = read_u32(packet.data() + 12);
      return {};
    default:
      break;
  }
  out.kind = StartupKind::startup;
  out.major = static_cast<std::uint16_t>(code >> 16);
  out.minor = static_cast<std::uint16_t>(code & 0xffff);
  if (out.major != protocol_major) return errc::startup_bad_version;
  if (auto perr = parse_params(packet.substr(8), out)) return perr;
  if (!out.param("user") || out.param("user")->empty()) return errc::startup_no_user;
  return {};
}

}  // namespace pgshift::protocol
