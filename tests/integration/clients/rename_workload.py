"""A fixed application workload for the column-rename differential test.

usage: rename_workload.py [workload|strict|new-names|catalog]

Connects with the libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE) to a database
loaded with the rename test data. `workload` (the default) runs a fixed sequence of steps
that only use the OLD column names (users.email, users.name, orders.status,
billing.invoices.amt); `strict` and `new-names` are short checks meant for pgshift only;
`catalog` needs the extra schema of rename_test.cpp (kCatalogSql: orders with an email of
their own, a table other.users that is not renamed) and resolves names that only the
catalog and the session's search_path decide.
Each step prints one JSON line (keys sorted):

    {"step": N, "label": ..., "columns": [...], "types": [oids], "rows": [[...]],
     "status": command tag, "rowcount": N}
    {"step": N, "label": ..., "error": SQLSTATE, "message": primary message}

A step with several result sets prints {"results": [...]}; a COPY TO prints the copied
text. The last line is {"end": true, "steps": N}. Run directly against the database with
the old names and through pgshift against the renamed one, the output must be identical.
Every step is deterministic: rows compared are ordered, timestamps are fixed literals.
"""

import json
import sys
from decimal import Decimal

import psycopg
from psycopg import ClientCursor

TS = "2024-05-01 12:00:00+00"


def text(value):
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [text(v) for v in value]
    return str(value)


def one_result(cur):
    out = {"status": cur.statusmessage, "rowcount": cur.rowcount}
    if cur.description is not None:
        out["columns"] = [d.name for d in cur.description]
        out["types"] = [d.type_code for d in cur.description]
        out["rows"] = [text(list(row)) for row in cur.fetchall()]
    return out


def all_results(cur):
    sets = [one_result(cur)]
    while cur.nextset():
        sets.append(one_result(cur))
    return sets[0] if len(sets) == 1 else {"results": sets}


def error(e):
    diag = getattr(e, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return {"error": getattr(e, "sqlstate", None) or type(e).__name__,
            "message": primary if primary is not None else str(e)}


class Workload:
    def __init__(self, conn):
        self.conn = conn
        self.steps = 0

    def emit(self, label, record):
        self.steps += 1
        record = dict(record)
        record["step"] = self.steps
        record["label"] = label
        print(json.dumps(record, sort_keys=True, ensure_ascii=True), flush=True)

    def q(self, label, sql, params=None, *, cur=None, **kwargs):
        """One execute (extended protocol with params, simple without)."""
        cur = cur if cur is not None else self.conn.cursor()
        try:
            cur.execute(sql, params, **kwargs)
            self.emit(label, all_results(cur))
        except psycopg.Error as e:
            self.emit(label, error(e))

    def client(self, label, sql, params=None):
        """Client-side binding: literals in the text, simple query protocol."""
        self.q(label, sql, params, cur=ClientCursor(self.conn))

    def many(self, label, sql, seq):
        cur = self.conn.cursor()
        try:
            cur.executemany(sql, seq, returning=True)
            self.emit(label, all_results(cur))
        except psycopg.Error as e:
            self.emit(label, error(e))

    def pipeline(self, label, statements):
        """Several statements in one pipeline; one step per statement."""
        cursors = []
        try:
            with self.conn.pipeline():
                for sql, params in statements:
                    cur = self.conn.cursor()
                    cur.execute(sql, params)
                    cursors.append(cur)
        except psycopg.Error as e:
            self.emit(label, error(e))
            return
        for i, cur in enumerate(cursors):
            self.emit(f"{label} [{i}]", all_results(cur))

    def copy_out(self, label, sql):
        cur = self.conn.cursor()
        try:
            with cur.copy(sql) as copy:
                data = b"".join(bytes(chunk) for chunk in copy)
            self.emit(label, {"copy": data.decode(), "status": cur.statusmessage,
                              "rowcount": cur.rowcount})
        except psycopg.Error as e:
            self.emit(label, error(e))

    def copy_in(self, label, sql, rows):
        cur = self.conn.cursor()
        try:
            with cur.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
            self.emit(label, {"status": cur.statusmessage, "rowcount": cur.rowcount})
        except psycopg.Error as e:
            self.emit(label, error(e))

    def copy_in_text(self, label, sql, data):
        cur = self.conn.cursor()
        try:
            with cur.copy(sql) as copy:
                copy.write(data)
            self.emit(label, {"status": cur.statusmessage, "rowcount": cur.rowcount})
        except psycopg.Error as e:
            self.emit(label, error(e))

    def named_cursor(self, label, sql, params, batch):
        """A server-side cursor (DECLARE/FETCH) read in batches inside a transaction."""
        try:
            with self.conn.transaction():
                with self.conn.cursor(name="rename_scan") as cur:
                    cur.execute(sql, params)
                    self.emit(f"{label} describe", {
                        "columns": [d.name for d in cur.description],
                        "types": [d.type_code for d in cur.description]})
                    n = 0
                    while True:
                        rows = cur.fetchmany(batch)
                        self.emit(f"{label} batch {n}", {"rows": [text(list(r)) for r in rows]})
                        n += 1
                        if not rows:
                            break
        except psycopg.Error as e:
            self.emit(label, error(e))

    def stream(self, label, sql, params):
        cur = self.conn.cursor()
        try:
            rows, columns, types = [], None, None
            for row in cur.stream(sql, params):
                if columns is None:
                    columns = [d.name for d in cur.description]
                    types = [d.type_code for d in cur.description]
                rows.append(text(list(row)))
            self.emit(label, {"columns": columns, "types": types, "rows": rows})
        except psycopg.Error as e:
            self.emit(label, error(e))


def reads(w):
    w.q("timezone", "SET TimeZone = 'UTC'")
    w.q("select simple", "SELECT id, email, name FROM users WHERE id <= 5 ORDER BY id")
    w.q("select star", "SELECT * FROM users WHERE id BETWEEN 3 AND 7 ORDER BY id")
    w.q("select alias star", "SELECT u.* FROM users u WHERE u.org_id = 2 ORDER BY u.id")
    w.q("star of two tables",
        "SELECT * FROM orders o JOIN users u ON u.id = o.user_id WHERE o.id <= 6 ORDER BY o.id")
    w.q("table star and column",
        "SELECT u.*, o.status FROM users u JOIN orders o ON o.user_id = u.id "
        "WHERE o.id IN (1, 2, 3) ORDER BY o.id")
    w.q("where and order by renamed",
        "SELECT id, email FROM users WHERE name LIKE 'User 1%' ORDER BY name DESC, id")
    w.q("aliases", "SELECT email AS e, name AS n, users.email, users.name AS \"Name\" "
        "FROM users WHERE id < 4 ORDER BY e")
    w.q("expressions keep their names",
        "SELECT upper(email), coalesce(name, email), email || '!' , length(name) "
        "FROM users WHERE id IN (9, 10, 11) ORDER BY id")
    w.q("group by renamed", "SELECT status, count(*), sum(total) FROM orders "
        "GROUP BY status ORDER BY status")
    w.q("group by position having",
        "SELECT o.status, u.org_id, count(*) AS n FROM orders o JOIN users u ON u.id = o.user_id "
        "GROUP BY 1, 2 HAVING count(*) > 8 ORDER BY 1, 2")
    w.q("aggregates on renamed",
        "SELECT count(DISTINCT status), string_agg(DISTINCT status, ',' ORDER BY status), "
        "count(*) FILTER (WHERE status = 'paid'), min(email), max(name) FROM orders, users "
        "WHERE orders.user_id = users.id")
    w.q("join three tables",
        "SELECT u.email, o.id, o.status, i.sku, i.qty FROM users u "
        "JOIN orders o ON o.user_id = u.id JOIN order_items i ON i.order_id = o.id "
        "WHERE u.id <= 4 ORDER BY o.id, i.id")
    w.q("left join with unrenamed same name",
        "SELECT u.name, g.name AS org, g.plan FROM users u LEFT JOIN orgs g ON g.id = u.org_id "
        "WHERE u.id % 9 = 0 ORDER BY u.id")
    w.q("join on unrenamed column",
        "SELECT email, status FROM users JOIN orders ON orders.user_id = users.id "
        "WHERE orders.id BETWEEN 10 AND 14 ORDER BY orders.id")
    w.q("in subquery", "SELECT email FROM users WHERE id IN "
        "(SELECT user_id FROM orders WHERE status = 'shipped' AND total > 300) ORDER BY email")
    w.q("correlated subquery",
        "SELECT u.email, (SELECT count(*) FROM orders o WHERE o.user_id = u.id AND o.status = 'paid') "
        "AS paid FROM users u WHERE u.id <= 8 ORDER BY u.id")
    w.q("exists", "SELECT name FROM users u WHERE EXISTS (SELECT 1 FROM orders o "
        "WHERE o.user_id = u.id AND o.status = 'cancelled' AND o.total < 100) ORDER BY name NULLS FIRST")
    w.q("derived table", "SELECT t.email, t.name FROM (SELECT email, name FROM users "
        "WHERE org_id = 3) t ORDER BY t.email LIMIT 5")
    w.q("derived table star", "SELECT * FROM (SELECT id, email FROM users WHERE id > 45) s ORDER BY id")
    w.q("cte", "WITH big AS (SELECT user_id, sum(total) AS t FROM orders WHERE status = 'paid' "
        "GROUP BY user_id) SELECT u.email, big.t FROM big JOIN users u ON u.id = big.user_id "
        "ORDER BY big.t DESC, u.email LIMIT 10")
    w.q("cte exposing renamed", "WITH x AS (SELECT users.id, email, status FROM users "
        "JOIN orders ON orders.user_id = users.id) SELECT email, status, count(*) FROM x "
        "GROUP BY email, status HAVING count(*) > 1 ORDER BY email, status")
    w.q("window functions",
        "SELECT email, org_id, row_number() OVER (PARTITION BY org_id ORDER BY email) AS rn, "
        "rank() OVER w FROM users WHERE id <= 20 WINDOW w AS (ORDER BY name NULLS LAST) "
        "ORDER BY org_id, rn")
    w.q("window over orders",
        "SELECT id, status, total, sum(total) OVER (PARTITION BY status ORDER BY id) "
        "FROM orders WHERE id <= 12 ORDER BY id")
    w.q("distinct on", "SELECT DISTINCT ON (user_id) user_id, id, status FROM orders "
        "ORDER BY user_id, id DESC LIMIT 15")
    w.q("distinct", "SELECT DISTINCT status FROM orders ORDER BY status")
    w.q("union", "SELECT email FROM users WHERE id < 3 UNION ALL SELECT status FROM orders "
        "WHERE id < 3 ORDER BY 1")
    w.q("lateral", "SELECT u.email, l.status, l.total FROM users u CROSS JOIN LATERAL "
        "(SELECT status, total FROM orders o WHERE o.user_id = u.id ORDER BY o.id LIMIT 1) l "
        "WHERE u.id <= 6 ORDER BY u.id")
    w.q("case on renamed", "SELECT id, CASE status WHEN 'paid' THEN 'done' ELSE status END AS s "
        "FROM orders WHERE id <= 6 ORDER BY id")
    w.q("schema qualified", "SELECT id, order_id, amt, note FROM billing.invoices "
        "WHERE amt > 400 ORDER BY amt DESC, id")
    w.q("schema qualified star", "SELECT * FROM billing.invoices WHERE id <= 4 ORDER BY id")
    w.q("fully qualified column", "SELECT billing.invoices.amt, sum(billing.invoices.amt) OVER () "
        "FROM billing.invoices WHERE id <= 3 ORDER BY 1")
    w.q("table command", "TABLE orgs ORDER BY id")
    w.q("values join", "SELECT v.k, u.email FROM (VALUES (1, 'a'), (2, 'b')) AS v(k, x) "
        "JOIN users u ON u.id = v.k ORDER BY v.k")
    w.copy_out("copy table columns out", "COPY billing.invoices (id, amt, note) TO STDOUT")
    w.copy_out("copy query out csv", "COPY (SELECT id, email, name FROM users WHERE id <= 12 "
               "ORDER BY id) TO STDOUT WITH (FORMAT csv)")


def orm_styles(w):
    w.q("django select", 'SELECT "users"."id", "users"."email", "users"."name", "users"."org_id" '
        'FROM "users" WHERE "users"."email" = %s LIMIT 21', ("user17@example.com",))
    w.q("django filter order", 'SELECT "orders"."id", "orders"."status" FROM "orders" '
        'WHERE ("orders"."status" IN (%s, %s) AND "orders"."user_id" = %s) ORDER BY "orders"."id" ASC',
        ("new", "paid", 17))
    w.q("activerecord star", 'SELECT "users".* FROM "users" WHERE "users"."email" = %s LIMIT %s',
        ("user5@example.com", 1))
    w.q("sqlalchemy labels", "SELECT users.id AS users_id, users.email AS users_email, "
        "users.name AS users_name FROM users WHERE users.email LIKE %(pattern)s ORDER BY users.id",
        {"pattern": "user4%"})
    w.q("hibernate aliases", "select u1_0.id,u1_0.email,u1_0.name from users u1_0 "
        "where u1_0.org_id=%s order by u1_0.id", (4,))
    w.q("any array parameter", "SELECT id, email FROM users WHERE email = ANY(%s) ORDER BY id",
        (["user2@example.com", "user22@example.com", "nobody@example.com"],))
    w.q("binary results", "SELECT id, email, name FROM users WHERE id <= %s ORDER BY id", (3,),
        binary=True)
    w.stream("streamed rows", "SELECT id, status FROM orders WHERE user_id = %s ORDER BY id", (10,))


def prepared(w):
    sql = "SELECT id, email, name FROM users WHERE org_id = %s AND email LIKE %s ORDER BY id"
    for org in (1, 2, 3, 1):
        w.q(f"prepared select org {org}", sql, (org, "user1%"), prepare=True)
    upd = "UPDATE orders SET status = %s WHERE id = %s RETURNING id, status, total"
    for i, status in ((20, "shipped"), (21, "paid"), (22, "new")):
        w.q(f"prepared update {i}", upd, (status, i), prepare=True)
    star = "SELECT * FROM billing.invoices WHERE amt < %s ORDER BY amt, id LIMIT 3"
    for limit in (Decimal("50"), Decimal("100")):
        w.q(f"prepared star {limit}", star, (limit,), prepare=True)
    w.q("sql prepare", "PREPARE by_email(text) AS SELECT id, name FROM users WHERE email = $1")
    w.q("sql execute", "EXECUTE by_email('user33@example.com')")
    w.q("sql deallocate", "DEALLOCATE by_email")


def simple_protocol(w):
    w.client("client cursor select", "SELECT id, email, name FROM users WHERE email = %s",
             ("user12@example.com",))
    w.client("client cursor quoting", "SELECT count(*) FROM users WHERE name = %s OR email = %s",
             ("O'Brien", "it's@example.com"))
    w.client("client cursor update", "UPDATE users SET name = %s WHERE id = %s RETURNING *",
             ("Twelve", 12))
    w.q("multi statement", "SELECT email FROM users WHERE id = 1; "
        "SELECT status, total FROM orders WHERE id = 1; "
        "UPDATE orders SET status = 'paid' WHERE id = 2 RETURNING id, status; "
        "SELECT * FROM billing.invoices WHERE id = 1")
    w.client("client multi statement", "SELECT name FROM users WHERE id = %s; "
             "SELECT amt FROM billing.invoices WHERE id = %s", (2, 2))


def pipelines(w):
    w.pipeline("pipeline", [
        ("SELECT email, name FROM users WHERE id = %s", (30,)),
        ("UPDATE users SET name = %s WHERE id = %s RETURNING email, name", ("Thirty", 30)),
        ("SELECT status, count(*) FROM orders WHERE user_id = %s GROUP BY status ORDER BY status",
         (30,)),
        ("INSERT INTO billing.invoices (order_id, amt, note) VALUES (%s, %s, %s) RETURNING *",
         (30, Decimal("30.30"), "pipelined")),
        ("SELECT o.status, u.email FROM orders o JOIN users u ON u.id = o.user_id "
         "WHERE o.id = %s", (31,)),
    ])
    w.many("executemany returning",
           "INSERT INTO orders (user_id, total, status, created_at) VALUES (%s, %s, %s, %s) "
           "RETURNING id, status, total",
           [(1, Decimal("1.50"), "new", TS), (2, Decimal("2.50"), "paid", TS),
            (3, Decimal("3.50"), "shipped", TS)])


def writes(w):
    w.q("insert returning star",
        "INSERT INTO users (email, name, org_id, created_at) VALUES (%s, %s, %s, %s) RETURNING *",
        ("new1@example.com", "New One", 1, TS))
    w.q("insert returning some", "INSERT INTO users (email, name, org_id, created_at, active) "
        "VALUES ('new2@example.com', 'New Two', 2, %s, false) RETURNING id, email AS mail, name",
        (TS,))
    w.q("insert multi values",
        "INSERT INTO orders (user_id, total, status, created_at) VALUES "
        "(%s, 10.00, 'new', %s), (%s, 20.00, 'new', %s) RETURNING *", (51, TS, 52, TS))
    w.q("insert select", "INSERT INTO billing.invoices (order_id, amt, note) "
        "SELECT id, total, status FROM orders WHERE status = 'shipped' AND id < 20 "
        "ORDER BY id RETURNING id, amt, note")
    w.q("upsert update", "INSERT INTO users (email, name, org_id, created_at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name RETURNING *",
        ("user3@example.com", "Upserted Three", 3, TS))
    w.q("upsert insert", "INSERT INTO users (email, name, org_id, created_at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name RETURNING id, email, name",
        ("upsert@example.com", "Upsert New", 3, TS))
    w.q("upsert where", "INSERT INTO users AS u (email, name, created_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (email) DO UPDATE SET name = u.name || ' & ' || EXCLUDED.name "
        "WHERE u.email LIKE 'user%%' RETURNING u.email, u.name", ("user4@example.com", "Four", TS))
    w.q("upsert nothing", "INSERT INTO users (email, name, created_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (email) DO NOTHING RETURNING id", ("user5@example.com", "ignored", TS))
    w.q("update returning", "UPDATE users SET name = upper(name) WHERE org_id = 2 AND id < 20 "
        "RETURNING id, name, email")
    w.q("update from", "UPDATE orders o SET status = 'vip' FROM users u WHERE u.id = o.user_id "
        "AND u.email = %s RETURNING o.id, o.status, u.email", ("user17@example.com",))
    w.q("update renamed from renamed", "UPDATE users SET name = email WHERE id = 40 "
        "RETURNING name, email")
    w.q("update invoices", "UPDATE billing.invoices SET amt = amt * 2, note = note || ' x2' "
        "WHERE id <= 3 RETURNING id, amt, note")
    w.q("update no rows", "UPDATE orders SET status = 'none' WHERE id < 0")
    w.q("delete returning", "DELETE FROM order_items WHERE order_id IN "
        "(SELECT id FROM orders WHERE status = 'cancelled' AND id < 30) RETURNING order_id, sku")
    w.q("delete returning star", "DELETE FROM billing.invoices WHERE amt < 20 RETURNING *")
    w.q("delete using", "DELETE FROM order_items i USING orders o WHERE o.id = i.order_id "
        "AND o.status = 'vip' RETURNING i.id, o.status")
    w.copy_in("copy in with columns", "COPY users (email, name, org_id) FROM STDIN",
              [("copy1@example.com", "Copy One", 1), ("copy2@example.com", None, 2),
               ("copy3@example.com", "Copy Three", None)])
    w.copy_in_text("copy in csv", "COPY billing.invoices (order_id, amt, note) FROM STDIN (FORMAT csv)",
                   "100,12.34,copied\n101,56.78,\n")
    w.q("normalize copied timestamps", "UPDATE users SET created_at = %s WHERE email LIKE 'copy%%' "
        "RETURNING email, name, org_id", (TS,))
    w.copy_out("copy query out after writes", "COPY (SELECT email, name, org_id, active FROM users "
               "WHERE id > 50 ORDER BY email) TO STDOUT")
    w.copy_out("copy invoices out after writes", "COPY (SELECT order_id, amt, note "
               "FROM billing.invoices WHERE note IS NULL OR note IN ('copied', 'pipelined') "
               "ORDER BY order_id) TO STDOUT")


def transactions(w):
    w.q("begin", "BEGIN")
    w.q("txn update", "UPDATE orders SET status = 'cancelled' WHERE id = 5 RETURNING status")
    w.q("txn read own write", "SELECT id, status FROM orders WHERE id = 5")
    w.q("commit", "COMMIT")
    w.q("after commit", "SELECT id, status FROM orders WHERE id = 5")

    w.q("begin to roll back", "BEGIN")
    w.q("txn delete", "DELETE FROM order_items WHERE order_id = 7 RETURNING id")
    w.q("txn rename email", "UPDATE users SET email = 'gone@example.com' WHERE id = 7 RETURNING email")
    w.q("rollback", "ROLLBACK")
    w.q("after rollback", "SELECT email, (SELECT count(*) FROM order_items WHERE order_id = 7) "
        "FROM users WHERE id = 7")

    w.q("begin savepoints", "BEGIN")
    w.q("sp update a", "UPDATE users SET name = 'A' WHERE id = 8")
    w.q("savepoint", "SAVEPOINT s1")
    w.q("sp update b", "UPDATE users SET name = 'B' WHERE id = 8 RETURNING name")
    w.q("rollback to savepoint", "ROLLBACK TO SAVEPOINT s1")
    w.q("sp read", "SELECT name FROM users WHERE id = 8")
    w.q("savepoint again", "SAVEPOINT s2")
    w.q("sp duplicate email", "INSERT INTO users (email, name, created_at) VALUES (%s, %s, %s)",
        ("user9@example.com", "dup", TS))
    w.q("rollback to savepoint after error", "ROLLBACK TO SAVEPOINT s2")
    w.q("release", "RELEASE SAVEPOINT s1")
    w.q("commit savepoints", "COMMIT")
    w.q("after savepoints", "SELECT id, name FROM users WHERE id IN (8, 9) ORDER BY id")

    w.q("begin failing", "BEGIN")
    w.q("failing txn update", "UPDATE billing.invoices SET amt = 0 WHERE id = 10")
    w.q("division by zero in txn", "SELECT amt / 0 FROM billing.invoices WHERE id = 10")
    w.q("statement in failed txn", "SELECT email FROM users WHERE id = 1")
    w.q("rollback failed", "ROLLBACK")
    w.q("after failed txn", "SELECT id, amt FROM billing.invoices WHERE id = 10")

    try:
        with w.conn.transaction():
            w.q("psycopg transaction insert", "INSERT INTO orders (user_id, total, status, created_at) "
                "VALUES (%s, %s, %s, %s) RETURNING status", (10, Decimal("99.99"), "pending", TS))
            raise psycopg.Rollback()
    except psycopg.Error as e:
        w.emit("psycopg transaction", error(e))
    w.q("after psycopg rollback", "SELECT count(*) FROM orders WHERE status = 'pending'")


def errors(w):
    w.q("unique violation", "INSERT INTO users (email, name, created_at) VALUES (%s, %s, %s)",
        ("user1@example.com", "dup", TS))
    w.q("unique violation on update", "UPDATE users SET email = 'user2@example.com' WHERE id = 3")
    w.client("unique violation simple", "INSERT INTO users (email, created_at) VALUES (%s, %s)",
             ("user11@example.com", TS))
    w.q("division by zero", "SELECT total / 0 FROM orders WHERE id = 1")
    w.q("division by zero renamed", "SELECT amt / (id - id) FROM billing.invoices WHERE id = 5")
    w.q("syntax error", "SELEC email FROM users")
    w.q("syntax error at end", "SELECT email FROM users WHERE")
    w.q("undefined column", "SELECT emial FROM users")
    w.q("undefined table", "SELECT email FROM nosuch_users")
    w.q("bad input", "SELECT id FROM users WHERE id = 'abc'")
    w.q("connection usable after errors", "SELECT count(*), count(email), count(name) FROM users")


def cursors(w):
    w.named_cursor("named cursor", "SELECT id, email, name FROM users WHERE org_id = %s ORDER BY id",
                   (2,), 4)
    w.named_cursor("named cursor star", "SELECT * FROM orders WHERE user_id <= %s ORDER BY id",
                   (2,), 5)


def sql_cursor(w):
    w.q("sql cursor begin", "BEGIN")
    w.q("sql cursor declare", "DECLARE sql_scan CURSOR FOR SELECT orders.id, email, status FROM users "
        "JOIN orders ON orders.user_id = users.id WHERE users.id <= 10 ORDER BY orders.id")
    w.q("sql cursor fetch", "FETCH 3 FROM sql_scan")
    w.q("sql cursor fetch more", "FETCH FORWARD 2 FROM sql_scan")
    w.q("sql cursor close", "CLOSE sql_scan")
    w.q("sql cursor commit", "COMMIT")


def final_state(w):
    w.q("final users", "SELECT id, email, name, org_id, active, created_at FROM users ORDER BY id")
    w.q("final orders", "SELECT id, user_id, total, status, created_at FROM orders ORDER BY id")
    w.q("final items", "SELECT id, order_id, sku, qty, price FROM order_items ORDER BY id")
    w.q("final invoices", "SELECT id, order_id, amt, note FROM billing.invoices ORDER BY id")


def workload(w):
    for part in (reads, orm_styles, prepared, simple_protocol, pipelines, writes,
                 transactions, errors, cursors, sql_cursor, final_state):
        part(w)


AMBIGUOUS = "SELECT email FROM users a JOIN users b USING (id) WHERE id = {}"


def strict(w):
    """Through pgshift with [rewrite] strict = true: ambiguous statements are refused."""
    w.q("ambiguous simple", AMBIGUOUS.format(1))
    w.q("usable after simple refusal", "SELECT email FROM users WHERE id = 1")
    w.q("ambiguous extended", AMBIGUOUS.format("%s"), (2,))
    w.q("usable after extended refusal", "SELECT email FROM users WHERE id = %s", (2,))
    w.q("ambiguous prepared", AMBIGUOUS.format("%s"), (3,), prepare=True)
    w.q("ambiguous in transaction", "BEGIN; " + AMBIGUOUS.format(4))
    w.q("rollback refused transaction", "ROLLBACK")
    w.q("usable at the end", "SELECT name FROM users WHERE id = %s", (5,), prepare=True)


def new_names(w):
    """Through pgshift: the database's own names still work, and DDL is left alone."""
    w.q("new names simple", "SELECT email_address, full_name FROM users WHERE id = 1")
    w.q("new names extended", "SELECT email_address, full_name FROM users WHERE id = %s", (1,))
    w.q("old and new together", "SELECT email, email_address FROM users WHERE id = %s", (2,))
    w.q("new name in where", "SELECT email FROM users WHERE email_address = %s",
        ("user3@example.com",))
    w.q("ddl add column", "ALTER TABLE users ADD COLUMN email2 text")
    w.q("new column readable", "SELECT email2, email FROM users WHERE id = 1")
    w.q("ddl with old name", "CREATE INDEX users_name_idx ON users (name)")
    w.q("ddl with new name", "CREATE INDEX users_full_name_idx ON users (full_name)")
    w.q("ddl rename column", "ALTER TABLE users RENAME COLUMN email2 TO email3")
    w.q("renamed by ddl", "SELECT email3 FROM users WHERE id = 1")


def catalog(w):
    """Names PostgreSQL resolves with the catalog: pgshift must resolve them the same way."""
    sub = "SELECT email FROM users WHERE email IN (SELECT email FROM orders) ORDER BY 1"
    w.q("subquery table has the column", sub)
    w.q("subquery table has the column, extended", sub.replace("ORDER BY 1", "AND id > %s ORDER BY 1"), (0,))
    w.q("subquery table lacks the column",
        "SELECT name FROM users WHERE EXISTS (SELECT 1 FROM order_items WHERE name IS NOT NULL AND order_id = 1) "
        "AND id < 4 ORDER BY id")
    w.q("correlated, inner column", "SELECT id FROM users u WHERE EXISTS "
        "(SELECT 1 FROM orders o WHERE o.user_id = u.id AND email IS NOT NULL) ORDER BY id")
    w.q("aliased columns", "SELECT x.e, x.name FROM users AS x(i, e) WHERE x.i < 3 ORDER BY x.i")
    w.q("set search_path", "SET search_path = other, public")
    w.q("other.users, unqualified", "SELECT id, email, name FROM users ORDER BY id")
    w.q("other.users, extended", "SELECT email FROM users WHERE id = %s", (2,))
    w.q("public.users, qualified", "SELECT email, name FROM public.users WHERE id = 1")
    w.q("write to other.users", "UPDATE users SET name = name || '!' WHERE id = %s RETURNING email, name", (1,))
    w.q("orders still public", "SELECT status FROM orders WHERE id = 1")
    w.q("set in a rolled back transaction",
        "BEGIN; SET search_path = public; SELECT email FROM users WHERE id = 1; ROLLBACK")
    w.q("after the rollback: other again", "SELECT email FROM users WHERE id = 1")
    w.q("set local", "BEGIN; SET LOCAL search_path = public; SELECT email FROM users WHERE id = 2; COMMIT")
    w.q("after set local: other again", "SELECT email FROM users WHERE id = 2")
    w.q("reset search_path", "RESET search_path")
    w.q("public.users again", "SELECT email, name FROM users WHERE id = 3")
    w.q("set and select in one string", "SET search_path TO other; SELECT email FROM users WHERE id = 3")
    w.q("back to public", "SET search_path TO public")
    w.q("public.users once more", "SELECT email FROM users WHERE id = 4")


MODES = {"workload": workload, "strict": strict, "new-names": new_names, "catalog": catalog}


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "workload"
    if mode not in MODES:
        print(f"usage: {sys.argv[0]} [{'|'.join(MODES)}]", file=sys.stderr)
        return 2
    with psycopg.connect(autocommit=True) as conn:
        w = Workload(conn)
        MODES[mode](w)
        print(json.dumps({"end": True, "steps": w.steps}, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
