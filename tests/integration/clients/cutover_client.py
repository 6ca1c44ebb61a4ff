"""Clients that live through a cutover: each sets up session state, says it is
ready, waits while the test switches servers, then checks that its state moved.

usage: cutover_client.py SCENARIO HANDSHAKE_DIR [EXPECTED_PORT]

The handshake: the client creates HANDSHAKE_DIR/<scenario>.ready once its state is
set up, then waits (at most 60 s) for HANDSHAKE_DIR/go. EXPECTED_PORT is the port of
the server the session must be on afterwards (SHOW port).

Scenarios:
  psycopg        psycopg 3: SET search_path, server-side prepared statements
                 (prepare_threshold=0), LISTEN; after the switch the prepared
                 statement, the setting and the notification (sent by the test
                 after "go", see notify_after_go) all work, and a cancelled
                 pg_sleep gives 57014 and leaves the connection usable.
  asyncpg        asyncpg: a prepared statement with a parameter, used again after
                 the switch.
  temp_table     psycopg 3: a temporary table; after "go" it reports whether the
                 session still works (prints "works" or "closed: MESSAGE").
  open_transaction
                 psycopg 3: BEGIN and an INSERT into cutover_probe, ready, then
                 COMMIT after "go" (a transaction held open across a CUTOVER).
"""

import asyncio
import os
import sys
import threading
import time

import asyncpg
import psycopg
from psycopg import errors

from clientlib import expect, expect_equal, fail, handshake, run_scenario


def port_of(conn):
    return conn.execute("SHOW port").fetchone()[0]


def psycopg_scenario(directory, expected_port):
    with psycopg.connect(autocommit=True, prepare_threshold=0) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS app")
        conn.execute("SET search_path = app, public")
        conn.execute("LISTEN cutover_channel")
        query = "SELECT %s::int + 1, current_setting('search_path')"
        expect_equal(conn.execute(query, (41,)).fetchone()[0], 42, "prepared statement before the switch")
        before = port_of(conn)
        print(f"before: port {before}")
        handshake(directory, "psycopg")

        row = conn.execute(query, (1,)).fetchone()
        expect_equal(row[0], 2, "the prepared statement after the switch")
        expect_equal(row[1], "app, public", "search_path after the switch")
        expect_equal(port_of(conn), expected_port, "the server after the switch")

        # The test sends a NOTIFY once it has seen this marker. Notifications are
        # delivered with the replies to any statement (psycopg 3.1's notifies()
        # has no timeout).
        received = []
        conn.add_notify_handler(received.append)
        open(os.path.join(directory, "listening"), "w").close()
        deadline = time.monotonic() + 20
        while not received and time.monotonic() < deadline:
            conn.execute("SELECT 1")
            time.sleep(0.05)
        expect(received, "a notification sent after the switch arrived")
        got = received[0]
        expect_equal(got.channel, "cutover_channel", "notification channel")
        expect_equal(got.payload, "after the switch", "notification payload")

        threading.Timer(0.5, conn.cancel).start()
        try:
            conn.execute("SELECT pg_sleep(20)")
        except errors.QueryCanceled as e:
            expect_equal(e.sqlstate, "57014", "SQLSTATE of the cancelled statement")
        else:
            fail("the cancel after the switch did not reach the new server")
        expect_equal(conn.execute("SELECT 1").fetchone()[0], 1, "the connection after the cancel")


async def asyncpg_scenario(directory, expected_port):
    conn = await asyncpg.connect()
    try:
        stmt = await conn.prepare("SELECT $1::int * 2 AS doubled")
        expect_equal(await stmt.fetchval(21), 42, "prepared statement before the switch")
        await asyncio.get_running_loop().run_in_executor(None, handshake, directory, "asyncpg")
        expect_equal(await stmt.fetchval(5), 10, "the prepared statement after the switch")
        expect_equal(await conn.fetchval("SHOW port"), expected_port, "the server after the switch")
        expect_equal(await conn.fetchval("SELECT $1::text || 'x'", "a"), "ax", "a new statement after the switch")
    finally:
        await conn.close()


def temp_table_scenario(directory, expected_port=None):
    conn = psycopg.connect(autocommit=True)
    conn.execute("CREATE TEMP TABLE scratch (v int)")
    conn.execute("INSERT INTO scratch VALUES (1)")
    handshake(directory, "temp_table")
    try:
        conn.execute("SELECT count(*) FROM scratch").fetchone()
        print(f"works on port {port_of(conn)}")
    except psycopg.OperationalError as e:
        print(f"closed: {e}")
    finally:
        conn.close()


def open_transaction_scenario(directory, expected_port=None):
    with psycopg.connect() as conn:
        conn.execute("INSERT INTO cutover_probe (note) VALUES ('held open')")
        handshake(directory, "open_transaction")
        conn.commit()
        print(f"committed on port {port_of(conn)}")


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    scenarios = {
        "psycopg": psycopg_scenario,
        "asyncpg": asyncpg_scenario,
        "temp_table": temp_table_scenario,
        "open_transaction": open_transaction_scenario,
    }
    run_scenario(scenarios)


if __name__ == "__main__":
    main()
