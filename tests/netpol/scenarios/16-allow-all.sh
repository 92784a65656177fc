# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should support allow-all policy
# One empty ingress rule admits everything on every port.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all
  namespace: x
spec:
  podSelector:
    matchLabels: {}
  policyTypes: [Ingress]
  ingress:
  - {}
EOF

reach_new true
validate tcp 80
validate tcp 81
