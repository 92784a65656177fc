# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP
# Default deny in x plus an SCTP-only rule for port 81: TCP 81 stays closed.

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
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-only-sctp-ingress-on-port-81
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - {port: 81, protocol: SCTP}
EOF

reach_new true
expect_peer '*' 'x/*' false
validate tcp 81
