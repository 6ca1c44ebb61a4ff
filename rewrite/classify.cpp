#include "rewrite/classify.hpp"

#include <algorithm>

namespace pgshift::rewrite {
namespace {

using pg::str;

// What calls inside a query make of it.
struct CallEffects {
  bool writes = false;
  bool session = false;
  bool lock = false;
  bool path = false;  // set_config('search_path', ...)
};

// set_config's first argument, when it is a string constant.
std::string_view set_config_name(const PgQuery__FuncCall* f) {
  if (f->n_args == 0 || f->args[0]->node_case != PG_QUERY__NODE__NODE_A_CONST) return {};
  const PgQuery__AConst* c = f->args[0]->a_const;
  return c->val_case == PG_QUERY__A__CONST__VAL_SVAL && c->sval ? str(c->sval->sval) : std::string_view("?");
}

void scan_calls(const ProtobufCMessage* m, const std::vector<std::string>& writing, CallEffects& fx) {
  if (const PgQuery__Node* n = pg::as_node(m)) {
    if (n->node_case == PG_QUERY__NODE__NODE_FUNC_CALL) {
      const std::string_view name = pg::last_name(n->func_call->funcname, n->func_call->n_funcname);
      if (std::find(writing.begin(), writing.end(), name) != writing.end()) fx.writes = true;
      if (name.starts_with("pg_advisory") || name.starts_with("pg_try_advisory")) fx.session = fx.lock = true;
      if (name == "set_config") {
        fx.session = true;
        const std::string_view setting = set_config_name(n->func_call);
        fx.path = fx.path || setting == "search_path" || setting == "?";
      }
    }
    // A data-modifying statement anywhere (a CTE), or a row lock or SELECT
    // INTO at any level, makes the query a write.
    switch (n->node_case) {
      case PG_QUERY__NODE__NODE_SELECT_STMT:
        if (n->select_stmt->into_clause || n->select_stmt->n_locking_clause > 0) fx.writes = true;
        break;
      case PG_QUERY__NODE__NODE_INSERT_STMT: case PG_QUERY__NODE__NODE_UPDATE_STMT:
      case PG_QUERY__NODE__NODE_DELETE_STMT: case PG_QUERY__NODE__NODE_MERGE_STMT:
        fx.writes = true;
        break;
      default:
        break;
    }
  }
  pg::for_each_child(m, [&](const ProtobufCMessage* c) { scan_calls(c, writing, fx); });
}

StatementInfo make(StatementKind kind, bool writes, bool session = false) {
  StatementInfo s;
  s.kind = kind;
  s.writes = writes;
  s.session_state = session;
  return s;
}

// SET and RESET. SET LOCAL and SET TRANSACTION last until the transaction
// ends and change no session state.
// What SET/RESET does to search_path. A SET's arguments are each one schema
// name, as PostgreSQL keeps them (identifiers folded, strings as written).
void path_change(const PgQuery__VariableSetStmt* v, StatementInfo& s) {
  const std::string_view name = pg::str(v->name);
  if (v->kind == PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL) {
    if (!v->is_local) s.path_change = PathChange::reset;
    return;
  }
  if (name != "search_path") return;
  switch (v->kind) {
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_VALUE:
      s.path_change = v->is_local ? PathChange::set_local : PathChange::set;
      for (std::size_t i = 0; i < v->n_args; ++i) {
        const PgQuery__Node* a = v->args[i];
        if (a->node_case != PG_QUERY__NODE__NODE_A_CONST || a->a_const->val_case != PG_QUERY__A__CONST__VAL_SVAL ||
            !a->a_const->sval) {
          s.path_change = PathChange::unknown;
          s.path.clear();
          return;
        }
        s.path.emplace_back(str(a->a_const->sval->sval));
      }
      return;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_DEFAULT:
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET:
      // SET LOCAL ... TO DEFAULT lasts until the transaction ends: not followed.
      s.path_change = v->is_local ? PathChange::unknown : PathChange::reset;
      return;
    default:
      s.path_change = PathChange::unknown;  // FROM CURRENT
  }
}

StatementInfo classify_set(const PgQuery__VariableSetStmt* v) {
  const std::string_view name = pg::str(v->name);
  if (v->is_local || (v->kind == PG_QUERY__VARIABLE_SET_KIND__VAR_SET_MULTI && name == "TRANSACTION")) {
    StatementInfo s = make(StatementKind::session, false, false);
    path_change(v, s);
    return s;
  }
  StatementInfo s = make(StatementKind::session, false, true);
  path_change(v, s);
  if (name == "role" || name == "session_authorization") return s;  // RESET ALL leaves these alone
  switch (v->kind) {
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL:
      s.setting = Setting::reset_all;
      break;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET:
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_DEFAULT:
      s.setting = Setting::reset;
      break;
    default:
      s.setting = Setting::set;
  }
  s.setting_name = name;
  return s;
}

StatementInfo classify_query(const PgQuery__Node* q, const std::vector<std::string>& writing) {
  CallEffects fx;
  scan_calls(&q->base, writing, fx);  // also sees q itself when it is INSERT/UPDATE/DELETE/MERGE
  if (fx.writes) {
    StatementInfo s = make(StatementKind::write, true);
    if (fx.path) s.path_change = PathChange::unknown;
    return s;
  }
  if (fx.session) {
    StatementInfo s = make(StatementKind::session, false, true);
    s.lock = fx.lock;
    if (fx.path) s.path_change = PathChange::unknown;
    return s;
  }
  return make(StatementKind::read_only, false);
}

TxnControl txn_kind(PgQuery__TransactionStmtKind k) {
  switch (k) {
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START: return TxnControl::begin;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT: return TxnControl::commit;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK: return TxnControl::rollback;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT: return TxnControl::savepoint;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE: return TxnControl::release;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO: return TxnControl::rollback_to;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE: return TxnControl::prepare;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED: return TxnControl::commit_prepared;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED: return TxnControl::rollback_prepared;
    default: return TxnControl::none;
  }
}

bool explain_analyzes(const PgQuery__ExplainStmt* e) {
  for (std::size_t i = 0; i < e->n_options; ++i) {
    const PgQuery__Node* o = e->options[i];
    if (o->node_case != PG_QUERY__NODE__NODE_DEF_ELEM || str(o->def_elem->defname) != "analyze") continue;
    const PgQuery__Node* arg = o->def_elem->arg;
    if (!arg) return true;
    if (arg->node_case == PG_QUERY__NODE__NODE_BOOLEAN) return arg->boolean->boolval;
    if (arg->node_case == PG_QUERY__NODE__NODE_STRING) {
      const std::string_view v = str(arg->string->sval);
      return v != "false" && v != "off" && v != "0";
    }
    return true;
  }
  return false;
}

bool temporary(const PgQuery__RangeVar* rel) { return rel && str(rel->relpersistence) == "t"; }

}  // namespace

StatementInfo classify(const PgQuery__Node* n, const std::vector<std::string>& writing) {
  using K = StatementKind;
  switch (n->node_case) {
    case PG_QUERY__NODE__NODE_SELECT_STMT: {
      StatementInfo s = classify_query(n, writing);
      s.ordered = n->select_stmt->n_sort_clause > 0;
      return s;
    }
    case PG_QUERY__NODE__NODE_INSERT_STMT:
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
    case PG_QUERY__NODE__NODE_DELETE_STMT:
    case PG_QUERY__NODE__NODE_MERGE_STMT:
      return classify_query(n, writing);
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT: {
      StatementInfo s = make(K::transaction, false);
      s.txn = txn_kind(n->transaction_stmt->kind);
      return s;
    }
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
      return classify_set(n->variable_set_stmt);
    case PG_QUERY__NODE__NODE_DISCARD_STMT: {
      StatementInfo s = make(K::session, false, true);
      if (n->discard_stmt->target == PG_QUERY__DISCARD_MODE__DISCARD_ALL) s.path_change = PathChange::reset;
      return s;
    }
    case PG_QUERY__NODE__NODE_PREPARE_STMT:
    case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
    case PG_QUERY__NODE__NODE_LISTEN_STMT:
    case PG_QUERY__NODE__NODE_UNLISTEN_STMT:
    case PG_QUERY__NODE__NODE_LOAD_STMT:
    case PG_QUERY__NODE__NODE_CONSTRAINTS_SET_STMT:
      return make(K::session, false, true);
    case PG_QUERY__NODE__NODE_EXECUTE_STMT:
      return make(K::session, true, true);  // the prepared statement may write
    case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
    case PG_QUERY__NODE__NODE_FETCH_STMT:
    case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
      return make(K::read_only, false);
    case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT: {
      StatementInfo s = classify(n->declare_cursor_stmt->query, writing);
      if (s.kind == K::read_only) s.session_state = false;
      return s;
    }
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
      if (explain_analyzes(n->explain_stmt)) return classify(n->explain_stmt->query, writing);
      return make(K::read_only, false);
    case PG_QUERY__NODE__NODE_COPY_STMT:
      return n->copy_stmt->is_from ? make(K::copy_in, true) : make(K::copy_out, false);
    case PG_QUERY__NODE__NODE_CALL_STMT:
    case PG_QUERY__NODE__NODE_DO_STMT:
    case PG_QUERY__NODE__NODE_LOCK_STMT:
    case PG_QUERY__NODE__NODE_NOTIFY_STMT:
      return make(K::write, true);
    case PG_QUERY__NODE__NODE_CREATE_STMT:
      if (temporary(n->create_stmt->relation)) return make(K::session, false, true);
      return make(K::ddl, true);
    case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT: {
      const PgQuery__CreateTableAsStmt* c = n->create_table_as_stmt;
      if (c->into && temporary(c->into->rel)) return make(K::session, false, true);
      return make(c->is_select_into ? K::write : K::ddl, true);
    }
    default:
      return make(K::ddl, true);  // every other utility statement changes the database
  }
}

}  // namespace pgshift::rewrite
