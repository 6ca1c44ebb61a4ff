// What the suites with a primary, a target and pgshift's admin console share:
// the clusters, the proxy, the console login, and the logs printed when a test fails.
#pragma once

#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "harness.hpp"

namespace pgshift::it {

inline constexpr const char* kAdminPassword = "admin-secret";

// The [admin] section the console below logs in with.
inline std::string admin_config() { return std::string("\n[admin]\npassword = \"") + kAdminPassword + "\"\n"; }

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

  // SHOW CUTOVER as item -> value.
  std::map<std::string, std::string> show_cutover() const {
    std::map<std::string, std::string> out;
    const RunResult r = console("SHOW CUTOVER");
    EXPECT_RUN_OK(r);
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      const auto bar = line.find('|');
      if (bar != std::string::npos) out[line.substr(0, bar)] = line.substr(bar + 1);
    }
    return out;
  }

  // The [cutover] state file, shared by every pgshift a test starts.
  std::string state_file() const { return (state_dir_.path() / "state.json").string(); }

  std::unique_ptr<PgCluster> primary_, target_;
  std::unique_ptr<Pgshift> proxy_;
  TempDir state_dir_{"pgshift-it-state"};
};

}  // namespace pgshift::it
