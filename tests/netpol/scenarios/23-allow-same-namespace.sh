# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should deny ingress from pods on other namespaces
# Pods of x admit the pods of their own namespace (empty podSelector peer):
# "allow from pods in the same namespace".

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-empty-policy
  namespace: x
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchLabels: {}
EOF

reach_new true
expect_peer 'y/*' 'x/*' false
expect_peer 'z/*' 'x/*' false
validate tcp 80
