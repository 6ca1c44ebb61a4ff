#include "proxy/admin/console.hpp"

#include <spdlog/spdlog.h>

#include "protocol/builder.hpp"
#include "protocol/log_text.hpp"
#include "protocol/messages.hpp"
#include "protocol/server_auth.hpp"
#include "proxy/authenticate.hpp"
#include "proxy/frame_io.hpp"

namespace pgshift::proxy::admin {

using protocol::Direction;
using protocol::Frame;

Console::Console(ProxyContext& ctx, Stream& client, ReadBuffer& in, std::string peer)
    : ctx_(ctx), client_(client), in_(in) {
  caller_.who = "console " + peer;
}

awaitable<bool> Console::authenticate(const std::string& user, std::string& fatal, std::string& reason) {
  auto refuse = [&](std::string_view sqlstate, const std::string& message) {
    fatal.clear();
    protocol::append_error_response(fatal, {.severity = "FATAL", .sqlstate = sqlstate, .message = message});
    reason = "admin console: " + message;
    return false;
  };
  if (ctx_.cfg.admin.password.empty())
    co_return refuse("28000", "pgshift admin console: no [admin] password is configured");
  std::string error;
  std::optional<protocol::Secret> secret = protocol::Secret::from_password(ctx_.cfg.admin.password, error);
  // A user other than the admin runs a doomed exchange: it is told what a
  // wrong password is told, so user names cannot be probed.
  const bool is_admin = user == ctx_.cfg.admin.user;
  if (!is_admin || !secret) secret = protocol::Secret::mock(user);
  const protocol::AuthMethod method =
      ctx_.cfg.admin.auth == "md5" ? protocol::AuthMethod::md5 : protocol::AuthMethod::scram_sha_256;
  protocol::ServerAuth auth(user, std::move(*secret), method, server_auth_options(client_));
  std::string out;
  const std::optional<protocol::ServerAuth::Step> step =
      co_await serve_authentication(client_, in_, ctx_.limits, auth, out);
  if (!step) {
    reason = "admin console: client left during authentication";
    co_return false;
  }
  if (*step == protocol::ServerAuth::Step::failed) {
    fatal = out;
    reason = "admin console: authentication failed: " + auth.error();
    spdlog::warn("admin: {} user {}: authentication failed: {}", caller_.who, protocol::log_text(user), auth.error());
    co_return false;
  }
  caller_.admin = is_admin;
  caller_.who += " user " + protocol::log_text(user);
  protocol::append_parameter_status(out, "server_version", "15.0 (pgshift " PGSHIFT_VERSION ")");
  protocol::append_parameter_status(out, "server_encoding", "UTF8");
  protocol::append_parameter_status(out, "client_encoding", "UTF8");
  protocol::append_parameter_status(out, "DateStyle", "ISO, MDY");
  protocol::append_parameter_status(out, "integer_datetimes", "on");
  protocol::append_parameter_status(out, "standard_conforming_strings", "on");
  protocol::append_parameter_status(out, "application_name", "");
  protocol::append_backend_key_data(out, 0, 0);
  protocol::append_ready_for_query(out, 'I');
  if (auto [ec, n] = co_await client_.write(asio::buffer(out)); ec) co_return refuse("08006", "client left");
  spdlog::info("admin: {} logged in", caller_.who);
  co_return true;
}

awaitable<std::string> Console::serve() {
  for (;;) {
    Frame f;
    if (auto ec = co_await read_frame(client_, in_, Direction::frontend, ctx_.limits, f)) {
      if (is_protocol_error(ec)) {
        out_.clear();
        protocol::append_error_response(out_, {.severity = "FATAL", .sqlstate = "08P01", .message = ec.message()});
        co_await client_.write(asio::buffer(out_));
        co_return "admin console: client protocol violation: " + ec.message();
      }
      co_return "client disconnected";
    }
    const std::size_t size = f.bytes.size();
    const char type = f.type;
    bool go_on = true;
    if (type == 'X') co_return "client terminated";
    if (type == 'S') {
      skipping_ = false;
      protocol::append_ready_for_query(out_, 'I');
    } else if (type == 'H') {
      // Flush: what is queued goes out below.
    } else if (skipping_) {
      // An error ended this batch: ignore everything until Sync.
    } else {
      switch (type) {
        case 'Q': go_on = co_await query(f); break;
        case 'P': parse(f); break;
        case 'B': bind(f); break;
        case 'D': co_await describe(f); break;
        case 'E': co_await execute(f); break;
        case 'C': close(f); break;
        default: {
          Answer a = Answer::error("0A000", "the pgshift admin console does not support this message");
          send_error(a);
          skipping_ = type != 'F';
          if (type == 'F') protocol::append_ready_for_query(out_, 'I');
        }
      }
    }
    in_.consume(size);
    const bool flush_now = type == 'S' || type == 'Q' || type == 'H' || type == 'F' ||
                           !complete_frame_buffered(in_, Direction::frontend, ctx_.limits);
    if (flush_now && !out_.empty()) {
      auto [ec, n] = co_await client_.write(asio::buffer(out_));
      out_.clear();
      if (ec) co_return "client disconnected";
    }
    if (!go_on) co_return "client disconnected";
  }
}

awaitable<Answer> Console::answer_for(const std::string& sql) {
  co_return co_await run_command(ctx_, caller_, parse_command(sql));
}

// A Query: each statement answered in turn; an error ends the string.
awaitable<bool> Console::query(const Frame& f) {
  protocol::QueryView q;
  if (!q.parse(f)) {
    send_error(Answer::error("08P01", "invalid Query message"));
  } else {
    const std::vector<std::string_view> statements = split_statements(q.sql);
    if (statements.empty()) protocol::append_empty_query_response(out_);
    for (std::string_view s : statements) {
      const Answer a = co_await answer_for(std::string(s));
      if (!a.ok()) {
        send_error(a);
        break;
      }
      send_rows(a, true);
    }
  }
  skipping_ = false;  // the simple protocol has no Sync to wait for
  protocol::append_ready_for_query(out_, 'I');
  co_return true;
}

void Console::parse(const Frame& f) {
  protocol::ParseView p;
  if (!p.parse(f)) return send_error(Answer::error("08P01", "invalid Parse message"));
  if (p.param_count > 0) return send_error(Answer::error("0A000", "admin commands take no parameters"));
  statements_[std::string(p.name)] = std::string(p.sql);
  protocol::append_simple(out_, '1');
}

void Console::bind(const Frame& f) {
  protocol::BindView b;
  if (!b.parse(f)) return send_error(Answer::error("08P01", "invalid Bind message"));
  auto it = statements_.find(std::string(b.statement));
  if (it == statements_.end())
    return send_error(Answer::error("26000", "prepared statement \"" + std::string(b.statement) + "\" does not exist"));
  portals_[std::string(b.portal)] = it->second;
  described_.erase("P" + std::string(b.portal));
  protocol::append_simple(out_, '2');
}

// The columns are known only by running the command: a Describe runs it and
// keeps the answer for the Execute that follows.
awaitable<void> Console::describe(const Frame& f) {
  protocol::TargetView d;
  if (!d.parse(f)) co_return send_error(Answer::error("08P01", "invalid Describe message"));
  const auto& names = d.kind == 'S' ? statements_ : portals_;
  auto it = names.find(std::string(d.name));
  if (it == names.end()) co_return send_error(Answer::error("26000", "\"" + std::string(d.name) + "\" does not exist"));
  Answer a = co_await answer_for(it->second);
  if (!a.ok()) co_return send_error(a);
  if (d.kind == 'S') protocol::append_no_parameters(out_);
  if (a.table.columns.empty()) protocol::append_simple(out_, 'n');
  else protocol::append_row_description(out_, a.table.columns);
  described_[std::string(1, d.kind) + std::string(d.name)] = std::move(a);
}

awaitable<void> Console::execute(const Frame& f) {
  protocol::ExecuteView e;
  if (!e.parse(f)) co_return send_error(Answer::error("08P01", "invalid Execute message"));
  auto it = portals_.find(std::string(e.portal));
  if (it == portals_.end()) co_return send_error(Answer::error("34000", "portal \"" + std::string(e.portal) + "\" does not exist"));
  Answer a;
  if (auto d = described_.find("P" + std::string(e.portal)); d != described_.end()) {
    a = std::move(d->second);
    described_.erase(d);
  } else if (auto s = std::find_if(described_.begin(), described_.end(),
                                   [&](const auto& kv) { return kv.first[0] == 'S' && statements_[kv.first.substr(1)] == it->second; });
             s != described_.end()) {
    a = std::move(s->second);
    described_.erase(s);
  } else {
    a = co_await answer_for(it->second);
  }
  if (!a.ok()) co_return send_error(a);
  send_rows(a, false);
}

void Console::close(const Frame& f) {
  protocol::TargetView c;
  if (c.parse(f)) (c.kind == 'S' ? statements_ : portals_).erase(std::string(c.name));
  protocol::append_simple(out_, '3');
}

void Console::send_notices(const Answer& a) {
  for (const std::string& n : a.notices)
    protocol::append_notice_response(out_, {.severity = "NOTICE", .sqlstate = "00000", .message = n});
}

void Console::send_rows(const Answer& a, bool with_description) {
  send_notices(a);
  if (a.tag.empty() && a.table.columns.empty()) {
    protocol::append_empty_query_response(out_);
    return;
  }
  if (with_description && !a.table.columns.empty()) protocol::append_row_description(out_, a.table.columns);
  for (const auto& row : a.table.rows) protocol::append_data_row(out_, row);
  // Rows are tagged as a SELECT's, which every driver counts.
  protocol::append_command_complete(out_, a.table.columns.empty() ? a.tag : "SELECT " + std::to_string(a.table.rows.size()));
}

void Console::send_error(const Answer& a) {
  send_notices(a);
  protocol::append_error_response(out_, {.severity = "ERROR", .sqlstate = a.sqlstate, .message = a.message});
  skipping_ = true;
}

}  // namespace pgshift::proxy::admin
