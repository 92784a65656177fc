#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The libFuzzer targets (tests/fuzz/fuzz_*.c; built by make fuzz-build).
#
#   run.sh regress TARGET...   each target over its committed corpus
#                              (tests/fuzz/corpus/TARGET), every input once;
#                              fails on any crash, leak or undefined behaviour
#   run.sh fuzz TARGET...      each target for FUZZ_SECONDS (default 60), one
#                              at a time at nice 10; new inputs go to
#                              FUZZ_SCRATCH/TARGET (not the repository),
#                              crashes to build/fuzz/crashes; prints each
#                              target's execs/s and coverage
#
# BUILD (default build) is where the binaries are. See docs/FUZZING.md.
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_SCRATCH=${FUZZ_SCRATCH:-$BUILD/fuzz/scratch}
CRASHES=$BUILD/fuzz/crashes
# ASan's leak checker stays on; a UB report is fatal (-fno-sanitize-recover).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Longest input libFuzzer makes per target: a CNI configuration or API
# request of a few KiB, manifests and watch streams of a few dozen objects.
max_len() {
	case $1 in
	manifest|policy|watch) echo 16384 ;;
	*) echo 4096 ;;
	esac
}

usage() {
	echo "usage: $0 regress|fuzz TARGET..." >&2
	exit 2
}

regress() {
	local t=$1 bin=$BUILD/fuzz/fuzz_$1 dir=tests/fuzz/corpus/$1 log
	local -a files
	mapfile -t files < <(find "$dir" -type f | sort)
	if [ ${#files[@]} -eq 0 ]; then
		echo "not ok - fuzz $t: no corpus in $dir"
		return 1
	fi
	log=$(mktemp)
	if "$bin" -runs=1 "${files[@]}" >"$log" 2>&1; then
		echo "ok - fuzz $t: ${#files[@]} corpus inputs"
		rm -f "$log"
		return 0
	fi
	echo "not ok - fuzz $t: an input of $dir fails (the last one run, for a crash):"
	# The input that was running, then the report's first frames.
	awk '/^Running: / { last = $0 }
	     /ERROR: |runtime error:/ && !shown { print "    " last; shown = 1 }
	     shown && /ERROR: |runtime error:|SUMMARY:|^    #[0-3] / { print "    " $0 }' "$log" | head -n 24
	rm -f "$log"
	return 1
}

fuzz() {
	local t=$1 bin=$BUILD/fuzz/fuzz_$1 log dict=tests/fuzz/$1.dict rc
	local -a opts=(-max_total_time="$FUZZ_SECONDS" -max_len="$(max_len "$t")" -timeout=10
		       -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$CRASHES/$t-")
	[ -f "$dict" ] && opts+=(-dict="$dict")
	mkdir -p "$FUZZ_SCRATCH/$t" "$CRASHES"
	log=$BUILD/fuzz/$t.log
	# The scratch directory first: libFuzzer writes new inputs to it and
	# only reads the committed corpus.
	nice -n 10 "$bin" "${opts[@]}" "$FUZZ_SCRATCH/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	local last execs rate
	last=$(grep -E "^#[0-9]+" "$log" | tail -n 1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	printf '%-10s %s  execs %s  execs/s %s  %s\n' "$t" "$([ $rc -eq 0 ] && echo ok || echo FAILED)" \
		"${execs:-?}" "${rate:-?}" \
		"$(echo "$last" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*')"
	if [ $rc -ne 0 ]; then
		grep -E "ERROR: |runtime error:|SUMMARY:|Test unit written to" "$log" | head -n 8 | sed 's/^/    /'
		echo "    full log: $log"
	fi
	return $rc
}

[ $# -ge 2 ] || usage
mode=$1
shift
fail=0
for t in "$@"; do
	[ -x "$BUILD/fuzz/fuzz_$t" ] || { echo "$BUILD/fuzz/fuzz_$t missing: make fuzz-build" >&2; exit 1; }
	case $mode in
	regress) regress "$t" || fail=1 ;;
	fuzz) fuzz "$t" || fail=1 ;;
	*) usage ;;
	esac
done
exit $fail
