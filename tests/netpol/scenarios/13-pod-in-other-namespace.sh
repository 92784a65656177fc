# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector
# Only y/a reaches x/a.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ns-y-pod-a-via-namespace-pod-selector
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: "y"}
      podSelector:
        matchLabels: {pod: a}
EOF

reach_new true
expect_all_ingress x/a false
expect y/a x/a true
validate tcp 80
