// SQL quoting for statements pgshift composes itself (the shadow applier, the
// cutover's control connections, verify). No I/O, so code without a server
// connection can compose statements too.
#pragma once

#include <string>
#include <string_view>

namespace pgshift::protocol {

// A string literal, valid whatever standard_conforming_strings says.
std::string quote_literal(std::string_view s);
// A double-quoted identifier.
std::string quote_ident(std::string_view s);

}  // namespace pgshift::protocol
