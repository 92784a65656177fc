# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Sluice: endPort on ingress (KEP-2079)
# Upstream tests endPort only through the API (network_policy_api.go); the
# connectivity test proposed in kubernetes#100291 was not merged.
# x/a admits namespace y on TCP 80 to 81; UDP is not covered.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-y-to-a-on-80-81
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
    - {protocol: TCP, port: 80, endPort: 81}
EOF

reach_new true
expect_peer 'x/*' 'x/a' false
expect_peer 'z/*' 'x/a' false
validate tcp 80
validate tcp 81

reach_new true
expect_all_ingress x/a false
validate udp 80
