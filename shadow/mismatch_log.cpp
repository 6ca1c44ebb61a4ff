#include "shadow/mismatch_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <spdlog/spdlog.h>

#include "rewrite/lexer.hpp"

namespace pgshift::shadow {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";

bool continuation(std::string_view s, std::size_t i, unsigned char lo = 0x80, unsigned char hi = 0xbf) noexcept {
  if (i >= s.size()) return false;
  const auto c = static_cast<unsigned char>(s[i]);
  return c >= lo && c <= hi;
}

// Length of the valid UTF-8 sequence starting at s[i] (a byte >= 0x80), or 0.
std::size_t utf8_length(std::string_view s, std::size_t i) noexcept {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c >= 0xc2 && c <= 0xdf) return continuation(s, i + 1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const unsigned char lo = c == 0xe0 ? 0xa0 : 0x80;  // no overlong forms
    const unsigned char hi = c == 0xed ? 0x9f : 0xbf;  // no surrogates
    return continuation(s, i + 1, lo, hi) && continuation(s, i + 2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const unsigned char lo = c == 0xf0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xf4 ? 0x8f : 0xbf;  // at most U+10FFFF
    return continuation(s, i + 1, lo, hi) && continuation(s, i + 2) && continuation(s, i + 3) ? 4 : 0;
  }
  return 0;
}

void append_hex_bytes(std::string& out, std::string_view bytes) {
  out += "\\x";
  for (char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    out.push_back(hex_digits[b >> 4]);
    out.push_back(hex_digits[b & 0xf]);
  }
}

void append_outcome(std::string& out, const Outcome& o) {
  if (o.error) {
    out += "{\"error\":{\"sqlstate\":";
    append_json_string(out, o.error->sqlstate);
    out += ",\"message\":";
    append_json_string(out, o.error->message);
    out += "}}";
    return;
  }
  out += "{\"tag\":";
  append_json_string(out, o.tag);
  out += ",\"rows\":";
  out += std::to_string(o.rows);
  out.push_back('}');
}

void append_optional(std::string& out, const std::optional<std::string>& s) {
  if (s) append_json_string(out, *s);
  else out += "null";
}

}  // namespace

std::string redact_statement(std::string_view text) {
  std::vector<rewrite::pg::Token> tokens;
  std::string key;
  const bool lexed = rewrite::lex::normalize(text, tokens, key);
  std::string out;
  out.reserve(text.size());
  const rewrite::pg::Token* prev = nullptr;
  bool prev_literal = false;
  for (const rewrite::pg::Token& t : tokens) {
    const bool touching = prev && t.start == prev->end;
    // A word glued to a number is part of it for PostgreSQL 16 (0x1F, 1_000).
    const bool literal = t.literal() || (touching && prev_literal && t.kind == PG_QUERY__TOKEN__IDENT);
    if (prev && !touching) out.push_back(' ');
    if (!literal) out += t.text(text);
    else if (!(touching && prev_literal)) out.push_back('?');
    prev = &t;
    prev_literal = literal;
  }
  if (!lexed) {
    if (!out.empty()) out.push_back(' ');
    out.push_back('?');
  }
  return out;
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t n = utf8_length(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(hex_digits[c >> 4]);
          out.push_back(hex_digits[c & 0xf]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

std::string iso8601_utc(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  long long frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

MismatchLog::MismatchLog(Options options) : options_(std::move(options)) {
  if (options_.path.empty()) return;
  fd_ = ::open(options_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    open_errno_ = errno;
    spdlog::warn("shadow: cannot open mismatch log {}: {}; mismatches will only be counted", options_.path,
                 std::strerror(open_errno_));
    failure_logged_ = true;
  }
}

MismatchLog::~MismatchLog() {
  if (fd_ >= 0) ::close(fd_);
}

bool MismatchLog::reopen() {
  if (options_.path.empty()) return true;
  const int fd = ::open(options_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  const int err = errno;
  std::lock_guard lock(file_mutex_);
  if (fd < 0) {
    open_errno_ = err;
    return false;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  failure_logged_ = false;
  return true;
}

std::string MismatchLog::format(const Statement& st, const Outcome& primary, const Outcome& shadow,
                                const Comparison& c, std::chrono::system_clock::time_point now) const {
  std::string out;
  out.reserve(512 + st.text.size());
  out += "{\"time\":\"";
  out += iso8601_utc(now);
  out += "\",\"session\":";
  out += std::to_string(st.session);
  char fp[17];
  std::snprintf(fp, sizeof fp, "%016llx", static_cast<unsigned long long>(st.fingerprint));
  out += ",\"fingerprint\":\"";
  out += fp;
  out += "\",\"statement\":";
  append_json_string(out, options_.redact ? redact_statement(st.text) : std::string(st.text));
  if (!options_.redact) {
    out += ",\"parameters\":[";
    for (std::size_t i = 0; i < st.parameters.size(); ++i) {
      if (i) out.push_back(',');
      const Parameter& p = st.parameters[i];
      if (!p.value) {
        out += "null";
      } else if (p.binary) {
        std::string hex;
        append_hex_bytes(hex, *p.value);
        append_json_string(out, hex);
      } else {
        append_json_string(out, *p.value);
      }
    }
    out.push_back(']');
  }
  out += ",\"reason\":";
  append_json_string(out, c.reason);
  out += ",\"primary\":";
  append_outcome(out, primary);
  out += ",\"shadow\":";
  append_outcome(out, shadow);
  out += ",\"primary_row\":";
  append_optional(out, c.primary_row);
  out += ",\"shadow_row\":";
  append_optional(out, c.shadow_row);
  out.push_back('}');
  return out;
}

void MismatchLog::record(const Statement& st, const Outcome& primary, const Outcome& shadow, const Comparison& c,
                         std::chrono::system_clock::time_point now) {
  count(st.fingerprint, !c.match);
  if (!c.match) remember(st, c, now);
  if (c.match || options_.path.empty()) return;
  std::string line = format(st, primary, shadow, c, now);
  line.push_back('\n');
  write_line(line);
}

void MismatchLog::count(std::uint64_t fingerprint, bool mismatched) {
  std::lock_guard lock(counts_mutex_);
  auto add = [mismatched](Counts& c) {
    ++c.compared;
    if (mismatched) ++c.mismatched;
  };
  add(total_);
  auto it = counts_.find(fingerprint);
  if (it != counts_.end()) add(it->second);
  else if (counts_.size() < options_.max_fingerprints) add(counts_[fingerprint]);
  else add(other_);
}

bool MismatchLog::count_not_exact(std::uint64_t fingerprint) {
  std::lock_guard lock(counts_mutex_);
  ++total_.not_exact;
  auto it = counts_.find(fingerprint);
  if (it == counts_.end() && counts_.size() >= options_.max_fingerprints) {
    ++other_.not_exact;
    return false;
  }
  Counts& c = it != counts_.end() ? it->second : counts_[fingerprint];
  return ++c.not_exact == 1;
}

void MismatchLog::write_line(const std::string& line) {
  std::lock_guard lock(file_mutex_);
  if (fd_ < 0) {
    fail(open_errno_);
    return;
  }
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(errno);
      return;
    }
    done += static_cast<std::size_t>(n);
  }
  ++written_;
}

void MismatchLog::fail(int err) {
  ++failures_;
  if (failure_logged_) return;
  failure_logged_ = true;
  spdlog::warn("shadow: cannot write mismatch log {}: {}; further failures are only counted", options_.path,
               std::strerror(err));
}

// Only mismatches pay for this (a redaction and a copy), and only
// fingerprints that have a count of their own are kept.
void MismatchLog::remember(const Statement& st, const Comparison& c, std::chrono::system_clock::time_point now) {
  std::string text = redact_statement(st.text);
  if (text.size() > 500) text.resize(500);
  std::lock_guard lock(counts_mutex_);
  if (!counts_.contains(st.fingerprint)) return;
  Last& l = last_[st.fingerprint];
  l.statement = std::move(text);
  l.reason = c.reason;
  l.seen = now;
}

std::vector<MismatchLog::Mismatched> MismatchLog::mismatched() const {
  std::vector<Mismatched> out;
  {
    std::lock_guard lock(counts_mutex_);
    for (const auto& [fp, l] : last_) {
      auto it = counts_.find(fp);
      if (it == counts_.end()) continue;
      out.push_back({fp, it->second, l.statement, l.reason, l.seen});
    }
  }
  std::sort(out.begin(), out.end(), [](const Mismatched& a, const Mismatched& b) {
    return a.counts.mismatched != b.counts.mismatched ? a.counts.mismatched > b.counts.mismatched
                                                      : a.fingerprint < b.fingerprint;
  });
  return out;
}

MismatchLog::Snapshot MismatchLog::snapshot() const {
  Snapshot s;
  {
    std::lock_guard lock(counts_mutex_);
    s.by_fingerprint.assign(counts_.begin(), counts_.end());
    s.other = other_;
    s.total = total_;
  }
  std::sort(s.by_fingerprint.begin(), s.by_fingerprint.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return s;
}

std::uint64_t MismatchLog::lines_written() const {
  std::lock_guard lock(file_mutex_);
  return written_;
}

std::uint64_t MismatchLog::write_failures() const {
  std::lock_guard lock(file_mutex_);
  return failures_;
}

}  // namespace pgshift::shadow
