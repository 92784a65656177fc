# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Upstream: should deny ingress access to updated pod
# A deny-ingress policy for pods labelled target=isolated: none, until x/a
# gets the label.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-ingress-via-label-selector
  namespace: x
spec:
  podSelector:
    matchLabels: {target: isolated}
  policyTypes: [Ingress]
  ingress: []
EOF

reach_new true
validate tcp 80

set_pod_labels x a pod=a target=isolated
reach_new true
expect_all_ingress x/a false
validate tcp 80
