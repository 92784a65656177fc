# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should support a 'default-deny-all' policy
# Every pod of x isolated both ways: nothing reaches x, x reaches nothing.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-all
  namespace: x
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress: []
  egress: []
EOF

reach_new true
expect_peer '*' 'x/*' false
expect_peer 'x/*' '*' false
validate tcp 80
