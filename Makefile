# SPDX-License-Identifier: Apache-2.0
#
# make            build build/sluice-agent, build/sluice-cni, build/sluicectl
# make deps       install build, test and benchmark packages (Debian 12, apt)
# make test       unit (sanitizers), BPF, end-to-end and podman tests; needs root
# make fuzz       each libFuzzer target for FUZZ_SECONDS (default 60); make test-fuzz: their corpora once
# make demo       a demo node: agent, four pods through the real CNI plugin, traffic
# make soak       long reliability runs that print their figures: pod churn with and without SIGKILLs, API load, 10^7 fuzzed packets
# make install    sluicectl and the kubectl plugin kubectl-sluice into $(BINDIR) (docs/INSTALL.md)
# make bench      pod networking, policy, cross-node, control-plane, defence-cost and bandwidth-limit figures, each against a baseline

BUILD   ?= build
CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
# make install: put BINDIR where kubectl is (kubectl finds plugins on $PATH).
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin

WARN    := -Wall -Wextra -Werror
# DEFS: preprocessor definitions for the agent and the BPF objects alike,
# e.g. the upgrade test's variant build (tests/e2e/upgrade-live.sh):
# make BUILD=build/upgrade-variant DEFS=-DSLUICE_UPGRADE_TEST_LAYOUT
DEFS    ?=
CFLAGS  ?= -O2 -g
CFLAGS  += $(WARN) $(DEFS) -std=gnu11 -D_GNU_SOURCE -Iinclude -Ilib -I$(BUILD)
LDLIBS_AGENT := -lbpf -lelf -lz -lmnl -ljansson -lyaml -lcurl -lmicrohttpd -lpthread
LDLIBS_JSON  := -ljansson

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 $(WARN) $(DEFS) -Wno-unused-function \
	-I$(BUILD) -Iinclude -Ibpf

# lib/manifest.c (YAML) serves sluicectl's manifests and the agent's kubeconfig;
# the CNI plugin stays free of libyaml (and of the flow formatting sluicectl uses,
# and of the manifests' field validation, lib/kschema.c).
LIB_SRCS   := $(filter-out lib/manifest.c,$(wildcard lib/*.c))
AGENT_SRCS := $(wildcard agent/*.c) $(LIB_SRCS) lib/manifest.c
CNI_SRCS   := $(wildcard cni-plugin/*.c) $(filter-out lib/flowfmt.c lib/kschema.c,$(LIB_SRCS))
CTL_SRCS   := $(wildcard cli/*.c) $(LIB_SRCS) $(wildcard lib/manifest.c)
BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_HDRS   := $(wildcard bpf/lib/*.h) $(wildcard include/sluice/*.h)
SKELS      := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
HDRS       := $(wildcard lib/*.h agent/*.h cni-plugin/*.h cli/*.h include/sluice/*.h)

BINS := $(BUILD)/sluice-agent $(BUILD)/sluice-cni $(BUILD)/sluicectl

.PHONY: install all deps test test-build test-unit test-bpf test-e2e test-podman test-cri demo bench bench-nobw soak clean tools \
	fuzz fuzz-build test-fuzz
all: $(BINS) tools

$(BUILD):
	mkdir -p $@

# Kernel types come from the running kernel's BTF (see docs/BUILD.md).
$(BUILD)/vmlinux.h: | $(BUILD)
	@test -r $(VMLINUX_BTF) || { echo "error: $(VMLINUX_BTF) missing: sluice needs a kernel built with CONFIG_DEBUG_INFO_BTF=y" >&2; exit 1; }
	$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) $(BUILD)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $*_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/sluice-agent: $(AGENT_SRCS) $(HDRS) $(SKELS) | $(BUILD)
	$(CC) $(CFLAGS) -o $@ $(AGENT_SRCS) $(LDLIBS_AGENT)

$(BUILD)/sluice-cni: $(CNI_SRCS) $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS) -o $@ $(CNI_SRCS) $(LDLIBS_JSON)

$(BUILD)/sluicectl: $(CTL_SRCS) $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS) -o $@ $(CTL_SRCS) -ljansson -lyaml

# Test helper: TCP/UDP echo server and client with timeouts (tests/tools).
tools: $(BUILD)/sluice-probe $(BUILD)/xdp_pass.bpf.o $(BUILD)/sluice-flowrb
# XDP_PASS for the switch side of test veths (tests/multinode/lib.sh mn_switch_xdp).
$(BUILD)/xdp_pass.bpf.o: tests/tools/xdp_pass.bpf.c $(BUILD)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
$(BUILD)/sluice-probe: tests/tools/probe.c | $(BUILD)
	$(CC) $(CFLAGS) -o $@ $< -lpthread
# The datapath's flow records as JSON lines (tests/e2e/flows-datapath.sh).
$(BUILD)/sluice-flowrb: tests/tools/flowrb.c $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS) -o $@ $< -lbpf

deps:
	@./scripts/deps.sh

# ---- tests -------------------------------------------------------------
# Unit tests run under AddressSanitizer and UBSan.
SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer $(WARN) \
	-std=gnu11 -D_GNU_SOURCE -Iinclude -Ilib -Iagent -Icni-plugin -I$(BUILD)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(wildcard tests/unit/test_*.c))

# Sources each unit test links against (besides itself).
test_ipam_SRCS := agent/ipam.c agent/cidr.c lib/log.c lib/statefile.c
test_cni_SRCS  := cni-plugin/cni.c cni-plugin/queue.c lib/delq.c lib/statefile.c lib/cni_names.c lib/log.c lib/api.c lib/bwconf.c
test_delq_SRCS := cni-plugin/cni.c cni-plugin/queue.c lib/delq.c lib/statefile.c lib/cni_names.c lib/log.c lib/api.c agent/delq_replay.c agent/request.c agent/cidr.c lib/bwconf.c
test_statefile_SRCS := lib/statefile.c
test_api_SRCS  := lib/api.c lib/cni_names.c agent/request.c agent/cidr.c lib/log.c lib/bwconf.c
test_policy_SRCS := agent/policy.c agent/policy_parse.c agent/selector.c agent/cidr.c lib/log.c
test_manifest_SRCS := lib/manifest.c lib/log.c
test_kschema_SRCS := lib/kschema.c lib/manifest.c lib/log.c
test_kube_SRCS := agent/kube.c agent/prom.c agent/store.c agent/prefilter.c agent/service.c agent/policy.c agent/policy_parse.c agent/selector.c agent/cidr.c lib/manifest.c lib/log.c lib/statefile.c lib/kschema.c
test_service_SRCS := agent/store.c agent/prefilter.c agent/service.c agent/policy.c agent/policy_parse.c agent/selector.c agent/cidr.c lib/manifest.c lib/log.c lib/statefile.c
test_persist_SRCS := agent/store.c agent/prefilter.c agent/service.c agent/policy.c agent/policy_parse.c agent/selector.c agent/cidr.c lib/manifest.c lib/log.c lib/statefile.c
test_dryrun_SRCS := $(test_persist_SRCS)
# sluicectl's diff (its own unified diff) and apply --dry-run=client
test_cli_diff_SRCS := cli/udiff.c cli/dryrun.c lib/kschema.c lib/manifest.c lib/log.c
test_page_SRCS := agent/page.c agent/store.c agent/prefilter.c agent/service.c agent/policy.c agent/policy_parse.c agent/selector.c agent/cidr.c lib/manifest.c lib/log.c lib/statefile.c
test_compile_SRCS := agent/compile.c agent/compile_maps.c agent/compile_sync.c agent/compile_index.c agent/identity.c agent/policy.c agent/policy_parse.c agent/selector.c agent/cidr.c agent/loader.c agent/migrate.c lib/log.c lib/statefile.c
test_compile_incr_SRCS := $(test_compile_SRCS)
test_maglev_SRCS := agent/maglev.c
test_prom_SRCS := agent/prom.c
test_world_gen_SRCS := agent/policy.c agent/policy_parse.c agent/selector.c agent/cidr.c lib/log.c
test_health_SRCS := agent/health.c agent/lb.c agent/maglev.c agent/loader.c agent/migrate.c agent/cidr.c lib/log.c
test_prefilter_SRCS := agent/prefilter.c agent/prefilter_sync.c agent/store.c agent/service.c agent/policy.c agent/policy_parse.c agent/selector.c agent/cidr.c lib/manifest.c lib/log.c lib/statefile.c
test_xdp_opts_SRCS := agent/loader.c agent/migrate.c lib/log.c
test_flowlog_SRCS := agent/flowlog.c agent/flowlog_query.c lib/flowfmt.c lib/log.c
test_cnichain_SRCS := agent/cnichain.c lib/log.c
test_describe_SRCS := agent/describe.c agent/policy.c agent/policy_parse.c agent/selector.c agent/cidr.c lib/log.c
test_cli_selector_SRCS := cli/lselector.c
# sluicectl in-process (cli_harness.h includes cli/main.c and answers api_call)
CLI_TEST_SRCS := $(filter-out cli/main.c,$(wildcard cli/*.c)) lib/bwconf.c lib/flowfmt.c lib/kschema.c lib/manifest.c lib/log.c lib/statefile.c
test_cli_args_SRCS := $(CLI_TEST_SRCS)
test_cli_output_SRCS := $(CLI_TEST_SRCS)
# ... whose harness #includes cli/main.c: a change there rebuilds them too.
$(BUILD)/unit/test_cli_args $(BUILD)/unit/test_cli_output: cli/main.c

$(BUILD)/unit:
	mkdir -p $@

.PRECIOUS: $(BUILD)/%.bpf.o
.SECONDEXPANSION:
$(BUILD)/unit/%: tests/unit/%.c $$($$*_SRCS) $(HDRS) $(wildcard tests/unit/*.h) $(SKELS) | $(BUILD)/unit
	$(CC) $(SAN_CFLAGS) -o $@ $< $($*_SRCS) -lcmocka -ljansson -lyaml -lcurl -lbpf -lelf -lz -lpthread

TEST_BPF_SRCS := tests/bpf/test_pod.c agent/loader.c agent/migrate.c agent/flows.c agent/cidr.c agent/lb.c agent/maglev.c lib/log.c
$(BUILD)/test_bpf: $(TEST_BPF_SRCS) $(SKELS) $(HDRS) tests/bpf/pkt_util.h | $(BUILD)
	$(CC) $(CFLAGS) -Iagent -o $@ $(TEST_BPF_SRCS) $(LDLIBS_AGENT) -lcmocka

# The uplink's XDP program and first stage (bpf/xdp.bpf.c, lib/first_stage.h).
TEST_BPF_XDP_SRCS := tests/bpf/test_xdp.c agent/loader.c agent/migrate.c lib/log.c
$(BUILD)/test_bpf_xdp: $(TEST_BPF_XDP_SRCS) $(SKELS) $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS) -Iagent -o $@ $(TEST_BPF_XDP_SRCS) $(LDLIBS_AGENT) -lcmocka

# Flow state and records (bpf/lib/flow.h); --bench: their cost per packet.
TEST_BPF_FLOW_SRCS := tests/bpf/test_flow.c agent/loader.c agent/migrate.c lib/log.c
$(BUILD)/test_bpf_flow: $(TEST_BPF_FLOW_SRCS) $(SKELS) $(HDRS) tests/bpf/pkt_util.h | $(BUILD)
	$(CC) $(CFLAGS) -Iagent -o $@ $(TEST_BPF_FLOW_SRCS) $(LDLIBS_AGENT) -lcmocka

# Pod bandwidth limits: the bucket in user space, then through the programs.
TEST_BPF_BW_SRCS := tests/bpf/test_bandwidth.c agent/loader.c agent/migrate.c lib/log.c
$(BUILD)/test_bpf_bandwidth: $(TEST_BPF_BW_SRCS) $(SKELS) $(HDRS) $(BPF_HDRS) tests/bpf/pkt_util.h | $(BUILD)
	$(CC) $(CFLAGS) -Iagent -o $@ $(TEST_BPF_BW_SRCS) $(LDLIBS_AGENT) -lcmocka

# Every program on generated and mutated packets against an oracle of the
# test's own (tests/bpf/test_pktfuzz.c; PKTFUZZ_SEED=, PKTFUZZ_N=).
TEST_BPF_PKTFUZZ_SRCS := tests/bpf/test_pktfuzz.c tests/bpf/pktfuzz_world.c agent/loader.c agent/migrate.c lib/log.c
$(BUILD)/test_bpf_pktfuzz: $(TEST_BPF_PKTFUZZ_SRCS) $(SKELS) $(HDRS) $(wildcard tests/bpf/*.h) | $(BUILD)
	$(CC) $(CFLAGS) -Iagent -o $@ $(TEST_BPF_PKTFUZZ_SRCS) $(LDLIBS_AGENT)

$(BUILD)/bench-bpf: bench/bpf_policy.c agent/loader.c agent/migrate.c lib/log.c $(SKELS) $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS) -Iagent -o $@ bench/bpf_policy.c agent/loader.c agent/migrate.c lib/log.c $(LDLIBS_AGENT)

# bench/bandwidth.sh: the pod programs' cost on unlimited pods, built as
# usual and (bench-nobw) with the bandwidth limiter compiled out of the BPF
# objects (-DSLUICE_BENCH_NO_BW, a benchmark-only switch), in its own BUILD.
$(BUILD)/bench-bwcost: bench/bw_cost.c agent/loader.c agent/migrate.c lib/log.c $(SKELS) $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS) -Iagent -o $@ bench/bw_cost.c agent/loader.c agent/migrate.c lib/log.c $(LDLIBS_AGENT)
bench-nobw:
	$(MAKE) BUILD=$(BUILD)/nobw DEFS="$(DEFS) -DSLUICE_BENCH_NO_BW" $(BUILD)/nobw/bench-bwcost

$(BUILD)/bench-compile: bench/compile_cost.c bench/compile_bench.h agent/compile.c agent/compile_maps.c agent/compile_sync.c agent/compile_index.c agent/identity.c agent/policy.c agent/policy_parse.c agent/selector.c agent/cidr.c agent/loader.c agent/migrate.c lib/log.c lib/statefile.c $(SKELS) $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS) -Iagent -o $@ bench/compile_cost.c agent/compile.c agent/compile_maps.c agent/compile_sync.c agent/compile_index.c agent/identity.c agent/policy.c agent/policy_parse.c agent/selector.c agent/cidr.c agent/loader.c agent/migrate.c lib/log.c lib/statefile.c $(LDLIBS_AGENT)

$(BUILD)/bench-compile-add: bench/compile_add.c bench/compile_bench.h agent/compile.c agent/compile_maps.c agent/compile_sync.c agent/compile_index.c agent/identity.c agent/policy.c agent/policy_parse.c agent/selector.c agent/cidr.c agent/loader.c agent/migrate.c lib/log.c lib/statefile.c $(SKELS) $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS) -Iagent -o $@ bench/compile_add.c agent/compile.c agent/compile_maps.c agent/compile_sync.c agent/compile_index.c agent/identity.c agent/policy.c agent/policy_parse.c agent/selector.c agent/cidr.c agent/loader.c agent/migrate.c lib/log.c lib/statefile.c $(LDLIBS_AGENT)

$(BUILD)/bench-purge: bench/flows_purge.c agent/flows.c agent/cidr.c agent/loader.c agent/migrate.c lib/log.c $(SKELS) $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS) -Iagent -o $@ bench/flows_purge.c agent/flows.c agent/cidr.c agent/loader.c agent/migrate.c lib/log.c $(LDLIBS_AGENT)

PF_BENCH_SRCS := bench/prefilter_cost.c agent/prefilter.c agent/prefilter_sync.c agent/selector.c agent/policy.c agent/policy_parse.c agent/cidr.c lib/manifest.c lib/log.c lib/statefile.c
$(BUILD)/bench-prefilter: $(PF_BENCH_SRCS) $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS) -Iagent -o $@ $(PF_BENCH_SRCS) $(LDLIBS_AGENT)

$(BUILD)/bench-connrate: bench/connrate.c | $(BUILD)
	$(CC) $(CFLAGS) -o $@ $<

# bench/flows.sh: new flows at a set rate.
$(BUILD)/bench-flowgen: bench/flowgen.c | $(BUILD)
	$(CC) $(CFLAGS) -o $@ $<

# bench/nodeport_xdp.sh: a drop floor at tc (sluice-xdpgen --attach-drop is
# XDP's), and the sink on the far end.
$(BUILD)/tc_drop.bpf.o: bench/tc_drop.bpf.c $(BUILD)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/xdp_sink.bpf.o: bench/xdp_sink.bpf.c $(BUILD)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The flood source of bench/xdp.sh (the kernel's XDP live-frames generator).
$(BUILD)/sluice-xdpgen: bench/xdp_gen.c | $(BUILD)
	$(CC) $(CFLAGS) -o $@ $< -lbpf

$(BUILD)/bench-maglev: bench/maglev.c agent/maglev.c $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS) -Iagent -o $@ bench/maglev.c agent/maglev.c

# ---- fuzzing (tests/fuzz, docs/FUZZING.md) -----------------------------
# libFuzzer targets, one per input parser, built with clang under ASan and
# UBSan. make fuzz: each for FUZZ_SECONDS, new inputs in a scratch corpus
# ($(FUZZ_SCRATCH), not the repository), crashes in $(BUILD)/fuzz/crashes.
# make test-fuzz: each over its committed corpus only (a regression run).
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer $(WARN) -std=gnu11 -D_GNU_SOURCE -Iinclude -Ilib -Iagent \
	-Icni-plugin -I$(BUILD)
FUZZ_TARGETS := cni api manifest policy kubeconfig watch
FUZZ_BINS    := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_TARGETS))
FUZZ_SECONDS ?= 60
FUZZ_SCRATCH ?= $(BUILD)/fuzz/scratch
FUZZ_STORE_SRCS := agent/store.c agent/prefilter.c agent/service.c agent/policy.c \
	agent/policy_parse.c agent/selector.c agent/cidr.c lib/manifest.c lib/log.c lib/statefile.c

fuzz_cni_SRCS        := cni-plugin/cni.c cni-plugin/queue.c lib/delq.c lib/statefile.c lib/cni_names.c lib/api.c lib/log.c lib/bwconf.c
fuzz_api_SRCS        := agent/request.c agent/flowlog.c agent/flowlog_query.c agent/page.c lib/bwconf.c \
	lib/api.c lib/cni_names.c lib/flowfmt.c $(FUZZ_STORE_SRCS)
fuzz_manifest_SRCS   := lib/manifest.c lib/log.c
fuzz_policy_SRCS     := $(FUZZ_STORE_SRCS)
fuzz_kubeconfig_SRCS := agent/kube.c agent/prom.c $(FUZZ_STORE_SRCS)
# fuzz_watch.c includes agent/kube.c (its watch decoding is static).
fuzz_watch_SRCS      := agent/prom.c $(FUZZ_STORE_SRCS)
fuzz_watch_DEPS      := agent/kube.c

$(BUILD)/fuzz:
	mkdir -p $@

fuzz-build: $(FUZZ_BINS)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(fuzz_$$*_SRCS) $$(fuzz_$$*_DEPS) $(HDRS) $(wildcard tests/fuzz/*.h) | $(BUILD)/fuzz
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(fuzz_$*_SRCS) -ljansson -lyaml -lcurl -lbpf -lelf -lz \
		-lpthread

# Each target's committed corpus, once, in seconds; fails on any crash,
# leak or undefined behaviour.
test-fuzz: $(FUZZ_BINS)
	@tests/fuzz/run.sh regress $(FUZZ_TARGETS)

fuzz: $(FUZZ_BINS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_SCRATCH=$(FUZZ_SCRATCH) \
		tests/fuzz/run.sh fuzz $(FUZZ_TARGETS)

# Everything make test runs, built once before its suites start
# (tests/run-all.sh runs suites side by side: none may build then).
test-build: all $(UNIT_TESTS) $(BUILD)/test_bpf $(BUILD)/test_bpf_xdp $(BUILD)/test_bpf_flow \
	$(BUILD)/test_bpf_pktfuzz $(BUILD)/test_bpf_bandwidth $(FUZZ_BINS)

test-unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

test-bpf: $(BUILD)/test_bpf $(BUILD)/test_bpf_xdp $(BUILD)/test_bpf_flow $(BUILD)/test_bpf_pktfuzz \
	$(BUILD)/test_bpf_bandwidth
	$(BUILD)/test_bpf
	$(BUILD)/test_bpf_xdp
	$(BUILD)/test_bpf_flow
	$(BUILD)/test_bpf_bandwidth
	$(BUILD)/test_bpf_pktfuzz

test-e2e: all
	tests/e2e/run.sh

test-podman: all
	tests/podman/run.sh

test-cri: all
	tests/cri/run.sh

test: deps all
	@tests/run-all.sh

demo: deps all
	@scripts/demo.sh

# make test runs short versions of these (tests/run-all.sh).
soak: deps all $(BUILD)/test_bpf_pktfuzz
	CYCLES=1000 PAR=16 tests/e2e/churn.sh
	CYCLES=1000 PAR=16 KILLS=1 tests/e2e/churn.sh
	N_ADD=100 WORLD_PODS=9000 tests/e2e/apiload.sh
	PKTFUZZ_N=10000000 PKTFUZZ_SEED=$$(date +%s) $(BUILD)/test_bpf_pktfuzz

bench: deps all $(BUILD)/bench-bpf $(BUILD)/bench-connrate $(BUILD)/bench-flowgen $(BUILD)/bench-purge $(BUILD)/bench-compile $(BUILD)/bench-compile-add $(BUILD)/bench-maglev $(BUILD)/bench-prefilter $(BUILD)/sluice-xdpgen $(BUILD)/tc_drop.bpf.o $(BUILD)/xdp_sink.bpf.o \
		$(BUILD)/bench-bwcost bench-nobw
	@bench/run.sh
	@bench/policy.sh
	@bench/multinode.sh
	@bench/kube.sh
	@bench/controlplane.sh
	@bench/persist.sh
	@bench/defences.sh
	@bench/services.sh
	@bench/xdp.sh
	@bench/nodeport_xdp.sh
	@bench/flows.sh
	@bench/bandwidth.sh
	@$(BUILD)/bench-purge
	@$(BUILD)/bench-compile 5000 10 20
	@$(BUILD)/bench-compile 20000 10 20
	@$(BUILD)/bench-compile 5000 5000 20
	@$(BUILD)/bench-compile-add 1000 100000
	@$(BUILD)/bench-maglev
	@$(BUILD)/bench-prefilter 100000

# A workstation's tools: sluicectl, and kubectl-sluice, which runs
# sluicectl in the agent pods through the Kubernetes API.
install: $(BUILD)/sluicectl
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(BUILD)/sluicectl $(DESTDIR)$(BINDIR)/sluicectl
	install -m 0755 cli/kubectl-sluice $(DESTDIR)$(BINDIR)/kubectl-sluice

clean:
	rm -rf $(BUILD)
