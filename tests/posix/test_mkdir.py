#!/usr/bin/env python3
"""test_mkdir.py — mkdir(2): mode and owner, and EEXIST, ENOENT, ENOTDIR,
ENAMETOOLONG, EACCES."""
import os
import stat

from posix_lib import (GROUP_A, GROUP_B, USER_A, USER_B, case, check, eq, expect_errno, expect_ok,
                       expect_user, main, write_file)


@case("mkdir")
def mkdir_makes_an_empty_folder_with_mode_minus_umask(d):
    old = os.umask(0o027)
    try:
        expect_ok(os.mkdir, f"{d}/x", 0o777)
    finally:
        os.umask(old)
    st = os.stat(f"{d}/x")
    check(stat.S_ISDIR(st.st_mode), "not a folder")
    eq("mode", 0o750, stat.S_IMODE(st.st_mode))
    eq("listing", [], os.listdir(f"{d}/x"))
    check(st.st_nlink >= 2, f"st_nlink {st.st_nlink} < 2")


@case("mkdir")
def mkdir_keeps_the_sticky_bit(d):
    expect_ok(os.mkdir, f"{d}/t", 0o1777)
    os.chmod(f"{d}/t", 0o1777)
    eq("mode", 0o1777, stat.S_IMODE(os.stat(f"{d}/t").st_mode))


@case("mkdir")
def mkdir_of_an_existing_folder_is_eexist(d):
    os.mkdir(f"{d}/x")
    expect_errno("EEXIST", os.mkdir, f"{d}/x")


@case("mkdir")
def mkdir_of_an_existing_file_is_eexist(d):
    write_file(f"{d}/f", b"x")
    expect_errno("EEXIST", os.mkdir, f"{d}/f")


@case("mkdir")
def mkdir_in_a_missing_folder_is_enoent(d):
    expect_errno("ENOENT", os.mkdir, f"{d}/no/x")


@case("mkdir")
def mkdir_under_a_file_is_enotdir(d):
    write_file(f"{d}/f", b"x")
    expect_errno("ENOTDIR", os.mkdir, f"{d}/f/x")


@case("mkdir")
def mkdir_of_a_name_over_255_bytes_is_enametoolong(d):
    expect_errno("ENAMETOOLONG", os.mkdir, f"{d}/{'n' * 256}")
    expect_ok(os.mkdir, f"{d}/{'n' * 255}")


@case("mkdir")
def mkdir_deep(d):
    p = d
    for i in range(20):
        p = f"{p}/l{i}"
        expect_ok(os.mkdir, p)
    write_file(f"{p}/f", b"deep")
    check(os.path.isfile(f"{p}/f"), "deep file missing")


@case("mkdir")
def mkdir_without_write_permission_is_eacces(d):
    os.mkdir(f"{d}/ro", 0o755)
    expect_user("EACCES", USER_A, GROUP_A, os.mkdir, f"{d}/ro/x")
    expect_errno("ENOENT", os.stat, f"{d}/ro/x")


@case("mkdir")
def a_new_folder_belongs_to_its_creator(d):
    expect_user("OK", USER_B, GROUP_B, os.mkdir, f"{d}/x", 0o700)
    st = os.stat(f"{d}/x")
    eq("owner", (USER_B, GROUP_B), (st.st_uid, st.st_gid))
    eq("mode", 0o700, stat.S_IMODE(st.st_mode))
    expect_user("EACCES", USER_A, GROUP_A, os.listdir, f"{d}/x")


if __name__ == "__main__":
    main("mkdir")
