# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector
# x/a: allow-all egress changes nothing; a deny-ingress policy then isolates
# x/a's ingress and leaves its egress alone.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-egress-for-target
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Egress]
  egress:
  - {}
EOF

reach_new true
validate tcp 80

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-ingress-via-label-selector
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress: []
EOF

reach_new true
expect_all_ingress x/a false
validate tcp 80
