# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce policy to allow traffic from pods within server namespace based on PodSelector
# x/a admits only pods labelled pod=b of its own namespace.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: x-a-allows-x-b
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchLabels: {pod: b}
EOF

reach_new true
expect_all_ingress x/a false
expect x/b x/a true
validate tcp 80
