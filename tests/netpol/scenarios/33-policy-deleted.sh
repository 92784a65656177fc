# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should stop enforcing policies after they are deleted
# Deny all in and out of x, then delete the policy.

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
expect_peer 'x/*' '*' false
expect_peer '*' 'x/*' false
validate tcp 80

delete <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-all
  namespace: x
EOF
reach_new true
validate tcp 80
