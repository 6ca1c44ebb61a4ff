"""psycopg 3 scenarios: pipeline mode, binary COPY, server-side cursors, cancellation.

usage: psycopg_client.py {pipeline|binary_copy|named_cursor|cancel}
"""

import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
from psycopg import errors

from clientlib import expect, expect_equal, fail, run_scenario


def pipeline():
    expect(psycopg.Pipeline.is_supported(), "libpq supports pipeline mode")
    with psycopg.connect(autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE pipe (id int PRIMARY KEY, label text NOT NULL)")

        with conn.pipeline():
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO pipe VALUES (%s, %s)",
                                [(i, f"row {i}") for i in range(1, 101)])
            count = conn.execute("SELECT count(*) FROM pipe")
            label = conn.execute("SELECT label FROM pipe WHERE id = %s", (42,))
            concat = conn.execute("SELECT %s::text || %s::text", ("pipe", "line"))
            several = conn.execute("SELECT g FROM generate_series(1, 5) g")
        expect_equal(count.fetchone()[0], 100, "rows inserted in the pipeline")
        expect_equal(label.fetchone()[0], "row 42", "label read in the pipeline")
        expect_equal(concat.fetchone()[0], "pipeline", "parameters in the pipeline")
        expect_equal([r[0] for r in several.fetchall()], [1, 2, 3, 4, 5], "multi-row result")

        # An error aborts the rest of the pipeline up to its Sync; the connection recovers.
        try:
            with conn.pipeline():
                conn.execute("INSERT INTO pipe VALUES (200, 'first')")
                conn.execute("INSERT INTO pipe VALUES (200, 'duplicate key')")
                conn.execute("INSERT INTO pipe VALUES (201, 'skipped')")
        except errors.UniqueViolation as e:
            print(f"pipeline error as expected: {e.sqlstate}")
        else:
            fail("the duplicate key in the pipeline raised nothing")
        rows = conn.execute("SELECT count(*) FROM pipe WHERE id >= 200").fetchone()[0]
        expect_equal(rows, 0, "rows kept from the failed pipeline (one implicit transaction)")

        with conn.pipeline():
            after = conn.execute("SELECT count(*) FROM pipe")
        expect_equal(after.fetchone()[0], 100, "pipeline after the failed one")


def binary_copy():
    types = ["int4", "text", "bytea", "timestamptz", "numeric"]
    start = datetime(2024, 2, 29, 12, 0, tzinfo=timezone.utc)
    rows = [
        (i,
         f"name {i} \u00fcn\u00efc\u00f8de" if i % 10 else None,
         bytes(range(256)) * (i % 7),
         start + timedelta(seconds=i, microseconds=i),
         Decimal(i) / Decimal(8))
        for i in range(1, 5001)
    ]
    rows.append((5001, "big", b"\x00\xff" * 600_000, start, Decimal("-1e-20")))

    with psycopg.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE bin_copy "
                    "(id int4, name text, data bytea, ts timestamptz, amount numeric)")
        with cur.copy("COPY bin_copy FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
        expect_equal(cur.rowcount, len(rows), "rows reported by COPY FROM")

        with cur.copy("COPY (SELECT * FROM bin_copy ORDER BY id) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types(types)
            copied = list(copy.rows())
        expect_equal(len(copied), len(rows), "rows copied out")
        for sent, received in zip(rows, copied):
            expect_equal(received, sent, f"row {sent[0]} after the round trip")

        cur.execute("SELECT sum(length(data)), count(name) FROM bin_copy")
        expect_equal(cur.fetchone(), (sum(len(r[2]) for r in rows), 4501), "server-side totals")
    print(f"binary copy round trip of {len(rows)} rows")


def named_cursor():
    with psycopg.connect() as conn:
        with conn.cursor(name="batched") as cur:
            cur.execute("SELECT g, md5(g::text) FROM generate_series(1, 1000) g ORDER BY g")
            open_cursors = conn.execute(
                "SELECT count(*) FROM pg_cursors WHERE name = 'batched'").fetchone()[0]
            expect_equal(open_cursors, 1, "server-side cursor exists")
            sizes, seen = [], []
            while batch := cur.fetchmany(300):
                sizes.append(len(batch))
                seen.extend(batch)
        expect_equal(sizes, [300, 300, 300, 100], "batch sizes")
        expect_equal([g for g, _ in seen], list(range(1, 1001)), "rows in order")
        md5_of_7 = conn.execute("SELECT md5('7')").fetchone()[0]
        expect_equal(seen[6][1], md5_of_7, "row content")

        # A scrollable cursor moved around on the server.
        with conn.cursor(name="scroller", scrollable=True) as cur:
            cur.execute("SELECT g FROM generate_series(1, 100) g ORDER BY g")
            cur.scroll(50, mode="absolute")
            expect_equal(cur.fetchone()[0], 51, "row after scrolling to 50")
            cur.scroll(-11)
            expect_equal(cur.fetchmany(2), [(41,), (42,)], "rows after scrolling back")
        conn.commit()


def cancel():
    """conn.cancel() sends a CancelRequest with the BackendKeyData the client received."""
    with psycopg.connect(autocommit=True) as conn, psycopg.connect(autocommit=True) as watcher:
        server_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]

        def cancel_when_running():
            # Waits until the statement runs (no fixed delay), then cancels it.
            while watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND state = 'active'"
                    " AND query LIKE 'SELECT pg_sleep%%'", (server_pid,)).fetchone()[0] == 0:
                time.sleep(0.02)
            conn.cancel()

        canceller = threading.Thread(target=cancel_when_running)
        canceller.start()
        try:
            conn.execute("SELECT pg_sleep(60)")
        except errors.QueryCanceled as e:
            expect_equal(e.sqlstate, "57014", "SQLSTATE of the cancelled query")
            print(f"cancelled: {e.sqlstate} {e}")
        else:
            fail("pg_sleep(60) was not cancelled")
        finally:
            canceller.join()
        expect_equal(conn.execute("SELECT 1").fetchone()[0], 1, "query after the cancel")


if __name__ == "__main__":
    run_scenario({
        "pipeline": pipeline,
        "binary_copy": binary_copy,
        "named_cursor": named_cursor,
        "cancel": cancel,
    })
