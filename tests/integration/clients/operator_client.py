"""The operator interface from a driver and over HTTP.

usage: operator_client.py SCENARIO ARGS...

The client connection (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD) is the
admin console's where a scenario says so, else pgshift's ordinary address.

Scenarios:
  shows HTTP_BASE        psycopg 3 on the admin console: every SHOW command gives
                         rows with the expected columns; each GET /api/<what> has
                         the same content (the same keys, rows and columns; the
                         same values where they cannot change between the two reads).
  http_auth HTTP_BASE TOKEN
                         POSTs without the token, or with a wrong one, get 401 and
                         change nothing; with the token, clear-diverged and a dry
                         run answer 200; an unknown path is 404.
  fetch URL FILE         saves the body of GET URL to FILE.
  renamed HANDSHAKE_DIR  an ordinary session: reads users.email_address, says it is
                         ready, waits for "go" (the test adds a rename rule and
                         reloads meanwhile), then reads users.email on the same
                         connection, which must now be rewritten.
"""

import json
import urllib.error
import urllib.request

import psycopg

from clientlib import expect, expect_equal, handshake, run_scenario

# SHOW command -> the columns of its rows (None: an (item, value) table).
SHOWS = {
    "status": None,
    "sessions": ["id", "client", "user", "database", "state", "server", "transaction", "age_s", "statements",
                 "last_statement", "state_for_s", "holds"],
    "shadow": None,
    "mismatches": ["fingerprint", "statement", "compared", "mismatched", "last_reason", "last_seen"],
    "rules": ["rule", "table", "from", "to", "renamed_on", "phase"],
    "config": ["setting", "value", "reloadable"],
    "cutover": None,
    "version": ["version"],
}

# Items whose values cannot change between a SHOW and the GET that follows it.
STABLE = {
    "status": ["version", "phase", "serving", "receives mirrored writes", "rename_rules", "config_version"],
    "shadow": ["mirror", "target", "diverged"],
    "cutover": ["phase", "serving", "epoch", "paused"],
}


def http(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def get_json(url):
    status, body = http("GET", url)
    expect_equal(status, 200, f"GET {url}: {body}")
    return json.loads(body)


def shows(base):
    with psycopg.connect(autocommit=True) as conn:
        for what, columns in SHOWS.items():
            cur = conn.execute(f"SHOW {what.upper()}")
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
            api = get_json(f"{base}/api/{what}")
            if columns is None:
                expect_equal(names, ["item", "value"], f"SHOW {what} columns")
                items = {r[0]: r[1] for r in rows}
                expect(items, f"SHOW {what} has rows")
                expect(isinstance(api, dict), f"/api/{what} is an object")
                expect_equal(sorted(api.keys()), sorted(items.keys()), f"/api/{what} keys")
                for k in STABLE.get(what, []):
                    if k in items:
                        expect_equal(api[k], items[k], f"/api/{what} {k}")
            else:
                expect_equal(names, columns, f"SHOW {what} columns")
                expect(isinstance(api, list), f"/api/{what} is an array")
                for row in api:
                    expect_equal(list(row.keys()), columns, f"/api/{what} row keys")
                if what in ("rules", "version", "mismatches"):
                    expect_equal([[row[c] for c in columns] for row in api], [list(r) for r in rows],
                                 f"/api/{what} rows")
                if what == "config":
                    shown = {r[0]: r[1] for r in rows}
                    expect_equal({row["setting"]: row["value"] for row in api}, shown, "/api/config")
                if what == "sessions":
                    # This connection is among them, as an admin console session.
                    expect(any(r[4] == "admin console" for r in rows), "SHOW SESSIONS lists the console")
                    expect(any(row["state"] == "admin console" for row in api), "/api/sessions lists the console")
            print(f"SHOW {what}: {len(rows)} row(s), /api/{what} the same")


def http_auth(base, token):
    for path, body in [("/api/clear-diverged", None), ("/api/reload", None),
                       ("/api/cutover", {"action": "cutover"}), ("/api/cutover", {"action": "dry-run"})]:
        for given in (None, "not-the-token"):
            status, text = http("POST", base + path, body if body is not None else {}, given)
            expect_equal(status, 401, f"POST {path} with token {given!r}: {text}")
    status, text = http("POST", base + "/api/clear-diverged", {}, token)
    expect_equal(status, 200, f"POST /api/clear-diverged with the token: {text}")
    expect_equal(json.loads(text)["ok"], True, "clear-diverged answer")
    status, text = http("POST", base + "/api/cutover", {"action": "dry-run"}, token)
    expect_equal(status, 200, f"POST /api/cutover dry-run: {text}")
    checks = json.loads(text)["result"]
    expect(any(c["check"] == "cutover would start" for c in checks), f"dry-run rows: {checks}")
    status, text = http("POST", base + "/api/cutover", {"action": "sideways"}, token)
    expect_equal(status, 400, f"unknown action: {text}")
    status, text = http("POST", base + "/api/cutover", {"action": "abort"}, token)
    expect_equal(status, 409, f"abort with no switch running: {text}")
    status, text = http("GET", base + "/api/nothing")
    expect_equal(status, 404, "GET /api/nothing")
    status, text = http("GET", base + "/api/cutover")
    expect_equal(status, 200, "GET /api/cutover")
    expect_equal(json.loads(text)["phase"], "shadowing", "nothing was switched")
    print("POST without a valid token: 401; with it: 200")


def fetch(url, path):
    status, body = http("GET", url)
    expect_equal(status, 200, f"GET {url}")
    with open(path, "w") as f:
        f.write(body)


def renamed(directory):
    with psycopg.connect(autocommit=True) as conn:
        expect_equal(conn.execute("SELECT email_address FROM users WHERE id = 1").fetchone()[0], "a@example.com",
                     "before the reload")
        handshake(directory, "renamed")
        cur = conn.execute("SELECT email FROM users WHERE id = 1")
        expect_equal(cur.description[0].name, "email", "the column name the application asked for")
        expect_equal(cur.fetchone()[0], "a@example.com", "the old name, rewritten after the reload")
        print("the same session's next statement used the new rule")


if __name__ == "__main__":
    run_scenario({"shows": shows, "http_auth": http_auth, "fetch": fetch, "renamed": renamed})
