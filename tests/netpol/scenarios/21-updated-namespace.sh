# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should allow ingress access from updated namespace
# x/a admits namespaces labelled ns2=updated: none, until y gets the label.

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
        matchLabels: {ns2: updated}
EOF

reach_new true
expect_all_ingress x/a false
validate tcp 80

set_namespace_labels y ns=y kubernetes.io/metadata.name=y ns2=updated
reach_new true
expect_all_ingress x/a false
expect_peer 'y/*' '*' true
validate tcp 80
