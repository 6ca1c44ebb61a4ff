"""LISTEN/NOTIFY between two sessions (psycopg 3).

usage: listen_notify.py notify
Prints each notification as "received <channel> <payload length>". Blocks until the
expected notifications arrive (the harness's timeout ends a run that never gets them).
"""

import psycopg

from clientlib import expect_equal, run_scenario


def notify():
    big_payload = "p" * 7000
    with psycopg.connect(autocommit=True) as listener, \
            psycopg.connect(autocommit=True) as notifier:
        listener.execute("LISTEN it_channel")
        listener.execute('LISTEN "Mixed Case"')

        notifier.execute("NOTIFY it_channel, 'hello from the notifier'")
        # Notifications of a rolled-back transaction are never delivered.
        with notifier.transaction(force_rollback=True):
            notifier.execute("NOTIFY it_channel, 'rolled back'")
        notifier.execute("SELECT pg_notify('Mixed Case', %s)", ("\u00fcn\u00efc\u00f8de \u2713",))
        with notifier.transaction():
            notifier.execute("SELECT pg_notify('it_channel', %s)", (big_payload,))
        notifier_pid = notifier.execute("SELECT pg_backend_pid()").fetchone()[0]

        expected = [
            ("it_channel", "hello from the notifier"),
            ("Mixed Case", "\u00fcn\u00efc\u00f8de \u2713"),
            ("it_channel", big_payload),
        ]
        received = []
        for n in listener.notifies():
            print(f"received {n.channel} {len(n.payload)} (pid {n.pid}, notifier {notifier_pid})")
            received.append((n.channel, n.payload))
            if len(received) == len(expected):
                break
        expect_equal(received, expected, "notifications received")

        # The listener's session is still fine for queries.
        expect_equal(listener.execute("SELECT 42").fetchone()[0], 42, "query after notifies")


if __name__ == "__main__":
    run_scenario({"notify": notify})
