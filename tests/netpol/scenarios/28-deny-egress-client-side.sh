# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)
# x/a may only send to y/a; y/a and y/b admit x/a only. x/a -> y/b is
# admitted by y/b and still blocked, by x/a's egress.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-to-ns-y-pod-a
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: "y"}
      podSelector:
        matchLabels: {pod: a}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-from-xa-on-ya-match-selector
  namespace: "y"
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: x}
      podSelector:
        matchLabels: {pod: a}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-from-xa-on-yb-match-selector
  namespace: "y"
spec:
  podSelector:
    matchLabels: {pod: b}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: x}
      podSelector:
        matchLabels: {pod: a}
EOF

reach_new true
expect_peer 'x/a' '*' false
expect_peer '*' 'y/a' false
expect x/a y/a true
expect_peer '*' 'y/b' false
validate tcp 80
