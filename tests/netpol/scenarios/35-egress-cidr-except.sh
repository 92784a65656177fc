# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce except clause while egress access to server in CIDR block
# x/a may send to the /4 around x/b's address except x/b itself.

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
