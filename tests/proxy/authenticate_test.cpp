// proxy/authenticate: the secret, method and pass-through a client's login
// with [auth] mode = "pgshift" gets, checked with in-memory exchanges between
// protocol::ServerAuth (pgshift) and protocol::ClientAuth (the client).
#include "proxy/authenticate.hpp"
#include "proxy/auth_query.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "protocol/frame.hpp"

namespace pgshift::proxy {
namespace {

using protocol::AuthMethod;
using protocol::ClientAuth;
using protocol::PassThrough;
using protocol::ServerAuth;

// Feeds every frame of `bytes` to `client`; returns its last step.
ClientAuth::Step to_client(ClientAuth& client, std::string_view bytes, std::string& reply) {
  ClientAuth::Step step = ClientAuth::Step::reply;
  while (!bytes.empty()) {
    const auto r = protocol::parse_frame(bytes, protocol::Direction::backend, {});
    if (r.status != protocol::ParseStatus::complete) return ClientAuth::Step::failed;
    step = client.on_message(r.frame, reply);
    bytes.remove_prefix(r.frame.bytes.size());
  }
  return step;
}

// Runs the whole exchange; true when both sides are done.
bool exchange(ServerAuth& server, ClientAuth& client) {
  std::string out;
  ServerAuth::Step step = server.start(out);
  for (int round = 0; round < 10 && step == ServerAuth::Step::reply; ++round) {
    std::string reply;
    to_client(client, out, reply);
    if (reply.empty()) return false;
    const auto r = protocol::parse_frame(reply, protocol::Direction::frontend, {});
    if (r.status != protocol::ParseStatus::complete) return false;
    out.clear();
    step = server.on_message(r.frame, out);
  }
  if (step != ServerAuth::Step::done) return false;
  std::string ignored;
  return to_client(client, out, ignored) == ClientAuth::Step::done;
}

config::Auth auth_with(std::string user, std::string secret,
                       config::ClientAuthMethod method = config::ClientAuthMethod::scram_sha_256) {
  config::Auth cfg;
  cfg.mode = config::AuthMode::pgshift;
  cfg.method = method;
  cfg.users.push_back({std::move(user), std::move(secret)});
  return cfg;
}

// A SCRAM verifier for "pencil" with a fixed salt, as PostgreSQL would store it.
std::string verifier(std::string_view salt = "0123456789abcdef") {
  std::string error;
  auto s = protocol::Secret::from_password("pencil", salt, 4096, error);
  EXPECT_TRUE(s) << error;
  return s->scram()->to_text();
}

TEST(Authenticate, MethodFollowsTheSecretAndTheSetting) {
  using M = config::ClientAuthMethod;
  const config::Auth scram = auth_with("app", verifier());
  const config::Auth md5 = auth_with("app", "md5ee69efad287c7423caf0b3229d71f567");
  const config::Auth plain = auth_with("app", "pencil", M::md5);
  EXPECT_EQ(method_for(scram, secret_for(scram, "app")), AuthMethod::scram_sha_256);
  EXPECT_EQ(method_for(md5, secret_for(md5, "app")), AuthMethod::md5);
  EXPECT_EQ(method_for(plain, secret_for(plain, "app")), AuthMethod::md5);
  EXPECT_EQ(method_for(auth_with("app", verifier(), M::md5), secret_for(scram, "app")), AuthMethod::scram_sha_256);
  EXPECT_EQ(method_for(auth_with("app", verifier(), M::password), secret_for(scram, "app")), AuthMethod::cleartext);
  // A user without an entry gets a mock SCRAM secret: refused like a wrong password.
  EXPECT_TRUE(secret_for(scram, "nobody").is_mock());
  EXPECT_EQ(method_for(scram, secret_for(scram, "nobody")), AuthMethod::scram_sha_256);
}

// SCRAM: the keys recovered from the client's proof log in to a server with the
// same verifier, not to one with another salt.
TEST(Authenticate, ScramPassThroughLogsInWhereTheVerifierIsTheSame) {
  const config::Auth cfg = auth_with("app", verifier());
  ServerAuth front("app", secret_for(cfg, "app"), AuthMethod::scram_sha_256);
  ClientAuth client("app", "pencil");
  ASSERT_TRUE(exchange(front, client)) << front.error();
  const auto p = pass_through_for(front);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind(), PassThrough::Kind::scram_keys);

  std::string error;
  ServerAuth same("app", *protocol::Secret::parse(verifier(), error), AuthMethod::scram_sha_256);
  EXPECT_TRUE(exchange(same, *p->client_auth("app"))) << same.error();

  ServerAuth other("app", *protocol::Secret::parse(verifier("another salt 123"), error), AuthMethod::scram_sha_256);
  auto again = p->client_auth("app");
  EXPECT_FALSE(exchange(other, *again));
  EXPECT_FALSE(again->error().empty());
}

TEST(Authenticate, Md5AndPlaintextPassThrough) {
  const config::Auth md5 = auth_with("alice", "md54a0a68b43b6cd5cf266fa02f196e2371");  // "secret"
  ServerAuth front("alice", secret_for(md5, "alice"), method_for(md5, secret_for(md5, "alice")));
  ClientAuth client("alice", "secret");
  ASSERT_TRUE(exchange(front, client)) << front.error();
  auto p = pass_through_for(front);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind(), PassThrough::Kind::md5_hash);
  std::string error;
  ServerAuth server("alice", *protocol::Secret::parse("md54a0a68b43b6cd5cf266fa02f196e2371", error), AuthMethod::md5);
  EXPECT_TRUE(exchange(server, *p->client_auth("alice"))) << server.error();

  // A plaintext secret logs in with the password, whatever the server's salt.
  const config::Auth plain = auth_with("app", "pencil");
  ServerAuth front2("app", secret_for(plain, "app"), AuthMethod::scram_sha_256);
  ClientAuth client2("app", "pencil");
  ASSERT_TRUE(exchange(front2, client2)) << front2.error();
  p = pass_through_for(front2);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind(), PassThrough::Kind::password);
  ServerAuth server2("app", *protocol::Secret::parse(verifier("another salt 123"), error), AuthMethod::scram_sha_256);
  EXPECT_TRUE(exchange(server2, *p->client_auth("app"))) << server2.error();
}

TEST(Authenticate, NothingAfterAFailureOrForAnUnknownUser) {
  const config::Auth cfg = auth_with("app", verifier());
  ServerAuth wrong("app", secret_for(cfg, "app"), AuthMethod::scram_sha_256);
  ClientAuth client("app", "not-pencil");
  EXPECT_FALSE(exchange(wrong, client));
  EXPECT_FALSE(pass_through_for(wrong));
  ServerAuth unknown("nobody", secret_for(cfg, "nobody"), AuthMethod::scram_sha_256);
  ClientAuth client2("nobody", "pencil");
  EXPECT_FALSE(exchange(unknown, client2));
  EXPECT_FALSE(pass_through_for(unknown));
}

}  // namespace
}  // namespace pgshift::proxy

namespace pgshift::proxy {
namespace {

TEST(AuthCache, KeepsAnswersForTheirTtlWithinItsBound) {
  AuthCache cache;
  const auto t0 = AuthCache::Clock::now();
  const auto ttl = std::chrono::milliseconds(1000);
  EXPECT_FALSE(cache.find("app", t0));
  cache.put("app", std::string("md5aaa"), t0, ttl, 2);
  cache.put("ghost", std::nullopt, t0, ttl, 2);  // "no such user" is an answer too
  auto app = cache.find("app", t0 + std::chrono::milliseconds(999));
  ASSERT_TRUE(app);
  EXPECT_EQ(*app, std::optional<std::string>("md5aaa"));
  auto ghost = cache.find("ghost", t0);
  ASSERT_TRUE(ghost);
  EXPECT_FALSE(*ghost);
  EXPECT_FALSE(cache.find("app", t0 + ttl));  // expired
  // At most 2 entries: a third replaces one.
  cache.put("a", std::string("x"), t0, ttl, 2);
  cache.put("b", std::string("y"), t0, ttl, 2);
  cache.put("c", std::string("z"), t0, ttl, 2);
  EXPECT_LE(cache.size(), 2u);
  EXPECT_TRUE(cache.find("c", t0));
  // A zero TTL keeps nothing.
  AuthCache none;
  none.put("app", std::string("x"), t0, std::chrono::milliseconds(0), 10);
  EXPECT_EQ(none.size(), 0u);
}

}  // namespace
}  // namespace pgshift::proxy
