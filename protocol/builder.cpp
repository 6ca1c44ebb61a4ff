#include "protocol/builder.hpp"

#include "protocol/startup.hpp"

namespace pgshift::protocol {

MessageWriter& MessageWriter::begin(char type) {
  out_.push_back(type);
  return begin_untyped();
}

MessageWriter& MessageWriter::begin_untyped() {
  start_ = out_.size();
  out_.append(4, '\0');
  return *this;
}

MessageWriter& MessageWriter::u8(std::uint8_t v) {
  out_.push_back(static_cast<char>(v));
  return *this;
}

MessageWriter& MessageWriter::u16(std::uint16_t v) {
  out_.push_back(static_cast<char>(v >> 8));
  out_.push_back(static_cast<char>(v & 0xff));
  return *this;
}

MessageWriter& MessageWriter::u32(std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out_.push_back(static_cast<char>((v >> shift) & 0xff));
  return *this;
}

MessageWriter& MessageWriter::cstring(std::string_view s) {
  out_.append(s);
  out_.push_back('\0');
  return *this;
}

MessageWriter& MessageWriter::raw(std::string_view s) {
  out_.append(s);
  return *this;
}

void MessageWriter::end() {
  const auto len = static_cast<std::uint32_t>(out_.size() - start_);
  for (int i = 0; i < 4; ++i) out_[start_ + i] = static_cast<char>((len >> (24 - 8 * i)) & 0xff);
}

namespace {

void append_fields(std::string& out, char type, const ErrorSpec& e) {
  MessageWriter w(out);
  w.begin(type);
  w.u8('S').cstring(e.severity).u8('V').cstring(e.severity);
  w.u8('C').cstring(e.sqlstate).u8('M').cstring(e.message);
  if (!e.detail.empty()) w.u8('D').cstring(e.detail);
  if (!e.hint.empty()) w.u8('H').cstring(e.hint);
  w.u8(0).end();
}

}  // namespace

void append_error_response(std::string& out, const ErrorSpec& e) { append_fields(out, 'E', e); }
void append_notice_response(std::string& out, const ErrorSpec& e) { append_fields(out, 'N', e); }

void append_row_description(std::string& out, const std::vector<std::string>& columns) {
  constexpr std::uint32_t text_oid = 25;
  MessageWriter w(out);
  w.begin('T').u16(static_cast<std::uint16_t>(columns.size()));
  for (const std::string& c : columns)  // no table, type text, variable length, no modifier, text format
    w.cstring(c).u32(0).u16(0).u32(text_oid).u16(0xFFFF).u32(0xFFFFFFFF).u16(0);
  w.end();
}

void append_data_row(std::string& out, const std::vector<std::optional<std::string>>& values) {
  MessageWriter w(out);
  w.begin('D').u16(static_cast<std::uint16_t>(values.size()));
  for (const auto& v : values) {
    if (!v) {
      w.u32(0xFFFFFFFF);
      continue;
    }
    w.u32(static_cast<std::uint32_t>(v->size())).raw(*v);
  }
  w.end();
}

void append_command_complete(std::string& out, std::string_view tag) { MessageWriter(out).begin('C').cstring(tag).end(); }

void append_empty_query_response(std::string& out) { MessageWriter(out).begin('I').end(); }

void append_simple(std::string& out, char type) { MessageWriter(out).begin(type).end(); }

void append_no_parameters(std::string& out) { MessageWriter(out).begin('t').u16(0).end(); }

void append_ready_for_query(std::string& out, char status) {
  MessageWriter(out).begin('Z').u8(static_cast<std::uint8_t>(status)).end();
}

void append_backend_key_data(std::string& out, std::uint32_t pid, std::uint32_t key) {
  MessageWriter(out).begin('K').u32(pid).u32(key).end();
}

void append_authentication_ok(std::string& out) { MessageWriter(out).begin('R').u32(0).end(); }

void append_authentication_sasl(std::string& out, const std::vector<std::string_view>& mechanisms) {
  MessageWriter w(out);
  w.begin('R').u32(10);
  for (auto m : mechanisms) w.cstring(m);
  w.u8(0).end();
}

void append_parameter_status(std::string& out, std::string_view name, std::string_view value) {
  MessageWriter(out).begin('S').cstring(name).cstring(value).end();
}

void append_negotiate_protocol_version(std::string& out, std::uint16_t newest_minor,
                                       const std::vector<std::string_view>& unrecognized) {
  MessageWriter w(out);
  w.begin('v').u32(newest_minor).u32(static_cast<std::uint32_t>(unrecognized.size()));
  for (auto o : unrecognized) w.cstring(o);
  w.end();
}

void append_query(std::string& out, std::string_view sql) { MessageWriter(out).begin('Q').cstring(sql).end(); }
void append_terminate(std::string& out) { MessageWriter(out).begin('X').end(); }
void append_sync(std::string& out) { MessageWriter(out).begin('S').end(); }

void append_parse(std::string& out, std::string_view name, std::string_view sql,
                  const std::vector<std::uint32_t>& param_types) {
  MessageWriter w(out);
  w.begin('P').cstring(name).cstring(sql).u16(static_cast<std::uint16_t>(param_types.size()));
  for (auto t : param_types) w.u32(t);
  w.end();
}

void append_bind(std::string& out, std::string_view portal, std::string_view statement,
                 const std::vector<std::string_view>& text_params) {
  MessageWriter w(out);
  w.begin('B').cstring(portal).cstring(statement).u16(0);
  w.u16(static_cast<std::uint16_t>(text_params.size()));
  for (auto p : text_params) w.u32(static_cast<std::uint32_t>(p.size())).raw(p);
  w.u16(0).end();
}

void append_parse(std::string& out, std::string_view name, std::string_view sql, std::string_view types) {
  MessageWriter(out).begin('P').cstring(name).cstring(sql).raw(types).end();
}

void append_execute(std::string& out, std::string_view portal, std::uint32_t max_rows) {
  MessageWriter(out).begin('E').cstring(portal).u32(max_rows).end();
}

void append_describe(std::string& out, char kind, std::string_view name) {
  MessageWriter(out).begin('D').u8(static_cast<std::uint8_t>(kind)).cstring(name).end();
}

void append_close(std::string& out, char kind, std::string_view name) {
  MessageWriter(out).begin('C').u8(static_cast<std::uint8_t>(kind)).cstring(name).end();
}

void append_copy_data(std::string& out, std::string_view data) { MessageWriter(out).begin('d').raw(data).end(); }
void append_copy_done(std::string& out) { MessageWriter(out).begin('c').end(); }
void append_password(std::string& out, std::string_view password) {
  MessageWriter(out).begin('p').cstring(password).end();
}

void append_startup_message(std::string& out,
                            const std::vector<std::pair<std::string, std::string>>& params,
                            std::uint16_t minor) {
  MessageWriter w(out);
  w.begin_untyped().u16(protocol_major).u16(minor);
  for (const auto& [k, v] : params) w.cstring(k).cstring(v);
  w.u8(0).end();
}

void append_ssl_request(std::string& out) { MessageWriter(out).begin_untyped().u32(ssl_request_code).end(); }
void append_gssenc_request(std::string& out) {
  MessageWriter(out).begin_untyped().u32(gssenc_request_code).end();
}
void append_cancel_request(std::string& out, std::uint32_t pid, std::uint32_t key) {
  MessageWriter(out).begin_untyped().u32(cancel_request_code).u32(pid).u32(key).end();
}

}  // namespace pgshift::protocol
