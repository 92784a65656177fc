# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Sluice: matchExpressions DoesNotExist (upstream's suite has no DoesNotExist case)
# x/a admits the pods of x that have no label pod2: x/b and x/c, until x/b
# gets one.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-from-pods-without-pod2
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchExpressions:
        - {key: pod2, operator: DoesNotExist}
EOF

reach_new true
expect_peer 'y/*' 'x/a' false
expect_peer 'z/*' 'x/a' false
validate tcp 80

set_pod_labels x b pod=b pod2=updated
reach_new true
expect_peer 'y/*' 'x/a' false
expect_peer 'z/*' 'x/a' false
expect x/b x/a false
validate tcp 80
