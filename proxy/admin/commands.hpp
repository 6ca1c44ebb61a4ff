// What each admin command does, whoever asks (the SQL console now; the HTTP
// API and `pgshift ctl` can call the same). Runs on the caller's executor;
// cutover commands hop to the coordinator's and back.
#pragma once

#include "proxy/admin/command.hpp"
#include "proxy/admin/table.hpp"
#include "proxy/context.hpp"

namespace pgshift::proxy::admin {

// Who asks: the caller checked the login; `admin` says the check passed,
// and every command refuses to run without it.
struct Caller {
  bool admin = false;
  std::string who;  // for the log: "console 127.0.0.1:5555 user pgshift"
};

awaitable<Answer> run_command(ProxyContext& ctx, const Caller& caller, const Command& c);

}  // namespace pgshift::proxy::admin
