#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# sluicectl against a running agent: apply --dry-run=server changes nothing
# (objects, saved files, maps, syncs) and says created/configured/unchanged;
# --dry-run=client needs no agent; diff prints a unified diff per changed
# object with kubectl diff's exit codes; version reports the client, the
# agent, its BPF objects, the pinned maps' layout versions and the kernel's
# features; the bash completion offers commands, kinds, flags and the
# agent's object names.
set -uo pipefail
TEST_NAME=cli-apply
source "$(dirname "$0")/../lib/common.sh"
need_root

ID=slcli$$
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-cli-apply.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
CIDR=10.246.0.0/24
SOCK=$DIR/agent.sock
CLEANUP_PATHS+=("$DIR" "$BPFFS")
CONF=$(printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK")
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }
export BUILD SOCK
# tcx probed (auto), so version has a tcx answer to report.
AGENT_ARGS="${AGENT_ARGS:-} --attach-mode auto --kube-proxy-replacement off"

netns_add "$NODE"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
# One local pod, so that policy has map entries to change.
netns_add "$ID-web"
POD_NAMESPACE=shop cni ADD web "/run/netns/$ID-web" "$CONF" >/dev/null || exit 1

cat >"$DIR/base.yaml" <<'EOF'
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: web}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 80}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-in, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{ports: [{port: 80}]}]
EOF
ctl apply -f "$DIR/base.yaml" >/dev/null || exit 1

# The change a dry run describes: the namespace relabelled, the pod as it
# is, a new pod with an address (an ipcache entry), the policy with a
# second port (policy map entries).
cat >"$DIR/change.yaml" <<'EOF'
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.246.9.9, phase: Running}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-in, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{ports: [{port: 80}, {port: 8080}, {port: 9090, protocol: UDP}]}]
EOF

map_count() { bpftool -j map dump pinned "$BPFFS/$1" | jq length; }
# The agent's state as far as an apply can change it.
state() {
	ctl get namespaces -o json | jq -c .
	ctl get pods -o json | jq -c '[.items[] | {name, labels, ip}]'
	ctl get policies -o json | jq -c '[.items[] | {name, selectedPods}]'
	echo "policy map: $(map_count sluice_pol_v1)"
	echo "ipcache: $(map_count sluice_ipc_v2)"
	ctl status -o json | jq -c '{syncs: .controlPlane.policySyncs, services: .controlPlane.servicesSyncs}'
	find "$DIR/state" -name 'objects.*' -type f -print0 | sort -z | xargs -0 sha256sum
}

echo "== apply --dry-run=server changes nothing"
state >"$DIR/before"
out=$(ctl apply --dry-run=server -f "$DIR/change.yaml")
rc=$?
check "exit 0" test "$rc" = 0
check "it says what apply would do, (server dry run)" test "$out" = "namespace shop configured (server dry run)
pod shop/web unchanged (server dry run)
pod shop/db created (server dry run)
networkpolicy shop/web-in configured (server dry run)"
state >"$DIR/after"
check "objects, policy and ipcache map entries, syncs and saved files as before" \
	diff -u "$DIR/before" "$DIR/after"
check "the maps hold entries the apply would change (the check can see a change)" \
	bash -c "[ \$(bpftool -j map dump pinned '$BPFFS/sluice_pol_v1' | jq length) -gt 0 ]"
check "a refused object is refused by the dry run too, naming it; nothing changes" bash -c "
	printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: bad, labelz: {}}\n' |
		'$BUILD/sluicectl' --socket '$SOCK' apply --dry-run=server -f - 2>&1 >/dev/null |
		grep -q 'metadata.labelz: unknown field'"
state >"$DIR/after2"
check "still nothing changed" diff -u "$DIR/before" "$DIR/after2"
check "--dry-run=bogus is a usage error" bash -c \
	"ctl() { '$BUILD/sluicectl' --socket '$SOCK' \"\$@\"; }; ctl apply --dry-run=bogus -f '$DIR/change.yaml'; [ \$? = 2 ]"

echo "== apply --dry-run=client needs no agent"
out=$("$BUILD/sluicectl" --socket "$DIR/none.sock" apply --dry-run=client -f "$DIR/change.yaml")
check "exit 0 without an agent, every object listed, (dry run)" test "$out" = "namespace shop checked (dry run)
pod shop/web checked (dry run)
pod shop/db checked (dry run)
networkpolicy shop/web-in checked (dry run)"
check "-o json: the request that would be sent" bash -c "
	'$BUILD/sluicectl' --socket '$DIR/none.sock' apply --dry-run=client -o json -f '$DIR/change.yaml' |
		jq -e '.op == \"apply\" and (.objects | length) == 4 and .validate == \"strict\"'"
check "a typo'd field fails the client dry run (exit 1)" bash -c "
	printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labelz: {}}\n' |
		'$BUILD/sluicectl' --socket '$DIR/none.sock' apply --dry-run=client -f - 2>/dev/null; [ \$? = 1 ]"
check "a kind sluice does not take fails it (exit 1)" bash -c "
	printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n' |
		'$BUILD/sluicectl' --socket '$DIR/none.sock' apply --dry-run=client -f - 2>&1 |
		grep -q 'kind ConfigMap is not a kind sluice takes'"

echo "== diff"
ctl diff -f "$DIR/base.yaml" >"$DIR/diff0"
rc=$?
check "the applied file: exit 0, no output" test "$rc" = 0 -a ! -s "$DIR/diff0"
ctl diff -f "$DIR/change.yaml" >"$DIR/diff1"
rc=$?
check "the changed file: exit 1" test "$rc" = 1
check "the relabelled namespace: its label line removed and added" bash -c "
	grep -A12 -- '^--- live/Namespace/shop\$' '$DIR/diff1' | grep -q '^-      \"team\": \"web\"' &&
	grep -A12 -- '^--- live/Namespace/shop\$' '$DIR/diff1' | grep -q '^+      \"team\": \"shop\"'"
check "the new pod: from /dev/null, every line added" bash -c "
	grep -A1 -- '^--- /dev/null' '$DIR/diff1' | grep -q '^+++ Pod/shop/db' &&
	grep -q '^@@ -0,0 +1,' '$DIR/diff1'"
check "the unchanged pod is not in the diff" bash -c "! grep -q 'Pod/shop/web' '$DIR/diff1'"
check "the policy: its new ports added" bash -c "grep -q '^+ *\"port\": 8080' '$DIR/diff1'"
check "headers and hunks: one --- per changed object (3)" \
	test "$(grep -c '^--- ' "$DIR/diff1")" = 3
ctl diff -f "$DIR/base.yaml" -f "$DIR/change.yaml" >/dev/null 2>"$DIR/diff2.err"
rc=$?
check "an object twice: the agent's error, exit 2" bash -c "[ $rc = 2 ] && grep -q 'appears twice' '$DIR/diff2.err'"
"$BUILD/sluicectl" --socket "$DIR/none.sock" diff -f "$DIR/base.yaml" >/dev/null 2>&1
check "no agent: exit 3" test $? = 3
state >"$DIR/after3"
check "diff changed nothing" diff -u "$DIR/before" "$DIR/after3"

echo "== version"
ctl version -o json >"$DIR/version.json"
check "exit 0, client and agent versions" \
	jq -e '.clientVersion != null and .agent.version == .clientVersion and .agent.node == "'"$NODE"'"' \
	"$DIR/version.json"
ep_layout=$(sed -n 's/.*SLUICE_MAP_ENDPOINTS *"sluice_ep_v\([0-9]*\)".*/\1/p' "$ROOT/include/sluice/datapath.h")
check "pinned maps with their layout version: sluice_ep_v$ep_layout is layout $ep_layout" \
	jq -e --argjson l "$ep_layout" '.agent.bpf.maps[] | select(.name == "sluice_ep_v\($l)") | .layout == $l' \
	"$DIR/version.json"
check "every map it names is pinned under --bpffs" bash -c "
	for m in \$(jq -r '.agent.bpf.maps[].name' '$DIR/version.json'); do
		[ -e '$BPFFS'/\$m ] || { echo \"\$m not pinned\"; exit 1; }
	done"
check "every pinned sluice map is named" bash -c "
	for p in '$BPFFS'/sluice_*; do
		jq -e --arg m \"\${p##*/}\" '.agent.bpf.maps | any(.name == \$m)' '$DIR/version.json' >/dev/null ||
			{ echo \"\$p not in version\"; exit 1; }
	done"
check "the BPF objects with their size and checksum" \
	jq -e '[.agent.bpf.objects[] | select(.bytes > 0 and (.fnv64 | length) == 16)] | length == 5' \
	"$DIR/version.json"
btf=false
[ -r /sys/kernel/btf/vmlinux ] && btf=true
check "kernel: BTF $btf, tcx probed and in use (--attach-mode auto on $(uname -r))" \
	jq -e --argjson btf "$btf" '.agent.kernel.btf == $btf and .agent.kernel.tcx == true and
		.agent.kernel.attachMode == "tcx" and .agent.kernel.release == "'"$(uname -r)"'"' \
	"$DIR/version.json"
check "text: Client Version and Agent Version lines" bash -c "
	'$BUILD/sluicectl' --socket '$SOCK' version | grep -q '^Client Version: ' &&
	'$BUILD/sluicectl' --socket '$SOCK' version | grep -q '^Agent Version: .*(node $NODE)'"
"$BUILD/sluicectl" --socket "$DIR/none.sock" version >"$DIR/v.out" 2>/dev/null
check "no agent: the client's version, exit 3" bash -c "[ $? = 3 ] && grep -q '^Client Version:' '$DIR/v.out'"

echo "== completion"
# comp WORDS...: what the bash completion offers for the last word, with
# the sluicectl under test first on PATH (the script runs it for names).
comp() {
	PATH="$BUILD:$PATH" bash -c 'source <("$BUILD/sluicectl" completion bash)
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_sluicectl; printf "%s\n" "${COMPREPLY[@]}"' comp "$@"
}
check "complete -p: _sluicectl for sluicectl" bash -c \
	'source <("$BUILD/sluicectl" completion bash); complete -p sluicectl | grep -qx "complete -F _sluicectl sluicectl"'
comp sluicectl '' | sort >"$DIR/c0"
check "commands" test "$(tr '\n' ' ' <"$DIR/c0")" = "apply completion delete describe diff get metrics observe policy status top version "
comp sluicectl d | sort >"$DIR/c1"
check "a prefix: d -> delete describe diff" test "$(tr '\n' ' ' <"$DIR/c1")" = "delete describe diff "
comp sluicectl get '' >"$DIR/c2"
check "kinds after get" grep -qx services "$DIR/c2"
check "every kind it offers is one get takes" bash -c "
	for k in \$(cat '$DIR/c2'); do '$BUILD/sluicectl' --socket '$SOCK' get \$k >/dev/null || { echo \"get \$k fails\"; exit 1; }; done"
comp sluicectl apply --dry >"$DIR/c3"
check "flags: apply --dry -> --dry-run=client|server|none" \
	test "$(tr '\n' ' ' <"$DIR/c3")" = "--dry-run=client --dry-run=server --dry-run=none "
comp sluicectl --socket "$SOCK" get namespaces '' >"$DIR/c4"
check "names from the agent: get namespaces -> shop" grep -qx shop "$DIR/c4"
comp sluicectl --socket "$SOCK" get pods -n shop w >"$DIR/c5"
check "names from the agent, in the line's namespace: get pods -n shop w -> web" \
	test "$(cat "$DIR/c5")" = web
check "zsh: a #compdef script that loads it through bashcompinit" bash -c \
	"'$BUILD/sluicectl' completion zsh | head -1 | grep -qx '#compdef sluicectl' && '$BUILD/sluicectl' completion zsh | grep -q bashcompinit"
# zcomp WORDS...: what the completion offers under zsh (the script loaded
# as a user's .zshrc would; zsh's completion system filters by the prefix
# afterwards, so the last word is left empty). Bash's arrays are 0-based:
# bashcompinit sets ksharrays when it calls the function, as here.
zcomp() {
	PATH="$BUILD:$PATH" zsh -c 'source <("$BUILD/sluicectl" completion zsh)
		[[ ${_comps[sluicectl]} == *_sluicectl* ]] || { print "not registered"; exit 1; }
		setopt ksharrays; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_sluicectl; print -l -- "${COMPREPLY[@]}"' zcomp "$@"
}
if command -v zsh >/dev/null; then
	zcomp sluicectl get '' >"$DIR/z1" 2>&1
	check "zsh: registered for sluicectl; kinds after get" bash -c "grep -qx pods '$DIR/z1' && ! grep -qx describe '$DIR/z1'"
	zcomp sluicectl --socket "$SOCK" get pods -n shop '' >"$DIR/z2" 2>&1
	check "zsh: names from the agent in the line's namespace: get pods -n shop -> web" grep -qx web "$DIR/z2"
else
	not_ok "zsh is not installed (make deps)"
fi
"$BUILD/sluicectl" completion fish >/dev/null 2>&1
check "completion fish: usage error" test $? = 2

summary
