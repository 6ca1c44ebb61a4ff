#include "rewrite/lexer.hpp"

namespace pgshift::rewrite::lex {
namespace {

enum Kind : int { identifier = PG_QUERY__TOKEN__IDENT, string = PG_QUERY__TOKEN__SCONST,
                  number = PG_QUERY__TOKEN__FCONST, param = PG_QUERY__TOKEN__PARAM };

bool ident_start(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80; }
bool ident_char(unsigned char c) { return ident_start(c) || (c >= '0' && c <= '9') || c == '$'; }
bool digit(unsigned char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  // Skips whitespace and comments; reports what the gap held.
  bool gap(bool& any, bool& newline, bool& c_comment) {
    any = newline = c_comment = false;
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' || c == '\n') {
        newline |= c == '\n';
        ++i_;
      } else if (c == '-' && next() == '-') {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
      } else if (c == '/' && next() == '*') {
        c_comment = true;
        int depth = 0;  // PostgreSQL's block comments nest
        do {
          if (s_[i_] == '/' && next() == '*') {
            ++depth;
            i_ += 2;
          } else if (s_[i_] == '*' && next() == '/') {
            --depth;
            i_ += 2;
          } else {
            ++i_;
          }
        } while (depth > 0 && i_ < s_.size());
        if (depth > 0) return false;
      } else {
        break;
      }
      any = true;
    }
    return true;
  }

  // One token starting at i_; false on an unterminated literal.
  bool token(pg::Token& t) {
    const std::size_t start = i_;
    const unsigned char c = static_cast<unsigned char>(s_[i_]);
    int kind = c;
    if ((c == 'E' || c == 'e') && next() == '\'') {
      ++i_;
      if (!quoted('\'', true)) return false;
      kind = string;
    } else if ((c == 'B' || c == 'b' || c == 'X' || c == 'x') && next() == '\'') {  // N'..' is N, then a string
      ++i_;
      if (!quoted('\'', false)) return false;
      kind = string;
    } else if (ident_start(c)) {
      while (i_ < s_.size() && ident_char(static_cast<unsigned char>(s_[i_]))) ++i_;
      kind = identifier;
    } else if (c == '\'') {
      if (!quoted('\'', false)) return false;
      kind = string;
    } else if (c == '"') {
      if (!quoted('"', false)) return false;
      kind = identifier;
    } else if (c == '$' && digit(static_cast<unsigned char>(next()))) {
      ++i_;
      while (i_ < s_.size() && digit(static_cast<unsigned char>(s_[i_]))) ++i_;
      kind = param;
    } else if (c == '$') {
      if (!dollar_quoted()) return false;
      kind = string;
    } else if (digit(c) || (c == '.' && digit(static_cast<unsigned char>(next())))) {
      numeric();
      kind = number;
    } else {
      ++i_;  // operators and punctuation, one character each
    }
    t = pg::Token{static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(i_), kind, false, false};
    return true;
  }

  bool done() const { return i_ >= s_.size(); }

 private:
  char next() const { return i_ + 1 < s_.size() ? s_[i_ + 1] : '\0'; }

  // '...' or "..." with doubled quotes; E'...' also with backslash escapes.
  bool quoted(char q, bool backslash) {
    ++i_;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (backslash && c == '\\') {
        ++i_;
      } else if (c == q) {
        if (i_ < s_.size() && s_[i_] == q) ++i_;
        else return true;
      }
    }
    return false;
  }

  // $tag$...$tag$; a '$' that does not open one stands alone.
  bool dollar_quoted() {
    std::size_t j = i_ + 1;
    while (j < s_.size() && s_[j] != '$' && ident_char(static_cast<unsigned char>(s_[j])) && s_[j] != '$') ++j;
    if (j >= s_.size() || s_[j] != '$' || (j > i_ + 1 && digit(static_cast<unsigned char>(s_[i_ + 1])))) {
      ++i_;
      return true;
    }
    const std::string_view tag = s_.substr(i_, j - i_ + 1);
    const std::size_t end = s_.find(tag, j + 1);
    if (end == std::string_view::npos) return false;
    i_ = end + tag.size();
    return true;
  }

  void numeric() {
    while (i_ < s_.size() && digit(static_cast<unsigned char>(s_[i_]))) ++i_;
    if (i_ < s_.size() && s_[i_] == '.' && next() != '.') {
      ++i_;
      while (i_ < s_.size() && digit(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      std::size_t j = i_ + 1;
      if (j < s_.size() && (s_[j] == '+' || s_[j] == '-')) ++j;
      if (j < s_.size() && digit(static_cast<unsigned char>(s_[j]))) {
        i_ = j;
        while (i_ < s_.size() && digit(static_cast<unsigned char>(s_[i_]))) ++i_;
      }
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

bool normalize(std::string_view sql, std::vector<pg::Token>& tokens, std::string& key) {
  tokens.clear();
  key.clear();
  Lexer lx(sql);
  bool any = false, newline = false, c_comment = false;
  int previous = 0;
  for (;;) {
    if (!lx.gap(any, newline, c_comment)) return false;
    if (lx.done()) return true;
    pg::Token t;
    if (!lx.token(t)) return false;
    // How this token touches the previous one.
    char sep = any ? ' ' : '\x01';
    if (t.kind == string && previous == string && any) sep = c_comment ? '\x04' : (newline ? '\n' : ' ');
    key.push_back(sep);
    if (t.kind == string || t.kind == number) key.push_back(t.kind == string ? '\x02' : '\x03');
    else key.append(sql.substr(t.start, t.end - t.start));
    tokens.push_back(t);
    previous = t.kind;
  }
}

}  // namespace pgshift::rewrite::lex
