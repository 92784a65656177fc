# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Sluice: endPort on egress (KEP-2079)
# Pods of x may send to TCP 81 to 82: 81 open, 80 closed.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-egress-81-82
  namespace: x
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - ports:
    - {protocol: TCP, port: 81, endPort: 82}
EOF

reach_new true
validate tcp 81

reach_new true
expect_peer 'x/*' '*' false
validate tcp 80
