#include "shadow/recorder.hpp"

#include <algorithm>

#include "protocol/builder.hpp"
#include "protocol/messages.hpp"
#include "shadow/capture.hpp"
#include "shadow/compare.hpp"

namespace pgshift::shadow {

std::size_t Transaction::bytes() const noexcept {
  std::size_t n = messages.size() + sizeof(Transaction);
  for (const auto& [name, parse] : statements) n += name.size() + parse.size();
  for (const StatementOutcome& o : primary) {
    n += o.tag.size() + o.text.size() + o.inexact.size() + sizeof o;
    if (o.returned) n += sizeof(Outcome) + o.returned->row_digests.size() * sizeof(std::uint64_t);
  }
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

// The name pgshift's own extended-protocol statement and portal use on the
// shadow for a captured statement (closed before each use).
constexpr std::string_view kCaptureName = "pgshift$capture";

// The last column of a DataRow (the capture column), or nullopt.
std::optional<std::string_view> last_column(const protocol::Frame& f) {
  protocol::Reader r(f.body);
  std::uint16_t n = 0;
  if (!r.u16(n) || n == 0) return std::nullopt;
  std::string_view v;
  for (std::uint16_t i = 0; i < n; ++i) {
    std::uint32_t len = 0;
    if (!r.u32(len)) return std::nullopt;
    if (len == 0xffffffffu) {
      if (i + 1 == n) return std::nullopt;
      continue;
    }
    if (!r.bytes(len, v)) return std::nullopt;
  }
  return v;
}

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
      write_rules_(rules),
      returned_(write_rules_),
      sample_rate_(read_sample_rate),
      random_(std::random_device{}()),
      collector_(rules) {
  write_rules_.max_kept_rows = 2;
}

// Discards the unit but keeps its buffers: most units are reads, which end here.
void Recorder::reset() {
  if (unit_) {
    unit_->messages.clear();
    unit_->statements.clear();
    unit_->replies = 0;
  }
  writes_ = state_ = rollback_to_ = explicit_ = committed_ = failed_ = oversize_ = sampled_ = false;
  capturing_ = collecting_ = ddl_ = batch_open_ = false;
  marks_.clear();
  changes_.clear();
  pending_.clear();
  holes_.clear();
  captured_bytes_ = 0;
  description_.clear();
  next_outcome_ = 0;
  rows_.clear();
  ordered_.clear();
  collector_.reset();
  returned_.reset();
}

void Recorder::start_unit() {
  if (!unit_) unit_ = std::make_unique<Transaction>();
  unit_->session = session_;
  unit_->origin = origin_;
  sampled_ = sample_rate_ > 0 && std::uniform_real_distribution<double>(0, 1)(random_) < sample_rate_;
}

// How the shadow's outcome of a statement is compared, and whether it is
// exact (see StatementOutcome).
void Recorder::judge(const rewrite::StatementInfo& s, const rewrite::Capture* c, Pending& p) {
  using Mode = rewrite::Capture::Mode;
  using Compare = StatementOutcome::Compare;
  p.out.compare = Compare::tag;
  if (c && c->mode == Mode::rows) {
    p.out.compare = Compare::count;
    p.capture = std::make_shared<const rewrite::Capture>(*c);
  } else if (c && c->mode == Mode::inexact) {
    if (needs_replay(s)) p.out.inexact = c->reason;
  } else if (s.kind == rewrite::StatementKind::write && !(c && c->nondeterministic)) {
    p.out.compare = Compare::rows;  // deterministic: what it returns must match too
  }
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
  const rewrite::Analysis* a = rewriter_->has_rules() ? &rewriter_->analyze(sql, context_) : nullptr;
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

// A simple Query: one pending statement each. When one is captured the
// whole Query is written out at the end of the unit (fill_holes), each other
// statement as the shadow's rules rewrite it.
void Recorder::query(const protocol::Frame& f, const rewrite::Analysis& a) {
  protocol::QueryView q;
  const bool parsed = q.parse(f);
  const std::size_t first = pending_.size();
  bool captured = false;
  for (std::size_t i = 0; i < a.statements.size(); ++i) {
    const rewrite::StatementInfo& s = a.statements[i];
    writes_ = writes_ || needs_replay(s);
    state_ = state_ || changes_state(s);
    rollback_to_ = rollback_to_ || rolls_back_to(s);
    ddl_ = ddl_ || s.kind == rewrite::StatementKind::ddl;
    Pending p;
    p.out.fingerprint = a.fingerprint;
    p.batch = batches_sent_;
    judge(s, i < a.captures.size() ? &a.captures[i] : nullptr, p);
    captured = captured || p.capture;
    if (!p.out.inexact.empty() && parsed) p.out.text.assign(q.sql);
    pending_.push_back(std::move(p));
    ordered_.push_back(s.ordered);
  }
  if (pending_.size() > first && parsed) {
    pending_.back().out.text.assign(q.sql);
    note_settings(a, q.sql, changes_);
  }
  ++batches_sent_;
  ++unit_->replies;
  if (!captured || !parsed) {
    append_sql_message(f, true);
    return;
  }
  capturing_ = true;
  Hole h;
  h.at = unit_->messages.size();
  h.first = first;
  h.query = true;
  for (std::size_t i = 0; i < a.statements.size(); ++i) {
    const rewrite::StatementInfo& s = a.statements[i];
    if (pending_[first + i].capture || s.begin > s.end || s.end > q.sql.size()) {
      h.texts.emplace_back();
      continue;
    }
    const std::string_view text = q.sql.substr(s.begin, s.end - s.begin);
    const rewrite::Analysis* sa = rewriter_->has_rules() ? &rewriter_->analyze(text, context_) : nullptr;
    h.texts.emplace_back(sa && sa->changed() ? std::string_view(sa->rewritten) : text);
  }
  holes_.push_back(std::move(h));
}

Recorder::Flags Recorder::take_flags() noexcept {
  Flags f{writes_, state_, rollback_to_, ddl_};
  writes_ = state_ = rollback_to_ = ddl_ = false;
  return f;
}

void Recorder::set_flags(const Flags& f) noexcept {
  writes_ = f.writes;
  state_ = f.state;
  rollback_to_ = f.rollback_to;
  ddl_ = f.ddl;
}

// Where each batch after the unit's first starts (see Mark). COPY data
// belongs to the Query (or Execute) that started the COPY, whose batch the
// server has not finished yet.
void Recorder::begin_message(char type) {
  if (!unit_ || (unit_->messages.empty() && pending_.empty() && holes_.empty())) {
    start_unit();
  } else if (type == 'd' || type == 'c' || type == 'f') {
    return;
  } else if (!batch_open_) {
    Mark m;
    m.batch = batches_sent_;
    m.messages = unit_->messages.size();
    m.pending = pending_.size();
    m.holes = holes_.size();
    m.changes = changes_.size();
    m.ordered = ordered_.size();
    m.captured_bytes = captured_bytes_;
    m.replies = unit_->replies;
    m.before = take_flags();
    marks_.push_back(m);
  }
  batch_open_ = true;
}

void Recorder::on_client(const protocol::Frame& f, const rewrite::Analysis* a) {
  if (f.type == 'X') return;
  begin_message(f.type);
  if (f.type == 'Q' || f.type == 'S' || f.type == 'F') batch_open_ = false;  // this message ends its batch
  if (oversize_) {
    if (f.type == 'Q' || f.type == 'S' || f.type == 'F') ++batches_sent_;
    return;
  }
  switch (f.type) {
    case 'Q':
      if (!a) {
        ++batches_sent_;
        return;
      }
      query(f, *a);
      break;
    case 'P': {
      protocol::ParseView p;
      if (!a || !p.parse(f)) return;
      Prepared& info = prepared_[std::string(p.name)];
      info.writes = info.state = info.rollback_to = info.ddl = false;
      for (const rewrite::StatementInfo& s : a->statements) {
        info.writes = info.writes || needs_replay(s);
        info.state = info.state || changes_state(s);
        info.rollback_to = info.rollback_to || rolls_back_to(s);
        info.ddl = info.ddl || s.kind == rewrite::StatementKind::ddl;
      }
      info.changes.clear();
      note_settings(*a, p.sql, info.changes);
      info.ordered = a->statements.size() == 1 && a->statements[0].ordered;
      info.fingerprint = a->fingerprint;
      info.text.assign(p.sql);
      Pending judged;
      if (a->statements.size() == 1) judge(a->statements[0], a->captures.empty() ? nullptr : &a->captures[0], judged);
      info.compare = judged.out.compare;
      info.inexact = std::move(judged.out.inexact);
      info.capture = std::move(judged.capture);
      if (info.capture) {
        // Never run on the shadow: its Executes become pgshift's statements.
        parsed_.erase(std::string(p.name));
        return;
      }
      append_sql_message(f, false);
      break;
    }
    case 'B': {
      protocol::BindView b;
      if (b.parse(f)) {
        const std::string name(b.statement);
        auto it_info = prepared_.find(name);
        bound_ = it_info != prepared_.end() ? &it_info->second : &unknown_statement;
        bound_portal_.assign(b.portal);
        bound_executed_ = false;
        writes_ = writes_ || bound_->writes;
        state_ = state_ || bound_->state;
        rollback_to_ = rollback_to_ || bound_->rollback_to;
        ddl_ = ddl_ || bound_->ddl;
        if (bound_->capture) {
          if (!bound_portal_.empty()) captured_portals_[bound_portal_] = {bound_, false};
          return;  // the shadow gets pgshift's statement at the Execute
        }
        if (!bound_portal_.empty() && !captured_portals_.empty()) captured_portals_.erase(bound_portal_);
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
    case 'D': {
      protocol::TargetView d;
      if (d.parse(f)) {  // a captured statement or portal does not exist on the shadow
        if (d.kind == 'S') {
          auto it = prepared_.find(std::string(d.name));
          if (it != prepared_.end() && it->second.capture) return;
        } else if ((d.name == bound_portal_ && bound_ && bound_->capture) ||
                   captured_portals_.count(std::string(d.name))) {
          return;
        }
      }
      unit_->messages.append(f.bytes);
      break;
    }
    case 'E': {
      protocol::ExecuteView e;
      const Prepared* bound = bound_ ? bound_ : &unknown_statement;
      bool* executed = &bound_executed_;
      if (e.parse(f) && e.portal != bound_portal_) {
        auto it = captured_portals_.find(std::string(e.portal));
        if (it != captured_portals_.end()) {
          bound = it->second.first;
          executed = &it->second.second;
        }
      }
      Pending p;
      p.out.fingerprint = bound->fingerprint;
      p.out.text = bound->text;
      p.out.compare = bound->compare;
      p.out.inexact = bound->inexact;
      p.batch = batches_sent_;
      changes_.insert(changes_.end(), bound->changes.begin(), bound->changes.end());
      ordered_.push_back(bound->ordered);
      if (bound->capture) {
        if (*executed) {
          p.skip = true;  // its rows were all returned by the first Execute
        } else {
          p.capture = bound->capture;
          capturing_ = true;
          holes_.push_back({unit_->messages.size(), pending_.size(), false, {}});
        }
        *executed = true;
        pending_.push_back(std::move(p));
        break;
      }
      pending_.push_back(std::move(p));
      unit_->messages.append(f.bytes);
      break;
    }
    case 'S':
      ++batches_sent_;
      ++unit_->replies;
      unit_->messages.append(f.bytes);
      break;
    case 'F': {
      writes_ = true;
      Pending p;
      p.batch = batches_sent_++;
      pending_.push_back(std::move(p));
      ++unit_->replies;
      unit_->messages.append(f.bytes);
      break;
    }
    default:  // Close, Flush, CopyData, CopyDone, CopyFail
      unit_->messages.append(f.bytes);
  }
  if (unit_->messages.size() + captured_bytes_ > max_bytes_) {
    oversize_ = true;
    unit_->messages.clear();
    unit_->messages.shrink_to_fit();
    holes_.clear();
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
    Pending& p = pending_[next_outcome_];
    p.out.tag = std::move(tag);
    p.out.sqlstate = std::move(sqlstate);
    if (collecting_) {
      p.out.returned = std::make_unique<Outcome>(returned_.take());
      collecting_ = false;
    }
  }
  ++next_outcome_;
}

// The statements of the batch this ReadyForQuery ends that have no outcome
// were skipped by the server after an error; the shadow skips them too.
void Recorder::ready_for_query() {
  while (next_outcome_ < pending_.size() && pending_[next_outcome_].batch <= batches_done_)
    pending_[next_outcome_++].not_run = true;
  ++batches_done_;
  if (collecting_) {
    returned_.reset();
    collecting_ = false;
  }
}

void Recorder::captured_row(const protocol::Frame& f) {
  Pending& p = pending_[next_outcome_];
  const std::optional<std::string_view> v = last_column(f);
  if (!v) {
    p.unreadable = true;  // the server ran it without pgshift's capture column
    return;
  }
  p.rows.emplace_back(*v);
  captured_bytes_ += v->size() + sizeof(std::string);
  if (unit_ && unit_->messages.size() + captured_bytes_ > max_bytes_) oversize_ = true;
}

// A deterministic write's returned rows (RETURNING, SELECT ... FOR UPDATE),
// digested as they pass, for the comparison with the shadow's.
void Recorder::feed_returned(const protocol::Frame& f) {
  if (!collecting_) {
    if (f.type != 'T' && f.type != 'D') return;
    collecting_ = true;
    if (f.type == 'D' && !description_.empty()) returned_.describe(description_);
  }
  if (returned_.feed(f) == ResultCollector::Feed::bad) returned_.reset();
}

void Recorder::on_server(const protocol::Frame& f) {
  if (sampled_ && f.type != 'Z') {
    const ResultCollector::Feed feed = collector_.feed(f);
    if (feed == ResultCollector::Feed::bad) sampled_ = false;
    else if (feed == ResultCollector::Feed::done) rows_.push_back(collector_.take());
  }
  const bool current = next_outcome_ < pending_.size();
  if (current && pending_[next_outcome_].out.compare == StatementOutcome::Compare::rows && !oversize_) {
    switch (f.type) {
      case 'T': case 'D': case 'C': case 'E': case 'I': case 's':
        feed_returned(f);
        break;
      default:
        break;
    }
  } else if (f.type == 'T' && !collecting_) {
    description_.assign(f.body);
  }
  if (!description_.empty() && (f.type == 'C' || f.type == 'E' || f.type == 'I' || f.type == 's'))
    description_.clear();
  switch (f.type) {
    case 'D':
      if (capturing_ && current && pending_[next_outcome_].capture && !oversize_) captured_row(f);
      break;
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
      ready_for_query();
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

// pgshift's statement in place of each captured one: the rows the primary
// wrote, an error where it failed, nothing where it did not run. False when
// a captured row does not fit the catalog's table.
bool Recorder::fill_holes(Transaction& t, std::string& error) {
  // A captured write whose rows did not all come back is never mirrored as
  // the rows that did: the shadow would silently miss the others. It fails
  // the unit instead, and the mirror says so (diverged).
  auto statement = [&](const Pending& p, std::string& sql) {
    if (p.not_run) {
      sql = no_rows_statement();
    } else if (p.out.sqlstate) {
      sql = failing_statement(*p.out.sqlstate);
    } else if (!p.capture) {
      sql = no_rows_statement();  // not captured, and its text could not be cut out: counted as not exact
    } else if (p.unreadable) {
      error = "the rows of \"" + p.out.tag + "\" came back without pgshift's capture column";
      return false;
    } else if (const std::optional<std::uint64_t> n = parse_tag(p.out.tag).count; n && *n != p.rows.size()) {
      error = "the server reported \"" + p.out.tag + "\" but " + std::to_string(p.rows.size()) +
              " row(s) came back with pgshift's capture column";
      return false;
    } else if (!capture_statement(*p.capture, p.rows, sql, error)) {
      return false;
    }
    return true;
  };
  std::string out;
  out.reserve(t.messages.size() + captured_bytes_ + holes_.size() * 64);
  std::size_t pos = 0;
  std::string sql;
  for (const Hole& h : holes_) {
    out.append(t.messages, pos, h.at - pos);
    pos = h.at;
    if (h.query) {
      std::string text;
      for (std::size_t i = 0; i < h.texts.size(); ++i) {
        const Pending& p = pending_[h.first + i];
        if (i) text += ";\n";
        if (p.capture || (h.texts[i].empty() && !p.out.inexact.empty())) {
          if (!statement(p, sql)) return false;
          text += sql;
        } else {
          text += h.texts[i];
        }
      }
      protocol::append_query(out, text);
    } else {
      if (!statement(pending_[h.first], sql)) return false;
      const std::string_view name = kCaptureName;
      protocol::append_close(out, 'S', name);
      protocol::append_close(out, 'P', name);
      protocol::append_parse(out, name, sql);
      protocol::append_bind(out, name, name);
      protocol::append_execute(out, name, 0);
    }
    ++t.captured;
  }
  out.append(t.messages, pos, std::string::npos);
  t.messages = std::move(out);
  return true;
}

// Back to idle: hand the unit over if it changed something and committed,
// or if it is a sampled read. What the client sent after this unit's last
// batch (pipelined) starts the next unit.
void Recorder::unit_ended() {
  if (!unit_) return;
  const std::uint64_t done = batches_done_ - 1;  // the batch this ReadyForQuery ended
  std::size_t split = marks_.size();
  for (std::size_t i = 0; i < marks_.size(); ++i) {
    if (marks_[i].batch > done) {
      split = i;
      break;
    }
  }
  struct Tail {
    std::string messages;
    std::vector<std::pair<std::string, std::string>> statements;
    std::vector<Pending> pending;
    std::vector<bool> ordered;
    std::vector<Hole> holes;
    std::vector<Change> changes;
    std::vector<Mark> marks;
    std::uint32_t replies = 0;
    std::size_t captured_bytes = 0;
    Flags flags;
    bool batch_open = false;
  };
  std::optional<Tail> tail;
  Flags unit_flags;
  for (std::size_t i = 0; i < split && i < marks_.size(); ++i) unit_flags |= marks_[i].before;
  if (split < marks_.size()) {
    const Mark m = marks_[split];
    unit_flags |= m.before;
    Tail t;
    t.flags = take_flags();
    for (std::size_t i = split + 1; i < marks_.size(); ++i) t.flags |= marks_[i].before;
    t.messages = unit_->messages.substr(std::min(m.messages, unit_->messages.size()));
    unit_->messages.resize(std::min(m.messages, unit_->messages.size()));
    t.statements = unit_->statements;  // the tail may bind any of them; the applier skips what a connection has
    t.pending.assign(std::make_move_iterator(pending_.begin() + static_cast<std::ptrdiff_t>(m.pending)),
                     std::make_move_iterator(pending_.end()));
    pending_.resize(m.pending);
    if (m.ordered <= ordered_.size()) {
      t.ordered.assign(ordered_.begin() + static_cast<std::ptrdiff_t>(m.ordered), ordered_.end());
      ordered_.resize(m.ordered);
    }
    for (std::size_t i = m.holes; i < holes_.size(); ++i) {
      Hole h = std::move(holes_[i]);
      h.at -= m.messages;
      h.first -= m.pending;
      t.holes.push_back(std::move(h));
    }
    holes_.resize(m.holes);
    t.changes.assign(changes_.begin() + static_cast<std::ptrdiff_t>(m.changes), changes_.end());
    changes_.resize(m.changes);
    for (std::size_t i = split + 1; i < marks_.size(); ++i) {
      Mark later = marks_[i];
      later.messages -= m.messages;
      later.pending -= m.pending;
      later.holes -= m.holes;
      later.changes -= m.changes;
      later.ordered -= m.ordered;
      later.captured_bytes -= m.captured_bytes;
      later.replies -= m.replies;
      t.marks.push_back(later);
    }
    t.replies = unit_->replies - m.replies;
    unit_->replies = m.replies;
    t.captured_bytes = captured_bytes_ - m.captured_bytes;
    captured_bytes_ = m.captured_bytes;
    t.batch_open = batch_open_;
    tail = std::move(t);
  } else {
    unit_flags |= take_flags();
  }
  set_flags(unit_flags);
  hand_over();
  reset();
  if (!tail) return;
  start_unit();
  sampled_ = false;  // its replies have begun elsewhere: nothing to collect
  unit_->messages = std::move(tail->messages);
  unit_->statements = std::move(tail->statements);
  unit_->replies = tail->replies;
  pending_ = std::move(tail->pending);
  ordered_ = std::move(tail->ordered);
  holes_ = std::move(tail->holes);
  changes_ = std::move(tail->changes);
  marks_ = std::move(tail->marks);
  captured_bytes_ = tail->captured_bytes;
  set_flags(tail->flags);
  for (const Pending& p : pending_) capturing_ = capturing_ || p.capture;
  batch_open_ = tail->batch_open;
}

void Recorder::hand_over() {
  if (sampled_ && !writes_ && !oversize_ && !rows_.empty()) {  // read-only, in a transaction or not
    unit_->read = true;
    unit_->finished = std::chrono::steady_clock::now();
    unit_->own_connection = stateful_;
    unit_->settings = unit_->settings_after = settings_;
    unit_->primary_rows = std::move(rows_);
    unit_->ordered = std::move(ordered_);
    pending_.resize(std::min(pending_.size(), next_outcome_));
    unit_->primary.clear();
    for (Pending& p : pending_) unit_->primary.push_back(std::move(p.out));
    submit_(std::move(unit_));
    return;
  }
  const bool committed = committed_ || (!explicit_ && !failed_);
  if (!writes_ || !committed || !mirror_writes_) return;  // logical mode: the stream carries writes
  stateful_ = stateful_ || state_;
  commit_settings(*unit_);
  unit_->own_connection = stateful_;
  unit_->ddl = ddl_;
  std::string why;
  if (!oversize_ && !holes_.empty() && !fill_holes(*unit_, why)) why = "a captured write could not be mirrored: " + why;
  if (oversize_ || !why.empty()) {
    if (oversize_) ++dropped_oversize_;
    auto t = std::make_unique<Transaction>();
    t->session = session_;
    t->origin = origin_;
    t->kind = Transaction::Kind::dropped;
    t->why = std::move(why);
    t->ddl = ddl_;
    submit_(std::move(t));
    return;
  }
  unit_->primary.clear();
  for (Pending& p : pending_) {
    if (p.not_run || p.skip) continue;  // the shadow skips (or never gets) them too
    unit_->primary.push_back(std::move(p.out));
  }
  submit_(std::move(unit_));
}

}  // namespace pgshift::shadow
