#!/usr/bin/env bash
# t_posix.sh — the POSIX conformance suite (tests/posix/test_*.py) against a
# real mount: one Python file per system call, each case checking a return
# value, an errno, or the bytes and attributes that result, as POSIX and
# Linux define them (and, for what lamfs does not support, the errno the
# README lists).  The mount has allow_other so the permission cases can run
# as other uids (forked children with setresuid); default_permissions is
# always on, so the kernel enforces modes.
#
# Prints a table "call  cases  passed" (the README quotes it) and fails if
# any case failed; afterwards the store must be consistent (check_store).
# POSIX_TESTS="open rename" runs only those files.
# timeout: 600
. "$(dirname "$0")/lib.sh"
e2e_begin

[[ $(id -u) -eq 0 ]] || skip "needs root (allow_other and the permission cases switch uids)"
posix=$REPO/tests/posix
export PYTHONDONTWRITEBYTECODE=1

inst=$(instance_new inst)
mnt=$WORK/mnt
mount_fs "$inst" "$mnt" -o allow_other

results=$WORK/results
: >"$results"
failed_files=()
files=()
if [[ -n "${POSIX_TESTS:-}" ]]; then
	for n in $POSIX_TESTS; do files+=("$posix/test_${n#test_}.py"); done
else
	files=("$posix"/test_*.py)
fi
for f in "${files[@]}"; do
	name=$(basename "$f" .py)
	rc=0
	(cd "$posix" && python3 "$f" "$mnt") >"$WORK/$name.out" 2>&1 || rc=$?
	grep '^RESULT ' "$WORK/$name.out" >>"$results" || true
	if [[ $rc -ne 0 ]]; then
		failed_files+=("$name")
		grep -v '^ok \|^RESULT ' "$WORK/$name.out" | sed 's/^/# /'
	fi
done

# The table: one row per system call, summed over the files.
table=$(awk '{ c[$2] += $3; p[$2] += $4; if (!($2 in o)) { o[$2] = n++ } }
	END {
		for (k in o) order[o[k]] = k
		printf "%-12s %6s %7s\n", "call", "cases", "passed"
		for (i = 0; i < n; i++) {
			k = order[i]; tc += c[k]; tp += p[k]
			printf "%-12s %6d %7d\n", k, c[k], p[k]
		}
		printf "%-12s %6d %7d\n", "total", tc, tp
	}' "$results")
printf '%s\n' "$table" | sed 's/^/# /'

umount_fs "$mnt"
check_store "$inst"
[[ ${#failed_files[@]} -eq 0 ]] || fail "POSIX cases failed in: ${failed_files[*]}"
e2e_pass
