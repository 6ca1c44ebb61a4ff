"""Shared helpers for the integration-test clients.

Each client script runs one named scenario (argv[1]). Connection settings come from
the standard libpq environment variables (PGHOST, PGPORT, PGUSER, PGDATABASE,
PGPASSWORD, PGSSLMODE) set by the C++ harness; psycopg and asyncpg both read them.
A scenario prints what it observed and "ok <scenario>" at the end; any failed
expectation or exception exits non-zero.
"""

import asyncio
import inspect
import os
import sys
import time
import traceback


class ExpectationFailed(Exception):
    pass


def expect_equal(actual, expected, what):
    if actual != expected:
        raise ExpectationFailed(f"{what}: expected {expected!r}, got {actual!r}")


def fail(what):
    raise ExpectationFailed(what)


def expect(condition, what):
    if not condition:
        raise ExpectationFailed(what)


def handshake(directory, name):
    """Says the client is ready (DIRECTORY/NAME.ready), then waits at most 60 s for
    DIRECTORY/go: the test changes servers or settings meanwhile."""
    open(os.path.join(directory, name + ".ready"), "w").close()
    go = os.path.join(directory, "go")
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            fail("no go from the test within 60 s")
        time.sleep(0.02)


def run_scenario(scenarios, argv=None):
    """Runs scenarios[argv[1]] (a function or a coroutine function) and reports."""
    argv = sys.argv if argv is None else argv
    if len(argv) < 2 or argv[1] not in scenarios:
        print(f"usage: {argv[0]} {{{'|'.join(scenarios)}}} [args...]", file=sys.stderr)
        sys.exit(2)
    name, args = argv[1], argv[2:]
    try:
        scenario = scenarios[name]
        if inspect.iscoroutinefunction(scenario):
            asyncio.run(scenario(*args))
        else:
            scenario(*args)
    except ExpectationFailed as e:
        print(f"FAILED {name}: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        print(f"FAILED {name}: unexpected exception", file=sys.stderr)
        sys.exit(1)
    print(f"ok {name}", flush=True)
