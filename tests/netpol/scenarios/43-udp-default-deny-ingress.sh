# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: UDP: should support a 'default-deny-ingress' policy
# As 01, probed with UDP.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-all
  namespace: x
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: []
EOF

reach_new true
expect_peer '*' 'x/*' false
validate udp 80
