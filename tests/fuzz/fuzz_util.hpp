// Shared bits of the libFuzzer targets. A property that does not hold calls
// require_that(false, ...), which aborts so libFuzzer records the input as a crash.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace pgshift::fuzz {

inline void require_that(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz property violated: %s\n", what);
  std::abort();
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// True when `view` lies inside `outer` (a view the parser returned must borrow
// from the bytes it was given, never from elsewhere).
inline bool inside(std::string_view view, std::string_view outer) {
  if (view.empty()) return true;
  return view.data() >= outer.data() && view.size() <= outer.size() &&
         static_cast<std::size_t>(view.data() - outer.data()) <= outer.size() - view.size();
}

}  // namespace pgshift::fuzz
