#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The flow hash of include/sluice/lbhash.h (lookup3 hashword over
{saddr, daddr, sport << 16 | dport, proto}, host-order values), for e2e
tests that check which backend a node's Maglev table gives a flow.

  lbhash.py SADDR DADDR SPORT DPORT PROTO [SEED]   print the hash (decimal)
  lbhash.py --self-test                            the C side's known answers
"""
import ipaddress
import sys

M32 = 0xffffffff
SEED_DEFAULT = 0x736c6963


def rol(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


def mix(a, b, c):
    a = (a - c) & M32; a ^= rol(c, 4); c = (c + b) & M32
    b = (b - a) & M32; b ^= rol(a, 6); a = (a + c) & M32
    c = (c - b) & M32; c ^= rol(b, 8); b = (b + a) & M32
    a = (a - c) & M32; a ^= rol(c, 16); c = (c + b) & M32
    b = (b - a) & M32; b ^= rol(a, 19); a = (a + c) & M32
    c = (c - b) & M32; c ^= rol(b, 4); b = (b + a) & M32
    return a, b, c


def final(a, b, c):
    c ^= b; c = (c - rol(b, 14)) & M32
    a ^= c; a = (a - rol(c, 11)) & M32
    b ^= a; b = (b - rol(a, 25)) & M32
    c ^= b; c = (c - rol(b, 16)) & M32
    a ^= c; a = (a - rol(c, 4)) & M32
    b ^= a; b = (b - rol(a, 14)) & M32
    c ^= b; c = (c - rol(b, 24)) & M32
    return a, b, c


def hash4(w0, w1, w2, w3, seed):
    a = b = c = (0xdeadbeef + (4 << 2) + seed) & M32
    a = (a + w0) & M32
    b = (b + w1) & M32
    c = (c + w2) & M32
    a, b, c = mix(a, b, c)
    a = (a + w3) & M32
    a, b, c = final(a, b, c)
    return c


def flow_hash4(saddr, daddr, sport, dport, proto, seed=SEED_DEFAULT):
    return hash4(int(ipaddress.IPv4Address(saddr)), int(ipaddress.IPv4Address(daddr)),
                 (sport << 16 | dport) & M32, proto, seed)


KNOWN = [  # tests/unit/test_maglev.c test_flow_hash_known_answers
    ("10.0.0.1", "10.96.0.10", 40000, 80, 6, SEED_DEFAULT, 0x89db10a7),
    ("192.168.1.2", "10.96.0.1", 12345, 443, 6, SEED_DEFAULT, 0xe4bc6ad0),
    ("10.244.1.5", "10.96.0.10", 53000, 53, 17, SEED_DEFAULT, 0x91f1985c),
    ("0.0.0.0", "0.0.0.0", 0, 0, 0, 0, 0xbaf9078c),
    ("255.255.255.255", "255.255.255.255", 65535, 65535, 255, 0xffffffff, 0xaac15888),
]


def main():
    if sys.argv[1:] == ["--self-test"]:
        bad = [k for k in KNOWN if flow_hash4(*k[:6]) != k[6]]
        for k in bad:
            print("wrong hash for", k, hex(flow_hash4(*k[:6])), file=sys.stderr)
        return 1 if bad else 0
    if len(sys.argv) not in (6, 7):
        print(__doc__, file=sys.stderr)
        return 2
    seed = int(sys.argv[6], 0) if len(sys.argv) == 7 else SEED_DEFAULT
    print(flow_hash4(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                     int(sys.argv[5]), seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
