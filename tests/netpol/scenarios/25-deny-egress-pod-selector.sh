# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should deny egress from pods based on PodSelector
# x/a isolated for egress, no rule.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-egress-pod-a
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Egress]
  egress: []
EOF

reach_new true
expect_all_egress x/a false
validate tcp 80
