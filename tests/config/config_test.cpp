// Tests for config loading, validation and endpoint parsing.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <cctype>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using namespace pgshift::config;
using std::chrono::milliseconds;

// A fresh folder per test under the gtest temp dir, removed afterwards.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "_" + info->name();
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = fs::path(::testing::TempDir()) /
           ("pgshift_config_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes `text` to dir_/rel (creating folders) and returns the full path.
  std::string write(const std::string& rel, const std::string& text) {
    fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }

  fs::path dir_;
};

const ConfigError* find_error(const std::vector<ConfigError>& errors, const std::string& key) {
  for (const auto& e : errors) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

std::string dump(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const auto& e : errors) out += "  " + e.what() + "\n";
  return out;
}

constexpr const char* kMinimal = "[primary]\nhost = \"db\"\nport = 5432\n";

// Loads `text` (as a string) and expects exactly one error, on `key`.
void expect_single_error(const std::string& text, const std::string& key,
                         const std::string& reason_part = "") {
  std::vector<ConfigError> errors;
  auto cfg = load_string(text, "test.toml", errors);
  EXPECT_FALSE(cfg.has_value()) << text;
  ASSERT_EQ(errors.size(), 1u) << text << "\n" << dump(errors);
  EXPECT_EQ(errors[0].key, key) << text;
  EXPECT_EQ(errors[0].file, "test.toml");
  if (!reason_part.empty()) {
    EXPECT_NE(errors[0].reason.find(reason_part), std::string::npos)
        << "reason: " << errors[0].reason << "\nexpected to contain: " << reason_part;
  }
}

// ---------------------------------------------------------------------------
// Valid files

TEST_F(ConfigTest, FullValidFileRoundTrip) {
  std::string crt = write("server.crt", "cert");
  std::string key = write("server.key", "key");
  std::string ca = write("ca.crt", "ca");
  std::string ccrt = write("client.crt", "cert");
  std::string ckey = write("client.key", "key");
  std::string path = write("pgshift.toml", R"(
[proxy]
listen = "[::1]:7432"
threads = 4
login_timeout_ms = 1500
shutdown_timeout_ms = 0
max_message_size = 10000
buffer_size = 1048576
max_connections = 50

[log]
level = "debug"

[client_tls]
mode = "require"
cert = ")" + crt + R"("
key = ")" + key + R"("

[primary]
host = "db.example.com"
port = 65535
connect_timeout_ms = 250

[primary.tls]
mode = "verify-full"
ca = ")" + ca + R"("
cert = ")" + ccrt + R"("
key = ")" + ckey + R"("
)");

  std::vector<ConfigError> errors;
  auto cfg = load_file(path, errors);
  ASSERT_TRUE(cfg.has_value()) << dump(errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(cfg->source, path);
  EXPECT_EQ(cfg->listen.host, "::1");
  EXPECT_EQ(cfg->listen.port, 7432);
  EXPECT_EQ(cfg->threads, 4u);
  EXPECT_EQ(cfg->login_timeout, milliseconds(1500));
  EXPECT_EQ(cfg->shutdown_timeout, milliseconds(0));
  EXPECT_EQ(cfg->max_message_size, 10000u);
  EXPECT_EQ(cfg->buffer_size, 1048576u);
  EXPECT_EQ(cfg->max_connections, 50u);
  EXPECT_EQ(cfg->log_level, "debug");
  EXPECT_EQ(cfg->client_tls.mode, ClientTlsMode::require);
  EXPECT_EQ(cfg->client_tls.cert_file, crt);
  EXPECT_EQ(cfg->client_tls.key_file, key);
  EXPECT_EQ(cfg->primary.address.host, "db.example.com");
  EXPECT_EQ(cfg->primary.address.port, 65535);
  EXPECT_EQ(cfg->primary.connect_timeout, milliseconds(250));
  EXPECT_EQ(cfg->primary.tls.mode, ServerTlsMode::verify_full);
  EXPECT_EQ(cfg->primary.tls.ca_file, ca);
  EXPECT_EQ(cfg->primary.tls.cert_file, ccrt);
  EXPECT_EQ(cfg->primary.tls.key_file, ckey);
}

TEST_F(ConfigTest, DefaultsWhenOnlyPrimaryIsGiven) {
  std::vector<ConfigError> errors;
  auto cfg = load_string(kMinimal, "min.toml", errors);
  ASSERT_TRUE(cfg.has_value()) << dump(errors);
  Config def;
  EXPECT_EQ(cfg->source, "min.toml");
  EXPECT_EQ(cfg->listen.host, "127.0.0.1");
  EXPECT_EQ(cfg->listen.port, 6432);
  EXPECT_EQ(cfg->threads, 0u);
  EXPECT_EQ(cfg->login_timeout, milliseconds(10000));
  EXPECT_EQ(cfg->shutdown_timeout, milliseconds(30000));
  EXPECT_EQ(cfg->max_message_size, 1u << 30);
  EXPECT_EQ(cfg->max_buffered_bytes, 2ull << 30);
  EXPECT_EQ(cfg->buffer_size, 8192u);
  EXPECT_EQ(cfg->max_connections, 10000u);
  EXPECT_EQ(cfg->log_level, "info");
  EXPECT_EQ(cfg->client_tls.mode, ClientTlsMode::disable);
  EXPECT_EQ(cfg->primary.address.host, "db");
  EXPECT_EQ(cfg->primary.address.port, 5432);
  EXPECT_EQ(cfg->primary.connect_timeout, milliseconds(5000));
  EXPECT_EQ(cfg->primary.tls.mode, ServerTlsMode::disable);
  EXPECT_EQ(cfg->max_message_size, def.max_message_size);
}

// The default budget follows max_message_size: room for two of the largest messages.
TEST_F(ConfigTest, MaxBufferedBytesDefaultsToTwiceMaxMessageSize) {
  std::vector<ConfigError> errors;
  auto cfg = load_string(std::string(kMinimal) + "[proxy]\nmax_message_size = 1000000\n", "t.toml", errors);
  ASSERT_TRUE(cfg.has_value()) << dump(errors);
  EXPECT_EQ(cfg->max_buffered_bytes, 2000000u);
  cfg = load_string(std::string(kMinimal) + "[proxy]\nmax_message_size = 1000000\nmax_buffered_bytes = 1000000\n",
                    "t.toml", errors);
  ASSERT_TRUE(cfg.has_value()) << dump(errors);
  EXPECT_EQ(cfg->max_buffered_bytes, 1000000u);
}

TEST_F(ConfigTest, AllTlsModesAccepted) {
  for (const char* mode : {"disable", "prefer", "require"}) {
    std::vector<ConfigError> errors;
    auto cfg = load_string(std::string(kMinimal) + "[primary.tls]\nmode = \"" + mode + "\"\n",
                           "t.toml", errors);
    EXPECT_TRUE(cfg.has_value()) << mode << "\n" << dump(errors);
  }
  std::string crt = write("a.crt", "x");
  std::string key = write("a.key", "x");
  for (const char* mode : {"allow", "require"}) {
    std::vector<ConfigError> errors;
    auto cfg = load_string(std::string(kMinimal) + "[client_tls]\nmode = \"" + mode +
                               "\"\ncert = \"" + crt + "\"\nkey = \"" + key + "\"\n",
                           "t.toml", errors);
    EXPECT_TRUE(cfg.has_value()) << mode << "\n" << dump(errors);
  }
}

// ---------------------------------------------------------------------------
// Single bad values: each names its key.

struct BadCase {
  const char* text;
  const char* key;
  const char* reason;
};
// Shown by gtest (and so in ctest's names) instead of the struct's raw bytes.
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.key; }

class BadValue : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadValue, NamesTheKey) {
  const BadCase& c = GetParam();
  expect_single_error(c.text, c.key, c.reason);
}

#define PRIMARY "[primary]\nhost = \"db\"\nport = 5432\n"

INSTANTIATE_TEST_SUITE_P(
    Config, BadValue,
    ::testing::Values(
        // [primary]
        BadCase{"[primary]\nhost = \"db\"\n", "primary.port", "missing"},
        BadCase{"[primary]\nport = 5432\n", "primary.host", "missing"},
        BadCase{"[primary]\nhost = \"\"\nport = 5432\n", "primary.host", "empty"},
        BadCase{"[primary]\nhost = \"db\"\nport = 0\n", "primary.port", "between 1 and 65535"},
        BadCase{"[primary]\nhost = \"db\"\nport = 65536\n", "primary.port", "between"},
        BadCase{"[primary]\nhost = \"db\"\nport = -1\n", "primary.port", "between"},
        BadCase{"[primary]\nhost = \"db\"\nport = \"5432\"\n", "primary.port",
                "expected an integer"},
        BadCase{"[primary]\nhost = \"db\"\nport = 5432.0\n", "primary.port",
                "expected an integer"},
        BadCase{"[primary]\nhost = 5\nport = 5432\n", "primary.host", "expected a string"},
        BadCase{PRIMARY "connect_timeout_ms = 0\n", "primary.connect_timeout_ms", "between"},
        BadCase{"primary = 3\n", "primary", "expected a table"},
        // [proxy]
        BadCase{PRIMARY "[proxy]\nthreads = 257\n", "proxy.threads", "between 0 and 256"},
        BadCase{PRIMARY "[proxy]\nthreads = -1\n", "proxy.threads", "between"},
        BadCase{PRIMARY "[proxy]\nthreads = true\n", "proxy.threads", "expected an integer"},
        BadCase{PRIMARY "[proxy]\nlogin_timeout_ms = 0\n", "proxy.login_timeout_ms", "between"},
        BadCase{PRIMARY "[proxy]\nshutdown_timeout_ms = -1\n", "proxy.shutdown_timeout_ms",
                "between"},
        BadCase{PRIMARY "[proxy]\nmax_message_size = 9999\n", "proxy.max_message_size",
                "between"},
        BadCase{PRIMARY "[proxy]\nmax_message_size = 1073741825\n", "proxy.max_message_size",
                "between"},
        BadCase{PRIMARY "[proxy]\nmax_buffered_bytes = 9999\n", "proxy.max_buffered_bytes", "between"},
        BadCase{PRIMARY "[proxy]\nmax_buffered_bytes = 1099511627777\n", "proxy.max_buffered_bytes", "between"},
        BadCase{PRIMARY "[proxy]\nmax_buffered_bytes = \"1G\"\n", "proxy.max_buffered_bytes", "expected an integer"},
        BadCase{PRIMARY "[proxy]\nmax_message_size = 20000\nmax_buffered_bytes = 19999\n", "proxy.max_buffered_bytes",
                "at least proxy.max_message_size (20000)"},
        BadCase{PRIMARY "[proxy]\nbuffer_size = 1023\n", "proxy.buffer_size", "between"},
        BadCase{PRIMARY "[proxy]\nbuffer_size = 1048577\n", "proxy.buffer_size", "between"},
        BadCase{PRIMARY "[proxy]\nmax_connections = 0\n", "proxy.max_connections", "between"},
        BadCase{PRIMARY "[proxy]\nlisten = \"localhost\"\n", "proxy.listen", "host:port"},
        BadCase{PRIMARY "[proxy]\nlisten = 6432\n", "proxy.listen", "expected a string"},
        BadCase{"proxy = [1, 2]\n" PRIMARY, "proxy", "expected a table"},
        BadCase{PRIMARY "proxy = 1\n", "primary.proxy",
                "unknown key (did you mean \"proxy\" at the top level?)"},
        // [log]
        BadCase{PRIMARY "[log]\nlevel = \"verbose\"\n", "log.level", "must be one of"},
        BadCase{PRIMARY "[log]\nlevel = 1\n", "log.level", "expected a string"},
        // [client_tls]
        BadCase{PRIMARY "[client_tls]\nmode = \"on\"\n", "client_tls.mode", "must be one of"},
        BadCase{PRIMARY "[client_tls]\nmode = \"disable\"\ncert = 1\n", "client_tls.cert",
                "expected a string"},
        // [primary.tls]
        BadCase{PRIMARY "[primary.tls]\nmode = \"verify_ca\"\n", "primary.tls.mode",
                "must be one of"},
        BadCase{PRIMARY "[primary.tls]\nmode = \"verify-ca\"\n", "primary.tls.ca", "required"},
        BadCase{PRIMARY "[primary.tls]\nmode = \"verify-full\"\n", "primary.tls.ca", "required"},
        BadCase{PRIMARY "[primary.tls]\nmode = \"prefer\"\nca = \"/nonexistent/ca.crt\"\n",
                "primary.tls.ca", "not found: /nonexistent/ca.crt"},
        BadCase{PRIMARY "[primary.tls]\nmode = \"disable\"\ncert = \"c.crt\"\n",
                "primary.tls.key", "required when cert"},
        // unknown keys and sections
        BadCase{PRIMARY "[proxy]\ntreads = 2\n", "proxy.treads",
                "unknown key (did you mean \"threads\"?)"},
        BadCase{PRIMARY "[proxy]\nlogin_timeout = 2\n", "proxy.login_timeout",
                "did you mean \"login_timeout_ms\""},
        BadCase{"threads = 2\n" PRIMARY, "threads", "did you mean \"proxy.threads\""},
        BadCase{PRIMARY "threads = 2\n", "primary.threads", "did you mean \"proxy.threads\""},
        BadCase{PRIMARY "[replica]\nhost = \"x\"\n", "replica", "unknown section"},
        BadCase{PRIMARY "[primary.tls]\nsslmode = \"x\"\n", "primary.tls.sslmode", "unknown key"},
        BadCase{PRIMARY "[log]\n\"a b\" = 1\n", "log.\"a b\"", "unknown key"}),
    // Readable ctest names: the case's index and the key it is about.
    [](const ::testing::TestParamInfo<BadCase>& param_info) {
      std::string name = std::to_string(param_info.index) + "_";
      for (const char* p = param_info.param.key; *p; ++p)
        name += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
      return name;
    });

#undef PRIMARY

TEST_F(ConfigTest, ClientTlsRequiresCertAndKey) {
  std::vector<ConfigError> errors;
  auto cfg = load_string(std::string(kMinimal) + "[client_tls]\nmode = \"allow\"\n", "t.toml",
                         errors);
  EXPECT_FALSE(cfg);
  ASSERT_EQ(errors.size(), 2u) << dump(errors);
  ASSERT_NE(find_error(errors, "client_tls.cert"), nullptr);
  ASSERT_NE(find_error(errors, "client_tls.key"), nullptr);
  EXPECT_NE(find_error(errors, "client_tls.cert")->reason.find("required"), std::string::npos);
}

TEST_F(ConfigTest, ClientTlsFilesMustExist) {
  std::string crt = write("server.crt", "x");
  std::vector<ConfigError> errors;
  auto cfg = load_string(std::string(kMinimal) + "[client_tls]\nmode = \"require\"\ncert = \"" +
                             crt + "\"\nkey = \"" + (dir_ / "missing.key").string() + "\"\n",
                         "t.toml", errors);
  EXPECT_FALSE(cfg);
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].key, "client_tls.key");
  EXPECT_NE(errors[0].reason.find("missing.key"), std::string::npos);

  // A directory is not a usable file either.
  errors.clear();
  cfg = load_string(std::string(kMinimal) + "[client_tls]\nmode = \"require\"\ncert = \"" +
                        dir_.string() + "\"\nkey = \"" + crt + "\"\n",
                    "t.toml", errors);
  EXPECT_FALSE(cfg);
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].key, "client_tls.cert");
}

TEST_F(ConfigTest, UnreadableFileIsReported) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can read any file";
  std::string crt = write("server.crt", "x");
  std::string key = write("server.key", "x");
  fs::permissions(key, fs::perms::none);
  std::vector<ConfigError> errors;
  auto cfg = load_string(std::string(kMinimal) + "[client_tls]\nmode = \"require\"\ncert = \"" +
                             crt + "\"\nkey = \"" + key + "\"\n",
                         "t.toml", errors);
  EXPECT_FALSE(cfg);
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].key, "client_tls.key");
  EXPECT_NE(errors[0].reason.find("cannot read"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Several problems at once

TEST_F(ConfigTest, AllErrorsAreReportedTogether) {
  std::string path = write("bad.toml", R"(
[proxy]
threads = 1000
buffer_size = "big"
colour = "blue"

[log]
level = "loud"

[primary]
port = 99999
)");
  std::vector<ConfigError> errors;
  auto cfg = load_file(path, errors);
  EXPECT_FALSE(cfg);
  for (const char* key : {"proxy.threads", "proxy.buffer_size", "proxy.colour", "log.level",
                          "primary.host", "primary.port"}) {
    const ConfigError* e = find_error(errors, key);
    ASSERT_NE(e, nullptr) << key << "\n" << dump(errors);
    EXPECT_EQ(e->file, path);
  }
  // A rejected value is not reported a second time by the cross-field checks.
  EXPECT_EQ(errors.size(), 6u) << dump(errors);
}

TEST_F(ConfigTest, MissingPrimarySectionNamesBothKeys) {
  std::vector<ConfigError> errors;
  auto cfg = load_string("[proxy]\nthreads = 1\n", "t.toml", errors);
  EXPECT_FALSE(cfg);
  ASSERT_EQ(errors.size(), 2u) << dump(errors);
  EXPECT_NE(find_error(errors, "primary.host"), nullptr);
  EXPECT_NE(find_error(errors, "primary.port"), nullptr);

  errors.clear();
  EXPECT_FALSE(load_string("", "empty.toml", errors));
  EXPECT_EQ(errors.size(), 2u) << dump(errors);
}

TEST_F(ConfigTest, ErrorsAreAppended) {
  std::vector<ConfigError> errors{ConfigError{"earlier", "", "kept"}};
  EXPECT_FALSE(load_string("[primary]\nhost = \"x\"\n", "t.toml", errors));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].file, "earlier");
  EXPECT_EQ(errors[1].key, "primary.port");
}

// ---------------------------------------------------------------------------
// Syntax errors and unreadable config files

TEST_F(ConfigTest, SyntaxErrorReportsLineAndColumn) {
  std::string path = write("syntax.toml", "[primary]\nhost = \"db\"\nport = = 5432\n");
  std::vector<ConfigError> errors;
  auto cfg = load_file(path, errors);
  EXPECT_FALSE(cfg);
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].file, path);
  EXPECT_TRUE(errors[0].key.empty());
  EXPECT_NE(errors[0].reason.find("line 3"), std::string::npos) << errors[0].reason;
  EXPECT_NE(errors[0].reason.find("column"), std::string::npos) << errors[0].reason;
  EXPECT_EQ(errors[0].what().rfind(path + ": ", 0), 0u) << errors[0].what();
}

TEST_F(ConfigTest, DuplicateKeyIsASyntaxError) {
  std::vector<ConfigError> errors;
  EXPECT_FALSE(load_string("[primary]\nhost = \"a\"\nhost = \"b\"\nport = 1\n", "dup.toml",
                           errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].reason.find("line 3"), std::string::npos) << errors[0].reason;
}

TEST_F(ConfigTest, MissingFileIsReported) {
  std::string path = (dir_ / "nope.toml").string();
  std::vector<ConfigError> errors;
  EXPECT_FALSE(load_file(path, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].file, path);
  EXPECT_FALSE(errors[0].reason.empty());

  errors.clear();
  EXPECT_FALSE(load_file(dir_.string(), errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].file, dir_.string());
}

// ---------------------------------------------------------------------------
// Relative paths

TEST_F(ConfigTest, RelativePathsResolveAgainstConfigDirectory) {
  write("etc/certs/server.crt", "x");
  write("etc/certs/server.key", "x");
  write("etc/ca.crt", "x");
  std::string abs_key = write("elsewhere/client.key", "x");
  write("etc/client.crt", "x");
  std::string path = write("etc/pgshift.toml", std::string(kMinimal) + R"(
[client_tls]
mode = "require"
cert = "certs/server.crt"
key = "certs/server.key"

[primary.tls]
mode = "verify-ca"
ca = "ca.crt"
cert = "client.crt"
key = ")" + abs_key + "\"\n");

  std::vector<ConfigError> errors;
  auto cfg = load_file(path, errors);
  ASSERT_TRUE(cfg.has_value()) << dump(errors);
  fs::path etc = dir_ / "etc";
  EXPECT_EQ(fs::path(cfg->client_tls.cert_file), etc / "certs/server.crt");
  EXPECT_EQ(fs::path(cfg->client_tls.key_file), etc / "certs/server.key");
  EXPECT_EQ(fs::path(cfg->primary.tls.ca_file), etc / "ca.crt");
  EXPECT_EQ(fs::path(cfg->primary.tls.cert_file), etc / "client.crt");
  EXPECT_EQ(cfg->primary.tls.key_file, abs_key);  // absolute paths are untouched
}

// The default mismatch log, like a relative mismatch_log, is beside the config file
// (README: [shadow] mismatch_log), wherever pgshift was started from.
TEST_F(ConfigTest, MismatchLogResolvesAgainstConfigDirectory) {
  const std::string shadow = "[[shadow.login]]\nclient_user = \"*\"\n[shadow]\nhost = \"db2\"\nport = 5432\n";
  std::string path = write("etc/pgshift.toml", std::string(kMinimal) + shadow);
  std::vector<ConfigError> errors;
  auto cfg = load_file(path, errors);
  ASSERT_TRUE(cfg.has_value()) << dump(errors);
  EXPECT_EQ(fs::path(cfg->shadow.mismatch_log), dir_ / "etc" / "pgshift-mismatches.jsonl");

  path = write("etc/named.toml", std::string(kMinimal) + shadow + "mismatch_log = \"logs/m.jsonl\"\n");
  cfg = load_file(path, errors);
  ASSERT_TRUE(cfg.has_value()) << dump(errors);
  EXPECT_EQ(fs::path(cfg->shadow.mismatch_log), dir_ / "etc" / "logs" / "m.jsonl");

  // A config file named relative to the current directory gives absolute paths.
  const fs::path old = fs::current_path();
  fs::current_path(dir_);
  cfg = load_file("etc/pgshift.toml", errors);
  fs::current_path(old);
  ASSERT_TRUE(cfg.has_value()) << dump(errors);
  EXPECT_EQ(fs::path(cfg->shadow.mismatch_log), dir_ / "etc" / "pgshift-mismatches.jsonl");
}

TEST_F(ConfigTest, RelativePathMissingNextToConfigIsReported) {
  write("cwdfile.crt", "x");
  std::string path = write("etc/pgshift.toml", std::string(kMinimal) +
                                                   "[primary.tls]\nmode = \"verify-ca\"\n"
                                                   "ca = \"../cwdfile.crt\"\n");
  std::vector<ConfigError> errors;
  EXPECT_TRUE(load_file(path, errors)) << dump(errors);

  errors.clear();
  path = write("etc/other.toml",
               std::string(kMinimal) + "[primary.tls]\nmode = \"verify-ca\"\nca = \"ca.crt\"\n");
  EXPECT_FALSE(load_file(path, errors));
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].key, "primary.tls.ca");
  EXPECT_NE(errors[0].reason.find((dir_ / "etc" / "ca.crt").string()), std::string::npos)
      << errors[0].reason;
}

TEST_F(ConfigTest, LoadStringResolvesAgainstCurrentDirectory) {
  write("here.crt", "x");
  write("here.key", "x");
  fs::path old = fs::current_path();
  fs::current_path(dir_);
  std::vector<ConfigError> errors;
  auto cfg = load_string(std::string(kMinimal) +
                             "[client_tls]\nmode = \"require\"\ncert = \"here.crt\"\n"
                             "key = \"here.key\"\n",
                         "inline", errors);
  fs::current_path(old);
  ASSERT_TRUE(cfg.has_value()) << dump(errors);
  EXPECT_EQ(cfg->source, "inline");
  // Kept relative: it names the same file as long as the directory is the same.
  EXPECT_EQ(cfg->client_tls.cert_file, "here.crt");
  EXPECT_EQ(cfg->client_tls.key_file, "here.key");

  // From another directory the same text fails, naming the key.
  errors.clear();
  EXPECT_FALSE(load_string(std::string(kMinimal) +
                               "[client_tls]\nmode = \"require\"\ncert = \"here.crt\"\n"
                               "key = \"here.key\"\n",
                           "inline", errors));
  EXPECT_NE(find_error(errors, "client_tls.cert"), nullptr) << dump(errors);
}

// ---------------------------------------------------------------------------
// validate() on a Config built in code (as from command-line flags)

TEST(ConfigValidate, DefaultConfigNeedsPrimary) {
  Config cfg;
  std::vector<ConfigError> errors;
  validate(cfg, errors);
  ASSERT_EQ(errors.size(), 2u) << dump(errors);
  EXPECT_NE(find_error(errors, "primary.host"), nullptr);
  EXPECT_NE(find_error(errors, "primary.port"), nullptr);
  EXPECT_EQ(errors[0].file, "<command line>");

  cfg.primary.address = {"db", 5432};
  errors.clear();
  validate(cfg, errors);
  EXPECT_TRUE(errors.empty()) << dump(errors);
}

TEST(ConfigValidate, RangesAndCrossFieldRules) {
  Config cfg;
  cfg.primary.address = {"db", 5432};
  cfg.threads = 300;
  cfg.login_timeout = milliseconds(0);
  cfg.shutdown_timeout = milliseconds(-5);
  cfg.max_message_size = 100;
  cfg.buffer_size = 2u << 20;
  cfg.max_connections = 0;
  cfg.log_level = "chatty";
  cfg.listen.host.clear();
  cfg.client_tls.mode = ClientTlsMode::require;
  cfg.primary.connect_timeout = milliseconds(0);
  cfg.primary.tls.mode = ServerTlsMode::verify_full;
  cfg.primary.tls.cert_file = "/nonexistent/client.crt";

  std::vector<ConfigError> errors;
  validate(cfg, errors);
  for (const char* key :
       {"proxy.listen", "proxy.threads", "proxy.login_timeout_ms", "proxy.shutdown_timeout_ms",
        "proxy.max_message_size", "proxy.buffer_size", "proxy.max_connections", "log.level",
        "client_tls.cert", "client_tls.key", "primary.connect_timeout_ms", "primary.tls.ca",
        "primary.tls.key"}) {
    EXPECT_NE(find_error(errors, key), nullptr) << key << "\n" << dump(errors);
  }
  EXPECT_NE(find_error(errors, "primary.tls.cert"), nullptr) << dump(errors);  // not found
}

TEST(ConfigValidate, KeyWithoutCert) {
  Config cfg;
  cfg.primary.address = {"db", 5432};
  cfg.primary.tls.key_file = "k.key";
  std::vector<ConfigError> errors;
  validate(cfg, errors);
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].key, "primary.tls.cert");
}

TEST(ConfigError, WhatFormat) {
  EXPECT_EQ((ConfigError{"a.toml", "primary.port", "bad"}).what(), "a.toml: primary.port: bad");
  EXPECT_EQ((ConfigError{"a.toml", "", "line 1, column 2: oops"}).what(),
            "a.toml: line 1, column 2: oops");
}

// ---------------------------------------------------------------------------
// parse_endpoint

TEST(ParseEndpoint, Valid) {
  struct Case {
    const char* text;
    const char* host;
    std::uint16_t port;
  };
  for (const Case& c : {Case{"127.0.0.1:6432", "127.0.0.1", 6432}, Case{"localhost:1", "localhost", 1},
                        Case{"db.example.com:65535", "db.example.com", 65535},
                        Case{"[::1]:6432", "::1", 6432}, Case{"[::]:5432", "::", 5432},
                        Case{"0.0.0.0:06432", "0.0.0.0", 6432},
                        Case{"[fe80::1%eth0]:7000", "fe80::1%eth0", 7000}}) {
    Endpoint ep;
    ASSERT_TRUE(parse_endpoint(c.text, ep)) << c.text;
    EXPECT_EQ(ep.host, c.host) << c.text;
    EXPECT_EQ(ep.port, c.port) << c.text;
  }
}

TEST(ParseEndpoint, Invalid) {
  for (const char* text :
       {"", ":", "localhost", "localhost:", ":6432", "[]:6432", "[::1]", "[::1]:", "::1:6432",
        "[::1:6432", "::1]:6432", "host:0", "host:65536", "host:99999999", "host:-1", "host:+80",
        "host:80a", "host: 80", "host:6432 ", "ho st:80", "[::1]x:80"}) {
    Endpoint ep{"unchanged", 1};
    EXPECT_FALSE(parse_endpoint(text, ep)) << '"' << text << '"';
    EXPECT_EQ(ep.host, "unchanged") << text;
    EXPECT_EQ(ep.port, 1) << text;
  }
}

}  // namespace

// ---- [[rename]] and [rewrite] ---------------------------------------------

namespace {

std::optional<pgshift::config::Config> load_text_only(const std::string& text,
                                                      std::vector<pgshift::config::ConfigError>& errors) {
  return pgshift::config::load_string("[primary]\nhost = \"db\"\nport = 5432\n" + text, "renames.toml", errors);
}

}  // namespace

// Each text must be rejected with an error naming its key.
static void expect_errors_name_keys(const std::vector<std::pair<std::string, std::string>>& cases) {
  for (const auto& [text, key] : cases) {
    std::vector<pgshift::config::ConfigError> errors;
    EXPECT_FALSE(load_text_only(text, errors)) << text;
    bool named = false;
    for (const auto& e : errors) named = named || e.key == key;
    EXPECT_TRUE(named) << "expected an error for " << key << " in:\n" << text;
  }
}

TEST(ConfigRename, RulesLoadWithSchemaSideAndPhase) {
  std::vector<pgshift::config::ConfigError> errors;
  auto cfg = load_text_only(
      "[rewrite]\nstrict = true\ncache_entries = 100\n"
      "[[rename]]\ntable = \"users\"\nfrom = \"email\"\nto = \"email_address\"\nrenamed_on = \"primary\"\n"
      "[[rename]]\ntable = \"billing.invoices\"\nfrom = \"amt\"\nto = \"amount\"\nrenamed_on = \"both\"\n"
      "phase = \"expand\"\n",
      errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0].what());
  ASSERT_EQ(cfg->renames.size(), 2u);
  EXPECT_EQ(cfg->renames[0].schema, "public");
  EXPECT_EQ(cfg->renames[0].table, "users");
  EXPECT_FALSE(cfg->renames[0].expand);
  EXPECT_EQ(cfg->renames[1].schema, "billing");
  EXPECT_EQ(cfg->renames[1].renamed_on, pgshift::config::RenameSide::both);
  EXPECT_TRUE(cfg->renames[1].expand);
  EXPECT_TRUE(cfg->rewrite.strict);
  EXPECT_EQ(cfg->rewrite.cache_entries, 100u);
}

TEST(ConfigRename, BadRulesNameTheKey) {
  expect_errors_name_keys({
      {"[[rename]]\ntable = \"users\"\nfrom = \"email\"\nrenamed_on = \"primary\"\n", "rename[0].to"},
      {"[[rename]]\ntable = \"users\"\nfrom = \"a\"\nto = \"b\"\nrenamed_on = \"moon\"\n", "rename[0].renamed_on"},
      {"[[rename]]\ntable = \"users\"\nfrom = \"a\"\nto = \"a\"\nrenamed_on = \"primary\"\n", "rename[0].to"},
      {"[[rename]]\ntable = \"users\"\nfrom = \"a\"\nto = \"b\"\nrenamed_on = \"primary\"\nphase = \"x\"\n",
       "rename[0].phase"},
      {"[[rename]]\ntable = \"users\"\nfrom = \"a\"\nto = \"b\"\nrenamed_on = \"primary\"\n"
       "[[rename]]\ntable = \"users\"\nfrom = \"a\"\nto = \"c\"\nrenamed_on = \"primary\"\n",
       "rename[1].from"},
      {"[[rename]]\ntable = \"users\"\nfrom = \"a\"\nto = \"b\"\nrenamed_on = \"primary\"\ncolour = 1\n",
       "rename[0].colour"},
      {"[rewrite]\nstrict = 1\n", "rewrite.strict"},
  });
}

// ---- [shadow] -----------------------------------------------------------------

TEST(ConfigShadow, FullSectionLoads) {
  ::setenv("PGSHIFT_TEST_SHADOW_PW", "from-env", 1);
  std::vector<pgshift::config::ConfigError> errors;
  auto cfg = load_text_only(
      "[shadow]\nhost = \"10.0.0.2\"\nport = 5433\ndatabase = \"app\"\nread_sample_rate = 0.1\n"
      "queue_transactions = 500\nredact = false\napply_timeout_ms = 120000\nidle_timeout_ms = 5000\n"
      "[shadow.tls]\nmode = \"prefer\"\n"
      "[[shadow.login]]\nclient_user = \"*\"\nuser = \"mirror\"\npassword_env = \"PGSHIFT_TEST_SHADOW_PW\"\n"
      "[[shadow.login]]\nclient_user = \"app\"\npassword = \"pw\"\n"
      "[shadow.compare]\nignore_columns = [\"pgbench_history.mtime\"]\nnumeric_tolerance = 0.001\n",
      errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0].what());
  const auto& sh = cfg->shadow;
  EXPECT_TRUE(sh.enabled);
  EXPECT_EQ(sh.server.address.port, 5433);
  EXPECT_EQ(sh.server.tls.mode, pgshift::config::ServerTlsMode::prefer);
  EXPECT_DOUBLE_EQ(sh.read_sample_rate, 0.1);
  EXPECT_EQ(sh.queue_transactions, 500u);
  EXPECT_FALSE(sh.redact);
  EXPECT_EQ(sh.apply_timeout, std::chrono::milliseconds(120000));
  EXPECT_EQ(sh.idle_timeout, std::chrono::milliseconds(5000));
  ASSERT_NE(sh.login_for("someone"), nullptr);
  EXPECT_EQ(sh.login_for("someone")->user, "mirror");
  EXPECT_EQ(sh.login_for("someone")->password, "from-env");
  EXPECT_EQ(sh.login_for("app")->password, "pw");
  EXPECT_EQ(sh.compare.ignore_columns.at(0), "pgbench_history.mtime");
}

TEST(ConfigShadow, AbsentMeansDisabled) {
  std::vector<pgshift::config::ConfigError> errors;
  auto cfg = load_text_only("", errors);
  ASSERT_TRUE(cfg);
  EXPECT_FALSE(cfg->shadow.enabled);
}

TEST(ConfigShadow, BadSettingsNameTheKey) {
  const std::string login = "[[shadow.login]]\nclient_user = \"*\"\npassword = \"x\"\n";
  expect_errors_name_keys({
      {"[shadow]\nhost = \"h\"\nport = 5433\n", "shadow.login"},
      {"[shadow]\nport = 5433\n" + login, "shadow.host"},
      {"[shadow]\nhost = \"h\"\nport = 5433\nread_sample_rate = 2\n" + login, "shadow.read_sample_rate"},
      {"[shadow]\nhost = \"h\"\nport = 5433\nmirror = \"yes\"\n" + login, "shadow.mirror"},
      {"[shadow]\nhost = \"h\"\nport = 5433\n[[shadow.login]]\nuser = \"u\"\n", "shadow.login[0].client_user"},
      {"[shadow]\nhost = \"h\"\nport = 5433\n[[shadow.login]]\nclient_user = \"*\"\npassword_env = \"PGSHIFT_NOT_SET_X\"\n",
       "shadow.login[0].password_env"},
      {"[shadow]\nhost = \"h\"\nport = 5433\n" + login + "[shadow.compare]\nignore_fingerprints = [\"xyz\"]\n",
       "shadow.compare.ignore_fingerprints"},
      {"[shadow]\nhost = \"h\"\nport = 5433\nqueue = 1\n" + login, "shadow.queue"},
  });
}

// ---- [[primary.login]], [admin], [cutover] ------------------------------------------------

const std::string kShadowForCutover =
    "[shadow]\nhost = \"10.0.0.2\"\nport = 5433\n[[shadow.login]]\nclient_user = \"*\"\n";

TEST(ConfigCutover, FullSectionsLoad) {
  std::vector<pgshift::config::ConfigError> errors;
  auto cfg = load_text_only(
      "[[primary.login]]\nclient_user = \"app\"\nuser = \"mirror\"\npassword = \"pw\"\n" + kShadowForCutover +
          "[admin]\nuser = \"ops\"\npassword = \"s3cret\"\nauth = \"md5\"\n"
          "[cutover]\nat = \"2026-12-01T21:30:00+01:00\"\nwhen_ready = true\ndeadline = 2026-12-01T22:00:00Z\n"
          "max_lag_ms = 250\nmax_mismatch_rate = 0.01\nwindow_s = 30\nmin_compared = 100\n"
          "prepare_timeout_ms = 2000\ndrain_timeout_ms = 3000\ncatchup_timeout_ms = 4000\n"
          "unmovable = \"close\"\nfence_old = \"read_only\"\nstate_file = \"/var/lib/pgshift/state.json\"\n"
          "databases = [\"app\", \"reports\"]\ncontrol_user = \"app\"\n",
      errors);
  ASSERT_TRUE(cfg) << dump(errors);
  ASSERT_NE(pgshift::config::find_login(cfg->primary_logins, "app"), nullptr);
  EXPECT_EQ(pgshift::config::find_login(cfg->primary_logins, "app")->user, "mirror");
  EXPECT_EQ(pgshift::config::find_login(cfg->primary_logins, "other"), nullptr);
  EXPECT_EQ(&cfg->logins(Side::primary), &cfg->primary_logins);
  EXPECT_EQ(&cfg->logins(Side::shadow), &cfg->shadow.logins);
  EXPECT_EQ(cfg->admin.user, "ops");
  EXPECT_EQ(cfg->admin.auth, "md5");
  const Cutover& c = cfg->cutover;
  ASSERT_TRUE(c.at && c.deadline);
  // 21:30 at +01:00 is 20:30 UTC; the deadline half an hour later... plus the hour.
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::minutes>(*c.deadline - *c.at).count(), 90);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*c.at), 1796157000);  // 2026-12-01T20:30:00Z
  EXPECT_TRUE(c.when_ready);
  EXPECT_EQ(c.max_lag, milliseconds(250));
  EXPECT_DOUBLE_EQ(c.max_mismatch_rate, 0.01);
  EXPECT_EQ(c.window, std::chrono::seconds(30));
  EXPECT_EQ(c.min_compared, 100u);
  EXPECT_EQ(c.prepare_timeout, milliseconds(2000));
  EXPECT_EQ(c.drain_timeout, milliseconds(3000));
  EXPECT_EQ(c.catchup_timeout, milliseconds(4000));
  EXPECT_EQ(c.unmovable, Unmovable::close);
  EXPECT_EQ(c.fence_old, Fence::read_only);
  EXPECT_EQ(c.state_file, "/var/lib/pgshift/state.json");
  EXPECT_EQ(c.databases, (std::vector<std::string>{"app", "reports"}));
  EXPECT_EQ(c.control_user, "app");
}

TEST(ConfigCutover, Defaults) {
  std::vector<pgshift::config::ConfigError> errors;
  auto cfg = load_text_only("", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->admin.user, "pgshift");
  EXPECT_EQ(cfg->admin.auth, "scram-sha-256");
  EXPECT_TRUE(cfg->admin.password.empty());
  EXPECT_FALSE(cfg->cutover.at);
  EXPECT_EQ(cfg->cutover.unmovable, Unmovable::wait);
  EXPECT_EQ(cfg->cutover.fence_old, Fence::none);
  EXPECT_EQ(cfg->cutover.drain_timeout, milliseconds(5000));
  EXPECT_EQ(cfg->database_on(Side::shadow, "app"), "app");
}

TEST_F(ConfigTest, StateFileIsBesideTheConfigFile) {
  const std::string path = write("etc/pgshift.toml", "[primary]\nhost = \"h\"\nport = 5432\n");
  std::vector<ConfigError> errors;
  auto cfg = load_file(path, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(fs::path(cfg->cutover.state_file), dir_ / "etc" / "pgshift-state.json");
}

TEST(ConfigCutover, BadSettingsNameTheKey) {
  expect_errors_name_keys({
      {kShadowForCutover + "[cutover]\nat = \"tomorrow\"\n", "cutover.at"},
      {kShadowForCutover + "[cutover]\nat = \"2026-12-01T21:00:00\"\n", "cutover.at"},  // no offset
      {kShadowForCutover + "[cutover]\nat = 2026-12-01\n", "cutover.at"},
      {kShadowForCutover + "[cutover]\nunmovable = \"kill\"\n", "cutover.unmovable"},
      {kShadowForCutover + "[cutover]\nfence_old = \"yes\"\n", "cutover.fence_old"},
      {kShadowForCutover + "[cutover]\nmax_mismatch_rate = 2\n", "cutover.max_mismatch_rate"},
      {kShadowForCutover + "[cutover]\ndrain_timeout_ms = 0\n", "cutover.drain_timeout_ms"},
      {kShadowForCutover + "[cutover]\nwindow_s = 0\n", "cutover.window_s"},
      {kShadowForCutover + "[cutover]\nstate_file = \"\"\n", "cutover.state_file"},
      {kShadowForCutover + "[cutover]\ndrain_timeout = 1\n", "cutover.drain_timeout"},
      {kShadowForCutover + "[cutover]\nat = \"2026-12-01T21:00:00Z\"\ndeadline = \"2026-12-01T20:00:00Z\"\n",
       "cutover.deadline"},
      {"[cutover]\nwhen_ready = true\n", "cutover.when_ready"},  // nothing to cut over to
      {"[admin]\nauth = \"trust\"\n", "admin.auth"},
      {"[admin]\nuser = \"\"\n", "admin.user"},
      {"[admin]\npassword_env = \"PGSHIFT_NOT_SET_Y\"\n", "admin.password_env"},
      {"[admin]\npasswd = \"x\"\n", "admin.passwd"},
      {"[[primary.login]]\nuser = \"u\"\n", "primary.login[0].client_user"},
  });
}

// ---- [admin] HTTP, describe() and what a reload may change -----------------

TEST(ConfigOperator, HttpListenTakesAnAddressOrAPort) {
  std::vector<pgshift::config::ConfigError> errors;
  auto cfg = load_text_only("[admin]\nhttp_listen = \"0.0.0.0:9187\"\n", errors);
  ASSERT_TRUE(cfg);
  ASSERT_TRUE(cfg->admin.http_listen);
  EXPECT_EQ(cfg->admin.http_listen->host, "0.0.0.0");
  EXPECT_EQ(cfg->admin.http_listen->port, 9187);
  cfg = load_text_only("[admin]\nhttp_listen = 9188\n", errors);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->admin.http_listen->host, "127.0.0.1");
  EXPECT_FALSE(load_text_only("", errors)->admin.http_listen) << "off by default";
  expect_errors_name_keys({{"[admin]\nhttp_listen = \"nowhere\"\n", "admin.http_listen"},
                           {"[admin]\nhttp_listen = 70000\n", "admin.http_listen"},
                           {"[admin]\nhttp_tokn_env = \"X\"\n", "admin.http_tokn_env"}});
}

TEST(ConfigOperator, TokenComesFromTheEnvironmentAndMayBeUnset) {
  setenv("PGSHIFT_TEST_TOKEN", "t0ken", 1);
  std::vector<pgshift::config::ConfigError> errors;
  auto cfg = load_text_only("[admin]\nhttp_token_env = \"PGSHIFT_TEST_TOKEN\"\n", errors);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->admin.http_token, "t0ken");
  cfg = load_text_only("[admin]\nhttp_token_env = \"PGSHIFT_TEST_TOKEN_UNSET\"\n", errors);
  ASSERT_TRUE(cfg) << "an unset token only refuses changes";
  EXPECT_TRUE(cfg->admin.http_token.empty());
}

TEST(ConfigOperator, DescribeHidesSecretsAndReloadableKeysAreKnown) {
  std::vector<pgshift::config::ConfigError> errors;
  auto cfg = load_text_only(kShadowForCutover + "[admin]\npassword = \"hunter2\"\n", errors);
  ASSERT_TRUE(cfg);
  bool listen = false;
  for (const auto& [k, v] : pgshift::config::describe(*cfg)) {
    EXPECT_EQ(v.find("hunter2"), std::string::npos) << k;
    if (k == "proxy.listen") listen = v == "127.0.0.1:6432";
    if (k == "admin.password") {
      EXPECT_EQ(v, "(set)");
    }
  }
  EXPECT_TRUE(listen);
  for (const char* live : {"log.level", "rename[3]", "rewrite.strict", "shadow.read_sample_rate",
                           "cutover.max_lag_ms", "proxy.login_timeout_ms", "shadow.compare.numeric_tolerance",
                           "cutover.require_verify_within_s", "verify.jobs", "verify.recheck_window_ms"})
    EXPECT_TRUE(pgshift::config::reloadable(live)) << live;
  for (const char* fixed : {"proxy.listen", "proxy.threads", "primary.host", "shadow.port", "admin.password",
                            "cutover.state_file", "shadow.compare.ignore_columns", "client_tls.mode",
                            "proxy.max_buffered_bytes"})
    EXPECT_FALSE(pgshift::config::reloadable(fixed)) << fixed;
}

TEST(ConfigOperator, WithReloadableKeepsWhatCannotChange) {
  std::vector<pgshift::config::ConfigError> errors;
  auto running = load_text_only(kShadowForCutover + "[log]\nlevel = \"info\"\n", errors);
  auto loaded = load_text_only(
      "[shadow]\nhost = \"10.9.9.9\"\nport = 5433\nread_sample_rate = 0.5\n[[shadow.login]]\nclient_user = \"*\"\n"
      "[proxy]\nlisten = \"0.0.0.0:1\"\n[log]\nlevel = \"debug\"\n"
      "[[rename]]\ntable = \"t\"\nfrom = \"a\"\nto = \"b\"\nrenamed_on = \"primary\"\n[cutover]\nmax_lag_ms = 5\n"
      "require_verify_within_s = 60\n[verify]\njobs = 4\n",
      errors);
  ASSERT_TRUE(running && loaded) << errors.size();
  const auto c = pgshift::config::with_reloadable(*running, *loaded);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.renames.size(), 1u);
  EXPECT_EQ(c.shadow.read_sample_rate, 0.5);
  EXPECT_EQ(c.cutover.max_lag.count(), 5);
  EXPECT_EQ(c.cutover.require_verify_within.count(), 60);
  EXPECT_EQ(c.verify.jobs, 4u);
  EXPECT_EQ(c.listen.port, 6432) << "the listen address needs a restart";
  EXPECT_EQ(c.shadow.server.address.host, "10.0.0.2") << "the servers need a restart";
}

// ---------------------------------------------------------------------------
// [auth] and the auth_file

namespace auth {

constexpr const char* kVerifier =
    "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$nQpbZ77WudtqufPwikHXGRt6g2QJ4zns8bZLw273DRM=:"
    "jn2amWP1q1h+jgjy0YTO14S6/F02SV7taipOeB7ef20=";
constexpr const char* kMd5 = "md5ee69efad287c7423caf0b3229d71f567";

std::string userlist() {
  return std::string("; PgBouncer's userlist format\n# another comment\n\n\"app\" \"") + kVerifier +
         "\"\n\"legacy\" \"" + kMd5 + "\" trailing words are ignored\r\n  \"we\"\"ird\" \"plain text\"\n";
}

}  // namespace auth

TEST(AuthFile, ParsesPgBouncerUserlist) {
  std::vector<std::string> problems;
  const std::vector<AuthFileEntry> users = parse_auth_file(auth::userlist(), problems);
  EXPECT_TRUE(problems.empty()) << problems.front();
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users[0].user, "app");
  EXPECT_EQ(users[0].secret, auth::kVerifier);
  EXPECT_EQ(users[1].user, "legacy");
  EXPECT_EQ(users[1].secret, auth::kMd5);
  EXPECT_EQ(users[2].user, "we\"ird");
  EXPECT_EQ(users[2].secret, "plain text");
}

TEST(AuthFile, BadLinesNameTheLineNeverTheSecret) {
  const std::string text =
      "app SCRAM\n"                                                 // 1: no quotes
      "\"app\"\n"                                                   // 2: no secret
      "\"app\" \"SCRAM-SHA-256$4096:c2FsdA==$bm90LWEta2V5:eA==\"\n"  // 3: malformed verifier
      "\"md5user\" \"md5EE69EFAD287C7423CAF0B3229D71F567\"\n"      // 4: upper-case MD5 hash
      "\"\" \"x\"\n"                                                // 5: empty user
      "\"ok\" \"hunter2\"\n"                                        // 6: fine
      "\"ok\" \"hunter3\"\n"                                        // 7: listed twice
      "\"open\" \"unterminated\n";                                  // 8
  std::vector<std::string> problems;
  const std::vector<AuthFileEntry> users = parse_auth_file(text, problems);
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0].user, "ok");
  ASSERT_EQ(problems.size(), 7u);
  const char* expected[] = {"line 1: ", "line 2: ", "line 3: malformed SCRAM-SHA-256 verifier",
                            "line 4: malformed MD5 hash", "line 5: empty user name", "line 7: user ok is listed twice",
                            "line 8: "};
  for (std::size_t i = 0; i < problems.size(); ++i) {
    EXPECT_EQ(problems[i].rfind(expected[i], 0), 0u) << problems[i];
    for (const char* secret : {"bm90LWEta2V5", "EE69EFAD", "hunter3", "unterminated"})
      EXPECT_EQ(problems[i].find(secret), std::string::npos) << problems[i];
  }
}

TEST_F(ConfigTest, AuthDefaultsToRelay) {
  std::vector<ConfigError> errors;
  auto cfg = load_string(kMinimal, "test.toml", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->auth.mode, AuthMode::relay);
  EXPECT_TRUE(cfg->auth.users.empty());
}

TEST_F(ConfigTest, AuthPgshiftReadsTheAuthFile) {
  const std::string users = write("secrets/userlist.txt", auth::userlist());
  fs::permissions(users, fs::perms::owner_read | fs::perms::owner_write);
  const std::string path = write("pgshift.toml", std::string(kMinimal) +
                                                     "[auth]\nmode = \"pgshift\"\nmethod = \"md5\"\n"
                                                     "auth_file = \"secrets/userlist.txt\"\n");
  std::vector<ConfigError> errors;
  auto cfg = load_file(path, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->auth.mode, AuthMode::pgshift);
  EXPECT_EQ(cfg->auth.method, ClientAuthMethod::md5);
  EXPECT_EQ(cfg->auth.auth_file, users);  // relative to the config file's folder
  ASSERT_EQ(cfg->auth.users.size(), 3u);
  ASSERT_NE(cfg->auth.find("legacy"), nullptr);
  EXPECT_EQ(cfg->auth.find("legacy")->secret, auth::kMd5);
  EXPECT_EQ(cfg->auth.find("nobody"), nullptr);
}

// A reload takes the auth_file's users as the file now has them (RELOAD, SIGHUP),
// SHOW CONFIG shows only how many, and the mode itself needs a restart.
TEST_F(ConfigTest, AuthFileUsersAreReloadable) {
  const std::string users = write("userlist.txt", auth::userlist());
  fs::permissions(users, fs::perms::owner_read | fs::perms::owner_write);
  const std::string path =
      write("pgshift.toml", std::string(kMinimal) + "[auth]\nmode = \"pgshift\"\nauth_file = \"userlist.txt\"\n");
  std::vector<ConfigError> errors;
  auto running = load_file(path, errors);
  ASSERT_TRUE(running) << dump(errors);
  write("userlist.txt", auth::userlist() + "\"newcomer\" \"" + auth::kMd5 + "\"\n");
  auto loaded = load_file(path, errors);
  ASSERT_TRUE(loaded) << dump(errors);
  const Config c = with_reloadable(*running, *loaded);
  ASSERT_EQ(c.auth.users.size(), 4u);
  EXPECT_NE(c.auth.find("newcomer"), nullptr);
  EXPECT_TRUE(reloadable("auth.users"));
  EXPECT_TRUE(reloadable("auth.auth_file"));
  EXPECT_FALSE(reloadable("auth.mode"));
  EXPECT_FALSE(reloadable("auth.auth_user"));
  bool counted = false;
  for (const auto& [k, v] : describe(c)) {
    EXPECT_EQ(v.find("SCRAM-SHA-256$"), std::string::npos) << k;
    EXPECT_EQ(v.find(auth::kMd5), std::string::npos) << k;
    if (k == "auth.users") counted = v == "4 users";
  }
  EXPECT_TRUE(counted);
}

TEST_F(ConfigTest, AuthFileReadableByOthersIsRefused) {
  for (fs::perms extra : {fs::perms::group_read, fs::perms::others_read, fs::perms::others_write}) {
    const std::string users = write("userlist.txt", auth::userlist());
    fs::permissions(users, fs::perms::owner_read | fs::perms::owner_write | extra);
    const std::string path =
        write("pgshift.toml", std::string(kMinimal) + "[auth]\nmode = \"pgshift\"\nauth_file = \"userlist.txt\"\n");
    std::vector<ConfigError> errors;
    EXPECT_FALSE(load_file(path, errors));
    ASSERT_EQ(errors.size(), 1u) << dump(errors);
    EXPECT_EQ(errors[0].file, path);
    EXPECT_EQ(errors[0].key, "auth.auth_file");
    EXPECT_NE(errors[0].reason.find(users), std::string::npos) << errors[0].reason;
    EXPECT_NE(errors[0].reason.find("chmod 600"), std::string::npos) << errors[0].reason;
    EXPECT_EQ(errors[0].reason.find("SCRAM-SHA-256$"), std::string::npos) << errors[0].reason;
  }
}

TEST_F(ConfigTest, AuthFileProblemsAreReported) {
  const std::string missing = write("pgshift.toml", std::string(kMinimal) +
                                                        "[auth]\nmode = \"pgshift\"\nauth_file = \"nope.txt\"\n");
  std::vector<ConfigError> errors;
  EXPECT_FALSE(load_file(missing, errors));
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].key, "auth.auth_file");
  EXPECT_NE(errors[0].reason.find("file not found"), std::string::npos);

  const std::string users = write("userlist.txt", "\"app\" \"md5" + std::string(32, 'z') + "\"\n");
  fs::permissions(users, fs::perms::owner_read | fs::perms::owner_write);
  const std::string bad =
      write("bad.toml", std::string(kMinimal) + "[auth]\nmode = \"pgshift\"\nauth_file = \"userlist.txt\"\n");
  errors.clear();
  EXPECT_FALSE(load_file(bad, errors));
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].key, "auth.auth_file");
  EXPECT_NE(errors[0].reason.find(users + " line 1: "), std::string::npos) << errors[0].reason;
}

TEST(ConfigAuth, ModeNeedsItsKeys) {
  expect_single_error(std::string(kMinimal) + "[auth]\nmode = \"pgshift\"\n", "auth.auth_file", "missing");
  expect_single_error(std::string(kMinimal) + "[auth]\nmode = \"pam\"\n", "auth.mode", "relay");
  expect_single_error(std::string(kMinimal) + "[auth]\nmethod = \"md5\"\n", "auth.method", "only used with");
  expect_single_error(std::string(kMinimal) + "[auth]\nmode = \"relay\"\nauth_fil = \"x\"\n", "auth.auth_fil",
                      "auth_file");
}

// In pgshift mode the shadow is logged in to as the client's own user (pass-through):
// [[shadow.login]] becomes optional.
TEST_F(ConfigTest, ShadowLoginIsOptionalInPgshiftMode) {
  const std::string users = write("userlist.txt", auth::userlist());
  fs::permissions(users, fs::perms::owner_read | fs::perms::owner_write);
  const std::string path = write("pgshift.toml", std::string(kMinimal) +
                                                     "[shadow]\nhost = \"db2\"\nport = 5432\n"
                                                     "[auth]\nmode = \"pgshift\"\nauth_file = \"userlist.txt\"\n");
  std::vector<ConfigError> errors;
  auto cfg = load_file(path, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(cfg->shadow.logins.empty());
}

TEST(ConfigAuth, AuthQuery) {
  std::vector<ConfigError> errors;
  auto cfg = load_string(std::string(kMinimal) +
                             "[auth]\nmode = \"pgshift\"\nauth_user = \"pgshift_auth\"\nauth_password = \"pw\"\n"
                             "cache_ttl_ms = 5000\ncache_entries = 100\n",
                         "test.toml", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->auth.auth_user, "pgshift_auth");
  EXPECT_EQ(cfg->auth.auth_password, "pw");
  EXPECT_EQ(cfg->auth.auth_database, "postgres");
  EXPECT_EQ(cfg->auth.auth_query, kDefaultAuthQuery);
  EXPECT_EQ(cfg->auth.cache_ttl, milliseconds(5000));
  EXPECT_EQ(cfg->auth.cache_entries, 100u);
  expect_single_error(std::string(kMinimal) + "[auth]\nmode = \"pgshift\"\nauth_user = \"a\"\n"
                                              "auth_query = \"SELECT usename, passwd FROM pg_shadow\"\n",
                      "auth.auth_query", "$1");
  expect_single_error(std::string(kMinimal) + "[auth]\nauth_user = \"a\"\n", "auth.auth_user", "only used with");
  expect_single_error(std::string(kMinimal) + "[auth]\nmode = \"pgshift\"\nauth_user = \"a\"\ncache_entries = 0\n",
                      "auth.cache_entries");
}
