// A session's part in knowing the schema: which catalog snapshots its
// statements are analysed with (rewrite::Context), and its effective
// search_path (startup options, role and database defaults, SET, RESET, SET
// LOCAL, undone by a rollback). Only for sessions whose analysis depends on
// them (rename rules, exact mirroring); others never get here.
//
// The client's next message waits (asynchronously: the thread goes on) for
// the first catalog of its database, and for the new one after DDL this
// session committed, for at most a couple of seconds.
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "proxy/session.hpp"

namespace pgshift::proxy {

namespace {

constexpr auto kCatalogWait = std::chrono::seconds(2);

// The value of `wanted` in a libpq options string ("-c search_path=a,b",
// "-csearch_path=x", "--search_path=x"; a backslash escapes the next
// character). The last one wins, as in PostgreSQL.
std::optional<std::string> option_value(std::string_view options, std::string_view wanted) {
  std::vector<std::string> tokens;
  std::string cur;
  bool in_token = false;
  for (std::size_t i = 0; i < options.size(); ++i) {
    const char c = options[i];
    if (c == '\\' && i + 1 < options.size()) {
      cur.push_back(options[++i]);
      in_token = true;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_token) tokens.push_back(std::move(cur));
      cur.clear();
      in_token = false;
    } else {
      cur.push_back(c);
      in_token = true;
    }
  }
  if (in_token) tokens.push_back(std::move(cur));
  std::optional<std::string> found;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::string kv;
    if (tokens[i] == "-c" && i + 1 < tokens.size()) kv = tokens[++i];
    else if (tokens[i].starts_with("--")) kv = tokens[i].substr(2);
    else if (tokens[i].starts_with("-c")) kv = tokens[i].substr(2);
    else continue;
    const std::size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string name = kv.substr(0, eq);
    for (char& ch : name) {
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
      if (ch == '-') ch = '_';
    }
    if (name == wanted) found = kv.substr(eq + 1);
  }
  return found;
}

void log_gave_up(const std::string& peer, const std::string& database) {
  spdlog::warn("catalog: client={} waited {} s for the catalog of database {}; going on with what is known",
               peer, std::chrono::duration_cast<std::chrono::seconds>(kCatalogWait).count(), database);
}

}  // namespace

void Session::setup_catalog() {
  CatalogLoader* loader = ctx_.catalogs;
  if (!loader) return;
  const bool rules = rewriters_[0]->has_rules() || rewriters_[1]->has_rules();
  // In logical mode the recorder only samples reads: the subscription carries the writes.
  capture_ = recorder_ && ctx_.cfg.shadow.exact && ctx_.cfg.shadow.sync != config::SyncMode::logical;
  uses_catalog_ = rules || capture_;
  if (!uses_catalog_) return;
  for (const auto& [k, v] : startup_params_) {
    if (k == "search_path") {
      startup_path_ = rewrite::parse_search_path(v);
    } else if (k == "options") {
      if (std::optional<std::string> p = option_value(v, "search_path")) startup_path_ = rewrite::parse_search_path(*p);
    }
  }
  const auto serving = static_cast<std::size_t>(side_);
  catalog_entries_[serving] = &loader->entry(side_, database_, user_, pass_through_);
  if (recorder_) catalog_entries_[1 - serving] = &loader->entry(config::other(side_), database_, user_, pass_through_);
  hook_.set_context(&contexts_[serving], capture_);
  if (recorder_) recorder_->set_context(&contexts_[1 - serving]);
  update_contexts();
  CatalogLoader::Entry& mine = *catalog_entries_[serving];
  if (mine.attempts() == 0) wait_for_catalog(mine, 0);
}

void Session::catalog_switched() {
  if (!uses_catalog_) return;
  const auto serving = static_cast<std::size_t>(side_);
  if (!catalog_entries_[serving]) catalog_entries_[serving] = &ctx_.catalogs->entry(side_, database_, user_, pass_through_);
  hook_.set_context(&contexts_[serving], capture_);
  if (recorder_) recorder_->set_context(&contexts_[1 - serving]);
  update_contexts();
}

std::vector<std::string> Session::effective_path() const {
  if (local_path_) return *local_path_;
  if (current_path_) return *current_path_;
  return {};
}

void Session::update_contexts() {
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    rewrite::Context& c = contexts_[i];
    CatalogLoader::Entry* e = catalog_entries_[i];
    catalog_seen_[i] = e ? e->generation() : 0;
    c.catalog = e ? e->current() : nullptr;
    std::vector<std::string> dflt;
    if (startup_path_) dflt = *startup_path_;
    else if (c.catalog) dflt = rewrite::parse_search_path(c.catalog->default_search_path(user_));
    else dflt = {"$user", "public"};
    c.user = user_;
    c.default_path = rewrite::expand_path(dflt, user_);
    c.path = local_path_ || current_path_ ? rewrite::expand_path(effective_path(), user_) : c.default_path;
    c.path_known = !path_unknown_;
    c.capture = capture_ && i == static_cast<std::size_t>(side_);
    c.renamed_elsewhere = &ctx_.renamed_tables;
    c.rehash();
  }
}

void Session::catalog_before(const protocol::Frame&) {
  for (std::size_t i = 0; i < catalog_entries_.size(); ++i) {
    const CatalogLoader::Entry* e = catalog_entries_[i];
    if (e && e->generation() != catalog_seen_[i]) {
      update_contexts();
      return;
    }
  }
}

// What the statements just analysed do to the search_path (as if they run:
// a failure or a rollback undoes it at the ReadyForQuery), and DDL.
void Session::catalog_after(const protocol::Frame&) {
  const rewrite::Analysis* a = hook_.last_analysis();
  if (!a) return;
  bool changed = false;
  for (const rewrite::StatementInfo& s : a->statements) {
    if (s.kind == rewrite::StatementKind::ddl) ddl_sent_ = true;
    if (s.txn == rewrite::TxnControl::rollback_to && path_changed_) {
      path_unknown_ = true;  // which SETs the savepoint undid is not followed
      changed = true;
    }
    switch (s.path_change) {
      case rewrite::PathChange::set:
        current_path_ = s.path;
        local_path_.reset();
        path_unknown_ = false;
        break;
      case rewrite::PathChange::set_local:
        local_path_ = s.path;
        break;
      case rewrite::PathChange::reset:
        current_path_.reset();
        local_path_.reset();
        path_unknown_ = false;
        break;
      case rewrite::PathChange::unknown:
        path_unknown_ = true;
        break;
      case rewrite::PathChange::none:
        continue;
    }
    path_changed_ = changed = true;
  }
  if (changed) update_contexts();
}

void Session::catalog_reply(const protocol::Frame& f) {
  if (!path_changed_ && !ddl_sent_ && !local_path_) return;
  switch (f.type) {
    case 'C': {
      protocol::CommandCompleteView c;
      if (!c.parse(f)) return;
      if (c.tag == "COMMIT") unit_commit_ = true;
      else if (c.tag == "ROLLBACK") unit_rollback_ = true;
      return;
    }
    case 'E':
      unit_error_ = true;
      return;
    case 'Z':
      break;
    default:
      return;
  }
  if (f.body.size() != 1 || f.body[0] != 'I') return;  // still in a transaction
  bool changed = local_path_.has_value();
  local_path_.reset();
  if (path_changed_) {
    const bool committed = unit_commit_ || (!unit_rollback_ && !unit_error_);
    if (committed) committed_path_ = current_path_;
    else current_path_ = committed_path_;
    changed = true;
  }
  path_changed_ = unit_commit_ = unit_rollback_ = unit_error_ = false;
  if (changed) update_contexts();
  if (ddl_sent_) {  // the next statement sees what it did
    ddl_sent_ = false;
    CatalogLoader::Entry* e = catalog_entries_[static_cast<std::size_t>(side_)];
    if (e) wait_for_catalog(*e, ctx_.catalogs->refresh(*e));
  }
}

void Session::wait_for_catalog(CatalogLoader::Entry& e, std::uint64_t after) {
  catalog_wait_ = true;
  const std::uint64_t id = ++catalog_wait_id_;
  catalog_deadline_ = std::chrono::steady_clock::now() + kCatalogWait;
  std::weak_ptr<Session> weak = weak_from_this();
  ctx_.catalogs->when_loaded_on(e, after, client_.socket().get_executor(), [weak, id] {
    if (auto s = weak.lock()) s->catalog_ready(id);
  });
}

void Session::catalog_ready(std::uint64_t wait) {
  if (wait != catalog_wait_id_ || !catalog_wait_) return;
  catalog_wait_ = false;
  update_contexts();
  wake_client_side();
}

void Session::catalog_gave_up() {
  catalog_wait_ = false;
  log_gave_up(peer_, database_);
  update_contexts();
}

}  // namespace pgshift::proxy
