#include "shadow/capture.hpp"

#include <algorithm>

namespace pgshift::shadow {

bool parse_record(std::string_view s, std::vector<std::optional<std::string>>& fields) {
  fields.clear();
  if (s.size() < 2 || s.front() != '(' || s.back() != ')') return false;
  std::size_t i = 1;
  const std::size_t end = s.size() - 1;
  if (i == end) {  // "()": a row of no columns
    return true;
  }
  for (;;) {
    if (i < end && s[i] == '"') {
      std::string v;
      ++i;
      for (;;) {
        if (i >= end) return false;
        const char c = s[i];
        if (c == '\\') {
          if (i + 1 >= end) return false;
          v.push_back(s[i + 1]);
          i += 2;
        } else if (c == '"') {
          if (i + 1 < end && s[i + 1] == '"') {
            v.push_back('"');
            i += 2;
          } else {
            ++i;
            break;
          }
        } else {
          v.push_back(c);
          ++i;
        }
      }
      // record_out quotes whole values; anything before the next comma is part of it.
      while (i < end && s[i] != ',') v.push_back(s[i++]);
      fields.emplace_back(std::move(v));
    } else {
      const std::size_t start = i;
      while (i < end && s[i] != ',') {
        if (s[i] == '"' || s[i] == '\\') return false;  // record_out would have quoted it
        ++i;
      }
      if (i == start) fields.emplace_back(std::nullopt);
      else fields.emplace_back(std::string(s.substr(start, i - start)));
    }
    if (i == end) return true;
    ++i;  // the comma
  }
}

std::string sql_literal(std::string_view v) {
  const bool escape = v.find('\\') != std::string_view::npos;
  std::string out;
  out.reserve(v.size() + 3);
  out += escape ? "E'" : "'";
  for (char c : v) {
    if (c == '\'' || (escape && c == '\\')) out.push_back(c);
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string sql_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string_view no_rows_statement() noexcept { return "SELECT 0 WHERE false"; }

std::string failing_statement(std::string_view sqlstate) {
  std::string state(sqlstate);
  const bool valid = state.size() == 5 && std::all_of(state.begin(), state.end(), [](char c) {
                       return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
                     });
  if (!valid) state = "P0001";
  return "DO $pgshift$BEGIN RAISE EXCEPTION USING ERRCODE = '" + state +
         "', MESSAGE = 'pgshift: this statement failed on the primary'; END$pgshift$";
}

namespace {

// The primary's value of a column that owns a sequence, written so that the
// shadow's sequence also moves past it: explicit values leave a sequence
// where it was, and a later statement that is not exact (COPY, say) would take
// the same numbers from it again and collide. greatest(): transactions apply
// in commit order, which need not be the order their numbers were drawn in.
// setval() is not rolled back with the shadow's transaction; a sequence ahead
// is harmless (the cutover sets every sequence past the primary's anyway).
// `seq` is the sequence's qualified name, quoted (once per column, not per row).
std::string advancing(const std::string& seq, const std::string& v) {
  const std::string n = sql_literal(v) + "::bigint";
  return "(" + n + " + 0 * pg_catalog.setval(" + sql_literal(seq) + ", GREATEST(" + n +
         ", (SELECT last_value FROM " + seq + "))))";
}

}  // namespace

bool capture_statement(const rewrite::Capture& c, const std::vector<std::string>& rows, std::string& sql,
                       std::string& error) {
  sql.clear();
  if (!c.table) {
    error = "no table for a captured statement";
    return false;
  }
  const rewrite::CatalogTable& t = *c.table;
  if (rows.empty()) {
    sql = no_rows_statement();
    return true;
  }
  const std::string table = sql_identifier(t.schema) + "." + sql_identifier(t.name);
  std::vector<std::optional<std::string>> fields;
  auto row_fields = [&](const std::string& row) {
    if (!parse_record(row, fields)) {
      error = "a captured row of " + t.name + " does not parse";
      return false;
    }
    if (fields.empty() && t.columns.size() == 1) fields.emplace_back(std::nullopt);  // "()": one NULL
    if (fields.size() != t.columns.size()) {
      error = "a captured row of " + t.name + " has " + std::to_string(fields.size()) + " columns, the catalog " +
              std::to_string(t.columns.size()) + " (the table changed since the catalog was read)";
      return false;
    }
    return true;
  };
  auto value = [](const std::optional<std::string>& v) { return v ? sql_literal(*v) : std::string("NULL"); };

  if (c.op == rewrite::Capture::Op::remove) {
    if (t.primary_key.empty()) {
      error = "no primary key to delete by";
      return false;
    }
    sql = "DELETE FROM " + table + " WHERE (";
    for (std::size_t k = 0; k < t.primary_key.size(); ++k)
      sql += (k ? ", " : "") + sql_identifier(t.columns[t.primary_key[k]].name);
    sql += ") IN (";
    for (std::size_t r = 0; r < rows.size(); ++r) {
      if (!row_fields(rows[r])) return false;
      sql += r ? ", (" : "(";
      for (std::size_t k = 0; k < t.primary_key.size(); ++k) sql += (k ? ", " : "") + value(fields[t.primary_key[k]]);
      sql += ")";
    }
    sql += ")";
    return true;
  }

  // INSERT of every column but the generated ones, with the primary's values
  // for identity columns too.
  std::vector<std::size_t> cols;
  std::vector<std::string> sequences;  // per entry of cols: the quoted sequence it owns, or empty
  bool system_value = false;
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    const rewrite::CatalogColumn& col = t.columns[i];
    if (col.generated) continue;
    cols.push_back(i);
    sequences.push_back(col.sequence.empty() ? std::string()
                                             : sql_identifier(col.sequence_schema) + "." + sql_identifier(col.sequence));
    system_value = system_value || col.identity == 'a';
  }
  sql = "INSERT INTO " + table + " (";
  for (std::size_t k = 0; k < cols.size(); ++k) sql += (k ? ", " : "") + sql_identifier(t.columns[cols[k]].name);
  sql += system_value ? ") OVERRIDING SYSTEM VALUE VALUES " : ") VALUES ";
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (!row_fields(rows[r])) return false;
    sql += r ? ", (" : "(";
    for (std::size_t k = 0; k < cols.size(); ++k) {
      const std::optional<std::string>& v = fields[cols[k]];
      sql += k ? ", " : "";
      sql += sequences[k].empty() || !v ? value(v) : advancing(sequences[k], *v);
    }
    sql += ")";
  }
  if (c.op == rewrite::Capture::Op::upsert) {
    if (t.primary_key.empty()) {
      error = "no primary key to update by";
      return false;
    }
    sql += " ON CONFLICT (";
    for (std::size_t k = 0; k < t.primary_key.size(); ++k)
      sql += (k ? ", " : "") + sql_identifier(t.columns[t.primary_key[k]].name);
    sql += ") DO ";
    std::string set;
    for (std::size_t i : cols) {
      if (std::find(t.primary_key.begin(), t.primary_key.end(), i) != t.primary_key.end()) continue;
      if (t.columns[i].identity == 'a') continue;  // only DEFAULT may be assigned to it
      const std::string name = sql_identifier(t.columns[i].name);
      set += (set.empty() ? "" : ", ") + name + " = EXCLUDED." + name;
    }
    sql += set.empty() ? "NOTHING" : "UPDATE SET " + set;
  }
  return true;
}

}  // namespace pgshift::shadow
