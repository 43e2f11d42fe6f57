#!/usr/bin/env python3
"""test_chown.py — chown(2) and fchown(2): root gives files away, an owner
may change the group to one of its groups only, nobody else may do
anything; set-id bits are cleared as Linux clears them."""
import os
import stat

from posix_lib import (GROUP_A, GROUP_B, GROUP_SHARED, USER_A, USER_B, case, eq, expect_errno,
                       expect_ok, expect_user, main, write_file)


def owner(p):
    st = os.stat(p)
    return (st.st_uid, st.st_gid)


@case("chown")
def root_gives_a_file_away(d):
    p = f"{d}/f"
    write_file(p, b"x")
    expect_ok(os.chown, p, USER_A, GROUP_B)
    eq("owner", (USER_A, GROUP_B), owner(p))


@case("chown")
def root_gives_a_folder_away(d):
    os.mkdir(f"{d}/x")
    expect_ok(os.chown, f"{d}/x", USER_B, GROUP_A)
    eq("owner", (USER_B, GROUP_A), owner(f"{d}/x"))


@case("chown")
def minus_one_keeps_that_id(d):
    p = f"{d}/f"
    write_file(p, b"x")
    os.chown(p, USER_A, GROUP_A)
    expect_ok(os.chown, p, -1, GROUP_B)
    eq("owner", (USER_A, GROUP_B), owner(p))
    expect_ok(os.chown, p, USER_B, -1)
    eq("owner", (USER_B, GROUP_B), owner(p))
    expect_ok(os.chown, p, -1, -1)
    eq("owner", (USER_B, GROUP_B), owner(p))


@case("chown")
def an_owner_may_not_give_a_file_away(d):
    p = f"{d}/f"
    expect_user("OK", USER_A, GROUP_A, write_file, p, b"x")
    expect_user("EPERM", USER_A, GROUP_A, os.chown, p, USER_B, -1)
    eq("owner", (USER_A, GROUP_A), owner(p))


@case("chown")
def an_owner_may_change_the_group_to_one_of_its_groups(d):
    p = f"{d}/f"
    expect_user("OK", USER_A, GROUP_A, write_file, p, b"x")
    expect_user("OK", USER_A, GROUP_A, os.chown, p, -1, GROUP_SHARED, groups=[GROUP_SHARED])
    eq("owner", (USER_A, GROUP_SHARED), owner(p))


@case("chown")
def an_owner_may_not_change_the_group_to_a_foreign_group(d):
    p = f"{d}/f"
    expect_user("OK", USER_A, GROUP_A, write_file, p, b"x")
    expect_user("EPERM", USER_A, GROUP_A, os.chown, p, -1, GROUP_B)
    eq("owner", (USER_A, GROUP_A), owner(p))


@case("chown")
def another_user_may_not_chown(d):
    p = f"{d}/f"
    write_file(p, b"x", 0o666)
    expect_user("EPERM", USER_B, GROUP_B, os.chown, p, USER_B, GROUP_B)
    expect_user("EPERM", USER_B, GROUP_B, os.chown, p, -1, GROUP_B)
    eq("owner", (0, 0), owner(p))


@case("chown")
def chown_of_a_missing_name_is_enoent(d):
    expect_errno("ENOENT", os.chown, f"{d}/missing", 0, 0)


@case("chown")
def chown_clears_setuid_and_setgid_of_a_file(d):
    p = f"{d}/f"
    write_file(p, b"x")
    os.chmod(p, 0o6755)
    expect_ok(os.chown, p, USER_A, GROUP_A)
    eq("mode", 0o755, stat.S_IMODE(os.stat(p).st_mode))


@case("fchown")
def fchown_on_a_reader(d):
    p = f"{d}/f"
    write_file(p, b"x")
    fd = os.open(p, os.O_RDONLY)
    try:
        expect_ok(os.fchown, fd, USER_A, GROUP_A)
    finally:
        os.close(fd)
    eq("owner", (USER_A, GROUP_A), owner(p))


@case("fchown")
def fchown_on_a_writer_is_kept_after_close(d):
    p = f"{d}/f"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"abc")
        expect_ok(os.fchown, fd, USER_B, GROUP_B)
    finally:
        os.close(fd)
    eq("owner", (USER_B, GROUP_B), owner(p))


if __name__ == "__main__":
    main("chown")
