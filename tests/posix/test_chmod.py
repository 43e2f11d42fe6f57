#!/usr/bin/env python3
"""test_chmod.py — chmod(2) and fchmod(2): the permission bits stick, only
the owner (or root) may change them, and the kernel's rule for S_ISGID."""
import os
import stat

from posix_lib import (GROUP_A, GROUP_B, USER_A, USER_B, case, eq, expect_errno, expect_ok,
                       expect_user, main, read_file, write_file)


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


@case("chmod")
def chmod_of_a_file(d):
    p = f"{d}/f"
    write_file(p, b"x")
    for m in (0o600, 0o755, 0o4711, 0o2755, 0o1644, 0o000, 0o7777):
        expect_ok(os.chmod, p, m)
        eq(f"mode after chmod {oct(m)}", m, mode(p))
    eq("content", b"x", read_file(p))


@case("chmod")
def chmod_of_a_folder(d):
    os.mkdir(f"{d}/x")
    for m in (0o700, 0o1777, 0o2775, 0o755):
        expect_ok(os.chmod, f"{d}/x", m)
        eq(f"mode after chmod {oct(m)}", m, mode(f"{d}/x"))


@case("chmod")
def chmod_keeps_the_file_type_and_ignores_type_bits(d):
    p = f"{d}/f"
    write_file(p, b"x")
    expect_ok(os.chmod, p, stat.S_IFDIR | 0o640)
    st = os.stat(p)
    eq("still a regular file", True, stat.S_ISREG(st.st_mode))
    eq("mode", 0o640, stat.S_IMODE(st.st_mode))


@case("chmod")
def chmod_of_a_missing_name_is_enoent(d):
    expect_errno("ENOENT", os.chmod, f"{d}/missing", 0o644)


@case("chmod")
def chmod_by_another_user_is_eperm(d):
    p = f"{d}/f"
    write_file(p, b"x", 0o666)
    os.chmod(p, 0o666)
    expect_user("EPERM", USER_A, GROUP_A, os.chmod, p, 0o777)
    eq("mode", 0o666, mode(p))


@case("chmod")
def chmod_by_the_owner_works(d):
    p = f"{d}/f"
    expect_user("OK", USER_A, GROUP_A, write_file, p, b"x")
    expect_user("OK", USER_A, GROUP_A, os.chmod, p, 0o600)
    eq("mode", 0o600, mode(p))
    expect_user("EACCES", USER_B, GROUP_B, read_file, p)


@case("chmod")
def setgid_is_dropped_when_the_owner_is_not_in_the_group(d):
    # Linux: chmod by a non-privileged owner who is not a member of the
    # file's group clears S_ISGID silently.
    p = f"{d}/f"
    expect_user("OK", USER_A, GROUP_A, write_file, p, b"x")
    os.chown(p, USER_A, GROUP_B)
    expect_user("OK", USER_A, GROUP_A, os.chmod, p, 0o2755)
    eq("mode", 0o755, mode(p))


@case("chmod")
def a_mode_without_read_permission_locks_others_out(d):
    p = f"{d}/f"
    expect_user("OK", USER_A, GROUP_A, write_file, p, b"x")
    expect_user("OK", USER_A, GROUP_A, os.chmod, p, 0o000)
    expect_user("EACCES", USER_A, GROUP_A, read_file, p)
    eq("root still reads it", b"x", read_file(p))


@case("fchmod")
def fchmod_on_a_reader(d):
    p = f"{d}/f"
    write_file(p, b"x")
    fd = os.open(p, os.O_RDONLY)
    try:
        expect_ok(os.fchmod, fd, 0o640)
        eq("fstat mode", 0o640, stat.S_IMODE(os.fstat(fd).st_mode))
    finally:
        os.close(fd)
    eq("mode", 0o640, mode(p))


@case("fchmod")
def fchmod_on_a_writer_of_a_new_file_is_kept_after_close(d):
    p = f"{d}/f"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"abc")
        expect_ok(os.fchmod, fd, 0o600)
    finally:
        os.close(fd)
    eq("mode", 0o600, mode(p))
    eq("content", b"abc", read_file(p))


@case("fchmod")
def fchmod_on_a_writer_of_an_existing_file_is_kept_after_close(d):
    p = f"{d}/f"
    write_file(p, b"old")
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b"new")
        expect_ok(os.fchmod, fd, 0o640)
    finally:
        os.close(fd)
    eq("mode", 0o640, mode(p))
    eq("content", b"new", read_file(p))


if __name__ == "__main__":
    main("chmod")
