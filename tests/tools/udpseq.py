#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A constant, sequence-numbered UDP stream whose datagrams are all replies.

  udpseq.py serve PORT
      waits for one client's hello, then sends it RATE datagrams a second
      for SECONDS (both given by the client), each numbered, then "end N"
      (N: how many it sent) a few times; prints {"sent": N} and exits.
  udpseq.py recv HOST PORT --rate R --seconds S [--keepalive-ms K]
      says hello to HOST:PORT (again every 200 ms until data comes), counts
      what arrives, prints one JSON object: sent (the server's count),
      received (distinct numbers), lost, duplicates, reordered (arrived
      after a higher number), max_gap_ms (longest silence between two
      arrivals), ended (the end marker came). With --keepalive-ms the client
      sends a datagram every K ms while it receives (without, it sends
      nothing after the stream starts).

Every datagram the server sends is a reply on the flow the client's hello
started: with the client's ingress closed by policy, each one passes only on
that flow's connection-tracking entry. Exit 0 when the stream ended with
nothing lost, 1 otherwise, 2 on usage errors.
"""
import json
import socket
import struct
import sys
import time

HDR = struct.Struct("!4sQ")
MAGIC = b"SEQ1"
PAD = b"\0" * 48


def serve(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    s.bind(("0.0.0.0", port))
    print("ready", file=sys.stderr, flush=True)
    while True:
        data, peer = s.recvfrom(2048)
        fields = data.split()
        if len(fields) == 3 and fields[0] == b"hello":
            rate, seconds = int(fields[1]), float(fields[2])
            break
    s.setblocking(False)
    sent, t0 = 0, time.monotonic()
    total = int(rate * seconds)
    while sent < total:
        due = min(total, int((time.monotonic() - t0) * rate) + 1)
        while sent < due:
            try:
                s.sendto(HDR.pack(MAGIC, sent) + PAD, peer)
            except BlockingIOError:
                break  # the socket's buffer is full: counted as not sent yet
            sent += 1
        try:
            while True:  # hellos and keepalives: only read, never answered
                s.recvfrom(2048)
        except BlockingIOError:
            pass
        time.sleep(0.0005)
    for _ in range(20):
        s.sendto(b"end %d" % sent, peer)
        time.sleep(0.01)
    print(json.dumps({"sent": sent}), flush=True)


def recv(host, port, rate, seconds, keepalive_ms):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.connect((host, port))
    # Woken at least as often as a keepalive is due.
    s.settimeout(min(0.2, keepalive_ms / 1000.0) if keepalive_ms else 0.2)
    seen = set()
    top, dups, reordered, sent, ended = -1, 0, 0, None, False
    last, max_gap = None, 0.0
    deadline = time.monotonic() + seconds + 10
    next_keepalive = 0.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        if not seen and now >= next_keepalive:
            s.send(b"hello %d %s" % (rate, str(seconds).encode()))
            next_keepalive = now + 0.2
        elif seen and keepalive_ms and now >= next_keepalive:
            s.send(b"keepalive")
            next_keepalive = now + keepalive_ms / 1000.0
        try:
            data = s.recv(2048)
        except socket.timeout:
            continue
        except ConnectionRefusedError:
            continue  # the server is not up yet
        now = time.monotonic()
        if data.startswith(b"end "):
            sent, ended = int(data.split()[1]), True
            break
        if len(data) < HDR.size:
            continue
        magic, seq = HDR.unpack_from(data)
        if magic != MAGIC:
            continue
        if last is not None:
            max_gap = max(max_gap, now - last)
        last = now
        if seq in seen:
            dups += 1
            continue
        seen.add(seq)
        if seq < top:
            reordered += 1
        top = max(top, seq)
    out = {"sent": sent, "received": len(seen),
           "lost": (sent - len(seen)) if sent is not None else None,
           "duplicates": dups, "reordered": reordered,
           "max_gap_ms": round(max_gap * 1000, 1), "ended": ended}
    print(json.dumps(out), flush=True)
    return 0 if ended and out["lost"] == 0 else 1


def main(argv):
    if len(argv) == 3 and argv[1] == "serve":
        serve(int(argv[2]))
        return 0
    if len(argv) >= 4 and argv[1] == "recv":
        opts = {"--rate": "2000", "--seconds": "10", "--keepalive-ms": "0"}
        rest = argv[4:]
        while rest:
            if rest[0] not in opts or len(rest) < 2:
                break
            opts[rest[0]] = rest[1]
            rest = rest[2:]
        if not rest:
            return recv(argv[2], int(argv[3]), int(opts["--rate"]),
                        float(opts["--seconds"]), int(opts["--keepalive-ms"]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
