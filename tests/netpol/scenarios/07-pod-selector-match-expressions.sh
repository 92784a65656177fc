# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should enforce policy based on PodSelector with MatchExpressions
# As 03, the peer written as a matchExpression (pod In [b]).

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: x-a-allows-x-b
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchExpressions:
        - {key: pod, operator: In, values: [b]}
EOF

reach_new true
expect_all_ingress x/a false
expect x/b x/a true
validate tcp 80
