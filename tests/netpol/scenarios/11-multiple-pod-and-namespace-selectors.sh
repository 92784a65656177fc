# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce policy based on Multiple PodSelectors and NamespaceSelectors
# pod In [b, c] AND namespace NotIn [x].

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ns-y-z-pod-b-c
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
        matchExpressions:
        - {key: pod, operator: In, values: [b, c]}
EOF

reach_new true
expect_peer 'x/*' 'x/a' false
expect y/a x/a false
expect z/a x/a false
validate tcp 80
