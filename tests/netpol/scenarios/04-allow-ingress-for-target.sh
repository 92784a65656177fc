# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce policy to allow ingress traffic for a target
# Default deny in x, then one policy admitting everything (any pod, any
# namespace) into x/a: x/a is reachable again, x/b and x/c are not.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-all
  namespace: x
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: []
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all-to-a
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {}
      namespaceSelector: {}
EOF

reach_new true
expect_all_ingress x/a true
expect_all_ingress x/b false
expect_all_ingress x/c false
validate tcp 80
