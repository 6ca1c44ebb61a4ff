// `pgshift verify ...` (see cli.cpp): main() hands it the arguments after
// "verify" (argv[0] is "verify").
#pragma once

namespace pgshift::proxy::verify {

int run_verify(int argc, char** argv);

}  // namespace pgshift::proxy::verify
