// What verify found, per table, and how it is shown: the summary table, the
// exit code, progress lines and the rate limit's arithmetic. No I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "verify/diff.hpp"

namespace pgshift::verify {

// How a run goes; the command line and [verify] fill it.
struct Options {
  std::vector<std::string> tables;       // empty: every table
  unsigned jobs = 2;                     // chunks compared at once (each: one connection per side)
  std::size_t chunk_rows = 10000;        // rows per chunk
  std::uint64_t max_rows_per_second = 0; // read from each side, all jobs together; 0: unlimited
  bool live = true;                      // re-check differing rows (writes may be in flight)
  unsigned rechecks = 3;                 // rounds of re-checks in live mode
  std::chrono::milliseconds recheck_window{3000};  // how long one round watches the target
  std::size_t max_recheck_keys = 10000;  // differing keys kept per table (re-checked, reported)
  std::size_t shown_differences = 10;    // first differing keys per table in the summary
  std::string user;                      // client user whose [[primary.login]] / [[shadow.login]] is used
  std::string database;                  // the client's database name (the target's per [shadow] database)
};

struct TableReport {
  // changing: a table without a key whose full-table hash kept changing on
  // the primary all through the live re-checks, so it could not be compared.
  enum class Status : std::uint8_t { match, differs, only_on_primary, only_on_target, failed, changing };
  std::string table;
  Status status = Status::match;
  std::string mode;                        // "chunks by the primary key of the primary (aid)", "full-table hash (no key)"
  std::vector<std::string> column_issues;  // reported first
  std::vector<std::string> ignored;        // columns left out by ignore_columns
  std::uint64_t rows = 0;                  // keys seen on either side (full-table hash: the primary's rows)
  std::uint64_t target_rows = 0;           // full-table hash: the target's rows
  std::uint64_t matching = 0, mismatched = 0, missing = 0, extra = 0;
  std::uint64_t in_flight = 0;             // differed at first, then matched on re-check (writes in flight)
  std::uint64_t not_rechecked = 0;         // differing keys past max_recheck_keys, counted as found
  std::uint64_t chunks = 0, chunks_differing = 0;
  bool full_table = false;                 // no key: one hash for the whole table
  bool kept_changing = false;              // full-table hash: the primary's changed during the re-checks
  std::vector<Difference> first;           // the first differing keys, in key order
  std::vector<std::string> first_text;     // the same, described
  std::string error;                       // status failed: why
  double seconds = 0;

  bool differs() const noexcept {
    return status == Status::differs || status == Status::only_on_primary || status == Status::only_on_target;
  }
};
std::string_view to_string(TableReport::Status s) noexcept;

struct Report {
  std::string primary, target;  // "host:port/database"
  bool live = true;
  std::string row_hash;         // "hashtextextended" or "md5"
  std::vector<TableReport> tables;
  std::string error;            // set: verify could not run
  std::string started, finished;
  double seconds = 0;

  // 0: everything matches; 1: something differs; 2: verify could not run
  // (or could not finish a table, and nothing was found to differ).
  int exit_code() const noexcept;
  std::uint64_t rows() const noexcept;
};

// Sets status, matching and the described first keys once the counts are in.
void finish(TableReport& r, const TablePlan* plan);

// The human summary: schema differences first, then one line per table.
std::string render_text(const Report& r);

// One table's progress: a bar on a terminal, a plain line otherwise.
struct Progress {
  std::string table;
  std::uint64_t rows_done = 0;
  std::uint64_t rows_estimate = 0;  // 0: unknown
  double seconds = 0;
};
std::string progress_text(const Progress& p, bool bar, std::size_t width = 80);

// The rate limit: each chunk reserves its rows; the answer is how long to
// wait before reading them.
class Pacer {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Pacer(std::uint64_t rows_per_second) : rate_(rows_per_second) {}
  Clock::duration reserve(std::uint64_t rows, Clock::time_point now);

 private:
  std::uint64_t rate_;
  Clock::time_point next_{};
};

}  // namespace pgshift::verify
