# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Sluice: matchExpressions Exists (upstream's suite has no Exists case)
# x/a admits namespaces that have a label ns2, whatever its value: none,
# until z gets one.

apply <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-from-ns-with-ns2
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions:
        - {key: ns2, operator: Exists}
EOF

reach_new true
expect_all_ingress x/a false
validate tcp 80

set_namespace_labels z ns=z kubernetes.io/metadata.name=z ns2=anything
reach_new true
expect_all_ingress x/a false
expect_peer 'z/*' 'x/a' true
validate tcp 80
