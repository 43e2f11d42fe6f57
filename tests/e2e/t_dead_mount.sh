#!/usr/bin/env bash
# t_dead_mount.sh — a mount whose daemon died ("Transport endpoint is not
# connected"): `lamfs status` calls it dead, not mounted, and names the
# command that clears it (text and --json); `lamfs mount` and mount.lamfs
# over the dead mount point of the same instance clear it and mount; a dead
# mount of another instance, and a live mount, are left alone with a message.
# timeout: 180
. "$(dirname "$0")/lib.sh"
e2e_begin

HELPER=$(dirname "$LAMFS_BIN")/mount.lamfs
jq_py() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
# kill_daemon MNT: SIGKILL the daemon serving MNT; the mount stays, dead.
kill_daemon() {
	local pid
	pid=$(_e2e_recorded_pid "$1")
	[[ -n "$pid" ]] || fail "no daemon recorded for $1"
	kill -KILL "$pid"
	wait_pid_gone "$pid" 30 || fail "daemon $pid survived SIGKILL"
	is_mounted "$1" || fail "$1 is no longer in the mount table after the kill"
	assert_eq "the dead mount gives ENOTCONN" ENOTCONN "$(errno_of listdir "$1")"
}

inst=$(instance_new data)
mnt=$WORK/mnt
random_file "$WORK/f.bin" $((3 * MiB + 5))
mount_fs "$inst" "$mnt"
cp "$WORK/f.bin" "$mnt/f.bin"
run "$LAMFS_BIN" status "$inst" --json
assert_eq "live: state" "True live" "$(jq_py 'str(j["mounted"]) + " " + j["mounts"][0]["state"]' <<<"$OUT")"

log "daemon killed: status says dead, not mounted, and how to clear it"
kill_daemon "$mnt"
run "$LAMFS_BIN" status "$inst"
assert_eq "status (dead): exit" 0 "$RC"
assert_match "status (dead): not mounted" "mounted: +no" "$OUT"
assert_match "status (dead): the dead mount and its clearing command" \
	"  dead: $mnt \(its daemon is gone: Transport endpoint is not connected; clear it with: fusermount3 -u -z $mnt" "$OUT"
run "$LAMFS_BIN" status "$inst" --json
assert_eq "status --json (dead)" "False|$mnt|dead|fusermount3 -u -z $mnt" \
	"$(jq_py '"|".join([str(j["mounted"]), j["mounts"][0]["mountpoint"], j["mounts"][0]["state"], j["mounts"][0]["clear"]])' <<<"$OUT")"

log "lamfs mount over the dead mount point clears it and mounts"
run "$LAMFS_BIN" mount "$inst" "$mnt"
assert_eq "mount over dead: exit (stderr: $ERR)" 0 "$RC"
assert_eq "mount over dead: says so" "lamfs: $mnt: cleared the dead mount of this instance (its daemon was gone)" "$ERR"
assert_eq "one mount at $mnt" 1 "$(awk -v t="$mnt" '$5 == t' /proc/self/mountinfo | wc -l)"
record_daemon "$inst" "$mnt"
assert_same_file "the file saved before the kill reads back" "$WORK/f.bin" "$mnt/f.bin"
run "$LAMFS_BIN" status "$inst" --json
assert_eq "status after remount" "True live" "$(jq_py 'str(j["mounted"]) + " " + j["mounts"][0]["state"]' <<<"$OUT")"

log "a live mount is left alone"
run "$LAMFS_BIN" mount "$inst" "$mnt"
assert_eq "mount over live: exit" 1 "$RC"
assert_eq "mount over live: message" "lamfs: $mnt is already a lamfs mount (of $inst)" "$ERR"

log "mount.lamfs (fstab) over the dead mount point does the same"
kill_daemon "$mnt"
run "$HELPER" "$inst" "$mnt" -o defaults
assert_eq "mount.lamfs over dead: exit (stderr: $ERR)" 0 "$RC"
record_daemon "$inst" "$mnt"
assert_same_file "read back after mount.lamfs" "$WORK/f.bin" "$mnt/f.bin"

log "a dead mount of another instance is not cleared"
kill_daemon "$mnt"
other=$(instance_new other)
run "$LAMFS_BIN" mount "$other" "$mnt"
assert_eq "mount other over dead: exit" 1 "$RC"
assert_eq "mount other over dead: message" \
	"lamfs: $mnt is a dead lamfs mount of another instance ($inst); clear it first: fusermount3 -u -z $mnt" "$ERR"
is_mounted "$mnt" || fail "the other instance's dead mount was cleared"
# The command status gave clears it.
fusermount3 -u -z "$mnt"
is_mounted "$mnt" && fail "fusermount3 -u -z did not clear $mnt"
rm -f -- "$(_e2e_pidfile "$mnt")"
run "$LAMFS_BIN" status "$inst" --json
assert_eq "status after clearing: no mounts" "False 0" "$(jq_py 'str(j["mounted"]) + " " + str(len(j["mounts"]))' <<<"$OUT")"
check_store "$inst"
e2e_pass
