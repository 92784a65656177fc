# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce policy based on NamespaceSelector with MatchExpressions using default ns label
# x/a may send to every namespace but y (NotIn, egress).

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ns-y-match-selector-for-immutable-ns-label
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector:
        matchExpressions:
        - {key: kubernetes.io/metadata.name, operator: NotIn, values: ["y"]}
EOF

reach_new true
expect_peer 'x/a' 'y/*' false
validate tcp 80
