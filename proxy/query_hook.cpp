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

}  // namespace

Verdict QueryHook::on_client(const Frame& f, WriteBatch& out) {
  switch (f.type) {
    case 'Q': return query(f, out);
    case 'P': return parse(f, out);
    default: break;
  }
  if (!tracking()) return Verdict::forward;
  switch (f.type) {
    case 'B': bind(f); break;
    case 'D': describe(f); break;
    case 'C': close(f); break;
    case 'S': case 'F':
      if (expected_.empty()) ++leading_syncs_;
      else expected_.push_back({Expected::Kind::sync, {}});
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

Verdict QueryHook::query(const Frame& f, WriteBatch& out) {
  protocol::QueryView q;
  last_ = nullptr;
  if (!q.parse(f)) return Verdict::forward;  // the server reports malformed messages itself
  const rewrite::Analysis& a = rewriter_->analyze(q.sql);
  last_ = &a;
  if (tracking()) {
    Expected e{Expected::Kind::query, {}};
    for (std::size_t i = 0; i < a.outputs.size(); ++i) e.statements.push_back(renames_for(a, i));
    expected_.push_back(std::move(e));
  }
  const std::string* replacement = decide(q.sql, a);
  if (!replacement) return Verdict::forward;
  protocol::append_query(out.own(), *replacement);
  return Verdict::drop;
}

Verdict QueryHook::parse(const Frame& f, WriteBatch& out) {
  protocol::ParseView p;
  last_ = nullptr;
  if (!p.parse(f)) return Verdict::forward;
  const rewrite::Analysis& a = rewriter_->analyze(p.sql);
  last_ = &a;
  learn_outputs(p, a);
  const std::string* replacement = decide(p.sql, a);
  if (!replacement) return Verdict::forward;
  protocol::append_parse(out.own(), p.name, *replacement, p.types);  // same name and parameter types
  return Verdict::drop;
}

void QueryHook::learn_outputs(const protocol::ParseView& p, const rewrite::Analysis& a) {
  if (!tracking()) return;
  RenamesPtr renames = a.outputs.size() == 1 ? renames_for(a, 0) : nullptr;
  if (renames) statements_[std::string(p.name)] = std::move(renames);
  else statements_.erase(std::string(p.name));
}

void QueryHook::rebind(rewrite::Rewriter& rewriter, const std::vector<std::string_view>& named_parses) {
  rewriter_ = &rewriter;
  statements_.clear();
  portals_.clear();
  expected_.clear();
  leading_syncs_ = 0;
  last_ = nullptr;
  for (std::string_view bytes : named_parses) {
    const protocol::ParseResult r = protocol::parse_frame(bytes, protocol::Direction::frontend, protocol::Limits{});
    protocol::ParseView p;
    if (r.status == protocol::ParseStatus::complete && p.parse(r.frame)) learn_outputs(p, rewriter_->analyze(p.sql));
  }
}

QueryHook::RenamesPtr QueryHook::renames_for(const rewrite::Analysis& a, std::size_t i) {
  using Op = rewrite::NamedOutputs::Op;
  RenamesPtr own = i < a.outputs.size() ? share(a.outputs[i]) : nullptr;
  if (i >= a.named.size()) return own;
  const rewrite::NamedOutputs& n = a.named[i];
  auto define = [&](auto& map) {
    if (n.outputs.empty()) map.erase(n.name);
    else map[n.name] = share(n.outputs);
  };
  auto lookup = [&](const auto& map) -> RenamesPtr {
    auto it = map.find(n.name);
    return it == map.end() ? nullptr : it->second;
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

void QueryHook::bind(const Frame& f) {
  if (statements_.empty() && portals_.empty()) return;  // no statement has names to restore
  protocol::BindView b;
  if (!b.parse(f)) return;
  auto it = statements_.find(std::string(b.statement));
  if (it != statements_.end()) portals_[std::string(b.portal)] = it->second;
  else portals_.erase(std::string(b.portal));
}

void QueryHook::describe(const Frame& f) {
  protocol::TargetView d;
  if (!d.parse(f)) return;
  auto& map = d.kind == 'S' ? statements_ : portals_;
  auto it = map.find(std::string(d.name));
  expected_.push_back({Expected::Kind::describe, {it == map.end() ? nullptr : it->second}});
}

void QueryHook::close(const Frame& f) {
  protocol::TargetView c;
  if (!c.parse(f)) return;
  (c.kind == 'S' ? statements_ : portals_).erase(std::string(c.name));
}

Verdict QueryHook::on_server(const Frame& f, WriteBatch& out) {
  if (!tracking()) return Verdict::forward;
  switch (f.type) {
    case 'T':
      return row_description(f, out);
    case 'n':  // NoData answers a Describe
      if (!expected_.empty() && expected_.front().kind == Expected::Kind::describe) expected_.pop_front();
      break;
    case 'C': case 'I':
      finished_statement();
      break;
    case 'Z':
      ready_for_query();
      break;
    default:
      break;
  }
  return Verdict::forward;
}

void QueryHook::finished_statement() {
  if (!expected_.empty() && expected_.front().kind == Expected::Kind::query) ++expected_.front().next;
}

// Everything up to the batch this ReadyForQuery ends is settled (after an
// error the server skipped the rest of the batch).
void QueryHook::ready_for_query() {
  if (leading_syncs_ > 0) {
    --leading_syncs_;
    return;
  }
  while (!expected_.empty()) {
    const Expected::Kind k = expected_.front().kind;
    expected_.pop_front();
    if (k != Expected::Kind::describe) return;
  }
}

Verdict QueryHook::row_description(const Frame& f, WriteBatch& out) {
  RenamesPtr renames;
  if (!expected_.empty()) {
    Expected& e = expected_.front();
    if (e.kind == Expected::Kind::describe) {
      renames = e.statements.empty() ? nullptr : e.statements[0];
      expected_.pop_front();
    } else if (e.kind == Expected::Kind::query && e.next < e.statements.size()) {
      renames = e.statements[e.next];
    }
  }
  if (!renames) return Verdict::forward;

  protocol::Reader r(f.body);
  std::uint16_t count = 0;
  if (!r.u16(count)) return Verdict::forward;
  std::string& own = out.own();
  protocol::MessageWriter w(own);
  const std::size_t start = own.size();
  w.begin('T').u16(count);
  bool changed = false;
  for (int i = 0; i < count; ++i) {
    std::string_view name, fixed;
    if (!r.cstring(name) || !r.bytes(18, fixed)) {
      own.resize(start);  // malformed: let the client see the server's bytes
      return Verdict::forward;
    }
    for (const rewrite::OutputRename& o : *renames) {
      if ((o.index == i || o.index < 0) && o.from == name) {
        name = o.to;
        changed = true;
        break;
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

}  // namespace pgshift::proxy
