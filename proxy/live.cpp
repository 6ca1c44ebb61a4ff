#include "proxy/live.hpp"

#include <algorithm>

namespace pgshift::proxy {

rewrite::Options rewrite_options(const config::Config& cfg, unsigned threads, config::RenameSide side) {
  rewrite::Options o;
  for (const config::RenameRule& r : cfg.renames)
    if (r.renamed_on == side || r.renamed_on == config::RenameSide::both)
      o.rules.push_back({r.schema, r.table, r.from, r.to, r.expand});
  if (!cfg.rewrite.writing_functions.empty()) o.writing_functions = cfg.rewrite.writing_functions;
  o.cache_entries = std::max<std::size_t>(cfg.rewrite.cache_entries / threads, 16);
  o.cache_bytes = std::max<std::size_t>(cfg.rewrite.cache_bytes / threads, 1 << 16);
  return o;
}

// New rewriters start with an empty cache: every analysis made under the
// old rules is gone with them.
void build_io_thread(IoThread& t, SettingsPtr s, unsigned threads) {
  t.rewriters[0] = std::make_shared<rewrite::Rewriter>(rewrite_options(s->cfg, threads, config::RenameSide::primary));
  t.rewriters[1] = std::make_shared<rewrite::Rewriter>(rewrite_options(s->cfg, threads, config::RenameSide::shadow));
  t.version = s->version;
  t.settings = std::move(s);
}

}  // namespace pgshift::proxy
