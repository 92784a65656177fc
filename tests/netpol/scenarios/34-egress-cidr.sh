# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should allow egress access to server in CIDR block
# x/a may only send to y/b's address (/32), taken from the CNI result.

apply <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-client-a-via-cidr-egress-rule
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock:
        cidr: $(ip_of y/b)/32
EOF

reach_new true
expect_all_egress x/a false
expect x/a y/b true
validate tcp 80
