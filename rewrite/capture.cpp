#include "rewrite/capture.hpp"

#include <algorithm>
#include <array>

namespace pgshift::rewrite {
namespace {

using pg::str;

// Built-in functions whose result differs when the shadow evaluates them
// again: the time (now() is the transaction's start, which differs too),
// randomness, sequences, and facts of the server or the connection.
constexpr std::array<std::string_view, 31> kNewValueFunctions = {
    "clock_timestamp", "currval", "gen_random_bytes", "gen_random_uuid", "gen_salt", "inet_client_addr",
    "inet_client_port", "inet_server_addr", "inet_server_port", "lastval", "nextval", "now",
    "pg_backend_pid", "pg_conf_load_time", "pg_current_snapshot", "pg_current_xact_id",
    "pg_current_xact_id_if_assigned", "pg_postmaster_start_time", "random", "random_normal", "setseed",
    "statement_timestamp", "timeofday", "transaction_timestamp", "txid_current", "txid_current_if_assigned",
    "txid_current_snapshot", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4", "version"};

bool new_value_function(std::string_view name) {
  return std::find(kNewValueFunctions.begin(), kNewValueFunctions.end(), name) != kNewValueFunctions.end();
}

// Date/time input strings that mean "now", evaluated when the cast runs.
bool special_time_literal(std::string_view s) {
  std::string l(s);
  for (char& c : l)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  while (!l.empty() && l.back() == ' ') l.pop_back();
  while (!l.empty() && l.front() == ' ') l.erase(l.begin());
  return l == "now" || l == "today" || l == "tomorrow" || l == "yesterday";
}

// What evaluating an expression (or a whole statement) again could change.
struct Effects {
  std::string new_values;  // what gives other values on the shadow (capturing the rows fixes it)
  std::string opaque;      // what pgshift cannot see into (a volatile user function)
  bool writes_elsewhere = false;  // a data-modifying CTE
  int depth = 0;
  void note_new(std::string what) {
    if (new_values.empty()) new_values = std::move(what);
  }
};

constexpr int kMaxDepth = 2000;

void scan(const ProtobufCMessage* m, const Catalog* catalog, Effects& fx, bool top_dml);

void scan_node(const PgQuery__Node* n, const Catalog* catalog, Effects& fx) {
  if (n) scan(&n->base, catalog, fx, false);
}

void scan(const ProtobufCMessage* m, const Catalog* catalog, Effects& fx, bool top_dml) {
  if (!m) return;
  if (++fx.depth > kMaxDepth) {
    fx.opaque = "too deeply nested to analyse";
    --fx.depth;
    return;
  }
  if (const PgQuery__Node* n = pg::as_node(m)) {
    switch (n->node_case) {
      case PG_QUERY__NODE__NODE_FUNC_CALL: {
        const std::string_view name = pg::last_name(n->func_call->funcname, n->func_call->n_funcname);
        if (new_value_function(name)) fx.note_new(std::string(name) + "()");
        else if (name == "age" && n->func_call->n_args == 1) fx.note_new("age() of one argument");
        else if (catalog && catalog->volatile_function(name) && fx.opaque.empty())
          fx.opaque = "calls " + std::string(name) + "(), a volatile function pgshift cannot see into";
        break;
      }
      case PG_QUERY__NODE__NODE_SQLVALUE_FUNCTION:
        fx.note_new("CURRENT_TIMESTAMP or a similar SQL value function");
        break;
      case PG_QUERY__NODE__NODE_TYPE_CAST: {
        const PgQuery__Node* arg = n->type_cast->arg;
        if (arg && arg->node_case == PG_QUERY__NODE__NODE_A_CONST &&
            arg->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL && arg->a_const->sval &&
            special_time_literal(str(arg->a_const->sval->sval)))
          fx.note_new("'" + std::string(str(arg->a_const->sval->sval)) + "' as a time");
        break;
      }
      case PG_QUERY__NODE__NODE_SELECT_STMT: {
        const PgQuery__SelectStmt* s = n->select_stmt;
        if ((s->limit_count || s->limit_offset) && s->n_sort_clause == 0) fx.note_new("LIMIT without ORDER BY");
        for (std::size_t i = 0; i < s->n_locking_clause; ++i) {
          const PgQuery__LockingClause* l = s->locking_clause[i]->locking_clause;
          if (l && l->wait_policy == PG_QUERY__LOCK_WAIT_POLICY__LockWaitSkip) fx.note_new("SKIP LOCKED");
        }
        break;
      }
      case PG_QUERY__NODE__NODE_RANGE_TABLE_SAMPLE:
        fx.note_new("TABLESAMPLE");
        break;
      case PG_QUERY__NODE__NODE_INSERT_STMT: case PG_QUERY__NODE__NODE_UPDATE_STMT:
      case PG_QUERY__NODE__NODE_DELETE_STMT: case PG_QUERY__NODE__NODE_MERGE_STMT:
        if (!top_dml) fx.writes_elsewhere = true;
        break;
      default:
        break;
    }
  }
  pg::for_each_child(m, [&](const ProtobufCMessage* c) { scan(c, catalog, fx, false); });
  --fx.depth;
}

// ---- which columns of a row take their default ----

bool is_default(const PgQuery__Node* n) { return n && n->node_case == PG_QUERY__NODE__NODE_SET_TO_DEFAULT; }

std::string default_reason(const CatalogTable& t, const CatalogColumn& c) {
  if (c.identity) return "identity column " + t.name + "." + c.name;
  return "the default of " + t.name + "." + c.name + " (" + c.default_expr + ")";
}

// The first column of `t` that an INSERT gives a value of its own, if any.
std::string insert_new_values(const PgQuery__InsertStmt* ins, const CatalogTable& t) {
  std::vector<bool> given(t.columns.size(), false);  // the statement gives a value
  std::vector<bool> defaulted(t.columns.size(), false);  // ... DEFAULT, in every row or some
  std::vector<int> positions;  // column index of each listed (or implied) column
  if (ins->n_cols > 0) {
    for (std::size_t i = 0; i < ins->n_cols; ++i) {
      const PgQuery__ResTarget* r = ins->cols[i]->res_target;
      positions.push_back(r && r->name ? t.column(r->name) : -1);
    }
  } else {
    for (std::size_t i = 0; i < t.columns.size(); ++i) positions.push_back(static_cast<int>(i));
  }
  const PgQuery__Node* src = ins->select_stmt;
  if (src && src->node_case == PG_QUERY__NODE__NODE_SELECT_STMT) {
    const PgQuery__SelectStmt* s = src->select_stmt;
    std::size_t width = 0;
    bool star = false;
    if (s->n_values_lists > 0) {
      for (std::size_t r = 0; r < s->n_values_lists; ++r) {
        const PgQuery__Node* row = s->values_lists[r];
        if (row->node_case != PG_QUERY__NODE__NODE_LIST) continue;
        width = std::max(width, row->list->n_items);
        for (std::size_t k = 0; k < row->list->n_items && k < positions.size(); ++k)
          if (positions[k] >= 0 && is_default(row->list->items[k])) defaulted[static_cast<std::size_t>(positions[k])] = true;
      }
    } else if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE) {
      star = true;  // a UNION's width: not worked out, so assume every listed column is given
      width = positions.size();
    } else {
      for (std::size_t k = 0; k < s->n_target_list; ++k) {
        const PgQuery__ResTarget* r = s->target_list[k]->res_target;
        const PgQuery__Node* v = r ? r->val : nullptr;
        if (v && v->node_case == PG_QUERY__NODE__NODE_COLUMN_REF && v->column_ref->n_fields > 0 &&
            v->column_ref->fields[v->column_ref->n_fields - 1]->node_case == PG_QUERY__NODE__NODE_A_STAR)
          star = true;
      }
      width = star ? positions.size() : s->n_target_list;
    }
    for (std::size_t k = 0; k < positions.size() && k < width; ++k)
      if (positions[k] >= 0) given[static_cast<std::size_t>(positions[k])] = true;
    if (star && ins->n_cols == 0) {
      // INSERT INTO t SELECT * ...: as wide as t, if the source is; a column
      // left to its default cannot be ruled out.
      for (std::size_t i = 0; i < t.columns.size(); ++i)
        if (t.columns[i].new_value_when_defaulted()) return default_reason(t, t.columns[i]);
    }
  }
  const bool override_user = ins->override == PG_QUERY__OVERRIDING_KIND__OVERRIDING_USER_VALUE;
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    const CatalogColumn& c = t.columns[i];
    if (c.generated || !c.new_value_when_defaulted()) continue;
    if (!given[i] || defaulted[i] || (override_user && c.identity)) return default_reason(t, c);
  }
  return {};
}

// SET c = DEFAULT in an UPDATE or ON CONFLICT DO UPDATE.
std::string assigned_defaults(PgQuery__Node* const* targets, std::size_t n, const CatalogTable& t) {
  for (std::size_t i = 0; i < n; ++i) {
    const PgQuery__ResTarget* r = targets[i]->res_target;
    if (!r || !r->name || !is_default(r->val)) continue;
    const int c = t.column(r->name);
    if (c >= 0 && t.columns[static_cast<std::size_t>(c)].new_value_when_defaulted())
      return default_reason(t, t.columns[static_cast<std::size_t>(c)]);
  }
  return {};
}

bool assigns_key(PgQuery__Node* const* targets, std::size_t n, const CatalogTable& t) {
  for (std::size_t i = 0; i < n; ++i) {
    const PgQuery__ResTarget* r = targets[i]->res_target;
    if (!r || !r->name) continue;
    const int c = t.column(r->name);
    if (c >= 0 && std::find(t.primary_key.begin(), t.primary_key.end(), static_cast<std::size_t>(c)) != t.primary_key.end())
      return true;
  }
  return false;
}

bool renamed_elsewhere(const Context& ctx, const CatalogTable& t) {
  if (!ctx.renamed_elsewhere) return false;
  for (const auto& [schema, table] : *ctx.renamed_elsewhere)
    if (schema == t.schema && table == t.name) return true;
  return false;
}

void inexact(Capture& out, std::string why) {
  out.mode = Capture::Mode::inexact;
  out.reason = std::move(why);
}

// INSERT, UPDATE and DELETE at the top of a statement.
void plan_dml(const PgQuery__Node* stmt, const Context& ctx, const std::vector<std::string>* path,
              const RuleSet& rules, int last, Capture& out, std::vector<TokenEdit>& edits) {
  const Catalog* catalog = ctx.catalog.get();
  const PgQuery__RangeVar* rv = nullptr;
  std::size_t returning = 0;
  switch (stmt->node_case) {
    case PG_QUERY__NODE__NODE_INSERT_STMT:
      rv = stmt->insert_stmt->relation;
      returning = stmt->insert_stmt->n_returning_list;
      break;
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
      rv = stmt->update_stmt->relation;
      returning = stmt->update_stmt->n_returning_list;
      break;
    default:
      rv = stmt->delete_stmt->relation;
      returning = stmt->delete_stmt->n_returning_list;
  }
  Effects fx;
  scan(&stmt->base, catalog, fx, true);  // a DML statement below this one is a data-modifying WITH query
  if (!fx.opaque.empty()) return inexact(out, fx.opaque);
  const CatalogTable* t = lookup_table(catalog, path, rv);
  std::string why = fx.new_values;
  if (t && why.empty()) {
    switch (stmt->node_case) {
      case PG_QUERY__NODE__NODE_INSERT_STMT: {
        const PgQuery__InsertStmt* ins = stmt->insert_stmt;
        why = insert_new_values(ins, *t);
        if (why.empty() && ins->on_conflict_clause)
          why = assigned_defaults(ins->on_conflict_clause->target_list, ins->on_conflict_clause->n_target_list, *t);
        break;
      }
      case PG_QUERY__NODE__NODE_UPDATE_STMT:
        why = assigned_defaults(stmt->update_stmt->target_list, stmt->update_stmt->n_target_list, *t);
        break;
      default:
        break;
    }
  }
  const std::string table_name = rv && rv->relname ? std::string(rv->relname) : std::string("?");
  if (!t) {
    // Its defaults and triggers are unknown: a temporary table, one created
    // behind pgshift's back since the catalog was read, or no catalog at all.
    if (!catalog) return inexact(out, "no catalog for this database: its defaults are unknown");
    return inexact(out, "table " + table_name + " is not in pgshift's catalog (temporary, or created since it was read)");
  }
  if (t->triggers) return inexact(out, "table " + t->name + " has triggers, which pgshift does not look into");
  if (why.empty() && !fx.writes_elsewhere) return;  // deterministic: replayed and compared
  if (fx.writes_elsewhere) return inexact(out, "a data-modifying WITH query (" + why + ")");
  if (!t->writable()) return inexact(out, why + " in a write to " + t->name + ", which is not a table");
  if (rules.find(t->schema, t->name) || renamed_elsewhere(ctx, *t))
    return inexact(out, why + " in a write to " + t->name + ", which has rename rules");
  Capture::Op op = Capture::Op::insert;
  if (stmt->node_case == PG_QUERY__NODE__NODE_INSERT_STMT) {
    const PgQuery__OnConflictClause* oc = stmt->insert_stmt->on_conflict_clause;
    if (oc && oc->action == PG_QUERY__ON_CONFLICT_ACTION__ONCONFLICT_UPDATE) {
      op = Capture::Op::upsert;
      if (assigns_key(oc->target_list, oc->n_target_list, *t))
        return inexact(out, why + " in an ON CONFLICT DO UPDATE that sets the primary key");
    }
  } else if (stmt->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT) {
    op = Capture::Op::upsert;
    if (assigns_key(stmt->update_stmt->target_list, stmt->update_stmt->n_target_list, *t))
      return inexact(out, why + " in an UPDATE that sets the primary key");
  } else {
    op = Capture::Op::remove;
  }
  if (op != Capture::Op::insert && t->primary_key.empty())
    return inexact(out, why + " in a write to " + t->name + ", which has no primary key");
  if (last < 0) return inexact(out, why + " (the statement's end was not found)");

  out.mode = Capture::Mode::rows;
  out.op = op;
  out.client_returning = returning > 0;
  out.table = ctx.catalog->share(t, ctx.catalog);
  out.reason = why;
  const std::string ref = pg::quoted(rv->alias && rv->alias->aliasname ? str(rv->alias->aliasname) : str(rv->relname));
  TokenEdit e;
  e.token = last;
  e.append.push_back({std::string(returning ? ", " : " RETURNING ") + "(" + ref + ".*)::text AS \"" +
                      std::string(capture_marker) + "\""});
  edits.push_back(std::move(e));
}

// ALTER TABLE ... ADD COLUMN: every existing row gets the default now.
std::string added_column_new_values(const PgQuery__AlterTableStmt* a, const Catalog* catalog) {
  for (std::size_t i = 0; i < a->n_cmds; ++i) {
    const PgQuery__AlterTableCmd* cmd = a->cmds[i]->alter_table_cmd;
    if (!cmd || cmd->subtype != PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn || !cmd->def ||
        cmd->def->node_case != PG_QUERY__NODE__NODE_COLUMN_DEF)
      continue;
    const PgQuery__ColumnDef* def = cmd->def->column_def;
    if (def->type_name && def->type_name->n_names > 0) {
      const std::string_view type = pg::last_name(def->type_name->names, def->type_name->n_names);
      if (type == "serial" || type == "bigserial" || type == "smallserial" || type == "serial2" ||
          type == "serial4" || type == "serial8")
        return "ADD COLUMN of type " + std::string(type);
    }
    for (std::size_t k = 0; k < def->n_constraints; ++k) {
      const PgQuery__Constraint* c = def->constraints[k]->constraint;
      if (!c) continue;
      if (c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_IDENTITY) return "ADD COLUMN ... GENERATED AS IDENTITY";
      if (c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_DEFAULT && c->raw_expr) {
        Effects fx;
        scan_node(c->raw_expr, catalog, fx);
        if (!fx.new_values.empty()) return "ADD COLUMN with a default of " + fx.new_values;
        if (!fx.opaque.empty()) return "ADD COLUMN with a default that " + fx.opaque;
      }
    }
  }
  return {};
}

}  // namespace

const CatalogTable* lookup_table(const Catalog* catalog, const std::vector<std::string>* path,
                                 const PgQuery__RangeVar* rv) {
  if (!catalog || !rv || !rv->relname) return nullptr;
  if (rv->schemaname && *rv->schemaname) return catalog->find(rv->schemaname, rv->relname);
  if (!path) return catalog->find("public", rv->relname);
  return catalog->resolve(rv->relname, *path);
}

void plan_capture(const PgQuery__Node* stmt, const Context& ctx, const std::vector<std::string>* path,
                  const RuleSet& rules, int last, Capture& out, std::vector<TokenEdit>& edits) {
  out = Capture{};
  if (!stmt) return;
  const Catalog* catalog = ctx.catalog.get();
  auto nondeterministic = [&](const PgQuery__Node* n) {
    Effects fx;
    scan_node(n, catalog, fx);
    return fx;
  };
  switch (stmt->node_case) {
    case PG_QUERY__NODE__NODE_INSERT_STMT: case PG_QUERY__NODE__NODE_UPDATE_STMT:
    case PG_QUERY__NODE__NODE_DELETE_STMT:
      return plan_dml(stmt, ctx, path, rules, last, out, edits);
    case PG_QUERY__NODE__NODE_MERGE_STMT: {
      const Effects fx = nondeterministic(stmt);
      if (!fx.opaque.empty()) return inexact(out, fx.opaque);
      // Its INSERT branch may take defaults: judged without the catalog's help.
      const PgQuery__RangeVar* rv = stmt->merge_stmt->relation;
      const CatalogTable* t = lookup_table(catalog, path, rv);
      bool defaults = !t;
      if (t)
        for (const CatalogColumn& c : t->columns) defaults = defaults || c.new_value_when_defaulted();
      if (!fx.new_values.empty() || defaults || (t && t->triggers))
        return inexact(out, "MERGE" + (fx.new_values.empty() ? std::string() : " with " + fx.new_values) +
                                " is replayed as it is");
      return;
    }
    case PG_QUERY__NODE__NODE_SELECT_STMT: {
      const Effects fx = nondeterministic(stmt);
      const bool into = stmt->select_stmt->into_clause != nullptr;
      if (!fx.opaque.empty() && (into || fx.writes_elsewhere)) return inexact(out, fx.opaque);
      if ((into || fx.writes_elsewhere) && !fx.new_values.empty())
        return inexact(out, fx.new_values + (into ? " in SELECT INTO" : " in a data-modifying WITH query"));
      // SELECT nextval(...), SELECT ... FOR UPDATE SKIP LOCKED: replayed; its
      // rows may differ on the shadow, so only its tag is compared.
      out.nondeterministic = !fx.new_values.empty() || !fx.opaque.empty();
      return;
    }
    case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT: {
      const Effects fx = nondeterministic(stmt->create_table_as_stmt->query);
      if (!fx.new_values.empty()) return inexact(out, fx.new_values + " in CREATE TABLE AS");
      if (!fx.opaque.empty()) return inexact(out, fx.opaque);
      return;
    }
    case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT: {
      const std::string why = added_column_new_values(stmt->alter_table_stmt, catalog);
      if (!why.empty()) return inexact(out, why + ": existing rows get values of their own on each server");
      return;
    }
    case PG_QUERY__NODE__NODE_COPY_STMT: {
      const PgQuery__CopyStmt* c = stmt->copy_stmt;
      if (!c->is_from || !c->relation) return;
      const CatalogTable* t = lookup_table(catalog, path, c->relation);
      if (!t) return inexact(out, "COPY into a table pgshift's catalog does not have");
      if (t->triggers) return inexact(out, "COPY into " + t->name + ", which has triggers");
      for (const CatalogColumn& col : t->columns) {
        if (col.generated || !col.new_value_when_defaulted()) continue;
        bool listed = c->n_attlist == 0;
        for (std::size_t i = 0; i < c->n_attlist && !listed; ++i)
          listed = c->attlist[i]->node_case == PG_QUERY__NODE__NODE_STRING && str(c->attlist[i]->string->sval) == col.name;
        if (!listed) return inexact(out, "COPY that leaves " + default_reason(*t, col) + " to the server");
      }
      return;
    }
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT: {
      Capture inner;
      std::vector<TokenEdit> ignored;
      plan_capture(stmt->explain_stmt->query, ctx, path, rules, -1, inner, ignored);
      if (inner.mode != Capture::Mode::replay) inexact(out, "EXPLAIN ANALYZE of a write that is not deterministic");
      return;
    }
    case PG_QUERY__NODE__NODE_PREPARE_STMT: {
      Capture inner;
      std::vector<TokenEdit> ignored;
      plan_capture(stmt->prepare_stmt->query, ctx, path, rules, -1, inner, ignored);
      if (inner.mode != Capture::Mode::replay)
        inexact(out, "PREPARE of a write that is not deterministic (" + inner.reason + "): its EXECUTEs are replayed");
      return;
    }
    case PG_QUERY__NODE__NODE_CALL_STMT:
      return inexact(out, "CALL: pgshift does not see what a procedure does");
    case PG_QUERY__NODE__NODE_DO_STMT:
      return inexact(out, "DO: pgshift does not see what the block does");
    default:
      return;
  }
}

bool volatile_expression(std::string_view expression, const Catalog* catalog) {
  std::string sql = "SELECT ";
  sql.append(expression);
  std::string error;
  pg::ParseTree tree = pg::parse(sql, error);
  if (!tree || tree->n_stmts != 1 || !tree->stmts[0]->stmt) return true;  // not understood: assume it is
  Effects fx;
  scan_node(tree->stmts[0]->stmt, catalog, fx);
  return !fx.new_values.empty() || !fx.opaque.empty();
}

}  // namespace pgshift::rewrite
