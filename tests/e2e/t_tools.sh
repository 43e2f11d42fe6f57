#!/usr/bin/env bash
# t_tools.sh — ordinary tools on the mount: rsync -a of a tree in and back
# out (diff -r clean, modes and mtimes kept, a second rsync copies nothing);
# tar x into the mount; 8 concurrent writers of different files; 2 concurrent
# writers of one key while a reader checks that every read is one whole
# version.
# timeout: 600
. "$(dirname "$0")/lib.sh"
e2e_begin

inst=$(instance_new inst)
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"

# A tree with nested folders, an empty folder, an empty file, odd modes and mtimes.
tree=$WORK/tree
mkdir -p "$tree/a/b/c" "$tree/empty" "$tree/data"
printf '>seq1\nACGT\n' >"$tree/a/s.fasta"
: >"$tree/a/b/empty.txt"
random_file "$tree/a/b/c/blob.bin" $((3 * MiB + 17))
random_file "$tree/data/m.tar.gz" $((1 * MiB))
for i in $(seq 1 40); do echo "row $i" >"$tree/data/t$i.csv"; done
chmod 600 "$tree/a/s.fasta"
chmod 755 "$tree/a/b/c/blob.bin"
chmod 700 "$tree/a/b"
touch -m -d '2010-05-06 07:08:09.5 UTC' "$tree/a/s.fasta"
touch -m -d '2011-01-01 00:00:00 UTC' "$tree/data"

# path type size mode mtime (whole seconds: rsync and tar keep at least those;
# no size for folders, which differs between filesystems)
listing() {
	(cd "$1" && {
		find . -mindepth 1 -type f -printf '%P f %s %m %T@\n'
		find . -mindepth 1 -type d -printf '%P d - %m %T@\n'
	} | sed 's/\.[0-9]*$//' | LC_ALL=C sort)
}

log "rsync -a into the mount and back out"
rsync -a "$tree/" "$mnt/rs/" || fail "rsync -a into the mount failed"
assert_ok "diff -r tree mount" diff -r "$tree" "$mnt/rs"
assert_eq "modes, sizes, mtimes in the mount" "$(listing "$tree")" "$(listing "$mnt/rs")"
out=$(rsync -ai "$tree/" "$mnt/rs/") || fail "second rsync failed"
assert_eq "second rsync -ai (nothing to copy)" "" "$out"
rsync -a "$mnt/rs/" "$WORK/back/" || fail "rsync -a out of the mount failed"
assert_ok "diff -r tree back" diff -r "$tree" "$WORK/back"
assert_eq "modes, sizes, mtimes after the round trip" "$(listing "$tree")" "$(listing "$WORK/back")"

log "tar x into the mount"
tar -C "$tree" -cf "$WORK/tree.tar" .
mkdir "$mnt/tarx"
tar -C "$mnt/tarx" -xf "$WORK/tree.tar" || fail "tar x into the mount failed"
assert_ok "diff -r tree tarx" diff -r "$tree" "$mnt/tarx"
assert_eq "modes, sizes, mtimes after tar x" "$(listing "$tree")" "$(listing "$mnt/tarx")"

log "8 concurrent writers of different files"
mkdir "$mnt/conc"
for i in $(seq 1 8); do random_file "$WORK/w$i" $((4 * MiB + i)); done
pids=()
for i in $(seq 1 8); do
	cp "$WORK/w$i" "$mnt/conc/w$i.bin" &
	pids+=($!)
done
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || fail "concurrent writer $((i + 1)) failed"
done
for i in $(seq 1 8); do
	assert_same_file "concurrent writer $i" "$WORK/w$i" "$mnt/conc/w$i.bin"
done
assert_eq "records under conc/" "8" \
	"$(sql "$inst" "select count(*) from artifact where key like 'conc/%' and _aux is null")"

log "2 concurrent writers of one key, a reader that must always see a whole version"
random_file "$WORK/A" $((2 * MiB))
random_file "$WORK/B" $((2 * MiB + 4096))
sumA=$(sha256_of "$WORK/A")
sumB=$(sha256_of "$WORK/B")
k=$mnt/conc/shared.bin
cp "$WORK/A" "$k"
rounds=15
writer() {
	local i
	for ((i = 0; i < rounds; i++)); do
		cp "$1" "$k" || { echo "writer of $1: cp failed in round $i" >&2; return 1; }
	done
}
writer "$WORK/A" &
wa=$!
writer "$WORK/B" &
wb=$!
reads=0 bad=0
badlog=$WORK/bad-reads
while kill -0 "$wa" 2>/dev/null || kill -0 "$wb" 2>/dev/null; do
	cat <"$k" >"$WORK/read" 2>>"$badlog" || echo "read $reads: cat failed" >>"$badlog"
	s=$(sha256_of "$WORK/read")
	reads=$((reads + 1))
	if [[ "$s" != "$sumA" && "$s" != "$sumB" ]]; then
		bad=$((bad + 1))
		# how the bytes read relate to the two versions, for the report
		echo "read $reads: got $(stat -c %s "$WORK/read") bytes;" \
			"vs A ($(stat -c %s "$WORK/A")): $({ cmp "$WORK/read" "$WORK/A" 2>&1 || true; } | head -c 120);" \
			"vs B ($(stat -c %s "$WORK/B")): $({ cmp "$WORK/read" "$WORK/B" 2>&1 || true; } | head -c 120)" >>"$badlog"
	fi
done
rca=0 rcb=0
wait "$wa" || rca=$?
wait "$wb" || rcb=$?
log "reader did $reads reads while the writers ran"
[[ $rca -eq 0 && $rcb -eq 0 ]] || fail "concurrent writers of one key: exits $rca and $rcb"
[[ $bad -eq 0 ]] || fail "reader saw $bad of $reads reads that were not one whole version: $(head -n 5 "$badlog")"
s=$(sha256_of "$k")
[[ "$s" == "$sumA" || "$s" == "$sumB" ]] || fail "final content of the shared key is neither version"
assert_eq "is_latest rows at conc/shared.bin" "1" \
	"$(sql "$inst" "select count(*) from artifact where key = 'conc/shared.bin' and is_latest = 1")"
assert_eq "flagged rows at conc/shared.bin" "0" \
	"$(sql "$inst" "select count(*) from artifact where key = 'conc/shared.bin' and _aux is not null")"

umount_fs "$mnt"
check_store "$inst"

e2e_pass
