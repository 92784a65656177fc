# SPDX-License-Identifier: Apache-2.0
"""A generated cluster for bench/controlplane.sh, as one JSON List on stdout.

    controlplane_gen.py PODS

PODS pods in PODS/100 namespaces on PODS/100 nodes (node0 is the agent's):
50 pods on node0 with addresses, 20 more on node0 without (the benchmark
attaches them through sluice-cni: cni0..cni19 in ns0, app=a0), the pod
'probe' in ns0 on node1 (tier=t0: admitted to the cni pods), the rest spread
over the other nodes. PODS/10 NetworkPolicies, each with a pod, a namespace
and an ipBlock peer; PODS/20 Services with an EndpointSlice of 2 endpoints.

The cni pods (ns0, app=a0) are selected by the policies np<k> with k a
multiple of both 50 and the namespace count; np0 is one and admits tier=t0
from ns0, and none admits tier=t3 from ns0 (namespaceSelector peers name
teams t1 and t2, ns0 is team t0; ipBlock peers are outside the pod ranges).
"""
import json
import sys

N = int(sys.argv[1])
NNS = max(N // 100, 2)
NNODES = max(N // 100, 2)
LOCAL, CNI = 50, 20
out = sys.stdout
out.write('{"apiVersion":"v1","kind":"List","items":[')
first = True


def emit(obj):
    global first
    if not first:
        out.write(",")
    first = False
    out.write(json.dumps(obj, separators=(",", ":")))


def cidr(k):
    return f"10.{64 + k // 256}.{k % 256}"


for k in range(NNODES):
    emit({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node{k}"},
          "spec": {"podCIDR": f"{cidr(k)}.0/24"},
          "status": {"addresses": [{"type": "InternalIP",
                                    "address": f"192.168.{k // 250}.{10 + k % 240}"}]}})
for n in range(NNS):
    emit({"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": f"ns{n}", "labels": {"team": f"t{n % 3}"}}})


def pod(name, ns, node, ip, labels):
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": name, "namespace": ns, "labels": labels},
         "spec": {"nodeName": f"node{node}", "containers": [
             {"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 80}]}]},
         "status": {"phase": "Pending"}}
    if ip:
        p["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
    return p


ips = {}   # namespace index -> addresses of regular pods (for EndpointSlices)
for j in range(LOCAL):
    emit(pod(f"local{j}", f"ns{j % NNS}", 0, f"{cidr(0)}.{100 + j}",
             {"app": f"a{j % 50}", "tier": f"t{j % 4}"}))
for j in range(CNI):
    emit(pod(f"cni{j}", "ns0", 0, None, {"app": "a0", "tier": "t1"}))
emit(pod("probe", "ns0", 1, f"{cidr(1)}.250", {"app": "probe", "tier": "t0"}))
used = [0] * NNODES
for i in range(N - LOCAL - CNI - 1):
    node = 1 + i % (NNODES - 1)
    used[node] += 1
    ip = f"{cidr(node)}.{used[node]}"
    ns = i % NNS
    if len(ips.setdefault(ns, [])) < 64:
        ips[ns].append((f"p{i}", ip))
    emit(pod(f"p{i}", f"ns{ns}", node, ip, {"app": f"a{i % 50}", "tier": f"t{i % 4}"}))
for k in range(N // 10):
    emit({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": f"np{k}", "namespace": f"ns{k % NNS}"},
          "spec": {"podSelector": {"matchLabels": {"app": f"a{k % 50}"}},
                   "ingress": [{"from": [
                       {"podSelector": {"matchLabels": {"tier": f"t{k % 4}"}}},
                       {"namespaceSelector": {"matchLabels": {"team": f"t{1 + k % 2}"}}},
                       {"ipBlock": {"cidr": f"172.16.{k % 256}.0/24",
                                    "except": [f"172.16.{k % 256}.128/25"]}}],
                       "ports": [{"port": 80, "protocol": "TCP"}]}]}})
for s in range(N // 20):
    ns = s % NNS
    name = f"svc{s}"
    emit({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": f"ns{ns}"},
          "spec": {"type": "ClusterIP", "clusterIP": f"10.96.{s // 250}.{1 + s % 250}",
                   "selector": {"app": f"a{s % 50}"},
                   "ports": [{"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP"}]}})
    pool = ips.get(ns) or []
    eps = [pool[(s + d) % len(pool)] for d in range(2)] if pool else []
    emit({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
          "metadata": {"name": f"{name}-a", "namespace": f"ns{ns}",
                       "labels": {"kubernetes.io/service-name": name}},
          "addressType": "IPv4",
          "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
          "endpoints": [{"addresses": [ip], "conditions": {"ready": True},
                         "targetRef": {"kind": "Pod", "namespace": f"ns{ns}", "name": pn}}
                        for pn, ip in eps]})
out.write("]}\n")
