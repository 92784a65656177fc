#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# deploy/sluice.yaml against a Kubernetes API: the test API server
# (tests/kube/apiserver.py) runs on 127.0.0.1 inside a node network namespace;
# kubectl applies the manifest and the policy examples of docs/*.md (and a
# broken one, which the server's CRD schema refuses); then sluice-agent runs
# as the DaemonSet would run it: the ConfigMap's keys and SLUICE_NODE_NAME in
# its environment, in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT, a
# service-account token and CA), the DaemonSet's capabilities, no pod CIDR and
# no device given. Its readiness probe must pass, it must pick up the Node's
# pod CIDR and uplink, and every request it makes must be a list or a watch
# of a resource the ClusterRole grants (the test server does not enforce
# RBAC, so its request counters are compared instead). Run by
# tests/deploy/run.sh; skips when kubectl or the test server is missing.
set -uo pipefail
TEST_NAME=${TEST_NAME:-deploy-kube}
source "$(dirname "$0")/../lib/common.sh"
need_root

KUBE_DIR=${SLUICE_KUBE_TESTS_DIR:-$ROOT/tests/kube}
if [ ! -f "$KUBE_DIR/apiserver.py" ] || [ ! -f "$KUBE_DIR/certs.sh" ]; then
	echo "  skip kubectl apply against the test API server: $KUBE_DIR/apiserver.py is absent"
	exit 0
fi
if ! command -v kubectl >/dev/null; then
	echo "  skip kubectl apply against the test API server: kubectl is not installed (not in Debian)"
	exit 0
fi
for tool in jq setpriv openssl; do
	command -v "$tool" >/dev/null || { not_ok "$tool is installed (make deps)"; summary; exit 1; }
done

ID=sldk$$
DIR=$(mktemp -d /tmp/sluice-deploy-kube.XXXXXX)
K=$DIR/kube
NODE=$ID-node
BPFFS=/sys/fs/bpf/$ID
CLEANUP_PATHS+=("$DIR" "$BPFFS")
PY=/usr/bin/python3

netns_add "$NODE"
netns_add "$ID-wire"
ip -n "$NODE" link add up0 type veth peer name wire0 netns "$ID-wire"
ip -n "$NODE" addr add 192.0.2.10/24 dev up0
ip -n "$NODE" link set up0 up
ip -n "$ID-wire" link set wire0 up
innode() { nsenter --net="/run/netns/$NODE" "$@"; }
# exited_saying RC REGEX ACTUAL_RC OUTPUT
exited_saying() {
	[ "$3" -eq "$1" ] && grep -qE -- "$2" <<<"$4" && return 0
	echo "exit $3, output:"
	printf '%s\n' "$4"
	return 1
}

echo "== the test API server on 127.0.0.1 in the node's namespace"
bash "$KUBE_DIR/certs.sh" "$K" 127.0.0.1 >/dev/null || { not_ok "certs.sh"; summary; exit 1; }
SA_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
{ cat "$K/tokens"; echo "$SA_TOKEN,system:serviceaccount:sluice-system:sluice"; } >"$DIR/tokens"
innode "$PY" "$KUBE_DIR/apiserver.py" --listen 127.0.0.1:0 --port-file "$DIR/port" \
	--cert "$K/server.crt" --key "$K/server.key" --client-ca "$K/ca.crt" \
	--token-file "$DIR/tokens" --writable-status >"$DIR/apiserver.log" 2>&1 &
CLEANUP_PIDS+=($!)
for _ in $(seq 100); do [ -s "$DIR/port" ] && break; sleep 0.1; done
PORT=$(cat "$DIR/port" 2>/dev/null)
check "the API server listens (port ${PORT:-none})" test -n "$PORT"
[ -n "$PORT" ] || { cat "$DIR/apiserver.log"; summary; exit 1; }
bash "$KUBE_DIR/certs.sh" "$K" "127.0.0.1:$PORT" >/dev/null
kc() { innode kubectl --kubeconfig "$K/kubeconfig-cert" "$@"; }

echo "== kubectl apply -f deploy/sluice.yaml"
out=$(kc apply -f "$ROOT/deploy/sluice.yaml" 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/       /'
want=$($PY -c 'import sys, yaml; print(sum(1 for d in yaml.safe_load_all(open(sys.argv[1])) if d))' \
	"$ROOT/deploy/sluice.yaml")
check "kubectl apply succeeds and creates all $want objects" \
	test "$rc" -eq 0 -a "$(grep -c ' created$' <<<"$out")" -eq "$want"
check "every object can be read back" \
	test "$(kc get -f "$ROOT/deploy/sluice.yaml" -o name 2>/dev/null | wc -l)" -eq "$want"
check "the DaemonSet is stored as written (hostNetwork, capabilities, probe)" \
	bash -c "innode() { nsenter --net=/run/netns/$NODE \"\$@\"; }
		innode kubectl --kubeconfig '$K/kubeconfig-cert' -n sluice-system get ds sluice -o json |
		jq -e '.spec.template.spec.hostNetwork == true and
			(.spec.template.spec.containers[0].securityContext.capabilities.add | length > 0) and
			.spec.template.spec.containers[0].readinessProbe.exec.command == [\"sluicectl\", \"status\"]'"
out=$(kc apply -f "$ROOT/deploy/sluice.yaml" 2>&1)
check "a second apply changes nothing" test "$(grep -c ' unchanged$' <<<"$out")" -eq "$want"
check "the policy and prefilter CRDs are served" \
	bash -c "nsenter --net=/run/netns/$NODE kubectl --kubeconfig '$K/kubeconfig-cert' api-resources --api-group=sluice.io -o name |
		sort | tr '\n' ' ' | grep -qx 'sluiceclusternetworkpolicies.sluice.io sluicenetworkpolicies.sluice.io sluiceprefilters.sluice.io '"

echo "== the policy examples of docs/*.md through the API"
$PY - "$ROOT" "$DIR/examples.yaml" <<'EOF'
import glob, re, sys, yaml
root, out = sys.argv[1], sys.argv[2]
docs, namespaces = [], set()
for md in sorted(glob.glob(root + "/docs/*.md")):
    for block in re.findall(r"```yaml\n(.*?)```", open(md).read(), re.S):
        for d in yaml.safe_load_all(block):
            if isinstance(d, dict) and d.get("apiVersion") == "sluice.io/v1alpha1":
                docs.append(d)
                if d["metadata"].get("namespace"):
                    namespaces.add(d["metadata"]["namespace"])
ns = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in sorted(namespaces)]
yaml.safe_dump_all(ns + docs, open(out, "w"))
EOF
out=$(kc apply -f "$DIR/examples.yaml" 2>&1)
rc=$?
check "kubectl applies every example ($(grep -c created <<<"$out") created)" \
	exited_saying 0 'sluicenetworkpolicy.sluice.io/.* created' "$rc" "$(tr '\n' ' ' <<<"$out")"
cat >"$DIR/broken.yaml" <<EOF
apiVersion: sluice.io/v1alpha1
kind: SluiceNetworkPolicy
metadata: {namespace: default, name: broken}
spec:
  podSelector: {}
  mode: Block
  ingress: [{icmp: [{type: 300}]}]
EOF
out=$(kc apply -f "$DIR/broken.yaml" 2>&1)
rc=$?
check "the server refuses a broken policy, naming both fields" exited_saying 1 \
	'(spec.mode: Unsupported value.*icmp\[0\].type: Invalid value: 300|icmp\[0\].type: Invalid value: 300.*spec.mode: Unsupported value)' \
	"$rc" "$(tr '\n' ' ' <<<"$out")"

echo "== the agent as the DaemonSet runs it"
cat >"$DIR/node.yaml" <<EOF
apiVersion: v1
kind: Node
metadata: {name: $NODE}
spec: {podCIDR: 10.247.1.0/24}
status: {addresses: [{type: InternalIP, address: 192.0.2.10}, {type: Hostname, address: $NODE}]}
EOF
check "kubectl creates the node's Node object" kc apply -f "$DIR/node.yaml"
mkdir -p "$DIR/sa"
printf '%s' "$SA_TOKEN" >"$DIR/sa/token"
cp "$K/ca.crt" "$DIR/sa/ca.crt"
printf 'sluice-system' >"$DIR/sa/namespace"
# The agent container's environment, command, capabilities and probes.
$PY - "$ROOT/deploy/sluice.yaml" "$DIR" <<'EOF'
import shlex, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cm = next(d for d in docs if d["kind"] == "ConfigMap")
ds = next(d for d in docs if d["kind"] == "DaemonSet")
c = next(c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == "agent")
env = dict(cm["data"])
for e in c.get("env", []):
    if e["name"] == "SLUICE_PROC_SYS":
        # the container's /host/proc/sys is the node's /proc/sys, and this
        # test runs the agent on the "node" itself
        assert e["value"] == "/host/proc/sys", e
        env[e["name"]] = "/proc/sys"
        continue
    if e["name"] == "SLUICE_CGROUP_ROOT":
        # the node's cgroup v2 root, mounted into the container; here the
        # agent finds this machine's own (the default)
        assert e["value"] == "/host/sys/fs/cgroup", e
        continue
    assert e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName", e
    env[e["name"]] = "@NODE_NAME@"
with open(sys.argv[2] + "/agent.env", "w") as f:
    for k, v in env.items():
        f.write(f"{k}={v}\n")
with open(sys.argv[2] + "/agent.cmd", "w") as f:
    f.write(shlex.join(c["command"] + c.get("args", [])) + "\n")
with open(sys.argv[2] + "/agent.caps", "w") as f:
    f.write(",".join("+" + a.lower() for a in c["securityContext"]["capabilities"]["add"]) + "\n")
for p in ("readinessProbe", "livenessProbe"):
    with open(f"{sys.argv[2]}/{p}", "w") as f:
        f.write(shlex.join(c[p]["exec"]["command"]) + "\n")
EOF
mapfile -t AGENT_ENV < <(sed "s|@NODE_NAME@|$NODE|" "$DIR/agent.env")
# Only the paths differ from the DaemonSet: this node is a namespace on a
# machine that may run other tests.
RUN_ENV=(SLUICE_SOCKET="$DIR/run/sluice.sock" SLUICE_STATE_DIR="$DIR/state" SLUICE_BPFFS="$BPFFS")
POD_ENV=(KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$PORT"
	SLUICE_SERVICEACCOUNT_DIR="$DIR/sa")
# shellcheck disable=SC2046 # the DaemonSet's command, word by word
env -i PATH="$BUILD:$PATH" "${AGENT_ENV[@]}" "${RUN_ENV[@]}" "${POD_ENV[@]}" \
	nsenter --net="/run/netns/$NODE" setpriv --bounding-set=-all,"$(cat "$DIR/agent.caps")" \
	$(cat "$DIR/agent.cmd") >"$DIR/agent.log" 2>&1 &
AGENT_PID=$!
CLEANUP_PIDS+=("$AGENT_PID")
probe_cmd() { env -i PATH="$BUILD:$PATH" "${RUN_ENV[@]}" bash -c "$(cat "$DIR/$1")" >/dev/null 2>&1; }
ready=0
for _ in $(seq 200); do
	probe_cmd readinessProbe && { ready=1; break; }
	kill -0 "$AGENT_PID" 2>/dev/null || break
	sleep 0.1
done
check "the readiness probe ($(cat "$DIR/readinessProbe")) passes" test "$ready" = 1
[ "$ready" = 1 ] || sed 's/^/       /' "$DIR/agent.log" | tail -n 20
check "the liveness probe passes" probe_cmd livenessProbe
status=$(env "${RUN_ENV[@]}" "$BUILD/sluicectl" status -o json 2>/dev/null)
check "pod CIDR from the Node object, uplink from its InternalIP, routing from the ConfigMap" \
	bash -c "jq -e '.podCIDR == \"10.247.1.0/24\" and .routing == \"overlay\" and .node == \"$NODE\"' <<<'$status' &&
		grep -q 'device up0 holds' '$DIR/agent.log'"
check "in-cluster configuration with the service account's token" \
	bash -c "jq -e '.kubernetes.connected == true' <<<'$status'"
check "the docs' policies reached the agent from the API" \
	bash -c "env ${RUN_ENV[*]} '$BUILD/sluicectl' get policies -A -o json |
		jq -e '[.items[].name] | contains([\"no-db-from-frontend\", \"audit-egress-to-internet\"])'"

echo "== what the agent asked the API for"
stats=$(kc get --raw /_test/stats 2>/dev/null)
granted=$($PY - "$ROOT/deploy/sluice.yaml" <<'EOF'
import sys, yaml
role = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "ClusterRole")
print(" ".join(sorted(f"{r}.{g}" if g else r for rule in role["rules"]
                      for g in rule["apiGroups"] for r in rule["resources"])))
EOF
)
agent_stats=$(jq -c '[.byUserAgent | to_entries[] | select(.key | startswith("sluice-agent/")) | .value][0]' <<<"$stats")
check "the agent's requests are all lists and watches" \
	jq -e '.requests > 0 and .requests == ([.lists[], .watches[]] | add)' <<<"$agent_stats"
check "it lists and watches exactly what the ClusterRole grants ($granted)" \
	test "$(jq -r '[.lists | keys[]] | sort | join(" ")' <<<"$agent_stats")" = "$granted" -a \
	     "$(jq -r '[.watches | keys[]] | sort | join(" ")' <<<"$agent_stats")" = "$granted"
[ "$(jq -r '[.lists | keys[]] | sort | join(" ")' <<<"$agent_stats")" = "$granted" ] ||
	echo "       agent: $agent_stats"

kill -TERM "$AGENT_PID" 2>/dev/null
wait "$AGENT_PID" 2>/dev/null
check "kubectl delete -f deploy/sluice.yaml removes every object" \
	bash -c "nsenter --net=/run/netns/$NODE kubectl --kubeconfig '$K/kubeconfig-cert' delete -f '$ROOT/deploy/sluice.yaml' --wait=false --ignore-not-found >/dev/null &&
		! nsenter --net=/run/netns/$NODE kubectl --kubeconfig '$K/kubeconfig-cert' get -f '$ROOT/deploy/sluice.yaml' -o name 2>/dev/null | grep -q ."
summary
