#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# kubectl for tests/kube/plugin.sh: the real kubectl ($REAL_KUBECTL, with
# KUBECONFIG=$KCFG) for everything but `exec`, which the test API server
# does not serve: an exec is logged to $EXEC_LOG and answered by the local
# sluicectl against the agent socket $PODS_MAP gives for the pod ("POD
# SOCKET" lines), with the exec's stdin when -i. DENY_NODES=1: `get nodes`
# is forbidden, as with an RBAC role that has pods only.
set -uo pipefail

args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	[ "${args[i]}" = exec ] && break
done
if [ "$i" -ge "${#args[@]}" ]; then
	if [ "${DENY_NODES:-0}" = 1 ] && [ "${1:-}" = get ] && [ "${2:-}" = nodes ]; then
		echo 'Error from server (Forbidden): nodes is forbidden: User "viewer" cannot list resource "nodes"' >&2
		exit 1
	fi
	# environment, not flags: kubectl takes none before a plugin's name
	KUBECONFIG=$KCFG KUBECACHEDIR=$KCACHE exec "$REAL_KUBECTL" "$@"
fi

# exec [-i] -n NS POD -c CONTAINER -- COMMAND...
echo "${args[*]:i}" >>"$EXEC_LOG"
pod=
for ((i = i + 1; i < ${#args[@]}; i++)); do
	case ${args[i]} in
	-i) ;;
	-n | -c) i=$((i + 1)) ;;
	--) break ;;
	*) pod=${args[i]} ;;
	esac
done
cmd=("${args[@]:i+2}") # after "--" and "sluicectl"
sock=$(awk -v p="$pod" '$1 == p { print $2 }' "$PODS_MAP")
if [ -z "$sock" ]; then
	echo "error: pod $pod has no test agent" >&2
	exit 1
fi
exec "$BUILD/sluicectl" --socket "$sock" "${cmd[@]}"
