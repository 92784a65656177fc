# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Sluice: named UDP port (the UDP variant of 17)
# Pods of x admit anyone on the port named serve-81-udp only: UDP 81 open;
# UDP 80 and TCP 81 (the name is UDP's) closed.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-serve-81-udp
  namespace: x
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - {port: serve-81-udp, protocol: UDP}
EOF

reach_new true
validate udp 81

reach_new true
expect_peer '*' 'x/*' false
validate udp 80
validate tcp 81
