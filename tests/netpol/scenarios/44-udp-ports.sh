# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: UDP: should enforce policy based on Ports
# x/a admits namespace y on UDP 81 only.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ingress-on-port-81-ns-x
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: "y"}
    ports:
    - {port: 81, protocol: UDP}
EOF

reach_new true
expect_peer 'x/*' 'x/a' false
expect_peer 'z/*' 'x/a' false
validate udp 81
