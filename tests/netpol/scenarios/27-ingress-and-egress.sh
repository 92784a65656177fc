# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should work with Ingress, Egress specified together
# x/a admits x/b only, and sends to port 80 only.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-client-a-via-pod-selector
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Egress, Ingress]
  ingress:
  - from:
    - podSelector:
        matchLabels: {pod: b}
  egress:
  - ports:
    - port: 80
EOF

reach_new true
expect_all_ingress x/a false
expect x/b x/a true
validate tcp 80

reach_new true
expect_all_ingress x/a false
expect_all_egress x/a false
expect x/b x/a true
validate tcp 81
