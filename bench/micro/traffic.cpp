#include "micro/traffic.hpp"

#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

#include "protocol/builder.hpp"

namespace pgshift::bench {
namespace {

using protocol::MessageWriter;

constexpr std::uint32_t seed = 20250101;

std::string account_id(std::mt19937& rng) {
  return std::to_string(std::uniform_int_distribution<int>(1, 1'000'000)(rng));
}

void append_simple_transaction(std::string& out, std::mt19937& rng) {
  const std::string aid = account_id(rng);
  protocol::append_query(out, "BEGIN;");
  protocol::append_query(out, "UPDATE pgbench_accounts SET abalance = abalance + -4321 WHERE aid = " +
                                  aid + ";");
  protocol::append_query(out, "SELECT abalance FROM pgbench_accounts WHERE aid = " + aid + ";");
  protocol::append_query(out, "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                              "VALUES (7, 1, " + aid + ", -4321, CURRENT_TIMESTAMP);");
  protocol::append_query(out, "END;");
}

void append_extended_select(std::string& out, std::mt19937& rng) {
  const std::string aid = account_id(rng);
  protocol::append_parse(out, "", "SELECT abalance FROM pgbench_accounts WHERE aid = $1", {23});
  protocol::append_bind(out, "", "", {aid});
  protocol::append_describe(out, 'P', "");
  protocol::append_execute(out, "");
  protocol::append_sync(out);
}

void append_prepared_select(std::string& out, std::mt19937& rng) {
  protocol::append_bind(out, "", "P0_1", {account_id(rng)});
  protocol::append_execute(out, "");
  protocol::append_sync(out);
}

// An ORM-style query: a long statement with several parameters.
void append_orm_query(std::string& out, std::mt19937& rng) {
  protocol::append_parse(out, "",
                         "SELECT u.id, u.email, u.created_at, o.id, o.total, o.status "
                         "FROM users u JOIN orders o ON o.user_id = u.id "
                         "WHERE u.id = $1 AND o.status = $2 ORDER BY o.created_at DESC LIMIT $3",
                         {20, 25, 23});
  protocol::append_bind(out, "", "", {account_id(rng), "shipped", "20"});
  protocol::append_describe(out, 'P', "");
  protocol::append_execute(out, "");
  protocol::append_sync(out);
}

void append_row_description(std::string& out, const std::vector<std::string_view>& columns) {
  MessageWriter w(out);
  w.begin('T').u16(static_cast<std::uint16_t>(columns.size()));
  for (std::size_t i = 0; i < columns.size(); ++i) {
    w.cstring(columns[i]).u32(16384).u16(static_cast<std::uint16_t>(i + 1)).u32(23).u16(4).u32(
        0xffffffff).u16(0);
  }
  w.end();
}

void append_data_row(std::string& out, const std::vector<std::string>& values) {
  MessageWriter w(out);
  w.begin('D').u16(static_cast<std::uint16_t>(values.size()));
  for (const auto& v : values) w.u32(static_cast<std::uint32_t>(v.size())).raw(v);
  w.end();
}

void append_command_complete(std::string& out, std::string_view tag) {
  MessageWriter(out).begin('C').cstring(tag).end();
}

void append_empty(std::string& out, char type) { MessageWriter(out).begin(type).end(); }

}  // namespace

std::string frontend_mix(std::size_t min_bytes) {
  std::mt19937 rng(seed);
  std::string out;
  out.reserve(min_bytes + 4096);
  while (out.size() < min_bytes) {
    // Weights: prepared 40%, extended 25%, simple transaction 20%, ORM 15%.
    const int pick = std::uniform_int_distribution<int>(0, 99)(rng);
    if (pick < 40) append_prepared_select(out, rng);
    else if (pick < 65) append_extended_select(out, rng);
    else if (pick < 85) append_simple_transaction(out, rng);
    else append_orm_query(out, rng);
  }
  return out;
}

std::string backend_rows(std::size_t min_bytes, bool wide, std::size_t rows_per_result) {
  std::mt19937 rng(seed);
  std::string out;
  out.reserve(min_bytes + 64 * 1024);
  const std::string filler(84, ' ');
  std::vector<std::string> values;
  while (out.size() < min_bytes) {
    append_empty(out, '1');  // ParseComplete
    append_empty(out, '2');  // BindComplete
    if (wide) append_row_description(out, {"aid", "bid", "abalance", "filler"});
    else append_row_description(out, {"abalance"});
    for (std::size_t i = 0; i < rows_per_result; ++i) {
      values.clear();
      if (wide) {
        values.push_back(account_id(rng));
        values.push_back(std::to_string(std::uniform_int_distribution<int>(1, 10)(rng)));
        values.push_back(std::to_string(std::uniform_int_distribution<int>(-5000, 5000)(rng)));
        values.push_back(filler);
      } else {
        values.push_back(std::to_string(std::uniform_int_distribution<int>(-5000, 5000)(rng)));
      }
      append_data_row(out, values);
    }
    append_command_complete(out, "SELECT " + std::to_string(rows_per_result));
    protocol::append_ready_for_query(out, 'I');
  }
  return out;
}

}  // namespace pgshift::bench
