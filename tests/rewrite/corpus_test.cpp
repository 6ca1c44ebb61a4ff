// Corpus tests for the rewriter: every [[case]] in tests/rewrite/corpus/*.toml
// is one SQL string with its expected classification, rewritten text,
// RowDescription renames and warning, checked against the fixed rules below.
// See tests/rewrite/README.md for the file format.
#include "rewrite/rewrite.hpp"

#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace pgshift::rewrite;

// The renames every corpus expectation is written for (schema_old.sql ->
// schema_new.sql).
std::vector<RenameRule> corpus_rules() {
  return {
      {"public", "users", "email", "email_address"},
      {"public", "users", "name", "full_name"},
      {"public", "orders", "status", "state"},
      {"billing", "invoices", "amt", "amount"},
  };
}

Options with_rules(std::vector<RenameRule> rules) {
  Options o;
  o.rules = std::move(rules);
  return o;
}

const std::set<std::string, std::less<>> kKinds = {
    "read_only", "write", "ddl", "transaction", "session",
    "copy_in", "copy_out", "empty", "unparseable"};
const std::set<std::string, std::less<>> kTxns = {
    "none",     "begin",    "commit",  "rollback",        "savepoint",
    "release",  "rollback_to", "prepare", "commit_prepared", "rollback_prepared"};

struct Case {
  std::string name;
  std::string id;    // test name: the name with non-alphanumerics as '_'
  std::string file;  // corpus file name, for messages
  std::string sql;
  std::vector<std::string> kinds;
  std::optional<std::string> rewritten;
  std::vector<std::vector<std::string>> outputs;  // empty when not given
  std::vector<std::string> txn;                   // empty when not given
  bool warning = false;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name << " (" << c.file << ")"; }

struct Corpus {
  std::vector<Case> cases;
  std::vector<std::string> errors;  // files or cases that could not be read
  std::vector<std::string> duplicate_names;
};

bool valid_output(std::string_view s) {
  const auto c1 = s.find(':');
  if (c1 == std::string_view::npos || c1 == 0) return false;
  const auto c2 = s.find(':', c1 + 1);
  if (c2 == std::string_view::npos || c2 == c1 + 1 || c2 + 1 == s.size()) return false;
  if (s.find(':', c2 + 1) != std::string_view::npos) return false;
  const std::string_view index = s.substr(0, c1);
  return index == "*" || std::all_of(index.begin(), index.end(),
                                     [](char ch) { return ch >= '0' && ch <= '9'; });
}

// Reads an array of strings; false if `n` is not one.
bool read_strings(const toml::node& n, std::vector<std::string>& out) {
  const toml::array* a = n.as_array();
  if (!a) return false;
  for (const toml::node& e : *a) {
    if (!e.is_string()) return false;
    out.push_back(*e.value<std::string>());
  }
  return true;
}

// Reads one [[case]]; returns an error message, or "" when it is fine.
std::string read_case(const toml::table& t, Case& c) {
  static const std::set<std::string, std::less<>> known = {
      "name", "sql", "kinds", "rewritten", "outputs", "txn", "warning"};
  for (const auto& [key, value] : t) {
    if (!known.contains(key.str())) return "unknown key '" + std::string(key.str()) + "'";
  }
  const toml::node* name = t.get("name");
  if (!name || !name->is_string()) return "'name' must be a string";
  c.name = *name->value<std::string>();
  if (c.name.empty()) return "'name' is empty";
  const toml::node* sql = t.get("sql");
  if (!sql || !sql->is_string()) return "'sql' must be a string";
  c.sql = *sql->value<std::string>();

  const toml::node* kinds = t.get("kinds");
  if (!kinds || !read_strings(*kinds, c.kinds) || c.kinds.empty()) {
    return "'kinds' must be a non-empty array of strings";
  }
  for (const auto& k : c.kinds) {
    if (!kKinds.contains(k)) return "unknown kind '" + k + "'";
  }
  if (const toml::node* r = t.get("rewritten")) {
    if (!r->is_string()) return "'rewritten' must be a string";
    c.rewritten = *r->value<std::string>();
    if (*c.rewritten == c.sql) return "'rewritten' equals 'sql': omit it instead";
  }
  if (const toml::node* o = t.get("outputs")) {
    const toml::array* a = o->as_array();
    if (!a || a->size() != c.kinds.size()) {
      return "'outputs' must be an array with one array per statement";
    }
    for (const toml::node& per : *a) {
      std::vector<std::string> v;
      if (!read_strings(per, v)) return "'outputs' entries must be arrays of strings";
      for (const auto& s : v) {
        if (!valid_output(s)) return "bad output '" + s + "' (want INDEX:FROM:TO)";
      }
      c.outputs.push_back(std::move(v));
    }
  }
  if (const toml::node* x = t.get("txn")) {
    if (!read_strings(*x, c.txn) || c.txn.size() != c.kinds.size()) {
      return "'txn' must be an array of strings, one per statement";
    }
    for (const auto& s : c.txn) {
      if (!kTxns.contains(s)) return "unknown txn '" + s + "'";
    }
  }
  if (const toml::node* w = t.get("warning")) {
    if (!w->is_boolean()) return "'warning' must be a boolean";
    c.warning = *w->value<bool>();
    if (c.warning && c.rewritten) return "a 'warning' case cannot have 'rewritten'";
  }
  return "";
}

Corpus load_corpus() {
  Corpus corpus;
  const fs::path dir = fs::path(PGSHIFT_SOURCE_DIR) / "tests" / "rewrite" / "corpus";
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".toml") files.push_back(e.path());
  }
  if (ec) corpus.errors.push_back(dir.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());

  std::map<std::string, std::string> seen;  // name -> file
  std::set<std::string> ids;
  for (const fs::path& path : files) {
    const std::string file = path.filename().string();
    toml::table root;
#if TOML_EXCEPTIONS
    try {
      root = toml::parse_file(path.string());
    } catch (const toml::parse_error& e) {
      std::ostringstream msg;
      msg << file << ":" << e.source().begin.line << ": " << e.description();
      corpus.errors.push_back(msg.str());
      continue;
    }
#else
    toml::parse_result result = toml::parse_file(path.string());
    if (!result) {
      std::ostringstream msg;
      msg << file << ":" << result.error().source().begin.line << ": "
          << result.error().description();
      corpus.errors.push_back(msg.str());
      continue;
    }
    root = std::move(result).table();
#endif
    for (const auto& [key, value] : root) {
      if (key.str() != "case") {
        corpus.errors.push_back(file + ": unknown top-level key '" + std::string(key.str()) + "'");
      }
    }
    const toml::array* cases = root.get_as<toml::array>("case");
    if (!cases) {
      corpus.errors.push_back(file + ": no [[case]] tables");
      continue;
    }
    for (std::size_t i = 0; i < cases->size(); ++i) {
      const toml::table* t = (*cases)[i].as_table();
      Case c;
      c.file = file;
      const std::string err =
          t ? read_case(*t, c) : std::string("[[case]] entry is not a table");
      if (!err.empty()) {
        corpus.errors.push_back(file + ": case #" + std::to_string(i + 1) +
                                (c.name.empty() ? "" : " '" + c.name + "'") + ": " + err);
        continue;
      }
      if (auto [it, fresh] = seen.emplace(c.name, file); !fresh) {
        corpus.duplicate_names.push_back(c.name + " (" + it->second + " and " + file + ")");
      }
      std::string id = c.name;
      for (char& ch : id) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      const std::string base = id;
      for (int n = 2; ids.contains(id); ++n) id = base + "_" + std::to_string(n);
      ids.insert(id);
      c.id = std::move(id);
      corpus.cases.push_back(std::move(c));
    }
  }
  return corpus;
}

const Corpus& corpus() {
  static const Corpus c = load_corpus();
  return c;
}

std::vector<Case> cases_with_rewrite() {
  std::vector<Case> out;
  for (const Case& c : corpus().cases) {
    if (c.rewritten) out.push_back(c);
  }
  return out;
}

std::string format_output(const OutputRename& o) {
  return (o.index < 0 ? std::string("*") : std::to_string(o.index)) + ":" + o.from + ":" + o.to;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::string> got_outputs(const Analysis& a, std::size_t i) {
  std::vector<std::string> v;
  if (i < a.outputs.size()) {
    for (const OutputRename& o : a.outputs[i]) v.push_back(format_output(o));
  }
  return sorted(std::move(v));
}

std::string join(const std::vector<std::string>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s + "]";
}

// The analysis in one line per field, for failure messages.
std::string describe(const Analysis& a) {
  std::ostringstream os;
  os << "kinds:";
  for (const auto& s : a.statements) {
    os << ' ' << to_string(s.kind) << '/' << to_string(s.txn) << (s.writes ? "/w" : "")
       << " [" << s.begin << ',' << s.end << ')';
  }
  os << "\nrewritten: " << (a.changed() ? a.rewritten : "(unchanged)") << "\noutputs:";
  for (std::size_t i = 0; i < a.outputs.size(); ++i) os << ' ' << join(got_outputs(a, i));
  os << "\nwarning: " << (a.warning.empty() ? "(none)" : a.warning);
  return os.str();
}

// Skips whitespace and comments (nested block comments included).
std::size_t skip_blank(std::string_view s, std::size_t i) {
  while (i < s.size()) {
    if (std::isspace(static_cast<unsigned char>(s[i]))) {
      ++i;
    } else if (s.compare(i, 2, "--") == 0) {
      while (i < s.size() && s[i] != '\n') ++i;
    } else if (s.compare(i, 2, "/*") == 0) {
      int depth = 0;
      do {
        if (s.compare(i, 2, "/*") == 0) {
          ++depth;
          i += 2;
        } else if (s.compare(i, 2, "*/") == 0) {
          --depth;
          i += 2;
        } else {
          ++i;
        }
      } while (depth > 0 && i < s.size());
    } else {
      break;
    }
  }
  return i;
}

bool starts_with_word(std::string_view s, std::string_view word) {
  const std::size_t i = skip_blank(s, 0);
  if (s.size() - i < word.size()) return false;
  for (std::size_t k = 0; k < word.size(); ++k) {
    if (std::tolower(static_cast<unsigned char>(s[i + k])) != word[k]) return false;
  }
  const std::size_t j = i + word.size();
  return j == s.size() || !(std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_');
}

// What StatementInfo::writes must be for a statement of `kind` whose text is
// `text`.
bool expected_writes(std::string_view kind, std::string_view text) {
  if (kind == "read_only" || kind == "transaction" || kind == "copy_out" || kind == "empty") {
    return false;
  }
  if (kind == "session") return starts_with_word(text, "execute");
  return true;  // write, ddl, copy_in, unparseable
}

// Kinds, txn and writes of `a` against the case.
void check_classification(const Case& c, const Analysis& a) {
  ASSERT_EQ(a.statements.size(), c.kinds.size()) << describe(a);
  std::uint32_t prev_end = 0;
  for (std::size_t i = 0; i < c.kinds.size(); ++i) {
    const StatementInfo& s = a.statements[i];
    SCOPED_TRACE("statement " + std::to_string(i));
    EXPECT_EQ(to_string(s.kind), c.kinds[i]) << describe(a);
    if (!c.txn.empty()) {
      EXPECT_EQ(to_string(s.txn), c.txn[i]) << describe(a);
    }
    EXPECT_LE(s.begin, s.end);
    EXPECT_LE(s.end, c.sql.size());
    EXPECT_GE(s.begin, prev_end);
    prev_end = s.end;
    const std::string_view text =
        s.begin <= s.end && s.end <= c.sql.size()
            ? std::string_view(c.sql).substr(s.begin, s.end - s.begin)
            : std::string_view();
    EXPECT_EQ(s.writes, expected_writes(c.kinds[i], text))
        << "kind " << c.kinds[i] << ", statement text: " << text;
  }
}

std::string trace(const Case& c) {
  return "case '" + c.name + "' in " + c.file + "\nsql: " + c.sql;
}

class CorpusTest : public ::testing::TestWithParam<Case> {};
class RoundTripTest : public ::testing::TestWithParam<Case> {};

// Classification, rewritten text, output renames and warning with the rules.
TEST_P(CorpusTest, Rewrite) {
  const Case& c = GetParam();
  SCOPED_TRACE(trace(c));
  Rewriter rw(with_rules(corpus_rules()));
  ASSERT_TRUE(rw.has_rules());
  const Analysis a = rw.analyze(c.sql);

  check_classification(c, a);
  if (c.rewritten) {
    EXPECT_TRUE(a.changed()) << describe(a);
    EXPECT_EQ(a.rewritten, *c.rewritten) << describe(a);
  } else {
    EXPECT_FALSE(a.changed()) << describe(a);
  }

  bool any_output = false;
  for (std::size_t i = 0; i < c.kinds.size(); ++i) {
    const auto want = c.outputs.empty() ? std::vector<std::string>{} : sorted(c.outputs[i]);
    any_output = any_output || !want.empty();
    EXPECT_EQ(join(got_outputs(a, i)), join(want)) << "outputs of statement " << i << "\n"
                                                   << describe(a);
  }
  for (std::size_t i = c.kinds.size(); i < a.outputs.size(); ++i) {
    EXPECT_TRUE(a.outputs[i].empty()) << "outputs for a statement that does not exist\n"
                                      << describe(a);
  }
  EXPECT_EQ(a.has_outputs(), any_output) << describe(a);

  if (c.warning) {
    EXPECT_FALSE(a.warning.empty()) << "expected a warning\n" << describe(a);
  } else {
    EXPECT_EQ(a.warning, "") << describe(a);
  }

  // Asked again (now from the cache), the answer is the same.
  const Analysis& b = rw.analyze(c.sql);
  EXPECT_EQ(describe(b), describe(a)) << "second analysis differs from the first";
}

// Without rules nothing is ever rewritten; classification does not change,
// and statements that are fine with the rules get no warning.
TEST_P(CorpusTest, NoRules) {
  const Case& c = GetParam();
  SCOPED_TRACE(trace(c));
  Rewriter rw(Options{});
  EXPECT_FALSE(rw.has_rules());
  const Analysis& a = rw.analyze(c.sql);
  check_classification(c, a);
  EXPECT_FALSE(a.changed()) << describe(a);
  EXPECT_FALSE(a.has_outputs()) << describe(a);
  if (!c.warning) {
    EXPECT_EQ(a.warning, "") << describe(a);
  }
}

// True if `sql` spells a renamed column's old name with upper-case letters
// somewhere (an unquoted EMAIL folds to email, and the inverse rewrite
// writes it back as the rule spells it).
bool spells_old_name_in_upper_case(std::string_view sql) {
  for (const RenameRule& r : corpus_rules()) {
    for (std::size_t i = 0; i + r.from.size() <= sql.size(); ++i) {
      bool same = true, upper = false;
      for (std::size_t k = 0; k < r.from.size() && same; ++k) {
        const char ch = sql[i + k];
        same = std::tolower(static_cast<unsigned char>(ch)) == r.from[k];
        upper = upper || (ch >= 'A' && ch <= 'Z');
      }
      if (same && upper) return true;
    }
  }
  return false;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The inverse rules turn the rewritten text back into the original (up to
// the case of old names the original spelled in upper case).
TEST_P(RoundTripTest, InverseRulesRestoreOriginal) {
  const Case& c = GetParam();
  SCOPED_TRACE(trace(c) + "\nrewritten: " + *c.rewritten);
  Rewriter rw(with_rules(invert(corpus_rules())));
  const Analysis& a = rw.analyze(*c.rewritten);
  EXPECT_TRUE(a.changed()) << describe(a);
  if (spells_old_name_in_upper_case(c.sql)) {
    EXPECT_TRUE(equal_ignoring_case(a.rewritten, c.sql))
        << "want (ignoring case): " << c.sql << "\n" << describe(a);
  } else {
    EXPECT_EQ(a.rewritten, c.sql) << describe(a);
  }
  EXPECT_EQ(a.warning, "") << describe(a);
  ASSERT_EQ(a.statements.size(), c.kinds.size()) << describe(a);
  for (std::size_t i = 0; i < c.kinds.size(); ++i) {
    EXPECT_EQ(to_string(a.statements[i].kind), c.kinds[i]) << "statement " << i;
  }
}

std::string case_id(const ::testing::TestParamInfo<Case>& info) { return info.param.id; }

INSTANTIATE_TEST_SUITE_P(Corpus, CorpusTest, ::testing::ValuesIn(corpus().cases), case_id);
INSTANTIATE_TEST_SUITE_P(Corpus, RoundTripTest, ::testing::ValuesIn(cases_with_rewrite()),
                         case_id);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CorpusTest);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(RoundTripTest);

TEST(CorpusFiles, LoadCleanly) {
  for (const std::string& e : corpus().errors) ADD_FAILURE() << e;
  EXPECT_GE(corpus().cases.size(), 300u);
  for (const std::string& d : corpus().duplicate_names) ADD_FAILURE() << "duplicate case name " << d;
}

// One Rewriter (one cache) over the whole corpus, twice, answers exactly as
// a fresh Rewriter does: statements that differ only in literals, comments
// or spacing must not get each other's rewrite.
TEST(CorpusFiles, SharedCacheGivesSameAnswers) {
  std::vector<std::string> fresh;
  for (const Case& c : corpus().cases) {
    Rewriter rw(with_rules(corpus_rules()));
    fresh.push_back(describe(rw.analyze(c.sql)));
  }
  Rewriter shared(with_rules(corpus_rules()));
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t i = 0; i < corpus().cases.size(); ++i) {
      const Case& c = corpus().cases[i];
      EXPECT_EQ(describe(shared.analyze(c.sql)), fresh[i]) << "pass " << pass << ", " << trace(c);
    }
  }
  EXPECT_GT(shared.stats().exact_hits, 0u);
}

// A statement larger than the cache's byte budget is analysed (and rewritten)
// like any other but never kept: the cache stays within its budget.
TEST(Cache, NeverKeepsAnEntryLargerThanItsBudget) {
  Options options = with_rules(corpus_rules());
  options.cache_bytes = 1 << 17;  // 64 KiB for each of the two caches
  Rewriter rw(options);
  const std::string big = "SELECT email FROM users WHERE name = '" + std::string(200000, 'x') + "'";
  for (int pass = 0; pass < 2; ++pass) {
    const Analysis& a = rw.analyze(big);
    ASSERT_EQ(a.statements.size(), 1u);
    EXPECT_EQ(a.rewritten.substr(0, 54), "SELECT email_address FROM users WHERE full_name = 'xxx");
    EXPECT_LE(rw.stats().bytes, options.cache_bytes);
  }
  EXPECT_EQ(rw.stats().exact_hits, 0u);
  EXPECT_EQ(rw.analyze("SELECT 1").statements.size(), 1u);  // small ones are still cached
  EXPECT_EQ(rw.analyze("SELECT 1").statements.size(), 1u);
  EXPECT_EQ(rw.stats().exact_hits, 1u);
  rw.release_memory();
  EXPECT_EQ(rw.analyze("SELECT 1").statements.size(), 1u);
}

}  // namespace

// SET and RESET as the shadow tracks them: run-time parameters a shared
// shadow connection can switch with RESET ALL and the SETs; everything else
// that changes the session needs a connection of its own.
TEST(Classify, SessionSettings) {
  struct Case {
    const char* sql;
    Setting setting;
    const char* name;
    bool session_state;
  };
  const Case cases[] = {
      {"SET search_path TO app, public", Setting::set, "search_path", true},
      {"SET SESSION TIME ZONE 'UTC'", Setting::set, "timezone", true},
      {"set datestyle = 'ISO, DMY'", Setting::set, "datestyle", true},
      {"SET NAMES 'UTF8'", Setting::set, "client_encoding", true},
      {"SET statement_timeout TO DEFAULT", Setting::reset, "statement_timeout", true},
      {"RESET search_path", Setting::reset, "search_path", true},
      {"RESET ALL", Setting::reset_all, "", true},
      {"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE", Setting::set,
       "SESSION CHARACTERISTICS", true},
      {"SET LOCAL lock_timeout = '1s'", Setting::none, "", false},
      {"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", Setting::none, "", false},
      {"SET ROLE app_writer", Setting::none, "", true},
      {"SET SESSION AUTHORIZATION DEFAULT", Setting::none, "", true},
      {"PREPARE q AS SELECT 1", Setting::none, "", true},
      {"SELECT set_config('search_path', 'app', false)", Setting::none, "", true},
  };
  Rewriter rw(Options{});
  for (const Case& c : cases) {
    const Analysis& a = rw.analyze(c.sql);
    ASSERT_EQ(a.statements.size(), 1u) << c.sql;
    const StatementInfo& s = a.statements[0];
    EXPECT_EQ(s.setting, c.setting) << c.sql;
    EXPECT_EQ(s.setting_name, c.name) << c.sql;
    EXPECT_EQ(s.session_state, c.session_state) << c.sql;
    EXPECT_EQ(std::string_view(c.sql).substr(s.begin, s.end - s.begin), c.sql) << "statement range";
  }
}
