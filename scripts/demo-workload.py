#!/usr/bin/python3
"""A small sample application for the pgshift demo (psycopg 3).

    demo-workload.py CONNINFO

Talks to PostgreSQL the way an ordinary application does: a schema, a
transaction, parameterized (extended protocol) queries, COPY, a failed
transaction that is rolled back, and LISTEN/NOTIFY. Point it at pgshift and it
cannot tell the difference. Prints what it does; exits non-zero on any
unexpected result.
"""

import json
import sys
import time
from decimal import Decimal

import psycopg
from psycopg import errors


def heading(text):
    print(f"\n-- {text}")


def show(rows, columns):
    """Prints rows as a small aligned table."""
    cells = [[str(c) for c in columns]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for n, row in enumerate(cells):
        print("   " + "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
        if n == 0:
            print("   " + "  ".join("-" * w for w in widths))


def expect(condition, message):
    if not condition:
        raise SystemExit(f"demo-workload: unexpected result: {message}")


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    conninfo = sys.argv[1]

    with psycopg.connect(conninfo, autocommit=True, application_name="pgshift-demo") as conn:
        heading("connect")
        port = conn.execute("SELECT inet_server_port()").fetchone()[0]
        print(f"   connected to {conn.info.host}:{conn.info.port}; "
              f"the session runs on the PostgreSQL {conn.info.server_version // 10000} "
              f"server behind it (port {port})")

        heading("schema: users and orders")
        with conn.transaction():
            conn.execute("DROP TABLE IF EXISTS orders, users")
            # DDL is never rewritten: the table gets the column name the database
            # is migrating to. Everything after this says `name`, as old code does.
            conn.execute("""
                CREATE TABLE users (
                    id        int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    full_name text NOT NULL,
                    email     text NOT NULL UNIQUE
                )""")
            conn.execute("""
                CREATE TABLE orders (
                    id      int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    user_id int NOT NULL REFERENCES users,
                    item    text NOT NULL,
                    amount  numeric(10, 2) NOT NULL
                )""")
        print("   created tables users and orders")
        columns = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'users' ORDER BY ordinal_position").fetchall()]
        print(f"   the database's users columns: {', '.join(columns)}")
        print("   this application keeps saying `name`: pgshift's rename rule rewrites its "
              "statements and gives results back under the names it asked for")

        heading("a transaction: three users and their first orders")
        with conn.transaction():
            with conn.cursor() as cur:
                ids = {}
                for name in ("alice", "bob", "carol"):
                    cur.execute("INSERT INTO users (name, email) VALUES (%s, %s) RETURNING id",
                                (name, f"{name}@example.com"))
                    ids[name] = cur.fetchone()[0]
                cur.executemany(
                    "INSERT INTO orders (user_id, item, amount) VALUES (%s, %s, %s)",
                    [(ids["alice"], "keyboard", Decimal("49.90")),
                     (ids["alice"], "monitor", Decimal("189.00")),
                     (ids["bob"], "mouse", Decimal("19.99"))])
        print(f"   committed users {ids} and 3 orders")

        heading("extended protocol: a prepared, parameterized query")
        query = """SELECT u.name, o.item, o.amount
                     FROM orders o JOIN users u ON u.id = o.user_id
                    WHERE o.amount >= %s ORDER BY o.amount DESC"""
        for minimum in (Decimal("20"), Decimal("100")):
            rows = conn.execute(query, (minimum,), prepare=True).fetchall()
            print(f"   orders of at least {minimum}:")
            show(rows, ("name", "item", "amount"))
        expect(len(rows) == 1, "one order of at least 100")

        heading("COPY: bulk-load orders")
        batch = [(ids["bob"], f"cable #{i}", Decimal("4.50") + i) for i in range(1, 6)]
        batch.append((ids["carol"], "laptop", Decimal("999.00")))
        with conn.transaction():
            with conn.cursor() as cur:
                with cur.copy("COPY orders (user_id, item, amount) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
                print(f"   COPY FROM STDIN loaded {cur.rowcount} rows")
        with conn.cursor() as cur:
            with cur.copy("COPY (SELECT item, amount FROM orders WHERE item LIKE 'cable%' "
                          "ORDER BY id) TO STDOUT") as copy:
                lines = [bytes(chunk).decode() for chunk in copy]
        print("   COPY TO STDOUT returned: " + "".join(lines).strip().replace("\n", " | ")
              .replace("\t", " "))

        heading("a failed transaction is rolled back")
        before = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        try:
            with conn.transaction():
                conn.execute("INSERT INTO users (name, email) VALUES (%s, %s)",
                             ("dave", "dave@example.com"))
                conn.execute("INSERT INTO users (name, email) VALUES (%s, %s)",
                             ("alice again", "alice@example.com"))
            expect(False, "the duplicate email was accepted")
        except errors.UniqueViolation as e:
            print(f"   error {e.sqlstate}: {e.diag.message_primary}")
        after = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        print(f"   users before: {before}, after: {after} (dave was rolled back too)")
        expect(before == after, "the rollback kept the user count")

        heading("LISTEN/NOTIFY: a second connection hears about new orders")
        received = []
        with psycopg.connect(conninfo, autocommit=True) as listener:
            listener.add_notify_handler(received.append)
            listener.execute("LISTEN new_order")
            with conn.transaction():
                order_id = conn.execute(
                    "INSERT INTO orders (user_id, item, amount) VALUES (%s, %s, %s) RETURNING id",
                    (ids["carol"], "docking station", Decimal("129.00"))).fetchone()[0]
                conn.execute("SELECT pg_notify('new_order', %s)",
                             (json.dumps({"order": order_id, "user": "carol"}),))
                print("   notification sent inside a transaction (delivered at commit)")
            deadline = time.monotonic() + 10
            while not received and time.monotonic() < deadline:
                listener.execute("SELECT 1")  # reading the answer also reads notifications
                if not received:
                    time.sleep(0.05)
        expect(received, "no notification within 10 s")
        n = received[0]
        print(f"   listener got channel={n.channel} payload={n.payload} from pid {n.pid}")

        heading("result: orders per user")
        rows = conn.execute("""
            SELECT u.name, count(o.id) AS orders, coalesce(sum(o.amount), 0) AS total
              FROM users u LEFT JOIN orders o ON o.user_id = u.id
             GROUP BY u.name ORDER BY u.name""").fetchall()
        show(rows, ("name", "orders", "total"))
        expect([r[1] for r in rows] == [2, 6, 2], "order counts 2, 6, 2")

    print("\n   workload finished")


if __name__ == "__main__":
    main()
