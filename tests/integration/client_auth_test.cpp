// protocol::ClientAuth (pgshift's own client-side authentication, used for the shadow
// database) against a real PostgreSQL server: trust, md5, scram-sha-256 and password
// accounts, with the right password (AuthenticationOk, ReadyForQuery, a working session)
// and a wrong one (ErrorResponse 28P01; ClientAuth never reports done). Also
// protocol::Secret and ServerAuth with the secrets the server stores (pg_authid), and SCRAM
// pass-through: the ClientKey ServerAuth recovers from a login logs in to PostgreSQL.
// Talks to PostgreSQL directly, without pgshift.
#include "protocol/client_auth.hpp"
#include "protocol/server_auth.hpp"

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
  static PgCluster::Options cluster_options() { return {.ssl = false, .hba = password_hba_lines(), .conf = {}}; }
  static void prepare(PgCluster& cluster) { create_password_accounts(cluster); }

 protected:
  // Logs in as `user` over a raw socket, answering every Authentication request with
  // ClientAuth; on success runs one query and terminates.
  static Outcome login(const std::string& user, const std::string& password) {
    protocol::ClientAuth auth(user, password);
    return login(user, auth, password);
  }

  // The same with a given ClientAuth; `password` is what its errors must not contain.
  static Outcome login(const std::string& user, protocol::ClientAuth& auth, const std::string& password) {
    Outcome o;
    RawClient client(cluster().port());
    StartupOptions startup;
    startup.user = user;
    EXPECT_TRUE(client.send(startup_message(startup)));
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

  // What PostgreSQL stores for `account` in pg_authid.rolpassword, parsed.
  static protocol::Secret stored_secret(const Account& account) {
    const std::string text =
        cluster().sql("SELECT rolpassword FROM pg_authid WHERE rolname = '" + account.user + "'");
    std::string error;
    auto secret = protocol::Secret::parse(text, error);
    EXPECT_TRUE(secret) << error << " (" << account.user << ")";
    return secret ? *secret : protocol::Secret::mock(account.user);
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

// Runs a ServerAuth (pgshift's side) against a ClientAuth in memory; true when both are done.
bool local_login(protocol::ServerAuth& server, protocol::ClientAuth& client) {
  std::string out;
  auto server_step = server.start(out);
  for (int round = 0; round < 10 && server_step == protocol::ServerAuth::Step::reply; ++round) {
    std::string reply;
    for (std::string_view rest = out; !rest.empty();) {
      const auto r = protocol::parse_frame(rest, protocol::Direction::backend, {});
      if (r.status != protocol::ParseStatus::complete) return false;
      client.on_message(r.frame, reply);
      rest.remove_prefix(r.frame.bytes.size());
    }
    if (reply.empty()) return false;
    const auto r = protocol::parse_frame(reply, protocol::Direction::frontend, {});
    if (r.status != protocol::ParseStatus::complete) return false;
    out.clear();
    server_step = server.on_message(r.frame, out);
  }
  if (server_step != protocol::ServerAuth::Step::done) return false;
  std::string ignored;
  for (std::string_view rest = out; !rest.empty();) {
    const auto r = protocol::parse_frame(rest, protocol::Direction::backend, {});
    if (r.status != protocol::ParseStatus::complete) return false;
    client.on_message(r.frame, ignored);
    rest.remove_prefix(r.frame.bytes.size());
  }
  return client.is_done();
}

// The verifiers and MD5 hash PostgreSQL made parse, and check the passwords it was given.
TEST_F(ClientAuth, StoredSecretsParseAndVerify) {
  const protocol::Secret md5 = stored_secret(kMd5User);
  EXPECT_EQ(md5.kind(), protocol::Secret::Kind::md5);
  EXPECT_TRUE(md5.verify_password(kMd5User.password, kMd5User.user));
  EXPECT_FALSE(md5.verify_password(kMd5User.password + "-wrong", kMd5User.user));
  for (const Account* account : {&kScramUser, &kPlainUser}) {
    SCOPED_TRACE(account->user);
    const protocol::Secret scram = stored_secret(*account);
    EXPECT_EQ(scram.kind(), protocol::Secret::Kind::scram_sha_256);
    ASSERT_TRUE(scram.scram());
    EXPECT_EQ(scram.scram()->iterations, 4096u);
    EXPECT_TRUE(scram.verify_password(account->password, account->user));
    EXPECT_FALSE(scram.verify_password(account->password + "-wrong", account->user));
    // The same text back, byte for byte.
    EXPECT_EQ(scram.scram()->to_text(),
              cluster().sql("SELECT rolpassword FROM pg_authid WHERE rolname = '" + account->user + "'"));
  }
}

// PgBouncer-style SCRAM pass-through: pgshift checks a client against the verifier read
// from pg_authid, then logs in to PostgreSQL with the ClientKey recovered from the proof.
TEST_F(ClientAuth, ScramPassThroughWithTheRecoveredClientKey) {
  const protocol::Secret secret = stored_secret(kScramUser);
  protocol::ServerAuth front(kScramUser.user, secret, protocol::AuthMethod::scram_sha_256);
  protocol::ClientAuth app(kScramUser.user, kScramUser.password);
  ASSERT_TRUE(local_login(front, app)) << front.error() << " / " << app.error();
  auto keys = front.client_keys();
  ASSERT_TRUE(keys);

  protocol::ClientAuth upstream(kScramUser.user, *keys);
  const Outcome o = login(kScramUser.user, upstream, kScramUser.password);
  EXPECT_EQ(o.auth_codes, "10,11,12,0") << o.log;
  EXPECT_TRUE(o.auth_done) << o.log << o.auth_error;
  EXPECT_TRUE(o.ready) << o.log;
  EXPECT_EQ(o.current_user, kScramUser.user);
}

// A new verifier (ALTER ROLE ... PASSWORD, same password, new salt) makes keys recovered
// for the old one useless: ClientAuth stops before sending a proof.
TEST_F(ClientAuth, ScramPassThroughNeedsTheSameVerifier) {
  protocol::ServerAuth front(kScramUser.user, stored_secret(kScramUser), protocol::AuthMethod::scram_sha_256);
  protocol::ClientAuth app(kScramUser.user, kScramUser.password);
  ASSERT_TRUE(local_login(front, app)) << front.error();
  cluster().sql("SET password_encryption = 'scram-sha-256';\n"
                "ALTER ROLE " + kScramUser.user + " PASSWORD '" + kScramUser.password + "'");
  protocol::ClientAuth upstream(kScramUser.user, *front.client_keys());
  const Outcome o = login(kScramUser.user, upstream, kScramUser.password);
  EXPECT_EQ(o.auth_codes, "10,11") << o.log;
  EXPECT_FALSE(o.auth_done) << o.log;
  EXPECT_TRUE(contains(o.auth_error, "salt and iteration count differ")) << o.auth_error;
}

// Each SCRAM login uses a fresh random nonce; many in a row all succeed.
TEST_F(ClientAuth, RepeatedScramLogins) {
  for (int i = 0; i < 10; ++i) {
    SCOPED_TRACE(i);
    expect_login(kScramUser, "10,11,12,0");
  }
}

}  // namespace
}  // namespace pgshift::it
