#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Write the seed corpora of the fuzz targets (tests/fuzz/corpus/TARGET/seed-*)
from the repository's own inputs: deploy/ manifests and conflist, the end to
end and network policy tests' manifests, the docs' examples, the requests the
CLI and the plugin send, the kubeconfigs tests/kube/certs.sh writes and the
watch lines tests/kube/apiserver.py sends. Run from anywhere; it rewrites
only seed-* files, so crash-* inputs kept for regressions stay.

    tests/fuzz/seeds.py
"""
import glob
import json
import os
import re

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
MAX_PER_TARGET = 40


def rel(*p):
    return os.path.join(ROOT, *p)


def compact(v):
    return json.dumps(v, separators=(",", ":"))


def write(target, seeds):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    for old in glob.glob(os.path.join(d, "seed-*")):
        os.unlink(old)
    for i, (name, data) in enumerate(seeds[:MAX_PER_TARGET]):
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(d, "seed-%02d-%s" % (i, name)), "wb") as f:
            f.write(data)


# ---- manifests ----------------------------------------------------------------

def heredocs(path):
    """The YAML of `apply <<'EOF' ... EOF` blocks in a test script."""
    text = open(path).read()
    return re.findall(r"<<'?EOF'?\n(.*?)\nEOF", text, re.S)


def doc_blocks(path):
    return re.findall(r"```yaml\n(.*?)```", open(path).read(), re.S)


def manifest_texts():
    out = []
    for p in sorted(glob.glob(rel("deploy", "parts", "*.yaml")) +
                    glob.glob(rel("deploy", "crds", "*.yaml")) +
                    glob.glob(rel("tests", "e2e", "manifests", "*.yaml"))):
        text = open(p).read()
        if len(text) <= 12 * 1024:	# the CRDs are larger than make fuzz's -max_len
            out.append((os.path.basename(p), text))
    for p in sorted(glob.glob(rel("docs", "*.md"))):
        for i, b in enumerate(doc_blocks(p)):
            if "apiVersion" in b:
                out.append(("%s-%d.yaml" % (os.path.basename(p)[:-3].lower(), i), b))
    for p in sorted(glob.glob(rel("tests", "netpol", "scenarios", "*.sh")))[::3]:
        for i, b in enumerate(heredocs(p)):
            if "apiVersion" in b:
                out.append(("netpol-%s-%d.yaml" % (os.path.basename(p)[:2], i), b))
    return out


# What lib/manifest.c documents beyond plain documents: typing, tags,
# anchors and merge keys, Lists, JSON texts one after the other.
MANIFEST_EDGES = [
    ("anchors-merge.yaml", """apiVersion: v1
kind: ConfigMap
metadata: {name: a}
data:
  base: &base {a: 1, b: 2}
  more: &more {c: 3}
  m1:
    <<: *base
    b: 5
  m2:
    <<: [*base, *more]
"""),
    ("typing.yaml", """apiVersion: v1
kind: Pod
metadata: {name: t, namespace: default, labels: {on: yes, "80": '80'}}
spec:
  hostNetwork: off
  containers:
  - name: c
    ports: [{containerPort: 0x50}, {containerPort: 0o17}, {containerPort: 1_000}, {containerPort: 8.0e1}]
    args: [~, null, .5, -2.5E-3, 2024-01-01, 10.0.0.0/8, !!str 80, !!int "7", !!float 1, !!bool true]
    text: |
      block
    folded: >
      folded
"""),
    ("list.yaml", """apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: a}}
- {apiVersion: v1, kind: Namespace, metadata: {name: b, labels: {team: x}}}
"""),
    ("empty-docs.yaml", "---\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n~\n---\nnull\n---\n# c\n---\n...\n"),
    ("json-texts.json", '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}\n'
                        '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"}} '
                        '[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"c"}}]'),
    ("flow-mapping.yaml", "{apiVersion: v1, kind: Namespace, metadata: {name: a}}\n"),
    ("json-docs.yaml", '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}\n---\n'
                       '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"}}\n'),
    ("recursive-alias.yaml", "apiVersion: v1\nkind: X\na: &a [*a]\n"),
    ("bad-tag.yaml", "apiVersion: v1\nkind: X\nb: !!binary aGk=\nr: !Ref x\n"),
    ("dup-key.yaml", "apiVersion: v1\nkind: X\nkind: Y\n"),
]


def manifest_seeds():
    return manifest_texts()[:MAX_PER_TARGET - len(MANIFEST_EDGES)] + MANIFEST_EDGES


# ---- objects (the store) ------------------------------------------------------------

STORE_KINDS = {"Namespace", "Pod", "Node", "Service", "EndpointSlice", "NetworkPolicy",
               "SluiceNetworkPolicy", "SluiceClusterNetworkPolicy", "SluicePrefilter"}

# Kinds the manifests in the repository have few of, shaped as the unit
# tests (test_service.c, test_prefilter.c, test_kube.c) write them.
EXTRA_OBJECTS = [
    {"apiVersion": "v1", "kind": "Node",
     "metadata": {"name": "node2", "labels": {"edge": "true"},
                  "creationTimestamp": "2024-01-01T00:00:00Z"},
     "spec": {"podCIDR": "10.0.1.0/24", "podCIDRs": ["10.0.1.0/24"]},
     "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.2"},
                              {"type": "ExternalIP", "address": "203.0.113.2"},
                              {"type": "Hostname", "address": "node2"}]}},
    {"apiVersion": "v1", "kind": "Service",
     "metadata": {"name": "web", "namespace": "shop"},
     "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
              "externalIPs": ["198.51.100.7"], "selector": {"app": "web"},
              "sessionAffinity": "ClientIP",
              "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 300}},
              "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Cluster",
              "healthCheckNodePort": 32000,
              "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP",
                         "nodePort": 30080},
                        {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]},
     "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.9", "ipMode": "VIP"}]}}},
    {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
     "metadata": {"name": "web-abc", "namespace": "shop",
                  "labels": {"kubernetes.io/service-name": "web"}},
     "addressType": "IPv4",
     "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
               {"name": "dns", "port": 5353, "protocol": "UDP"}],
     "endpoints": [{"addresses": ["10.0.0.5"],
                    "conditions": {"ready": True, "serving": True, "terminating": False},
                    "nodeName": "node1",
                    "targetRef": {"kind": "Pod", "namespace": "shop", "name": "frontend"}},
                   {"addresses": ["10.0.1.7"], "conditions": {"ready": False, "serving": True,
                                                              "terminating": True},
                    "nodeName": "node2"}]},
    {"apiVersion": "v1", "kind": "Pod",
     "metadata": {"name": "api-0", "namespace": "shop", "labels": {"app": "api"}},
     "spec": {"nodeName": "node2", "containers": [
         {"name": "c", "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                 {"name": "h2", "containerPort": 9090, "hostPort": 19090}]}]},
     "status": {"phase": "Running", "podIP": "10.0.1.7", "podIPs": [{"ip": "10.0.1.7"}]}},
    {"apiVersion": "sluice.io/v1alpha1", "kind": "SluicePrefilter",
     "metadata": {"name": "block"},
     "spec": {"nodeSelector": {"matchLabels": {"edge": "true"}},
              "deny": ["203.0.113.0/24", "198.51.100.0/24"], "except": ["203.0.113.7/32"]}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
     "metadata": {"name": "egress-cidr", "namespace": "shop"},
     "spec": {"podSelector": {"matchExpressions": [
                  {"key": "app", "operator": "In", "values": ["web", "api"]},
                  {"key": "tier", "operator": "DoesNotExist"}]},
              "policyTypes": ["Egress", "Ingress"],
              "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                          "ports": [{"protocol": "TCP", "port": 443},
                                    {"protocol": "UDP", "port": 1000, "endPort": 2000},
                                    {"port": "dns"}]}],
              "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {
                  "matchLabels": {"role": "client"}}}]}]}},
]


def store_objects():
    objs = []
    for _, text in manifest_texts():
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            continue
        for d in docs:
            if isinstance(d, dict) and d.get("kind") == "List":
                docs.extend(d.get("items") or [])
            elif isinstance(d, dict) and d.get("kind") in STORE_KINDS:
                objs.append(d)
    return objs + EXTRA_OBJECTS


def policy_seeds(objs):
    seeds = []
    seen = set()
    for o in EXTRA_OBJECTS + objs:
        t = compact(o)
        if t not in seen:
            seen.add(t)
            seeds.append(("%s.json" % o["kind"].lower(), "[" + t + "]"))
    seeds = seeds[:MAX_PER_TARGET - 2]
    # Several kinds at once, as one apply: selectors meet pods, slices meet
    # their Service.
    seeds.append(("together.json", compact(EXTRA_OBJECTS)))
    seeds.append(("shop.json", compact([o for o in objs if o.get("metadata", {}).get(
        "namespace") in ("shop", None)][:12])))
    return seeds


# ---- watch events -------------------------------------------------------------------

# kube.c's resources[], in order: the first byte of a watch seed picks one.
WATCH_KINDS = ["Namespace", "Node", "Pod", "Service", "EndpointSlice", "NetworkPolicy",
               "SluiceNetworkPolicy", "SluiceClusterNetworkPolicy", "SluicePrefilter"]


def watch_seeds(objs):
    seeds = []
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    for i, kind in enumerate(WATCH_KINDS):
        lines = []
        for n, o in enumerate(by_kind.get(kind, [])[:3]):
            o = json.loads(compact(o))
            o.setdefault("metadata", {})["resourceVersion"] = str(100 + n)
            lines.append(compact({"type": "ADDED", "object": o}))
            o["metadata"]["resourceVersion"] = str(200 + n)
            lines.append(compact({"type": "MODIFIED", "object": o}))
        # as apiserver.py sends them: bookmarks, then a deletion
        lines.append(compact({"type": "BOOKMARK", "object": {
            "kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "300"}}}))
        if by_kind.get(kind):
            lines.append(compact({"type": "DELETED", "object": by_kind[kind][0]}))
        seeds.append(("%s.jsonl" % kind.lower(), bytes([i]) + ("\n".join(lines) + "\n").encode()))
    gone = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                        "status": "Failure",
                                        "message": "too old resource version: 1 (5)",
                                        "reason": "Expired", "code": 410}}
    seeds.append(("gone.jsonl", b"\x02" + (compact(gone) + "\n").encode()))
    err = dict(gone, object=dict(gone["object"], code=500, message="internal error",
                                 reason="InternalError"))
    seeds.append(("error.jsonl", b"\x03" + (compact(err) + "\n").encode()))
    seeds.append(("not-events.jsonl", b"\x00" + b"[]\n{\"type\":1}\nnot json\n\n{\"type\":\"ADDED\"}"))
    return seeds


# ---- kubeconfig ---------------------------------------------------------------------

def kubeconfig(user, cluster_extra, server="https://127.0.0.1:6443"):
    # tests/kube/certs.sh's template
    return ("apiVersion: v1\nkind: Config\nclusters:\n- name: sluice-test\n  cluster:\n"
            "    server: %s\n%s\ncontexts:\n- name: sluice-test\n  context:\n"
            "    cluster: sluice-test\n    user: sluice-test\ncurrent-context: sluice-test\n"
            "users:\n- name: sluice-test\n  user:\n%s\n" % (server, cluster_extra, user))


def kubeconfig_seeds():
    b64 = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
    return [
        ("token.yaml", kubeconfig("    token: abc.def", "    certificate-authority: ca.crt")),
        ("tokenfile.yaml", kubeconfig("    tokenFile: /nonexistent/token",
                                      "    insecure-skip-tls-verify: true")),
        ("cert-data.yaml", kubeconfig("    client-certificate-data: %s\n    client-key-data: %s"
                                      % (b64, b64), "    certificate-authority-data: " + b64)),
        ("cert-file.yaml", kubeconfig("    client-certificate: /nonexistent/c.crt\n"
                                      "    client-key: k.key", "")),
        ("exec.yaml", kubeconfig("    exec: {command: aws}", "")),
        ("server-path.yaml", kubeconfig("    token: t", "", "https://[fd00::1]:6443/prefix/")),
        ("server-flag.yaml", "# --k8s-api-server [fd00::1]:6443\n" +
         kubeconfig("    token: t", "")),
        ("server-flag-host.yaml", "# --k8s-api-server 192.168.1.10\n" +
         kubeconfig("    token: t", "")),
        ("json.json", compact({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                               "contexts": [{"name": "c", "context": {"cluster": "k"}}],
                               "clusters": [{"name": "k", "cluster": {
                                   "server": "https://10.0.0.1"}}]})),
        ("no-context.yaml", "apiVersion: v1\nkind: Config\ncurrent-context: nope\n"),
    ]


# ---- API requests -------------------------------------------------------------------

def api_seeds():
    cni = {"containerId": "abc123", "ifname": "eth0", "netns": "/var/run/netns/pod1",
           "network": "sluice",
           "k8s": {"namespace": "shop", "name": "frontend", "uid": "1234-5678",
                   "infraContainerId": "abc123"}}
    ports = [{"hostPort": 18080, "containerPort": 8080, "protocol": "tcp",
              "hostIP": "10.200.0.11"},
             {"hostPort": 53, "containerPort": 5353, "protocol": "udp"},
             {"hostPort": 9000, "containerPort": 9000, "protocol": "sctp", "hostIP": "fd00::1"}]
    prev = {"interfaces": [{"name": "lxc1", "mac": "aa:bb:cc:dd:ee:ff"},
                           {"name": "eth0", "mac": "02:00:00:00:00:01",
                            "sandbox": "/var/run/netns/pod1"}],
            "ips": [{"address": "10.0.0.5/32", "gateway": "10.0.0.1", "interface": 1}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}]}
    endpoint = {"containerId": "abc123", "ifname": "eth0", "network": "sluice",
                "netns": "/var/run/netns/pod1", "namespace": "shop", "pod": "frontend",
                "podUID": "1234", "ip": "10.0.0.5", "hostIfname": "lxc1a2b3c4d5e6",
                "hostIfindex": 7, "podMac": "02:00:00:00:00:01", "hostMac": "aa:bb:cc:dd:ee:ff",
                "state": "ready", "portMappings": ports[:2]}
    reqs = [
        ("add", {"op": "add", "cni": dict(cni, portMappings=ports)}),
        ("add-min", {"op": "add", "cni": {"containerId": "a", "ifname": "eth0", "netns": "/n"}}),
        ("check", {"op": "check", "cni": dict(cni, prevResult=prev)}),
        ("del", {"op": "del", "cni": dict(cni, netns="", prevResult=prev)}),
        ("gc", {"op": "gc", "gc": {"network": "sluice", "validAttachments": [
            {"containerId": "abc123", "ifname": "eth0"}]}}),
        ("status", {"op": "status"}),
        ("list", {"op": "list"}),
        ("metrics", {"op": "metrics"}),
        ("flows", {"op": "flows", "fromPod": "shop/frontend", "toPod": ["shop/db-0"],
                   "namespace": "shop", "fromIP": "10.0.0.0/8", "toIP": "10.0.0.5",
                   "label": "app=web,tier!=db,env,!debug", "verdict": ["DROPPED", "AUDIT"],
                   "dropReason": "drop-policy", "protocol": "TCP", "port": 80,
                   "policy": "shop/deny", "service": "shop/web", "since": 60, "last": 10,
                   "after": 5}),
        ("flows-num", {"op": "flows", "protocol": ["17", "icmp"], "port": "53",
                       "pod": "default/a", "policy": "cluster-wide"}),
        ("top", {"op": "top", "what": "pods", "limit": 10}),
        ("get", {"op": "get", "what": "pods", "limit": 500}),
        ("get-continue", {"op": "get", "what": "pods", "limit": 500,
                          "continue": "pods:shop/web-0499"}),
        ("get-policies", {"op": "get", "what": "policies", "limit": 2,
                          "continue": "policies:shop/deny/1"}),
        ("get-prefilters", {"op": "get", "what": "prefilters", "name": "block", "detail": True}),
        ("explain", {"op": "explain", "from": "y/b", "to": "10.96.0.10", "port": 80,
                     "protocol": "TCP"}),
        ("apply", {"op": "apply", "objects": [EXTRA_OBJECTS[0]],
                   "sources": ["node.yaml: document 1"]}),
        ("delete", {"op": "delete", "objects": [EXTRA_OBJECTS[0]],
                    "sources": ["node.yaml: document 1"], "ignoreNotFound": True}),
        ("endpoint", {"endpoint": endpoint}),
        ("endpoint-creating", dict(endpoint, state="creating", portMappings=None)),
        ("add-bandwidth", {"op": "add", "cni": dict(cni, bandwidth={
            "ingressRate": 50000000, "ingressBurst": 0, "egressRate": 100000000,
            "egressBurst": 4294967295})}),
        ("endpoint-bandwidth", {"endpoint": dict(endpoint, bandwidth={
            "ingressRate": 0, "ingressBurst": 0, "egressRate": 8000, "egressBurst": 12000})}),
    ]
    return [(n + ".json", compact(r)) for n, r in reqs]


# ---- CNI invocations ----------------------------------------------------------------

def cni_seeds():
    conflist = json.load(open(rel("deploy", "cni", "10-sluice.conflist")))
    plugin = dict(conflist["plugins"][0], cniVersion=conflist["cniVersion"],
                  name=conflist["name"])
    prev = {"cniVersion": "0.4.0",
            "interfaces": [{"name": "lxc1", "mac": "aa:bb:cc:dd:ee:ff"},
                           {"name": "eth0", "mac": "02:00:00:00:00:01",
                            "sandbox": "/var/run/netns/pod1"}],
            "ips": [{"version": "4", "address": "10.0.0.5/32", "gateway": "10.0.0.1",
                     "interface": 1}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}],
            "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]}}
    env = ("CNI_CONTAINERID=abc123\nCNI_NETNS=/var/run/netns/pod1\nCNI_IFNAME=eth0\n"
           "CNI_PATH=/opt/cni/bin\nCNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;"
           "K8S_POD_NAME=frontend;K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=1234\n")

    def inv(cmd, conf, extra_env=""):
        c = conf if isinstance(conf, str) else json.dumps(conf, indent=1)
        return "CNI_COMMAND=%s\n%s%s\n%s" % (cmd, env, extra_env, c)

    ports = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                              {"HostPort": 53, "ContainerPort": 53, "Protocol": "UDP",
                               "hostIP": "10.0.0.1"}]}
    seeds = [
        ("add.txt", inv("ADD", plugin)),
        ("add-ports.txt", inv("ADD", dict(plugin, runtimeConfig=ports))),
        ("add-030.txt", inv("ADD", dict(plugin, cniVersion="0.3.0"))),
        ("add-040-prev.txt", inv("ADD", dict(plugin, cniVersion="0.4.0", prevResult=prev))),
        ("check.txt", inv("CHECK", dict(plugin, prevResult=prev))),
        ("del.txt", inv("DEL", dict(plugin, prevResult=dict(prev, cniVersion="1.0.0")))),
        ("status.txt", inv("STATUS", plugin)),
        ("gc.txt", inv("GC", dict(plugin, **{"cni.dev/valid-attachments": [
            {"containerID": "abc123", "ifname": "eth0"}]}))),
        ("version.txt", inv("VERSION", '{"cniVersion":"0.4.0"}')),
        ("version-empty.txt", "CNI_COMMAND=VERSION\n"),
        ("conflist.txt", inv("ADD", conflist)),
        ("bad-args.txt", inv("ADD", plugin, "CNI_ARGS=K8S_POD_NAME\n")),
        ("socket.txt", inv("ADD", dict(plugin, socket="/tmp/x.sock", cniVersion="1.0.0"))),
        ("add-bandwidth.txt", inv("ADD", dict(plugin, runtimeConfig={"bandwidth": {
            "ingressRate": 50000000, "IngressBurst": 4294967295, "egressRate": 100000000}}))),
    ]
    return seeds


def main():
    objs = store_objects()
    write("manifest", manifest_seeds())
    write("policy", policy_seeds(objs))
    write("watch", watch_seeds(objs))
    write("kubeconfig", kubeconfig_seeds())
    write("api", api_seeds())
    write("cni", cni_seeds())
    for t in sorted(os.listdir(CORPUS)):
        print("%-10s %d inputs" % (t, len(os.listdir(os.path.join(CORPUS, t)))))


if __name__ == "__main__":
    main()
