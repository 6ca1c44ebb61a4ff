// The SQL admin console: a client that logs in to the database named
// "pgshift" on pgshift's own address talks to pgshift, not to a server.
// pgshift checks the [admin] password itself (SCRAM-SHA-256, or md5 if
// configured; never relayed), then answers simple and extended queries whose
// statements are admin commands, with ordinary rows any driver can read.
#pragma once

#include <map>
#include <string>

#include "proxy/admin/commands.hpp"
#include "proxy/buffer.hpp"
#include "proxy/context.hpp"
#include "proxy/stream.hpp"

namespace pgshift::proxy::admin {

class Console {
 public:
  Console(ProxyContext& ctx, Stream& client, ReadBuffer& in, std::string peer);

  // Checks the login (within the caller's login timeout). On failure
  // `fatal` holds the ErrorResponse to send before closing.
  awaitable<bool> authenticate(const std::string& user, std::string& fatal, std::string& reason);
  // Answers commands until the client leaves; returns why the session ended.
  awaitable<std::string> serve();

 private:
  awaitable<bool> query(const protocol::Frame& f);
  void parse(const protocol::Frame& f);
  void bind(const protocol::Frame& f);
  awaitable<void> describe(const protocol::Frame& f);
  awaitable<void> execute(const protocol::Frame& f);
  void close(const protocol::Frame& f);
  awaitable<Answer> answer_for(const std::string& sql);
  void send_rows(const Answer& a, bool with_description);
  void send_error(const Answer& a);
  void send_notices(const Answer& a);

  ProxyContext& ctx_;
  Stream& client_;
  ReadBuffer& in_;
  std::string out_;
  Caller caller_;
  // Extended protocol: statements by name, portals by name (the statement's
  // SQL), and answers computed by a Describe, kept for the Execute.
  std::map<std::string, std::string> statements_, portals_;
  std::map<std::string, Answer> described_;
  bool skipping_ = false;  // after an error, until Sync
};

}  // namespace pgshift::proxy::admin
