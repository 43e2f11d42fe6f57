#!/usr/bin/env bash
# test.sh — the whole test suite, as CI runs it (.ci/run).
#
#   bash scripts/test.sh
#
# 1. installs build and test dependencies (scripts/deps.sh --test)
# 2. builds build-test/ (fault injection on, -Werror), runs the unit tests
#    (ctest) and the end-to-end suite (tests/e2e/run.sh) against it
# 3. with a sanitizer build: the same in build-asan/ (address + undefined)
#
# The last line is "N passed, N failed, N skipped": end-to-end tests of every
# build, plus one failure for each build or ctest run that failed.  Exit
# status 0 only if nothing failed.
#
# Knobs (environment):
#   LAMFS_SANITIZE=1|0   sanitizer build on/off (default: on when CI=true)
#   LAMFS_E2E=all|none|"t_a t_b"       e2e tests on build-test (default all)
#   LAMFS_ASAN_E2E=all|none|"t_a ..."  e2e tests on build-asan (default all, less
#                        LAMFS_ASAN_EXCLUDE, which defaults to the S3/PostgreSQL suites)
#   LAMFS_E2E_EXCLUDE, LAMFS_ASAN_EXCLUDE="t_a ..."  leave these out of a run
#   LAMFS_ASAN_SCALE=N   timeout multiplier for the sanitizer e2e run (3)
#   LAMFS_FUZZ_SECONDS=N seconds per fuzz target (default 20; 0 skips fuzzing)
#   LAMFS_ASAN_EXERCISER_OPS=N  exerciser operations under the sanitizers (10000)
#   JOBS=N               parallel build jobs (default: nproc)
set -uo pipefail
# The whole script is one function, read completely before it runs, so
# editing this file cannot disturb a run in progress.
main() {
	cd "$(dirname "$0")/.."
	repo=$(pwd)

	jobs=${JOBS:-$(nproc)}
	if [[ -n "${LAMFS_SANITIZE:-}" ]]; then
		sanitize=$LAMFS_SANITIZE
	elif [[ "${CI:-}" == true ]]; then
		sanitize=1
	else
		sanitize=0
	fi
	e2e_sel=${LAMFS_E2E:-all}
	# Under the sanitizers: the whole suite but the tests that mostly wait on
	# the S3 and PostgreSQL servers (their lamfs code runs under the
	# sanitizers in the server unit tests and in the core tests); they would
	# double the run on 2 cores.  LAMFS_ASAN_EXCLUDE="" runs them too.
	asan_e2e_sel=${LAMFS_ASAN_E2E:-all}
	asan_exclude_default="t_s3_core t_s3_crash t_s3_errors t_s3_hostile t_s3_cache t_s3_token
 t_multi_pg t_lease_pg t_repair_s3 t_backup_pg t_lamindb_pg"
	asan_exclude=${LAMFS_ASAN_EXCLUDE-$(echo $asan_exclude_default)}

	summary=$(mktemp)
	trap 'rm -f "$summary"' EXIT
	stage_failures=()
	t0=$SECONDS

	say() { printf '== %s\n' "$*"; }
	elapsed() { printf '%dm%02ds' $(((SECONDS - t0) / 60)) $(((SECONDS - t0) % 60)); }

	# build DIR CMAKE-OPTIONS...: configure and build; output in DIR/build.log.
	build() {
		local dir=$1
		shift
		mkdir -p "$dir"
		say "build $dir ($*) [$(elapsed)]"
		if ! { cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" &&
			cmake --build "$dir" -j"$jobs"; } >"$dir/build.log" 2>&1; then
			tail -n 80 "$dir/build.log"
			echo "FAIL build $dir (whole log: $dir/build.log)"
			stage_failures+=("build $dir")
			return 1
		fi
		grep -E 'warning:' "$dir/build.log" | sort -u | head -n 20
		return 0
	}

	# unit DIR: ctest.
	unit() {
		local dir=$1
		say "unit tests: ctest in $dir [$(elapsed)]"
		if ! ctest --test-dir "$dir" --output-on-failure -j"$jobs" --timeout 300 </dev/null; then
			echo "FAIL ctest $dir"
			stage_failures+=("ctest $dir")
		fi
	}

	# memcheck DIR: the unit tests under valgrind memcheck; any error or
	# definite leak fails.  test_hash (hundreds of MiB hashed) and test_meta
	# (every case makes a store from LaminDB's 5 MiB database: minutes under
	# valgrind) are left to the sanitizer build, where they run in seconds.
	memcheck() {
		local dir=$1 t name bad=0
		say "unit tests under valgrind memcheck [$(elapsed)]"
		for t in "$dir"/tests/test_*; do
			name=$(basename "$t")
			[[ -x "$t" && $name != test_hash && $name != test_meta &&
				$name != test_s3_server ]] || continue
			if ! CMOCKA_MESSAGE_OUTPUT=STDOUT valgrind -q --error-exitcode=99 \
				--leak-check=full --errors-for-leak-kinds=definite \
				"$t" >"$dir/memcheck-$name.log" 2>&1 </dev/null; then
				tail -n 40 "$dir/memcheck-$name.log"
				echo "FAIL memcheck $name"
				bad=1
			fi
		done
		[[ $bad == 0 ]] || stage_failures+=("valgrind memcheck $dir")
	}

	# servers DIR: the unit tests that need a real server, each started on
	# 127.0.0.1 by its script and stopped after it: the S3 backend against a
	# signature-checking S3 server, the metadata contract on PostgreSQL.
	servers() {
		local dir=$1
		say "unit tests against a real S3 server [$(elapsed)]"
		bash tests/s3server/run-unit.sh "$dir" </dev/null ||
			stage_failures+=("S3 unit tests $dir")
		say "unit tests against a real PostgreSQL [$(elapsed)]"
		bash tests/pg/run-unit.sh "$dir" </dev/null ||
			stage_failures+=("PostgreSQL unit tests $dir")
	}

	# e2e DIR SELECTION [ENV...]: the end-to-end suite against DIR/tools/lamfs.
	e2e() {
		local dir=$1 sel=$2
		shift 2
		[[ "$sel" == none ]] && return 0
		local names=()
		[[ "$sel" != all ]] && read -r -a names <<<"$sel"
		say "end-to-end tests on $dir/tools/lamfs [$(elapsed)]"
		local before
		before=$(wc -l <"$summary")
		env "$@" E2E_SUMMARY="$summary" LAMFS_BIN="$repo/$dir/tools/lamfs" \
			bash tests/e2e/run.sh -w "$repo/tests/e2e/.work/$(basename "$dir")" "${names[@]}" </dev/null
		local rc=$?
		# run.sh could not even start (no binary...): count it as a failure.
		if [[ $rc -ne 0 && $(wc -l <"$summary") -eq $before ]]; then
			stage_failures+=("e2e $dir")
		fi
	}

	say "dependencies"
	if ! bash scripts/deps.sh --test; then
		echo "0 passed, 1 failed"
		exit 1
	fi

	if build build-test -DLAMFS_FAULT_INJECTION=ON -DLAMFS_WERROR=ON; then
		unit build-test
		memcheck build-test
		servers build-test
		e2e build-test "$e2e_sel" E2E_LABEL= E2E_EXCLUDE="${LAMFS_E2E_EXCLUDE:-}"
	fi

	if [[ "$sanitize" == 1 ]]; then
		if build build-asan -DLAMFS_SANITIZE=ON -DLAMFS_FAULT_INJECTION=ON -DLAMFS_WERROR=ON; then
			# Unit tests under ASan/UBSan: any report fails the test program.
			ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
				UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
				unit build-asan
			ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
				UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
				servers build-asan
			e2e build-asan "$asan_e2e_sel" E2E_LABEL=asan E2E_SANITIZE=1 \
				EXERCISER_OPS="${LAMFS_ASAN_EXERCISER_OPS:-10000}" \
				E2E_EXCLUDE="$asan_exclude" \
				E2E_TIMEOUT_SCALE="${LAMFS_ASAN_SCALE:-3}"
		fi
	else
		say "sanitizer build skipped (LAMFS_SANITIZE=1 or CI=true turns it on)"
	fi

	# Every parser of outside input under libFuzzer (clang), each for a bounded
	# time on its committed corpus; a crash or a broken promise fails it.
	if [[ "${LAMFS_FUZZ_SECONDS:-20}" != 0 ]]; then
		say "fuzz targets, ${LAMFS_FUZZ_SECONDS:-20} s each [$(elapsed)]"
		FUZZ_BUILD="$repo/build-fuzz" JOBS="$jobs" \
			bash tests/fuzz/run.sh -t "${LAMFS_FUZZ_SECONDS:-20}" </dev/null ||
			stage_failures+=("fuzz")
	fi

	passed=0 failed=0 skipped=0
	while read -r p f s; do
		passed=$((passed + p))
		failed=$((failed + f))
		skipped=$((skipped + s))
	done <"$summary"
	failed=$((failed + ${#stage_failures[@]}))

	say "done in $(elapsed)"
	for s in "${stage_failures[@]}"; do
		echo "failed stage: $s"
	done
	echo "$passed passed, $failed failed, $skipped skipped"
	[[ $failed -eq 0 ]]
}

main "$@"; exit $?
