# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should not allow access by TCP when a policy specifies only UDP
# A UDP-only rule for port 81: TCP 81 to x/a is closed.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-only-udp-ingress-on-port-81
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - {port: 81, protocol: UDP}
EOF

reach_new true
expect_all_ingress x/a false
validate tcp 81
