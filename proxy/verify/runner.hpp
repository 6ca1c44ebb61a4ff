// `pgshift verify`, the I/O: logs in to both servers ([[primary.login]] and
// [[shadow.login]] credentials), reads both catalogs, and compares every
// table chunk by chunk (verify/ holds the model: the statements, the row
// comparison, the report).
//
// Per keyed table, a planner walks the primary's key `chunk_rows` at a time
// (index-only reads) and hands the ranges (lo, hi] to `jobs` workers. Each
// worker owns one connection per side; for each chunk both servers compute
// its hash at once, each in a REPEATABLE READ READ ONLY transaction of its
// own. Only when the hashes differ are the row hashes, then the rows of the
// differing keys, read in those same snapshots. Memory is bounded by a chunk's
// keys, whatever the table's size. In live mode the differing rows are then
// watched for a while (verify::InFlight) before they count as different.
//
// Runs on one executor; Status may be read from any thread.
#pragma once

#include <array>
#include <mutex>
#include <string>
#include <vector>

#include "proxy/asio.hpp"
#include "protocol/frame.hpp"
#include "config/config.hpp"
#include "verify/report.hpp"

namespace pgshift::proxy::verify {

namespace model = pgshift::verify;

struct Servers {
  const config::Config& cfg;
  std::array<ssl::context*, 2> tls{};  // by config::Side: primary, shadow
  protocol::Limits limits;
};

// What a run has done so far, for progress bars and SHOW VERIFY.
class Status {
 public:
  struct Snapshot {
    std::size_t tables = 0;                  // to compare, once the catalogs are read
    std::vector<model::TableReport> done;    // finished tables, in order
    std::vector<model::Progress> running;    // tables under way
    std::string phase;                       // "connecting", "reading catalogs", "comparing", "re-checking"...
  };
  Snapshot snapshot() const;

  void set_phase(std::string p);
  void set_tables(std::size_t n);
  void started(const std::string& table, std::uint64_t estimate);
  void add_rows(const std::string& table, std::uint64_t rows);
  void finished(const model::TableReport& r);

 private:
  struct Running {
    model::Progress p;
    std::chrono::steady_clock::time_point since;
  };
  mutable std::mutex mutex_;
  std::size_t tables_ = 0;
  std::vector<model::TableReport> done_;
  std::vector<Running> running_;
  std::string phase_ = "connecting";
};

awaitable<model::Report> run(const Servers& servers, const model::Options& options, Status& status);

// The default login user and database for a run: [verify] user, else
// [cutover] control_user, else "postgres"; the database defaults to the user's name.
void apply_defaults(const config::Config& cfg, model::Options& o);

}  // namespace pgshift::proxy::verify
