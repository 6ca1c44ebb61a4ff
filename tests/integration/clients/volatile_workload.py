"""A workload whose values the server makes up: for exact mirroring (tests/integration/exact_test.cpp).

usage: volatile_workload.py run CLIENTS ROUNDS

Four (CLIENTS) concurrent clients, two on asyncpg (binary results; fetchrow of an
INSERT ... RETURNING is an Execute with a row limit) and two on psycopg 3 (text results,
pipeline mode, client-side binding for multi-statement strings), each doing ROUNDS
rounds of: INSERT ... RETURNING id in autocommit, UPDATE by that id, an explicit
transaction that inserts, logs an event and updates with random() and
clock_timestamp(), SELECT nextval() used in a later INSERT, a multi-row INSERT,
an upsert with now(), now and then a rolled-back insert (its sequence value is
consumed on the primary only), an UPDATE with now() through a subquery, a DELETE
by id with RETURNING, and a DELETE by now(). Defaults do most of the work:
bigserial, gen_random_uuid(), now(), random(), an identity column and
clock_timestamp().

It prints one JSON line per step of each client, in client order, with what the
client saw that does not depend on the values the server picked (command tags,
row counts, column names, Python types), so the output through pgshift must equal
the output of a direct run. Expects the schema of exact_test.cpp (kVolatileSchema).
"""

import asyncio
import json
import sys
import uuid

import asyncpg
import psycopg
from psycopg import AsyncClientCursor

from clientlib import expect, run_scenario


def shape(rows):
    """Column names and value types of a result, without the values."""
    if not rows:
        return [], []
    first = rows[0]
    if isinstance(first, asyncpg.Record):
        return list(first.keys()), [type(v).__name__ for v in first.values()]
    return None, [type(v).__name__ for v in first]


class Transcript:
    def __init__(self, client):
        self.client = client
        self.lines = []

    def add(self, step, **what):
        what["client"] = self.client
        what["step"] = step
        self.lines.append(json.dumps(what, sort_keys=True))


# ---- asyncpg -----------------------------------------------------------------------------

async def asyncpg_client(client, rounds, out):
    t = Transcript(client)
    conn = await asyncpg.connect(timeout=30)
    try:
        ins = await conn.prepare("INSERT INTO items (client, note) VALUES ($1, $2) RETURNING id")
        for i in range(rounds):
            row = await ins.fetchrow(client, f"a{i}")  # Execute with a row limit: PortalSuspended
            id1 = row["id"]
            t.add("insert returning", columns=list(row.keys()), types=[type(id1).__name__])
            status = await conn.execute("UPDATE items SET counter = counter + 1, note = note || '+' WHERE id = $1", id1)
            t.add("update by id", status=status)

            async with conn.transaction():
                row = await conn.fetchrow("INSERT INTO items (client, note) VALUES ($1, 'txn') RETURNING id, uid",
                                          client)
                expect(isinstance(row["uid"], uuid.UUID), "uid is a UUID")
                id2 = row["id"]
                t.add("txn insert", columns=list(row.keys()))
                status = await conn.execute("INSERT INTO events (item_id, kind) VALUES ($1, 'created')", id2)
                t.add("txn event", status=status)
                status = await conn.execute(
                    "UPDATE items SET r = random(), touched = clock_timestamp() WHERE id = $1", id2)
                t.add("txn update random", status=status)

            ext = await conn.fetchval("SELECT nextval('ext_seq')")
            row = await conn.fetchrow("INSERT INTO items (client, note, ext) VALUES ($1, 'ext', $2) RETURNING ext",
                                      client, ext)
            t.add("insert nextval", same=row["ext"] == ext)

            rows = await conn.fetch("INSERT INTO items (client, note) VALUES ($1, 'm1'), ($1, 'm2') RETURNING id, note",
                                    client)
            t.add("multi-row insert", rows=len(rows), notes=[r["note"] for r in rows])

            status = await conn.execute(
                "INSERT INTO tallies (client, n, last) VALUES ($1, 1, now()) "
                "ON CONFLICT (client) DO UPDATE SET n = tallies.n + 1, last = EXCLUDED.last", client)
            t.add("upsert now", status=status)

            if i % 10 == 3:
                tr = conn.transaction()
                await tr.start()
                await conn.fetchval("INSERT INTO items (client, note) VALUES ($1, 'rolled back') RETURNING id", client)
                await tr.rollback()
                t.add("rolled back")
            if i % 5 == 4:
                status = await conn.execute(
                    "UPDATE items SET touched = now() WHERE id IN "
                    "(SELECT id FROM items WHERE client = $1 ORDER BY id DESC LIMIT 3)", client)
                t.add("update now subquery", status=status)
            if i % 7 == 6:
                rows = await conn.fetch("DELETE FROM items WHERE id = $1 RETURNING id, note", id1)
                t.add("delete returning", rows=len(rows))
                status = await conn.execute("DELETE FROM events WHERE at < now() - interval '1 day'")
                t.add("delete by now", status=status)
        await conn.executemany("INSERT INTO events (item_id, kind) VALUES ($1, $2)",
                               [(0, f"batch {client} {k}") for k in range(20)])
        t.add("executemany")
        # A cursor over a captured INSERT ... RETURNING, read in pieces.
        async with conn.transaction():
            cur = await conn.cursor(
                "INSERT INTO items (client, note) SELECT $1, 'cursor ' || g FROM generate_series(1, 5) g "
                "RETURNING note", client)
            first = await cur.fetch(2)
            rest = await cur.fetch(10)
            t.add("cursor", first=[r["note"] for r in first], rest=[r["note"] for r in rest])
        n = await conn.fetchval("SELECT count(*) FROM items WHERE client = $1", client)
        t.add("count", items=n)
    finally:
        await conn.close()
    out[client] = t.lines


# ---- psycopg -----------------------------------------------------------------------------

async def psycopg_client(client, rounds, out):
    t = Transcript(client)
    async with await psycopg.AsyncConnection.connect(autocommit=True) as conn:
        for i in range(rounds):
            cur = await conn.execute("INSERT INTO items (client, note) VALUES (%s, %s) RETURNING id",
                                     (client, f"p{i}"))
            id1 = (await cur.fetchone())[0]
            t.add("insert returning", status=cur.statusmessage, columns=[d.name for d in cur.description],
                  types=[type(id1).__name__])
            cur = await conn.execute("UPDATE items SET counter = counter + 1, note = note || '+' WHERE id = %s",
                                     (id1,))
            t.add("update by id", status=cur.statusmessage)

            async with conn.transaction():
                cur = await conn.execute("INSERT INTO items (client, note) VALUES (%s, 'txn') RETURNING id, uid",
                                         (client,))
                id2, uid = await cur.fetchone()
                expect(isinstance(uid, uuid.UUID), "uid is a UUID")
                t.add("txn insert", status=cur.statusmessage, columns=[d.name for d in cur.description])
                cur = await conn.execute("INSERT INTO events (item_id, kind) VALUES (%s, 'created')", (id2,))
                t.add("txn event", status=cur.statusmessage)
                cur = await conn.execute("UPDATE items SET r = random(), touched = clock_timestamp() WHERE id = %s",
                                         (id2,))
                t.add("txn update random", status=cur.statusmessage)

            cur = await conn.execute("SELECT nextval('ext_seq')")
            ext = (await cur.fetchone())[0]
            cur = await conn.execute("INSERT INTO items (client, note, ext) VALUES (%s, 'ext', %s) RETURNING ext",
                                     (client, ext))
            t.add("insert nextval", same=(await cur.fetchone())[0] == ext, status=cur.statusmessage)

            # Pipeline mode: a multi-row insert and an upsert in one batch.
            async with conn.pipeline():
                multi = await conn.execute(
                    "INSERT INTO items (client, note) VALUES (%s, 'm1'), (%s, 'm2') RETURNING id, note",
                    (client, client))
                upsert = await conn.execute(
                    "INSERT INTO tallies (client, n, last) VALUES (%s, 1, now()) "
                    "ON CONFLICT (client) DO UPDATE SET n = tallies.n + 1, last = EXCLUDED.last", (client,))
            rows = await multi.fetchall()
            t.add("multi-row insert", rows=len(rows), notes=[r[1] for r in rows], status=multi.statusmessage)
            t.add("upsert now", status=upsert.statusmessage)

            if i % 10 == 3:
                try:
                    async with conn.transaction():
                        await conn.execute("INSERT INTO items (client, note) VALUES (%s, 'rolled back') RETURNING id",
                                           (client,))
                        raise psycopg.Rollback()
                except psycopg.Rollback:
                    pass
                t.add("rolled back")
            if i % 5 == 4:
                # Simple protocol, two statements in one string.
                ccur = AsyncClientCursor(conn)
                await ccur.execute(
                    "UPDATE items SET touched = now() WHERE id IN "
                    f"(SELECT id FROM items WHERE client = {client} ORDER BY id DESC LIMIT 3); "
                    f"INSERT INTO events (item_id, kind) VALUES ({id1}, 'simple')")
                t.add("update now subquery", status=ccur.statusmessage)
            if i % 7 == 6:
                cur = await conn.execute("DELETE FROM items WHERE id = %s RETURNING id, note", (id1,))
                t.add("delete returning", rows=len(await cur.fetchall()), status=cur.statusmessage)
                cur = await conn.execute("DELETE FROM events WHERE at < now() - interval '1 day'")
                t.add("delete by now", status=cur.statusmessage)
        cur = conn.cursor()
        await cur.executemany("INSERT INTO events (item_id, kind) VALUES (%s, %s)",
                              [(0, f"batch {client} {k}") for k in range(20)])
        t.add("executemany")
        cur = await conn.execute("SELECT count(*) FROM items WHERE client = %s", (client,))
        t.add("count", items=(await cur.fetchone())[0])
    out[client] = t.lines


async def run(clients="4", rounds="100"):
    clients, rounds = int(clients), int(rounds)
    out = {}
    tasks = []
    for c in range(clients):
        client = asyncpg_client if c % 2 == 0 else psycopg_client
        tasks.append(client(c, rounds, out))
    await asyncio.gather(*tasks)
    for c in range(clients):
        for line in out[c]:
            print(line)


if __name__ == "__main__":
    run_scenario({"run": run})
