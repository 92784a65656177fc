# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should deny egress from all pods in a namespace
# Default deny egress in x.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-egress-ns-x
  namespace: x
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: []
EOF

reach_new true
expect_peer 'x/*' '*' false
validate tcp 80
