# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce updated policy
# An allow-all ingress policy, then the same policy re-applied with no rule.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all-mutate-to-deny-all
  namespace: x
spec:
  podSelector:
    matchLabels: {}
  policyTypes: [Ingress]
  ingress:
  - {}
EOF

reach_new true
validate tcp 81

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all-mutate-to-deny-all
  namespace: x
spec:
  podSelector:
    matchLabels: {}
  policyTypes: [Ingress]
  ingress: []
EOF

reach_new true
expect_peer '*' 'x/*' false
validate tcp 81
