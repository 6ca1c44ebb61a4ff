#include "rewrite/resolve.hpp"

#include <algorithm>
#include <optional>

#include "rewrite/capture.hpp"

namespace pgshift::rewrite {
namespace {

using pg::quoted;
using pg::str;

// ---- rules and spelling ----------------------------------------------------

bool plain_identifier(const std::string& name) {
  if (name.empty() || !(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '$'))
      return false;
  std::vector<pg::Token> t;  // reserved and type/function-name keywords must be quoted
  return pg::scan(name, t) && t.size() == 1 && t[0].column_name;
}

bool all_upper(std::string_view t) {
  bool letter = false;
  for (char c : t) {
    if (std::islower(static_cast<unsigned char>(c))) return false;
    letter |= std::isupper(static_cast<unsigned char>(c)) != 0;
  }
  return letter;
}

// The new name, written in the style of the token it replaces: quoted stays
// quoted, an all-upper-case name stays upper case (so the edit reverses exactly).
std::string spell(std::string_view original, const std::string& name) {
  if (original.starts_with('"') || !plain_identifier(name)) return quoted(name);
  if (!all_upper(original)) return name;
  std::string up = name;
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return up;
}

const Renamed* find_renamed(const std::vector<Renamed>& list, std::string_view name) {
  for (const Renamed& r : list)
    if (r.from == name) return &r;
  return nullptr;
}

// The rename a reference to `name` takes: none for expand-phase columns,
// which still exist under their old name.
const Renamed* renamed_read(const std::vector<Renamed>& list, std::string_view name) {
  const Renamed* r = find_renamed(list, name);
  return r && !r->expand ? r : nullptr;
}

// ---- scopes ----------------------------------------------------------------

// What a FROM item, CTE or subquery offers to name resolution.
struct Shape {
  std::vector<Renamed> renamed;     // columns it exposes under a new name
  bool opaque = true;               // may have columns not listed in `known`
  std::vector<std::string> known;   // its column names, as the application knows them
  bool has(std::string_view name) const {
    return find_renamed(renamed, name) || std::find(known.begin(), known.end(), name) != known.end();
  }
};

struct Source {
  std::string refname;
  std::string schema, table;  // set for base tables
  Shape shape;
};

struct Cte {
  std::string name;
  Shape shape;
};

struct CteEnv {
  std::vector<Cte> ctes;
  const CteEnv* outer = nullptr;
  const Cte* find(std::string_view name) const {
    for (const CteEnv* e = this; e; e = e->outer)
      for (auto it = e->ctes.rbegin(); it != e->ctes.rend(); ++it)
        if (it->name == name) return &*it;
    return nullptr;
  }
};

struct Level {
  std::vector<Source> sources;
  const Level* outer = nullptr;
  const CteEnv* env = nullptr;
};

constexpr int max_walk_depth = 2000;

class Resolver {
 public:
  Resolver(const RuleSet& rules, std::string_view sql, const std::vector<pg::Token>& tokens, int end,
           Resolution& out, const Catalog* catalog, const std::vector<std::string>* path)
      : rules_(rules),
        sql_(sql),
        tokens_(tokens),
        end_(std::min(end, static_cast<int>(tokens.size()))),
        out_(out),
        catalog_(catalog),
        path_(path) {}

  void statement(const PgQuery__Node* n) {
    switch (n->node_case) {
      case PG_QUERY__NODE__NODE_SELECT_STMT: case PG_QUERY__NODE__NODE_INSERT_STMT:
      case PG_QUERY__NODE__NODE_UPDATE_STMT: case PG_QUERY__NODE__NODE_DELETE_STMT:
      case PG_QUERY__NODE__NODE_MERGE_STMT:
        query(n, nullptr, nullptr, true);
        break;
      case PG_QUERY__NODE__NODE_EXPLAIN_STMT: statement_inner(n->explain_stmt->query); break;
      case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT: statement_inner(n->create_table_as_stmt->query); break;
      case PG_QUERY__NODE__NODE_PREPARE_STMT:
        named(NamedOutputs::Op::prepare, n->prepare_stmt->name, n->prepare_stmt->query);
        break;
      case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
        named(NamedOutputs::Op::declare, n->declare_cursor_stmt->portalname, n->declare_cursor_stmt->query);
        break;
      case PG_QUERY__NODE__NODE_EXECUTE_STMT: named(NamedOutputs::Op::execute, n->execute_stmt->name, nullptr); break;
      case PG_QUERY__NODE__NODE_FETCH_STMT:
        if (!n->fetch_stmt->ismove) named(NamedOutputs::Op::fetch, n->fetch_stmt->portalname, nullptr);
        break;
      case PG_QUERY__NODE__NODE_DEALLOCATE_STMT: named(NamedOutputs::Op::deallocate, n->deallocate_stmt->name, nullptr); break;
      case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT: named(NamedOutputs::Op::close, n->close_portal_stmt->portalname, nullptr); break;
      case PG_QUERY__NODE__NODE_COPY_STMT: copy(n->copy_stmt); break;
      default: break;  // DDL and utility statements are never rewritten
    }
  }

  // PREPARE and DECLARE keep their query's output renames under a name that
  // EXECUTE and FETCH (or a protocol Describe of the cursor) use later.
  void named(NamedOutputs::Op op, const char* name, const PgQuery__Node* query_node) {
    out_.named.op = op;
    out_.named.name = str(name);
    if (!query_node) return;
    std::vector<OutputRename> mine;
    std::swap(mine, out_.outputs);
    query(query_node, nullptr, nullptr, true);
    std::swap(mine, out_.outputs);
    out_.named.outputs = std::move(mine);
  }

 private:
  // A statement nested in a utility statement: rewritten, but its output names
  // do not reach a RowDescription of this statement.
  void statement_inner(const PgQuery__Node* n) {
    if (!n) return;
    if (n->node_case == PG_QUERY__NODE__NODE_EXPLAIN_STMT || n->node_case == PG_QUERY__NODE__NODE_PREPARE_STMT)
      return statement_inner(n->node_case == PG_QUERY__NODE__NODE_EXPLAIN_STMT ? n->explain_stmt->query
                                                                              : n->prepare_stmt->query);
    query(n, nullptr, nullptr, false);
  }

  void warn(std::string why) {
    if (out_.warning.empty()) out_.warning = std::move(why);
  }

  // ---- queries ----

  Shape query(const PgQuery__Node* n, const Level* outer, const CteEnv* env, bool top) {
    if (!n) return {};
    switch (n->node_case) {
      case PG_QUERY__NODE__NODE_SELECT_STMT: return select(n->select_stmt, outer, env, top);
      case PG_QUERY__NODE__NODE_INSERT_STMT: return insert(n->insert_stmt, outer, env, top);
      case PG_QUERY__NODE__NODE_UPDATE_STMT: return update(n->update_stmt, outer, env, top);
      case PG_QUERY__NODE__NODE_DELETE_STMT: return remove(n->delete_stmt, outer, env, top);
      case PG_QUERY__NODE__NODE_MERGE_STMT: return merge(n->merge_stmt, outer, env);
      default: {
        Level l{{}, outer, env};
        walk(&n->base, l);
        return {};
      }
    }
  }

  void with(const PgQuery__WithClause* w, const Level* outer, CteEnv& env) {
    if (!w) return;
    for (std::size_t i = 0; i < w->n_ctes; ++i) {
      const PgQuery__CommonTableExpr* c = w->ctes[i]->common_table_expr;
      if (!c) continue;
      Cte cte{str(c->ctename).data(), {}};
      if (w->recursive) {
        // Visible to itself, with the columns of its non-recursive arm.
        const PgQuery__Node* q = c->ctequery;
        if (q && q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT &&
            q->select_stmt->op != PG_QUERY__SET_OPERATION__SETOP_NONE && q->select_stmt->larg)
          cte.shape = select(q->select_stmt->larg, outer, &env, false);
        if (c->n_aliascolnames > 0) cte.shape = named_columns(c->aliascolnames, c->n_aliascolnames);
        env.ctes.push_back(cte);
      }
      Shape s = query(c->ctequery, outer, &env, false);
      if (c->n_aliascolnames > 0) s = aliased(s, c->aliascolnames, c->n_aliascolnames);
      if (w->recursive) env.ctes.pop_back();
      env.ctes.push_back({cte.name, std::move(s)});
    }
  }

  // Columns renamed by an alias list. One that names fewer columns than the
  // query has leaves the rest with their names; which ones those are is not
  // tracked, so with a renamed column among them the statement is left alone.
  Shape aliased(const Shape& query_shape, PgQuery__Node* const* names, std::size_t n) {
    if (!query_shape.renamed.empty() && (query_shape.opaque || n < query_shape.renamed.size() + query_shape.known.size()))
      warn("a column alias list names only some columns of a query with a renamed column");
    return named_columns(names, n);
  }

  static Shape named_columns(PgQuery__Node* const* names, std::size_t n) {
    Shape s;
    s.opaque = false;
    for (std::size_t i = 0; i < n; ++i)
      if (names[i]->node_case == PG_QUERY__NODE__NODE_STRING) s.known.emplace_back(str(names[i]->string->sval));
    return s;
  }

  Shape select(const PgQuery__SelectStmt* s, const Level* outer, const CteEnv* parent_env, bool top) {
    if (s->into_clause) top = false;  // SELECT INTO returns no rows
    CteEnv env{{}, parent_env};
    with(s->with_clause, outer, env);
    if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE && s->larg) {
      Shape left = select(s->larg, outer, &env, top);
      if (s->rarg) select(s->rarg, outer, &env, false);
      // ORDER BY of a set operation names its output columns.
      Level result{{Source{"", "", "", left}}, outer, &env};
      for (std::size_t i = 0; i < s->n_sort_clause; ++i) walk(&s->sort_clause[i]->base, result);
      walk_opt(s->limit_count, result);
      walk_opt(s->limit_offset, result);
      return left;
    }
    Level l{{}, outer, &env};
    for (std::size_t i = 0; i < s->n_from_clause; ++i) from_item(s->from_clause[i], l);
    for (std::size_t i = 0; i < s->n_values_lists; ++i) walk(&s->values_lists[i]->base, l);
    Shape shape = targets(s->target_list, s->n_target_list, l, top);
    walk_opt(s->where_clause, l);
    for (std::size_t i = 0; i < s->n_group_clause; ++i) walk(&s->group_clause[i]->base, l);
    walk_opt(s->having_clause, l);
    for (std::size_t i = 0; i < s->n_window_clause; ++i) walk(&s->window_clause[i]->base, l);
    for (std::size_t i = 0; i < s->n_distinct_clause; ++i) order_item(s->distinct_clause[i], shape, l);
    for (std::size_t i = 0; i < s->n_sort_clause; ++i) order_item(s->sort_clause[i], shape, l);
    walk_opt(s->limit_count, l);
    walk_opt(s->limit_offset, l);
    return shape;
  }

  // ORDER BY and DISTINCT ON: a bare name that is an output column's name
  // (an alias, or the name PostgreSQL gives a target) names that output
  // column; anything else is an expression over the FROM items. An output
  // column that carries a renamed column now has the new name, which is
  // also what the input column is called, so resolving it as input is right.
  void order_item(const PgQuery__Node* item, const Shape& outputs, const Level& l) {
    if (!item) return;
    const PgQuery__Node* e = item->node_case == PG_QUERY__NODE__NODE_SORT_BY ? item->sort_by->node : item;
    if (e && e->node_case == PG_QUERY__NODE__NODE_COLUMN_REF && e->column_ref->n_fields == 1 &&
        e->column_ref->fields[0]->node_case == PG_QUERY__NODE__NODE_STRING) {
      const std::string_view name = str(e->column_ref->fields[0]->string->sval);
      if (std::find(outputs.known.begin(), outputs.known.end(), name) != outputs.known.end()) return;
    }
    walk(&item->base, l);
  }

  Shape insert(const PgQuery__InsertStmt* ins, const Level* outer, const CteEnv* parent_env, bool top) {
    CteEnv env{{}, parent_env};
    with(ins->with_clause, outer, env);
    Level target{{table_source(ins->relation, nullptr)}, outer, &env};
    const std::vector<Renamed>& renames = target.sources[0].shape.renamed;
    for (std::size_t i = 0; i < ins->n_cols; ++i) set_target_name(ins->cols[i]->res_target, renames);
    dual_write_insert(ins, renames);
    query(ins->select_stmt, outer, &env, false);
    if (const PgQuery__OnConflictClause* oc = ins->on_conflict_clause) {
      if (oc->infer) {
        conflict_target(oc->infer, renames, target);
        walk_opt(oc->infer->where_clause, target);
      }
      Level upd = target;
      upd.sources.push_back(Source{"excluded", "", "", target.sources[0].shape});
      for (std::size_t i = 0; i < oc->n_target_list; ++i) {
        assignment(oc->target_list[i], renames, upd);
        dual_write_set(oc->target_list[i], renames, {PG_QUERY__TOKEN__WHERE, PG_QUERY__TOKEN__RETURNING});
      }
      walk_opt(oc->where_clause, upd);
    }
    return targets(ins->returning_list, ins->n_returning_list, target, top);
  }

  Shape update(const PgQuery__UpdateStmt* u, const Level* outer, const CteEnv* parent_env, bool top) {
    CteEnv env{{}, parent_env};
    with(u->with_clause, outer, env);
    Level l{{table_source(u->relation, nullptr)}, outer, &env};
    const std::vector<Renamed> renames = l.sources[0].shape.renamed;
    for (std::size_t i = 0; i < u->n_from_clause; ++i) from_item(u->from_clause[i], l);
    for (std::size_t i = 0; i < u->n_target_list; ++i) {
      assignment(u->target_list[i], renames, l);
      dual_write_set(u->target_list[i], renames,
                     {PG_QUERY__TOKEN__FROM, PG_QUERY__TOKEN__WHERE, PG_QUERY__TOKEN__RETURNING});
    }
    walk_opt(u->where_clause, l);
    return targets(u->returning_list, u->n_returning_list, l, top);
  }

  Shape remove(const PgQuery__DeleteStmt* d, const Level* outer, const CteEnv* parent_env, bool top) {
    CteEnv env{{}, parent_env};
    with(d->with_clause, outer, env);
    Level l{{table_source(d->relation, nullptr)}, outer, &env};
    for (std::size_t i = 0; i < d->n_using_clause; ++i) from_item(d->using_clause[i], l);
    walk_opt(d->where_clause, l);
    return targets(d->returning_list, d->n_returning_list, l, top);
  }

  Shape merge(const PgQuery__MergeStmt* m, const Level* outer, const CteEnv* parent_env) {
    CteEnv env{{}, parent_env};
    with(m->with_clause, outer, env);
    Level l{{table_source(m->relation, nullptr)}, outer, &env};
    const std::vector<Renamed> renames = l.sources[0].shape.renamed;
    if (m->source_relation) from_item(m->source_relation, l);
    walk_opt(m->join_condition, l);
    for (std::size_t i = 0; i < m->n_merge_when_clauses; ++i) {
      const PgQuery__MergeWhenClause* w = m->merge_when_clauses[i]->merge_when_clause;
      if (!w) continue;
      walk_opt(w->condition, l);
      for (std::size_t j = 0; j < w->n_target_list; ++j) {
        assignment(w->target_list[j], renames, l);
        const PgQuery__ResTarget* t = w->target_list[j]->res_target;
        if (t && t->name && find_renamed(renames, t->name) && find_renamed(renames, t->name)->expand)
          warn("MERGE into an expand-phase column is not dual-written");
      }
      for (std::size_t j = 0; j < w->n_values; ++j) walk(&w->values[j]->base, l);
    }
    return {};
  }

  void copy(const PgQuery__CopyStmt* c) {
    if (c->query) query(c->query, nullptr, nullptr, false);
    if (!c->relation) return;
    if (c->where_clause) {
      Level l{{table_source(c->relation, nullptr)}, nullptr, nullptr};
      walk(&c->where_clause->base, l);
    }
    const std::vector<Renamed>* renames = rules_.find(schema_of(c->relation), str(c->relation->relname));
    // The catalog knows COPY's columns, but a COPY without a list sends
    // them by position: nothing to rename either way.
    if (!renames) return;
    if (c->is_from && std::any_of(renames->begin(), renames->end(), [](const Renamed& r) { return r.expand; }))
      warn("COPY into a table in the expand phase is not dual-written");
    if (c->n_attlist == 0) return;
    int i = pg::token_at(tokens_, static_cast<std::uint32_t>(c->relation->location));
    // Skip the (possibly qualified) table name to the column list.
    while (i >= 0 && i + 1 < static_cast<int>(tokens_.size()) && tokens_[i + 1].kind == '.') i += 2;
    if (i < 0) return warn("could not locate the COPY column list");
    name_list(i + 1, c->attlist, c->n_attlist, *renames);
  }

  // ---- FROM items ----

  // The schema of a table: as written, else the first of the search_path
  // that has it (with a catalog), else public.
  std::string schema_of(const PgQuery__RangeVar* rv) const {
    if (rv->schemaname && *rv->schemaname) return std::string(rv->schemaname);
    if (const CatalogTable* t = lookup_table(catalog_, path_, rv)) return t->schema;
    return "public";
  }

  // The columns of a catalog table, with its rename rules: what a rule
  // renames is known by its old name (and the new name works too). With
  // `skip` column aliases, the first columns are known by those instead.
  static Shape catalog_shape(const CatalogTable& t, const std::vector<Renamed>* renames, std::size_t skip = 0,
                             PgQuery__Node* const* aliases = nullptr) {
    Shape s;
    s.opaque = false;
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      if (i < skip) {
        if (aliases[i]->node_case == PG_QUERY__NODE__NODE_STRING) s.known.emplace_back(str(aliases[i]->string->sval));
      } else {
        s.known.push_back(t.columns[i].name);
      }
    }
    if (!renames) return s;
    for (const Renamed& r : *renames) {
      // The column the rule's old name stands for: `to` (contract) or `from` (expand).
      const int at = t.column(r.expand ? r.from : r.to);
      if (at < 0 || static_cast<std::size_t>(at) >= skip) s.renamed.push_back(r);
    }
    return s;
  }

  // A FROM item or DML target; `env` is null for DML targets, which are
  // always tables (a CTE cannot be updated).
  Source table_source(const PgQuery__RangeVar* rv, const CteEnv* env) {
    Source s;
    if (!rv) return s;
    const std::string_view rel = str(rv->relname);
    s.refname = rv->alias ? std::string(str(rv->alias->aliasname)) : std::string(rel);
    const Cte* cte = (!rv->schemaname || !*rv->schemaname) && env ? env->find(rel) : nullptr;
    const CatalogTable* known = nullptr;
    if (cte) {
      s.shape = cte->shape;
    } else {
      known = lookup_table(catalog_, path_, rv);
      s.schema = known ? known->schema : schema_of(rv);
      s.table = rel;
      const std::vector<Renamed>* r = rules_.find(s.schema, s.table);
      if (known) s.shape = catalog_shape(*known, r);
      else if (r) s.shape.renamed = *r;
    }
    if (known && rv->alias && rv->alias->n_colnames > 0 && rv->alias->n_colnames <= known->columns.size()) {
      // FROM t AS a(x, y): with the catalog the aliased columns are known by position.
      s.shape = catalog_shape(*known, rules_.find(s.schema, s.table), rv->alias->n_colnames, rv->alias->colnames);
    } else if (rv->alias && rv->alias->n_colnames > 0) {
      // FROM t AS a(x, y): the leading columns take new names; keep it simple and exact.
      if (!s.shape.renamed.empty()) warn("a renamed table is given column aliases");
      s.shape = named_columns(rv->alias->colnames, rv->alias->n_colnames);
      s.shape.opaque = true;
    }
    return s;
  }

  void from_item(const PgQuery__Node* n, Level& l) {
    switch (n->node_case) {
      case PG_QUERY__NODE__NODE_RANGE_VAR:
        l.sources.push_back(table_source(n->range_var, l.env));
        break;
      case PG_QUERY__NODE__NODE_RANGE_SUBSELECT: {
        const PgQuery__RangeSubselect* rs = n->range_subselect;
        Shape s = query(rs->subquery, rs->lateral ? &l : l.outer, l.env, false);
        if (rs->alias && rs->alias->n_colnames > 0) s = aliased(s, rs->alias->colnames, rs->alias->n_colnames);
        l.sources.push_back({rs->alias ? std::string(str(rs->alias->aliasname)) : std::string(), "", "", std::move(s)});
        break;
      }
      case PG_QUERY__NODE__NODE_JOIN_EXPR: {
        const PgQuery__JoinExpr* j = n->join_expr;
        const std::size_t first = l.sources.size();
        if (j->larg) from_item(j->larg, l);
        if (j->rarg) from_item(j->rarg, l);
        join_columns(j, l, first);
        if (j->quals) {  // ON sees this join's inputs (and outer levels), not its siblings
          Level on{{l.sources.begin() + static_cast<std::ptrdiff_t>(first), l.sources.end()}, l.outer, l.env};
          walk(&j->quals->base, on);
        }
        if (j->alias) collapse_join(l, first, str(j->alias->aliasname));
        break;
      }
      case PG_QUERY__NODE__NODE_RANGE_FUNCTION: {
        const PgQuery__RangeFunction* f = n->range_function;
        walk(&n->base, l);
        l.sources.push_back({f->alias ? std::string(str(f->alias->aliasname)) : std::string(), "", "", {}});
        break;
      }
      case PG_QUERY__NODE__NODE_RANGE_TABLE_SAMPLE:
        if (n->range_table_sample->relation) from_item(n->range_table_sample->relation, l);
        for (std::size_t i = 0; i < n->range_table_sample->n_args; ++i) walk(&n->range_table_sample->args[i]->base, l);
        break;
      default:
        walk(&n->base, l);
        l.sources.push_back({});
    }
  }

  // (a JOIN b) AS j: a and b are no longer visible by name; j has their columns.
  static void collapse_join(Level& l, std::size_t first, std::string_view alias) {
    Source j{std::string(alias), "", "", {}};
    j.shape.opaque = false;
    for (std::size_t i = first; i < l.sources.size(); ++i) {
      const Shape& s = l.sources[i].shape;
      j.shape.renamed.insert(j.shape.renamed.end(), s.renamed.begin(), s.renamed.end());
      j.shape.known.insert(j.shape.known.end(), s.known.begin(), s.known.end());
      j.shape.opaque = j.shape.opaque || s.opaque;
    }
    l.sources.resize(first);
    l.sources.push_back(std::move(j));
  }

  // USING and NATURAL merge same-named columns of both sides: with a renamed
  // column among them, the rewritten join would pair different columns.
  void join_columns(const PgQuery__JoinExpr* j, const Level& l, std::size_t first) {
    for (std::size_t s = first; s < l.sources.size(); ++s) {
      const Shape& shape = l.sources[s].shape;
      if (j->is_natural && !shape.renamed.empty()) return warn("NATURAL JOIN over a table with a renamed column");
      for (std::size_t u = 0; u < j->n_using_clause; ++u)
        if (j->using_clause[u]->node_case == PG_QUERY__NODE__NODE_STRING &&
            find_renamed(shape.renamed, str(j->using_clause[u]->string->sval)))
          return warn("JOIN USING a renamed column");
    }
  }

  // ---- target lists ----

  // Output names of a SELECT list or RETURNING list; at the top level they
  // become RowDescription renames.
  Shape targets(PgQuery__Node* const* list, std::size_t n, const Level& l, bool top) {
    Shape shape;
    shape.opaque = false;
    bool after_star = false;
    for (std::size_t i = 0; i < n; ++i) {
      const PgQuery__ResTarget* t = list[i]->res_target;
      if (!t || !t->val) continue;
      if (const PgQuery__ColumnRef* star = star_ref(t->val)) {
        expand_star(star, l, top, shape);
        after_star = true;
        continue;
      }
      std::string name = "?column?";
      const std::optional<std::string> renamed = named_target(t->val, l, name);
      if (t->name && *t->name) {
        shape.known.emplace_back(t->name);
        continue;
      }
      if (renamed) {
        shape.renamed.push_back({name, *renamed});
        if (top) out_.outputs.push_back({after_star ? -1 : static_cast<int>(i), *renamed, name});
      } else {
        shape.known.push_back(name);
      }
    }
    return shape;
  }

  static const PgQuery__ColumnRef* star_ref(const PgQuery__Node* v) {
    if (v->node_case != PG_QUERY__NODE__NODE_COLUMN_REF) return nullptr;
    const PgQuery__ColumnRef* c = v->column_ref;
    return c->n_fields && c->fields[c->n_fields - 1]->node_case == PG_QUERY__NODE__NODE_A_STAR ? c : nullptr;
  }

  // Resolves a target expression and works out the name PostgreSQL gives its
  // output column (FigureColname): a column's name, also through casts,
  // COLLATE, CASE's ELSE branch, a field of a whole-row reference and a
  // scalar subquery. Returns the new name when that column was renamed.
  std::optional<std::string> named_target(const PgQuery__Node* v, const Level& l, std::string& name) {
    if (!v) return std::nullopt;
    switch (v->node_case) {
      case PG_QUERY__NODE__NODE_COLUMN_REF: {
        const PgQuery__ColumnRef* c = v->column_ref;
        const PgQuery__Node* last = c->fields[c->n_fields - 1];
        if (last->node_case == PG_QUERY__NODE__NODE_STRING) name = str(last->string->sval);
        if (const std::string* r = column_ref(c, l)) return *r;
        return std::nullopt;
      }
      case PG_QUERY__NODE__NODE_TYPE_CAST:
        if (v->type_cast->type_name) walk(&v->type_cast->type_name->base, l);
        return named_target(v->type_cast->arg, l, name);
      case PG_QUERY__NODE__NODE_COLLATE_CLAUSE:
        return named_target(v->collate_clause->arg, l, name);
      case PG_QUERY__NODE__NODE_CASE_EXPR: {
        walk(&v->base, l);  // edits are idempotent: the ELSE branch is resolved again below
        std::string inner = "case";
        std::optional<std::string> r = v->case_expr->defresult ? named_target(v->case_expr->defresult, l, inner)
                                                                 : std::nullopt;
        name = inner == "?column?" ? "case" : inner;
        return r;
      }
      case PG_QUERY__NODE__NODE_A_INDIRECTION: {
        const PgQuery__AIndirection* ind = v->a_indirection;
        const PgQuery__Node* last = ind->n_indirection ? ind->indirection[ind->n_indirection - 1] : nullptr;
        if (last && last->node_case == PG_QUERY__NODE__NODE_STRING) name = str(last->string->sval);
        if (const std::string* r = row_field(ind, l)) return ind->n_indirection == 1 ? std::optional(*r) : std::nullopt;
        walk(&v->base, l);
        return std::nullopt;
      }
      case PG_QUERY__NODE__NODE_SUB_LINK:
        if (v->sub_link->sub_link_type == PG_QUERY__SUB_LINK_TYPE__EXPR_SUBLINK && !v->sub_link->testexpr) {
          const Shape inner = query(v->sub_link->subselect, &l, l.env, false);
          if (inner.renamed.size() == 1 && inner.known.empty()) {
            name = inner.renamed[0].from;
            return inner.renamed[0].to;
          }
          if (inner.known.size() == 1 && inner.renamed.empty()) name = inner.known[0];
          return std::nullopt;
        }
        break;
      case PG_QUERY__NODE__NODE_FUNC_CALL:
        name = pg::last_name(v->func_call->funcname, v->func_call->n_funcname);
        break;
      default:
        break;
    }
    walk(&v->base, l);
    return std::nullopt;
  }

  void expand_star(const PgQuery__ColumnRef* star, const Level& l, bool top, Shape& shape) {
    auto add = [&](const Source& s) {
      for (const Renamed& r : s.shape.renamed) {
        if (r.expand) continue;
        shape.renamed.push_back(r);
        if (top) out_.outputs.push_back({-1, r.to, r.from});
      }
      shape.opaque = shape.opaque || s.shape.opaque;
      shape.known.insert(shape.known.end(), s.shape.known.begin(), s.shape.known.end());
    };
    if (star->n_fields == 1) {
      for (const Source& s : l.sources) add(s);
      return;
    }
    if (const Source* s = qualified_source(star->fields, star->n_fields - 1, l)) add(*s);
  }

  // UPDATE/INSERT ... ON CONFLICT/MERGE: `col = expr` names a column of the target table.
  void assignment(const PgQuery__Node* n, const std::vector<Renamed>& renames, const Level& l) {
    const PgQuery__ResTarget* t = n->res_target;
    if (!t) return;
    set_target_name(t, renames);
    if (t->val) walk(&t->val->base, l);
    for (std::size_t i = 0; i < t->n_indirection; ++i) walk(&t->indirection[i]->base, l);
  }

  void set_target_name(const PgQuery__ResTarget* t, const std::vector<Renamed>& renames) {
    if (!t || !t->name) return;
    if (const Renamed* r = renamed_read(renames, t->name)) edit_token(pg::token_at(tokens_, t->location), r->from, r->to);
  }

  // ON CONFLICT (a, lower(b)): plain names have no location of their own.
  void conflict_target(const PgQuery__InferClause* infer, const std::vector<Renamed>& renames, const Level& l) {
    for (std::size_t i = 0; i < infer->n_index_elems; ++i) {
      const PgQuery__IndexElem* e = infer->index_elems[i]->index_elem;
      if (e && e->expr) walk(&e->expr->base, l);
    }
    std::vector<const char*> names;
    bool any = false;
    for (std::size_t i = 0; i < infer->n_index_elems; ++i) {
      const PgQuery__IndexElem* e = infer->index_elems[i]->index_elem;
      names.push_back(e && e->name && *e->name ? e->name : nullptr);
      any = any || (names.back() && renamed_read(renames, names.back()));
    }
    if (!any) return;
    const int open = pg::token_at(tokens_, static_cast<std::uint32_t>(infer->location));
    if (open < 0 || tokens_[open].kind != '(') return warn("could not locate the ON CONFLICT target");
    list_elements(open, [&](std::size_t k, int token) {
      if (k < names.size() && names[k])
        if (const Renamed* r = renamed_read(renames, names[k])) edit_token(token, r->from, r->to);
    });
  }

  // COPY t (a, b): the names follow the '(' at token `open`.
  void name_list(int open, PgQuery__Node* const* names, std::size_t n, const std::vector<Renamed>& renames) {
    if (open >= static_cast<int>(tokens_.size()) || tokens_[open].kind != '(') return warn("could not locate a column list");
    list_elements(open, [&](std::size_t k, int token) {
      if (k < n && names[k]->node_case == PG_QUERY__NODE__NODE_STRING)
        if (const Renamed* r = renamed_read(renames, str(names[k]->string->sval))) edit_token(token, r->from, r->to);
    });
  }

  // Calls f(element index, first token of the element) for a parenthesised list.
  template <class F>
  void list_elements(int open, F&& f) {
    int depth = 0;
    std::size_t element = 0;
    bool at_start = false;
    for (std::size_t i = static_cast<std::size_t>(open); i < tokens_.size(); ++i) {
      const int k = tokens_[i].kind;
      if (at_start) {
        f(element, static_cast<int>(i));
        at_start = false;
      }
      if (k == '(') {
        if (++depth == 1) at_start = true;
      } else if (k == ')') {
        if (--depth == 0) return;
      } else if (k == ',' && depth == 1) {
        ++element;
        at_start = true;
      }
    }
  }

  // ---- expand phase: writes that set the old column also set the new one ----

  // INSERT INTO t (a, old) VALUES (x, y)  ->  INSERT INTO t (a, old, new) VALUES (x, y, y)
  // INSERT INTO t (a, old) SELECT ...      ->  ... SELECT s.*, s.c2 FROM (SELECT ...) AS s(c1, c2)
  void dual_write_insert(const PgQuery__InsertStmt* ins, const std::vector<Renamed>& renames) {
    if (std::none_of(renames.begin(), renames.end(), [](const Renamed& r) { return r.expand; })) return;
    if (ins->n_cols == 0) {
      if (ins->select_stmt) warn("INSERT without a column list into a table in the expand phase");
      return;
    }
    std::vector<std::pair<std::size_t, const Renamed*>> dual;
    for (std::size_t k = 0; k < ins->n_cols; ++k) {
      const PgQuery__ResTarget* t = ins->cols[k]->res_target;
      if (const Renamed* r = t && t->name ? find_renamed(renames, t->name) : nullptr; r && r->expand) dual.emplace_back(k, r);
    }
    if (dual.empty() || !ins->select_stmt) return;
    int open = pg::token_at(tokens_, static_cast<std::uint32_t>(ins->relation->location));
    while (open >= 0 && open < end_ && tokens_[open].kind != '(') ++open;
    const Ranges cols = list_ranges(open);
    if (cols.items.size() != ins->n_cols) return warn("could not locate the INSERT column list");
    TokenEdit& list_end = edit_at(cols.items.back().second);
    for (const auto& [k, r] : dual)
      list_end.append.push_back({", " + spell(tokens_[cols.items[k].first].text(sql_), r->to)});

    int src = cols.close + 1;
    if (src < end_ && tokens_[src].kind == PG_QUERY__TOKEN__OVERRIDING) src += 3;  // OVERRIDING ... VALUE
    if (src < end_ && tokens_[src].kind == PG_QUERY__TOKEN__VALUES) return dual_write_values(src + 1, ins->n_cols, dual);
    const int last = scan_to(src, {PG_QUERY__TOKEN__ON, PG_QUERY__TOKEN__RETURNING}, false) - 1;
    if (last < src) return warn("could not locate the INSERT's query");
    Piece head{"SELECT pgshift_src.*"};
    for (const auto& [k, r] : dual) head.text += ", pgshift_src.c" + std::to_string(k + 1);
    head.text += " FROM (";
    edit_at(src).prepend.push_back(std::move(head));
    Piece tail{") AS pgshift_src("};
    for (std::size_t k = 0; k < ins->n_cols; ++k) tail.text += (k ? ", c" : "c") + std::to_string(k + 1);
    tail.text += ")";
    edit_at(last).append.push_back(std::move(tail));
  }

  void dual_write_values(int row, std::size_t columns, const std::vector<std::pair<std::size_t, const Renamed*>>& dual) {
    while (row < end_ && tokens_[row].kind == '(') {
      const Ranges values = list_ranges(row);
      if (values.items.size() != columns) return warn("a VALUES row does not match the INSERT column list");
      TokenEdit& e = edit_at(values.items.back().second);
      for (const auto& d : dual) {
        e.append.push_back({", "});
        e.append.push_back({"", values.items[d.first].first, values.items[d.first].second + 1});
      }
      row = values.close + 1;
      if (row >= end_ || tokens_[row].kind != ',') return;
      ++row;
    }
  }

  // SET old = expr  ->  SET old = expr, new = expr (both see the row before the update)
  void dual_write_set(const PgQuery__Node* n, const std::vector<Renamed>& renames, std::initializer_list<int> stops) {
    const PgQuery__ResTarget* t = n->res_target;
    const Renamed* r = t && t->name ? find_renamed(renames, t->name) : nullptr;
    if (!r || !r->expand) return;
    if (t->val && t->val->node_case == PG_QUERY__NODE__NODE_MULTI_ASSIGN_REF)
      return warn("a multiple-column assignment sets an expand-phase column");
    const int name = pg::token_at(tokens_, static_cast<std::uint32_t>(t->location));
    const int eq = name < 0 ? -1 : scan_to(name, {'='}, false);
    if (eq < 0 || eq >= end_) return warn("could not locate an assignment");
    const int last = scan_to(eq + 1, stops, true) - 1;
    if (last <= eq) return warn("could not locate an assignment");
    TokenEdit& e = edit_at(last);
    e.append.push_back({", " + spell(tokens_[name].text(sql_), r->to) + " = "});
    e.append.push_back({"", eq + 1, last + 1});
  }

  struct Ranges {
    std::vector<std::pair<int, int>> items;  // first and last token of each element
    int close = -1;                          // the closing ')'
  };

  Ranges list_ranges(int open) const {
    Ranges r;
    if (open < 0 || open >= end_ || tokens_[open].kind != '(') return r;
    int depth = 0;
    for (int i = open; i < end_; ++i) {
      const int k = tokens_[i].kind;
      if (k == '(' && ++depth == 1) {
        r.items.push_back({i + 1, i});
        continue;
      }
      if (k == ')' && --depth == 0) {
        r.close = i;
        if (!r.items.empty() && r.items.back().second < r.items.back().first) r.items.pop_back();  // ()
        return r;
      }
      if (k == ',' && depth == 1) {
        r.items.push_back({i + 1, i});
        continue;
      }
      r.items.back().second = i;
    }
    return {};
  }

  // The first token at parenthesis depth 0 from `from` that is one of `stops`
  // (ON only when CONFLICT follows), or a ',' when `comma`; end_ if none.
  int scan_to(int from, std::initializer_list<int> stops, bool comma) const {
    int depth = 0;
    for (int i = from; i < end_; ++i) {
      const int k = tokens_[i].kind;
      if (k == '(' || k == '[') ++depth;
      else if (k == ')' || k == ']') --depth;
      if (depth < 0) return i;
      if (depth != 0) continue;
      if (comma && k == ',') return i;
      if (k == ';') return i;
      for (int stop : stops) {
        if (k != stop) continue;
        if (k == PG_QUERY__TOKEN__ON && !(i + 1 < end_ && tokens_[i + 1].kind == PG_QUERY__TOKEN__CONFLICT)) continue;
        return i;
      }
    }
    return end_;
  }

  // (u).email: a field of a whole-row reference to a FROM item. Returns the
  // new name when it was renamed (null otherwise, or when it is not that shape).
  const std::string* row_field(const PgQuery__AIndirection* ind, const Level& l) {
    if (!ind->arg || ind->arg->node_case != PG_QUERY__NODE__NODE_COLUMN_REF || ind->n_indirection == 0 ||
        ind->indirection[0]->node_case != PG_QUERY__NODE__NODE_STRING)
      return nullptr;
    const PgQuery__ColumnRef* row = ind->arg->column_ref;
    if (row->n_fields != 1 || row->fields[0]->node_case != PG_QUERY__NODE__NODE_STRING) return nullptr;
    const Source* s = qualified_source(row->fields, 1, l);
    if (!s) return nullptr;
    const std::string_view field = str(ind->indirection[0]->string->sval);
    const Renamed* r = renamed_read(s->shape.renamed, field);
    if (!r) return nullptr;
    // Tokens: u ) . field
    const int u = pg::token_at(tokens_, static_cast<std::uint32_t>(row->location));
    if (u < 0 || u + 3 >= end_ || tokens_[u + 1].kind != ')' || tokens_[u + 2].kind != '.') {
      warn("could not locate a field of a whole-row reference");
      return nullptr;
    }
    edit_token(u + 3, r->from, r->to);
    return &r->to;
  }

  // ---- column references ----

  // Edits a column reference that names a renamed column; returns the new name.
  const std::string* column_ref(const PgQuery__ColumnRef* c, const Level& l) {
    const std::size_t n = c->n_fields;
    if (n == 0 || c->fields[n - 1]->node_case != PG_QUERY__NODE__NODE_STRING) return nullptr;
    const std::string_view name = str(c->fields[n - 1]->string->sval);
    const Renamed* r = nullptr;
    if (n == 1) {
      r = unqualified(name, l);
    } else if (const Source* s = qualified_source(c->fields, n - 1, l)) {
      r = find_renamed(s->shape.renamed, name);
    }
    if (!r || r->expand) return nullptr;
    const int first = pg::token_at(tokens_, static_cast<std::uint32_t>(c->location));
    if (first < 0) {
      warn("could not locate a column reference");
      return nullptr;
    }
    // Tokens of a.b.c: name, '.', name, '.', name.
    for (std::size_t k = 0; k + 1 < n; ++k) {
      const std::size_t dot = static_cast<std::size_t>(first) + 2 * k + 1;
      if (dot >= tokens_.size() || tokens_[dot].kind != '.') {
        warn("could not locate a qualified column reference");
        return nullptr;
      }
    }
    edit_token(first + 2 * static_cast<int>(n - 1), r->from, r->to);
    return &r->to;
  }

  // PostgreSQL looks a bare name up level by level, innermost first.
  const Renamed* unqualified(std::string_view name, const Level& l) {
    for (const Level* lv = &l; lv; lv = lv->outer) {
      const Renamed* hit = nullptr;
      int hits = 0;
      bool here = false;        // a source whose columns are known has it
      bool maybe_here = false;  // a source whose columns are not all known may have it
      for (const Source& s : lv->sources) {
        if (const Renamed* r = find_renamed(s.shape.renamed, name)) {
          hit = r;
          ++hits;
        } else if (s.shape.has(name)) {
          here = true;
        } else if (s.shape.opaque) {
          maybe_here = true;
        }
      }
      if (hits > 1) {
        warn("column \"" + std::string(name) + "\" could be a renamed column of more than one table");
        return nullptr;
      }
      if (hits == 1) return hit;
      if (here) return nullptr;
      if (maybe_here) {
        for (const Level* o = lv->outer; o; o = o->outer)
          for (const Source& s : o->sources)
            if (find_renamed(s.shape.renamed, name))
              warn("column \"" + std::string(name) + "\" may belong to a subquery's table or to a renamed outer column");
        return nullptr;
      }
    }
    return nullptr;
  }

  // The FROM item named by a qualifier: alias, table, or schema.table.
  const Source* qualified_source(PgQuery__Node* const* parts, std::size_t n, const Level& l) const {
    if (n == 0 || n > 3) return nullptr;
    for (std::size_t i = 0; i < n; ++i)
      if (parts[i]->node_case != PG_QUERY__NODE__NODE_STRING) return nullptr;
    const std::string_view rel = str(parts[n - 1]->string->sval);
    const std::string_view schema = n >= 2 ? str(parts[n - 2]->string->sval) : std::string_view();
    for (const Level* lv = &l; lv; lv = lv->outer)
      for (const Source& s : lv->sources) {
        if (s.refname != rel) continue;
        if (!schema.empty() && (s.schema != schema || s.table != rel)) continue;
        return &s;
      }
    return nullptr;
  }

  void edit_token(int token, std::string_view from, const std::string& to) {
    if (token < 0 || static_cast<std::size_t>(token) >= tokens_.size() || !tokens_[token].identifier_like() ||
        pg::identifier(tokens_[token].text(sql_)) != from) {
      warn("could not locate the identifier \"" + std::string(from) + "\"");
      return;
    }
    edit_at(token).replacement = spell(tokens_[token].text(sql_), to);
  }

  TokenEdit& edit_at(int token) {
    for (TokenEdit& e : out_.edits)
      if (e.token == token) return e;
    out_.edits.push_back({token, {}, {}, {}});
    return out_.edits.back();
  }

  // ---- expressions ----

  void walk_opt(const PgQuery__Node* n, const Level& l) {
    if (n) walk(&n->base, l);
  }

  void walk(const ProtobufCMessage* m, const Level& l) {
    if (!m) return;
    if (depth_ >= max_walk_depth) return warn("statement too deeply nested to analyse");
    ++depth_;
    const PgQuery__Node* n = pg::as_node(m);
    switch (n ? n->node_case : PG_QUERY__NODE__NODE__NOT_SET) {
      case PG_QUERY__NODE__NODE_COLUMN_REF:
        column_ref(n->column_ref, l);
        break;
      case PG_QUERY__NODE__NODE_A_INDIRECTION:
        if (!row_field(n->a_indirection, l)) pg::for_each_child(m, [&](const ProtobufCMessage* c) { walk(c, l); });
        break;
      case PG_QUERY__NODE__NODE_SUB_LINK:
        walk_opt(n->sub_link->testexpr, l);
        query(n->sub_link->subselect, &l, l.env, false);
        break;
      case PG_QUERY__NODE__NODE_SELECT_STMT: case PG_QUERY__NODE__NODE_INSERT_STMT:
      case PG_QUERY__NODE__NODE_UPDATE_STMT: case PG_QUERY__NODE__NODE_DELETE_STMT:
        query(n, &l, l.env, false);
        break;
      default:
        pg::for_each_child(m, [&](const ProtobufCMessage* c) { walk(c, l); });
    }
    --depth_;
  }

  const RuleSet& rules_;
  std::string_view sql_;
  const std::vector<pg::Token>& tokens_;
  int end_;  // first token after the statement
  Resolution& out_;
  const Catalog* catalog_;                 // null: columns of tables are unknown
  const std::vector<std::string>* path_;  // null: unqualified tables are public
  int depth_ = 0;
};

}  // namespace

RuleSet::RuleSet(const std::vector<RenameRule>& rules) {
  for (const RenameRule& r : rules) tables_[r.schema + "." + r.table].push_back({r.from, r.to, r.expand});
}

const std::vector<Renamed>* RuleSet::find(std::string_view schema, std::string_view table) const {
  std::string key;
  key.reserve(schema.size() + table.size() + 1);
  key.append(schema).append(".").append(table);
  auto it = tables_.find(key);
  return it == tables_.end() ? nullptr : &it->second;
}

void resolve(const PgQuery__Node* stmt, const RuleSet& rules, std::string_view sql,
             const std::vector<pg::Token>& tokens, int end, Resolution& out, const Catalog* catalog,
             const std::vector<std::string>* path) {
  Resolver(rules, sql, tokens, end, out, catalog, path).statement(stmt);
}

}  // namespace pgshift::rewrite
