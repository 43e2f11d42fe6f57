#!/usr/bin/env bash
# t_lamindb_rows.sh — what the mount saves is LaminDB's record, and what
# LaminDB saves shows in the mount (issue 19; SQLite, then a real PostgreSQL
# server):
#  - cp through the mount (versions, compound suffixes .csv.gz .fastq.gz
#    .tar.gz), then every LaminDB column checked with sqlite3 / psql
#    (lamindb_check_columns: uid 20 base62, one stem across versions,
#    0000/0001, suffix, size, md5 hash of ">seq1\nACGT\n" =
#    83rEPcAoBHmYiIuyBYrFKg, one is_latest per key on branch 1, branch 1,
#    space 1, the storage row of the root with the instance uid its marker
#    derives, user 00000000, _key_is_virtual, _aux NULL, Django's time form);
#  - a row inserted the way Django writes it shows in the running mount
#    within its cache timeout and reads its bytes;
#  - attached to a root LaminDB made (lamindb_sqlite_made,
#    lamindb_pg_made): LaminDB's artifact is a file of the mount, and cp
#    saves into LaminDB's storage row.
# Skipped while lamfs keeps its records in its interim table "artifact"
# (lamfs schema 3, docs/schema.md "This round"): it runs as soon as the
# records are lamindb_artifact's.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin
command -v sqlite3 >/dev/null || skip "sqlite3 missing"
command -v psql >/dev/null || skip "psql missing"

# saves_and_columns INST ROOT: cp through a mount of INST, LaminDB's columns,
# a Django-written row read through the running mount.
saves_and_columns() {
	local inst=$1 root=$2 mnt=$WORK/mnt
	mount_fs "$inst" "$mnt"
	printf '>seq1\nACGT\n' >"$WORK/sample.fasta"
	printf '>seq1\nACGTT\n' >"$WORK/sample2.fasta"
	mkdir -p "$mnt/seqs" "$mnt/t"
	cp "$WORK/sample.fasta" "$mnt/seqs/sample.fasta"
	cp "$WORK/sample2.fasta" "$mnt/seqs/sample.fasta"
	printf 'a,b\n1,2\n' | gzip >"$WORK/x.csv.gz"
	printf '@r\nACGT\n+\nIIII\n' | gzip >"$WORK/r.fastq.gz"
	tar -C "$WORK" -czf "$WORK/s.tar.gz" sample.fasta
	cp "$WORK/x.csv.gz" "$WORK/r.fastq.gz" "$WORK/s.tar.gz" "$mnt/t/"
	assert_eq "versions of seqs/sample.fasta: version, hash, latest" \
		"0000|83rEPcAoBHmYiIuyBYrFKg|md5|0
0001|$(lamindb_hash "$WORK/sample2.fasta")|md5|1" \
		"$(sql "$inst" "select substr(uid, 17, 4) || '|' || hash || '|' || _hash_type || '|' ||
				case when is_latest then 1 else 0 end
			from lamindb_artifact where key = 'seqs/sample.fasta' order by uid")"
	assert_eq "suffixes" ".csv.gz .fastq.gz .tar.gz" \
		"$(sql "$inst" "select suffix from lamindb_artifact where key like 't/%' order by suffix" |
			tr '\n' ' ' | sed 's/ $//')"
	lamindb_check_columns "$inst" "$root" "$root/.lamindb/storage_uid.txt"

	log "a row written the way Django writes it shows in the running mount"
	if [[ "$(_e2e_conf "$inst" meta url)" == postgres* ]]; then
		lamindb_pg_django_save "$root" LDjango0000000000000 from_lamindb/notes.txt "saved by LaminDB"
	else
		lamindb_sqlite_django_save "$inst" "$root" LDjango0000000000000 from_lamindb/notes.txt \
			"saved by LaminDB"
	fi
	await_path "from_lamindb/notes.txt in the mount" present "$mnt/from_lamindb/notes.txt"
	assert_eq "its bytes" "saved by LaminDB" "$(cat "$mnt/from_lamindb/notes.txt")"
	assert_eq "its uid" LDjango0000000000000 "$(xattr "$mnt/from_lamindb/notes.txt" user.lamfs.uid)"
	umount_fs "$mnt"
}

log "SQLite: a new instance"
inst=$(instance_new sq --storage "$WORK/sqroot")
lamindb_rows_pending "$inst" &&
	skip "lamfs keeps its records in its interim table 'artifact' (lamfs schema 3), not yet lamindb_artifact"
saves_and_columns "$inst" "$WORK/sqroot"

log "SQLite: attached to a root LaminDB made; LaminDB's artifact in the mount"
lamindb_sqlite_made "$WORK/lab" lab >/dev/null
inst=$(instance_new lab --storage "$WORK/lab")
mount_fs "$inst" "$WORK/mnt"
assert_eq "LaminDB's artifact through the mount" "saved by LaminDB" "$(cat "$WORK/mnt/from_lamindb.txt")"
umount_fs "$WORK/mnt"
assert_eq "LaminDB's artifact in the listing" "from_lamindb.txt" "$("$LAMFS_BIN" ls "$inst" | awk '{print $NF}')"

log "PostgreSQL: attached to a database LaminDB made"
pg_server_start "${E2E_PG_PORT:-15480}"
lamindb_pg_made "$WORK/pglab" pglab QwErTy123456
lamindb_pg_django_save "$WORK/pglab" LNsaved0000000000000 from_lamindb.txt "saved by LaminDB"
inst=$(instance_new pg --db "$E2E_PG_URL" --storage "$WORK/pglab")
mount_fs "$inst" "$WORK/mnt"
assert_eq "LaminDB's artifact through the mount" "saved by LaminDB" "$(cat "$WORK/mnt/from_lamindb.txt")"
umount_fs "$WORK/mnt"
saves_and_columns "$inst" "$WORK/pglab"
e2e_pass
