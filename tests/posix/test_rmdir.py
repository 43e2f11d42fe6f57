#!/usr/bin/env python3
"""test_rmdir.py — rmdir(2): an empty folder goes; ENOTEMPTY, ENOENT,
ENOTDIR, EINVAL (for "."), EACCES."""
import os

from posix_lib import (GROUP_A, USER_A, case, check, eq, expect_errno, expect_ok, expect_user,
                       main, write_file)


@case("rmdir")
def rmdir_removes_an_empty_folder(d):
    os.mkdir(f"{d}/x")
    expect_ok(os.rmdir, f"{d}/x")
    expect_errno("ENOENT", os.stat, f"{d}/x")
    eq("listing", [], os.listdir(d))


@case("rmdir")
def rmdir_of_a_folder_with_a_file_is_enotempty(d):
    os.mkdir(f"{d}/x")
    write_file(f"{d}/x/f", b"keep")
    expect_errno("ENOTEMPTY", os.rmdir, f"{d}/x")
    check(os.path.isfile(f"{d}/x/f"), "file gone")


@case("rmdir")
def rmdir_of_a_folder_with_a_folder_is_enotempty(d):
    os.makedirs(f"{d}/x/y")
    expect_errno("ENOTEMPTY", os.rmdir, f"{d}/x")


@case("rmdir")
def rmdir_of_a_folder_with_a_file_still_being_written_is_enotempty(d):
    os.mkdir(f"{d}/x")
    fd = os.open(f"{d}/x/f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"not saved yet")
        expect_errno("ENOTEMPTY", os.rmdir, f"{d}/x")
    finally:
        os.close(fd)
    check(os.path.isfile(f"{d}/x/f"), "file missing after close")


@case("rmdir")
def rmdir_after_emptying(d):
    os.mkdir(f"{d}/x")
    write_file(f"{d}/x/f", b"x")
    os.unlink(f"{d}/x/f")
    expect_ok(os.rmdir, f"{d}/x")


@case("rmdir")
def rmdir_of_a_missing_folder_is_enoent(d):
    expect_errno("ENOENT", os.rmdir, f"{d}/missing")


@case("rmdir")
def rmdir_of_a_file_is_enotdir(d):
    write_file(f"{d}/f", b"x")
    expect_errno("ENOTDIR", os.rmdir, f"{d}/f")


@case("rmdir")
def rmdir_of_dot_is_einval(d):
    os.mkdir(f"{d}/x")
    expect_errno("EINVAL", os.rmdir, f"{d}/x/.")


@case("rmdir")
def rmdir_of_dotdot_is_enotempty(d):
    os.mkdir(f"{d}/x")
    expect_errno("ENOTEMPTY", os.rmdir, f"{d}/x/..")


@case("rmdir")
def rmdir_without_write_permission_on_the_parent_is_eacces(d):
    os.mkdir(f"{d}/ro", 0o755)
    os.mkdir(f"{d}/ro/x", 0o777)
    expect_user("EACCES", USER_A, GROUP_A, os.rmdir, f"{d}/ro/x")
    check(os.path.isdir(f"{d}/ro/x"), "folder gone")


if __name__ == "__main__":
    main("rmdir")
