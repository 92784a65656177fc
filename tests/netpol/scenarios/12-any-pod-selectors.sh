# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce policy based on any PodSelectors
# Two podSelector peers (pod=b, pod=c), ORed, both within x.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ns-x-pod-b-c
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchLabels: {pod: b}
    - podSelector:
        matchLabels: {pod: c}
EOF

reach_new true
expect_all_ingress x/a false
expect x/b x/a true
expect x/c x/a true
validate tcp 80
