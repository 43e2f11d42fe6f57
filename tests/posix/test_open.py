#!/usr/bin/env python3
"""test_open.py — open(2) and creat(2): O_CREAT, O_EXCL, O_TRUNC, O_APPEND,
the errnos of bad paths and of missing permissions."""
import os
import stat
import time

from posix_lib import (GROUP_A, GROUP_B, USER_A, USER_B, case, check, eq, expect_errno,
                       expect_ok, expect_user, main, read_file, write_file)

W = os.O_WRONLY
C = os.O_CREAT


def creat(path, mode=0o644):
    """creat(2) is open(O_CREAT|O_WRONLY|O_TRUNC)."""
    return os.open(path, C | W | os.O_TRUNC, mode)


@case("open")
def o_creat_makes_an_empty_file_with_mode_minus_umask(d):
    p = f"{d}/new.txt"
    old = os.umask(0o027)
    try:
        os.close(expect_ok(os.open, p, C | W, 0o666))
    finally:
        os.umask(old)
    st = os.stat(p)
    check(stat.S_ISREG(st.st_mode), "not a regular file")
    eq("mode", 0o640, stat.S_IMODE(st.st_mode))
    eq("size", 0, st.st_size)
    eq("owner", (os.geteuid(), os.getegid()), (st.st_uid, st.st_gid))


@case("open")
def o_creat_on_an_existing_file_keeps_its_bytes_and_mode(d):
    p = f"{d}/f"
    write_file(p, "keep me", 0o600)
    os.close(expect_ok(os.open, p, C | W, 0o777))
    eq("content", b"keep me", read_file(p))
    eq("mode", 0o600, stat.S_IMODE(os.stat(p).st_mode))


@case("open")
def o_excl_on_an_existing_file_is_eexist(d):
    p = f"{d}/f"
    write_file(p, "x")
    expect_errno("EEXIST", os.open, p, C | os.O_EXCL | W, 0o644)
    eq("content untouched", b"x", read_file(p))


@case("open")
def o_excl_on_an_existing_folder_is_eexist(d):
    os.mkdir(f"{d}/sub")
    expect_errno("EEXIST", os.open, f"{d}/sub", C | os.O_EXCL | W, 0o644)


@case("open")
def o_excl_on_a_new_name_creates_it(d):
    p = f"{d}/f"
    fd = expect_ok(os.open, p, C | os.O_EXCL | W, 0o644)
    os.write(fd, b"first")
    os.close(fd)
    eq("content", b"first", read_file(p))
    expect_errno("EEXIST", os.open, p, C | os.O_EXCL | os.O_RDWR, 0o644)


@case("open")
def o_trunc_empties_an_existing_file(d):
    p = f"{d}/f"
    write_file(p, b"0123456789")
    fd = expect_ok(os.open, p, W | os.O_TRUNC)
    try:
        eq("lseek(SEEK_END) after O_TRUNC", 0, os.lseek(fd, 0, os.SEEK_END))
    finally:
        os.close(fd)
    # close() returned: the truncation is what everybody sees now (like ": > f")
    eq("size right after close", 0, os.stat(p).st_size)
    eq("content", b"", read_file(p))


@case("open")
def o_trunc_without_writing_does_not_undo_a_later_save(d):
    # ": > f; echo new > f" must leave "new" — the emptied version must not be
    # saved after close() returned, over the next writer's bytes.
    p = f"{d}/f"
    lost = []
    for i in range(40):
        write_file(p, b"0123456789")
        os.close(os.open(p, W | os.O_TRUNC))
        write_file(p, b"second %d" % i)
        time.sleep(0.05)
        got = read_file(p)
        if got != b"second %d" % i:
            lost.append(got)
    eq("saves undone by an earlier open(O_TRUNC) (of 40)", [], lost)


@case("open")
def o_trunc_then_write_replaces_the_content(d):
    p = f"{d}/f"
    write_file(p, b"a long old content")
    fd = os.open(p, os.O_RDWR | os.O_TRUNC)
    os.write(fd, b"new")
    os.lseek(fd, 0, os.SEEK_SET)
    eq("read back on the same fd", b"new", os.read(fd, 100))
    os.close(fd)
    eq("content", b"new", read_file(p))


@case("open")
def creat_truncates_an_existing_file(d):
    p = f"{d}/f"
    write_file(p, b"old old old")
    fd = expect_ok(creat, p)
    os.write(fd, b"new")
    os.close(fd)
    eq("content", b"new", read_file(p))


@case("open")
def o_append_writes_at_the_end_whatever_the_offset(d):
    p = f"{d}/f"
    write_file(p, b"abc")
    fd = os.open(p, W | os.O_APPEND)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b"def")
    os.lseek(fd, 1, os.SEEK_SET)
    os.write(fd, b"gh")
    os.close(fd)
    eq("content", b"abcdefgh", read_file(p))


@case("open")
def o_append_with_pwrite_appends_as_linux_does(d):
    # Linux (BUGS in pwrite(2)): with O_APPEND, pwrite appends whatever the offset.
    p = f"{d}/f"
    write_file(p, b"abc")
    fd = os.open(p, W | os.O_APPEND)
    os.pwrite(fd, b"XY", 0)
    os.close(fd)
    eq("content", b"abcXY", read_file(p))


@case("open")
def o_append_o_creat_on_a_new_file(d):
    p = f"{d}/f"
    fd = os.open(p, W | C | os.O_APPEND, 0o644)
    os.write(fd, b"one")
    os.write(fd, b"two")
    os.close(fd)
    eq("content", b"onetwo", read_file(p))


@case("open")
def a_missing_file_is_enoent(d):
    expect_errno("ENOENT", os.open, f"{d}/missing", os.O_RDONLY)
    expect_errno("ENOENT", os.open, f"{d}/missing", W)


@case("open")
def o_creat_in_a_missing_folder_is_enoent(d):
    expect_errno("ENOENT", os.open, f"{d}/nofolder/f", C | W, 0o644)


@case("open")
def a_path_through_a_file_is_enotdir(d):
    write_file(f"{d}/f", "x")
    expect_errno("ENOTDIR", os.open, f"{d}/f/x", os.O_RDONLY)
    expect_errno("ENOTDIR", os.open, f"{d}/f/x", C | W, 0o644)


@case("open")
def a_folder_for_writing_is_eisdir(d):
    os.mkdir(f"{d}/sub")
    expect_errno("EISDIR", os.open, f"{d}/sub", W)
    expect_errno("EISDIR", os.open, f"{d}/sub", os.O_RDWR)
    expect_errno("EISDIR", os.open, f"{d}/sub", C | os.O_RDONLY, 0o644)


@case("open")
def a_folder_for_reading_opens(d):
    os.mkdir(f"{d}/sub")
    os.close(expect_ok(os.open, f"{d}/sub", os.O_RDONLY | os.O_DIRECTORY))


@case("open")
def o_directory_on_a_file_is_enotdir(d):
    write_file(f"{d}/f", "x")
    expect_errno("ENOTDIR", os.open, f"{d}/f", os.O_RDONLY | os.O_DIRECTORY)


@case("open")
def a_name_over_255_bytes_is_enametoolong(d):
    expect_errno("ENAMETOOLONG", os.open, f"{d}/{'n' * 256}", C | W, 0o644)
    os.close(expect_ok(os.open, f"{d}/{'n' * 255}", C | W, 0o644))


@case("open")
def write_access_to_a_read_only_file_is_eacces_for_others(d):
    p = f"{d}/f"
    write_file(p, "x", 0o644)
    expect_user("EACCES", USER_A, GROUP_A, os.open, p, W)
    expect_user("OK", USER_A, GROUP_A, lambda: os.close(os.open(p, os.O_RDONLY)))


@case("open")
def read_access_to_a_private_file_is_eacces_for_others(d):
    p = f"{d}/f"
    write_file(p, "x", 0o600)
    expect_user("EACCES", USER_A, GROUP_A, os.open, p, os.O_RDONLY)


@case("open")
def o_creat_in_a_folder_without_write_permission_is_eacces(d):
    os.mkdir(f"{d}/ro", 0o755)
    expect_user("EACCES", USER_A, GROUP_A, os.open, f"{d}/ro/f", C | W, 0o644)
    expect_errno("ENOENT", os.stat, f"{d}/ro/f")


@case("open")
def a_folder_without_search_permission_is_eacces(d):
    os.mkdir(f"{d}/nox", 0o766)
    write_file(f"{d}/nox/f", "x", 0o666)
    expect_user("EACCES", USER_A, GROUP_A, os.open, f"{d}/nox/f", os.O_RDONLY)


@case("open")
def a_new_file_belongs_to_its_creator(d):
    p = f"{d}/mine"

    def make():
        os.close(os.open(p, C | W, 0o640))

    expect_user("OK", USER_B, GROUP_B, make)
    st = os.stat(p)
    eq("owner", (USER_B, GROUP_B), (st.st_uid, st.st_gid))
    eq("mode", 0o640, stat.S_IMODE(st.st_mode))


@case("open")
def a_new_file_in_a_setgid_folder_gets_the_folders_group(d):
    # Linux (and BSD) semantics: the group of a new file in a folder with
    # S_ISGID is the folder's group, and new folders inherit S_ISGID.
    os.mkdir(f"{d}/shared")
    os.chown(f"{d}/shared", 0, GROUP_B)
    os.chmod(f"{d}/shared", 0o2777)
    os.close(os.open(f"{d}/shared/f", C | W, 0o644))
    eq("group of the new file", GROUP_B, os.stat(f"{d}/shared/f").st_gid)
    os.mkdir(f"{d}/shared/sub")
    st = os.stat(f"{d}/shared/sub")
    eq("group of the new folder", GROUP_B, st.st_gid)
    check(st.st_mode & stat.S_ISGID, "new folder did not inherit S_ISGID")


if __name__ == "__main__":
    main("open")
