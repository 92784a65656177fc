# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP
# An SCTP-only rule still isolates x/a: TCP is closed.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-only-sctp-ingress-on-port-80
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - {port: 80, protocol: SCTP}
EOF

reach_new true
expect_all_ingress x/a false
validate tcp 81
