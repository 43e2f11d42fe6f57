#!/usr/bin/env bash
# run.sh — build lamfs's libFuzzer targets and run each for a bounded time.
#
#   tests/fuzz/run.sh [-b BUILD_DIR] [-t SECONDS] [-j JOBS] [-n] [target ...]
#
# Builds tests/fuzz as its own CMake project with clang
# (-fsanitize=fuzzer,address,undefined; the project's libraries are compiled
# into BUILD_DIR too), then for every target (default: all):
#   1. replays every committed input of corpus/<target>/ once (regression);
#   2. fuzzes for SECONDS (default 20, FUZZ_SECONDS) starting from a scratch
#      copy of that corpus, so new coverage never touches the committed one.
# A crash, leak, timeout or failed check is saved as
# corpus/<target>/regress-<target>-<sha1> (a committed regression input from
# then on) and reported with its reproducer command.
#   -n   no build (use the binaries already in BUILD_DIR)
#   -t   seconds per target (0: replay the corpus only)
# Environment: FUZZ_SECONDS, FUZZ_BUILD (default build-fuzz beside the repo's
# other build trees), CC (default clang), FUZZ_MERGE=1 (merge new coverage
# back into the committed corpus, minimised; for a maintainer, not for CI).
# The last line is "N passed, N failed"; exit status 0 only if nothing failed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD:-$repo/build-fuzz}
secs=${FUZZ_SECONDS:-20}
jobs=${JOBS:-2}
do_build=1
all=(fuzz_key fuzz_instance fuzz_s3_xml fuzz_mountopts fuzz_s3_config)

while getopts "b:t:j:nh" o; do
	case $o in
	b) build=$OPTARG ;;
	t) secs=$OPTARG ;;
	j) jobs=$OPTARG ;;
	n) do_build=0 ;;
	*)
		sed -n '2,22p' "$0"
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")

declare -A build_failed=()
if [[ $do_build == 1 ]]; then
	echo "== build $build (clang, fuzzer+address+undefined)"
	mkdir -p "$build"
	if ! CC=${CC:-clang} cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		>"$build/build.log" 2>&1; then
		tail -n 40 "$build/build.log"
		echo "FAIL configure (whole log: $build/build.log)"
		echo "0 passed, ${#targets[@]} failed"
		exit 1
	fi
	# One target at a time: a library that does not build fails only the
	# targets that link it.
	for t in "${targets[@]}"; do
		if ! cmake --build "$build" -j"$jobs" --target "$t" >"$build/build-$t.log" 2>&1; then
			build_failed[$t]=1
		fi
	done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/lamfs-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

passed=0 failed=0
for t in "${targets[@]}"; do
	bin=$build/$t
	corpus=$here/corpus/$t
	if [[ -n "${build_failed[$t]:-}" ]]; then
		echo "FAIL $t: does not build:"
		grep -E 'error|Error' "$build/build-$t.log" | head -n 10
		failed=$((failed + 1))
		continue
	fi
	if [[ ! -x "$bin" ]]; then
		echo "FAIL $t: no binary $bin"
		failed=$((failed + 1))
		continue
	fi
	mkdir -p "$scratch/$t/work" "$scratch/$t/art"
	log=$scratch/$t/log
	ok=1
	# 1. regression: every committed input once (crashes stop the run).
	if ! "$bin" -runs=0 -artifact_prefix="$scratch/$t/replay-" "$corpus" >"$log" 2>&1; then
		ok=0
		# name every failing input, with the first line that says why
		for f in "$corpus"/*; do
			"$bin" -runs=0 -artifact_prefix="$scratch/$t/replay-" "$f" >"$scratch/$t/one" 2>&1 &&
				continue
			why=$(grep -a -m1 -E "^$t: |^SUMMARY: |ERROR: " "$scratch/$t/one")
			echo "FAIL $t: ${f#"$repo"/}: $why"
			echo "     reproduce: $bin $f"
		done
	fi
	# 2. bounded fuzzing from a scratch copy of the corpus.
	if [[ $ok == 1 && $secs -gt 0 ]]; then
		cp -a "$corpus/." "$scratch/$t/work/"
		if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
			-max_len=8192 -print_final_stats=1 \
			-artifact_prefix="$scratch/$t/art/" "$scratch/$t/work" >"$log" 2>&1; then
			ok=0
		fi
		for a in "$scratch/$t/art"/*; do
			[[ -f "$a" ]] || continue
			kind=$(basename "$a" | cut -d- -f1)
			dst=$corpus/regress-$t-$kind-$(sha1sum "$a" | cut -c1-16)
			cp "$a" "$dst"
			echo "FAIL $t: $kind, saved as ${dst#"$repo"/}"
			echo "     reproduce: $bin $dst"
			ok=0
		done
		if [[ "${FUZZ_MERGE:-0}" == 1 && $ok == 1 ]]; then
			"$bin" -merge=1 "$corpus" "$scratch/$t/work" >/dev/null 2>&1
		fi
	fi
	stats=$(grep -E '^(stat::number_of_executed_units|stat::new_units_added)' "$log" |
		sed 's/stat:://' | tr '\n' ' ')
	if [[ $ok == 1 ]]; then
		passed=$((passed + 1))
		echo "PASS $t ($(find "$corpus" -type f | wc -l) seeds; ${stats:-replay only})"
	else
		failed=$((failed + 1))
		echo "---- $t (last 40 lines) ----"
		grep -v '^#' "$log" | tail -n 40
		echo "---- end of $t ----"
	fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
