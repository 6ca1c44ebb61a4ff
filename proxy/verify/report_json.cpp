#include "proxy/verify/report_json.hpp"

#include <boost/json.hpp>

namespace pgshift::proxy::verify {

namespace json = boost::json;
using pgshift::verify::TableReport;

namespace {

json::array strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

json::value text_or_null(const std::optional<std::string>& v) { return v ? json::value(*v) : json::value(nullptr); }

json::object table(const TableReport& t) {
  json::object o;
  o["table"] = t.table;
  o["status"] = std::string(pgshift::verify::to_string(t.status));
  o["mode"] = t.mode;
  o["column_differences"] = strings(t.column_issues);
  o["ignored_columns"] = strings(t.ignored);
  o["rows"] = t.rows;
  o["matching"] = t.matching;
  o["mismatched"] = t.mismatched;
  o["missing_on_target"] = t.missing;
  o["extra_on_target"] = t.extra;
  o["in_flight"] = t.in_flight;
  o["not_rechecked"] = t.not_rechecked;
  o["chunks"] = t.chunks;
  o["chunks_differing"] = t.chunks_differing;
  o["full_table_hash"] = t.full_table;
  if (t.full_table) o["target_rows"] = t.target_rows;
  o["seconds"] = t.seconds;
  if (!t.error.empty()) o["error"] = t.error;
  json::array diffs;
  for (std::size_t i = 0; i < t.first.size(); ++i) {
    const auto& d = t.first[i];
    json::object x;
    x["kind"] = std::string(pgshift::verify::to_string(d.kind));
    json::array key;
    for (const auto& part : d.key) key.emplace_back(part);
    x["key"] = std::move(key);
    if (i < t.first_text.size()) x["text"] = t.first_text[i];
    if (d.kind == pgshift::verify::DiffKind::changed) {
      x["column"] = d.column;
      x["primary"] = text_or_null(d.primary_value);
      x["target"] = text_or_null(d.target_value);
    }
    diffs.emplace_back(std::move(x));
  }
  o["differences"] = std::move(diffs);
  return o;
}

}  // namespace

std::string render_json(const pgshift::verify::Report& r) {
  json::object o;
  const int code = r.exit_code();
  o["result"] = code == 0 ? "match" : code == 1 ? "differs" : "error";
  o["exit_code"] = code;
  if (!r.error.empty()) o["error"] = r.error;
  o["primary"] = r.primary;
  o["target"] = r.target;
  o["mode"] = r.live ? "live" : "static";
  o["row_hash"] = r.row_hash;
  o["started"] = r.started;
  o["finished"] = r.finished;
  o["seconds"] = r.seconds;
  o["rows"] = r.rows();
  json::array tables;
  for (const TableReport& t : r.tables) tables.emplace_back(table(t));
  o["tables"] = std::move(tables);
  return json::serialize(o) + "\n";
}

}  // namespace pgshift::proxy::verify
