#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""forge.py: the attacker's and the victim's tools for tests/security.

Standard library only. Packets are built here byte by byte, so a test can
send what no well-behaved stack would: a forged source, a VXLAN frame whose
inner source is somebody else's pod, a later fragment whose first never
came, an ICMP error about someone else's flow.

  forge.py send [options]      build one packet and send it COUNT times
  forge.py listen [options]    count what arrives; the counts go to --out
  forge.py echo [options]      one UDP datagram of a given size, echoed whole?
  forge.py talk [options]      a well-behaved UDP client: whose replies come back?

send, what is built (innermost first):
  --proto udp|tcp|icmp         L4 (default udp)
  --src A --dst B              IPv4 addresses (the forged ones go here)
  --sport N --dport N          UDP/TCP ports (default 40000 -> 8081)
  --tcp-flags S|SA|A|R|F...    TCP flags (default S)
  --icmp-type T --icmp-code C  ICMP (default 8/0, echo; --icmp-id for echo)
  --quote SRC:SPORT,DST:DPORT,PROTO
                               ICMP error body: the IPv4 header and first
                               8 bytes of the packet it is about
  --payload N                  payload bytes (default 16)
  --ip-id N --frag-offset N --more-frags
                               IPv4 fragment fields (offset in bytes,
                               multiple of 8); with --frag-offset > 0 the
                               packet carries payload only, no L4 header
  --ttl N
  --vxlan-to NODE              wrap the packet in VXLAN (VNI --vni, default
                               1; UDP port --vxlan-port, default 8472) sent
                               to NODE; inner Ethernet from --inner-eth-src/
                               --inner-eth-dst (default zero MACs)
  --outer-src A                the VXLAN packet's outer source (default: a
                               normal UDP socket, i.e. the sender's own
                               address; with it, a raw socket)
how it leaves:
  default                      a raw IPv4 socket (IP_HDRINCL): the kernel
                               routes it, the source is whatever was built
  --iface IF --eth-dst MAC [--eth-src MAC]
                               AF_PACKET on IF with this Ethernet header
  --count N --interval-ms M    repeat (default 1, 10 ms)

listen: --udp PORT and --tcp PORT (repeatable), --raw PROTO[:PORT]
(repeatable), --out FILE. Every received datagram and accepted connection
is counted; --raw counts every IPv4 packet of PROTO (tcp, udp, icmp) that
reaches this namespace's stack, to PORT when given (a forged TCP segment
never completes a handshake, so "tcp" would not count it). --echo sends
each UDP datagram back to its sender. --frags IF counts the IPv4 fragments
that arrive on interface IF, per source, before the stack reassembles
(raw sockets only see whole datagrams). FILE holds one JSON object
{"udp": N, "tcp": N, "raw": {"tcp:8080": N, ..}, "from": [..first 20
senders..], "udp_sizes": [..first 20 datagram sizes..], "frags": {SRC:
N, ..}, "quoted": [..for the first 20 ICMP errors --raw counted,
"SRC:SPORT" of the packet each quotes..]}, rewritten on each event, and
exists (zeros) once the sockets listen. Runs until killed.

echo: --dst B --dport N [--sport N] --size N [--timeout-ms M]: send one
UDP datagram of N bytes (fragmented by the stack when over the MTU) and
wait for it to come back; prints the size that came back and succeeds only
when the whole datagram did.

talk: --bind PORT (0: the kernel picks one) --dst ADDR --dport PORT --tag T
--count N --interval-ms M --out FILE [--port-file FILE]. Sends N datagrams
"T-i" from one UDP socket to an echo server and counts the replies that
carry its own tag and those that carry another's (somebody else's replies
delivered to this socket); writes {"port": P, "own": N, "other": N} to FILE
when done (--port-file: P as soon as the socket is bound).
"""
import argparse
import json
import os
import select
import socket
import struct
import sys
import time

ETH_P_IP = 0x0800
PROTOS = {"icmp": 1, "tcp": 6, "udp": 17}
TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ident=0, frag_off=0, more=False, ttl=64, tot_len=None):
    flags_frag = (frag_off // 8) | (0x2000 if more else 0)
    length = tot_len if tot_len is not None else 20 + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, ident, flags_frag, ttl, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + payload


def pseudo(src, dst, proto, length):
    return struct.pack("!4s4sBBH", socket.inet_aton(src), socket.inet_aton(dst), 0, proto, length)


def udp(src, dst, sport, dport, payload):
    h = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    c = csum(pseudo(src, dst, 17, 8 + len(payload)) + h + payload) or 0xFFFF
    return h[:6] + struct.pack("!H", c) + payload


def tcp(src, dst, sport, dport, flags, payload, seq=1000, ack=0):
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    c = csum(pseudo(src, dst, 6, len(h) + len(payload)) + h + payload)
    return h[:16] + struct.pack("!H", c) + h[18:] + payload


def icmp(itype, code, rest, payload):
    h = struct.pack("!BBH4s", itype, code, 0, rest)
    c = csum(h + payload)
    return h[:2] + struct.pack("!H", c) + h[4:] + payload


def parse_quote(text):
    """SRC:SPORT,DST:DPORT,PROTO -> the quoted packet's IPv4 header + 8 bytes."""
    a, b, proto = text.split(",")
    src, sport = a.rsplit(":", 1)
    dst, dport = b.rsplit(":", 1)
    p = PROTOS[proto]
    l4 = struct.pack("!HHHH", int(sport), int(dport), 8 + 32, 0) if p == 17 else \
        struct.pack("!HHI", int(sport), int(dport), 1000)
    return ipv4(src, dst, p, l4, tot_len=20 + 8 + 32)


def build_l4(o):
    payload = b"F" * o.payload
    proto = PROTOS[o.proto]
    if o.frag_offset:
        return proto, payload
    if proto == 17:
        return proto, udp(o.src, o.dst, o.sport, o.dport, payload)
    if proto == 6:
        flags = sum(TCP_FLAGS[c] for c in o.tcp_flags)
        return proto, tcp(o.src, o.dst, o.sport, o.dport, flags, payload)
    if o.quote:
        return proto, icmp(o.icmp_type, o.icmp_code, b"\0\0" + struct.pack("!H", o.mtu),
                           parse_quote(o.quote))
    return proto, icmp(o.icmp_type, o.icmp_code, struct.pack("!HH", o.icmp_id, 1), payload)


def mac(text):
    return bytes(int(x, 16) for x in text.split(":"))


def cmd_send(o):
    proto, l4 = build_l4(o)
    pkt = ipv4(o.src, o.dst, proto, l4, o.ip_id, o.frag_offset, o.more_frags, o.ttl)
    if o.vxlan_to:
        inner = mac(o.inner_eth_dst) + mac(o.inner_eth_src) + struct.pack("!H", ETH_P_IP) + pkt
        vx = struct.pack("!II", 0x08000000, o.vni << 8) + inner
        if not o.outer_src:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for _ in range(o.count):
                s.sendto(vx, (o.vxlan_to, o.vxlan_port))
                time.sleep(o.interval_ms / 1000)
            return 0
        outer_udp = udp(o.outer_src, o.vxlan_to, 40000 + (o.sport % 20000), o.vxlan_port, vx)
        pkt = ipv4(o.outer_src, o.vxlan_to, 17, outer_udp, ttl=64)
        dst = o.vxlan_to
    else:
        dst = o.dst
    if o.iface:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((o.iface, 0))
        src_mac = mac(o.eth_src) if o.eth_src else s.getsockname()[4]
        frame = mac(o.eth_dst) + src_mac + struct.pack("!H", ETH_P_IP) + pkt
        for _ in range(o.count):
            s.send(frame)
            time.sleep(o.interval_ms / 1000)
        return 0
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    for _ in range(o.count):
        s.sendto(pkt, (dst, 0))
        time.sleep(o.interval_ms / 1000)
    return 0


def quoted_source(data, ihl):
    """For an ICMP error (destination unreachable, time exceeded, parameter
    problem): "SRC:SPORT" of the packet it quotes (SPORT 0 unless TCP or
    UDP); else None."""
    if data[9] != 1 or len(data) < ihl + 8 + 20 or data[ihl] not in (3, 11, 12):
        return None
    inner = data[ihl + 8:]
    src = socket.inet_ntoa(inner[12:16])
    iihl = (inner[0] & 0xF) * 4
    sport = 0
    if inner[9] in (6, 17) and len(inner) >= iihl + 2:
        sport = struct.unpack("!H", inner[iihl:iihl + 2])[0]
    return "%s:%d" % (src, sport)


def cmd_listen(o):
    socks = {}
    for port in o.udp:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        socks[s] = "udp"
    for port in o.tcp:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(128)
        socks[s] = "tcp"
    counts = {"udp": 0, "tcp": 0, "raw": {}, "from": [], "udp_sizes": [], "frags": {}, "quoted": []}
    if o.frags:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        s.bind((o.frags, 0))
        socks[s] = "frags"
    for spec in o.raw:
        name, _, port = spec.partition(":")
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, PROTOS[name])
        socks[s] = ("raw", spec, int(port or 0))
        counts["raw"][spec] = 0

    def write():
        tmp = o.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(counts, f)
        os.replace(tmp, o.out)

    write()
    while True:
        ready, _, _ = select.select(list(socks), [], [])
        for s in ready:
            if isinstance(socks[s], tuple):
                _, spec, port = socks[s]
                data, peer = s.recvfrom(65535)
                ihl = (data[0] & 0xF) * 4
                frag = struct.unpack("!H", data[6:8])[0] & 0x1FFF
                if port and (frag or len(data) < ihl + 4 or
                             struct.unpack("!H", data[ihl + 2:ihl + 4])[0] != port):
                    continue
                counts["raw"][spec] += 1
                if len(counts["from"]) < 20:
                    counts["from"].append(peer[0])
                quoted = quoted_source(data, ihl)
                if quoted and len(counts["quoted"]) < 20:
                    counts["quoted"].append(quoted)
                write()
                continue
            if socks[s] == "frags":
                data, addr = s.recvfrom(65535)
                if addr[2] == socket.PACKET_OUTGOING or len(data) < 20:
                    continue
                if not struct.unpack("!H", data[6:8])[0] & 0x3FFF:
                    continue
                src = socket.inet_ntoa(data[12:16])
                counts["frags"][src] = counts["frags"].get(src, 0) + 1
                write()
                continue
            if socks[s] == "udp":
                data, peer = s.recvfrom(65535)
                if o.echo:
                    s.sendto(data, peer)
                if len(counts["udp_sizes"]) < 20:
                    counts["udp_sizes"].append(len(data))
            else:
                c, peer = s.accept()
                c.close()
            counts[socks[s]] += 1
            if len(counts["from"]) < 20:
                counts["from"].append("%s:%d" % peer[:2])
            write()


def cmd_echo(o):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if o.sport:
        s.bind(("0.0.0.0", o.sport))
    data = os.urandom(o.size)
    s.settimeout(o.timeout_ms / 1000)
    s.sendto(data, (o.dst, o.dport))
    try:
        back, _ = s.recvfrom(65535)
    except socket.timeout:
        print("0")
        return 1
    print(len(back))
    return 0 if back == data else 1


def cmd_talk(o):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", o.bind))
    port = s.getsockname()[1]
    if o.port_file:
        with open(o.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.replace(o.port_file + ".tmp", o.port_file)
    tag = o.tag.encode() + b"-"
    own = other = 0
    for i in range(o.count + 5):  # 5 more intervals to collect the last replies
        if i < o.count:
            s.sendto(tag + str(i).encode(), (o.dst, o.dport))
        end = time.time() + o.interval_ms / 1000
        while True:
            left = end - time.time()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                break
            data = s.recv(65535)
            if data.startswith(tag):
                own += 1
            else:
                other += 1
    with open(o.out, "w") as f:
        json.dump({"port": port, "own": own, "other": other}, f)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--proto", choices=PROTOS, default="udp")
    s.add_argument("--src", required=True)
    s.add_argument("--dst", required=True)
    s.add_argument("--sport", type=int, default=40000)
    s.add_argument("--dport", type=int, default=8081)
    s.add_argument("--tcp-flags", default="S")
    s.add_argument("--icmp-type", type=int, default=8)
    s.add_argument("--icmp-code", type=int, default=0)
    s.add_argument("--icmp-id", type=int, default=4242)
    s.add_argument("--mtu", type=int, default=0, help="next-hop MTU of an ICMP error")
    s.add_argument("--quote")
    s.add_argument("--payload", type=int, default=16)
    s.add_argument("--ip-id", type=int, default=0)
    s.add_argument("--frag-offset", type=int, default=0)
    s.add_argument("--more-frags", action="store_true")
    s.add_argument("--ttl", type=int, default=64)
    s.add_argument("--vxlan-to")
    s.add_argument("--vxlan-port", type=int, default=8472)
    s.add_argument("--vni", type=int, default=1)
    s.add_argument("--outer-src")
    s.add_argument("--inner-eth-src", default="00:00:00:00:00:00")
    s.add_argument("--inner-eth-dst", default="00:00:00:00:00:00")
    s.add_argument("--iface")
    s.add_argument("--eth-src")
    s.add_argument("--eth-dst")
    s.add_argument("--count", type=int, default=1)
    s.add_argument("--interval-ms", type=int, default=10)
    l = sub.add_parser("listen")
    l.add_argument("--udp", type=int, action="append", default=[])
    l.add_argument("--tcp", type=int, action="append", default=[])
    l.add_argument("--raw", action="append", default=[])
    l.add_argument("--out", required=True)
    l.add_argument("--echo", action="store_true")
    l.add_argument("--frags")
    e = sub.add_parser("echo")
    e.add_argument("--dst", required=True)
    e.add_argument("--dport", type=int, default=8081)
    e.add_argument("--sport", type=int, default=0)
    e.add_argument("--size", type=int, default=4000)
    e.add_argument("--timeout-ms", type=int, default=2000)
    t = sub.add_parser("talk")
    t.add_argument("--bind", type=int, default=0)
    t.add_argument("--dst", required=True)
    t.add_argument("--dport", type=int, required=True)
    t.add_argument("--tag", required=True)
    t.add_argument("--count", type=int, default=10)
    t.add_argument("--interval-ms", type=int, default=100)
    t.add_argument("--out", required=True)
    t.add_argument("--port-file")
    o = ap.parse_args()
    if o.cmd == "echo":
        return cmd_echo(o)
    if o.cmd == "talk":
        return cmd_talk(o)
    if o.cmd == "send":
        if o.frag_offset % 8:
            ap.error("--frag-offset must be a multiple of 8")
        if o.iface and not o.eth_dst:
            ap.error("--iface needs --eth-dst")
        return cmd_send(o)
    if not o.udp and not o.tcp and not o.raw and not o.frags:
        ap.error("listen needs --udp, --tcp, --raw or --frags")
    return cmd_listen(o)


if __name__ == "__main__":
    sys.exit(main())
