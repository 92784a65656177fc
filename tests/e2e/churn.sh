#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Churn without leaks: CYCLES pod ADD/DEL cycles through the real sluice-cni,
# PAR at a time, against one agent with policies applied (so every pod has
# policy map entries); every TRAFFIC_EVERY-th cycle sends TCP and UDP to a
# server pod before its DEL (conntrack entries for the pod). With KILLS=1
# the agent is killed with SIGKILL at a random point of every block of 100
# cycles (but the first and the last two) and started again on the same
# state; calls that fail with code 11 meanwhile are retried, as a runtime
# does. At the end, with no pod left:
#   - IPAM: no reservation (state files and sluicectl status), no endpoint
#     state file, no host veth, no interface left in the pods' namespaces;
#   - maps: sluice_ep_v2 empty, sluice_pol_v1 and sluice_deny_v1 empty (every
#     entry is keyed by a pod's veth), sluice_ipc_v2 what it was right after
#     start, no sluice_ct4_v1 entry with a pod address;
#   - bpffs: exactly the pins present right after start;
#   - the agent process: fds and threads back to their values after the
#     warm-up (the first 100 cycles this process ran), VmRSS growth from
#     then to the end under 1 MiB.
# Prints cycles/s, ADD and DEL p50/p99, VmRSS, fds and threads.
#
#   tests/e2e/churn.sh                               CYCLES=200 PAR=16
#   CYCLES=1000 PAR=16 KILLS=1 tests/e2e/churn.sh     (make soak)
set -uo pipefail
TEST_NAME=churn
source "$(dirname "$0")/../lib/common.sh"
need_root

CYCLES=${CYCLES:-200}
PAR=${PAR:-16}
KILLS=${KILLS:-0}
TRAFFIC_EVERY=${TRAFFIC_EVERY:-4}
BLOCK=100	# cycles between samples (and between kills)
# The RSS bound the issue states: growth after the warm-up, in KiB.
RSS_GROWTH_MAX_KB=1024
if [ "$CYCLES" -lt $((2 * BLOCK)) ] || [ $((CYCLES % BLOCK)) -ne 0 ]; then
	echo "$TEST_NAME: CYCLES must be a multiple of $BLOCK, at least $((2 * BLOCK))" >&2
	exit 2
fi

ID=slch$$
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-churn.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
CIDR=10.251.0.0/24
PREFIX=10.251.0.
SOCK=$DIR/agent.sock
CLEANUP_PATHS+=("$DIR" "$BPFFS")
CONF=$(printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK")
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }
dump() { bpftool map dump pinned "$BPFFS/$1" -j; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# cni_retry CMD CONTAINER NETNS: the plugin, called again while it fails
# with code 11 (agent unreachable: being restarted), for up to 120 s.
cni_retry() {
	local out rc end=$(($(now_ms) + 120000))
	while :; do
		out=$(cni "$@" "$CONF" 2>>"$DIR/cni.log")
		rc=$?
		[ $rc -eq 0 ] && { printf '%s' "$out"; return 0; }
		if [ "$(jq -r '.code // empty' <<<"$out" 2>/dev/null)" != 11 ] || [ "$(now_ms)" -gt $end ]; then
			printf '%s' "$out"
			return $rc
		fi
		echo retry >>"$DIR/retries"
		sleep 0.1
	done
}

# worker SLOT FIRST LAST: cycles FIRST..LAST whose number is SLOT modulo PAR,
# each in the slot's pod namespace. One line per cycle in $DIR/times:
# "add_ms del_ms", or a FAIL line.
worker() {
	local slot=$1 first=$2 last=$3 c t0 t1 t1b t2 out ip ns=$ID-s$1
	for ((c = first; c <= last; c++)); do
		[ $((c % PAR)) -eq "$slot" ] || continue
		t0=$(now_ms)
		if ! out=$(cni_retry ADD "c$ID-$c" "/run/netns/$ns"); then
			echo "FAIL ADD cycle $c: $out" >>"$DIR/times"
			cni_retry DEL "c$ID-$c" "/run/netns/$ns" >/dev/null
			echo >>"$DIR/done"
			continue
		fi
		t1=$(now_ms)
		ip=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)
		echo "$ip" >>"$DIR/addrs"
		if [ $((c % TRAFFIC_EVERY)) -eq 0 ]; then
			# Through a kill the datapath keeps forwarding; a pod may still
			# be without its policy for a moment after a restart: no check.
			probe "$ns" tcp "$SRV_IP" 8080 --timeout 1000 >/dev/null 2>&1 ||
				echo "tcp $c" >>"$DIR/traffic_failed"
			probe "$ns" udp "$SRV_IP" 8081 --timeout 1000 >/dev/null 2>&1 ||
				echo "udp $c" >>"$DIR/traffic_failed"
		fi
		t1b=$(now_ms)
		if ! out=$(cni_retry DEL "c$ID-$c" "/run/netns/$ns"); then
			echo "FAIL DEL cycle $c: $out" >>"$DIR/times"
			echo >>"$DIR/done"
			continue
		fi
		t2=$(now_ms)
		echo "$((t1 - t0)) $((t2 - t1b))" >>"$DIR/times"
		echo >>"$DIR/done"
	done
}

# proc_sample: "rss_kb fds threads" of the running agent.
proc_sample() {
	printf '%s %s %s\n' "$(awk '/^VmRSS/ {print $2}' "/proc/$AGENT_PID/status")" \
		"$(ls "/proc/$AGENT_PID/fd" | wc -l)" "$(ls "/proc/$AGENT_PID/task" | wc -l)"
}

# ct_with PREFIX: how many conntrack entries have an address starting
# with PREFIX ("10.251.0.": any pod's; "10.251.0.7": one pod's, and .7x).
ct_with() {
	dump sluice_ct4_v1 | jq --arg p "$1" \
		'[.[] | .formatted.key | [.saddr, .daddr] |
		  map([(. % 256), ((. / 256 | floor) % 256), ((. / 65536 | floor) % 256),
		       (. / 16777216 | floor)] | map(tostring) | join(".")) |
		  select(any(. == $p or startswith($p)))] | length'
}

# The restarted agent loads its programs again: seconds of verifier time
# when the machine is busy.
AGENT_START_TIMEOUT=120
restart_agent() {
	kill -9 "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null
	sleep "0.$((RANDOM % 5))"
	start_agent "$NODE" "$CIDR" "$DIR" || return 1
	echo "$AGENT_PID" >>"$DIR/agent_pids"
}

netns_add "$NODE"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
echo "$AGENT_PID" >"$DIR/agent_pids"
find "$BPFFS" | sort >"$DIR/pins.start"
dump sluice_ipc_v2 | jq -c 'map(.key) | sort' >"$DIR/ipc.start"

# Every pod of namespace default is isolated both ways and open to the
# others on TCP 8080 and UDP 8081: policy map entries for every pod, with
# every other pod's identity as the peer.
ctl apply -f - >/dev/null <<'YAML' || { not_ok "policies applied"; exit 1; }
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: default, name: churn-in}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {}}]
    ports: [{protocol: TCP, port: 8080}, {protocol: UDP, port: 8081}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: default, name: churn-out}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {}}]
    ports: [{protocol: TCP, port: 8080}, {protocol: UDP, port: 8081}]
YAML

netns_add "$ID-srv"
SRV_IP=$(cni ADD "c$ID-srv" "/run/netns/$ID-srv" "$CONF" | jq -r '.ips[0].address' | cut -d/ -f1)
check "the server pod is added" test -n "$SRV_IP"
serve "$ID-srv" --tcp 8080 --udp 8081 || not_ok "echo servers in the server pod"
for ((s = 0; s < PAR; s++)); do
	netns_add "$ID-s$s"
done
# What the end checks look for is there while a pod lives: its endpoint,
# its policy entries, its conntrack entries after traffic.
out=$(cni ADD "c$ID-first" "/run/netns/$ID-s0" "$CONF")
ip=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)
probe "$ID-s0" tcp "$SRV_IP" 8080 --timeout 1000 >/dev/null 2>&1
ifindex=$(dump sluice_ep_v2 | jq --arg ip "$ip" \
	'[.[] | .formatted | select([.key.ip4 % 256, (.key.ip4 / 256 | floor) % 256,
	  (.key.ip4 / 65536 | floor) % 256, (.key.ip4 / 16777216 | floor)] | map(tostring) |
	  join(".") == $ip) | .value.ifindex][0] // 0')
check "a live pod has its endpoint ($ip, veth $ifindex)" test "$ifindex" -gt 0
n=$(dump sluice_pol_v1 | jq --argjson i "$ifindex" '[.[] | select(.formatted.key.ep == $i)] | length')
check "a live pod has policy map entries ($n)" test "$n" -gt 0
n=$(ct_with "$ip")
check "a pod that sent traffic has conntrack entries ($n)" test "$n" -gt 0
cni DEL "c$ID-first" "/run/netns/$ID-s0" "$CONF" >/dev/null
n=$(ct_with "$ip")
check "its DEL removes them ($n left)" test "$n" -eq 0

: >"$DIR/times"
: >"$DIR/done"
: >"$DIR/addrs"

echo "== $CYCLES ADD/DEL cycles, $PAR at a time$([ "$KILLS" = 1 ] && echo ", SIGKILL every ~$BLOCK")"
blocks=$((CYCLES / BLOCK))
T0=$(now_ms)
warm= rss_warm= fds_warm= thr_warm= kills=0
for ((b = 0; b < blocks; b++)); do
	first=$((b * BLOCK)) last=$((b * BLOCK + BLOCK - 1))
	pids=()
	for ((s = 0; s < PAR; s++)); do
		worker "$s" "$first" "$last" &
		pids+=($!)
		CLEANUP_PIDS+=($!)
	done
	# A kill at a random cycle of the block; not in the first block (the
	# warm-up) nor in the last two (the last process's warm-up and the
	# measured block).
	if [ "$KILLS" = 1 ] && [ "$b" -ge 1 ] && [ "$b" -lt $((blocks - 2)) ]; then
		at=$((first + 1 + RANDOM % (BLOCK - 2)))
		while [ "$(wc -l <"$DIR/done")" -lt "$at" ]; do sleep 0.02; done
		restart_agent || { not_ok "agent restarted after SIGKILL"; kill "${pids[@]}"; break; }
		kills=$((kills + 1))
	fi
	wait "${pids[@]}"
	if [ "$KILLS" != 1 ] && [ "$b" -eq 0 ] || { [ "$KILLS" = 1 ] && [ "$b" -eq $((blocks - 2)) ]; }; then
		read -r rss_warm fds_warm thr_warm < <(proc_sample)
		warm=$last
	fi
done
T1=$(now_ms)
read -r rss_end fds_end thr_end < <(proc_sample)

fails=$(grep -c FAIL "$DIR/times")
check "every ADD and DEL succeeded ($CYCLES cycles, $kills kills)" test "$fails" -eq 0
[ "$fails" -eq 0 ] || grep FAIL "$DIR/times" | head -5
tfail=$(cat "$DIR/traffic_failed" 2>/dev/null | wc -l)
if [ "$KILLS" != 1 ]; then
	check "traffic from the churned pods reached the server ($tfail probes failed)" test "$tfail" -eq 0
fi

# The server pod goes too: no pod is left.
cni DEL "c$ID-srv" "/run/netns/$ID-srv" "$CONF" >/dev/null || not_ok "DEL of the server pod"

echo "== nothing left"
ipam_left=$(ls "$DIR/state/ipam" | grep -vxc -e range -e released)
check "no IPAM reservation in $DIR/state/ipam ($ipam_left)" test "$ipam_left" -eq 0
check "sluicectl status: 0 endpoints, 0 addresses used" \
	bash -c "ctl() { '$BUILD/sluicectl' --socket '$SOCK' \"\$@\"; }; s=\$(ctl status); grep -Eq '^endpoints: +0\$' <<<\"\$s\" && grep -Eq '^addresses: +0 used' <<<\"\$s\""
check "no endpoint state file" test -z "$(ls "$DIR/state/endpoints")"
veths=$(ip -n "$NODE" -o link show | grep -c ': lxc')
check "no host veth left ($veths)" test "$veths" -eq 0
ifs=0
for ((s = 0; s < PAR; s++)); do
	ifs=$((ifs + $(ip -n "$ID-s$s" -o link show | grep -vc ': lo:')))
done
check "no interface left in the pods' namespaces ($ifs)" test "$ifs" -eq 0
n=$(dump sluice_ep_v2 | jq length)
check "endpoint map empty ($n entries)" test "$n" -eq 0
n=$(dump sluice_pol_v1 | jq length)
check "policy map empty ($n entries)" test "$n" -eq 0
n=$(dump sluice_deny_v1 | jq length)
check "deny map empty ($n entries)" test "$n" -eq 0
dump sluice_ipc_v2 | jq -c 'map(.key) | sort' >"$DIR/ipc.end"
check "ipcache: the entries it had right after start, no pod's" cmp "$DIR/ipc.start" "$DIR/ipc.end"
n=$(ct_with "$PREFIX")
check "conntrack: no entry with a pod address ($n)" test "$n" -eq 0
find "$BPFFS" | sort >"$DIR/pins.end"
check "bpffs: the pins present right after start, nothing else" \
	diff "$DIR/pins.start" "$DIR/pins.end"
check "agent fds back to the post-warm-up count ($fds_warm after cycle $((warm + 1)), $fds_end at the end)" \
	test "$fds_end" -le "$fds_warm"
check "agent threads back to the post-warm-up count ($thr_warm, $thr_end)" test "$thr_end" -le "$thr_warm"
growth=$((rss_end - rss_warm))
check "agent VmRSS growth after the warm-up under 1 MiB ($growth KiB)" test "$growth" -lt $RSS_GROWTH_MAX_KB

pct() { awk -v col="$1" -v p="$2" '!/FAIL/ {print $col}' "$DIR/times" | sort -n |
	awk -v p="$2" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if (i<1) i=1; print a[i]}'; }
elapsed=$((T1 - T0))
echo "figures: $CYCLES cycles x$PAR in $((elapsed / 1000)).$(((elapsed % 1000) / 100)) s:" \
	"$(awk -v c="$CYCLES" -v ms="$elapsed" 'BEGIN {printf "%.1f", c * 1000 / ms}') cycles/s;" \
	"ADD p50 $(pct 1 50) ms p99 $(pct 1 99) ms; DEL p50 $(pct 2 50) ms p99 $(pct 2 99) ms"
echo "figures: VmRSS $rss_warm KiB after cycle $((warm + 1)), $rss_end KiB at the end;" \
	"fds $fds_warm -> $fds_end; threads $thr_warm -> $thr_end;" \
	"$kills SIGKILLs, $(cat "$DIR/retries" 2>/dev/null | wc -l) calls retried on code 11;" \
	"$tfail of $(((CYCLES + TRAFFIC_EVERY - 1) / TRAFFIC_EVERY * 2)) probes failed"
if [ "$FAIL" -ne 0 ]; then
	echo "-- the agent's log, last lines:"
	tail -n 30 "$DIR/agent.log"
fi
summary
