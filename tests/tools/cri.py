#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A minimal CRI (runtime.v1) client for tests/cri: the few pod sandbox
calls kubelet makes, over gRPC, with hand-encoded protobuf (Debian 12 has no
crictl and no CRI .proto). Field numbers are those of
k8s.io/cri-api/pkg/apis/runtime/v1/api.proto.

    cri.py --socket SOCK version
    cri.py --socket SOCK runp --name N --namespace NS --uid UID [--hostname H]
           [--port HOSTPORT:CONTAINERPORT[/tcp|udp]]... [--annotation K=V]...
           [--cgroup-parent DIR] [--log-dir DIR]          prints the sandbox id
    cri.py --socket SOCK stopp ID | rmp ID
    cri.py --socket SOCK ip ID        the sandbox's IP (PodSandboxStatus)
    cri.py --socket SOCK netns ID     its network namespace path (verbose status)

Errors from the runtime go to stderr with exit status 1.
"""
import argparse
import json
import sys

import grpc

SERVICE = "/runtime.v1.RuntimeService/"

# ---- protobuf wire format: just what these messages need -----------------


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1  # negative int32/int64 as two's complement
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3) + varint(n) if n else b""


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data


def f_str(field, s):
    return f_bytes(field, s) if s else b""


def f_map(field, d):
    # map<string,string>: repeated entries {key = 1; value = 2}
    return b"".join(f_bytes(field, f_str(1, k) + f_str(2, v)) for k, v in sorted(d.items()))


def decode(data):
    """{field: [values]}: varints as int, length-delimited as bytes."""
    out, i = {}, 0
    while i < len(data):
        key, i = read_varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, i = read_varint(data, i)
        elif wire == 2:
            n, i = read_varint(data, i)
            val, i = data[i:i + n], i + n
        elif wire == 1:
            val, i = data[i:i + 8], i + 8
        elif wire == 5:
            val, i = data[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        out.setdefault(field, []).append(val)
    return out


def read_varint(data, i):
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def first(msg, field, default=b""):
    return msg.get(field, [default])[0]


# ---- runtime.v1 messages ---------------------------------------------------

PROTO = {"tcp": 0, "udp": 1, "sctp": 2}
NS_POD, NS_CONTAINER = 0, 1


def pod_sandbox_config(a):
    metadata = (f_str(1, a.name) + f_str(2, a.uid) + f_str(3, a.namespace) +
                f_varint(4, a.attempt))
    ports = b""
    for p in a.port:
        spec, _, proto = p.partition("/")
        host, _, ctr = spec.partition(":")
        # PortMapping {protocol = 1; container_port = 2; host_port = 3; host_ip = 4}
        ports += f_bytes(5, f_varint(1, PROTO[proto or "tcp"]) + f_varint(2, int(ctr)) +
                         f_varint(3, int(host)))
    annotations = dict(kv.split("=", 1) for kv in a.annotation)
    labels = {"io.kubernetes.pod.name": a.name, "io.kubernetes.pod.namespace": a.namespace,
              "io.kubernetes.pod.uid": a.uid}
    # NamespaceOption {network = 1; pid = 2; ipc = 3} as kubelet sets them for
    # a pod without hostNetwork/hostPID/hostIPC: network POD, pid CONTAINER,
    # ipc POD (POD = 0 is proto3's default and so not on the wire).
    ns_opts = f_varint(1, NS_POD) + f_varint(2, NS_CONTAINER) + f_varint(3, NS_POD)
    # LinuxSandboxSecurityContext {namespace_options = 1}
    sec = f_bytes(1, ns_opts)
    # LinuxPodSandboxConfig {cgroup_parent = 1; security_context = 2}
    linux = f_str(1, a.cgroup_parent) + f_bytes(2, sec)
    # PodSandboxConfig {metadata = 1; hostname = 2; log_directory = 3;
    # port_mappings = 5; labels = 6; annotations = 7; linux = 8}
    return (f_bytes(1, metadata) + f_str(2, a.hostname or a.name) + f_str(3, a.log_dir) +
            ports + f_map(6, labels) + f_map(7, annotations) + f_bytes(8, linux))


def call(channel, method, request, timeout):
    fn = channel.unary_unary(SERVICE + method)  # raw bytes in and out
    return decode(fn(request, timeout=timeout))


def main():
    ap = argparse.ArgumentParser(description="minimal CRI runtime.v1 client")
    ap.add_argument("--socket", required=True)
    ap.add_argument("--timeout", type=float, default=60)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version")
    r = sub.add_parser("runp")
    r.add_argument("--name", required=True)
    r.add_argument("--namespace", default="default")
    r.add_argument("--uid", required=True)
    r.add_argument("--attempt", type=int, default=0)
    r.add_argument("--hostname")
    r.add_argument("--port", action="append", default=[])
    r.add_argument("--annotation", action="append", default=[])
    r.add_argument("--cgroup-parent", default="")
    r.add_argument("--log-dir", default="")
    for c in ("stopp", "rmp", "ip", "netns"):
        sub.add_parser(c).add_argument("id")
    a = ap.parse_args()

    ch = grpc.insecure_channel("unix://" + a.socket)
    try:
        if a.cmd == "version":
            # VersionRequest {version = 1}; VersionResponse {version = 1;
            # runtime_name = 2; runtime_version = 3; runtime_api_version = 4}
            m = call(ch, "Version", f_str(1, "v1"), a.timeout)
            print(" ".join(first(m, f).decode() for f in (2, 3, 4)))
        elif a.cmd == "runp":
            # RunPodSandboxRequest {config = 1; runtime_handler = 2}
            m = call(ch, "RunPodSandbox", f_bytes(1, pod_sandbox_config(a)), a.timeout)
            print(first(m, 1).decode())  # pod_sandbox_id
        elif a.cmd == "stopp":
            call(ch, "StopPodSandbox", f_str(1, a.id), a.timeout)
        elif a.cmd == "rmp":
            call(ch, "RemovePodSandbox", f_str(1, a.id), a.timeout)
        else:
            # PodSandboxStatusRequest {pod_sandbox_id = 1; verbose = 2};
            # response {status = 1; info = 2 (map)}; PodSandboxStatus
            # {network = 5}; PodSandboxNetworkStatus {ip = 1}
            m = call(ch, "PodSandboxStatus", f_str(1, a.id) + f_varint(2, 1), a.timeout)
            if a.cmd == "ip":
                net = decode(first(decode(first(m, 1)), 5))
                print(first(net, 1).decode())
            else:
                info = {}
                for e in m.get(2, []):
                    e = decode(e)
                    info[first(e, 1).decode()] = first(e, 2).decode()
                spec = json.loads(info["info"])["runtimeSpec"]
                path = [n.get("path", "") for n in spec["linux"]["namespaces"]
                        if n["type"] == "network"]
                print(path[0] if path else "")
    except grpc.RpcError as e:
        print("cri %s: %s: %s" % (a.cmd, e.code().name, e.details()), file=sys.stderr)
        return 1
    finally:
        ch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
