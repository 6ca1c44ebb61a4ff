// What an admin command answers: a table of text values, which the SQL
// console sends as ordinary rows (and the HTTP API can send as JSON), or an
// error with its SQLSTATE.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pgshift::proxy::admin {

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
};

struct Answer {
  std::string tag;   // CommandComplete: "SHOW", "CUTOVER"...
  Table table;       // may have no columns (a command without rows)
  std::string sqlstate;  // set: the command failed, with `message`
  std::string message;
  std::vector<std::string> notices;  // sent before the rows (progress of a switch)

  bool ok() const noexcept { return sqlstate.empty(); }
  static Answer error(std::string sqlstate, std::string message) {
    Answer a;
    a.sqlstate = std::move(sqlstate);
    a.message = std::move(message);
    return a;
  }
};

// A two-column table of (name, value) pairs, the shape of most status answers.
inline Table pairs(std::vector<std::pair<std::string, std::string>> items,
                   std::vector<std::string> columns = {"item", "value"}) {
  Table t;
  t.columns = std::move(columns);
  for (auto& [k, v] : items) t.rows.push_back({std::move(k), std::move(v)});
  return t;
}

}  // namespace pgshift::proxy::admin
