# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should allow ingress access on one named port
# Pods of x admit anyone on the port named serve-81-tcp, nothing else.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all
  namespace: x
spec:
  podSelector:
    matchLabels: {}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - port: serve-81-tcp
EOF

reach_new true
validate tcp 81

reach_new true
expect_peer '*' 'x/*' false
validate tcp 80
