// protocol::ClientAuth (pgshift's own client-side authentication, used for the shadow
// database) against a real PostgreSQL server: trust, md5, scram-sha-256 and password
// accounts, with the right password (AuthenticationOk, ReadyForQuery, a working session)
// and a wrong one (ErrorResponse 28P01; ClientAuth never reports done). Talks to
// PostgreSQL directly, without pgshift.
#include "protocol/client_auth.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "harness.hpp"
#include "protocol/frame.hpp"
#include "raw_client.hpp"

namespace pgshift::it {
namespace {

using Step = protocol::ClientAuth::Step;

struct Outcome {
  std::string auth_codes;                      // Authentication* codes received, e.g. "10,11,12,0"
  bool auth_done = false;                      // ClientAuth returned done
  std::string auth_error;                      // ClientAuth's error, if it failed
  std::optional<BackendMessage> server_error;  // the server's ErrorResponse
  bool ready = false;                          // ReadyForQuery received
  std::string current_user;                    // SELECT current_user, once ready
  std::string log;                             // what happened, for assertion messages
};

class ClientAuth : public SharedClusterTest<ClientAuth> {
 public:
  static PgCluster::Options cluster_options() { return {.ssl = false, .hba = password_hba_lines()}; }
  static void prepare(PgCluster& cluster) { create_password_accounts(cluster); }

 protected:
  // Logs in as `user` over a raw socket, answering every Authentication request with
  // ClientAuth; on success runs one query and terminates.
  static Outcome login(const std::string& user, const std::string& password) {
    Outcome o;
    RawClient client(cluster().port());
    StartupOptions startup;
    startup.user = user;
    EXPECT_TRUE(client.send(startup_message(startup)));
    protocol::ClientAuth auth(user, password);
    for (;;) {
      auto message = client.read();
      if (!message) {
        o.log += "[closed]";
        break;
      }
      o.log += describe(*message) + "; ";
      // A Frame over the message as received (type, length, body).
      std::string bytes(1, message->type);
      const auto length = static_cast<std::uint32_t>(message->body.size() + 4);
      for (int shift = 24; shift >= 0; shift -= 8)
        bytes.push_back(static_cast<char>((length >> shift) & 0xff));
      bytes += message->body;
      const protocol::Frame frame{message->type, std::string_view(bytes).substr(protocol::header_size),
                                  bytes};

      if (message->type == 'R') {
        if (!o.auth_codes.empty()) o.auth_codes += ",";
        o.auth_codes += std::to_string(protocol::read_u32(message->body.data()));
        std::string out;
        const auto step = auth.on_message(frame, out);
        if (step == Step::reply) {
          EXPECT_FALSE(out.empty());
          EXPECT_TRUE(client.send(out));
        } else {
          EXPECT_TRUE(out.empty());
        }
        if (step == Step::done) o.auth_done = true;
        if (step == Step::failed) break;
      } else if (message->type == 'E') {
        o.server_error = *message;
        std::string ignored;
        EXPECT_EQ(auth.on_message(frame, ignored), Step::failed);
        break;
      } else {
        // ParameterStatus, BackendKeyData, ReadyForQuery: only after AuthenticationOk.
        EXPECT_TRUE(o.auth_done) << "'" << message->type << "' before AuthenticationOk";
        if (message->type == 'Z') {
          o.ready = true;
          break;
        }
      }
    }
    o.auth_error = auth.error();
    EXPECT_EQ(o.auth_error.find(password), std::string::npos) << o.auth_error;
    if (o.ready) {
      o.current_user = client.query_value("SELECT current_user");
      client.terminate();
    }
    return o;
  }

  static void expect_login(const Account& account, const std::string& codes) {
    const Outcome o = login(account.user, account.password);
    EXPECT_EQ(o.auth_codes, codes) << o.log;
    EXPECT_TRUE(o.auth_done) << o.log << o.auth_error;
    EXPECT_TRUE(o.auth_error.empty()) << o.auth_error;
    EXPECT_FALSE(o.server_error) << o.log;
    EXPECT_TRUE(o.ready) << o.log;
    EXPECT_EQ(o.current_user, account.user);
  }

  static void expect_refused(const Account& account, const std::string& codes) {
    const Outcome o = login(account.user, account.password + "-wrong");
    EXPECT_EQ(o.auth_codes, codes) << o.log;
    EXPECT_FALSE(o.auth_done) << o.log;
    EXPECT_FALSE(o.ready) << o.log;
    ASSERT_TRUE(o.server_error) << o.log << o.auth_error;
    const auto fields = error_fields(o.server_error->body);
    EXPECT_EQ(fields.count('C') ? fields.at('C') : "", "28P01") << o.log;
    EXPECT_TRUE(contains(o.auth_error, "server error 28P01: password authentication failed for user \"" +
                                           account.user + "\""));
  }
};

TEST_F(ClientAuth, Trust) {
  const Outcome o = login("postgres", "unused");
  EXPECT_EQ(o.auth_codes, "0") << o.log;
  EXPECT_TRUE(o.auth_done) << o.log;
  EXPECT_TRUE(o.ready) << o.log;
  EXPECT_EQ(o.current_user, "postgres");
}

TEST_F(ClientAuth, Md5RightPassword) { expect_login(kMd5User, "5,0"); }
TEST_F(ClientAuth, Md5WrongPassword) { expect_refused(kMd5User, "5"); }
TEST_F(ClientAuth, ScramRightPassword) { expect_login(kScramUser, "10,11,12,0"); }
TEST_F(ClientAuth, ScramWrongPassword) { expect_refused(kScramUser, "10,11"); }
TEST_F(ClientAuth, CleartextRightPassword) { expect_login(kPlainUser, "3,0"); }
TEST_F(ClientAuth, CleartextWrongPassword) { expect_refused(kPlainUser, "3"); }

// Each SCRAM login uses a fresh random nonce; many in a row all succeed.
TEST_F(ClientAuth, RepeatedScramLogins) {
  for (int i = 0; i < 10; ++i) {
    SCOPED_TRACE(i);
    expect_login(kScramUser, "10,11,12,0");
  }
}

}  // namespace
}  // namespace pgshift::it
