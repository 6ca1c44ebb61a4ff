// `pgshift sync start|stop|status`: see cli.cpp.
#pragma once

namespace pgshift::proxy::sync {

// argv[0] is "sync"; returns the exit status.
int run_cli(int argc, char** argv);

}  // namespace pgshift::proxy::sync
