#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Self-test of the test API server (tests/kube/apiserver.py) with the real
# kubectl and curl: discovery, every kubectl verb the tests use, CRD schema
# validation, authentication (token, token file, client certificate, token
# rotation), watches (events, bookmarks, 410 after compaction, dropped
# streams), paging, fault injection, and kill -9 + restart with watch resume.
# Listens on 127.0.0.1 only; needs no root. Exit 77 if kubectl is missing.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
PASS=0
FAIL=0
SERVER_PID=
BG_PIDS=()

if ! command -v kubectl >/dev/null; then
	echo "kube selftest: kubectl not found; skipped"
	exit 77
fi
for t in curl jq openssl "$PY"; do
	command -v "$t" >/dev/null || { echo "kube selftest: $t missing (make deps)" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/sluice-kube-selftest.XXXXXX)
D=$TMP/certs

cleanup() {
	local rc=$?
	set +e
	for p in "${BG_PIDS[@]}" $SERVER_PID; do
		kill -9 "$p" 2>/dev/null
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	if [ "$FAIL" -ne 0 ] || [ $rc -ne 0 ]; then
		echo "--- last server log lines:"
		tail -n 20 "$TMP/server.log" 2>/dev/null | cut -c1-200
	fi
	rm -rf "$TMP"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { PASS=$((PASS + 1)); printf '  ok   %s\n' "$*"; }
not_ok() { FAIL=$((FAIL + 1)); printf '  FAIL %s\n' "$*"; }

# check DESCRIPTION CMD...: run CMD, count the outcome; show output on failure.
check() {
	local desc=$1
	shift
	if "$@" >"$TMP/check.out" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc"
		sed 's/^/       /' "$TMP/check.out" | tail -n 15
	fi
}

k() { kubectl --kubeconfig "$D/kubeconfig-token" --cache-dir "$TMP/cache" "$@"; }
kc() { kubectl --kubeconfig "$D/kubeconfig-$1" --cache-dir "$TMP/cache" "${@:2}"; }
# api PATH [curl args]: authenticated request with the current token.
api() { curl -sS --cacert "$D/ca.crt" -H "Authorization: Bearer $(head -n1 "$D/token")" \
	"https://127.0.0.1:$PORT$1" "${@:2}"; }
rv() { api /_test/stats | jq -r .resourceVersion; }

# expect_fail PATTERN CMD...: CMD fails and its output matches PATTERN.
expect_fail() {
	local pat=$1
	shift
	if "$@" >"$TMP/ef.out" 2>&1; then
		echo "succeeded, expected failure:"
		cat "$TMP/ef.out"
		return 1
	fi
	grep -Eq -- "$pat" "$TMP/ef.out" || { echo "no '$pat' in:"; cat "$TMP/ef.out"; return 1; }
}

start_server() {
	rm -f "$TMP/port"
	"$PY" "$HERE/apiserver.py" --listen "127.0.0.1:${1:-0}" --port-file "$TMP/port" \
		--cert "$D/server.crt" --key "$D/server.key" --client-ca "$D/ca.crt" \
		--token-file "$D/tokens" --crd "$ROOT/deploy/crds/sluice-policy-crds.yaml" \
		--state "$TMP/state.json" --history 200 --bookmark-interval 0.3 \
		2>>"$TMP/server.log" &
	SERVER_PID=$!
	disown "$SERVER_PID" # no "Killed" job notice after kill -9
	for _ in $(seq 100); do
		[ -s "$TMP/port" ] && break
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$TMP/port" ] || { echo "server did not start:"; cat "$TMP/server.log"; exit 1; }
	PORT=$(cat "$TMP/port")
}

# watch_to FILE QUERY: stream a pod watch in shop into FILE in the background.
watch_to() {
	api "/api/v1/namespaces/shop/pods?watch=1&$2" -N >"$1" 2>"$1.err" &
	BG_PIDS+=($!)
	WATCH_PID=$!
}

echo "kube selftest: test API server with kubectl $(kubectl version --client -o json 2>/dev/null | jq -r .clientVersion.gitVersion)"
"$HERE/certs.sh" "$D" 127.0.0.1 || exit 1
start_server 0
"$HERE/certs.sh" "$D" "127.0.0.1:$PORT" || exit 1
Y=$TMP/yaml
mkdir -p "$Y"

# ------------------------------------------------------------- discovery
check "discovery: kubectl api-resources lists built-ins and sluice CRDs" \
	bash -c "$(declare -f k); D=$D TMP=$TMP; k api-resources >$TMP/ar && grep -Eq '^pods +po +v1 +true +Pod' $TMP/ar &&
	grep -q 'networkpolicies .*networking.k8s.io/v1' $TMP/ar &&
	grep -q 'sluicenetworkpolicies .*snp .*sluice.io/v1alpha1 .*true .*SluiceNetworkPolicy' $TMP/ar &&
	grep -q 'sluiceclusternetworkpolicies .*scnp .*sluice.io/v1alpha1 .*false' $TMP/ar"
check "discovery: /version, /api, /apis, /api/v1 shapes" bash -c "
	$(declare -f api); D=$D PORT=$PORT
	api /version | jq -e '.major == \"1\" and .minor == \"32\"' &&
	api /api | jq -e '.kind == \"APIVersions\" and .versions == [\"v1\"]' &&
	api /apis | jq -e '.kind == \"APIGroupList\" and ([.groups[].name] | index(\"sluice.io\"))' &&
	api /api/v1 | jq -e '.kind == \"APIResourceList\" and ([.resources[].name] | index(\"pods/status\"))' &&
	api /apis/sluice.io/v1alpha1 | jq -e '.groupVersion == \"sluice.io/v1alpha1\"'"

# ------------------------------------------------------------- authentication
check "no credentials: 401 with an Unauthorized Status" bash -c "
	code=\$(curl -sS -o $TMP/401.json -w '%{http_code}' --cacert $D/ca.crt https://127.0.0.1:$PORT/api/v1/pods) &&
	[ \"\$code\" = 401 ] &&
	jq -e '.kind == \"Status\" and .apiVersion == \"v1\" and .status == \"Failure\" and .reason == \"Unauthorized\" and .code == 401' $TMP/401.json"
sed 's/^\(    token: \).*/\1not-a-valid-token/' "$D/kubeconfig-token" >"$D/kubeconfig-bad"
check "wrong token: kubectl gets Unauthorized" \
	expect_fail "Unauthorized" kc bad get namespaces
check "client certificate kubeconfig (embedded data) works" kc cert get namespace default
check "tokenFile kubeconfig works" kc tokenfile get namespace default

# ------------------------------------------------------------- create, apply
cat >"$Y/ns.yaml" <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {team: a}
EOF
cat >"$Y/pod.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  nodeName: node1
  containers:
  - name: c
    image: nginx:1.25
    ports: [{containerPort: 80, name: http}]
    env: [{name: A, value: "1"}]
EOF
cat >"$Y/np.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {}}]
    ports: [{port: 80, protocol: TCP}]
  policyTypes: [Ingress]
EOF
cat >"$Y/sluice.yaml" <<'EOF'
apiVersion: sluice.io/v1alpha1
kind: SluiceNetworkPolicy
metadata: {namespace: shop, name: no-db-from-frontend}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - action: Deny
    from: [{podSelector: {matchLabels: {tier: frontend}}}]
  - action: Allow
---
apiVersion: sluice.io/v1alpha1
kind: SluiceClusterNetworkPolicy
metadata: {name: audit-egress}
spec:
  mode: Audit
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/8}}]
EOF
cat >"$Y/bad.yaml" <<'EOF'
apiVersion: sluice.io/v1alpha1
kind: SluiceNetworkPolicy
metadata: {namespace: shop, name: bad}
spec:
  mode: Block
  podSelector: {}
  ingress:
  - ports: [{port: true, endPort: 70000}]
EOF
cat >"$Y/typo.yaml" <<'EOF'
apiVersion: sluice.io/v1alpha1
kind: SluiceNetworkPolicy
metadata: {namespace: shop, name: typo}
spec:
  podSelector: {}
  ingres: []
EOF

check "kubectl create -f namespace" k create -f "$Y/ns.yaml"
check "create twice: AlreadyExists" expect_fail 'AlreadyExists|already exists' k create -f "$Y/ns.yaml"
check "kubectl apply -f pod, networkpolicy, sluice CRs" bash -c "
	$(declare -f k); D=$D TMP=$TMP
	k apply -f $Y/pod.yaml && k apply -f $Y/np.yaml && k apply -f $Y/sluice.yaml"
check "server defaults and metadata (uid, rv, generation, namespace label, CR defaults)" bash -c "
	$(declare -f k); D=$D TMP=$TMP
	k get pod web -n shop -o json | jq -e '.metadata.uid and (.metadata.resourceVersion|tonumber) > 0 and .metadata.creationTimestamp and .status.phase == \"Pending\" and .spec.containers[0].ports[0].protocol == \"TCP\"' &&
	k get ns shop -o json | jq -e '.metadata.labels[\"kubernetes.io/metadata.name\"] == \"shop\"' &&
	k get snp no-db-from-frontend -n shop -o json | jq -e '.metadata.generation == 1 and .spec.mode == \"Enforce\" and .spec.ingress[1].action == \"Allow\"'"
check "apply the same file again: unchanged" bash -c "
	$(declare -f k); D=$D TMP=$TMP
	k apply -f $Y/pod.yaml | tee /dev/stderr | grep -q 'pod/web unchanged' &&
	k apply -f $Y/np.yaml | tee /dev/stderr | grep -q unchanged"
check "kubectl label and annotate" bash -c "
	$(declare -f k); D=$D TMP=$TMP
	k label pod web -n shop tier=front && k annotate pod web -n shop note=hello &&
	[ \"\$(k get pod web -n shop -o jsonpath='{.metadata.labels.tier}/{.metadata.annotations.note}')\" = front/hello ]"
check "kubectl patch --subresource=status" bash -c "
	$(declare -f k); D=$D TMP=$TMP
	k patch pod web -n shop --subresource=status --type=merge -p '{\"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.1.5\",\"podIPs\":[{\"ip\":\"10.244.1.5\"}]}}' &&
	[ \"\$(k get pod web -n shop -o jsonpath='{.status.podIP}')\" = 10.244.1.5 ]"
check "status is not writable through the main resource" bash -c "
	$(declare -f k); D=$D TMP=$TMP
	k patch pod web -n shop --type=merge -p '{\"status\":{\"podIP\":\"1.2.3.4\"}}' &&
	[ \"\$(k get pod web -n shop -o jsonpath='{.status.podIP}')\" = 10.244.1.5 ]"
check "strategic merge patch merges containers by name" bash -c "
	$(declare -f k); D=$D TMP=$TMP
	k patch pod web -n shop -p '{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"nginx:1.26\"}]}}' &&
	[ \"\$(k get pod web -n shop -o jsonpath='{.spec.containers[0].image}/{.spec.containers[0].env[0].name}')\" = nginx:1.26/A ]"
check "json patch" bash -c "
	$(declare -f k); D=$D TMP=$TMP
	k patch pod web -n shop --type=json -p '[{\"op\":\"add\",\"path\":\"/metadata/labels/x\",\"value\":\"y\"},{\"op\":\"remove\",\"path\":\"/metadata/annotations/note\"}]' &&
	[ \"\$(k get pod web -n shop -o jsonpath='{.metadata.labels.x}/{.metadata.annotations.note}')\" = y/ ]"
check "merge patch on a custom resource bumps generation" bash -c "
	$(declare -f k); D=$D TMP=$TMP
	k patch snp no-db-from-frontend -n shop --type=merge -p '{\"spec\":{\"mode\":\"Audit\"}}' &&
	k get snp no-db-from-frontend -n shop -o json | jq -e '.spec.mode == \"Audit\" and .metadata.generation == 2'"
check "kubectl replace; a stale resourceVersion gets Conflict" bash -c "
	$(declare -f k expect_fail); D=$D TMP=$TMP
	k get pod web -n shop -o yaml | sed 's/nginx:1.26/nginx:1.27/' >$TMP/cur.yaml &&
	k replace -f $TMP/cur.yaml &&
	[ \"\$(k get pod web -n shop -o jsonpath='{.spec.containers[0].image}')\" = nginx:1.27 ] &&
	expect_fail 'Conflict|has been modified' k replace -f $TMP/cur.yaml"
check "kubectl apply --server-side" bash -c "
	$(declare -f k); D=$D TMP=$TMP
	sed 's/name: web\$/name: web2/' $Y/pod.yaml >$TMP/web2.yaml &&
	k apply --server-side -f $TMP/web2.yaml | grep -q serverside-applied &&
	sed -i 's/nginx:1.25/nginx:1.28/' $TMP/web2.yaml && k apply --server-side -f $TMP/web2.yaml &&
	[ \"\$(k get pod web2 -n shop -o jsonpath='{.spec.containers[0].image}')\" = nginx:1.28 ]"
check "kubectl create namespace/configmap/deployment (protobuf bodies)" bash -c "
	$(declare -f k); D=$D TMP=$TMP
	k create namespace scratch && k create configmap cm -n scratch --from-literal=a=b &&
	k create deployment d -n scratch --image=nginx --replicas=2 &&
	[ \"\$(k get cm cm -n scratch -o jsonpath='{.data.a}')\" = b ] &&
	[ \"\$(k get deploy d -n scratch -o jsonpath='{.spec.replicas}')\" = 2 ]"
check "label selector (set-based) and field selector spec.nodeName" bash -c "
	$(declare -f k); D=$D TMP=$TMP
	[ \"\$(k get pods -A -l 'app in (web,db),tier' -o name)\" = pod/web ] &&
	[ \"\$(k get pods -A --field-selector spec.nodeName=node1 -o name | wc -l)\" = 2 ] &&
	[ -z \"\$(k get pods -A --field-selector spec.nodeName=node2 -o name)\" ]"

# ------------------------------------------------------------- CRD schema validation
check "invalid custom resource: 422 naming the fields" \
	expect_fail 'spec.mode: Unsupported value: "Block".*|spec.ingress\[0\].ports\[0\].endPort' k apply -f "$Y/bad.yaml"
check "invalid custom resource: Status has reason Invalid and causes" bash -c "
	$(declare -f api); D=$D PORT=$PORT
	$PY -c 'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(\"$Y/bad.yaml\"))))' >$TMP/bad.json &&
	code=\$(api /apis/sluice.io/v1alpha1/namespaces/shop/sluicenetworkpolicies -o $TMP/422.json -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @$TMP/bad.json) &&
	[ \"\$code\" = 422 ] &&
	jq -e '.reason == \"Invalid\" and .code == 422 and ([.details.causes[].field] | index(\"spec.ingress[0].ports[0].port\")) and ([.details.causes[].field] | index(\"spec.mode\"))' $TMP/422.json"
check "unknown field in a custom resource: strict decoding error" \
	expect_fail 'unknown field "spec.ingres"' k apply -f "$Y/typo.yaml"
check "schema.py: docs example accepted, broken one rejected" bash -c "
	$PY $HERE/schema.py $ROOT/deploy/crds/sluice-policy-crds.yaml $Y/sluice.yaml &&
	! $PY $HERE/schema.py $ROOT/deploy/crds/sluice-policy-crds.yaml $Y/bad.yaml >/dev/null"

cat >"$Y/widget-crd.yaml" <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string, enum: [red, blue], default: red}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
EOF
cat >"$Y/widget.yaml" <<'EOF'
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: shop}
spec: {size: 3}
EOF
check "a CRD created at run time is served, validated, watchable; deleting it removes its objects" bash -c "
	$(declare -f k api expect_fail); D=$D PORT=$PORT TMP=$TMP
	k apply -f $Y/widget-crd.yaml && k wait --for condition=established crd/widgets.example.com --timeout=5s &&
	{ api '/apis/example.com/v1/namespaces/shop/widgets?watch=1&timeoutSeconds=1' -N >$TMP/ww & } &&
	sleep 0.3 && k apply -f $Y/widget.yaml && wait &&
	[ \"\$(k get wd w1 -n shop -o jsonpath='{.spec.color}')\" = red ] &&
	jq -e 'select(.type == \"ADDED\") | .object.kind == \"Widget\"' $TMP/ww >/dev/null &&
	expect_fail 'spec.size' k patch wd w1 -n shop --type=merge -p '{\"spec\":{\"size\":0}}' &&
	k delete crd widgets.example.com &&
	expect_fail 'NotFound|not find' k get --raw /apis/example.com/v1/namespaces/shop/widgets/w1 &&
	k apply -f $Y/widget-crd.yaml && [ -z \"\$(k get wd -A -o name)\" ] && k delete crd widgets.example.com"

# ------------------------------------------------------------- watch
RV0=$(rv)
watch_to "$TMP/w1" "resourceVersion=$RV0&allowWatchBookmarks=true&timeoutSeconds=2"
sleep 0.4
k run w1 -n shop --image=busybox --labels=app=w >/dev/null 2>&1
k label pod w1 -n shop extra=1 >/dev/null 2>&1
k delete pod w1 -n shop --wait=false >/dev/null 2>&1
sleep 0.5
wait "$WATCH_PID"
check "watch (curl -N): ADDED, MODIFIED, DELETED in order, and BOOKMARKs" bash -c "
	[ \"\$(jq -r 'select(.type != \"BOOKMARK\") | .type + \" \" + .object.metadata.name' $TMP/w1 | tr '\n' ' ')\" = 'ADDED w1 MODIFIED w1 DELETED w1 ' ] &&
	jq -e 'select(.type == \"BOOKMARK\") | .object.kind == \"Pod\" and .object.apiVersion == \"v1\" and (.object.metadata | keys) == [\"resourceVersion\"]' $TMP/w1 >/dev/null &&
	jq -se 'map(select(.type != \"BOOKMARK\")) | all(.object.kind == \"Pod\" and .object.apiVersion == \"v1\")' $TMP/w1 >/dev/null"
check "watch with a label selector: leaving the selection is DELETED" bash -c "
	$(declare -f api k); D=$D PORT=$PORT TMP=$TMP
	api '/api/v1/namespaces/shop/pods?watch=true&labelSelector=tier%3Dfront&timeoutSeconds=1' -N >$TMP/w2 &
	sleep 0.3; k label pod web -n shop tier- >/dev/null; wait
	[ \"\$(jq -r '.type' $TMP/w2 | tr '\n' ' ')\" = 'ADDED DELETED ' ]"
check "list paging: limit and continue" bash -c "
	$(declare -f api); D=$D PORT=$PORT
	p1=\$(api '/api/v1/pods?limit=1') &&
	echo \"\$p1\" | jq -e '.kind == \"PodList\" and (.items | length) == 1 and (.items[0] | has(\"kind\") | not) and .metadata.remainingItemCount == 1' >/dev/null &&
	c=\$(echo \"\$p1\" | jq -r .metadata.continue) &&
	api \"/api/v1/pods?limit=1&continue=\$c\" | jq -e '(.items | length) == 1 and (.metadata.continue == null)' >/dev/null"
check "list paging: the pages after the first are the resource as it was at the first" bash -c "
	$(declare -f api k); D=$D PORT=$PORT TMP=$TMP
	p1=\$(api '/api/v1/pods?limit=1') && c=\$(echo \"\$p1\" | jq -r .metadata.continue) &&
	second=\$(api /api/v1/pods | jq -r '.items[1].metadata | .namespace + \" \" + .name') &&
	set -- \$second && [ -n \"\$2\" ] &&
	k label pod \"\$2\" -n \"\$1\" paged=later >/dev/null &&
	printf 'apiVersion: v1\\nkind: Pod\\nmetadata: {name: zz-late, namespace: %s}\\nspec: {containers: [{name: c, image: x}]}\\n' \"\$1\" |
		k create -f - >/dev/null &&
	api \"/api/v1/pods?limit=1&continue=\$c\" >$TMP/p2 &&
	api '/api/v1/pods' >$TMP/now &&
	k label pod \"\$2\" -n \"\$1\" paged- >/dev/null && k delete pod zz-late -n \"\$1\" --wait=false >/dev/null &&
	jq -e '(.items | length) == 1 and .items[0].metadata.labels.paged == null and .metadata.continue == null' $TMP/p2 >/dev/null &&
	jq -e '(.items | length) == 3 and .items[1].metadata.labels.paged == \"later\" and .items[2].metadata.name == \"zz-late\"' $TMP/now >/dev/null"
check "an unpaged list of 501 objects is sent in chunks, the same items as its pages" bash -c "
	$(declare -f api k); D=$D PORT=$PORT TMP=$TMP
	$PY -c 'import json; print(json.dumps({\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"bulk%03d\" % i, \"namespace\": \"shop\", \"labels\": {\"bulk\": \"1\"}}, \"data\": {\"i\": str(i)}} for i in range(501)]}))' >$TMP/bulk.json &&
	k create --validate=false -f $TMP/bulk.json >/dev/null &&
	api /api/v1/namespaces/shop/configmaps -D $TMP/hdr >$TMP/all &&
	grep -qi '^transfer-encoding: chunked' $TMP/hdr &&
	jq -e '.kind == \"ConfigMapList\" and (.items | length) == 501 and (.items[0] | has(\"kind\") | not) and .items[500].data.i == \"500\"' $TMP/all >/dev/null &&
	p=\$(api '/api/v1/namespaces/shop/configmaps?limit=300') &&
	c=\$(echo \"\$p\" | jq -r .metadata.continue) &&
	{ echo \"\$p\"; api \"/api/v1/namespaces/shop/configmaps?limit=300&continue=\$c\"; } |
		jq -s '[.[].items[]]' >$TMP/pages &&
	jq -e --slurpfile p $TMP/pages '.items == \$p[0]' $TMP/all >/dev/null &&
	[ \"\$(k get cm -n shop --chunk-size=0 -o name | grep -c bulk)\" = 501 ] &&
	k delete cm -n shop -l bulk=1 >/dev/null &&
	[ \"\$(api /api/v1/namespaces/shop/configmaps | jq '.items | length')\" = 0 ]"
OLD=$RV0
check "compaction: resuming a watch from before it gets ERROR 410 Expired" bash -c "
	$(declare -f api); D=$D PORT=$PORT
	api /_test/compact -X POST >/dev/null &&
	api '/api/v1/pods?watch=1&resourceVersion=$OLD' -N >$TMP/w3 &&
	jq -e 'select(.type == \"ERROR\") | .object.kind == \"Status\" and .object.code == 410 and .object.reason == \"Expired\"' $TMP/w3 >/dev/null &&
	[ \$(wc -l <$TMP/w3) = 1 ]"
check "/_test/stats counts lists and watches per resource and user agent" bash -c "
	$(declare -f api); D=$D PORT=$PORT
	api /_test/stats | jq -e '.lists.pods >= 2 and .watches.pods >= 3 and (.byUserAgent | to_entries | map(select(.key | startswith(\"curl/\"))) | .[0].value.watches.pods >= 3)'"
watch_to "$TMP/w4" "timeoutSeconds=30"
sleep 0.3
check "/_test/drop-watches cuts an open watch mid-stream" bash -c "
	$(declare -f api); D=$D PORT=$PORT
	api '/_test/drop-watches?resource=configmaps' -X POST | jq -e '.dropped == 0' >/dev/null &&
	api '/_test/drop-watches?resource=pods' -X POST | jq -e '.dropped == 1' >/dev/null &&
	for i in \$(seq 30); do kill -0 $WATCH_PID 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
wait "$WATCH_PID" 2>/dev/null

# ------------------------------------------------------------- fault injection
check "/_test/fail: the next request fails with 500, then all is well" bash -c "
	$(declare -f api k expect_fail); D=$D PORT=$PORT TMP=$TMP
	api '/_test/fail?status=500&count=1&match=/api/v1/namespaces/shop/pods' -X POST >/dev/null &&
	expect_fail 'InternalError|Internal error' k get pods -n shop && k get pods -n shop >/dev/null"
check "/_test/delay slows every response" bash -c "
	$(declare -f api); D=$D PORT=$PORT
	api '/_test/delay?ms=400' -X POST >/dev/null &&
	t=\$(api /api/v1/namespaces -o /dev/null -w '%{time_total}') &&
	api '/_test/delay?ms=0' -X POST >/dev/null &&
	awk -v t=\$t 'BEGIN { exit !(t >= 0.4) }'"

# ------------------------------------------------------------- token rotation
cp "$D/token" "$D/token.old"
echo "rotated-$RANDOM$RANDOM" >"$TMP/newtoken"
check "token rotation: new token accepted, old one refused" bash -c "
	$(declare -f kc expect_fail); D=$D TMP=$TMP
	cp $TMP/newtoken $D/tokens.new && mv $D/tokens.new $D/tokens &&
	expect_fail Unauthorized kc token get ns default &&
	cp $TMP/newtoken $D/token && kc tokenfile get ns default >/dev/null"
"$HERE/certs.sh" "$D" "127.0.0.1:$PORT" || exit 1 # kubeconfig-token gets the new token

# ------------------------------------------------------------- kill -9, restart
R0=$(rv)
k create configmap resume -n shop --from-literal=v=1 >/dev/null
k patch configmap resume -n shop --type=merge -p '{"data":{"v":"2"}}' >/dev/null
k delete configmap resume -n shop >/dev/null
R1=$(rv)
kill -9 "$SERVER_PID"
for _ in $(seq 40); do
	kill -0 "$SERVER_PID" 2>/dev/null || break
	sleep 0.05
done
start_server "$PORT"
check "restart after kill -9 keeps objects and resourceVersion" bash -c "
	$(declare -f api k); D=$D PORT=$PORT TMP=$TMP
	[ \"\$(api /_test/stats | jq -r .resourceVersion)\" = $R1 ] &&
	k get pod web -n shop >/dev/null && k get snp no-db-from-frontend -n shop >/dev/null &&
	k get scnp audit-egress >/dev/null"
check "watch resumed from before the kill gets exactly the missed events" bash -c "
	$(declare -f api); D=$D PORT=$PORT
	api '/api/v1/namespaces/shop/configmaps?watch=1&resourceVersion=$R0&timeoutSeconds=1' -N >$TMP/w5 &&
	[ \"\$(jq -r '.type + \" \" + .object.metadata.name + \" \" + (.object.data.v // \"-\")' $TMP/w5 | tr '\n' ' ')\" = 'ADDED resume 1 MODIFIED resume 2 DELETED resume 2 ' ] &&
	jq -se 'map(.object.metadata.resourceVersion | tonumber) | . == (. | sort) and .[0] > $R0 and .[-1] == $R1' $TMP/w5 >/dev/null"
check "writes after the restart continue the resourceVersion sequence" bash -c "
	$(declare -f api k); D=$D PORT=$PORT TMP=$TMP
	k label ns shop restarted=yes >/dev/null &&
	[ \"\$(k get ns shop -o jsonpath='{.metadata.resourceVersion}')\" = $((R1 + 1)) ]"

# ------------------------------------------------------------- delete
check "kubectl delete pod; NotFound afterwards" bash -c "
	$(declare -f k expect_fail); D=$D TMP=$TMP
	k delete pod web -n shop && expect_fail 'NotFound|not found' k get pod web -n shop"
check "kubectl delete -f (custom resources, networkpolicy)" bash -c "
	$(declare -f k); D=$D TMP=$TMP
	k delete -f $Y/sluice.yaml && k delete -f $Y/np.yaml && [ -z \"\$(k get snp,netpol -A -o name)\" ]"
check "deleting a namespace deletes what is in it" bash -c "
	$(declare -f k); D=$D TMP=$TMP
	k delete namespace scratch && [ -z \"\$(k get cm,deploy -n scratch -o name)\" ]"

printf 'kube selftest: %d passed, %d failed\n' "$PASS" "$FAIL"
[ "$FAIL" -eq 0 ]
