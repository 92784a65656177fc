# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Sluice: deny all, then allow one port, with UDP (the UDP variant of 31)
# Default deny ingress in y plus a policy admitting UDP 80: only UDP 80 reaches y.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-all
  namespace: "y"
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: []
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-udp-80
  namespace: "y"
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - {port: 80, protocol: UDP}
EOF

reach_new true
validate udp 80

reach_new true
expect_peer '*' 'y/*' false
validate udp 81
validate tcp 80
