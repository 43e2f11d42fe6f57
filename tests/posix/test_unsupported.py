#!/usr/bin/env python3
"""test_unsupported.py — what lamfs deliberately does not support, with the
errno it gives: hard links (EPERM), symbolic links (EPERM), device files,
fifos and sockets (EPERM), a shared mapping of a file (ENODEV; lamfs opens
files with direct_io), extended attributes other than its own (ENOTSUP) —
and the nearby things that do work: mknod of a regular file, MAP_PRIVATE."""
import mmap
import os
import stat

from posix_lib import case, check, eq, expect_errno, expect_ok, main, read_file, write_file


@case("link", lamfs_only=True)
def a_hard_link_is_eperm(d):
    write_file(f"{d}/f", b"x")
    expect_errno("EPERM", os.link, f"{d}/f", f"{d}/hard")
    expect_errno("ENOENT", os.stat, f"{d}/hard")
    eq("st_nlink", 1, os.stat(f"{d}/f").st_nlink)


@case("link")
def a_hard_link_to_a_missing_file_is_enoent(d):
    expect_errno("ENOENT", os.link, f"{d}/missing", f"{d}/hard")


@case("symlink", lamfs_only=True)
def a_symbolic_link_is_eperm(d):
    write_file(f"{d}/f", b"x")
    expect_errno("EPERM", os.symlink, "f", f"{d}/sym")
    expect_errno("EPERM", os.symlink, "/etc/passwd", f"{d}/abs")
    expect_errno("ENOENT", os.lstat, f"{d}/sym")


@case("symlink")
def readlink_of_a_file_is_einval(d):
    write_file(f"{d}/f", b"x")
    expect_errno("EINVAL", os.readlink, f"{d}/f")


@case("mknod", lamfs_only=True)
def a_fifo_is_eperm(d):
    expect_errno("EPERM", os.mkfifo, f"{d}/fifo")
    expect_errno("ENOENT", os.lstat, f"{d}/fifo")


@case("mknod", lamfs_only=True)
def a_character_device_is_eperm(d):
    expect_errno("EPERM", os.mknod, f"{d}/null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))


@case("mknod", lamfs_only=True)
def a_block_device_is_eperm(d):
    expect_errno("EPERM", os.mknod, f"{d}/blk", 0o600 | stat.S_IFBLK, os.makedev(7, 0))


@case("mknod", lamfs_only=True)
def a_socket_node_is_eperm(d):
    expect_errno("EPERM", os.mknod, f"{d}/sock", 0o600 | stat.S_IFSOCK)


@case("mknod")
def a_regular_file_through_mknod_is_an_empty_file(d):
    expect_ok(os.mknod, f"{d}/reg", 0o640 | stat.S_IFREG)
    st = os.stat(f"{d}/reg")
    check(stat.S_ISREG(st.st_mode), "not a regular file")
    eq("size", 0, st.st_size)
    expect_errno("EEXIST", os.mknod, f"{d}/reg", 0o640 | stat.S_IFREG)


@case("mmap", lamfs_only=True)
def a_shared_read_only_mapping_is_enodev(d):
    write_file(f"{d}/f", b"hello")
    fd = os.open(f"{d}/f", os.O_RDONLY)
    try:
        expect_errno("ENODEV", mmap.mmap, fd, 0, mmap.MAP_SHARED, mmap.PROT_READ)
    finally:
        os.close(fd)


@case("mmap", lamfs_only=True)
def a_shared_writable_mapping_is_enodev(d):
    write_file(f"{d}/f", b"hello")
    fd = os.open(f"{d}/f", os.O_RDWR)
    try:
        expect_errno("ENODEV", mmap.mmap, fd, 0, mmap.MAP_SHARED,
                     mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)
    eq("content", b"hello", read_file(f"{d}/f"))


@case("mmap")
def a_private_mapping_reads_the_file(d):
    data = os.urandom(100000)
    write_file(f"{d}/f", data)
    fd = os.open(f"{d}/f", os.O_RDONLY)
    try:
        m = expect_ok(mmap.mmap, fd, 0, mmap.MAP_PRIVATE, mmap.PROT_READ)
        eq("mapped bytes", True, m[:] == data)
        m.close()
    finally:
        os.close(fd)


@case("mmap")
def writes_to_a_private_mapping_stay_private(d):
    write_file(f"{d}/f", b"0123456789")
    fd = os.open(f"{d}/f", os.O_RDONLY)
    try:
        m = mmap.mmap(fd, 0, mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE)
        m[0:3] = b"abc"
        eq("mapping", b"abc3456789", m[:])
        m.close()
    finally:
        os.close(fd)
    eq("file", b"0123456789", read_file(f"{d}/f"))


@case("xattr", lamfs_only=True)
def foreign_xattrs_are_enotsup_and_lamfs_ones_read_only(d):
    write_file(f"{d}/f", b"x")
    expect_errno("ENOTSUP", os.setxattr, f"{d}/f", "user.mine", b"v")
    expect_errno("EPERM", os.setxattr, f"{d}/f", "user.lamfs.uid", b"v")
    expect_errno("EPERM", os.removexattr, f"{d}/f", "user.lamfs.uid")
    uid = expect_ok(os.getxattr, f"{d}/f", "user.lamfs.uid")
    eq("uid length", 20, len(uid))


if __name__ == "__main__":
    main("unsupported")
