#include "proxy/http/server.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "proxy/admin/commands.hpp"
#include "proxy/cutover/coordinator.hpp"

namespace pgshift::proxy {

namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

extern const char* const kStatusPage;  // status_page.cpp, generated from status_page.html

struct HttpServer::Request {
  http::verb method;
  std::string path;  // without the query string
  std::string body;
  std::string authorization;
  std::string peer;
};

struct HttpServer::Response {
  http::status status = http::status::ok;
  std::string type = "application/json";
  std::string body;
  bool authenticate = false;  // 401: ask for the bearer token
};

namespace {

using Response = HttpServer::Response;

json::value cell(const std::optional<std::string>& v) { return v ? json::value(*v) : json::value(nullptr); }

// A (name, value) table becomes an object; any other table an array of
// objects, one per row, keyed by column.
json::value table_json(const admin::Table& t) {
  if (t.columns == std::vector<std::string>{"item", "value"}) {
    json::object o;
    for (const auto& row : t.rows) o[row[0].value_or("")] = cell(row[1]);
    return o;
  }
  json::array a;
  for (const auto& row : t.rows) {
    json::object o;
    for (std::size_t i = 0; i < t.columns.size() && i < row.size(); ++i) o[t.columns[i]] = cell(row[i]);
    a.push_back(std::move(o));
  }
  return a;
}

json::array notices_json(const admin::Answer& a) {
  json::array n;
  for (const std::string& s : a.notices) n.push_back(json::value(s));
  return n;
}

http::status status_for(const std::string& sqlstate) {
  if (sqlstate == "42501") return http::status::forbidden;
  if (sqlstate == "42704") return http::status::not_found;
  if (sqlstate == "42601" || sqlstate == "22023") return http::status::bad_request;
  if (sqlstate == "55000") return http::status::conflict;
  if (sqlstate == "0A000") return http::status::not_implemented;
  if (sqlstate == "F0000") return http::status::unprocessable_entity;
  return http::status::internal_server_error;
}

Response json_response(const json::value& v, http::status s = http::status::ok) {
  Response r;
  r.status = s;
  r.body = json::serialize(v);
  r.body.push_back('\n');
  return r;
}

Response error_response(http::status s, const std::string& message, const std::string& sqlstate = "",
                        json::array details = {}) {
  json::object o{{"error", message}};
  if (!sqlstate.empty()) o["sqlstate"] = sqlstate;
  if (!details.empty()) o["details"] = std::move(details);
  return json_response(o, s);
}

Response from_answer(const admin::Answer& a, bool wrap) {
  if (!a.ok()) return error_response(status_for(a.sqlstate), a.message, a.sqlstate, notices_json(a));
  if (!wrap) return json_response(table_json(a.table));
  json::object o{{"ok", true}, {"command", a.tag}};
  if (!a.table.columns.empty()) o["result"] = table_json(a.table);
  o["notices"] = notices_json(a);
  return json_response(o);
}

// DNS rebinding: a page from elsewhere that resolves its own name to this
// address must not read the API. Only IP literals and localhost are served.
bool host_allowed(std::string_view host) {
  if (host.empty()) return true;  // HTTP/1.0
  if (host.front() == '[') return host.find(']') != std::string_view::npos;
  host = host.substr(0, host.rfind(':') == std::string_view::npos ? host.size() : host.rfind(':'));
  if (host == "localhost") return true;
  error_code ec;
  asio::ip::make_address_v4(std::string(host), ec);
  return !ec;
}

bool token_matches(const std::string& authorization, const std::string& token) {
  constexpr std::string_view prefix = "Bearer ";
  if (token.empty() || !std::string_view(authorization).starts_with(prefix)) return false;
  const std::string_view given = std::string_view(authorization).substr(prefix.size());
  return given.size() == token.size() && CRYPTO_memcmp(given.data(), token.data(), token.size()) == 0;
}

}  // namespace

HttpServer::HttpServer(ProxyContext& ctx, Metrics& metrics) : ctx_(ctx), metrics_(metrics), history_(ctx) {}

HttpServer::~HttpServer() { stop(); }

bool HttpServer::listen(const config::Endpoint& at, std::string& error) {
  error_code ec;
  const auto addr = asio::ip::make_address(at.host, ec);
  if (ec) {
    error = "admin.http_listen: '" + at.host + "' is not an IP address";
    return false;
  }
  const tcp::endpoint ep(addr, at.port);
  acceptor_ = std::make_unique<tcp::acceptor>(io_);
  acceptor_->open(ep.protocol(), ec);
  if (!ec) acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_->bind(ep, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = fmt::format("cannot listen for HTTP on {}:{}: {}", at.host, at.port, ec.message());
    return false;
  }
  spdlog::info("http: status page http://{}:{}/, API /api/..., metrics /metrics", at.host, at.port);
  const config::Admin& admin = ctx_.cfg.admin;
  if (admin.http_token.empty())
    spdlog::warn("http: {}: requests that change state are refused",
                 admin.http_token_env.empty()
                     ? std::string("no [admin] http_token_env")
                     : "the environment variable " + admin.http_token_env + " (admin.http_token_env) is not set");
  if (!addr.is_loopback() && ctx_.cfg.admin.http_token.empty())
    spdlog::warn("http: {} is not a loopback address; anyone who reaches it can read sessions and statistics",
                 at.host);
  return true;
}

void HttpServer::start() {
  asio::co_spawn(io_, accept_loop(), asio::detached);
  asio::co_spawn(io_, history_.run(), asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

void HttpServer::stop() {
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

awaitable<void> HttpServer::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_->async_accept(use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      asio::steady_timer pause(io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
  }
}

awaitable<void> HttpServer::serve(tcp::socket socket) {
  error_code ignored;
  const tcp::endpoint remote = socket.remote_endpoint(ignored);
  const std::string peer = remote.address().to_string() + ":" + std::to_string(remote.port());
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    stream.expires_after(std::chrono::seconds(30));
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (ec) break;
    const http::request<http::string_body>& req = parser.get();
    Request r{req.method(), std::string(req.target()), req.body(), std::string(req[http::field::authorization]), peer};
    if (const auto q = r.path.find('?'); q != std::string::npos) r.path.resize(q);
    stream.expires_never();  // a CUTOVER runs as long as it takes
    // (Not a conditional expression: GCC 12 mishandles co_await inside one.)
    Response res;
    if (host_allowed(req[http::field::host])) res = co_await handle(r);
    else res = error_response(http::status::forbidden, "pgshift serves only IP addresses and localhost");
    http::response<http::string_body> out{res.status, req.version()};
    out.set(http::field::server, "pgshift/" PGSHIFT_VERSION);
    out.set(http::field::content_type, res.type);
    out.set(http::field::cache_control, "no-store");
    out.set("X-Content-Type-Options", "nosniff");
    if (res.authenticate) out.set(http::field::www_authenticate, "Bearer realm=\"pgshift\"");
    out.keep_alive(req.keep_alive());
    out.body() = std::move(res.body);
    out.prepare_payload();
    stream.expires_after(std::chrono::seconds(30));
    auto [wec, wn] = co_await http::async_write(stream, out, use_tuple);
    if (wec || !out.keep_alive()) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

awaitable<Response> HttpServer::handle(const Request& req) {
  const bool get = req.method == http::verb::get || req.method == http::verb::head;
  const bool post = req.method == http::verb::post;
  if (get && req.path == "/") {
    Response r;
    r.type = "text/html; charset=utf-8";
    r.body = kStatusPage;
    co_return r;
  }
  if (get && req.path == "/metrics") {
    Response r;
    r.type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_.text();
    co_return r;
  }
  if (get && req.path == "/api/overview") co_return co_await overview();
  static constexpr std::string_view shows[] = {"status", "sessions", "shadow", "mismatches", "cutover",
                                               "sync",   "verify",   "rules",  "config",     "version"};
  if (get && req.path.starts_with("/api/")) {
    const std::string what = req.path.substr(5);
    for (std::string_view s : shows)
      if (what == s) co_return co_await command("SHOW " + what, false, req);
    co_return error_response(http::status::not_found, "no such endpoint: " + req.path);
  }
  if (post && req.path == "/api/cutover") co_return co_await post_cutover(req);
  if (post && req.path == "/api/reload") co_return co_await command("RELOAD", true, req);
  if (post && req.path == "/api/clear-diverged") co_return co_await command("CLEAR DIVERGED", true, req);
  if (req.path == "/" || req.path == "/metrics" || req.path.starts_with("/api/"))
    co_return error_response(http::status::method_not_allowed, "method not allowed for " + req.path);
  co_return error_response(http::status::not_found, "no such endpoint: " + req.path);
}

// The same commands as the SQL console's, with the same checks: reading
// needs nothing more than reaching the address, changing state the token.
awaitable<Response> HttpServer::command(const std::string& sql, bool changes_state, const Request& req) {
  admin::Caller caller;
  caller.who = "http " + req.peer;
  if (changes_state) {
    if (!token_matches(req.authorization, ctx_.cfg.admin.http_token)) {
      spdlog::warn("http: {} {}: refused without a valid bearer token", req.peer, req.path);
      Response r = error_response(http::status::unauthorized,
                                  ctx_.cfg.admin.http_token.empty()
                                      ? "no bearer token is configured ([admin] http_token_env): the HTTP API "
                                        "cannot change state"
                                      : "this request changes state: send Authorization: Bearer <token>");
      r.authenticate = true;
      co_return r;
    }
    caller.who += " (token)";
  }
  caller.admin = true;
  const admin::Answer a = co_await admin::run_command(ctx_, caller, admin::parse_command(sql));
  co_return from_answer(a, changes_state);
}

awaitable<Response> HttpServer::post_cutover(const Request& req) {
  error_code ec;
  const json::value body = json::parse(req.body, ec);
  const json::object* o = ec ? nullptr : body.if_object();
  const json::value* action = o ? o->if_contains("action") : nullptr;
  if (!action || !action->is_string())
    co_return error_response(http::status::bad_request,
                             "expected {\"action\": \"dry-run\"|\"cutover\"|\"reads\"|\"abort\"|\"rollback\"|\"complete\"}");
  const std::string a(action->as_string());
  std::string sql;
  if (a == "dry-run") sql = "CUTOVER DRY RUN";
  else if (a == "cutover") sql = "CUTOVER";
  else if (a == "abort") sql = "CUTOVER ABORT";
  else if (a == "rollback") sql = "CUTOVER ROLLBACK";
  else if (a == "complete") sql = "CUTOVER COMPLETE";
  else if (a == "reads") {
    const json::value* p = o->if_contains("percent");
    if (!p || !p->is_int64() || p->as_int64() < 0 || p->as_int64() > 100)
      co_return error_response(http::status::bad_request, "\"reads\" needs \"percent\": 0 to 100");
    sql = "CUTOVER READS " + std::to_string(p->as_int64());
  } else {
    co_return error_response(http::status::bad_request, "unknown action \"" + a + "\"");
  }
  // A dry run changes nothing, but it is asked for with the others.
  co_return co_await command(sql, true, req);
}

// Everything the status page draws, in one request a second.
awaitable<Response> HttpServer::overview() {
  admin::Caller caller;
  caller.admin = true;
  caller.who = "http status page";
  auto show = [&](const char* what) -> awaitable<json::value> {
    const admin::Answer a = co_await admin::run_command(ctx_, caller, admin::parse_command(std::string("SHOW ") + what));
    co_return a.ok() ? table_json(a.table) : json::value(nullptr);
  };
  json::object o;
  o["status"] = co_await show("status");
  o["shadow"] = co_await show("shadow");
  o["cutover"] = co_await show("cutover");
  json::value mismatches = co_await show("mismatches");
  if (json::array* m = mismatches.if_array(); m && m->size() > 10) m->resize(10);
  o["mismatches"] = std::move(mismatches);
  json::array timeline;
  if (ctx_.coordinator)
    for (const auto& c : ctx_.coordinator->timeline())
      timeline.push_back(json::object{{"at", c.at},
                                      {"from", std::string(cutover::to_string(c.from))},
                                      {"to", std::string(cutover::to_string(c.to))},
                                      {"why", c.why}});
  o["timeline"] = std::move(timeline);
  json::object h;
  json::array t, tps, lag, rate, sessions, pending;
  for (const Sample& s : history_.samples()) {
    t.push_back(s.at_ms);
    tps.push_back(s.tps);
    lag.push_back(s.lag_s);
    rate.push_back(s.mismatch_rate);
    sessions.push_back(s.sessions);
    pending.push_back(s.pending);
  }
  h["t"] = std::move(t);
  h["tps"] = std::move(tps);
  h["lag_s"] = std::move(lag);
  h["mismatch_rate"] = std::move(rate);
  h["sessions"] = std::move(sessions);
  h["pending"] = std::move(pending);
  o["history"] = std::move(h);
  o["token_configured"] = !ctx_.cfg.admin.http_token.empty();
  co_return json_response(o);
}

}  // namespace pgshift::proxy
