#!/usr/bin/env python3
"""test_stat.py — stat(2), lstat(2), fstat(2), statvfs(3): type, size, mode,
nlink, owner, mtime, blocks, and the errnos."""
import os
import stat

from posix_lib import (GROUP_A, USER_A, case, check, eq, expect_errno, expect_ok, expect_user,
                       main, write_file)


@case("stat")
def a_files_fields(d):
    p = f"{d}/f"
    write_file(p, b"x" * 1000, 0o640)
    os.chmod(p, 0o640)
    os.chown(p, USER_A, GROUP_A)
    os.utime(p, ns=(1, 1_700_000_000_123_456_789))
    st = expect_ok(os.stat, p)
    check(stat.S_ISREG(st.st_mode), "not S_ISREG")
    eq("st_size", 1000, st.st_size)
    eq("permission bits", 0o640, stat.S_IMODE(st.st_mode))
    eq("st_nlink", 1, st.st_nlink)
    eq("st_uid/st_gid", (USER_A, GROUP_A), (st.st_uid, st.st_gid))
    eq("st_mtime_ns", 1_700_000_000_123_456_789, st.st_mtime_ns)
    check(st.st_blocks * 512 >= 1000, f"st_blocks {st.st_blocks} too small for 1000 bytes")
    check(st.st_blksize > 0, "st_blksize 0")


@case("stat")
def a_folders_fields(d):
    os.mkdir(f"{d}/x", 0o751)
    os.chmod(f"{d}/x", 0o751)
    st = expect_ok(os.stat, f"{d}/x")
    check(stat.S_ISDIR(st.st_mode), "not S_ISDIR")
    eq("permission bits", 0o751, stat.S_IMODE(st.st_mode))
    check(st.st_nlink >= 2, f"st_nlink {st.st_nlink}")
    eq("owner", (os.geteuid(), os.getegid()), (st.st_uid, st.st_gid))


@case("stat")
def an_empty_file(d):
    p = f"{d}/e"
    write_file(p, b"")
    st = os.stat(p)
    eq("st_size", 0, st.st_size)
    eq("st_blocks", 0, st.st_blocks)


@case("stat")
def the_size_follows_each_saved_version(d):
    p = f"{d}/f"
    for n in (5, 50000, 3, 1 << 20, 1):
        write_file(p, b"z" * n)
        eq(f"st_size after saving {n} bytes", n, os.stat(p).st_size)


@case("stat")
def stat_of_a_missing_name_is_enoent(d):
    expect_errno("ENOENT", os.stat, f"{d}/missing")
    expect_errno("ENOENT", os.stat, f"{d}/missing/deeper")


@case("stat")
def stat_through_a_file_is_enotdir(d):
    write_file(f"{d}/f", b"x")
    expect_errno("ENOTDIR", os.stat, f"{d}/f/x")


@case("stat")
def stat_of_a_name_over_255_bytes_is_enametoolong(d):
    expect_errno("ENAMETOOLONG", os.stat, f"{d}/{'n' * 256}")


@case("stat")
def stat_in_a_folder_without_search_permission_is_eacces(d):
    os.mkdir(f"{d}/nox", 0o700)
    write_file(f"{d}/nox/f", b"x")
    expect_user("EACCES", USER_A, GROUP_A, os.stat, f"{d}/nox/f")


@case("lstat")
def lstat_is_stat_without_symlinks(d):
    p = f"{d}/f"
    write_file(p, b"abc")
    a, b = os.stat(p), os.lstat(p)
    eq("lstat = stat", (a.st_mode, a.st_size, a.st_mtime_ns, a.st_uid),
       (b.st_mode, b.st_size, b.st_mtime_ns, b.st_uid))


@case("fstat")
def fstat_of_a_reader(d):
    p = f"{d}/f"
    write_file(p, b"12345")
    fd = os.open(p, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        eq("st_size", 5, st.st_size)
        check(stat.S_ISREG(st.st_mode), "not S_ISREG")
    finally:
        os.close(fd)


@case("fstat")
def fstat_of_a_folder(d):
    os.mkdir(f"{d}/x")
    fd = os.open(f"{d}/x", os.O_RDONLY | os.O_DIRECTORY)
    try:
        check(stat.S_ISDIR(os.fstat(fd).st_mode), "not S_ISDIR")
    finally:
        os.close(fd)


@case("statvfs")
def statvfs_fields(d):
    sv = expect_ok(os.statvfs, d)
    eq("f_namemax", 255, sv.f_namemax)
    check(sv.f_bsize > 0 and sv.f_frsize > 0, "block size 0")
    check(sv.f_bavail <= sv.f_blocks, "more available than total")
    check(sv.f_blocks > 0, "f_blocks 0")


if __name__ == "__main__":
    main("stat")
