#include "proxy/shadow_applier.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <cstdlib>

#include "protocol/builder.hpp"
#include "protocol/client_auth.hpp"
#include "protocol/messages.hpp"
#include "proxy/frame_io.hpp"

namespace pgshift::proxy {

using namespace asio::experimental::awaitable_operators;
using protocol::Direction;

namespace {

constexpr auto apply_timeout = std::chrono::seconds(30);
constexpr auto reconnect_backoff = std::chrono::seconds(1);

// Outcomes of writes compare by command tag (with its row count) and by
// error against success (SQLSTATE); rows of RETURNING are not kept.
shadow::Comparison compare_outcome(const shadow::Outcome& p, const shadow::Outcome& s) {
  shadow::Comparison c;
  if (p.error.has_value() != s.error.has_value() || (p.error && p.error->sqlstate != s.error->sqlstate)) {
    c.match = false;
    c.reason = "error";
  } else if (!p.error && p.tag != s.tag) {
    c.match = false;
    c.reason = "tag";
  }
  return c;
}

shadow::Outcome outcome_of(const shadow::StatementOutcome& o) {
  shadow::Outcome out;
  out.tag = o.tag;
  if (o.sqlstate) out.error = shadow::Error{*o.sqlstate, {}};
  out.complete = true;
  return out;
}

}  // namespace

shadow::CompareRules compare_rules(const config::CompareRules& c) {
  shadow::CompareRules r;
  r.ignore_columns = c.ignore_columns;
  for (const std::string& f : c.ignore_fingerprints) r.ignore_fingerprints.push_back(std::strtoull(f.c_str(), nullptr, 16));
  r.numeric_tolerance = c.numeric_tolerance;
  return r;
}

ShadowApplier::ShadowApplier(const config::Config& cfg, shadow::Mirror& mirror, ssl::context* tls,
                             const protocol::Limits& limits)
    : cfg_(cfg),
      mirror_(mirror),
      tls_(tls),
      limits_(limits),
      rules_(compare_rules(cfg.shadow.compare)),
      log_(shadow::MismatchLog::Options{cfg.shadow.mismatch_log, cfg.shadow.redact}) {}

ShadowApplier::~ShadowApplier() { stop(); }

void ShadowApplier::start() {
  // Producers wake the applier only when it sleeps; one post per idle period.
  mirror_.on_work([this] {
    if (idle_.exchange(false)) asio::post(io_, [this] { wake_.cancel(); });
  });
  asio::co_spawn(io_, run(), asio::detached);
  asio::co_spawn(io_, report_status(), asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

void ShadowApplier::stop() {
  if (!thread_.joinable()) return;
  mirror_.on_work({});
  io_.stop();
  thread_.join();
}

awaitable<void> ShadowApplier::run() {
  for (;;) {
    while (shadow::TransactionPtr t = mirror_.next()) co_await apply(*t);
    idle_ = true;
    if (shadow::TransactionPtr t = mirror_.next()) {  // queued while idle_ was still false
      idle_ = false;
      co_await apply(*t);
      continue;
    }
    wake_.expires_after(std::chrono::seconds(1));
    co_await wake_.async_wait(use_tuple);
  }
}

awaitable<void> ShadowApplier::report_status() {
  asio::steady_timer timer(io_);
  for (;;) {
    timer.expires_after(cfg_.shadow.status_interval);
    co_await timer.async_wait(use_tuple);
    const shadow::Status s = mirror_.status();
    spdlog::info(
        "shadow: committed={} applied={} pending={} ({} bytes) lag={:.2f}s dropped={} compared={} mismatches={} "
        "connected={} diverged={}{}",
        s.committed, s.applied, s.pending, s.pending_bytes, s.lag_seconds, s.dropped, s.statements_compared,
        s.mismatches, s.connected ? "yes" : "no", s.diverged ? "yes" : "no",
        s.diverged ? " (" + s.diverged_reason + ")" : std::string());
  }
}

awaitable<void> ShadowApplier::apply(shadow::Transaction& t) {
  using Kind = shadow::Transaction::Kind;
  if (t.kind == Kind::close_session) {
    if (auto it = connections_.find(t.session); it != connections_.end()) {
      std::string bye;
      protocol::append_terminate(bye);
      co_await it->second.server->stream.write(asio::buffer(bye));
      it->second.server->stream.close();
      connections_.erase(it);
    }
    co_return;
  }
  if (t.kind == Kind::dropped) co_return;  // counted when it was dropped
  std::string error;
  Connection* c = co_await connection_for(t, error);
  if (!c) {
    mirror_.dropped(t, error);
    co_return;
  }
  asio::steady_timer timer(io_, apply_timeout);
  auto done = co_await (apply_on(*c, t) || timer.async_wait(use_tuple));
  if (done.index() == 1 || !std::get<0>(done)) {
    c->server->stream.close();
    connections_.erase(t.session);
    mirror_.set_connected(false);
    mirror_.dropped(t, done.index() == 1 ? "the shadow did not answer within 30 s" : "the shadow connection failed");
  }
}

// Sends the transaction (preceded by the named statements it needs) in one
// write, reads every reply up to its last ReadyForQuery, compares.
awaitable<bool> ShadowApplier::apply_on(Connection& c, shadow::Transaction& t) {
  std::string out;
  std::uint32_t replies = t.replies;
  for (const auto& [name, parse] : t.statements) {
    auto it = c.prepared.find(name);
    if (it != c.prepared.end() && it->second == parse) continue;
    if (it != c.prepared.end()) protocol::append_close(out, 'S', name);
    out += parse;
    c.prepared[name] = parse;
  }
  const bool preparing = !out.empty();
  if (preparing) {
    protocol::append_sync(out);
    ++replies;
  }
  out += t.messages;
  if (auto [ec, n] = co_await c.server->stream.write(asio::buffer(out)); ec) co_return false;

  std::vector<shadow::Outcome> outcomes;
  shadow::ResultCollector collector(rules_);
  bool in_preparation = preparing;
  while (replies > 0) {
    protocol::Frame f;
    if (co_await read_frame(c.server->stream, c.server->in, Direction::backend, limits_, f)) co_return false;
    const std::size_t size = f.bytes.size();
    if (f.type == 'Z') {
      --replies;
      in_preparation = false;
    } else if (!in_preparation && collector.feed(f) != shadow::ResultCollector::Feed::more) {
      outcomes.push_back(collector.take());
    }
    c.server->in.consume(size);
  }
  mirror_.set_connected(true);
  const std::size_t mismatched = compare(t, outcomes);
  mirror_.applied(t, std::min(outcomes.size(), t.primary.size()), mismatched);
  co_return true;
}

std::size_t ShadowApplier::compare(const shadow::Transaction& t, const std::vector<shadow::Outcome>& outcomes) {
  std::size_t mismatched = 0;
  const std::size_t n = std::max(outcomes.size(), t.primary.size());
  for (std::size_t i = 0; i < n; ++i) {
    static const shadow::StatementOutcome none{"(not run)", std::nullopt, 0, {}};
    const shadow::StatementOutcome& p = i < t.primary.size() ? t.primary[i] : none;
    if (rules_.ignores(p.fingerprint)) continue;
    shadow::Outcome missing;
    missing.tag = "(not run)";
    const shadow::Outcome& sh = i < outcomes.size() ? outcomes[i] : missing;
    // A sampled read compares its rows; a write its tag and error.
    const bool rows = t.read && i < t.primary_rows.size();
    const shadow::Outcome primary = rows ? shadow::Outcome{} : outcome_of(p);
    const shadow::Outcome& pr = rows ? t.primary_rows[i] : primary;
    const bool ordered = i < t.ordered.size() && t.ordered[i];
    const shadow::Comparison c = rows ? shadow::compare(pr, sh, ordered, rules_) : compare_outcome(pr, sh);
    log_.record(shadow::Statement{t.session, p.fingerprint, p.text, {}}, pr, sh, c);
    if (!c.match) ++mismatched;
  }
  return mismatched;
}

awaitable<ShadowApplier::Connection*> ShadowApplier::connection_for(const shadow::Transaction& t, std::string& error) {
  if (auto it = connections_.find(t.session); it != connections_.end()) co_return &it->second;
  if (std::chrono::steady_clock::now() < retry_after_) {
    error = "the shadow is unreachable (retrying)";
    co_return nullptr;
  }
  const config::ShadowLogin* credentials = cfg_.shadow.login_for(t.user);
  if (!credentials) {
    error = "no [[shadow.login]] for user " + t.user;
    co_return nullptr;
  }
  Connection c;
  c.server = std::make_unique<ServerConn>(tcp::socket(io_), cfg_.buffer_size);
  const ConnectResult r = co_await connect_server(cfg_.shadow.server, tls_, *c.server);
  const std::string user = credentials->user.empty() ? t.user : credentials->user;
  const std::string database = cfg_.shadow.database.empty() ? t.database : cfg_.shadow.database;
  bool logged_in = false;
  if (!r.ec) {  // a shadow that accepts but never answers must not stall the applier
    asio::steady_timer timer(io_, cfg_.shadow.server.connect_timeout);
    auto outcome = co_await (login(c, user, credentials->password, database, error) || timer.async_wait(use_tuple));
    logged_in = outcome.index() == 0 && std::get<0>(outcome);
    if (outcome.index() == 1) error = "the shadow did not answer the login in time";
  }
  if (r.ec || !logged_in) {
    if (r.ec) error = "shadow: " + r.detail;
    retry_after_ = std::chrono::steady_clock::now() + reconnect_backoff;
    mirror_.set_connected(false);
    spdlog::warn("shadow: cannot open a connection for session {}: {}", t.session, error);
    co_return nullptr;
  }
  mirror_.set_connected(true);
  co_return &connections_.emplace(t.session, std::move(c)).first->second;
}

awaitable<bool> ShadowApplier::login(Connection& c, const std::string& user, const std::string& password,
                                     const std::string& database, std::string& error) {
  std::string out;
  protocol::append_startup_message(out, {{"user", user}, {"database", database}, {"application_name", "pgshift-shadow"}});
  if (auto [ec, n] = co_await c.server->stream.write(asio::buffer(out)); ec) {
    error = "shadow closed the connection";
    co_return false;
  }
  protocol::ClientAuth auth(user, password);
  for (;;) {
    protocol::Frame f;
    if (co_await read_frame(c.server->stream, c.server->in, Direction::backend, limits_, f)) {
      error = "shadow closed the connection during login";
      co_return false;
    }
    const std::size_t size = f.bytes.size();
    const char type = f.type;
    std::string reply;
    bool failed = false;
    if (type == 'R' || type == 'E') {
      const protocol::ClientAuth::Step step = auth.on_message(f, reply);
      failed = step == protocol::ClientAuth::Step::failed;
      if (failed) error = "shadow login failed: " + auth.error();
    }
    c.server->in.consume(size);
    if (failed) co_return false;
    if (!reply.empty()) {
      if (auto [ec, n] = co_await c.server->stream.write(asio::buffer(reply)); ec) {
        error = "shadow closed the connection during login";
        co_return false;
      }
    }
    if (type == 'Z') co_return true;
  }
}

}  // namespace pgshift::proxy
