"""Encryption negotiation that no driver does, over TLS: raw sockets and Python's ssl.

usage: negotiation_probe.py {ssl-inside-tls|plaintext-with-ssl}
Connects to PGHOST:PGPORT, sends an SSLRequest, expects 'S' and does the TLS
handshake (certificates are not checked), then:
  ssl-inside-tls      sends a second SSLRequest inside TLS;
  plaintext-with-ssl  had sent a StartupMessage in the same write as the SSLRequest.
Expects one FATAL ErrorResponse over TLS, then the end of the connection; prints
"error sqlstate=<C> message=<M>" and "ok <scenario>".
"""

import os
import socket
import ssl
import struct

from clientlib import expect, expect_equal, run_scenario

SSL_REQUEST = struct.pack("!II", 8, 80877103)


def startup_message():
    body = struct.pack("!HH", 3, 0) + b"user\0postgres\0database\0postgres\0\0"
    return struct.pack("!I", len(body) + 4) + body


def read_to_eof(sock):
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def error_fields(data):
    expect(data[:1] == b"E", f"an ErrorResponse, got {data[:40]!r}")
    (length,) = struct.unpack("!I", data[1:5])
    expect_equal(len(data), length + 1, "nothing after the ErrorResponse")
    fields = {}
    for field in data[5:-2].split(b"\0"):
        fields[field[:1].decode()] = field[1:].decode()
    return fields


def negotiate(first_write):
    sock = socket.create_connection((os.environ["PGHOST"], int(os.environ["PGPORT"])), timeout=20)
    sock.sendall(first_write)
    expect_equal(sock.recv(1), b"S", "the answer to the SSLRequest")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(sock)


def report(tls):
    fields = error_fields(read_to_eof(tls))
    expect_equal(fields.get("S"), "FATAL", "severity")
    print(f"error sqlstate={fields.get('C')} message={fields.get('M')}", flush=True)


def ssl_inside_tls():
    tls = negotiate(SSL_REQUEST)
    tls.sendall(SSL_REQUEST)
    report(tls)


def plaintext_with_ssl():
    report(negotiate(SSL_REQUEST + startup_message()))


if __name__ == "__main__":
    run_scenario({"ssl-inside-tls": ssl_inside_tls, "plaintext-with-ssl": plaintext_with_ssl})
