// `pgshift verify ...` (see cli.cpp).
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace pgshift::proxy::verify {

// Adds verify's options to `app` (main's `verify` subcommand); returns what
// runs it once parsed (its exit status).
std::function<int()> setup(CLI::App& app);

}  // namespace pgshift::proxy::verify
