#!/usr/bin/env bash
# t_upgrade.sh — an instance made before LaminDB's schema (lamfs schema 2,
# by the release of commit d6c6630: tests/e2e/fixtures, see its README)
# brought to this lamfs with `lamfs upgrade`, on SQLite and on PostgreSQL:
#  - before: `lamfs mount` and `lamfs ls` refuse, naming `lamfs upgrade`;
#    nothing changed; `lamfs upgrade` refuses while the instance lock is held
#    or a lease in the store is live (a mount on another machine)
#  - `lamfs upgrade`: LaminDB's tables at 0189_v2_6 with `lamin init`'s rows,
#    the lamindb_storage row of the storage root and LaminDB's marker
#    (storage_uid.txt) naming it, as lamfs init makes them, lamfs schema 3; every
#    artifact, folder and lease row as before (a flagged record and a lease
#    added to the fixture first); SQLite: the copy from before beside it
#  - mounted: every file's bytes, every version with its uid (`lamfs
#    versions`, `lamfs cat UID`), the folders (an empty one too); a new save
#    works; a second `lamfs upgrade` says the store is current
. "$(dirname "$0")/lib.sh"
e2e_begin
FIX=$E2E_DIR/fixtures
command -v sqlite3 >/dev/null || skip "sqlite3 missing"

c_bin() { python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 7 + 3) % 251 for i in range(100000)))'; }

# Rows of lamfs's schema-2 tables (what the upgrade must keep), storage_id left out.
old_rows() {
	sql "$1" "select id, uid, key, parent, name, suffix, size, hash, _hash_type, checksum,
		is_latest, _aux, branch_id, created_at, updated_at, mode, owner_uid, owner_gid,
		mtime_ns from artifact order by id"
	sql "$1" "select * from folder order by path"
	sql "$1" "select id, kind, host, pid, instance, mountpoint, started_ms, expires_ms
		from lease order by id"
}

# upgrade_check INST STORAGE_ROOT: the whole story on one instance.
upgrade_check() {
	local inst=$1 root=$2 mnt=$WORK/$(basename "$1").mnt out rc before uid key n
	# a flagged record (an interrupted save) and a lease, as schema 2 held them
	sql "$inst" "insert into artifact (uid, key, parent, name, suffix, size, hash, _hash_type,
		checksum, is_latest, _aux, branch_id, storage_id, created_at, updated_at)
		values ('zzzzzzzzzzzzzzzz0000', 'flagged.txt', '', 'flagged.txt', '.txt', 1, 'h',
		'md5', 'c', false, '{\"so\": 1}', 1, 1, 1, 1)"
	sql "$inst" "insert into lease values ('old-host:1:mount', 'mount', 'old-host', 1,
		'$inst', '/mnt/x', 1000, 2000)"
	before=$(old_rows "$inst")
	assert_match "fixture rows" "DTmi|37iZ|E7mI|KNqP" "$before"

	mkdir -p "$mnt"
	out=$("$LAMFS_BIN" mount "$inst" "$mnt" 2>&1) && fail "mount of a schema-2 store succeeded"
	assert_match "mount refuses" "before LaminDB's schema.*lamfs upgrade INSTANCE" "$out"
	is_mounted "$mnt" && fail "mounted anyway"
	out=$("$LAMFS_BIN" ls "$inst" 2>&1) && fail "ls of a schema-2 store succeeded"
	assert_match "ls refuses" "lamfs upgrade INSTANCE" "$out"
	assert_eq "nothing changed by the refusals" "$before" "$(old_rows "$inst")"
	assert_eq "schema still 2" "2" "$(sql "$inst" 'select version from lamfs_schema')"

	# a live lease (a mount on another machine): refused, nothing changed
	sql "$inst" "insert into lease values ('other:2:mount', 'mount', 'other-host', 2,
		'$inst', '/mnt/y', 1000, 99999999999999)"
	out=$("$LAMFS_BIN" upgrade "$inst" 2>&1) && fail "upgrade beside a live lease succeeded"
	assert_match "upgrade beside a live lease" "a live lease.*unmount it everywhere first" "$out"
	assert_eq "schema still 2 beside a live lease" "2" "$(sql "$inst" 'select version from lamfs_schema')"
	sql "$inst" "delete from lease where id = 'other:2:mount'"

	# the instance lock held (as a mount holds it): refused, nothing changed
	exec 9>>"$inst/lamfs.lock"
	flock -s 9
	rc=0
	out=$("$LAMFS_BIN" upgrade "$inst" 2>&1 9>&-) || rc=$?
	out=$("$LAMFS_BIN" upgrade "$inst" --json 2>/dev/null 9>&-) && fail "upgrade --json while locked succeeded"
	assert_match "upgrade --json while locked" '"error": *"[^"]*is mounted or in use' "$out"
	exec 9>&-
	assert_eq "upgrade while locked: exit" "1" "$rc"
	assert_match "upgrade while locked" "is mounted or in use.*unmount it first" "$out"
	assert_eq "schema still 2 after the refused upgrade" "2" \
		"$(sql "$inst" 'select version from lamfs_schema')"

	out=$("$LAMFS_BIN" upgrade "$inst" 2>&1) || fail "lamfs upgrade $inst: $out"
	assert_match "upgrade says what it did" "upgraded .*LaminDB's schema \(migration 0189_v2_6\)" "$out"
	assert_eq "lamfs schema" "3" "$(sql "$inst" 'select version from lamfs_schema')"
	assert_eq "every row kept" "$before" "$(old_rows "$inst")"
	assert_eq "LaminDB's migration" "0189_v2_6" \
		"$(sql "$inst" "select max(name) from django_migrations where app = 'lamindb' and name not like '%squashed%'")"
	assert_eq "the storage row" "$root|local" \
		"$(sql "$inst" "select s.root, s.type from lamindb_storage s join lamfs_storage l on l.storage_id = s.id")"
	# LaminDB's marker, written as lamfs init writes it, names that row
	assert_eq "the marker's storage uid" "$(head -n 1 "$root/.lamindb/storage_uid.txt")" \
		"$(sql "$inst" "select s.uid from lamindb_storage s join lamfs_storage l on l.storage_id = s.id")"
	assert_eq "the marker's instance uid" \
		"$(sed -n 's/^instance_uid=//p' "$root/.lamindb/storage_uid.txt")" \
		"$(sql "$inst" "select s.instance_uid from lamindb_storage s join lamfs_storage l on l.storage_id = s.id")"
	assert_eq "artifacts refer to it" "1" \
		"$(sql "$inst" "select count(distinct storage_id) from artifact where storage_id = (select storage_id from lamfs_storage)")"
	assert_eq "lamin init's rows: branches" "-1 0 1" \
		"$(sql "$inst" 'select id from lamindb_branch order by id' | tr '\n' ' ' | sed 's/ $//')"
	assert_eq "lamin init's rows: anonymous user" "1" \
		"$(sql "$inst" "select count(*) from lamindb_user where uid = '00000000'")"
	assert_eq "lamin init's rows: space 1" "1" "$(sql "$inst" 'select count(*) from lamindb_space where id = 1')"

	mount_fs "$inst" "$mnt"
	assert_eq "a.txt" "three" "$(cat "$mnt/a.txt")"
	assert_eq "dir/b.csv" "$(printf 'x,y\n3,4')" "$(cat "$mnt/dir/b.csv")"
	cmp -s <(c_bin) "$mnt/dir/sub/c.bin" || fail "dir/sub/c.bin differs"
	assert_eq "same.txt" "A" "$(cat "$mnt/same.txt")"
	[[ -d "$mnt/empty" && -z "$(ls -A "$mnt/empty")" ]] || fail "the empty folder is gone"
	assert_eq "top level" "a.txt dir empty same.txt" "$(ls "$mnt" | tr '\n' ' ' | sed 's/ $//')"
	assert_absent "flagged record hidden" "$mnt/flagged.txt"
	# every version, with its uid, and its bytes
	for key in a.txt dir/b.csv dir/sub/c.bin same.txt; do
		n=0
		while read -r uid; do
			"$LAMFS_BIN" versions "$inst" "$key" | grep -q "^$uid " ||
				fail "lamfs versions $key lacks $uid"
			"$LAMFS_BIN" cat "$inst" "$uid" | cmp -s - "$root/.lamindb/$uid$(sql "$inst" \
				"select suffix from artifact where uid = '$uid'")" ||
				fail "lamfs cat $uid: not the object's bytes"
			n=$((n + 1))
		done < <(sql "$inst" "select uid from artifact where key = $(sqlstr "$key") order by id")
		assert_eq "versions of $key" "$n" "$("$LAMFS_BIN" versions "$inst" "$key" | wc -l)"
	done
	assert_eq "a.txt's first version" "one" \
		"$("$LAMFS_BIN" cat "$inst" "$(sql "$inst" "select uid from artifact where key = 'a.txt' order by id limit 1")")"
	printf 'four\n' >"$mnt/a.txt"
	assert_eq "a new save" "four" "$(cat "$mnt/a.txt")"
	assert_eq "a.txt versions after a new save" "4" "$("$LAMFS_BIN" versions "$inst" a.txt | wc -l)"
	umount_fs "$mnt"

	out=$("$LAMFS_BIN" upgrade "$inst" 2>&1) || fail "second lamfs upgrade: $out"
	assert_match "second upgrade" "is current .*nothing to do" "$out"
	out=$("$LAMFS_BIN" upgrade "$inst" --json)
	assert_match "--json" '"upgraded":false' "$out"
}

log "SQLite"
tar -C "$WORK" -xzf "$FIX/schema2-sqlite.tar.gz"
sq=$WORK/schema2-sqlite
cp "$sq/lamfs.db" "$WORK/sqlite-before.db"
upgrade_check "$sq" "$sq/storage"
[[ -f "$sq/lamfs.db.before-upgrade" ]] || fail "no copy from before the upgrade"
assert_eq "the copy is the old store" "2|0" "$(sqlite3 "$sq/lamfs.db.before-upgrade" \
	"select (select version from lamfs_schema), (select count(*) from sqlite_master where name = 'django_migrations')")"

log "PostgreSQL"
command -v psql >/dev/null || skip "psql missing"
pg_server_start "${E2E_PG_PORT:-15480}"
psql "$E2E_PG_URL" -X -q -v ON_ERROR_STOP=1 -f "$FIX/schema2-pg.sql" >/dev/null
tar -C "$WORK" -xzf "$FIX/schema2-pg.tar.gz"
pg=$WORK/schema2-pg
sed -i "s|^url = postgresql://.*|url = $E2E_PG_URL|" "$pg/lamfs.conf"
upgrade_check "$pg" "$pg/storage"
assert_absent "no copy on PostgreSQL" "$pg/lamfs.db.before-upgrade"
e2e_pass
