#!/usr/bin/env bash
# t_hostile_config.sh — an instance whose lamfs.conf is garbage, incomplete,
# from a newer lamfs or pointing nowhere: `lamfs mount` refuses with a
# message that names the problem, mounts nothing, and touches nothing (the
# database, the objects and the staging folder are byte for byte as before).
# Last, the settings `lamfs init` writes must read back as written: a long
# storage path, one with " ;" or trailing spaces, a config version that
# overflows an int.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin

inst=$(instance_new inst)
root=$(storage_of "$inst")
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"
echo "precious" >"$mnt/a.txt"
mkdir "$mnt/d"
head -c 100000 /dev/urandom >"$mnt/d/b.bin"
umount_fs "$mnt"
conf=$inst/lamfs.conf
cp "$conf" "$WORK/conf.good"
db=$(db_of "$inst")

# Everything of the instance but its config and log: names, sizes, modes, mtimes, sha256.
# SQLite's side files are left out: a read-only open of a WAL database (the
# CLI's check before it forks the daemon) makes lamin.db-shm and an empty
# lamin.db-wal and cannot remove them; a non-empty -wal would be a write.
# The folder holding them (storage/.lamindb) is listed without its mtime,
# which their creation moves.
snapshot() {
	(cd "$inst" && find . -mindepth 1 \( -path ./lamfs.conf -o -path ./lamfs.log -o -name lamin.db-shm \
		-o -name lamin.db-wal -size 0 \) -prune -o -path ./storage/.lamindb -printf '%P %m\n' \
		-o -printf '%P %s %m %T@\n' | LC_ALL=C sort)
	sha256_of "$db"
	objects_snapshot "$root"
}
before=$(snapshot)

# refused WHAT REGEX: mount must fail with a message matching REGEX, mount
# nothing and change nothing.
refused() {
	local what=$1 re=$2 out rc=0
	out=$(timeout 60 "$LAMFS_BIN" mount "$inst" "$mnt" 2>&1 </dev/null) || rc=$?
	if is_mounted "$mnt"; then
		umount_fs "$mnt"
		fail "$what: mounted (exit $rc): $out"
	fi
	[[ $rc -ne 0 ]] || fail "$what: lamfs mount exited 0 without mounting: $out"
	assert_match "$what: message" "$re" "$out"
	assert_eq "$what: instance untouched" "$before" "$(snapshot)"
	log "$what: refused: $out"
}
setconf() { printf '%s' "$1" >"$conf"; }
good=$(cat "$WORK/conf.good")
without() { grep -v -- "$1" "$WORK/conf.good"; }

setconf $'\x89PNG\x01\x02\xff\xfe garbage garbage\n[[[\n'
refused "garbage" "line 1: not valid ini syntax"
setconf $'\x01\x02 = \xff\xfe\n'
refused "garbage with an equals sign" "line 1: unknown setting"
: >"$conf"
refused "empty config" "missing \[instance\] version, \[storage\] url or \[meta\] url"
setconf $'[instance]\nversion = 1\n'
refused "only [instance]" "missing"
setconf "$(awk '/^\[storage\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$WORK/conf.good")"
refused "no [storage] url" "missing"
setconf "$(awk '/^\[meta\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$WORK/conf.good")"
refused "no [meta] url" "missing"
setconf "$(without '^version')"
refused "no version" "missing"
setconf "${good/version = 1/version = 0}"
refused "version 0" "missing|version"
setconf "${good/version = 1/version = abc}"
refused "version abc" "missing|version"
setconf "${good/version = 1/version = 2}"
refused "config version 2" "newer lamfs \(config version 2\)"
setconf "$good"$'\n[storage]\ncolour = blue\n'
refused "unknown setting" "line [0-9]+: unknown setting \[storage\] colour"
setconf "$good"$'\n[bogus]\nx = 1\n'
refused "unknown section" "unknown setting \[bogus\] x"
setconf "$good"$'\n[s3]\nendpoint = '"$(head -c 10000 /dev/zero | tr '\0' e)"$'\n'
refused "a 10 kB line" "line [0-9]+: not valid ini syntax"
setconf "$(sed 's#^url = storage$#url = /nonexistent/lamfs/storage#' "$WORK/conf.good")"
refused "storage root missing" "storage root /nonexistent/lamfs/storage does not exist"
setconf "$(sed 's#^url = sqlite:.*#url = sqlite:/nonexistent/lamfs.db#' "$WORK/conf.good")"
refused "database missing" "sqlite:/nonexistent/lamfs.db: No such file or directory"
setconf "$(sed 's#^url = sqlite:.*#url = bogus://x#' "$WORK/conf.good")"
refused "unknown metadata url" "bogus://x: .*not supported"
setconf "$(sed 's#^url = storage$#url = ftp://example.org/x#' "$WORK/conf.good")"
refused "unknown storage url" "ftp://example.org/x.*not supported|storage"
{ printf '%s\n' "$good"; printf '[meta]\nurl = sqlite:/x\0y\n'; } >"$conf"
refused "NUL byte in the config" "."
rm "$conf"
refused "no lamfs.conf" "is not a lamfs instance"
mkdir "$conf"
refused "lamfs.conf is a folder" "lamfs.conf"
rmdir "$conf"

cp "$WORK/conf.good" "$conf"
mount_fs "$inst" "$mnt"
assert_eq "a.txt after all that" "precious" "$(cat "$mnt/a.txt")"
umount_fs "$mnt"
check_store "$inst"
# a mount writes (and at unmount removes) its lease in the store: what the
# refusals below must leave untouched is the instance as that mount left it
before=$(snapshot)

# The rest checks that settings read back as written; each check runs on its
# own so that one failure does not hide the next.
bad=()

log "a config version that overflows an int is not version 1"
(
	setconf "${good/version = 1/version = 4294967297}"
	refused "config version 4294967297" "newer lamfs|version"
) || bad+=("config version 4294967297 read as 1")
cp "$WORK/conf.good" "$conf"

log "what lamfs init writes reads back: storage paths with ' ;', trailing spaces, 200+ bytes"
long=$WORK/$(head -c 150 /dev/zero | tr '\0' l)/$(head -c 60 /dev/zero | tr '\0' s)
mkdir -p "$(dirname "$long")"
n=0
for storage in "$WORK/st ;comment" "$WORK/trailing " "$long"; do
	n=$((n + 1))
	(
		i2=$WORK/i2-$n
		out=$("$LAMFS_BIN" init "$i2" --storage "$storage" 2>&1) || {
			log "init refused $(printf %q "$storage") (acceptable): $out"
			exit 0
		}
		mkdir -p "$WORK/m2"
		rc=0
		out=$(timeout 60 "$LAMFS_BIN" mount "$i2" "$WORK/m2" 2>&1 </dev/null) || rc=$?
		[[ $rc -eq 0 ]] ||
			fail "init accepted storage $(printf %q "$storage") (${#storage} bytes) but mount refuses: $out"
		echo x >"$WORK/m2/probe"
		fusermount3 -u "$WORK/m2"
		assert_eq "objects in the storage root given to init" 1 \
			"$(objects "$storage" | wc -l)"
	) || bad+=("storage path $(printf %q "$storage") (${#storage} bytes) does not read back")
done
[[ ${#bad[@]} -eq 0 ]] || fail "settings that do not read back: $(printf '%s; ' "${bad[@]}")"
e2e_pass
