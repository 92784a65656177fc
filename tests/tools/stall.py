#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Stalled clients of the agent's API socket (tests/e2e/apiload.sh).

    stall.py idle SOCKET          connect, send nothing
    stall.py half SOCKET          send half a request, then nothing
    stall.py noread SOCKET HOLD   send a request with a large answer (get
                                  pods), read nothing for HOLD seconds, then
                                  read what is left
    stall.py read SOCKET          the same request, read at once (the
                                  answer's size)

idle and half wait for the agent to close the connection and print
"closed after SECONDS s: FIRST BYTES". noread and read print "received BYTES bytes,
whole|cut". Exit 1 when the agent has not closed within 30 s.
"""
import json
import socket
import sys
import time


def drain(s, limit):
    s.settimeout(limit)
    got = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        got += b
    return got


def main():
    mode, path = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    t0 = time.monotonic()
    if mode == "half":
        s.sendall(b'{"op":"sta')
    if mode in ("idle", "half"):
        try:
            got = drain(s, 30)
        except socket.timeout:
            print("not closed within 30 s")
            return 1
        print(f"closed after {time.monotonic() - t0:.2f} s: {got[:120].decode(errors='replace')}")
        return 0
    if mode in ("noread", "read"):
        s.sendall(b'{"op":"get","what":"pods"}')
        s.shutdown(socket.SHUT_WR)
        if mode == "noread":
            time.sleep(float(sys.argv[3]))
        got = drain(s, 30)
        try:
            json.loads(got)
            whole = "whole"
        except ValueError:
            whole = "cut"
        print(f"received {len(got)} bytes, {whole}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
