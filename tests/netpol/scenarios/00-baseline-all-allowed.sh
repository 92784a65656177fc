# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Sluice: baseline, no policy: every pod reaches every pod on TCP and UDP 80 and 81
# (upstream checks the same before each test, waiting for its servers).

reach_new true
validate tcp 80
validate tcp 81
validate udp 80
validate udp 81
