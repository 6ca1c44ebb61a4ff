#include "shadow/recorder.hpp"

#include <algorithm>

#include "protocol/builder.hpp"
#include "protocol/messages.hpp"

namespace pgshift::shadow {

std::size_t Transaction::bytes() const noexcept {
  std::size_t n = messages.size() + sizeof(Transaction);
  for (const auto& [name, parse] : statements) n += name.size() + parse.size();
  for (const StatementOutcome& o : primary) n += o.tag.size() + o.text.size() + sizeof o;
  for (const Outcome& o : primary_rows) {
    n += sizeof o + o.row_digests.size() * sizeof(std::uint64_t) + o.approx_values.size() * sizeof(long double);
    for (const std::string& r : o.sample_rows) n += r.size();
  }
  return n;
}

namespace {

// Statements whose effect the shadow needs: data and schema changes, and
// session settings later statements depend on. Advisory locks are left out:
// replayed one transaction at a time, a lock held by one session's shadow
// connection would stop every other.
bool needs_replay(const rewrite::StatementInfo& s) {
  using K = rewrite::StatementKind;
  if (s.lock) return false;
  return s.writes || s.kind == K::session;
}

// Session state other than run-time parameters (those are tracked as Settings).
bool changes_state(const rewrite::StatementInfo& s) {
  return s.session_state && !s.lock && s.setting == rewrite::Setting::none;
}

bool rolls_back_to(const rewrite::StatementInfo& s) { return s.txn == rewrite::TxnControl::rollback_to; }

}  // namespace

const Recorder::Prepared Recorder::unknown_statement{};

bool same_settings(const SettingsPtr& a, const SettingsPtr& b) noexcept {
  if (a == b) return true;
  const bool a_none = !a || a->statements.empty(), b_none = !b || b->statements.empty();
  if (a_none || b_none) return a_none && b_none;
  return a->statements == b->statements;
}

std::string login_key(const Origin& o) {
  std::string key = o.user;
  key += '\0';
  key += o.database;
  for (const auto& [k, v] : o.params) {
    key += '\0';
    key += k;
    key += '=';
    key += v;
  }
  return key;
}

Recorder::Recorder(std::uint64_t session, std::shared_ptr<const Origin> origin, rewrite::Rewriter& shadow_rewriter,
                   std::size_t max_bytes, double read_sample_rate, const CompareRules& rules, Submit submit)
    : session_(session),
      origin_(std::move(origin)),
      rewriter_(&shadow_rewriter),
      max_bytes_(max_bytes),
      submit_(std::move(submit)),
      sample_rate_(read_sample_rate),
      random_(std::random_device{}()),
      collector_(rules) {}

// Discards the unit but keeps its buffers: most units are reads, which end here.
void Recorder::reset() {
  if (unit_) {
    unit_->messages.clear();
    unit_->statements.clear();
    unit_->replies = 0;
  }
  writes_ = state_ = rollback_to_ = explicit_ = committed_ = failed_ = oversize_ = sampled_ = false;
  changes_.clear();
  pending_.clear();
  next_outcome_ = 0;
  rows_.clear();
  ordered_.clear();
  collector_.reset();
}

void Recorder::start_unit() {
  if (!unit_) unit_ = std::make_unique<Transaction>();
  unit_->session = session_;
  unit_->origin = origin_;
  sampled_ = sample_rate_ > 0 && std::uniform_real_distribution<double>(0, 1)(random_) < sample_rate_;
}

// Query and Parse go to the shadow with the shadow's rewrite of their SQL.
void Recorder::append_sql_message(const protocol::Frame& f, bool is_query) {
  protocol::ParseView p;
  protocol::QueryView q;
  if (is_query ? !q.parse(f) : !p.parse(f)) {
    unit_->messages.append(f.bytes);
    return;
  }
  const std::string_view sql = is_query ? q.sql : p.sql;
  // The client's text, rewritten by the shadow's own rules only: `primary`
  // holds the primary's rewrite, which names columns the shadow may not have.
  const rewrite::Analysis* a = rewriter_->has_rules() ? &rewriter_->analyze(sql) : nullptr;
  const std::string_view text = a && a->changed() ? std::string_view(a->rewritten) : sql;
  std::string message;
  if (is_query) {
    protocol::append_query(message, text);
  } else {
    protocol::append_parse(message, p.name, text, p.types);
  }
  if (!is_query && !p.name.empty()) {
    // Named statements live in the session: kept here, sent by the applier
    // to the shadow connection before a transaction that uses them.
    parsed_[std::string(p.name)] = std::move(message);
    return;
  }
  unit_->messages.append(message);
}

void Recorder::on_client(const protocol::Frame& f, const rewrite::Analysis* a) {
  if (!unit_ || (unit_->messages.empty() && pending_.empty())) start_unit();
  if (oversize_) return;
  switch (f.type) {
    case 'Q':
      if (!a) return;
      for (const rewrite::StatementInfo& s : a->statements) {
        writes_ = writes_ || needs_replay(s);
        state_ = state_ || changes_state(s);
        rollback_to_ = rollback_to_ || rolls_back_to(s);
        pending_.push_back({{}, {}, a->fingerprint, {}});
        ordered_.push_back(s.ordered);
      }
      if (!pending_.empty()) {
        protocol::QueryView q;
        if (q.parse(f)) {
          pending_.back().text.assign(q.sql);
          note_settings(*a, q.sql, changes_);
        }
      }
      append_sql_message(f, true);
      ++unit_->replies;
      break;
    case 'P': {
      protocol::ParseView p;
      if (!a || !p.parse(f)) return;
      Prepared& info = prepared_[std::string(p.name)];
      info.writes = info.state = info.rollback_to = false;
      for (const rewrite::StatementInfo& s : a->statements) {
        info.writes = info.writes || needs_replay(s);
        info.state = info.state || changes_state(s);
        info.rollback_to = info.rollback_to || rolls_back_to(s);
      }
      info.changes.clear();
      note_settings(*a, p.sql, info.changes);
      info.ordered = a->statements.size() == 1 && a->statements[0].ordered;
      info.fingerprint = a->fingerprint;
      info.text.assign(p.sql);
      append_sql_message(f, false);
      break;
    }
    case 'B': {
      protocol::BindView b;
      if (b.parse(f)) {
        const std::string name(b.statement);
        auto it_info = prepared_.find(name);
        bound_ = it_info != prepared_.end() ? &it_info->second : &unknown_statement;
        writes_ = writes_ || bound_->writes;
        state_ = state_ || bound_->state;
        rollback_to_ = rollback_to_ || bound_->rollback_to;
        auto it = name.empty() ? parsed_.end() : parsed_.find(name);
        if (it != parsed_.end()) {
          bool listed = false;
          for (const auto& st : unit_->statements) listed = listed || st.first == it->first;
          if (!listed) unit_->statements.emplace_back(it->first, it->second);
        }
      }
      unit_->messages.append(f.bytes);
      break;
    }
    case 'E': {
      const Prepared& bound = bound_ ? *bound_ : unknown_statement;
      pending_.push_back({{}, {}, bound.fingerprint, bound.text});
      ordered_.push_back(bound.ordered);
      changes_.insert(changes_.end(), bound.changes.begin(), bound.changes.end());
      unit_->messages.append(f.bytes);
      break;
    }
    case 'S':
      ++unit_->replies;
      unit_->messages.append(f.bytes);
      break;
    case 'F':
      writes_ = true;
      pending_.push_back({});
      ++unit_->replies;
      unit_->messages.append(f.bytes);
      break;
    case 'X':
      return;
    default:  // Describe, Close, Flush, CopyData, CopyDone, CopyFail
      unit_->messages.append(f.bytes);
  }
  if (unit_->messages.size() > max_bytes_) {
    oversize_ = true;
    unit_->messages.clear();
    unit_->messages.shrink_to_fit();
  }
}

// After a cutover the mirror writes to the other server, with its rules: the
// session's named statements are rewritten again for it.
void Recorder::retarget(rewrite::Rewriter& rewriter, const std::vector<std::string_view>& named_parses) {
  rewriter_ = &rewriter;
  parsed_.clear();
  for (std::string_view bytes : named_parses) {  // each a complete, well-formed, named Parse
    const protocol::ParseResult r = protocol::parse_frame(bytes, protocol::Direction::frontend, protocol::Limits{});
    if (r.status == protocol::ParseStatus::complete && r.frame.type == 'P') append_sql_message(r.frame, false);
  }
}

void Recorder::on_streamed_client(char) {
  oversize_ = true;  // a message too large to keep: the unit cannot be replayed
  if (unit_) unit_->messages.clear();
}

void Recorder::statement_done(std::string tag, std::optional<std::string> sqlstate) {
  if (next_outcome_ < pending_.size()) {
    pending_[next_outcome_].tag = std::move(tag);
    pending_[next_outcome_].sqlstate = std::move(sqlstate);
  }
  ++next_outcome_;
}

void Recorder::on_server(const protocol::Frame& f) {
  if (sampled_ && f.type != 'Z') {
    const ResultCollector::Feed feed = collector_.feed(f);
    if (feed == ResultCollector::Feed::bad) sampled_ = false;
    else if (feed == ResultCollector::Feed::done) rows_.push_back(collector_.take());
  }
  switch (f.type) {
    case 'C': {
      protocol::CommandCompleteView c;
      if (!c.parse(f)) return;
      if (c.tag == "COMMIT") committed_ = true;
      statement_done(std::string(c.tag), std::nullopt);
      break;
    }
    case 'E': {
      protocol::ErrorFieldsView e;
      failed_ = true;
      statement_done({}, e.parse(f) && e.sqlstate ? std::optional<std::string>(*e.sqlstate) : std::string("?"));
      break;
    }
    case 'I':
      statement_done({}, std::nullopt);
      break;
    case 's':
      statement_done("(suspended)", std::nullopt);
      break;
    case 'Z':
      if (f.body.size() == 1 && f.body[0] != 'I') explicit_ = true;
      else unit_ended();
      break;
    default:
      break;
  }
}

void Recorder::note_settings(const rewrite::Analysis& a, std::string_view sql, std::vector<Change>& out) {
  for (const rewrite::StatementInfo& s : a.statements) {
    if (s.setting == rewrite::Setting::none || s.begin > s.end || s.end > sql.size()) continue;
    out.push_back({s.setting, s.setting_name, std::string(sql.substr(s.begin, s.end - s.begin))});
  }
}

// The session's settings after a committed unit. Which SETs a ROLLBACK TO
// SAVEPOINT undid is not known here: such a session keeps its own shadow
// connection, which saw every statement, from then on.
void Recorder::commit_settings(Transaction& t) {
  t.settings = settings_;
  if (!changes_.empty() && rollback_to_) stateful_ = true;
  if (!changes_.empty() && !rollback_to_) {
    auto next = settings_ ? std::make_shared<Settings>(*settings_) : std::make_shared<Settings>();
    auto& list = next->statements;
    for (Change& c : changes_) {
      auto it = std::find_if(list.begin(), list.end(), [&](const auto& kv) { return kv.first == c.name; });
      if (c.kind == rewrite::Setting::reset_all) list.clear();
      else if (c.kind == rewrite::Setting::reset && it != list.end()) list.erase(it);
      else if (c.kind == rewrite::Setting::set && it != list.end()) it->second = std::move(c.statement);
      else if (c.kind == rewrite::Setting::set) list.emplace_back(std::move(c.name), std::move(c.statement));
    }
    settings_ = std::move(next);
  }
  t.settings_after = settings_;
}

// Back to idle: hand the unit over if it changed something and committed,
// or if it is a sampled read.
void Recorder::unit_ended() {
  if (unit_ && sampled_ && !writes_ && !oversize_ && !rows_.empty()) {  // read-only, in a transaction or not
    unit_->read = true;
    unit_->finished = std::chrono::steady_clock::now();
    unit_->own_connection = stateful_;
    unit_->settings = unit_->settings_after = settings_;
    unit_->primary_rows = std::move(rows_);
    unit_->ordered = std::move(ordered_);
    pending_.resize(std::min(pending_.size(), next_outcome_));
    unit_->primary = std::move(pending_);
    submit_(std::move(unit_));
    reset();
    return;
  }
  const bool committed = committed_ || (!explicit_ && !failed_);
  if (unit_ && writes_ && committed && mirror_writes_) {
    stateful_ = stateful_ || state_;
    commit_settings(*unit_);
    unit_->own_connection = stateful_;
    if (oversize_) {
      ++dropped_oversize_;
      auto t = std::make_unique<Transaction>();
      t->session = session_;
      t->origin = origin_;
      t->kind = Transaction::Kind::dropped;
      submit_(std::move(t));
    } else {
      pending_.resize(std::min(pending_.size(), next_outcome_));
      unit_->primary = std::move(pending_);
      submit_(std::move(unit_));
    }
  }
  reset();
}

}  // namespace pgshift::shadow
