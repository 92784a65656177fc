# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should allow ingress access from updated pod
# x/a admits pods labelled pod=b and pod2=updated: none, until x/b gets pod2.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-client-a-via-pod-selector
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchLabels: {pod: b, pod2: updated}
EOF

reach_new true
expect_all_ingress x/a false
validate tcp 80

set_pod_labels x b pod=b pod2=updated
reach_new true
expect_all_ingress x/a false
expect x/b x/a true
validate tcp 80
