// The cutover's state file: what a restart reads back, and what it refuses.
#include "proxy/cutover/state.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace {

namespace fs = std::filesystem;
using namespace pgshift::proxy::cutover;
using pgshift::config::Side;

class StateFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("pgshift_state_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path() const { return (dir_ / "state.json").string(); }
  void write(const std::string& text) const { std::ofstream(path()) << text; }

  fs::path dir_;
};

TEST_F(StateFile, AbsentIsNoStateAndNoError) {
  std::string error;
  EXPECT_FALSE(load_state(path(), error));
  EXPECT_EQ(error, "");
}

TEST_F(StateFile, RoundTrip) {
  State s;
  s.epoch = 7;
  s.phase = Phase::cut_over;
  s.serving = Side::shadow;
  s.fenced = {Side::primary};
  std::string error;
  ASSERT_TRUE(save_state(path(), s, error)) << error;
  EXPECT_FALSE(fs::exists(path() + ".tmp")) << "the temporary file is renamed into place";
  EXPECT_EQ(fs::status(path()).permissions() & fs::perms::others_read, fs::perms::none);
  auto back = load_state(path(), error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->epoch, 7u);
  EXPECT_EQ(back->phase, Phase::cut_over);
  EXPECT_EQ(back->serving, Side::shadow);
  ASSERT_EQ(back->fenced.size(), 1u);
  EXPECT_EQ(back->fenced[0], Side::primary);
  EXPECT_FALSE(back->changed.empty());
}

TEST_F(StateFile, UnreadableStateIsAnErrorNotTheDefault) {
  for (const char* text : {"not json", "[]", "{\"epoch\": -1, \"phase\": \"shadowing\", \"serving\": \"primary\"}",
                           "{\"epoch\": 1, \"phase\": \"sideways\", \"serving\": \"primary\"}",
                           "{\"epoch\": 1, \"phase\": \"cut_over\", \"serving\": \"elsewhere\"}",
                           "{\"epoch\": 1, \"phase\": \"cutover\", \"serving\": \"primary\"}"}) {
    write(text);
    std::string error;
    EXPECT_FALSE(load_state(path(), error)) << text;
    EXPECT_NE(error.find(path()), std::string::npos) << "the error names the file: " << error;
  }
}

TEST(Phases, NamesRoundTrip) {
  for (Phase p : {Phase::shadowing, Phase::reads, Phase::cutover, Phase::cut_over, Phase::rollback, Phase::completed})
    EXPECT_EQ(phase_from(to_string(p)), p);
  EXPECT_FALSE(phase_from("cut-over"));
}

}  // namespace
