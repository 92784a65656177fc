# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should support a 'default-deny-ingress' policy
# Every pod of x isolated for ingress, no rule: nothing reaches x.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-ingress
  namespace: x
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: []
EOF

reach_new true
expect_peer '*' 'x/*' false
validate tcp 80
