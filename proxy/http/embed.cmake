# Writes the status page into a C++ source file as one raw string literal, so
# the binary serves it without reading a file. Run by proxy/CMakeLists.txt.
file(READ "${IN}" content)
file(WRITE "${OUT}" "// Generated from proxy/http/status_page.html by proxy/http/embed.cmake.\nnamespace pgshift::proxy {\nextern const char* const kStatusPage;\nconst char* const kStatusPage = R\"pgshift_page(${content})pgshift_page\";\n}  // namespace pgshift::proxy\n")
