#include "proxy/admin/command.hpp"

#include <cctype>
#include <charconv>

namespace pgshift::proxy::admin {

namespace {

std::vector<std::string> words(std::string_view sql) {
  std::vector<std::string> out;
  std::string w;
  for (char c : sql) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == ';') {
      if (!w.empty()) out.push_back(std::move(w));
      w.clear();
      continue;
    }
    w.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (!w.empty()) out.push_back(std::move(w));
  return out;
}

Command unknown(std::string why) {
  Command c;
  c.kind = Command::Kind::unknown;
  c.what = std::move(why);
  return c;
}

Command of(Command::Kind k) {
  Command c;
  c.kind = k;
  return c;
}

Command cutover(const std::vector<std::string>& w) {
  using K = Command::Kind;
  if (w.size() == 1) return of(K::cutover);
  if (w.size() == 3 && w[1] == "dry" && w[2] == "run") return of(K::dry_run);
  if (w.size() == 2 && w[1] == "abort") return of(K::abort);
  if (w.size() == 2 && w[1] == "rollback") return of(K::rollback);
  if (w.size() == 2 && w[1] == "complete") return of(K::complete);
  if (w.size() == 3 && w[1] == "reads") {
    Command c = of(K::reads);
    const std::string& n = w[2];
    auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), c.number);
    if (ec != std::errc{} || end != n.data() + n.size() || c.number < 0 || c.number > 100)
      return unknown("CUTOVER READS takes a percentage from 0 to 100");
    return c;
  }
  return unknown("expected CUTOVER, CUTOVER DRY RUN, CUTOVER READS <percent>, CUTOVER ABORT, CUTOVER ROLLBACK or "
                 "CUTOVER COMPLETE");
}

// VERIFY, or VERIFY a, b c: names separated by commas and/or spaces.
Command verify(const std::vector<std::string>& w) {
  Command c = of(Command::Kind::verify);
  for (std::size_t i = 1; i < w.size(); ++i) {
    std::string_view rest = w[i];
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      if (comma != 0) c.tables.emplace_back(rest.substr(0, comma));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return c;
}

}  // namespace

Command parse_command(std::string_view sql) {
  using K = Command::Kind;
  const std::vector<std::string> w = words(sql);
  if (w.empty()) return of(K::empty);
  if (w[0] == "show") {
    if (w.size() != 2) return unknown("expected SHOW <what>");
    Command c = of(K::show);
    c.what = w[1];
    return c;
  }
  if (w[0] == "cutover") return cutover(w);
  if (w.size() == 1 && w[0] == "pause") return of(K::pause);
  if (w.size() == 1 && w[0] == "resume") return of(K::resume);
  if (w.size() == 2 && w[0] == "clear" && w[1] == "diverged") return of(K::clear_diverged);
  if (w.size() == 1 && w[0] == "reload") return of(K::reload);
  if (w[0] == "kill") {
    Command c = of(K::kill_session);
    if (w.size() != 3 || w[1] != "session") return unknown("expected KILL SESSION <id> (the id SHOW SESSIONS gives)");
    const std::string& n = w[2];
    auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), c.number);
    if (ec != std::errc{} || end != n.data() + n.size() || c.number <= 0)
      return unknown("KILL SESSION takes the id SHOW SESSIONS gives");
    return c;
  }
  if (w.size() == 2 && w[0] == "refresh" && w[1] == "catalog") return of(K::refresh_catalog);
  if (w.size() == 2 && w[0] == "sync" && w[1] == "start") return of(K::sync_start);
  if (w[0] == "verify") return verify(w);
  return unknown("unknown command");
}

std::vector<std::string_view> split_statements(std::string_view sql) {
  std::vector<std::string_view> out;
  while (!sql.empty()) {
    const std::size_t semi = sql.find(';');
    std::string_view part = sql.substr(0, semi);
    if (part.find_first_not_of(" \t\r\n") != std::string_view::npos) out.push_back(part);
    if (semi == std::string_view::npos) break;
    sql.remove_prefix(semi + 1);
  }
  return out;
}

}  // namespace pgshift::proxy::admin
