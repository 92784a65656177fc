# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should allow egress access on one named port
# Pods of x may only send to the port named serve-80-tcp (resolved on the
# destination pod); a DNS-free rule, as upstream has it today.

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
  - ports:
    - port: serve-80-tcp
EOF

reach_new true
validate tcp 80

reach_new true
expect_peer 'x/*' '*' false
validate tcp 81
