# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce policy based on PodSelector and NamespaceSelector
# One peer with both selectors, ANDed: pod=b in a namespace other than x.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ns-y-podselector-and-nsselector
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
      podSelector:
        matchLabels: {pod: b}
EOF

reach_new true
expect_all_ingress x/a false
expect y/b x/a true
expect z/b x/a true
validate tcp 80
