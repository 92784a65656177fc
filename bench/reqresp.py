#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Request/response latency over one TCP connection (bench/bandwidth.sh).

  reqresp.py serve HOST PORT
  reqresp.py client HOST PORT SECONDS INTERVAL_MS

The client sends a 64-byte request every INTERVAL_MS (not back to back:
a request/response flow such as health checks or RPCs sharing a link with
bulk traffic), the server echoes it, and the client prints one JSON line:
{"requests", "answered", "p50_us", "p99_us", "max_us"}. A request still
unanswered when the next one is due is waited for (TCP keeps order), so a
loss shows up as that request's retransmission delay.
"""
import json
import socket
import sys
import time

SIZE = 64


def serve(host, port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(8)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    return buf


def percentile(sorted_values, p):
    # nearest rank, as bench/run.sh's percentile()
    if not sorted_values:
        return 0
    i = max(1, int(p / 100 * len(sorted_values) + 0.999999))
    return sorted_values[i - 1]


def client(host, port, seconds, interval_ms):
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rtts = []
    interval = interval_ms / 1000.0
    end = time.monotonic() + seconds
    next_send = time.monotonic()
    sent = 0
    while time.monotonic() < end:
        now = time.monotonic()
        if now < next_send:
            time.sleep(next_send - now)
        msg = sent.to_bytes(8, "big") + b"x" * (SIZE - 8)
        t0 = time.monotonic()
        sock.sendall(msg)
        sent += 1
        if recv_exact(sock, SIZE) != msg:
            raise ValueError("wrong echo for request %d" % (sent - 1))
        rtts.append((time.monotonic() - t0) * 1e6)
        next_send = max(next_send + interval, time.monotonic())
    sock.close()
    rtts.sort()
    print(json.dumps({"requests": sent, "answered": len(rtts),
                      "p50_us": round(percentile(rtts, 50), 1),
                      "p99_us": round(percentile(rtts, 99), 1),
                      "max_us": round(rtts[-1] if rtts else 0, 1)}), flush=True)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 6 and sys.argv[1] == "client":
        client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
