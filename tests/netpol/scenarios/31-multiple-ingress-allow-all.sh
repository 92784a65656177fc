# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce multiple ingress policies with ingress allow-all policy taking precedence
# Pods of x admit port 80 only ("deny all, then allow one port"); a second,
# allow-all policy opens 81 too: the union of the policies counts.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ingress-port-80
  namespace: x
spec:
  podSelector:
    matchLabels: {}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - port: 80
EOF

reach_new true
expect_peer '*' 'x/*' false
validate tcp 81

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ingress
  namespace: x
spec:
  podSelector:
    matchLabels: {}
  policyTypes: [Ingress]
  ingress:
  - {}
EOF

reach_new true
validate tcp 81
