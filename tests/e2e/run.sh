#!/usr/bin/env bash
# run.sh — run lamfs's end-to-end tests against one binary.
#
#   tests/e2e/run.sh [-b LAMFS_BIN] [-w WORKDIR] [-t SECONDS] [t_name ...]
#
# Runs every tests/e2e/t_*.sh (or the ones named, with or without t_ and .sh),
# each as its own process under `timeout`, with its own work directory
# WORKDIR/<test>.  Prints PASS/FAIL/SKIP per test (with the test's output and
# the daemon's log tail on failure), then "N passed, N failed, N skipped".
# Exit status: 0 if nothing failed.  After each test every mount left under
# its work directory is removed (aborting hung connections), whatever
# happened.  A passing test's directory is deleted; a failing one's is kept.
#
# Environment: LAMFS_BIN, E2E_TIMEOUT (default per test 600 s, or the value
# of a "# timeout: N" line in the test), E2E_VERBOSE=1 (stream test output),
# E2E_SUMMARY=FILE (append "passed failed skipped" to FILE), E2E_FAULTS
# (default: read LAMFS_FAULT_INJECTION from the binary's CMakeCache.txt),
# E2E_EXCLUDE="t_a t_b" (leave these out), E2E_LABEL (a prefix for PASS/FAIL lines), E2E_TIMEOUT_SCALE (multiply
# every timeout, e.g. 3 for a sanitizer build), E2E_SANITIZE=1 (collect
# ASan/UBSan reports of lamfs processes; any report fails the test).
set -uo pipefail

# The whole script is one function, read completely before it runs, so
# editing this file cannot disturb a run in progress.
main() {
	here=$(cd "$(dirname "$0")" && pwd)
	repo=$(cd "$here/../.." && pwd)
	bin=${LAMFS_BIN:-$repo/build-test/tools/lamfs}
	work=${E2E_WORK:-$here/.work}
	deftimeout=${E2E_TIMEOUT:-600}
	label=${E2E_LABEL:+$E2E_LABEL }

	while getopts "b:w:t:h" o; do
		case $o in
		b) bin=$OPTARG ;;
		w) work=$OPTARG ;;
		t) deftimeout=$OPTARG ;;
		*)
			sed -n '2,20p' "$0"
			exit 2
			;;
		esac
	done
	shift $((OPTIND - 1))

	if [[ ! -x "$bin" ]]; then
		echo "run.sh: no lamfs binary at $bin" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
	bin=$(readlink -f -- "$bin")
	export LAMFS_BIN=$bin

	if [[ -z "${E2E_FAULTS:-}" ]]; then
		cache=$(dirname "$(dirname "$bin")")/CMakeCache.txt
		if [[ -f "$cache" ]] && grep -q '^LAMFS_FAULT_INJECTION:BOOL=ON' "$cache"; then
			E2E_FAULTS=1
		else
			E2E_FAULTS=0
		fi
	fi
	export E2E_FAULTS

	tests=()
	if [[ $# -gt 0 ]]; then
		for n in "$@"; do
			n=${n%.sh}
			n=${n#t_}
			[[ -f "$here/t_$n.sh" ]] || {
				echo "run.sh: no test $here/t_$n.sh" >&2
				exit 2
			}
			tests+=("$here/t_$n.sh")
		done
	else
		for t in "$here"/t_*.sh; do
			[[ -f "$t" ]] && tests+=("$t")
		done
	fi
	# E2E_EXCLUDE: names (with or without t_) to leave out
	if [[ -n "${E2E_EXCLUDE:-}" ]]; then
		local kept=() x skip
		for t in "${tests[@]}"; do
			skip=0
			for x in $E2E_EXCLUDE; do
				x=${x%.sh}
				[[ "$(basename "$t" .sh)" == "t_${x#t_}" ]] && skip=1
			done
			[[ $skip == 1 ]] && echo "${label}excluded $(basename "$t" .sh)" || kept+=("$t")
		done
		tests=("${kept[@]}")
	fi

	mkdir -p -- "$work"
	work=$(cd "$work" && pwd)
	# shellcheck source=lib.sh
	. "$here/lib.sh" # for force_umount_all and mounts_under; sets -eE, undone below
	set +eE
	trap - ERR

	passed=0 failed=0 skipped=0
	san_pattern='runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior|Leak)Sanitizer'
	failed_names=()
	for t in "${tests[@]}"; do
		name=$(basename "$t" .sh)
		dir=$work/$name
		# Leftovers of an earlier run: unmount first, then never cross into a mount.
		WORK=$dir force_umount_all "$dir" 2>/dev/null
		rm -rf --one-file-system -- "$dir"
		mkdir -p -- "$dir"
		tmo=$(sed -n 's/^# timeout: *\([0-9][0-9]*\).*/\1/p' "$t" | head -n1)
		tmo=${tmo:-$deftimeout}
		[[ -n "${E2E_TIMEOUT:-}" && "$E2E_TIMEOUT" -gt "$tmo" ]] && tmo=$E2E_TIMEOUT

		tmo=$((tmo * ${E2E_TIMEOUT_SCALE:-1}))
		if [[ "${E2E_SANITIZE:-0}" == 1 ]]; then
			# Sanitized lamfs processes (daemon and CLI) write reports here.
			export ASAN_OPTIONS="log_path=$dir/sanitizer.asan:abort_on_error=1:detect_leaks=${E2E_DETECT_LEAKS:-1}${ASAN_EXTRA:+:$ASAN_EXTRA}"
			export UBSAN_OPTIONS="log_path=$dir/sanitizer.ubsan:print_stacktrace=1:halt_on_error=1"
		fi

		start=$SECONDS
		if [[ "${E2E_VERBOSE:-0}" == 1 ]]; then
			E2E_TEST_WORK=$dir timeout -k 15 "$tmo" bash "$t" </dev/null 2>&1 | tee "$dir/output.log"
			rc=${PIPESTATUS[0]}
		else
			E2E_TEST_WORK=$dir timeout -k 15 "$tmo" bash "$t" </dev/null >"$dir/output.log" 2>&1
			rc=$?
		fi
		secs=$((SECONDS - start))
		# Whatever the test did or did not clean up: no mount survives it.
		left=$(mounts_under "$dir")
		WORK=$dir force_umount_all "$dir" 2>/dev/null
		if [[ $rc -eq 0 && -n "$left" ]]; then
			echo "FAIL: test left mounts behind: $left" >>"$dir/output.log"
			rc=1
		fi
		# Sanitizer reports: ASan's log_path files, and reports on the stderr of
		# foreground daemons (lib.sh mount_fs) or in daemon logs.
		san=$(
			cat "$dir"/sanitizer.* 2>/dev/null
			grep -h -A 30 -E "$san_pattern" "$dir"/daemon-stderr.* "$dir"/*/lamfs.log 2>/dev/null
		)
		if [[ -n "$san" ]]; then
			{
				echo "FAIL: sanitizer reports:"
				head -n 200 <<<"$san"
			} >>"$dir/output.log"
			[[ $rc -eq 77 ]] && rc=0
			[[ $rc -eq 0 ]] && rc=1
		fi

		if [[ $rc -eq 0 ]]; then
			passed=$((passed + 1))
			printf '%sPASS %s (%ss)\n' "$label" "$name" "$secs"
			rm -rf --one-file-system -- "$dir"
		elif [[ $rc -eq 77 ]]; then
			skipped=$((skipped + 1))
			printf '%sSKIP %s: %s\n' "$label" "$name" "$(grep -m1 '^SKIP' "$dir/output.log" | cut -c7-)"
			rm -rf --one-file-system -- "$dir"
		else
			failed=$((failed + 1))
			failed_names+=("$name")
			why=""
			[[ $rc -eq 124 || $rc -eq 137 ]] && why=" timed out after ${tmo}s"
			printf '%sFAIL %s (exit %s%s, %ss)\n' "$label" "$name" "$rc" "$why" "$secs"
			if [[ "${E2E_VERBOSE:-0}" != 1 ]]; then
				echo "---- output of $name (last 60 lines; all in $dir/output.log) ----"
				tail -n 60 "$dir/output.log"
			fi
			for lg in "$dir"/*/lamfs.log "$dir"/daemon-stderr.*; do
				[[ -f "$lg" ]] || continue
				echo "---- $lg (last 30 lines) ----"
				tail -n 30 "$lg"
			done
			echo "---- end of $name ----"
		fi
	done

	[[ -n "${E2E_SUMMARY:-}" ]] && echo "$passed $failed $skipped" >>"$E2E_SUMMARY"
	[[ ${#failed_names[@]} -gt 0 ]] && echo "${label}failed: ${failed_names[*]}"
	echo "$passed passed, $failed failed, $skipped skipped"
	[[ $failed -eq 0 ]]
}

main "$@"; exit $?
