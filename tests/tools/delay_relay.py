#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A wire with a known delay, for tests/e2e/flows-rtt.sh.

Relays IPv4 frames between two interfaces of one network namespace with
packet sockets: OUTER (a pod's eth0, which holds no address) and INNER (a
veth to the namespace where the pod's server really runs). Frames from
OUTER reach INNER after --delay-ms (held, then sent in order: a FIFO, the
way a slow link delays them); frames from INNER go out of OUTER at once.
MACs are rewritten for each side: INNER frames get the peer's MAC
(--inner-peer-mac), OUTER frames the MAC that OUTER's frames came from.

--drop-data N: the first N frames from OUTER that carry TCP payload are
dropped, once each (a lost segment, for the retransmission test).

Prints "ready" once both sockets are bound; runs until killed.
"""
import argparse
import heapq
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4


def mac(s):
    return bytes(int(b, 16) for b in s.split(":"))


def own_mac(ifname):
    with open(f"/sys/class/net/{ifname}/address") as f:
        return mac(f.read().strip())


def tcp_payload(frame):
    """Bytes of TCP payload in an Ethernet/IPv4 frame (0 when not TCP)."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return 0
    ihl = (frame[14] & 0x0F) * 4
    tot = struct.unpack("!H", frame[16:18])[0]
    if len(frame) < 14 + ihl + 13:
        return 0
    doff = (frame[14 + ihl + 12] >> 4) * 4
    return max(0, tot - ihl - doff)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outer")
    ap.add_argument("inner")
    ap.add_argument("--inner-peer-mac", required=True)
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("--drop-data", type=int, default=0)
    a = ap.parse_args()

    socks = {}
    for name in (a.outer, a.inner):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        s.setblocking(False)
        socks[name] = s
    outer, inner = socks[a.outer], socks[a.inner]
    outer_mac, inner_mac = own_mac(a.outer), own_mac(a.inner)
    peer_mac = mac(a.inner_peer_mac)
    gateway_mac = None
    delay = a.delay_ms / 1000.0
    held = []  # (due, n, frame) for INNER
    n = 0
    drops_left = a.drop_data
    print("ready", flush=True)
    while True:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else None
        ready, _, _ = select.select([outer, inner], [], [], timeout)
        for s in ready:
            while True:
                try:
                    frame, addr = s.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING or frame[12:14] != b"\x08\x00":
                    continue
                if s is outer:
                    gateway_mac = frame[6:12]
                    if drops_left and tcp_payload(frame):
                        drops_left -= 1
                        continue
                    n += 1
                    heapq.heappush(held, (time.monotonic() + delay, n,
                                          peer_mac + inner_mac + frame[12:]))
                elif gateway_mac:
                    outer.send(gateway_mac + outer_mac + frame[12:])
        now = time.monotonic()
        while held and held[0][0] <= now:
            inner.send(heapq.heappop(held)[2])


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
