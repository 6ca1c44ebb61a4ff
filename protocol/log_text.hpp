// Text that a client or a server controls (statement text, user and database
// names, application_name, server error messages), made safe to put in a log
// line: it cannot end the line, forge another one, or move a terminal's cursor.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pgshift::protocol {

// Escapes `s` for one log line: \n \r \t and \\ as themselves, other ASCII
// control bytes and bytes that are not valid UTF-8 as \xNN, and the Unicode
// characters a terminal or a viewer acts on (C1 controls, line and paragraph
// separators, bidirectional overrides) as \uNNNN. Text longer than
// `max_bytes` is cut at a character boundary and ends with "... (N bytes)".
std::string log_text(std::string_view s, std::size_t max_bytes = 200);

}  // namespace pgshift::protocol
