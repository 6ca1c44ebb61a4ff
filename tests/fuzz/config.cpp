// The configuration loader (config::load_string): any text either loads or
// reports at least one problem, and every problem names the source and says
// why (the "FILE: KEY: REASON" contract of --check-config).
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "fuzz_util.hpp"

using pgshift::fuzz::require_that;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<pgshift::config::ConfigError> errors;
  const auto cfg = pgshift::config::load_string(text, "fuzz.toml", errors);
  require_that(cfg.has_value() == errors.empty(), "a config or its problems, never both or neither");
  for (const auto& e : errors) {
    require_that(e.file == "fuzz.toml", "every problem names the source");
    require_that(!e.reason.empty(), "every problem says why");
  }
  return 0;
}
