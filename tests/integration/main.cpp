// Entry point of integration_tests. SIGPIPE is ignored so that a client closing its
// stdin early shows up as a write error in the harness instead of killing the run.
#include <gtest/gtest.h>

#include <csignal>

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
