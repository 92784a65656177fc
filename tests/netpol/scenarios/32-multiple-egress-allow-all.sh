# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce multiple egress policies with egress allow-all policy taking precedence
# Pods of x send to port 80 only; a second, allow-all egress policy opens 81.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-egress-port-80
  namespace: x
spec:
  podSelector:
    matchLabels: {}
  policyTypes: [Egress]
  egress:
  - ports:
    - port: 80
EOF

reach_new true
expect_peer 'x/*' '*' false
validate tcp 81

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-egress
  namespace: x
spec:
  podSelector:
    matchLabels: {}
  policyTypes: [Egress]
  egress:
  - {}
EOF

reach_new true
validate tcp 81
