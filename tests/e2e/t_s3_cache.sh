#!/usr/bin/env bash
# t_s3_cache.sh — the on-disk read cache ([cache] in lamfs.conf) with S3
# storage, on the project's S3 test server (Swift + s3api), started here:
#  - a bad [cache] setting refuses the mount with a message naming it;
#  - a file read twice: byte-exact both times, and the second read sends no
#    request at all to the server (its proxy log);
#  - the server stopped: the file read before is served byte-exact from the
#    cache; a file never read fails with EIO; the server back, it reads;
#  - reading more than the limit keeps the cache directory under it;
#  - a damaged chunk (a flipped byte, a truncated file) is never served: the
#    daemon logs it, reads from storage, and stores a good chunk again;
#  - a cache directory that cannot be used (a regular file) costs one log
#    line, never a failed read.
# timeout: 600
. "$(dirname "$0")/lib.sh"
e2e_begin
command -v curl >/dev/null || skip "curl missing"

s3_server_start "${E2E_S3_PORT:-18700}"
bucket=$E2E_S3_BUCKET
mnt=$WORK/mnt
proxy_log=$S3TEST_DIR/log/proxy.log
export LAMFS_S3_ATTEMPTS=2 LAMFS_S3_RETRY_BASE_MS=50
export LAMFS_S3_CONNECT_TIMEOUT=2 LAMFS_S3_STALL_TIMEOUT=3

# cache_conf INST SETTINGS...: append a [cache] section with these lines.
cache_conf() {
	local inst=$1
	shift
	printf '[cache]\n' >>"$inst/lamfs.conf"
	printf '%s\n' "$@" >>"$inst/lamfs.conf"
}

# read_errno PATH: "OK" after reading PATH to its end, else the errno name.
read_errno() {
	python3 - "$1" <<'EOF'
import errno, sys
try:
    with open(sys.argv[1], 'rb') as f:
        while f.read(1 << 20):
            pass
    print('OK')
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
EOF
}

# requests PREFIX: requests for objects under PREFIX in the proxy's log so far.
requests() {
	grep -c -E "(GET|HEAD) /$bucket/$1/" "$proxy_log" || true
}

# kib DIR: KiB the files in DIR use on disk.
kib() {
	du -sk -- "$1" | cut -f1
}

log "a bad [cache] setting refuses the mount"
bad=$(instance_new bad --storage "s3://$bucket/bad")
cache_conf "$bad" "size = lots"
mkdir -p "$mnt"
assert_fails "mount with [cache] size = lots" "$LAMFS_BIN" mount "$bad" "$mnt"
assert_match "message for a bad size" "size 'lots' is not valid" "$E2E_LAST_ERR"
bad2=$(instance_new bad2 --storage "s3://$bucket/bad2")
cache_conf "$bad2" "dir = /tmp/somewhere"
assert_fails "mount with a [cache] dir and no size" "$LAMFS_BIN" mount "$bad2" "$mnt"
assert_match "message for a dir without a size" "not \[cache\] size" "$E2E_LAST_ERR"

inst=$(instance_new inst --storage "s3://$bucket/c")
cache_conf "$inst" "size = 16M"
cache=$inst/cache
random_file "$WORK/a.bin" $((5 * MiB + 12345))
random_file "$WORK/b.bin" $((2 * MiB + 1))
random_file "$WORK/small.bin" 999
mount_fs "$inst" "$mnt"
cp "$WORK/a.bin" "$mnt/a.bin"
cp "$WORK/b.bin" "$mnt/b.bin"
cp "$WORK/small.bin" "$mnt/small.bin"

log "read twice: the second read is the cache's alone"
assert_same_file "a.bin, first read" "$WORK/a.bin" "$mnt/a.bin"
assert_same_file "small.bin, first read" "$WORK/small.bin" "$mnt/small.bin"
n0=$(requests c)
assert_same_file "a.bin, second read" "$WORK/a.bin" "$mnt/a.bin"
assert_same_file "small.bin, second read" "$WORK/small.bin" "$mnt/small.bin"
assert_eq "requests to S3 for the second reads" "$n0" "$(requests c)"
assert_eq "chunk files of a.bin and small.bin" 7 "$(find "$cache" -type f ! -name '.tmp.*' | wc -l)"

log "the server stopped: cached files read, others fail with EIO"
s3_server_stop
assert_same_file "a.bin with the server down" "$WORK/a.bin" "$mnt/a.bin"
assert_same_file "small.bin with the server down" "$WORK/small.bin" "$mnt/small.bin"
assert_eq "b.bin (never read) with the server down" EIO "$(read_errno "$mnt/b.bin")"
s3_server_restart
assert_same_file "b.bin with the server back" "$WORK/b.bin" "$mnt/b.bin"

log "damaged chunks are detected and fetched again"
chunk=$(find "$cache" -type f -size +1000k | head -n 1)
[[ -n "$chunk" ]] || fail "no full chunk file in $cache"
printf '\xff\x00' | dd of="$chunk" bs=1 seek=300000 conv=notrunc status=none
truncate -s 123456 "$(find "$cache" -type f -size +1000k | grep -vxF "$chunk" | head -n 1)"
damaged0=$(grep -c 'is damaged' "$inst/lamfs.log" || true)
assert_same_file "a.bin after damage" "$WORK/a.bin" "$mnt/a.bin"
assert_same_file "b.bin after damage" "$WORK/b.bin" "$mnt/b.bin"
damaged=$(($(grep -c 'is damaged' "$inst/lamfs.log" || true) - damaged0))
assert_eq "damaged chunks the daemon logged" 2 "$damaged"
log "the good chunks were stored again: served with the server down"
s3_server_stop
assert_same_file "a.bin from the repaired cache" "$WORK/a.bin" "$mnt/a.bin"
assert_same_file "b.bin from the repaired cache" "$WORK/b.bin" "$mnt/b.bin"
s3_server_restart

log "reading more than the limit keeps the cache under it"
for i in 1 2 3; do
	random_file "$WORK/big$i.bin" $((9 * MiB))
	cp "$WORK/big$i.bin" "$mnt/big$i.bin"
done
for i in 1 2 3; do
	assert_same_file "big$i.bin" "$WORK/big$i.bin" "$mnt/big$i.bin"
	used=$(kib "$cache")
	((used <= 16 * 1024)) || fail "cache uses ${used} KiB after big$i.bin, the limit is 16 MiB"
done
assert_same_file "a.bin after eviction" "$WORK/a.bin" "$mnt/a.bin"
umount_fs "$mnt"
assert_eq "temporaries left in the cache" "" "$(find "$cache" -name '.tmp.*')"

log "a cache directory that cannot be used: reads work, one log line"
inst2=$(instance_new inst2 --storage "s3://$bucket/c2")
: >"$WORK/not-a-dir"
cache_conf "$inst2" "size = 1G" "dir = $WORK/not-a-dir"
mount_fs "$inst2" "$mnt"
cp "$WORK/b.bin" "$mnt/b.bin"
assert_same_file "b.bin without a usable cache" "$WORK/b.bin" "$mnt/b.bin"
assert_same_file "b.bin again" "$WORK/b.bin" "$mnt/b.bin"
assert_eq "log lines about the cache" 1 "$(grep -c "read cache $WORK/not-a-dir" "$inst2/lamfs.log")"
umount_fs "$mnt"

e2e_pass
