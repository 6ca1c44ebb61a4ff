#include "proxy/query_hook.hpp"

#include <spdlog/spdlog.h>

#include "protocol/builder.hpp"
#include "protocol/log_text.hpp"
#include "protocol/messages.hpp"

namespace pgshift::proxy {
namespace {

using protocol::Frame;

QueryHook::RenamesPtr share(const std::vector<rewrite::OutputRename>& r) {
  return r.empty() ? nullptr : std::make_shared<const std::vector<rewrite::OutputRename>>(r);
}

// A statement that makes the server itself report the refusal, so the error
// reaches the client in order with every other reply.
void refusal_sql(std::string& out, const rewrite::Analysis& a) {
  std::string msg = "pgshift refused a statement it cannot rewrite safely (" + a.warning +
                    "); statement fingerprint " + fmt::format("{:016x}", a.fingerprint);
  std::string quoted;
  for (char c : msg) {
    quoted.push_back(c);
    if (c == '\'') quoted.push_back('\'');
  }
  out = "DO $pgshift$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = '" + quoted + "'; END$pgshift$";
}

// "INSERT 0 5" with another row count.
std::string with_count(std::string_view tag, std::uint32_t n) {
  const std::size_t space = tag.rfind(' ');
  if (space == std::string_view::npos) return std::string(tag);
  return std::string(tag.substr(0, space + 1)) + std::to_string(n);
}

}  // namespace

Verdict QueryHook::on_client(const Frame& f, WriteBatch& out) {
  switch (f.type) {
    case 'Q': return query(f, out);
    case 'P': return parse(f, out);
    default: break;
  }
  if (!tracking()) return Verdict::forward;
  switch (f.type) {
    case 'B': return bind(f, out);
    case 'D': describe(f); break;
    case 'E': return execute(f, out);
    case 'C': close(f); break;
    case 'S': case 'F':
      if (expected_.empty()) ++leading_syncs_;
      else expected_.emplace_back(Expected::Kind::sync);
      break;
    default: break;
  }
  return Verdict::forward;
}

const std::string* QueryHook::decide(std::string_view sql, const rewrite::Analysis& a) {
  stats::Block& process = stats::local();
  counters_.statements += a.statements.size();
  counters_.last_fingerprint.store(a.fingerprint, std::memory_order_relaxed);
  for (const auto& s : a.statements) {
    counters_.writes += s.writes ? 1 : 0;
    const auto kind = static_cast<std::size_t>(s.kind);
    if (kind < stats::kKinds) ++process.statements[kind];
  }
  if (a.warning.empty()) {
    if (!a.changed()) return nullptr;
    ++counters_.rewritten;
    ++process.rewritten;
    return &a.rewritten;
  }
  if (a.report_warning)
    spdlog::warn("rewrite: {} statement {:016x} ({}): {}", strict_ ? "refused" : "left unchanged",
                 a.fingerprint, protocol::log_text(a.warning), protocol::log_text(sql));
  if (!strict_) return nullptr;
  ++counters_.refused;
  ++process.refused;
  refusal_sql(refusal_, a);
  return &refusal_;
}

QueryHook::Extra QueryHook::extra_for(const rewrite::Analysis& a, std::size_t i) {
  if (i >= a.captures.size() || a.captures[i].mode != rewrite::Capture::Mode::rows) return Extra::none;
  return a.captures[i].client_returning ? Extra::column : Extra::rows;
}

Verdict QueryHook::query(const Frame& f, WriteBatch& out) {
  protocol::QueryView q;
  last_ = nullptr;
  if (!q.parse(f)) return Verdict::forward;  // the server reports malformed messages itself
  const rewrite::Analysis& a = rewriter_->analyze(q.sql, context_);
  last_ = &a;
  const std::string* replacement = decide(q.sql, a);
  const bool refused = replacement == &refusal_;
  if (tracking()) {
    Expected e(Expected::Kind::query);
    for (std::size_t i = 0; i < a.statements.size(); ++i) {
      Shape s{renames_for(a, i), refused ? Extra::none : extra_for(a, i)};
      if (s.extra != Extra::none) ++counters_.captured;
      e.statements.push_back(std::move(s));
    }
    expected_.push_back(std::move(e));
  }
  if (!replacement) return Verdict::forward;
  protocol::append_query(out.own(), *replacement);
  return Verdict::drop;
}

Verdict QueryHook::parse(const Frame& f, WriteBatch& out) {
  protocol::ParseView p;
  last_ = nullptr;
  if (!p.parse(f)) return Verdict::forward;
  const rewrite::Analysis& a = rewriter_->analyze(p.sql, context_);
  last_ = &a;
  const std::string* replacement = decide(p.sql, a);
  if (replacement != &refusal_) learn_outputs(p, a);
  else statements_.erase(std::string(p.name));
  if (!replacement) return Verdict::forward;
  protocol::append_parse(out.own(), p.name, *replacement, p.types);  // same name and parameter types
  return Verdict::drop;
}

void QueryHook::learn_outputs(const protocol::ParseView& p, const rewrite::Analysis& a) {
  if (!tracking()) return;
  Shape s;
  if (a.statements.size() == 1) s = Shape{renames_for(a, 0), extra_for(a, 0)};
  if (!s.empty()) statements_[std::string(p.name)] = std::move(s);
  else statements_.erase(std::string(p.name));
}

void QueryHook::rebind(rewrite::Rewriter& rewriter, const std::vector<std::string_view>& named_parses) {
  rewriter_ = &rewriter;
  statements_.clear();
  portals_.clear();
  leftovers_.clear();
  expected_.clear();
  leading_syncs_ = 0;
  last_ = nullptr;
  for (std::string_view bytes : named_parses) {
    const protocol::ParseResult r = protocol::parse_frame(bytes, protocol::Direction::frontend, protocol::Limits{});
    protocol::ParseView p;
    if (r.status == protocol::ParseStatus::complete && p.parse(r.frame))
      learn_outputs(p, rewriter_->analyze(p.sql, context_));
  }
}

QueryHook::RenamesPtr QueryHook::renames_for(const rewrite::Analysis& a, std::size_t i) {
  using Op = rewrite::NamedOutputs::Op;
  RenamesPtr own = i < a.outputs.size() ? share(a.outputs[i]) : nullptr;
  if (i >= a.named.size()) return own;
  const rewrite::NamedOutputs& n = a.named[i];
  auto define = [&](auto& map) {
    if (n.outputs.empty()) map.erase(n.name);
    else map[n.name] = Shape{share(n.outputs), Extra::none};
  };
  auto lookup = [&](const auto& map) -> RenamesPtr {
    auto it = map.find(n.name);
    return it == map.end() ? nullptr : it->second.renames;
  };
  auto forget = [&](auto& map) {
    if (n.name.empty()) map.clear();
    else map.erase(n.name);
  };
  switch (n.op) {
    case Op::prepare: define(statements_); break;
    case Op::declare: define(portals_); break;
    case Op::execute: return lookup(statements_);
    case Op::fetch: return lookup(portals_);
    case Op::deallocate: forget(statements_); break;
    case Op::close: forget(portals_); break;
    case Op::none: break;
  }
  return own;
}

// A Bind takes its statement's shape to its portal. One of a captured
// statement that gives a format code per result column gets one more, for
// the capture column (a text value, whose bytes are the same in both formats).
Verdict QueryHook::bind(const Frame& f, WriteBatch& out) {
  if (statements_.empty() && portals_.empty() && leftovers_.empty()) return Verdict::forward;
  protocol::BindView b;
  if (!b.parse(f)) return Verdict::forward;
  const std::string portal(b.portal);
  if (!leftovers_.empty()) leftovers_.erase(portal);
  auto it = statements_.find(std::string(b.statement));
  if (it == statements_.end()) {
    portals_.erase(portal);
    return Verdict::forward;
  }
  portals_[portal] = it->second;
  if (it->second.extra != Extra::column) return Verdict::forward;
  protocol::Reader r(f.body);
  std::string_view skip;
  std::uint16_t formats = 0, params = 0, results = 0;
  if (!r.cstring(skip) || !r.cstring(skip) || !r.u16(formats) || !r.bytes(2u * formats, skip) || !r.u16(params))
    return Verdict::forward;
  for (std::uint16_t i = 0; i < params; ++i) {
    std::uint32_t len = 0;
    if (!r.u32(len)) return Verdict::forward;
    if (len != 0xffffffffu && !r.bytes(len, skip)) return Verdict::forward;
  }
  const std::size_t at = f.body.size() - r.rest().size();
  if (!r.u16(results) || results < 2 || results == 0xffff) return Verdict::forward;
  protocol::MessageWriter w(out.own());
  w.begin('B').raw(f.body.substr(0, at)).u16(static_cast<std::uint16_t>(results + 1)).raw(f.body.substr(at + 2)).u16(0);
  w.end();
  return Verdict::drop;
}

void QueryHook::describe(const Frame& f) {
  protocol::TargetView d;
  if (!d.parse(f)) return;
  auto& map = d.kind == 'S' ? statements_ : portals_;
  auto it = map.find(std::string(d.name));
  expected_.emplace_back(Expected::Kind::describe, it == map.end() ? Shape{} : it->second);
}

// Executes are followed only where writes may be captured. A captured
// portal always runs to the end (with a row limit it could stop where the
// client expects its CommandComplete): rows past the client's limit wait
// for its next Execute, and it gets PortalSuspended as it would have.
Verdict QueryHook::execute(const Frame& f, WriteBatch& out) {
  if (!capture_) return Verdict::forward;
  protocol::ExecuteView e;
  if (!e.parse(f)) return Verdict::forward;
  Expected x(Expected::Kind::execute);
  Shape* portal = nullptr;
  if (!portals_.empty()) {
    auto it = portals_.find(std::string(e.portal));
    if (it != portals_.end()) {
      portal = &it->second;
      x.one = it->second;
    }
  }
  if (portal && portal->extra == Extra::column && portal->executed) {
    // Its first Execute ran it to the end: the server has no more rows; the
    // client gets those kept past its row limit (decided here, not when the
    // replies come, as the client may send every Execute at once).
    x.leftovers = true;
    x.portal.assign(e.portal);
    x.max_rows = e.max_rows;
    expected_.push_back(std::move(x));
    return Verdict::forward;
  }
  if (portal) portal->executed = true;
  const bool captured = x.one.extra != Extra::none;
  if (captured) ++counters_.captured;
  if (!captured || e.max_rows == 0) {
    expected_.push_back(std::move(x));
    return Verdict::forward;
  }
  if (x.one.extra == Extra::column) {
    x.max_rows = e.max_rows;
    x.portal.assign(e.portal);
  }
  protocol::append_execute(out.own(), e.portal, 0);
  expected_.push_back(std::move(x));
  return Verdict::drop;
}

void QueryHook::close(const Frame& f) {
  protocol::TargetView c;
  if (!c.parse(f)) return;
  if (c.kind == 'S') {
    statements_.erase(std::string(c.name));
    return;
  }
  portals_.erase(std::string(c.name));
  if (!leftovers_.empty()) leftovers_.erase(std::string(c.name));
}

Verdict QueryHook::on_server(const Frame& f, WriteBatch& out) {
  if (!tracking()) return Verdict::forward;
  switch (f.type) {
    case 'T':
      return row_description(f, out);
    case 'D':
      return data_row(f, out);
    case 'n':  // NoData answers a Describe
      if (!expected_.empty() && expected_.front().kind == Expected::Kind::describe) expected_.pop_front();
      break;
    case 'C': case 's': case 'I':
      return completed(f, out);
    case 'Z':
      ready_for_query(f);
      break;
    default:
      break;
  }
  return Verdict::forward;
}

const QueryHook::Shape* QueryHook::current_shape() const noexcept {
  if (expected_.empty()) return nullptr;
  const Expected& e = expected_.front();
  if (e.kind == Expected::Kind::execute) return &e.one;
  if (e.kind == Expected::Kind::query && e.next < e.statements.size()) return &e.statements[e.next];
  return nullptr;
}

// A statement's result ends: the next reply is for the next statement. A
// captured portal's end may become PortalSuspended, or its saved rows.
Verdict QueryHook::completed(const Frame& f, WriteBatch& out) {
  if (expected_.empty()) return Verdict::forward;
  Expected& e = expected_.front();
  if (e.kind == Expected::Kind::query) {
    ++e.next;
    return Verdict::forward;
  }
  if (e.kind != Expected::Kind::execute) return Verdict::forward;
  Expected x = std::move(e);
  expected_.pop_front();
  if (x.leftovers) {
    auto it = leftovers_.find(x.portal);
    if (it == leftovers_.end()) return Verdict::forward;
    std::uint32_t sent = 0;
    while (!it->second.rows.empty() && (x.max_rows == 0 || sent < x.max_rows)) {
      out.own().append(it->second.rows.front());
      it->second.rows.pop_front();
      ++sent;
    }
    if (x.max_rows != 0 && sent == x.max_rows) {
      protocol::append_simple(out.own(), 's');
    } else {  // as PostgreSQL: the tag counts the rows this Execute returned
      protocol::append_command_complete(out.own(), with_count(it->second.tag, sent));
      leftovers_.erase(it);
    }
    return Verdict::drop;
  }
  if (x.max_rows == 0 || f.type != 'C' || x.rows < x.max_rows) return Verdict::forward;
  protocol::CommandCompleteView c;
  if (!c.parse(f)) return Verdict::forward;
  leftovers_[x.portal].tag.assign(c.tag);
  protocol::append_simple(out.own(), 's');
  return Verdict::drop;
}

// Everything up to the batch this ReadyForQuery ends is settled (after an
// error the server skipped the rest of the batch).
void QueryHook::ready_for_query(const Frame& f) {
  if (!leftovers_.empty() && f.body.size() == 1 && f.body[0] == 'I') leftovers_.clear();  // portals end with it
  if (leading_syncs_ > 0) {
    --leading_syncs_;
    return;
  }
  while (!expected_.empty()) {
    const Expected::Kind k = expected_.front().kind;
    expected_.pop_front();
    if (k == Expected::Kind::query || k == Expected::Kind::sync) return;
  }
}

Verdict QueryHook::row_description(const Frame& f, WriteBatch& out) {
  Shape shape;
  bool described = false;
  if (!expected_.empty()) {
    Expected& e = expected_.front();
    if (e.kind == Expected::Kind::describe) {
      shape = std::move(e.one);
      described = true;
      expected_.pop_front();
    } else if (e.kind == Expected::Kind::query && e.next < e.statements.size()) {
      shape = e.statements[e.next];
    }
  }
  if (shape.empty()) return Verdict::forward;
  if (shape.extra == Extra::rows) {  // the client asked for no rows
    if (described) protocol::append_simple(out.own(), 'n');
    return Verdict::drop;
  }

  protocol::Reader r(f.body);
  std::uint16_t count = 0;
  if (!r.u16(count)) return Verdict::forward;
  const std::uint16_t keep = shape.extra == Extra::column && count > 0 ? static_cast<std::uint16_t>(count - 1) : count;
  std::string& own = out.own();
  protocol::MessageWriter w(own);
  const std::size_t start = own.size();
  w.begin('T').u16(keep);
  bool changed = keep != count;
  for (int i = 0; i < keep; ++i) {
    std::string_view name, fixed;
    if (!r.cstring(name) || !r.bytes(18, fixed)) {
      own.resize(start);  // malformed: let the client see the server's bytes
      return Verdict::forward;
    }
    if (shape.renames) {
      for (const rewrite::OutputRename& o : *shape.renames) {
        if ((o.index == i || o.index < 0) && o.from == name) {
          name = o.to;
          changed = true;
          break;
        }
      }
    }
    w.cstring(name).raw(fixed);
  }
  if (!changed) {
    own.resize(start);
    return Verdict::forward;
  }
  w.end();
  return Verdict::drop;
}

// A captured statement's rows: without the capture column, or not at all.
Verdict QueryHook::data_row(const Frame& f, WriteBatch& out) {
  if (!capture_) return Verdict::forward;
  const Shape* s = current_shape();
  if (!s || s->extra == Extra::none) return Verdict::forward;
  if (s->extra == Extra::rows) return Verdict::drop;
  protocol::Reader r(f.body);
  std::uint16_t n = 0;
  if (!r.u16(n) || n == 0) return Verdict::forward;
  std::size_t last = 0;  // where the last column starts in the body
  for (std::uint16_t i = 0; i < n; ++i) {
    last = f.body.size() - r.rest().size();
    std::uint32_t len = 0;
    std::string_view skip;
    if (!r.u32(len)) return Verdict::forward;
    if (len != 0xffffffffu && !r.bytes(len, skip)) return Verdict::forward;
  }
  Expected& e = expected_.front();
  std::string row;
  protocol::MessageWriter w(row);
  w.begin('D').u16(static_cast<std::uint16_t>(n - 1)).raw(f.body.substr(2, last - 2));
  w.end();
  if (e.kind == Expected::Kind::execute && e.max_rows != 0) {
    if (e.rows >= e.max_rows) {
      leftovers_[e.portal].rows.push_back(std::move(row));
      return Verdict::drop;
    }
    ++e.rows;
  }
  out.own().append(row);
  return Verdict::drop;
}

}  // namespace pgshift::proxy
