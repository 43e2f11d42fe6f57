#!/usr/bin/env python3
"""test_unlink.py — unlink(2): the name goes, open descriptors keep working,
and the errnos (EISDIR for a folder, as Linux says; EACCES, EPERM with the
sticky bit)."""
import os

from posix_lib import (GROUP_A, GROUP_B, USER_A, USER_B, case, check, eq, expect_errno,
                       expect_ok, expect_user, main, read_file, write_file)


@case("unlink")
def unlink_removes_the_name(d):
    p = f"{d}/f"
    write_file(p, b"x")
    expect_ok(os.unlink, p)
    expect_errno("ENOENT", os.stat, p)
    eq("listing", [], os.listdir(d))


@case("unlink")
def unlink_of_a_missing_name_is_enoent(d):
    expect_errno("ENOENT", os.unlink, f"{d}/missing")
    expect_errno("ENOENT", os.unlink, f"{d}/nofolder/f")


@case("unlink")
def unlink_of_a_folder_is_eisdir(d):
    os.mkdir(f"{d}/sub")
    expect_errno("EISDIR", os.unlink, f"{d}/sub")
    check(os.path.isdir(f"{d}/sub"), "folder gone")


@case("unlink")
def unlink_through_a_file_is_enotdir(d):
    write_file(f"{d}/f", b"x")
    expect_errno("ENOTDIR", os.unlink, f"{d}/f/x")


@case("unlink")
def unlink_of_a_name_over_255_bytes_is_enametoolong(d):
    expect_errno("ENAMETOOLONG", os.unlink, f"{d}/{'n' * 256}")


@case("unlink")
def an_open_reader_keeps_reading_after_unlink(d):
    p = f"{d}/f"
    data = os.urandom(300000)
    write_file(p, data)
    fd = os.open(p, os.O_RDONLY)
    try:
        eq("first bytes", data[:10], os.read(fd, 10))
        expect_ok(os.unlink, p)
        expect_errno("ENOENT", os.stat, p)
        eq("the rest, read after unlink", True, os.read(fd, len(data)) == data[10:])
    finally:
        os.close(fd)


@case("unlink")
def a_file_unlinked_while_being_written_does_not_come_back(d):
    p = f"{d}/f"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"partial")
        expect_ok(os.unlink, p)
        expect_errno("ENOENT", os.stat, p)
        os.write(fd, b" more")
    finally:
        os.close(fd)
    expect_errno("ENOENT", os.stat, p)
    eq("listing", [], os.listdir(d))


@case("unlink")
def a_writer_of_an_existing_file_keeps_working_after_unlink(d):
    # opened for writing, nothing written yet, then unlinked: the descriptor
    # must still read and write (POSIX), and nothing comes back at close
    p = f"{d}/f"
    write_file(p, b"committed")
    fd = os.open(p, os.O_RDWR)
    try:
        expect_ok(os.unlink, p)
        eq("read through the writer after unlink", b"committed", expect_ok(os.read, fd, 100))
        eq("write after unlink", 4, expect_ok(os.write, fd, b"more"))
    finally:
        os.close(fd)
    expect_errno("ENOENT", os.stat, p)


@case("unlink")
def unlink_then_create_the_same_name(d):
    p = f"{d}/f"
    write_file(p, b"old")
    os.unlink(p)
    write_file(p, b"new")
    eq("content", b"new", read_file(p))


@case("unlink")
def unlink_in_a_folder_without_write_permission_is_eacces(d):
    os.mkdir(f"{d}/ro", 0o755)
    write_file(f"{d}/ro/f", b"x", 0o666)
    expect_user("EACCES", USER_A, GROUP_A, os.unlink, f"{d}/ro/f")
    eq("content", b"x", read_file(f"{d}/ro/f"))


@case("unlink")
def unlink_of_anothers_file_in_a_sticky_folder_is_eperm(d):
    os.mkdir(f"{d}/tmp")
    os.chmod(f"{d}/tmp", 0o1777)
    p = f"{d}/tmp/f"
    expect_user("OK", USER_A, GROUP_A, write_file, p, b"mine")
    expect_user("EPERM", USER_B, GROUP_B, os.unlink, p)
    expect_user("OK", USER_A, GROUP_A, os.unlink, p)


if __name__ == "__main__":
    main("unlink")
