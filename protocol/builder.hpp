// Builders append complete messages to a caller-owned std::string, so a reused
// buffer costs no allocation once warm. Only messages pgshift itself must say
// are built; forwarded messages keep their original bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgshift::protocol {

// Writes one typed message: begin() reserves the header, end() patches the length.
class MessageWriter {
 public:
  explicit MessageWriter(std::string& out) noexcept : out_(out) {}
  MessageWriter& begin(char type);          // typed message
  MessageWriter& begin_untyped();           // startup-style packet (length only)
  MessageWriter& u8(std::uint8_t v);
  MessageWriter& u16(std::uint16_t v);
  MessageWriter& u32(std::uint32_t v);
  MessageWriter& cstring(std::string_view s);  // s then a NUL
  MessageWriter& raw(std::string_view s);
  void end();

 private:
  std::string& out_;
  std::size_t start_ = 0;  // offset of the length field
};

// One ErrorResponse field set, as PostgreSQL sends it.
struct ErrorSpec {
  std::string_view severity = "FATAL";  // ERROR, FATAL, PANIC
  std::string_view sqlstate = "08P01";
  std::string_view message;
  std::string_view detail = {};
  std::string_view hint = {};
};

void append_error_response(std::string& out, const ErrorSpec& e);
void append_notice_response(std::string& out, const ErrorSpec& e);
void append_ready_for_query(std::string& out, char status);
void append_backend_key_data(std::string& out, std::uint32_t pid, std::uint32_t key);
void append_authentication_ok(std::string& out);
void append_authentication_sasl(std::string& out, const std::vector<std::string_view>& mechanisms);
void append_parameter_status(std::string& out, std::string_view name, std::string_view value);
void append_negotiate_protocol_version(std::string& out, std::uint16_t newest_minor,
                                       const std::vector<std::string_view>& unrecognized);
void append_query(std::string& out, std::string_view sql);
void append_terminate(std::string& out);
void append_sync(std::string& out);
void append_parse(std::string& out, std::string_view name, std::string_view sql,
                  const std::vector<std::uint32_t>& param_types = {});
// A Parse with `types` as encoded on the wire (ParseView::types): the same
// statement name and parameter types with other SQL.
void append_parse(std::string& out, std::string_view name, std::string_view sql, std::string_view types);
void append_bind(std::string& out, std::string_view portal, std::string_view statement,
                 const std::vector<std::string_view>& text_params = {});
void append_execute(std::string& out, std::string_view portal, std::uint32_t max_rows = 0);
void append_describe(std::string& out, char kind, std::string_view name);
void append_close(std::string& out, char kind, std::string_view name);
void append_copy_data(std::string& out, std::string_view data);
void append_copy_done(std::string& out);
void append_password(std::string& out, std::string_view password);

// Results pgshift answers itself (the admin console): text columns.
void append_row_description(std::string& out, const std::vector<std::string>& columns);
void append_data_row(std::string& out, const std::vector<std::optional<std::string>>& values);
void append_command_complete(std::string& out, std::string_view tag);
void append_empty_query_response(std::string& out);
// Extended-protocol acknowledgements: ParseComplete '1', BindComplete '2',
// CloseComplete '3', NoData 'n', and a ParameterDescription without parameters.
void append_simple(std::string& out, char type);
void append_no_parameters(std::string& out);

// Untyped packets.
void append_startup_message(std::string& out,
                            const std::vector<std::pair<std::string, std::string>>& params,
                            std::uint16_t minor = 0);
void append_ssl_request(std::string& out);
void append_gssenc_request(std::string& out);
void append_cancel_request(std::string& out, std::uint32_t pid, std::uint32_t key);

}  // namespace pgshift::protocol
