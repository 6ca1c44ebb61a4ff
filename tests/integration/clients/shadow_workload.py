"""Client workloads for the shadow-mirroring tests (tests/integration/shadow_test.cpp).

usage: shadow_workload.py mixed SEED TRANSACTIONS
       shadow_workload.py commit-order ITERATIONS SEED
       shadow_workload.py writer SECONDS

Connects with the libpq environment (PGHOST, PGPORT, ...) set by the harness, i.e. to
pgshift. The tests compare the primary with the shadow afterwards, so the workloads only
write values that do not depend on the server: no now(), no random(), no sequences
(a sequence value consumed by a rolled-back transaction would exist on the primary only).

mixed         A seeded mix of what applications do: explicit transactions (some rolled
              back), savepoints with ROLLBACK TO, errors inside transactions, prepared
              statements, pipeline mode, COPY FROM STDIN, multi-statement simple-protocol
              strings, SET search_path and SET LOCAL, a temporary table, DDL, and
              transactions of two sessions overlapping. Expects the schema the test
              creates (app.accounts, app.notes, public.notes, public.items, public.events).
commit-order  Two sessions update the same row in turn: A updates it, B blocks on A's
              row lock, A commits, B goes on and commits. A's and B's updates do not
              commute, so a shadow that applies B before A ends with other values.
writer        Small write transactions in a loop for SECONDS; any error fails.
"""

import datetime
import random
import sys
import threading
import time
from decimal import Decimal

import psycopg
from psycopg import ClientCursor, errors

from clientlib import expect, expect_equal, fail, run_scenario

EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def connect():
    return psycopg.connect("", autocommit=True)


class Mixed:
    """The mixed workload; one method per kind of unit of work."""

    ACCOUNTS = 50
    ITEMS = 100

    def __init__(self, seed, transactions):
        self.rng = random.Random(seed)
        self.transactions = transactions
        self.conns = [connect() for _ in range(3)]
        self.next_id = {"events": 1, "notes": 1000, "items": 1000, "late": 1}
        self.late_created = False
        self.counts = {}
        self.expected_errors = 0

    # ---- helpers ---------------------------------------------------------------

    def new_id(self, table):
        value = self.next_id[table]
        self.next_id[table] += 1
        return value

    def conn(self):
        return self.rng.choice(self.conns)

    def account(self):
        return self.rng.randint(1, self.ACCOUNTS)

    def item(self):
        return self.rng.randint(1, self.ITEMS)

    def amount(self):
        return Decimal(self.rng.randint(1, 5000)) / 100

    def stamp(self, n):
        return EPOCH + datetime.timedelta(seconds=n)

    def rollback_now(self):
        return self.rng.random() < 0.1

    def expected_error(self, e):
        self.expected_errors += 1
        return e

    # ---- units of work ---------------------------------------------------------

    def transfer(self):
        """Explicit transaction, extended protocol, ~10% rolled back."""
        c = self.conn()
        a, b = self.rng.sample(range(1, self.ACCOUNTS + 1), 2)
        amount = self.amount()
        with c.transaction():
            c.execute("UPDATE app.accounts SET balance = balance - %s, version = version + 1 WHERE id = %s",
                      (amount, a))
            c.execute("UPDATE app.accounts SET balance = balance + %s, version = version + 1 WHERE id = %s",
                      (amount, b))
            for acct, kind in ((a, "debit"), (b, "credit")):
                n = self.new_id("events")
                c.execute("INSERT INTO public.events (id, account_id, kind, amount, at) VALUES (%s, %s, %s, %s, %s)",
                          (n, acct, kind, amount, self.stamp(n)))
            if self.rollback_now():
                raise psycopg.Rollback()

    def savepoints(self):
        """Savepoints: a failing statement inside one, an explicit ROLLBACK TO, a release."""
        c = self.conn()
        with c.transaction() as outer:
            item = self.item()
            c.execute("UPDATE public.items SET qty = qty + 5 WHERE id = %s", (item,))
            try:
                with c.transaction():  # SAVEPOINT
                    c.execute("INSERT INTO public.items (id, name, qty) VALUES (%s, 'duplicate', 1)", (item,))
                fail("inserting a duplicate key succeeded")
            except errors.UniqueViolation as e:
                self.expected_error(e)  # rolled back to the savepoint
            with c.transaction() as sp:
                c.execute("UPDATE public.items SET name = name || '!' WHERE id = %s", (self.item(),))
                raise psycopg.Rollback(sp)  # ROLLBACK TO SAVEPOINT
            with c.transaction():  # SAVEPOINT ... RELEASE
                n = self.new_id("notes")
                c.execute("INSERT INTO public.notes (id, body) VALUES (%s, %s)", (n, f"savepoint note {n}"))
            c.execute("UPDATE public.items SET tags = array_append(tags, 'sp') WHERE id = %s", (item,))
            if self.rollback_now():
                raise psycopg.Rollback(outer)

    def failing_transaction(self):
        """An error without a savepoint: the whole transaction fails and rolls back."""
        c = self.conn()
        try:
            with c.transaction():
                c.execute("UPDATE public.items SET qty = qty + 1 WHERE id = %s", (self.item(),))
                n = self.new_id("notes")
                c.execute("INSERT INTO public.notes (id, body) VALUES (%s, 'never committed')", (n,))
                if self.rng.random() < 0.5:
                    c.execute("UPDATE public.items SET qty = -1 WHERE id = %s", (self.item(),))  # check violation
                else:
                    c.execute("INSERT INTO public.events (id, account_id, kind, amount, at) "
                              "VALUES (%s, 9999, 'orphan', 1, %s)", (self.new_id("events"), EPOCH))  # foreign key
            fail("the failing transaction committed")
        except (errors.CheckViolation, errors.ForeignKeyViolation) as e:
            self.expected_error(e)

    def prepared(self):
        """Named prepared statements (prepare=True), autocommit and inside a transaction."""
        c = self.conn()
        for _ in range(self.rng.randint(1, 4)):
            c.execute("UPDATE public.items SET qty = qty + %s WHERE id = %s", (self.rng.randint(1, 9), self.item()),
                      prepare=True)
        with c.transaction():
            for _ in range(self.rng.randint(1, 3)):
                c.execute("UPDATE app.accounts SET version = version + 1, balance = balance * %s WHERE id = %s",
                          (Decimal("1.01"), self.account()), prepare=True)
            n = self.new_id("notes")
            c.execute("INSERT INTO public.notes (id, body) VALUES (%s, %s)", (n, f"prepared {n}"), prepare=True)
            if self.rollback_now():
                raise psycopg.Rollback()

    def pipeline(self):
        """Pipeline mode: a transaction in one pipeline, executemany, and autocommit syncs."""
        c = self.conn()
        with c.pipeline() as p:
            with c.transaction():
                cur = c.cursor()
                rows = []
                for _ in range(self.rng.randint(2, 6)):
                    n = self.new_id("events")
                    rows.append((n, self.account(), "pipelined", self.amount(), self.stamp(n)))
                cur.executemany("INSERT INTO public.events (id, account_id, kind, amount, at) "
                                "VALUES (%s, %s, %s, %s, %s)", rows)
                cur.execute("UPDATE app.accounts SET version = version + 1 WHERE id = %s", (self.account(),))
            c.execute("UPDATE public.items SET qty = qty + 1 WHERE id = %s", (self.item(),))
            p.sync()
            c.execute("UPDATE public.items SET qty = qty + 2 WHERE id = %s", (self.item(),))
        if self.rng.random() < 0.3:
            # A pipelined transaction that fails half-way: nothing of it may reach the shadow.
            try:
                with c.pipeline():
                    with c.transaction():
                        c.execute("UPDATE public.items SET qty = qty + 100 WHERE id = %s", (self.item(),))
                        c.execute("SELECT 1 / 0")
                fail("division by zero succeeded")
            except errors.DivisionByZero as e:
                self.expected_error(e)

    def copy(self):
        """COPY FROM STDIN, inside a transaction (sometimes rolled back) or alone."""
        c = self.conn()
        rows = []
        for _ in range(self.rng.randint(1, 20)):
            n = self.new_id("events")
            rows.append((n, self.account(), "copied", self.amount(), self.stamp(n)))

        def do_copy():
            with c.cursor().copy("COPY public.events (id, account_id, kind, amount, at) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)

        if self.rng.random() < 0.5:
            do_copy()
        else:
            with c.transaction():
                do_copy()
                c.execute("UPDATE app.accounts SET version = version + 1 WHERE id = %s", (rows[0][1],))
                if self.rollback_now():
                    raise psycopg.Rollback()

    def multi_statement(self):
        """Multi-statement simple-protocol strings (one implicit transaction each)."""
        c = self.conn()
        cur = ClientCursor(c)
        item, other = self.item(), self.item()
        n = self.new_id("notes")
        sql = ("UPDATE public.items SET qty = qty + 3 WHERE id = %s; "
               "INSERT INTO public.notes (id, body) VALUES (%s, 'multi'); "
               "UPDATE public.items SET name = upper(name) WHERE id = %s")
        if self.rng.random() < 0.2:
            # Fails at the last statement: the implicit transaction rolls back whole.
            try:
                cur.execute(sql + "; UPDATE public.items SET qty = -5 WHERE id = %s", (item, n, other, item))
                fail("the failing multi-statement string succeeded")
            except errors.CheckViolation as e:
                self.expected_error(e)
        else:
            cur.execute(sql, (item, n, other))
        if self.rng.random() < 0.3:
            with c.transaction():
                cur.execute("UPDATE app.accounts SET version = version + 10 WHERE id = %s; "
                            "DELETE FROM public.notes WHERE id = %s", (self.account(), self.rng.randint(1000, n)))

    def search_path(self):
        """SET search_path for the session and SET LOCAL inside a transaction."""
        c = self.conn()
        n1, n2, n3 = self.new_id("notes"), self.new_id("notes"), self.new_id("notes")
        c.execute("SET search_path TO app, public")
        c.execute("INSERT INTO notes (id, body) VALUES (%s, 'app via search_path')", (n1,))  # app.notes
        c.execute("UPDATE accounts SET version = version + 100 WHERE id = %s", (self.account(),))
        c.execute("SET search_path TO public")
        with c.transaction():
            c.execute("SET LOCAL search_path TO app")
            c.execute("INSERT INTO notes (id, body) VALUES (%s, 'app via SET LOCAL')", (n2,))  # app.notes
        c.execute("INSERT INTO notes (id, body) VALUES (%s, 'public again')", (n3,))  # public.notes
        c.execute("RESET search_path")

    def overlapping(self):
        """Two sessions' transactions overlap; the one that began first commits last."""
        a, b = self.conns[0], self.conns[1]
        acct = self.account()
        a.execute("BEGIN")
        a.execute("UPDATE app.accounts SET balance = balance * 2, version = version + 1 WHERE id = %s", (acct,))
        with b.transaction():
            b.execute("UPDATE public.items SET qty = qty * 2 WHERE id = %s", (self.item(),))
            n = self.new_id("notes")
            b.execute("INSERT INTO public.notes (id, body) VALUES (%s, 'committed first')", (n,))
        n = self.new_id("notes")
        a.execute("INSERT INTO public.notes (id, body) VALUES (%s, 'began first')", (n,))
        a.execute("ROLLBACK" if self.rollback_now() else "COMMIT")

    def ddl(self):
        c = self.conn()
        if not self.late_created:
            c.execute("CREATE TABLE app.late (id int PRIMARY KEY, v text NOT NULL)")
            self.late_created = True
        n = self.new_id("late")
        c.execute("INSERT INTO app.late (id, v) VALUES (%s, %s)", (n, f"late {n}"))

    def run(self):
        # The temporary table lives in its own session for the whole workload.
        temp = connect()
        temp.execute("CREATE TEMP TABLE moves (item int NOT NULL, delta int NOT NULL)")
        kinds = [
            (self.transfer, 20), (self.savepoints, 8), (self.failing_transaction, 5), (self.prepared, 10),
            (self.pipeline, 8), (self.copy, 8), (self.multi_statement, 8), (self.search_path, 5),
            (self.overlapping, 6), (self.ddl, 3), (None, 6),
        ]
        funcs = [k for k, _ in kinds]
        weights = [w for _, w in kinds]
        for i in range(self.transactions):
            kind = self.rng.choices(funcs, weights)[0]
            if kind is None:  # the temporary table
                for _ in range(self.rng.randint(1, 4)):
                    temp.execute("INSERT INTO moves VALUES (%s, %s)", (self.item(), self.rng.randint(1, 7)))
                with temp.transaction():
                    temp.execute("UPDATE public.items i SET qty = i.qty + m.delta FROM moves m WHERE i.id = m.item")
                    temp.execute("TRUNCATE moves")
                name = "temp_table"
            else:
                kind()
                name = kind.__name__
            self.counts[name] = self.counts.get(name, 0) + 1
        temp.close()
        for c in self.conns:
            c.close()
        print("units:", " ".join(f"{k}={v}" for k, v in sorted(self.counts.items())))
        print("expected errors:", self.expected_errors)
        expect(self.expected_errors > 0, "the workload provoked no error")


def mixed(seed="1", transactions="400"):
    Mixed(int(seed), int(transactions)).run()


MUTATIONS = [
    ("v = (v * 2) %% 1000003", "m"),
    ("v = v + 1", "p"),
    ("v = (v * 3 + 7) %% 1000003", "t"),
    ("v = v - 5", "s"),
]


def commit_order(iterations="80", seed="7"):
    rng = random.Random(int(seed))
    a, b, monitor = connect(), connect(), connect()
    rows = int(monitor.execute("SELECT count(*) FROM ordering").fetchone()[0])
    expect(rows > 0, "the ordering table is empty")
    backend_b = b.execute("SELECT pg_backend_pid()").fetchone()[0]  # the real one, not pgshift's key
    for i in range(int(iterations)):
        row = 1 + i % rows
        (set_a, tag_a), (set_b, tag_b) = rng.sample(MUTATIONS, 2)
        a.execute("BEGIN")
        a.execute(f"UPDATE ordering SET {set_a}, log = log || %s WHERE id = %s", (tag_a, row))
        outcome = {}

        def session_b():
            try:
                b.execute("BEGIN")
                b.execute(f"UPDATE ordering SET {set_b}, log = log || %s WHERE id = %s", (tag_b.upper(), row))
                b.execute("COMMIT")
            except Exception as e:  # reported by the main thread
                outcome["error"] = e

        thread = threading.Thread(target=session_b)
        thread.start()
        deadline = time.monotonic() + 10
        while True:  # until B waits for A's row lock
            waiting = monitor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
                (backend_b,)).fetchone()[0]
            if waiting:
                break
            if time.monotonic() > deadline:
                fail(f"iteration {i}: session B never waited for A's lock")
            time.sleep(0.002)
        a.execute("COMMIT")
        thread.join(30)
        expect(not thread.is_alive(), f"iteration {i}: session B did not finish")
        if "error" in outcome:
            raise outcome["error"]
    for row_id, v, log in monitor.execute("SELECT id, v, log FROM ordering ORDER BY id"):
        print(f"row {row_id}: v={v} log={log}")
    for c in (a, b, monitor):
        c.close()


def writer(seconds="10"):
    c = connect()
    end = time.monotonic() + float(seconds)
    n = 0
    while time.monotonic() < end:
        n += 1
        with c.transaction():
            c.execute("INSERT INTO writes (id, v) VALUES (%s, %s)", (n, f"row {n}"))
            c.execute("UPDATE counters SET n = n + 1 WHERE id = 1")
    print("transactions:", n)
    c.close()


if __name__ == "__main__":
    run_scenario({"mixed": mixed, "commit-order": commit_order, "writer": writer})
