# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce ingress policy allowing any port traffic to a server on a specific protocol
# x/a admits TCP on any port, no UDP.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ingress-by-proto
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - protocol: TCP
EOF

reach_new true
validate tcp 80

reach_new true
expect_peer '*' 'x/a' false
validate udp 80
