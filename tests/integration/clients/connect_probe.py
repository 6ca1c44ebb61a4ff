"""Connects with asyncpg (its own protocol implementation, unlike libpq) and reports.

usage: connect_probe.py connect
On success prints "connected as <user> ssl=<true|false>"; on failure prints
"refused sqlstate=<SQLSTATE> message=<server message>" and exits 1.
"""

import sys

import asyncpg

from clientlib import run_scenario


async def connect():
    try:
        conn = await asyncpg.connect(timeout=20)
    except asyncpg.PostgresError as e:
        print(f"refused sqlstate={e.sqlstate} message={e}", flush=True)
        sys.exit(1)
    try:
        user = await conn.fetchval("SELECT current_user")
        ssl = await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        print(f"connected as {user} ssl={str(ssl).lower()}")
    finally:
        await conn.close()


if __name__ == "__main__":
    run_scenario({"connect": connect})
