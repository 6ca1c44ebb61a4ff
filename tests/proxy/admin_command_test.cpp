// Parsing the admin console's commands.
#include "proxy/admin/command.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using pgshift::proxy::admin::Command;
using pgshift::proxy::admin::parse_command;
using pgshift::proxy::admin::split_statements;
using K = Command::Kind;

TEST(AdminCommand, KeywordsAnyCaseAndSpacing) {
  EXPECT_EQ(parse_command("CUTOVER").kind, K::cutover);
  EXPECT_EQ(parse_command("  cutover ;").kind, K::cutover);
  EXPECT_EQ(parse_command("Cutover\n  Dry\tRun").kind, K::dry_run);
  EXPECT_EQ(parse_command("CUTOVER ABORT").kind, K::abort);
  EXPECT_EQ(parse_command("cutover rollback;").kind, K::rollback);
  EXPECT_EQ(parse_command("CUTOVER COMPLETE").kind, K::complete);
  EXPECT_EQ(parse_command("pause").kind, K::pause);
  EXPECT_EQ(parse_command("RESUME").kind, K::resume);
  EXPECT_EQ(parse_command("clear diverged").kind, K::clear_diverged);
  EXPECT_EQ(parse_command("   ").kind, K::empty);
  const Command show = parse_command("SHOW Sessions");
  EXPECT_EQ(show.kind, K::show);
  EXPECT_EQ(show.what, "sessions");
}

TEST(AdminCommand, ReadsTakesAPercentage) {
  const Command c = parse_command("CUTOVER READS 25");
  EXPECT_EQ(c.kind, K::reads);
  EXPECT_EQ(c.number, 25);
  for (const char* bad : {"CUTOVER READS", "CUTOVER READS 101", "CUTOVER READS -1", "CUTOVER READS 5x"})
    EXPECT_EQ(parse_command(bad).kind, K::unknown) << bad;
}

TEST(AdminCommand, AnythingElseIsUnknownWithAReason) {
  for (const char* bad : {"SELECT 1", "CUTOVER NOW", "SHOW", "SHOW a b", "PAUSE ALL", "DROP DATABASE x"}) {
    const Command c = parse_command(bad);
    EXPECT_EQ(c.kind, K::unknown) << bad;
    EXPECT_FALSE(c.what.empty()) << bad;
  }
}

TEST(AdminCommand, ReloadAndKillSession) {
  EXPECT_EQ(parse_command("reload;").kind, K::reload);
  const Command k = parse_command("KILL SESSION 42");
  EXPECT_EQ(k.kind, K::kill_session);
  EXPECT_EQ(k.number, 42);
  for (const char* bad : {"KILL", "KILL SESSION", "KILL SESSION 0", "KILL SESSION x", "KILL SESSIONS 3", "RELOAD NOW"})
    EXPECT_EQ(parse_command(bad).kind, K::unknown) << bad;
  for (const char* what : {"status", "mismatches", "rules", "config"}) {
    const Command c = parse_command(std::string("SHOW ") + what);
    EXPECT_EQ(c.kind, K::show);
    EXPECT_EQ(c.what, what);
  }
}

TEST(AdminCommand, QueriesSplitAtSemicolons) {
  const auto parts = split_statements("SHOW CUTOVER; CUTOVER DRY RUN;;  ");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parse_command(parts[0]).kind, K::show);
  EXPECT_EQ(parse_command(parts[1]).kind, K::dry_run);
  EXPECT_TRUE(split_statements(" ; ").empty());
}

}  // namespace
