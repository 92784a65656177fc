#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install every build, test and benchmark dependency of sluice on Debian 12.
# Quick when everything is already installed: it only asks dpkg.
set -euo pipefail

PKGS=(
	# build
	make gcc clang llvm bpftool pkg-config linux-libc-dev
	libbpf-dev libelf-dev zlib1g-dev libmnl-dev libjansson-dev libyaml-dev libcurl4-openssl-dev
	# tests
	libcmocka-dev iproute2 util-linux jq
	# libFuzzer and the sanitizer runtimes clang links the fuzz targets with
	# (make fuzz, make test-fuzz; tests/fuzz)
	libclang-rt-14-dev
	# the agent's /metrics endpoint (agent/prom_http.c)
	libmicrohttpd-dev
	# /metrics parsed as Prometheus does (tests/e2e/metrics.sh)
	python3-prometheus-client
	# GRO on the test topology's veth uplinks, as a NIC has it (tests/multinode/lib.sh)
	ethtool
	# kube-proxy coexistence test (tests/kubeproxy): iptables-restore
	iptables
	# install tests (tests/deploy): objdump, strace
	binutils strace
	# Kubernetes API test server (tests/kube)
	python3 python3-yaml openssl curl
	# podman interop test
	podman runc busybox-static
	# containerd CRI interop test (tests/cri): containerd runs the pod sandboxes,
	# the reference CNI plugins (portmap, tuning, firewall, bandwidth, loopback)
	# are chained after sluice-cni, and tests/tools/cri.py speaks CRI over gRPC
	# (Debian 12 has no crictl); the pause image is a static C binary (libc.a)
	containerd containernetworking-plugins python3-grpcio libc6-dev
	# pod bandwidth limits measured (tests/e2e/bandwidth.sh) and benchmarks;
	# bench/bandwidth.sh also runs the reference bandwidth plugin (above)
	iperf3 sockperf bc
	# `sluicectl completion zsh` is tried under zsh (tests/e2e/cli-apply.sh)
	zsh
)

missing=()
for p in "${PKGS[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#PKGS[@]} packages installed"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${missing[*]}; run 'sudo make deps'" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# iperf3 asks whether to start a daemon; the answer is no.
echo "iperf3 iperf3/start_daemon boolean false" | debconf-set-selections
apt-get install -y -qq "${missing[@]}"
echo "deps: done"
