# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed
# As 35; then the policy is re-applied (updated) to allow x/b's /32 only.

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
        cidr: $(cidr_of "$(ip_of x/b)" 4)
        except: [$(ip_of x/b)/32]
EOF

reach_new true
expect x/a x/b false
validate tcp 80

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
        cidr: $(ip_of x/b)/32
EOF

reach_new true
expect_all_egress x/a false
expect x/a x/b true
validate tcp 80
