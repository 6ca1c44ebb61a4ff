// What the suites with a primary, a target and pgshift's admin console share:
// the clusters, the proxy, the console login, and the logs printed when a test fails.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "harness.hpp"

namespace pgshift::it {

inline constexpr const char* kAdminPassword = "admin-secret";

// The [admin] section the console below logs in with.
inline std::string admin_config() { return std::string("\n[admin]\npassword = \"") + kAdminPassword + "\"\n"; }

// pgshift mirroring to `target` as the [shadow], every client user logging in to
// both servers as itself (the clusters trust loopback), and the primary's catalog
// read (exact mirroring needs it). The mismatch log is next to the config file;
// `shadow_keys` are more lines of [shadow].
inline std::string mirror_config(const PgCluster& target, int status_interval_ms, const std::string& shadow_keys = "") {
  return "[[primary.login]]\nclient_user = \"*\"\n\n[shadow]\nhost = \"127.0.0.1\"\nport = " +
         std::to_string(target.port()) + "\nstatus_interval_ms = " + std::to_string(status_interval_ms) +
         "\nmismatch_log = \"mismatches.jsonl\"\n" + shadow_keys + "\n[[shadow.login]]\nclient_user = \"*\"\n";
}

class TwoServers : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!HasFailure()) return;
    for (const auto& [name, c] : {std::pair{"primary", primary_.get()}, std::pair{"target", target_.get()}})
      if (c) std::cerr << "---- " << name << " PostgreSQL log ----\n" << c->log_tail(60) << "\n----\n";
    if (proxy_) std::cerr << "---- pgshift log ----\n" << tail_lines(proxy_->log(), 80) << "\n----\n";
  }

  ConnParams client() const { return proxy_->conn(); }

  ConnParams admin() const {
    ConnParams c = proxy_->conn("pgshift");
    c.dbname = "pgshift";
    c.password = kAdminPassword;
    return c;
  }

  // A console command; rows as "a|b|c" lines.
  RunResult console(const std::string& command) const {
    return psql(admin(), {"-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", command});
  }

  // An (item, value) SHOW command, such as SHOW CUTOVER, as item -> value.
  std::map<std::string, std::string> show(const std::string& what) const {
    std::map<std::string, std::string> out;
    const RunResult r = console("SHOW " + what);
    EXPECT_RUN_OK(r);
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      const auto bar = line.find('|');
      if (bar != std::string::npos) out[line.substr(0, bar)] = line.substr(bar + 1);
    }
    return out;
  }
  std::map<std::string, std::string> show_cutover() const { return show("CUTOVER"); }

  // Waits (up to 30 s) until the mirror has a connection to the target open: it
  // opens them as sessions need them, so a check right after the clients' first
  // statements may find none yet.
  bool target_connected() const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (show("SHADOW")["connected"] != "yes") {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  }

  // The [cutover] state file, shared by every pgshift a test starts.
  std::string state_file() const { return (state_dir_.path() / "state.json").string(); }

  std::unique_ptr<PgCluster> primary_, target_;
  std::unique_ptr<Pgshift> proxy_;
  TempDir state_dir_{"pgshift-it-state"};
};

}  // namespace pgshift::it
