// `pgshift sync start|stop|status`: see cli.cpp.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace pgshift::proxy::sync {

// Adds sync's options and verbs to `app` (main's `sync` subcommand); returns
// what runs the verb parsed (its exit status).
std::function<int()> setup(CLI::App& app);

}  // namespace pgshift::proxy::sync
