// VERIFY on the admin console (parsing) and verify's JSON report.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "config/config.hpp"
#include "proxy/admin/command.hpp"
#include "proxy/verify/report_json.hpp"

namespace {

using pgshift::proxy::admin::Command;
using pgshift::proxy::admin::parse_command;

TEST(VerifyConsole, VerifyTakesOptionalTables) {
  const Command all = parse_command("VERIFY");
  EXPECT_EQ(all.kind, Command::Kind::verify);
  EXPECT_TRUE(all.tables.empty());
  const Command some = parse_command("verify Accounts, app.notes,items  other;");
  EXPECT_EQ(some.kind, Command::Kind::verify);
  EXPECT_EQ(some.tables, (std::vector<std::string>{"accounts", "app.notes", "items", "other"}));
  const Command show = parse_command("SHOW VERIFY");
  EXPECT_EQ(show.kind, Command::Kind::show);
  EXPECT_EQ(show.what, "verify");
}

TEST(VerifyConsole, JsonReport) {
  pgshift::verify::Report r;
  r.primary = "127.0.0.1:5432/app";
  r.target = "127.0.0.1:5433/app";
  pgshift::verify::TableReport t;
  t.table = "public.a";
  t.rows = 3;
  t.mismatched = 1;
  pgshift::verify::Difference d;
  d.key = {"7"};
  d.column = "v";
  d.primary_value = "x";
  d.target_value = std::nullopt;
  t.first.push_back(d);
  t.first_text.push_back("id=7 changed (v: x on the primary, NULL on the target)");
  pgshift::verify::finish(t, nullptr);
  r.tables.push_back(t);
  const boost::json::value v = boost::json::parse(pgshift::proxy::verify::render_json(r));
  EXPECT_EQ(v.at("result").as_string(), "differs");
  EXPECT_EQ(v.at("exit_code").as_int64(), 1);
  const auto& table = v.at("tables").at(0);
  EXPECT_EQ(table.at("rows").to_number<std::uint64_t>(), 3u);
  EXPECT_EQ(table.at("matching").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(table.at("differences").at(0).at("column").as_string(), "v");
  EXPECT_TRUE(table.at("differences").at(0).at("target").is_null());
}

TEST(VerifyConsole, VerifySettingsLoad) {
  std::vector<pgshift::config::ConfigError> errors;
  auto cfg = pgshift::config::load_string(
      "[primary]\nhost = \"127.0.0.1\"\nport = 5432\n[shadow]\nhost = \"127.0.0.1\"\nport = 5433\n"
      "[[shadow.login]]\nclient_user = \"*\"\n[cutover]\nrequire_verify_within_s = 600\n"
      "[verify]\njobs = 4\nchunk_rows = 5000\nmax_rows_per_second = 100000\nlive = false\nrechecks = 1\n"
      "recheck_window_ms = 500\nuser = \"app\"\ndatabase = \"appdb\"\n",
      "t.toml", errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0].what());
  EXPECT_EQ(cfg->cutover.require_verify_within.count(), 600);
  EXPECT_EQ(cfg->verify.jobs, 4u);
  EXPECT_EQ(cfg->verify.chunk_rows, 5000u);
  EXPECT_EQ(cfg->verify.max_rows_per_second, 100000u);
  EXPECT_FALSE(cfg->verify.live);
  EXPECT_EQ(cfg->verify.recheck_window.count(), 500);
  EXPECT_EQ(cfg->verify.database, "appdb");
  errors.clear();
  EXPECT_FALSE(pgshift::config::load_string("[primary]\nhost = \"h\"\nport = 1\n[verify]\njobs = 0\nchunk = 1\n",
                                            "t.toml", errors));
  EXPECT_EQ(errors.size(), 2u);
}

}  // namespace
