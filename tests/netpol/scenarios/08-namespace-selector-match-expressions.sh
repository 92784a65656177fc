# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce policy based on NamespaceSelector with MatchExpressions
# As 06, the namespace written as a matchExpression (name In [y]).

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
        - {key: kubernetes.io/metadata.name, operator: In, values: ["y"]}
EOF

reach_new true
expect_peer 'x/*' 'x/a' false
expect_peer 'z/*' 'x/a' false
validate tcp 80
