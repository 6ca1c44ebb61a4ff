#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/<target>/ from the project's test data.

    tests/fuzz/make_corpus.py

rewrite and mismatch_log take the SQL of every case in tests/rewrite/corpus/*.toml,
config the TOML examples of README.md and the bad cases of tests/config/config_test.cpp;
the protocol targets get message streams built here like the unit tests build them.
Files are named by content hash, so running it again only adds what is new. Inputs
the fuzzers found (crashes fixed, new coverage worth keeping) are added by hand.
"""
import hashlib
import pathlib
import re
import struct
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fuzz" / "corpus"


def put(target, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def msg(t, body=b""):
    return t + struct.pack("!I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def rewrite_sql():
    for f in sorted((ROOT / "tests" / "rewrite" / "corpus").glob("*.toml")):
        for case in tomllib.loads(f.read_text()).get("case", []):
            yield case["sql"].encode()


def frames():
    fe = msg(b"Q", cstr("SELECT 1")) + msg(b"P", cstr("s1") + cstr("SELECT $1") + struct.pack("!HI", 1, 23))
    fe += msg(b"B", cstr("") + cstr("s1") + struct.pack("!HHI", 0, 1, 1) + b"7" + struct.pack("!H", 0))
    fe += msg(b"D", b"P" + cstr("")) + msg(b"E", cstr("") + struct.pack("!I", 0)) + msg(b"S") + msg(b"C", b"S" + cstr("s1"))
    fe += msg(b"d", b"1\t2\n") + msg(b"c") + msg(b"f", cstr("oops")) + msg(b"H") + msg(b"p", cstr("secret")) + msg(b"X")
    yield fe
    be = msg(b"R", struct.pack("!I", 0)) + msg(b"S", cstr("TimeZone") + cstr("UTC")) + msg(b"K", struct.pack("!II", 42, 7))
    be += msg(b"Z", b"I") + msg(b"T", struct.pack("!H", 1) + cstr("a") + struct.pack("!IhIhih", 0, 0, 23, 4, -1, 0))
    be += msg(b"D", struct.pack("!HI", 1, 1) + b"1") + msg(b"C", cstr("SELECT 1")) + msg(b"1") + msg(b"2") + msg(b"n")
    be += msg(b"E", b"SERROR\0VERROR\0C42P01\0Mno such table\0\0") + msg(b"N", b"SNOTICE\0Mhi\0\0")
    be += msg(b"A", struct.pack("!I", 1) + cstr("ch") + cstr("x")) + msg(b"G", b"\0" + struct.pack("!H", 0)) + msg(b"Z", b"T")
    yield be
    yield msg(b"Q", b"x" * 20000)  # larger than a small message
    yield b"Q\0\0\0"  # a cut header


def startups():
    def startup(params, minor=0):
        body = struct.pack("!HH", 3, minor) + b"".join(cstr(k) + cstr(v) for k, v in params) + b"\0"
        return struct.pack("!I", len(body) + 4) + body
    yield startup([("user", "app"), ("database", "app"), ("application_name", "psql")])
    yield startup([("user", "app"), ("_pq_.x", "1")], minor=2)
    yield struct.pack("!II", 8, 80877103)
    yield struct.pack("!II", 8, 80877104)
    yield struct.pack("!IIII", 16, 80877102, 1234, 5678)
    yield struct.pack("!II", 8, 0x00020000)


def auth():
    r = lambda code, data=b"": msg(b"R", struct.pack("!I", code) + data)
    nonce = "rOprNGfwEbeRWgbNEkqO"
    first = f"r={nonce}%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".encode()
    yield r(0)
    yield r(3) + r(0)
    yield r(5, b"\x01\x02\x03\x04") + r(0)
    yield r(10, b"SCRAM-SHA-256\0\0") + r(11, first) + r(12, b"v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=") + r(0)
    yield r(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0") + r(11, first) + msg(b"E", b"SFATAL\0C28P01\0Mpassword authentication failed\0\0")
    yield r(10, b"SCRAM-SHA-256-PLUS\0\0")
    yield msg(b"E", b"SFATAL\0Mno sqlstate\0\0")


def compares():
    # type index (see compare.cpp's kTypes), flags, value a, NUL, value b
    pairs = [(5, "1.50", "1.5"), (5, "NaN", "nan"), (4, "-12", "-12"), (7, "1e+20", "1.0000001e+20"), (8, "Infinity", "inf"),
             (0, "t", "true"), (1, "\\x00ff", "\\x00FF"), (6, '{"a": 1}', '{"a":1}'), (16, '{"b":2, "a":1}', '{"a": 1, "b": 2}'),
             (13, "2026-11-21 08:12:22.2+00", "2026-11-21 09:12:22.2+01"), (12, "2026-01-01 00:00:00", "infinity"),
             (10, "2026-02-29", "2026-03-01"), (11, "24:00:00", "00:00:00"), (14, "12:00:00+05:30", "06:30:00+00"),
             (15, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc999c0b4ef8bb6d6bb9bd380a11"), (9, "ab  ", "ab"), (17, "x", "x ")]
    for t, a, b in pairs:
        for flags in (0, 1):
            yield bytes([t, flags]) + a.encode() + b"\0" + b.encode()


def readme_tomls():
    text = (ROOT / "README.md").read_text()
    for block in re.findall(r"```toml\n(.*?)```", text, re.S):
        yield block.encode()
        if "[primary]" not in block:
            yield ('[primary]\nhost = "db"\nport = 5432\n' + block).encode()


def config_test_cases():
    text = (ROOT / "tests" / "config" / "config_test.cpp").read_text()
    for s in re.findall(r'BadCase\{(?:PRIMARY )?"((?:[^"\\]|\\.)*)"', text):
        yield s.encode().decode("unicode_escape").encode()


def main():
    for sql in rewrite_sql():
        put("rewrite", b"\x0f" + sql)
        put("mismatch_log", sql + b"\0'param'\0\x00\x01")
    put("rewrite", b"\x1f" + b"INSERT INTO users (email, name) VALUES ('a', 'b')")
    # With the catalog (bit 5) and capture (bit 6): writes that are made exact or not.
    for sql in (b"INSERT INTO users (email, name) VALUES ('a', 'b') RETURNING id",
                b"UPDATE orders SET total = random() WHERE id = 3",
                b"DELETE FROM events WHERE r < 0.5",
                b"SELECT email FROM users WHERE email IN (SELECT email FROM orders)",
                b"SET search_path = other, public; SELECT email FROM users",
                b"INSERT INTO audited VALUES (1, now())"):
        put("rewrite", b"\x2f" + sql)
        put("rewrite", b"\x6f" + sql)
    put("rewrite", b"\x1f" + b"UPDATE users SET email = 'x' WHERE id = 1")
    for f in frames():
        put("frame", f)
    for s in startups():
        put("startup", s)
    for a in auth():
        put("client_auth", a)
    for c in compares():
        put("compare", c)
    for t in readme_tomls():
        put("config", t)
    for t in config_test_cases():
        put("config", t)
        put("config", b'[primary]\nhost = "db"\nport = 5432\n' + t)


if __name__ == "__main__":
    main()
