# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce policy based on PodSelector or NamespaceSelector
# Two peers, ORed: any namespace but x (NotIn), or pod=b of x. Only x/c
# (and x/a itself, not judged) is left out.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ns-y-match-selector
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions:
        - {key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}
    - podSelector:
        matchLabels: {pod: b}
EOF

reach_new true
expect x/a x/a false
expect x/c x/a false
validate tcp 80
