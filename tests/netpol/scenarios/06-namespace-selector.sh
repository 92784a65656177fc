# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector
# x/a admits the pods of namespace y only.

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
EOF

reach_new true
expect_peer 'x/*' 'x/a' false
expect_peer 'z/*' 'x/a' false
validate tcp 80
