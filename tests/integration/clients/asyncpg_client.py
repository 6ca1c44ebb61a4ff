"""asyncpg scenarios: prepared statements, binary types, COPY, cancel on timeout.

usage: asyncpg_client.py {prepared|binary_types|copy|cancel_on_timeout}
"""

import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import asyncpg

from clientlib import expect_equal, fail, run_scenario


async def connect():
    # Host, port, user, database, password and sslmode come from the PG* environment.
    return await asyncpg.connect(timeout=20)


async def prepared():
    conn = await connect()
    try:
        product = await conn.prepare("SELECT $1::int4 * $2::int4 AS product")
        expect_equal([t.name for t in product.get_parameters()], ["int4", "int4"], "parameter types")
        expect_equal([a.name for a in product.get_attributes()], ["product"], "result columns")
        for a, b in [(1, 2), (3, 4), (-5, 6), (46340, 46340)]:
            expect_equal(await product.fetchval(a, b), a * b, f"{a} * {b}")

        await conn.execute("CREATE TEMP TABLE prep (id int PRIMARY KEY, label text)")
        await conn.executemany("INSERT INTO prep VALUES ($1, $2)",
                               [(i, f"label {i}") for i in range(1, 501)])
        by_id = await conn.prepare("SELECT label FROM prep WHERE id = $1")
        for i in (1, 250, 500):
            expect_equal(await by_id.fetchval(i), f"label {i}", f"label of {i}")
        expect_equal(await by_id.fetchval(999), None, "missing row")

        # A portal read in small batches (Execute with a row limit, PortalSuspended).
        async with conn.transaction():
            ordered = await conn.prepare("SELECT id FROM prep ORDER BY id")
            ids = [r["id"] async for r in ordered.cursor(prefetch=7)]
        expect_equal(ids, list(range(1, 501)), "rows from the batched cursor")

        # An error in a prepared statement leaves the connection usable.
        divide = await conn.prepare("SELECT 10 / $1::int4")
        try:
            await divide.fetchval(0)
            fail("division by zero raised nothing")
        except asyncpg.DivisionByZeroError:
            pass
        expect_equal(await divide.fetchval(5), 2, "prepared statement after an error")
    finally:
        await conn.close()


async def binary_types():
    values = [
        ("int8", 9_223_372_036_854_775_807),
        ("int8", -9_223_372_036_854_775_808),
        ("numeric", Decimal("12345678901234567890.123456789012345678")),
        ("numeric", Decimal("-0.000000000000000000001")),
        ("timestamptz", datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=timezone.utc)),
        ("timestamptz", datetime(1999, 12, 31, 12, 0, tzinfo=timezone(timedelta(hours=-7)))),
        ("uuid", uuid.UUID("6f1e2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b")),
        ("bytea", bytes(range(256)) * 64),
        ("jsonb", json.dumps({"a": [1, 2.5, {"b": None}], "s": "\u00fcn\u00efc\u00f8de \u2713"})),
        ("int4[]", [1, None, 3]),
        ("int8[]", [[1, 2], [3, 4]]),
        ("text[]", ["a", "b c", "", None, "\u00fc\"quoted\""]),
        ("numeric[]", [Decimal("1.5"), Decimal("-2.25")]),
        ("uuid[]", [uuid.UUID(int=1), uuid.UUID(int=2**128 - 1)]),
    ]
    conn = await connect()
    try:
        sql = "SELECT " + ", ".join(f"${i}::{t}" for i, (t, _) in enumerate(values, start=1))
        row = await conn.fetchrow(sql, *[v for _, v in values])
        for (type_name, sent), received in zip(values, row):
            if type_name == "jsonb":  # jsonb normalises whitespace: compare the documents
                expect_equal(json.loads(received), json.loads(sent), "jsonb")
            else:
                expect_equal(received, sent, type_name)

        # The same values stored in a table and read back through a prepared statement.
        await conn.execute("CREATE TEMP TABLE typed (big int8, amount numeric, at timestamptz, "
                           "id uuid, blob bytea, doc jsonb, nums int4[])")
        await conn.execute("INSERT INTO typed VALUES ($1, $2, $3, $4, $5, $6, $7)",
                           values[0][1], values[2][1], values[4][1], values[6][1], values[7][1],
                           values[8][1], values[9][1])
        stored = await conn.fetchrow("SELECT * FROM typed")
        expect_equal(stored["big"], values[0][1], "stored int8")
        expect_equal(stored["amount"], values[2][1], "stored numeric")
        expect_equal(stored["at"], values[4][1], "stored timestamptz")
        expect_equal(stored["id"], values[6][1], "stored uuid")
        expect_equal(stored["blob"], values[7][1], "stored bytea")
        expect_equal(json.loads(stored["doc"]), json.loads(values[8][1]), "stored jsonb")
        expect_equal(stored["nums"], values[9][1], "stored int4[]")
    finally:
        await conn.close()


async def copy():
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    records = [(i, f"name {i}", Decimal(i) / 4, start + timedelta(minutes=i), [f"t{i}", "x"])
               for i in range(20000)]
    conn = await connect()
    try:
        await conn.execute("CREATE TEMP TABLE copy_t "
                           "(id int, name text, amount numeric, seen timestamptz, tags text[])")
        status = await conn.copy_records_to_table(
            "copy_t", records=records, columns=["id", "name", "amount", "seen", "tags"])
        expect_equal(status, f"COPY {len(records)}", "copy_records_to_table status")
        stored = await conn.fetch("SELECT * FROM copy_t ORDER BY id")
        expect_equal([tuple(r) for r in stored], records, "rows stored by COPY")

        chunks = []

        async def collect(data):
            chunks.append(bytes(data))

        status = await conn.copy_from_query("SELECT id, name, amount FROM copy_t ORDER BY id",
                                            output=collect, format="csv")
        expect_equal(status, f"COPY {len(records)}", "copy_from_query status")
        lines = b"".join(chunks).decode().splitlines()
        expected = [f"{i},name {i},{Decimal(i) / 4}" for i in range(20000)]
        expect_equal(len(lines), len(expected), "CSV lines copied out")
        expect_equal(lines, expected, "CSV content")
        # The table is still usable afterwards.
        expect_equal(await conn.fetchval("SELECT count(*) FROM copy_t"), len(records), "count")
    finally:
        await conn.close()


async def cancel_on_timeout():
    """A client-side timeout makes asyncpg send a CancelRequest for the running query.

    asyncpg reports the timeout as TimeoutError (it consumes the server's 57014 error
    itself). That the CancelRequest reached the right backend is shown by the statement
    not having completed: it would insert a row after the sleep.
    """
    conn = await connect()
    try:
        await conn.execute("CREATE TEMP TABLE finished (x int)")
        try:
            await conn.execute("INSERT INTO finished SELECT 1 FROM pg_sleep(10)", timeout=0.5)
            fail("the statement did not time out")
        except asyncio.TimeoutError:
            print("timed out; asyncpg sent a CancelRequest")
        expect_equal(await conn.fetchval("SELECT 1"), 1, "query after the cancel")
        expect_equal(await conn.fetchval("SELECT count(*) FROM finished"), 0,
                     "rows inserted by the cancelled statement")
    finally:
        await conn.close()


if __name__ == "__main__":
    run_scenario({
        "prepared": prepared,
        "binary_types": binary_types,
        "copy": copy,
        "cancel_on_timeout": cancel_on_timeout,
    })
