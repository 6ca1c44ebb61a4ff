// `pgshift ctl`: operate a running pgshift from a shell. It reads the same
// configuration file, logs in to that instance's SQL admin console ([admin]
// user and password, on proxy.listen) and prints what a person wants to read.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace pgshift::ctl {

// Adds ctl's options and commands to `app`; returns what runs the command
// parsed (its exit status).
std::function<int()> setup(CLI::App& app);

}  // namespace pgshift::ctl
