#include "rewrite/catalog.hpp"

#include <algorithm>

namespace pgshift::rewrite {

namespace {

std::string key_of(std::string_view schema, std::string_view name) {
  std::string k;
  k.reserve(schema.size() + name.size() + 1);
  k.append(schema).push_back('\0');
  k.append(name);
  return k;
}

const std::string& text(const std::vector<std::optional<std::string>>& row, std::size_t i) {
  static const std::string empty;
  return i < row.size() && row[i] ? *row[i] : empty;
}

}  // namespace

int CatalogTable::column(std::string_view n) const noexcept {
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (columns[i].name == n) return static_cast<int>(i);
  return -1;
}

std::string_view catalog_query() noexcept {
  // Schema-qualified type and function names: the loader runs it with
  // search_path = pg_catalog, so format_type() and pg_get_expr() qualify
  // everything else. Relations of pg_catalog, information_schema, TOAST and
  // temporary schemas are left out.
  return R"sql(
WITH rel AS (
  SELECT c.oid, n.nspname, c.relname, c.relkind, c.relreplident
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
)
SELECT 't'::text, nspname::text, relname::text, relkind::text, relreplident::text,
       NULL::text, NULL::text, NULL::text, NULL::text
  FROM rel WHERE relkind <> 'S'
UNION ALL
SELECT 'c', r.nspname, r.relname, a.attnum::text, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
       pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text
  FROM rel r JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE r.relkind <> 'S' AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'k', r.nspname, r.relname, k.ord::text, a.attname, NULL, NULL, NULL, NULL
  FROM rel r JOIN pg_catalog.pg_constraint con ON con.conrelid = r.oid AND con.contype = 'p'
  CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum = k.attnum
UNION ALL
SELECT 'g', r.nspname, r.relname, NULL, NULL, NULL, NULL, NULL, NULL
  FROM rel r WHERE r.relkind <> 'S' AND EXISTS (
    SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = r.oid AND NOT t.tgisinternal AND t.tgenabled <> 'D')
UNION ALL
SELECT 's', r.nspname, r.relname, on_.nspname, oc.relname, oa.attname, NULL, NULL, NULL
  FROM rel r
  LEFT JOIN pg_catalog.pg_depend dep ON dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND dep.objid = r.oid AND dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND dep.deptype IN ('a', 'i')
  LEFT JOIN pg_catalog.pg_class oc ON oc.oid = dep.refobjid
  LEFT JOIN pg_catalog.pg_namespace on_ ON on_.oid = oc.relnamespace
  LEFT JOIN pg_catalog.pg_attribute oa ON oa.attrelid = dep.refobjid AND oa.attnum = dep.refobjsubid
  WHERE r.relkind = 'S'
UNION ALL
SELECT DISTINCT 'f', p.proname::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE p.provolatile = 'v' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'p', COALESCE(ro.rolname::text, ''), CASE WHEN s.setdatabase = 0 THEN 'f' ELSE 't' END,
       substr(cfg, 13), NULL, NULL, NULL, NULL, NULL
  FROM pg_catalog.pg_db_role_setting s LEFT JOIN pg_catalog.pg_roles ro ON ro.oid = s.setrole
  CROSS JOIN LATERAL unnest(s.setconfig) AS cfg
  WHERE cfg LIKE 'search\_path=%'
    AND s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
UNION ALL
SELECT 'd', CASE WHEN source IN ('default', 'configuration file', 'command line', 'environment variable')
                 THEN reset_val ELSE boot_val END, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM pg_catalog.pg_settings WHERE name = 'search_path'
)sql";
}

std::shared_ptr<const Catalog> Catalog::build(const Rows& rows, std::uint64_t generation) {
  auto c = std::make_shared<Catalog>();
  c->generation_ = generation;
  // Functions first: column defaults are judged with them.
  for (const auto& row : rows)
    if (text(row, 0) == "f") c->volatile_functions_.push_back(text(row, 1));
  std::sort(c->volatile_functions_.begin(), c->volatile_functions_.end());
  for (const auto& row : rows) {
    const std::string& kind = text(row, 0);
    if (kind == "t") {
      CatalogTable t;
      t.schema = text(row, 1);
      t.name = text(row, 2);
      t.kind = text(row, 3).empty() ? 'r' : text(row, 3)[0];
      t.replica_identity = text(row, 4).empty() ? 'd' : text(row, 4)[0];
      c->tables_.emplace(key_of(t.schema, t.name), std::move(t));
    } else if (kind == "p") {
      c->path_settings_.push_back({text(row, 1), text(row, 2) == "t", text(row, 3)});
    } else if (kind == "d") {
      c->server_path_ = text(row, 1);
    } else if (kind == "s") {
      c->sequences_.push_back({text(row, 1), text(row, 2), text(row, 3), text(row, 4), text(row, 5)});
    }
  }
  // Columns in attnum order, then the primary keys (by name: positions of
  // dropped columns are gone), then triggers.
  struct Col {
    long attnum;
    CatalogColumn column;
  };
  std::map<std::string, std::vector<Col>, std::less<>> columns;
  std::map<std::string, std::vector<std::pair<long, std::string>>, std::less<>> keys;
  for (const auto& row : rows) {
    const std::string& kind = text(row, 0);
    if (kind == "c") {
      CatalogColumn col;
      col.name = text(row, 4);
      col.type = text(row, 5);
      col.default_expr = text(row, 6);
      col.identity = text(row, 7).empty() ? 0 : text(row, 7)[0];
      col.generated = !text(row, 8).empty() && text(row, 8)[0] == 's';
      if (!col.default_expr.empty() && !col.generated) col.volatile_default = volatile_expression(col.default_expr, c.get());
      columns[key_of(text(row, 1), text(row, 2))].push_back({std::strtol(text(row, 3).c_str(), nullptr, 10), std::move(col)});
    } else if (kind == "k") {
      keys[key_of(text(row, 1), text(row, 2))].emplace_back(std::strtol(text(row, 3).c_str(), nullptr, 10), text(row, 4));
    } else if (kind == "g") {
      if (auto it = c->tables_.find(key_of(text(row, 1), text(row, 2))); it != c->tables_.end()) it->second.triggers = true;
    }
  }
  for (auto& [key, cols] : columns) {
    auto it = c->tables_.find(key);
    if (it == c->tables_.end()) continue;
    std::sort(cols.begin(), cols.end(), [](const Col& a, const Col& b) { return a.attnum < b.attnum; });
    for (Col& col : cols) it->second.columns.push_back(std::move(col.column));
    c->columns_ += cols.size();
  }
  // The sequences owned by columns (identity and serial), on their columns.
  for (const CatalogSequence& seq : c->sequences_) {
    if (seq.owner_column.empty()) continue;
    auto it = c->tables_.find(key_of(seq.owner_schema, seq.owner_table));
    if (it == c->tables_.end()) continue;
    if (const int i = it->second.column(seq.owner_column); i >= 0) {
      it->second.columns[static_cast<std::size_t>(i)].sequence_schema = seq.schema;
      it->second.columns[static_cast<std::size_t>(i)].sequence = seq.name;
    }
  }
  for (auto& [key, list] : keys) {
    auto it = c->tables_.find(key);
    if (it == c->tables_.end()) continue;
    std::sort(list.begin(), list.end());
    for (const auto& [ord, name] : list) {
      const int i = it->second.column(name);
      if (i < 0) {
        it->second.primary_key.clear();
        break;
      }
      it->second.primary_key.push_back(static_cast<std::size_t>(i));
    }
  }
  return c;
}

std::shared_ptr<const Catalog> Catalog::make(std::vector<CatalogTable> tables, std::uint64_t generation) {
  auto c = std::make_shared<Catalog>();
  c->generation_ = generation;
  for (CatalogTable& t : tables) {
    c->columns_ += t.columns.size();
    std::string k = key_of(t.schema, t.name);
    c->tables_.emplace(std::move(k), std::move(t));
  }
  return c;
}

const CatalogTable* Catalog::find(std::string_view schema, std::string_view name) const noexcept {
  auto it = tables_.find(key_of(schema, name));
  return it == tables_.end() ? nullptr : &it->second;
}

const CatalogTable* Catalog::resolve(std::string_view name, const std::vector<std::string>& path) const noexcept {
  for (const std::string& schema : path) {
    if (schema == "pg_catalog" || schema == "pg_temp") continue;
    if (const CatalogTable* t = find(schema, name)) return t;
  }
  return nullptr;
}

std::shared_ptr<const CatalogTable> Catalog::share(const CatalogTable* t,
                                                   const std::shared_ptr<const Catalog>& self) const {
  if (!t) return nullptr;
  return std::shared_ptr<const CatalogTable>(self, t);
}

bool Catalog::volatile_function(std::string_view name) const {
  return std::binary_search(volatile_functions_.begin(), volatile_functions_.end(), name,
                            [](std::string_view a, std::string_view b) { return a < b; });
}

std::string Catalog::default_search_path(std::string_view role) const {
  // PostgreSQL's order: this role in this database, this role anywhere,
  // every role in this database, the server's setting.
  const RoleSetting* best = nullptr;
  auto rank = [&](const RoleSetting& s) {
    if (!s.role.empty() && s.role != role) return 0;
    if (!s.role.empty() && s.this_database) return 4;
    if (!s.role.empty()) return 3;
    if (s.this_database) return 2;
    return 0;  // every role in every database: not a PostgreSQL setting
  };
  int best_rank = 0;
  for (const RoleSetting& s : path_settings_) {
    const int r = rank(s);
    if (r > best_rank) {
      best_rank = r;
      best = &s;
    }
  }
  return best ? best->value : server_path_;
}

std::vector<const CatalogTable*> Catalog::tables() const {
  std::vector<const CatalogTable*> out;
  out.reserve(tables_.size());
  for (const auto& [k, t] : tables_) out.push_back(&t);
  return out;
}

std::vector<std::string> parse_search_path(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  auto space = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  };
  for (;;) {
    space();
    if (i >= s.size()) break;
    std::string name;
    if (s[i] == '"') {
      ++i;
      for (; i < s.size(); ++i) {
        if (s[i] == '"') {
          if (i + 1 < s.size() && s[i + 1] == '"') {
            name.push_back('"');
            ++i;
            continue;
          }
          ++i;
          break;
        }
        name.push_back(s[i]);
      }
    } else {
      for (; i < s.size() && s[i] != ','; ++i) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        name.push_back(c);
      }
      while (!name.empty() && (name.back() == ' ' || name.back() == '\t' || name.back() == '\n' || name.back() == '\r'))
        name.pop_back();
    }
    out.push_back(std::move(name));
    space();
    if (i < s.size() && s[i] == ',') ++i;
    else if (i < s.size()) break;  // junk after a quoted name: PostgreSQL refuses the value
  }
  return out;
}

}  // namespace pgshift::rewrite
