#include "verify/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace pgshift::verify {

namespace {

// 1234567 -> "1,234,567"
std::string grouped(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string duration_text(double s) {
  if (s < 60) return fmt::format("{:.1f} s", s);
  const auto total = static_cast<std::uint64_t>(s);
  if (total < 3600) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}h{:02}m", total / 3600, total / 60 % 60);
}

}  // namespace

std::string_view to_string(TableReport::Status s) noexcept {
  switch (s) {
    case TableReport::Status::match: return "match";
    case TableReport::Status::differs: return "differs";
    case TableReport::Status::only_on_primary: return "only on the primary";
    case TableReport::Status::only_on_target: return "only on the target";
    case TableReport::Status::failed: return "failed";
    case TableReport::Status::changing: return "changing";
  }
  return "?";
}

int Report::exit_code() const noexcept {
  if (!error.empty()) return 2;
  bool failed = false;
  for (const TableReport& t : tables) {
    if (t.differs() || t.status == TableReport::Status::changing) return 1;  // not proven equal
    failed = failed || t.status == TableReport::Status::failed;
  }
  return failed ? 2 : 0;
}

std::uint64_t Report::rows() const noexcept {
  std::uint64_t n = 0;
  for (const TableReport& t : tables) n += t.rows;
  return n;
}

void finish(TableReport& r, const TablePlan* plan) {
  if (r.status == TableReport::Status::failed || r.status == TableReport::Status::only_on_primary ||
      r.status == TableReport::Status::only_on_target)
    return;
  const std::uint64_t differing = r.mismatched + r.missing + r.extra;
  r.matching = r.rows > differing ? r.rows - differing : 0;
  const bool full_table_differs = r.full_table && r.chunks_differing > 0;
  r.status = differing || full_table_differs || !r.column_issues.empty() ? TableReport::Status::differs
                                                                          : TableReport::Status::match;
  if (r.full_table) r.matching = full_table_differs ? 0 : r.rows;
  if (full_table_differs && r.kept_changing && r.column_issues.empty()) r.status = TableReport::Status::changing;
  std::stable_sort(r.first.begin(), r.first.end(),
                   [](const Difference& a, const Difference& b) { return a.chunk < b.chunk; });
  r.first_text.clear();
  if (plan)
    for (const Difference& d : r.first) r.first_text.push_back(describe(*plan, d));
}

std::string render_text(const Report& r) {
  std::string out;
  out += fmt::format("pgshift verify: primary {} against target {}, {} table(s), {} mode{}\n", r.primary, r.target,
                     r.tables.size(), r.live ? "live" : "static",
                     r.row_hash.empty() ? std::string() : ", rows hashed with " + r.row_hash);
  if (!r.error.empty()) out += "verify could not run: " + r.error + "\n";

  std::vector<std::string> schema;
  for (const TableReport& t : r.tables) {
    if (t.status == TableReport::Status::only_on_primary) schema.push_back(t.table + ": only on the primary");
    if (t.status == TableReport::Status::only_on_target) schema.push_back(t.table + ": only on the target");
    for (const std::string& issue : t.column_issues) schema.push_back(t.table + ": " + issue);
  }
  if (!schema.empty()) {
    out += "\nSchema differences:\n";
    for (const std::string& line : schema) out += "  " + line + "\n";
  }

  const std::vector<std::string> head{"table", "status", "rows", "matching", "mismatched", "missing", "extra", "time"};
  std::vector<std::vector<std::string>> lines;
  for (const TableReport& t : r.tables) {
    if (t.status == TableReport::Status::only_on_primary || t.status == TableReport::Status::only_on_target) continue;
    std::string status(to_string(t.status));
    if (t.full_table && t.status != TableReport::Status::changing)
      status += t.chunks_differing ? " (full-table hash differs)" : " (full-table hash)";
    lines.push_back({t.table, status, grouped(t.rows), grouped(t.matching), grouped(t.mismatched), grouped(t.missing),
                     grouped(t.extra), duration_text(t.seconds)});
  }
  if (!lines.empty()) {
    std::vector<std::size_t> width(head.size());
    for (std::size_t c = 0; c < head.size(); ++c) {
      width[c] = head[c].size();
      for (const auto& l : lines) width[c] = std::max(width[c], l[c].size());
    }
    auto line = [&](const std::vector<std::string>& cells) {
      std::string s = " ";
      for (std::size_t c = 0; c < cells.size(); ++c) {
        const bool number = c >= 2;
        s += " " + (number ? fmt::format("{:>{}}", cells[c], width[c]) : fmt::format("{:<{}}", cells[c], width[c]));
      }
      while (!s.empty() && s.back() == ' ') s.pop_back();
      return s + "\n";
    };
    out += "\nRows:\n" + line(head);
    for (const auto& l : lines) out += line(l);
  }

  for (const TableReport& t : r.tables) {
    std::vector<std::string> notes;
    if (t.status == TableReport::Status::failed) notes.push_back("failed: " + t.error);
    if (t.status == TableReport::Status::changing)
      notes.push_back("no key, and written to all through the re-checks: its full-table hash never settled, so it "
                      "could not be compared (verify it while writes stop, or give it a primary key)");
    else if (t.full_table && t.chunks_differing)
      notes.push_back(fmt::format("full-table hash differs ({} rows on the primary, {} on the target); the table has "
                                  "no key, so the differing rows cannot be named",
                                  grouped(t.rows), grouped(t.target_rows)));
    for (const std::string& d : t.first_text) notes.push_back(d);
    const std::uint64_t differing = t.mismatched + t.missing + t.extra;
    if (differing > t.first_text.size() && !t.first_text.empty())
      notes.push_back(fmt::format("... and {} more", grouped(differing - t.first_text.size())));
    if (t.not_rechecked)
      notes.push_back(fmt::format("{} differing key(s) past the first {} were not re-checked", grouped(t.not_rechecked),
                                  grouped(differing - t.not_rechecked)));
    if (t.in_flight) notes.push_back(fmt::format("{} row(s) matched on re-check (writes in flight)", grouped(t.in_flight)));
    if (notes.empty()) continue;
    out += "\n" + t.table + ":\n";
    for (const std::string& n : notes) out += "  " + n + "\n";
  }

  const int code = r.exit_code();
  std::size_t differ = 0;
  for (const TableReport& t : r.tables) differ += t.differs() ? 1 : 0;
  out += fmt::format("\n{}: {} rows in {} table(s) in {}{} (exit {})\n",
                     code == 0 ? "OK" : code == 1 ? "DIFFERENT" : "ERROR", grouped(r.rows()), r.tables.size(),
                     duration_text(r.seconds),
                     code == 1 ? fmt::format(", {} table(s) differ", differ) : std::string(), code);
  return out;
}

std::string progress_text(const Progress& p, bool bar, std::size_t width) {
  const double rate = p.seconds > 0 ? static_cast<double>(p.rows_done) / p.seconds : 0;
  // The estimate is the planner's: the count may run past it.
  const std::uint64_t total = std::max(p.rows_estimate, p.rows_done);
  const double fraction = total ? static_cast<double>(p.rows_done) / static_cast<double>(total) : 0;
  std::string left = "?";
  if (rate > 0 && total) left = duration_text(static_cast<double>(total - p.rows_done) / rate);
  const std::string figures = fmt::format("{}/{} rows, {} rows/s, {} left", grouped(p.rows_done),
                                          p.rows_estimate ? grouped(total) : std::string("?"),
                                          grouped(static_cast<std::uint64_t>(rate)), left);
  if (!bar) return fmt::format("{}: {:.0f}% {}", p.table, fraction * 100, figures);
  std::string name = p.table;
  if (name.size() > 28) name = name.substr(0, 25) + "...";
  const std::size_t used = 30 + 6 + figures.size() + 3;
  const std::size_t cells = width > used + 10 ? std::min<std::size_t>(width - used, 40) : 10;
  const auto full = static_cast<std::size_t>(std::floor(fraction * static_cast<double>(cells)));
  return fmt::format("{:<28} [{}{}] {:>3.0f}% {}", name, std::string(full, '#'), std::string(cells - full, '.'),
                     fraction * 100, figures);
}

Pacer::Clock::duration Pacer::reserve(std::uint64_t rows, Clock::time_point now) {
  if (rate_ == 0) return Clock::duration::zero();
  const Clock::time_point start = std::max(now, next_);
  next_ = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                      static_cast<double>(rows) / static_cast<double>(rate_)));
  return start - now;
}

}  // namespace pgshift::verify
