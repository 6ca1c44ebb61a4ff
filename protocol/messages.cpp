#include "protocol/messages.hpp"

namespace pgshift::protocol {

bool Reader::cstring(std::string_view& out) noexcept {
  const auto nul = rest_.find('\0');
  if (nul == std::string_view::npos) return false;
  out = rest_.substr(0, nul);
  rest_.remove_prefix(nul + 1);
  return true;
}

bool Reader::u8(std::uint8_t& out) noexcept {
  if (rest_.empty()) return false;
  out = static_cast<std::uint8_t>(rest_[0]);
  rest_.remove_prefix(1);
  return true;
}

bool Reader::u16(std::uint16_t& out) noexcept {
  if (rest_.size() < 2) return false;
  out = read_u16(rest_.data());
  rest_.remove_prefix(2);
  return true;
}

bool Reader::u32(std::uint32_t& out) noexcept {
  if (rest_.size() < 4) return false;
  out = read_u32(rest_.data());
  rest_.remove_prefix(4);
  return true;
}

bool Reader::bytes(std::size_t n, std::string_view& out) noexcept {
  if (n > rest_.size()) return false;
  out = rest_.substr(0, n);
  rest_.remove_prefix(n);
  return true;
}

bool QueryView::parse(const Frame& f) noexcept {
  Reader r(f.body);
  return f.type == 'Q' && r.cstring(sql) && r.done();
}

bool ParseView::parse(const Frame& f) noexcept {
  Reader r(f.body);
  if (f.type != 'P' || !r.cstring(name) || !r.cstring(sql)) return false;
  types = r.rest();
  if (!r.u16(param_count)) return false;
  return r.rest().size() == std::size_t{param_count} * 4;
}

bool BindView::parse(const Frame& f) noexcept {
  Reader r(f.body);
  return f.type == 'B' && r.cstring(portal) && r.cstring(statement);
}

bool ExecuteView::parse(const Frame& f) noexcept {
  Reader r(f.body);
  return f.type == 'E' && r.cstring(portal) && r.u32(max_rows) && r.done();
}

bool TargetView::parse(const Frame& f) noexcept {
  Reader r(f.body);
  std::uint8_t k = 0;
  if ((f.type != 'D' && f.type != 'C') || !r.u8(k) || !r.cstring(name) || !r.done()) return false;
  kind = static_cast<char>(k);
  return kind == 'S' || kind == 'P';
}

bool AuthenticationView::parse(const Frame& f) noexcept {
  Reader r(f.body);
  if (f.type != 'R' || !r.u32(code)) return false;
  data = r.rest();
  switch (static_cast<AuthCode>(code)) {
    case AuthCode::ok:
    case AuthCode::cleartext:
    case AuthCode::gss:
    case AuthCode::sspi:
    case AuthCode::kerberos_v5:
      return data.empty();
    case AuthCode::md5:
      return data.size() == 4;
    default:
      return true;
  }
}

bool AuthenticationView::expects_response() const noexcept {
  switch (static_cast<AuthCode>(code)) {
    case AuthCode::cleartext:
    case AuthCode::md5:
    case AuthCode::gss:
    case AuthCode::gss_continue:
    case AuthCode::sspi:
    case AuthCode::sasl:
    case AuthCode::sasl_continue:
      return true;
    default:
      return false;
  }
}

bool BackendKeyDataView::parse(const Frame& f) noexcept {
  Reader r(f.body);
  return f.type == 'K' && r.u32(pid) && r.u32(key) && r.done();
}

bool ReadyForQueryView::parse(const Frame& f) noexcept {
  if (f.type != 'Z' || f.body.size() != 1) return false;
  status = f.body[0];
  return status == 'I' || status == 'T' || status == 'E';
}

bool ParameterStatusView::parse(const Frame& f) noexcept {
  Reader r(f.body);
  return f.type == 'S' && r.cstring(name) && r.cstring(value) && r.done();
}

bool CommandCompleteView::parse(const Frame& f) noexcept {
  Reader r(f.body);
  return f.type == 'C' && r.cstring(tag) && r.done();
}

bool ErrorFieldsView::parse(const Frame& f) noexcept {
  if (f.type != 'E' && f.type != 'N') return false;
  *this = ErrorFieldsView{};  // a reused view must not keep fields of an earlier message
  Reader r(f.body);
  std::string_view localized;
  for (;;) {
    std::uint8_t code = 0;
    if (!r.u8(code)) return false;
    if (code == 0) break;
    std::string_view value;
    if (!r.cstring(value)) return false;
    switch (code) {
      case 'S': localized = value; break;
      case 'V': severity = value; break;
      case 'C': sqlstate = value; break;
      case 'M': message = value; break;
      default: break;
    }
  }
  if (severity.empty()) severity = localized;
  return r.done();
}

}  // namespace pgshift::protocol
