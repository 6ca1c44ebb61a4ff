#include "verify/schema.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>

namespace pgshift::verify {

namespace {

bool to_int(const std::optional<std::string>& v, std::int64_t& out) {
  if (!v) return false;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  return ec == std::errc{} && end == v->data() + v->size();
}

// The application's name of a column of `table` on `side`: a contract-phase
// rule whose new name lives on that side maps `to` back to `from`.
std::string logical_name(const Rules& rules, const std::string& schema, const std::string& table,
                         const std::string& column, Side side) {
  const config::RenameSide here = side == Side::primary ? config::RenameSide::primary : config::RenameSide::shadow;
  for (const config::RenameRule& r : rules.renames) {
    if (r.schema != schema || r.table != table || r.expand) continue;
    if ((r.renamed_on == here || r.renamed_on == config::RenameSide::both) && r.to == column) return r.from;
  }
  return column;
}

bool ignored(const Rules& rules, const std::string& schema, const std::string& table, const ColumnPair& c) {
  for (const std::string& rule : rules.ignore_columns) {
    std::string t, col = rule;
    if (const auto dot = rule.rfind('.'); dot != std::string::npos) {
      t = rule.substr(0, dot);
      col = rule.substr(dot + 1);
    }
    if (!t.empty() && t != table && t != schema + "." + table) continue;
    if (col == c.name || col == c.primary.name || col == c.target.name) return true;
  }
  return false;
}

std::string key_text(const std::vector<std::string>& names) {
  std::string out = "(";
  for (const auto& n : names) out += (out.size() > 1 ? ", " : "") + n;
  return out + ")";
}

std::string key_source(char kind, Side side) {
  const char* what = kind == 'p' ? "primary key" : "replica identity index";
  return fmt::format("{} of the {}", what, side == Side::primary ? "primary" : "target");
}

TablePlan plan_table(const Table& p, const Table& t, const Rules& rules) {
  TablePlan plan;
  plan.schema = p.schema;
  plan.name = p.name;
  plan.estimated_rows = p.estimated_rows;
  std::map<std::string, const Column*> on_target;
  for (const Column& c : t.columns) on_target.emplace(logical_name(rules, t.schema, t.name, c.name, Side::target), &c);
  std::vector<std::string> seen;
  for (const Column& c : p.columns) {
    const std::string name = logical_name(rules, p.schema, p.name, c.name, Side::primary);
    seen.push_back(name);
    auto it = on_target.find(name);
    if (it == on_target.end()) {
      plan.column_issues.push_back(fmt::format("column {}: only on the primary", name));
      continue;
    }
    ColumnPair pair{name, c, *it->second};
    if (c.type != pair.target.type)
      plan.column_issues.push_back(
          fmt::format("column {}: type {} on the primary, {} on the target", name, c.type, pair.target.type));
    if (ignored(rules, p.schema, p.name, pair)) {
      plan.ignored.push_back(name);
      continue;
    }
    plan.columns.push_back(std::move(pair));
  }
  for (const Column& c : t.columns) {
    const std::string name = logical_name(rules, t.schema, t.name, c.name, Side::target);
    if (std::find(seen.begin(), seen.end(), name) == seen.end())
      plan.column_issues.push_back(fmt::format("column {}: only on the target", name));
  }

  // The key: the primary's, else the target's. Every key column must be
  // compared on both sides (an ignored key column would leave rows unnamed).
  auto key_of = [&](Side side) {
    std::vector<std::pair<int, std::size_t>> positions;  // (key position, index in plan.columns)
    for (std::size_t i = 0; i < plan.columns.size(); ++i) {
      const int pos = plan.column(i, side).key_position;
      if (pos > 0) positions.emplace_back(pos, i);
    }
    std::sort(positions.begin(), positions.end());
    std::vector<std::size_t> key;
    for (auto [pos, i] : positions) key.push_back(i);
    return key;
  };
  auto key_width = [](const Table& table) {
    return std::count_if(table.columns.begin(), table.columns.end(), [](const Column& c) { return c.key_position > 0; });
  };
  auto names = [&](const std::vector<std::size_t>& key) {
    std::vector<std::string> out;
    for (std::size_t i : key) out.push_back(plan.columns[i].name);
    return out;
  };
  const std::vector<std::size_t> pk = key_of(Side::primary), tk = key_of(Side::target);
  if (p.key_kind && static_cast<std::size_t>(key_width(p)) == pk.size()) {
    plan.key = pk;
    plan.key_source = key_source(p.key_kind, Side::primary);
  } else if (t.key_kind && static_cast<std::size_t>(key_width(t)) == tk.size()) {
    plan.key = tk;
    plan.key_source = key_source(t.key_kind, Side::target);
  }
  if (p.key_kind && t.key_kind && names(pk) != names(tk))
    plan.column_issues.push_back(fmt::format("key: {} on the primary, {} on the target", key_text(names(pk)),
                                             key_text(names(tk))));
  else if (p.key_kind && !t.key_kind)
    plan.column_issues.push_back(fmt::format("key: {} on the primary, none on the target", key_text(names(pk))));
  else if (!p.key_kind && t.key_kind)
    plan.column_issues.push_back(fmt::format("key: none on the primary, {} on the target", key_text(names(tk))));
  if ((p.key_kind || t.key_kind) && plan.key.empty())
    plan.column_issues.push_back("key: a key column is not compared on both sides: full-table hash");
  for (std::size_t i : plan.key) {
    if (plan.columns[i].primary.collation != plan.columns[i].target.collation) plan.binary_collation = true;
  }
  return plan;
}

}  // namespace

std::string qualify(const std::string& name) {
  return name.find('.') == std::string::npos ? "public." + name : name;
}

bool tables_from_catalog(const Rows& rows, std::vector<Table>& out, std::string& error) {
  out.clear();
  for (std::size_t n = 0; n < rows.size(); ++n) {
    const Row& r = rows[n];
    std::int64_t estimate = 0, oid = 0, position = 0;
    if (r.size() != 9 || !r[0] || !r[1] || !r[3] || !r[4] || !r[5] || !to_int(r[2], estimate) || !to_int(r[6], oid) ||
        (r[7] && !to_int(r[7], position))) {
      error = fmt::format("the catalog query returned an unexpected row #{}", n + 1);
      return false;
    }
    if (out.empty() || out.back().schema != *r[0] || out.back().name != *r[1]) {
      Table t;
      t.schema = *r[0];
      t.name = *r[1];
      t.estimated_rows = std::max<std::int64_t>(estimate, 0);
      t.key_kind = r[3]->empty() ? 0 : (*r[3])[0];
      out.push_back(std::move(t));
    }
    Column c;
    c.name = *r[4];
    c.type = *r[5];
    c.type_oid = static_cast<std::uint32_t>(oid);
    c.key_position = static_cast<int>(position);
    if (r[8] && c.key_position > 0) c.collation = *r[8];
    out.back().columns.push_back(std::move(c));
  }
  return true;
}

SchemaDiff diff_schemas(const std::vector<Table>& primary, const std::vector<Table>& target, const Rules& rules,
                        const std::vector<std::string>& only, std::vector<std::string>& unknown) {
  SchemaDiff d;
  std::vector<std::string> wanted;
  for (const std::string& name : only) wanted.push_back(qualify(name));
  auto chosen = [&](const std::string& name) {
    return wanted.empty() || std::find(wanted.begin(), wanted.end(), name) != wanted.end();
  };
  std::map<std::string, const Table*> p, t;
  for (const Table& x : primary) p.emplace(x.qualified(), &x);
  for (const Table& x : target) t.emplace(x.qualified(), &x);
  for (const auto& [name, table] : p) {
    if (!chosen(name)) continue;
    auto it = t.find(name);
    if (it == t.end()) d.only_on_primary.push_back(name);
    else d.tables.push_back(plan_table(*table, *it->second, rules));
  }
  for (const auto& [name, table] : t)
    if (chosen(name) && !p.count(name)) d.only_on_target.push_back(name);
  unknown.clear();
  for (const std::string& name : wanted)
    if (!p.count(name) && !t.count(name)) unknown.push_back(name);
  return d;
}

}  // namespace pgshift::verify
