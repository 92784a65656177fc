# SPDX-License-Identifier: Apache-2.0
# kube-proxy's iptables scaffolding, shared by the suites and benchmarks that
# put sluice next to kube-proxy's rules (tests/kubeproxy/run.sh,
# bench/services.sh).
# shellcheck shell=bash

# kp_jumps NS: in network namespace NS, kube-proxy's jumps from the
# built-in chains (its iptablesJumpChains, each chain EnsureChain'd and the
# jump prepended with EnsureRule).
kp_jumps() {
	local ns=$1 t c target comment match
	while IFS='|' read -r t c target comment match; do
		ip netns exec "$ns" iptables -w -t "$t" -N "$target" 2>/dev/null
		# shellcheck disable=SC2086 # match is a list of words
		ip netns exec "$ns" iptables -w -t "$t" -I "$c" $match -m comment --comment "$comment" \
			-j "$target" || return 1
	done <<'JUMPS'
filter|INPUT|KUBE-EXTERNAL-SERVICES|kubernetes externally-visible service portals|-m conntrack --ctstate NEW
filter|FORWARD|KUBE-EXTERNAL-SERVICES|kubernetes externally-visible service portals|-m conntrack --ctstate NEW
filter|INPUT|KUBE-NODEPORTS|kubernetes health check service ports|
filter|FORWARD|KUBE-SERVICES|kubernetes service portals|-m conntrack --ctstate NEW
filter|OUTPUT|KUBE-SERVICES|kubernetes service portals|-m conntrack --ctstate NEW
filter|FORWARD|KUBE-FORWARD|kubernetes forwarding rules|
filter|INPUT|KUBE-PROXY-FIREWALL|kubernetes load balancer firewall|-m conntrack --ctstate NEW
filter|OUTPUT|KUBE-PROXY-FIREWALL|kubernetes load balancer firewall|-m conntrack --ctstate NEW
filter|FORWARD|KUBE-PROXY-FIREWALL|kubernetes load balancer firewall|-m conntrack --ctstate NEW
nat|OUTPUT|KUBE-SERVICES|kubernetes service portals|
nat|PREROUTING|KUBE-SERVICES|kubernetes service portals|
nat|POSTROUTING|KUBE-POSTROUTING|kubernetes postrouting rules|
JUMPS
}
