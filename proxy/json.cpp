// Boost.JSON, header-only: its implementation is compiled once, here (the
// library's own recommended way when not linking libboost_json).
#include <boost/json/src.hpp>
