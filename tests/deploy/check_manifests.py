#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Static checks of the install manifests against the code they deploy: every
YAML document in deploy/ parses; the CRD schemas accept the policy examples
in docs/*.md and reject broken ones for the intended reason; the ClusterRole
grants exactly list and watch on what agent/kube.c lists and watches; the
DaemonSet's volumes, commands and settings agree with the agent's defaults,
its options, the conflist and install-cni.sh; the Containerfile's runtime
packages cover every library the binaries link. Prints ok/FAIL per check.

    check_manifests.py ROOT BUILD_DIR
"""

import glob
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

import yaml

ROOT, BUILD = sys.argv[1], sys.argv[2]
PASS = FAIL = 0


def check(desc, ok, detail=""):
    global PASS, FAIL
    if ok:
        PASS += 1
        print(f"  ok   {desc}")
    else:
        FAIL += 1
        print(f"  FAIL {desc}")
        for line in str(detail).splitlines()[-15:]:
            print(f"       {line}")


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def docs_of(path):
    return [d for d in yaml.safe_load_all(read(path)) if d is not None]


# ---- every document parses and names itself ---------------------------
print("== deploy/: every document parses")
for path in sorted(glob.glob(os.path.join(ROOT, "deploy/**/*.y*ml"), recursive=True)):
    rel = os.path.relpath(path, ROOT)
    try:
        docs = docs_of(rel)
        bad = [i for i, d in enumerate(docs)
               if not (isinstance(d, dict) and d.get("apiVersion") and d.get("kind")
                       and isinstance(d.get("metadata"), dict) and d["metadata"].get("name"))]
        check(f"{rel}: {len(docs)} document(s), each with apiVersion, kind, metadata.name",
              docs and not bad, f"documents without them: {bad}")
    except yaml.YAMLError as e:
        check(f"{rel} parses", False, e)
for path in sorted(glob.glob(os.path.join(ROOT, "deploy/cni/*.conflist")) +
                   glob.glob(os.path.join(ROOT, "deploy/cni/examples/*.conflist"))):
    rel = os.path.relpath(path, ROOT)
    try:
        c = json.loads(read(rel))
        check(f"{rel} is JSON with name, cniVersion and plugins",
              all(k in c for k in ("name", "cniVersion", "plugins")))
    except ValueError as e:
        check(f"{rel} is JSON", False, e)

manifest = docs_of("deploy/sluice.yaml")
by_kind = {}
for d in manifest:
    by_kind.setdefault(d["kind"], []).append(d)
ds = by_kind["DaemonSet"][0]
pod = ds["spec"]["template"]["spec"]
agent = next(c for c in pod["containers"] if c["name"] == "agent")
inits = {c["name"]: c for c in pod.get("initContainers", [])}
volumes = {v["name"]: v for v in pod["volumes"]}
cm = by_kind["ConfigMap"][0]
conflist = json.loads(read("deploy/cni/10-sluice.conflist"))

# ---- CRDs: one source, examples accepted, broken ones rejected ----------
print("== CRD schemas")
crd_file = docs_of("deploy/crds/sluice-policy-crds.yaml")
check("deploy/sluice.yaml carries deploy/crds/sluice-policy-crds.yaml's CRDs unchanged",
      by_kind.get("CustomResourceDefinition") == crd_file)

kube_dir = os.environ.get("SLUICE_KUBE_TESTS_DIR", os.path.join(ROOT, "tests/kube"))
if not os.path.exists(os.path.join(kube_dir, "schema.py")):
    print(f"  skip CRD schema validation: {kube_dir}/schema.py is absent "
          "(the Kubernetes API test server's schema module)")
else:
    sys.path.insert(0, kube_dir)
    import schema  # noqa: E402

    crds = {c["spec"]["names"]["kind"]: schema.crd_schemas(c)["v1alpha1"] for c in crd_file}
    examples = []
    for md in sorted(glob.glob(os.path.join(ROOT, "docs/*.md"))):
        for n, block in enumerate(re.findall(r"```yaml\n(.*?)```", open(md).read(), re.S)):
            for i, d in enumerate(yaml.safe_load_all(block)):
                if isinstance(d, dict) and d.get("kind") in crds:
                    examples.append((f"{os.path.relpath(md, ROOT)} block {n + 1} document {i + 1}", d))
    check(f"docs/*.md hold sluice policy examples ({len(examples)})", len(examples) >= 2)
    for where, d in examples:
        errs = schema.validate(crds[d["kind"]], d)
        check(f"{where} ({d['kind']} {d['metadata'].get('name')}) is valid", not errs,
              "\n".join(errs))

    base = {"apiVersion": "sluice.io/v1alpha1", "kind": "SluiceNetworkPolicy",
            "metadata": {"namespace": "shop", "name": "base"},
            "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                     "policyTypes": ["Ingress", "Egress"], "mode": "Audit",
                     "ingress": [{"action": "Deny",
                                  "from": [{"podSelector": {"matchExpressions": [
                                      {"key": "tier", "operator": "In", "values": ["web"]}]}},
                                      {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                                  "ports": [{"protocol": "TCP", "port": 80, "endPort": 90}],
                                  "icmp": [{"type": 8, "code": 0}]}],
                     "egress": [{"to": [{"namespaceSelector": {}}]}]}}
    cbase = {"apiVersion": "sluice.io/v1alpha1", "kind": "SluiceClusterNetworkPolicy",
             "metadata": {"name": "cbase"},
             "spec": {"podSelector": {}, "namespaceSelector": {"matchLabels": {"team": "a"}},
                      "egress": [{"action": "Allow"}]}}
    for b in (base, cbase):
        errs = schema.validate(crds[b["kind"]], b)
        check(f"the base {b['kind']} of the broken examples is valid", not errs, "\n".join(errs))

    def broken(b, path, value):
        """b with the value at path (a list of keys) replaced; DELETE removes it."""
        import copy
        o = copy.deepcopy(b)
        cur = o
        for k in path[:-1]:
            cur = cur[k]
        if value == "DELETE":
            del cur[path[-1]]
        else:
            cur[path[-1]] = value
        return o

    S, I0 = "spec", ["spec", "ingress", 0]
    cases = [
        # (what, base, path, new value, field the error must name, words of the reason)
        ("no spec", base, ["spec"], "DELETE", "spec", "Required value"),
        ("no podSelector", base, [S, "podSelector"], "DELETE", "spec.podSelector", "Required value"),
        ("podSelector as a string", base, [S, "podSelector"], "app=db", "spec.podSelector",
         "must be of type object"),
        ("mode Block", base, [S, "mode"], "Block", "spec.mode", "Unsupported value"),
        ("policyTypes Both", base, [S, "policyTypes"], ["Both"], "spec.policyTypes[0]",
         "Unsupported value"),
        ("action Reject", base, I0 + ["action"], "Reject", "spec.ingress[0].action",
         "Unsupported value"),
        ("a number as a label value", base, [S, "podSelector", "matchLabels", "app"], 5,
         "spec.podSelector.matchLabels.app", "must be of type string"),
        ("operator Equals", base, I0 + ["from", 0, "podSelector", "matchExpressions", 0, "operator"],
         "Equals", "spec.ingress[0].from[0].podSelector.matchExpressions[0].operator",
         "Unsupported value"),
        ("ipBlock without cidr", base, I0 + ["from", 1, "ipBlock", "cidr"], "DELETE",
         "spec.ingress[0].from[1].ipBlock.cidr", "Required value"),
        ("protocol ICMP in ports", base, I0 + ["ports", 0, "protocol"], "ICMP",
         "spec.ingress[0].ports[0].protocol", "Unsupported value"),
        ("endPort 70000", base, I0 + ["ports", 0, "endPort"], 70000,
         "spec.ingress[0].ports[0].endPort", "less than or equal to 65535"),
        ("endPort 0", base, I0 + ["ports", 0, "endPort"], 0,
         "spec.ingress[0].ports[0].endPort", "greater than or equal to 1"),
        ("ICMP type 300", base, I0 + ["icmp", 0, "type"], 300, "spec.ingress[0].icmp[0].type",
         "less than or equal to 255"),
        ("ICMP code -1", base, I0 + ["icmp", 0, "code"], -1, "spec.ingress[0].icmp[0].code",
         "greater than or equal to 0"),
        ("ICMP rule without type", base, I0 + ["icmp", 0, "type"], "DELETE",
         "spec.ingress[0].icmp[0].type", "Required value"),
        ("ICMP type as a string", base, I0 + ["icmp", 0, "type"], "echo",
         "spec.ingress[0].icmp[0].type", "must be of type integer"),
        ("egress as a string", base, [S, "egress"], "all", "spec.egress",
         "must be of type array"),
        ("an unknown spec field", base, [S, "priority"], 10, "spec.priority", "unknown field"),
        ("cluster policy: namespaceSelector as a list", cbase, [S, "namespaceSelector"], ["a"],
         "spec.namespaceSelector", "must be of type object"),
        ("cluster policy: egress action Drop", cbase, [S, "egress", 0, "action"], "Drop",
         "spec.egress[0].action", "Unsupported value"),
    ]
    for what, b, path, value, field, words in cases:
        errs = schema.validate(crds[b["kind"]], broken(b, path, value))
        right = errs and all(e.startswith(field + ":") and words in e for e in errs)
        check(f"broken {b['kind']}: {what} is rejected at {field} ({words})", right,
              "\n".join(errs) or "accepted")

# ---- RBAC: exactly list and watch on what the agent lists and watches ----
print("== RBAC")
kube_c = read("agent/kube.c")
paths = re.findall(r'"(/apis?/[^"?%]+)"', kube_c)
wanted = set()
for p in paths:
    parts = p.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    wanted.update((group, parts[-1], v) for v in ("list", "watch"))
check(f"agent/kube.c names the resources it lists and watches ({len(paths)})", len(paths) >= 6,
      paths)
role = by_kind["ClusterRole"][0]
granted = set()
extra = []
for r in role.get("rules", []):
    if set(r) - {"apiGroups", "resources", "verbs"}:
        extra.append(f"rule with {sorted(set(r) - {'apiGroups', 'resources', 'verbs'})}")
    for g in r.get("apiGroups", []):
        for res in r.get("resources", []):
            for v in r.get("verbs", []):
                granted.add((g, res, v))
check("the ClusterRole grants exactly list and watch on those resources",
      granted == wanted and not extra,
      f"missing: {sorted(wanted - granted)}\nbeyond: {sorted(granted - wanted)}\n{extra}")
check("no wildcard anywhere in the ClusterRole", "*" not in json.dumps(role.get("rules")))
binding = by_kind["ClusterRoleBinding"][0]
sa = by_kind["ServiceAccount"][0]
check("the ClusterRoleBinding binds that ClusterRole to the DaemonSet's ServiceAccount",
      binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": role["metadata"]["name"]}
      and binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                   "namespace": sa["metadata"]["namespace"]}]
      and pod.get("serviceAccountName") == sa["metadata"]["name"]
      and sa["metadata"]["namespace"] == ds["metadata"]["namespace"])
check("no other Role or RoleBinding", not by_kind.get("Role") and not by_kind.get("RoleBinding"))

# ---- DaemonSet against the agent's defaults -------------------------------
print("== DaemonSet against the agent")
helptext = subprocess.run([os.path.join(BUILD, "sluice-agent"), "--help"], capture_output=True,
                          text=True).stdout
options = set(re.findall(r"^\s+(?:-\w, )?--([a-z-]+)", helptext, re.M))
defaults = dict(re.findall(r"--(socket|state-dir|bpffs|cni-conf-dir) \w+ +[^\n(]*\(default ([^)\s]+)\)",
                           helptext))
api_h = re.search(r'#define SLUICE_DEFAULT_SOCKET "([^"]+)"', read("lib/api.h")).group(1)
check("sluice-agent --help states the socket, state, bpffs and CNI configuration defaults",
      set(defaults) == {"socket", "state-dir", "bpffs", "cni-conf-dir"}, helptext)
check(f"the socket is one path everywhere: --help, lib/api.h, the conflist ({api_h})",
      defaults.get("socket") == api_h == conflist["plugins"][0].get("socket"))
env_names = {e["name"] for e in agent.get("env", [])} | set(cm["data"])
check("the DaemonSet and ConfigMap leave socket, state dir and bpffs at their defaults",
      not env_names & {"SLUICE_SOCKET", "SLUICE_STATE_DIR", "SLUICE_BPFFS"}
      and agent.get("command") == ["sluice-agent"] and not agent.get("args"))


def mount_for(container, path):
    """(mount, volume) of the container's mount that holds path (longest prefix)."""
    best = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if (path == mp or path.startswith(mp + "/")) and (not best or len(mp) > len(best[0]["mountPath"])):
            best = (m, volumes[m["name"]])
    return best


def same_on_node(container, path, propagation=None):
    found = mount_for(container, path)
    if not found:
        return False, f"{path}: no volume mount holds it"
    m, v = found
    if v.get("hostPath", {}).get("path") != m["mountPath"]:
        return False, f"{path}: mounted from {v} at {m['mountPath']}: not the node's same path"
    if propagation and m.get("mountPropagation") not in propagation:
        return False, f"{path}: mountPropagation {m.get('mountPropagation')}, want {propagation}"
    return True, ""


for what, path, prop in (("socket", defaults.get("socket", "?"), None),
                         ("state dir", defaults.get("state-dir", "?"), None),
                         ("bpffs dir", defaults.get("bpffs", "?"), ("HostToContainer", "Bidirectional"))):
    ok, why = same_on_node(agent, path, prop)
    check(f"the agent's {what} {path} is the node's own path (hostPath at the same place"
          f"{', ' + '/'.join(prop) if prop else ''})", ok, why)
    if what != "socket":
        m, _ = mount_for(agent, path) or ({}, None)
        check(f"the {what} mount is writable", not m.get("readOnly"))
# The chained plugins the agent checks (docs/CNI.md, Chained plugins).
ok, why = same_on_node(agent, defaults.get("cni-conf-dir", "?") + "/10-sluice.conflist")
m, _ = mount_for(agent, defaults.get("cni-conf-dir", "?")) or ({}, None)
check(f"the agent reads the node's {defaults.get('cni-conf-dir')} (its --cni-conf-dir) read-only",
      ok and m.get("readOnly") is True, why or m)
for netns in ("/run/netns", "/var/run/netns"):
    ok, why = same_on_node(agent, netns + "/x", ("HostToContainer", "Bidirectional"))
    check(f"pods' namespaces under {netns} are visible to the agent as they appear", ok, why)
check("no /lib/modules, /proc or /sys mount beyond /sys/fs/bpf (not needed)",
      not [m for m in agent["volumeMounts"]
           if m["mountPath"].startswith(("/lib/modules", "/proc")) or
           (m["mountPath"].startswith("/sys") and m["mountPath"] != "/sys/fs/bpf")])
proc_sys = {e["name"]: e.get("value") for e in agent.get("env", [])}.get("SLUICE_PROC_SYS")
check("SLUICE_PROC_SYS names where the node's /proc/sys/net is mounted, writable",
      proc_sys is not None and any(
          m["mountPath"] == proc_sys + "/net" and not m.get("readOnly") and
          [v for v in pod["volumes"] if v["name"] == m["name"] and
           v.get("hostPath", {}).get("path") == "/proc/sys/net"]
          for m in agent["volumeMounts"]), f"SLUICE_PROC_SYS={proc_sys}")
cgroup_root = {e["name"]: e.get("value") for e in agent.get("env", [])}.get("SLUICE_CGROUP_ROOT")
check("SLUICE_CGROUP_ROOT names where the node's /sys/fs/cgroup is mounted (not the container's own)",
      cgroup_root is not None and not cgroup_root.startswith("/sys") and any(
          m["mountPath"] == cgroup_root and
          [v for v in pod["volumes"] if v["name"] == m["name"] and
           v.get("hostPath", {}).get("path") == "/sys/fs/cgroup"]
          for m in agent["volumeMounts"]), f"SLUICE_CGROUP_ROOT={cgroup_root}")
check("the agent's readiness probe is 'sluicectl status'",
      agent["readinessProbe"]["exec"]["command"] == ["sluicectl", "status"])
check("liveness and startup probes fail only when the agent is unreachable (exit 3)",
      all("sluicectl status" in " ".join(agent[p]["exec"]["command"]) and
          "-ne 3" in " ".join(agent[p]["exec"]["command"]) for p in ("livenessProbe", "startupProbe")))

inst = inits.get("install-cni", {})
args = inst.get("command", [])[1:] + inst.get("args", [])
opts = dict(zip(args[::2], args[1::2]))
ok_bin, why_bin = same_on_node(inst, opts.get("--cni-bin-dir", "?") + "/sluice-cni")
ok_conf, why_conf = same_on_node(inst, opts.get("--cni-conf-dir", "?") + "/10-sluice.conflist")
check("install-cni writes into the node's /opt/cni/bin and /etc/cni/net.d",
      inst.get("command", [None])[0] == "install-cni.sh" and ok_bin and ok_conf
      and opts.get("--cni-bin-dir") == "/opt/cni/bin" and opts.get("--cni-conf-dir") == "/etc/cni/net.d",
      f"{args}\n{why_bin}\n{why_conf}")
script = read("scripts/install-cni.sh")
check("install-cni.sh installs the plugin under the conflist's type and the conflist under its name",
      f'"$CNI_BIN_DIR" {conflist["plugins"][0]["type"]} 0755' in script
      and '"$CNI_CONF_DIR" 10-sluice.conflist' in script
      and os.path.exists(os.path.join(ROOT, "deploy/cni/10-sluice.conflist")))
check("install-cni gets the ConfigMap too, so a SLUICE_SOCKET there reaches the conflist",
      inst.get("envFrom") == agent.get("envFrom"))

print("== DaemonSet settings")
check("hostNetwork, dnsPolicy ClusterFirstWithHostNet, priority system-node-critical",
      pod.get("hostNetwork") is True and pod.get("dnsPolicy") == "ClusterFirstWithHostNet"
      and pod.get("priorityClassName") == "system-node-critical")
check("tolerates every taint (control-plane, not-ready, network-unavailable)",
      {"operator": "Exists"} in pod.get("tolerations", []))
check("RollingUpdate with maxUnavailable 1",
      ds["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}})
check("SLUICE_NODE_NAME from spec.nodeName; envFrom the ConfigMap",
      {"name": "SLUICE_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
      in agent.get("env", [])
      and agent.get("envFrom") == [{"configMapRef": {"name": cm["metadata"]["name"]}}]
      and cm["metadata"]["namespace"] == ds["metadata"]["namespace"])
sc = agent["securityContext"]
check("not privileged; capabilities: drop ALL, add a short list",
      not sc.get("privileged") and sc["capabilities"]["drop"] == ["ALL"]
      and 0 < len(sc["capabilities"]["add"]) <= 4)
check("init containers drop every capability and are not privileged",
      all(c["securityContext"]["capabilities"] == {"drop": ["ALL"]} and
          not c["securityContext"].get("privileged") for c in inits.values()))
check("resource requests set (CPU and memory)",
      set(agent["resources"].get("requests", {})) == {"cpu", "memory"})
images = {c["image"] for c in pod["containers"] + pod.get("initContainers", [])}
version = re.search(r'#define SLUICE_VERSION "([^"]+)"', read("lib/sluice_version.h")).group(1)
check(f"one image for every container, tagged with SLUICE_VERSION ({images})",
      images == {f"ghcr.io/sluice-cni/sluice:{version}"})

print("== ConfigMap")
data = cm["data"]
commented = re.findall(r"^\s*#\s*(SLUICE_[A-Z_]+):", read("deploy/parts/20-config.yaml"), re.M)
check("every value is a string (on/off quoted)", all(isinstance(v, str) for v in data.values()),
      data)
for key in sorted(set(data) | set(commented)):
    opt = key[len("SLUICE_"):].lower().replace("_", "-")
    check(f"{key} is the agent option --{opt}", opt in options,
          f"options in --help: {sorted(options)}")
install_md = read("docs/INSTALL.md") if os.path.exists(os.path.join(ROOT, "docs/INSTALL.md")) else ""
table = set(re.findall(r"^\| `(SLUICE_[A-Z_]+)`", install_md, re.M))
check("docs/INSTALL.md's settings table lists the ConfigMap's keys, set and commented",
      set(data) | set(commented) <= table, f"table: {sorted(table)}")

# ---- node-check init container: runs, and fails when it should -----------
print("== node-check init container")
node_check = inits["node-check"]["command"]


def run_check(bpffs):
    script = node_check[2].replace("stat -f -c %T /sys/fs/bpf", "stat -f -c %T " + bpffs)
    return subprocess.run(node_check[:2] + [script], capture_output=True, text=True)


with tempfile.TemporaryDirectory() as notbpf:
    r = run_check("/sys/fs/bpf")
    check("passes on a node with bpffs", r.returncode == 0, r.stderr)
    r = run_check(notbpf)
    check("fails without bpffs, saying how to mount it",
          r.returncode == 1 and "mount -t bpf bpf /sys/fs/bpf" in r.stderr, r.stderr)

# ---- the cleanup DaemonSet in docs/INSTALL.md ----------------------------
print("== docs/INSTALL.md's cleanup DaemonSet")
blocks = [d for b in re.findall(r"```yaml\n(.*?)```", install_md, re.S) for d in yaml.safe_load_all(b) if d]
cleanup_ds = [d for d in blocks if d.get("kind") == "DaemonSet"]
check("it parses and names itself", len(cleanup_ds) == 1 and all(
    d.get("apiVersion") and d.get("metadata", {}).get("name") for d in blocks))
if cleanup_ds:
    cpod = cleanup_ds[0]["spec"]["template"]["spec"]
    cmd = " ".join(cpod["containers"][0]["command"])
    helptext_c = subprocess.run([os.path.join(ROOT, "scripts/node-cleanup.sh"), "--help"],
                                capture_output=True, text=True).stdout
    cdefaults = dict(re.findall(r"(--[a-z-]+) +\S+ +\[\w+\] \(default (\S+)\)", helptext_c))
    want = {o: "/host" + d for o, d in cdefaults.items()}
    got = dict(re.findall(r"(--[a-z-]+) (/host[^\s;]+)", cmd))
    check(f"node-cleanup.sh gets every default path under /host ({len(want)})",
          len(want) == 5 and got == want, f"want {want}\ngot {got}")
    check("the node's / is mounted at /host, host network",
          cpod.get("hostNetwork") is True and cpod["volumes"] == [{"name": "host", "hostPath": {"path": "/"}}]
          and cpod["containers"][0]["volumeMounts"][0]["mountPath"] == "/host")
    check("same image as the agent", cpod["containers"][0]["image"] in images)

# ---- Containerfile ---------------------------------------------------------
print("== Containerfile")
cf = read("Containerfile")
stages = re.split(r"^FROM\s+", cf, flags=re.M)[1:]
runtime = stages[-1] if stages else ""
m = re.search(r"apt-get install ((?:[^\n]*\\\n)*[^\n]*)", runtime)
words = shlex.split(m.group(1).replace("\\\n", " ")) if m else []
pkgs = set()
for w in words:
    if w in ("&&", ";"):
        break
    if not w.startswith("-"):
        pkgs.add(w)
check(f"two stages: debian:12 builds, debian:12-slim runs ({len(pkgs)} runtime packages)",
      len(stages) == 2 and re.match(r"\S*debian:12\s+AS\s+build", stages[0], re.I)
      and re.match(r"\S*debian:12-slim\b", runtime) and "make deps" in stages[0]
      and re.search(r"\bmake\b(?! deps)", stages[0]), stages[0][:400])
contract = {"libbpf1", "libelf1", "zlib1g", "libmnl0", "libjansson4", "libyaml-0-2", "libcurl4"}
check("the runtime packages include the agent's contract list", contract <= pkgs,
      f"missing {sorted(contract - pkgs)}")


def package_of(lib_path):
    real = os.path.realpath(lib_path)
    for cand in (real, real.replace("/usr/lib/", "/lib/", 1), real.replace("/lib/", "/usr/lib/", 1),
                 lib_path):
        r = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    return None


for b in ("sluice-agent", "sluice-cni", "sluicectl"):
    exe = os.path.join(BUILD, b)
    needed = re.findall(r"NEEDED\s+(\S+)", subprocess.run(["objdump", "-p", exe], capture_output=True,
                                                          text=True).stdout)
    ldd = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(["ldd", exe], capture_output=True,
                                                                text=True).stdout, re.M))
    missing = []
    for lib in needed:
        pkg = package_of(ldd.get(lib, lib))
        if pkg != "libc6" and pkg not in pkgs:
            missing.append(f"{lib} ({pkg})")
    check(f"every library {b} links ({', '.join(needed)}) comes from a runtime package",
          needed and not missing, f"not installed by the Containerfile: {missing}")
for f in ("sluice-agent", "sluice-cni", "sluicectl", "install-cni.sh", "node-cleanup.sh"):
    check(f"the image has {f} in /usr/local/bin",
          re.search(rf"^COPY\b[^\n]*/{re.escape(f)}\b[^\n]* /usr/local/bin/\s*$", runtime, re.M))
check("the image has the conflist where install-cni.sh looks for it",
      re.search(r"^COPY\b[^\n]*deploy/cni/10-sluice.conflist /usr/local/share/sluice/", runtime, re.M)
      and "/usr/local/share/sluice/10-sluice.conflist" in script)
check("iproute2 in the image (node-cleanup.sh's ip and tc)", "iproute2" in pkgs)
for c in pod["containers"] + pod.get("initContainers", []):
    cmd = c["command"][0]
    check(f"container {c['name']} runs {cmd}, which the image has",
          cmd == "sh" or re.search(rf"/{re.escape(cmd)}\b[^\n]* /usr/local/bin/", runtime))

print(f"manifests: {PASS} passed, {FAIL} failed")
sys.exit(1 if FAIL else 0)
