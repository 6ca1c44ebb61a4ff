#include "protocol/sql_quote.hpp"

namespace pgshift::protocol {

// A backslash only means something with standard_conforming_strings off;
// E'' gives it the same meaning either way.
std::string quote_literal(std::string_view s) {
  const bool escape = s.find('\\') != std::string_view::npos;
  std::string out = escape ? "E'" : "'";
  for (char ch : s) {
    if (ch == '\'' || (escape && ch == '\\')) out += ch;
    out += ch;
  }
  return out + '\'';
}

std::string quote_ident(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + '"';
}

}  // namespace pgshift::protocol
