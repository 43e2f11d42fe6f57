#!/usr/bin/env bash
# t_backup.sh — `lamfs backup` while a mount keeps saving, restored with
# `lamfs init --from-backup`, on SQLite (this test) and on a real PostgreSQL
# server (t_backup_pg.sh runs this script with BACKUP_STORE=pg):
#  - 200 files are copied into a mount one by one while the backup is taken;
#  - the restored instance (same storage root) has every file whose cp had
#    returned before the backup started, byte-exact, and none whose cp began
#    after it ended;
#  - lamfs-repair lists the objects saved after the backup with their keys
#    (never removing them), a save at a key whose next version was saved after
#    the backup fails and clobbers nothing, and lamfs-repair --register
#    registers them again: then all 200 files read back byte-exact;
#  - a backup never overwrites a file; a file that is no backup is refused by
#    init --from-backup, which then leaves nothing.
# timeout: 600
. "$(dirname "$0")/lib.sh"
e2e_begin

STORE=${BACKUP_STORE:-sqlite}
N=200
L() { "$LAMFS_BIN" "$@"; }
R() { "$(dirname "$LAMFS_BIN")/lamfs-repair" "$@"; }
jq_py() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

if [[ $STORE == pg ]]; then
	command -v psql >/dev/null || skip "psql missing"
	command -v pg_dump >/dev/null || skip "pg_dump missing"
	pg_server_start "${E2E_PG_PORT:-15480}"
	inst=$(instance_new data --db "$E2E_PG_URL")
else
	inst=$(instance_new data)
fi
root=$(storage_of "$inst")
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"

mkdir -p "$WORK/src"
for ((i = 1; i <= N; i++)); do
	head -c $((4096 + i * 37)) /dev/urandom >"$WORK/src/f$i"
done
printf 'version one\n' >"$WORK/k1"
printf 'version two, saved after the backup\n' >"$WORK/k2"
cp "$WORK/k1" "$mnt/k.txt"

log "copy $N files into the mount while taking the backup"
: >"$WORK/done.log"
(
	mkdir -p "$mnt/w"
	for ((i = 1; i <= N; i++)); do
		cp "$WORK/src/f$i" "$mnt/w/f$i"
		echo "$i" >>"$WORK/done.log"
	done
) &
writer=$!
for ((t = 0; t < 600; t++)); do
	(($(wc -l <"$WORK/done.log") >= 50)) && break
	sleep 0.05
done
before=$(wc -l <"$WORK/done.log")
backup=$WORK/meta.backup
out=$(L backup "$inst" "$backup") || fail "lamfs backup: $out"
after=$(wc -l <"$WORK/done.log")
log "backup taken after $before saves, done by the time $after had returned: $out"
wait "$writer" || fail "the writer failed"
((after < N)) || fail "all $N saves finished before the backup did: the test saw no concurrency"
cp "$WORK/k2" "$mnt/k.txt"           # the next version of k.txt, after the backup
umount_fs "$mnt"

run_rc() { RC=0; OUT=$("$@" 2>&1) || RC=$?; }
run_rc L backup "$inst" "$backup"
assert_eq "backup over an existing file: exit" 1 "$RC"
assert_match "backup over an existing file: message" "exists; a backup never overwrites a file" "$OUT"

if [[ $STORE == pg ]]; then
	log "the database is lost: drop everything, restore into it"
	psql_q "DROP SCHEMA public CASCADE; CREATE SCHEMA public" >/dev/null
	run_rc L init "$WORK/restored" --from-backup "$backup" --db "$E2E_PG_URL" --storage "$root"
else
	log "a restore never replaces a live database"
	db=$root/.lamindb/lamin.db
	sum_before=$(sha256sum "$db")
	run_rc L init "$WORK/refused" --from-backup "$backup" --storage "$root"
	assert_eq "restore over the live database: exit" 1 "$RC"
	assert_match "restore over the live database: message" "$db exists: restoring" "$OUT"
	assert_eq "the live database is untouched" "$sum_before" "$(sha256sum "$db")"
	assert_absent "the refused instance folder is taken back" "$WORK/refused"
	log "the database is lost: move it away, restore where LaminDB looks for it"
	mkdir "$WORK/lost"
	mv "$db"* "$WORK/lost/"
	run_rc L init "$WORK/restored" --from-backup "$backup" --storage "$root"
fi
assert_eq "init --from-backup: exit ($OUT)" 0 "$RC"
rest=$WORK/restored
grep -q "^from = $backup\$" "$rest/lamfs.conf" || fail "the config does not name the backup"

log "every file saved before the backup reads back byte-exact"
for ((i = 1; i <= before; i++)); do
	L cat "$rest" "w/f$i" >"$WORK/back" || fail "w/f$i (saved before the backup) is not in the restored instance"
	assert_same_file "w/f$i from the restored instance" "$WORK/src/f$i" "$WORK/back"
done
L cat "$rest" k.txt >"$WORK/back"
assert_same_file "k.txt is the version of the backup" "$WORK/k1" "$WORK/back"
listed=$(L ls "$rest" w --json | jq_py '" ".join(r["key"] for r in j)')
for ((i = after + 1; i <= N; i++)); do
	[[ " $listed " == *" w/f$i "* ]] && fail "w/f$i, saved after the backup ended, is in the restored metadata"
done

log "lamfs-repair lists the objects saved after the backup, with their keys"
run_rc R "$rest" --json
assert_eq "repair (no --register): exit (problems left)" 4 "$RC"
ab=$(jq_py '" ".join(sorted(a["key"] for a in j["actions"] if a["kind"] == "after-backup" and a["action"] == "kept"))' <<<"$OUT")
for ((i = after + 1; i <= N; i++)); do
	[[ " $ab " == *" w/f$i "* ]] || fail "w/f$i (saved after the backup) is not listed by lamfs-repair: $ab"
done
[[ " $ab " == *" k.txt "* ]] || fail "k.txt's version after the backup is not listed: $ab"
assert_eq "nothing removed" 0 "$(jq_py 'j["summary"]["orphans"]' <<<"$OUT")"

log "a save at a key whose next version was saved after the backup clobbers nothing"
printf 'a third text\n' >"$WORK/k3"
run_rc L save "$rest" "$WORK/k3" --key k.txt
assert_eq "save over a post-backup version: exit" 1 "$RC"
assert_match "save over a post-backup version: message" "storage already holds other bytes under this version's name" "$OUT"
k2uid=$({ R "$rest" --json || true; } | jq_py '[a["uid"] for a in j["actions"] if a["key"] == "k.txt"][0]')
obj=$(object_file "$root" "$k2uid.txt")
assert_same_file "the post-backup object of k.txt is intact" "$WORK/k2" "$obj"

log "lamfs-repair --register registers them again"
run_rc R "$rest" --register --json
assert_eq "repair --register: exit ($OUT)" 1 "$RC"
assert_eq "registered all after-backup objects" "$((N - before > 0 ? 1 : 0))" \
	"$(jq_py '1 if j["summary"]["registered"] >= 1 and j["summary"]["failed"] == 0 else 0' <<<"$OUT")"
for ((i = 1; i <= N; i++)); do
	L cat "$rest" "w/f$i" >"$WORK/back" || fail "w/f$i missing after --register"
	assert_same_file "w/f$i after --register" "$WORK/src/f$i" "$WORK/back"
done
L cat "$rest" k.txt >"$WORK/back"
assert_same_file "k.txt is the version saved after the backup" "$WORK/k2" "$WORK/back"
assert_eq "k.txt kept its uid" "$k2uid" "$(L info "$rest" k.txt --json | jq_py 'j["uid"]')"
run_rc R "$rest"
assert_eq "repair after --register: clean" 0 "$RC"
mount_fs "$rest" "$WORK/rmnt"
assert_same_file "read through a mount of the restored instance" "$WORK/src/f$N" "$WORK/rmnt/w/f$N"
umount_fs "$WORK/rmnt"

log "a file that is no backup is refused, and nothing is left"
printf 'not a database\n' >"$WORK/junk"
if [[ $STORE == pg ]]; then
	psql_q "DROP SCHEMA public CASCADE; CREATE SCHEMA public" >/dev/null
	run_rc L init "$WORK/bad" --from-backup "$WORK/junk" --db "$E2E_PG_URL" --storage "$root"
	assert_match "junk backup: message" "is not a backup of a PostgreSQL store" "$OUT"
else
	run_rc L init "$WORK/bad" --from-backup "$WORK/junk" --storage "$WORK/junkstore"
	assert_match "junk backup: message" "is not a SQLite database" "$OUT"
	assert_absent "junk backup: the storage root it made is taken back" "$WORK/junkstore"
fi
assert_eq "junk backup: exit" 1 "$RC"
assert_absent "junk backup: no instance left" "$WORK/bad"
e2e_pass
