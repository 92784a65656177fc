# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should allow ingress access from namespace on one named port
# Namespace y may reach x/a on the port named serve-80-tcp; 81 is closed to all.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-client-a-via-ns-selector-80
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
    - {port: serve-80-tcp, protocol: TCP}
EOF

reach_new true
expect_peer 'x/*' 'x/a' false
expect_peer 'z/*' 'x/a' false
validate tcp 80

reach_new true
expect_all_ingress x/a false
validate tcp 81
