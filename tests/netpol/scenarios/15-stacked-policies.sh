# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce multiple, stacked policies with overlapping podSelectors
# Namespace y may reach x/a on TCP 81; a second policy on the same pods
# adds TCP 80: policies add up.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-client-a-via-ns-selector
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
    - {port: 81, protocol: TCP}
EOF

reach_new true
expect_peer 'x/*' 'x/a' false
expect_peer 'y/*' 'x/a' true
expect_peer 'z/*' 'x/a' false
validate tcp 81

reach_new true
expect_all_ingress x/a false
validate tcp 80

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
    - {port: 80, protocol: TCP}
EOF

reach_new true
expect_peer 'x/*' 'x/a' false
expect_peer 'y/*' 'x/a' true
expect_peer 'z/*' 'x/a' false
validate tcp 80
