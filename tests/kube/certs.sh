#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Credentials for the test API server (tests/kube/apiserver.py) and kubeconfigs
# for clients of it.
#
#   certs.sh DIR SERVER [IP...]
#
# SERVER is IP or IP:PORT (port 6443 if absent): the address clients use, and
# the kubeconfigs' server URL https://IP:PORT. The server certificate's SANs
# are SERVER's IP, every further IP, 127.0.0.1 and localhost.
#
# Writes into DIR (created if needed):
#   ca.crt ca.key            the CA (signs the server and client certificates)
#   server.crt server.key    serving certificate
#   client.crt client.key    client certificate, CN=sluice-test-admin, O=system:masters
#   tokens                   the server's --token-file (one token a line)
#   token                    the token alone, for tokenFile kubeconfigs
#   kubeconfig-token         token inline, certificate-authority as a file path
#   kubeconfig-tokenfile     tokenFile: DIR/token, certificate-authority as a file path
#   kubeconfig-cert          client-certificate-data/client-key-data/
#                            certificate-authority-data (base64, as kubeadm writes)
#
# Running it again on the same DIR keeps the CA, the client certificate and the
# token, and rewrites the server certificate only if its IP list changed: so a
# test can generate everything, start the server on port 0, and call it again
# with the port the server chose to get the kubeconfigs right.
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 DIR SERVER_IP[:PORT] [IP...]" >&2
	exit 2
fi
dir=$1
server=$2
shift 2
case $server in
*:*) ip=${server%:*} port=${server##*:} ;;
*) ip=$server port=6443 ;;
esac

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
umask 077

sans="IP:$ip"
for x in "$@" 127.0.0.1; do
	case ",$sans," in *",IP:$x,"*) ;; *) sans="$sans,IP:$x" ;; esac
done
sans="$sans,DNS:localhost"

q() { openssl "$@" 2>/dev/null; }
newkey() { q genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

if [ ! -s "$dir/ca.crt" ] || [ ! -s "$dir/ca.key" ]; then
	newkey "$dir/ca.key"
	q req -x509 -new -key "$dir/ca.key" -days 3650 -subj "/CN=sluice-test-ca" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
		-out "$dir/ca.crt"
	rm -f "$dir/server.crt" "$dir/client.crt"
fi

# sign NAME SUBJECT EXTENSIONS
sign() {
	newkey "$dir/$1.key"
	q req -new -key "$dir/$1.key" -subj "$2" -out "$dir/$1.csr"
	printf '%s\n' "$3" >"$dir/$1.ext"
	q x509 -req -in "$dir/$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
		-CAcreateserial -days 3650 -extfile "$dir/$1.ext" -out "$dir/$1.crt"
	rm -f "$dir/$1.csr" "$dir/$1.ext"
}

if [ ! -s "$dir/server.crt" ] || [ "$(cat "$dir/server.sans" 2>/dev/null)" != "$sans" ]; then
	sign server "/CN=sluice-test-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$sans"
	printf '%s\n' "$sans" >"$dir/server.sans"
fi

if [ ! -s "$dir/client.crt" ]; then
	sign client "/O=system:masters/CN=sluice-test-admin" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
fi

if [ ! -s "$dir/token" ]; then
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$dir/token"
	echo >>"$dir/token"
fi
[ -s "$dir/tokens" ] || cp "$dir/token" "$dir/tokens"
token=$(head -n1 "$dir/token")

b64() { base64 -w0 <"$1"; }

# kubeconfig FILE USER-YAML CLUSTER-CA-YAML
kubeconfig() {
	cat >"$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sluice-test
  cluster:
    server: https://$ip:$port
$3
contexts:
- name: sluice-test
  context:
    cluster: sluice-test
    user: sluice-test
current-context: sluice-test
users:
- name: sluice-test
  user:
$2
EOF
	mv "$1.tmp" "$1"
}

ca_file="    certificate-authority: $dir/ca.crt"
kubeconfig "$dir/kubeconfig-token" "    token: $token" "$ca_file"
kubeconfig "$dir/kubeconfig-tokenfile" "    tokenFile: $dir/token" "$ca_file"
kubeconfig "$dir/kubeconfig-cert" "    client-certificate-data: $(b64 "$dir/client.crt")
    client-key-data: $(b64 "$dir/client.key")" \
	"    certificate-authority-data: $(b64 "$dir/ca.crt")"
