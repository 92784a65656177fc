# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector
# x/a may only send to y/a (the DNS-free form of upstream's egress test).

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-to-ns-y-pod-a
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: "y"}
      podSelector:
        matchLabels: {pod: a}
EOF

reach_new true
expect_all_egress x/a false
expect x/a y/a true
validate tcp 80
