// The mismatch log: one JSON line per statement whose shadow result differed
// from the primary's, and per-fingerprint counts of statements compared and
// mismatched. Thread-safe; never throws at its callers for I/O trouble.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shadow/compare.hpp"

namespace pgshift::shadow {

// One Bind parameter value as the client sent it.
struct Parameter {
  std::optional<std::string_view> value;  // nullopt is NULL
  bool binary = false;                    // written as "\x" hex when binary
};

// The statement a comparison was about.
struct Statement {
  std::uint64_t session = 0;
  std::uint64_t fingerprint = 0;
  std::string_view text;
  std::span<const Parameter> parameters;
};

// `text` with every literal (strings, numbers, bit strings, dollar-quoted
// strings) replaced by `?` and comments dropped; tokens are separated by one
// space where the original had any gap. Text that does not lex is cut at the
// point it stops lexing, followed by `?`.
std::string redact_statement(std::string_view text);

// Appends `s` as a JSON string literal: quotes, backslashes and control
// characters escaped; bytes that are not valid UTF-8 become U+FFFD.
void append_json_string(std::string& out, std::string_view s);

// "2026-11-21T07:00:00.123Z"
std::string iso8601_utc(std::chrono::system_clock::time_point t);

class MismatchLog {
 public:
  using Statement = ::pgshift::shadow::Statement;  // also reachable as MismatchLog::Statement

  struct Options {
    std::string path;  // appended to; empty: count only, write nothing
    bool redact = true;  // literals in statements replaced, parameters left out
    std::size_t max_fingerprints = 10000;  // beyond it, counts go to Snapshot::other
  };

  struct Counts {
    std::uint64_t compared = 0;
    std::uint64_t mismatched = 0;
    std::uint64_t not_exact = 0;  // mirrored, but the shadow may end up other than the primary
  };
  struct Snapshot {
    std::vector<std::pair<std::uint64_t, Counts>> by_fingerprint;  // sorted by fingerprint
    Counts other;  // fingerprints past max_fingerprints
    Counts total;
  };
  // A fingerprint that mismatched at least once, for SHOW MISMATCHES: its
  // counts and its last mismatch (the statement always redacted).
  struct Mismatched {
    std::uint64_t fingerprint = 0;
    Counts counts;
    std::string statement;  // redacted, at most 500 bytes
    std::string reason;
    std::chrono::system_clock::time_point last_seen;
  };

  explicit MismatchLog(Options options);
  ~MismatchLog();
  MismatchLog(const MismatchLog&) = delete;
  MismatchLog& operator=(const MismatchLog&) = delete;

  // Call once per compared statement: counts it, and writes its line when
  // `c` is a mismatch.
  void record(const Statement& st, const Outcome& primary, const Outcome& shadow, const Comparison& c,
              std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

  // The JSON line record() writes for a mismatch, without the newline.
  std::string format(const Statement& st, const Outcome& primary, const Outcome& shadow, const Comparison& c,
                     std::chrono::system_clock::time_point now) const;

  // Counts a statement that is not mirrored exactly; true the first time
  // for its fingerprint (so the caller logs it once).
  bool count_not_exact(std::uint64_t fingerprint);

  Snapshot snapshot() const;
  // Every fingerprint that mismatched, most mismatches first.
  std::vector<Mismatched> mismatched() const;
  std::uint64_t lines_written() const;
  std::uint64_t write_failures() const;  // lines lost (the file could not be opened or written)

  // Opens the file again (after log rotation); false when it cannot be opened.
  bool reopen();

 private:
  void count(std::uint64_t fingerprint, bool mismatched);
  void remember(const Statement& st, const Comparison& c, std::chrono::system_clock::time_point now);
  void write_line(const std::string& line);
  void fail(int err);

  const Options options_;

  mutable std::mutex counts_mutex_;
  std::unordered_map<std::uint64_t, Counts> counts_;
  Counts other_, total_;
  struct Last {
    std::string statement, reason;
    std::chrono::system_clock::time_point seen;
  };
  std::unordered_map<std::uint64_t, Last> last_;  // fingerprints counted in counts_ that mismatched

  mutable std::mutex file_mutex_;
  int fd_ = -1;
  int open_errno_ = 0;
  std::uint64_t written_ = 0;
  std::uint64_t failures_ = 0;
  bool failure_logged_ = false;
};

}  // namespace pgshift::shadow
