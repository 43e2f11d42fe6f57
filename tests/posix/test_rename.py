#!/usr/bin/env python3
"""test_rename.py — rename(2) and renameat2(2) in all their cases: file over
file, folder over an empty folder, over a non-empty one (ENOTEMPTY), file
over folder (EISDIR), folder over file (ENOTDIR), into its own subtree
(EINVAL), RENAME_NOREPLACE (EEXIST), RENAME_EXCHANGE and RENAME_WHITEOUT
(EINVAL: lamfs does not support them), open descriptors across a rename,
permissions."""
import os

from posix_lib import (GROUP_A, GROUP_B, RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT,
                       USER_A, USER_B, case, check, eq, expect_errno, expect_ok, expect_user,
                       main, read_file, renameat2, write_file)


@case("rename")
def file_to_a_new_name(d):
    write_file(f"{d}/a", b"A")
    expect_ok(os.rename, f"{d}/a", f"{d}/b")
    expect_errno("ENOENT", os.stat, f"{d}/a")
    eq("content", b"A", read_file(f"{d}/b"))


@case("rename")
def file_over_file_replaces_it(d):
    write_file(f"{d}/a", b"A")
    write_file(f"{d}/b", b"BBBB")
    expect_ok(os.rename, f"{d}/a", f"{d}/b")
    expect_errno("ENOENT", os.stat, f"{d}/a")
    eq("content", b"A", read_file(f"{d}/b"))
    eq("listing", ["b"], sorted(os.listdir(d)))


@case("rename")
def file_into_another_folder(d):
    os.mkdir(f"{d}/x")
    write_file(f"{d}/a", b"A")
    expect_ok(os.rename, f"{d}/a", f"{d}/x/a")
    eq("content", b"A", read_file(f"{d}/x/a"))
    eq("listing", ["x"], os.listdir(d))


@case("rename")
def a_name_onto_itself_does_nothing(d):
    write_file(f"{d}/a", b"A")
    expect_ok(os.rename, f"{d}/a", f"{d}/a")
    eq("content", b"A", read_file(f"{d}/a"))
    os.mkdir(f"{d}/x")
    expect_ok(os.rename, f"{d}/x", f"{d}/x")
    check(os.path.isdir(f"{d}/x"), "folder gone")


@case("rename")
def folder_with_its_subtree(d):
    os.makedirs(f"{d}/x/y/z")
    write_file(f"{d}/x/y/z/f", b"deep")
    write_file(f"{d}/x/top", b"top")
    expect_ok(os.rename, f"{d}/x", f"{d}/w")
    eq("deep file", b"deep", read_file(f"{d}/w/y/z/f"))
    eq("top file", b"top", read_file(f"{d}/w/top"))
    expect_errno("ENOENT", os.stat, f"{d}/x")
    expect_errno("ENOENT", os.stat, f"{d}/x/y/z/f")


@case("rename")
def folder_over_an_empty_folder_replaces_it(d):
    os.mkdir(f"{d}/x")
    write_file(f"{d}/x/f", b"f")
    os.mkdir(f"{d}/empty")
    expect_ok(os.rename, f"{d}/x", f"{d}/empty")
    eq("content", b"f", read_file(f"{d}/empty/f"))
    expect_errno("ENOENT", os.stat, f"{d}/x")


@case("rename")
def folder_over_a_non_empty_folder_is_enotempty(d):
    os.mkdir(f"{d}/x")
    os.mkdir(f"{d}/full")
    write_file(f"{d}/full/f", b"keep")
    expect_errno("ENOTEMPTY", os.rename, f"{d}/x", f"{d}/full")
    eq("content", b"keep", read_file(f"{d}/full/f"))
    check(os.path.isdir(f"{d}/x"), "source gone")


@case("rename")
def folder_over_a_folder_holding_a_file_being_written_is_enotempty(d):
    # the target holds nothing saved yet, but a file is being written in it:
    # it is not empty (rmdir says ENOTEMPTY too)
    os.mkdir(f"{d}/src")
    write_file(f"{d}/src/x", b"x")
    os.mkdir(f"{d}/dst")
    fd = os.open(f"{d}/dst/pending", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"unsaved")
        expect_errno("ENOTEMPTY", os.rename, f"{d}/src", f"{d}/dst")
    finally:
        os.close(fd)
    eq("dst after close", ["pending"], sorted(os.listdir(f"{d}/dst")))
    eq("src", ["x"], sorted(os.listdir(f"{d}/src")))


@case("rename")
def file_over_a_folder_is_eisdir(d):
    write_file(f"{d}/a", b"A")
    os.mkdir(f"{d}/x")
    expect_errno("EISDIR", os.rename, f"{d}/a", f"{d}/x")
    eq("content", b"A", read_file(f"{d}/a"))


@case("rename")
def folder_over_a_file_is_enotdir(d):
    write_file(f"{d}/a", b"A")
    os.mkdir(f"{d}/x")
    expect_errno("ENOTDIR", os.rename, f"{d}/x", f"{d}/a")
    eq("content", b"A", read_file(f"{d}/a"))


@case("rename")
def folder_into_its_own_subtree_is_einval(d):
    os.makedirs(f"{d}/x/y")
    expect_errno("EINVAL", os.rename, f"{d}/x", f"{d}/x/y/z")
    expect_errno("EINVAL", os.rename, f"{d}/x", f"{d}/x/z")
    check(os.path.isdir(f"{d}/x/y"), "subtree changed")


@case("rename")
def a_missing_source_is_enoent(d):
    expect_errno("ENOENT", os.rename, f"{d}/missing", f"{d}/b")


@case("rename")
def a_missing_target_folder_is_enoent(d):
    write_file(f"{d}/a", b"A")
    expect_errno("ENOENT", os.rename, f"{d}/a", f"{d}/nofolder/a")
    eq("content", b"A", read_file(f"{d}/a"))


@case("rename")
def a_target_through_a_file_is_enotdir(d):
    write_file(f"{d}/a", b"A")
    write_file(f"{d}/f", b"F")
    expect_errno("ENOTDIR", os.rename, f"{d}/a", f"{d}/f/a")


@case("rename")
def dot_and_dotdot_are_ebusy(d):
    os.mkdir(f"{d}/x")
    write_file(f"{d}/a", b"A")
    expect_errno("EBUSY", os.rename, f"{d}/x/.", f"{d}/y")
    expect_errno("EBUSY", os.rename, f"{d}/a", f"{d}/x/.")


@case("rename")
def a_target_name_over_255_bytes_is_enametoolong(d):
    write_file(f"{d}/a", b"A")
    expect_errno("ENAMETOOLONG", os.rename, f"{d}/a", f"{d}/{'n' * 256}")


@case("rename")
def an_empty_new_file_renamed_over_a_file_replaces_it_by_close(d):
    # create, rename over an existing file, close without writing: when
    # close() returns, the name holds the empty file
    write_file(f"{d}/b", b"old content")
    fd = os.open(f"{d}/new", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        expect_ok(os.rename, f"{d}/new", f"{d}/b")
    finally:
        os.close(fd)
    eq("size of b right after close", 0, os.stat(f"{d}/b").st_size)


@case("rename")
def an_open_reader_keeps_reading_after_rename(d):
    data = os.urandom(200000)
    write_file(f"{d}/a", data)
    fd = os.open(f"{d}/a", os.O_RDONLY)
    try:
        os.read(fd, 5)
        expect_ok(os.rename, f"{d}/a", f"{d}/b")
        eq("rest", True, os.read(fd, len(data)) == data[5:])
    finally:
        os.close(fd)


@case("rename")
def a_writer_of_a_file_renamed_over_keeps_working(d):
    # b is open for writing (nothing written yet) when a replaces it: the
    # descriptor still reads and writes the old b (POSIX), and b stays a's
    write_file(f"{d}/a", b"A")
    write_file(f"{d}/b", b"old b")
    fd = os.open(f"{d}/b", os.O_RDWR)
    try:
        expect_ok(os.rename, f"{d}/a", f"{d}/b")
        eq("read through the writer", b"old b", expect_ok(os.read, fd, 100))
        eq("write", 1, expect_ok(os.write, fd, b"!"))
    finally:
        os.close(fd)
    eq("content of b", b"A", read_file(f"{d}/b"))


@case("rename")
def a_file_renamed_while_being_written_is_saved_under_the_new_name(d):
    fd = os.open(f"{d}/a", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"before ")
        expect_ok(os.rename, f"{d}/a", f"{d}/b")
        os.write(fd, b"after")
    finally:
        os.close(fd)
    expect_errno("ENOENT", os.stat, f"{d}/a")
    eq("content", b"before after", read_file(f"{d}/b"))


@case("rename")
def rename_in_a_folder_without_write_permission_is_eacces(d):
    os.mkdir(f"{d}/ro", 0o755)
    write_file(f"{d}/ro/a", b"A", 0o666)
    expect_user("EACCES", USER_A, GROUP_A, os.rename, f"{d}/ro/a", f"{d}/ro/b")
    expect_user("EACCES", USER_A, GROUP_A, os.rename, f"{d}/ro/a", f"{d}/b")
    eq("content", b"A", read_file(f"{d}/ro/a"))


@case("rename")
def rename_of_anothers_file_in_a_sticky_folder_is_eperm(d):
    os.mkdir(f"{d}/tmp")
    os.chmod(f"{d}/tmp", 0o1777)
    expect_user("OK", USER_A, GROUP_A, write_file, f"{d}/tmp/a", b"mine")
    expect_user("EPERM", USER_B, GROUP_B, os.rename, f"{d}/tmp/a", f"{d}/tmp/b")
    eq("content", b"mine", read_file(f"{d}/tmp/a"))


@case("renameat2")
def noreplace_onto_an_existing_name_is_eexist(d):
    write_file(f"{d}/a", b"A")
    write_file(f"{d}/b", b"B")
    expect_errno("EEXIST", renameat2, f"{d}/a", f"{d}/b", RENAME_NOREPLACE)
    eq("target", b"B", read_file(f"{d}/b"))
    eq("source", b"A", read_file(f"{d}/a"))
    os.mkdir(f"{d}/x")
    os.mkdir(f"{d}/y")
    expect_errno("EEXIST", renameat2, f"{d}/x", f"{d}/y", RENAME_NOREPLACE)


@case("renameat2")
def noreplace_onto_a_new_name_renames(d):
    write_file(f"{d}/a", b"A")
    expect_ok(renameat2, f"{d}/a", f"{d}/b", RENAME_NOREPLACE)
    eq("content", b"A", read_file(f"{d}/b"))
    expect_errno("ENOENT", os.stat, f"{d}/a")


@case("renameat2", lamfs_only=True)
def exchange_is_einval(d):
    write_file(f"{d}/a", b"A")
    write_file(f"{d}/b", b"B")
    expect_errno("EINVAL", renameat2, f"{d}/a", f"{d}/b", RENAME_EXCHANGE)
    eq("a", b"A", read_file(f"{d}/a"))
    eq("b", b"B", read_file(f"{d}/b"))


@case("renameat2", lamfs_only=True)
def whiteout_is_einval(d):
    # RENAME_WHITEOUT leaves a whiteout (a 0/0 character device) at the
    # source: lamfs has no device files, so it must refuse, not rename.
    write_file(f"{d}/a", b"A")
    expect_errno("EINVAL", renameat2, f"{d}/a", f"{d}/c", RENAME_WHITEOUT)
    eq("a", b"A", read_file(f"{d}/a"))
    expect_errno("ENOENT", os.stat, f"{d}/c")


@case("renameat2")
def unknown_flags_are_einval(d):
    write_file(f"{d}/a", b"A")
    expect_errno("EINVAL", renameat2, f"{d}/a", f"{d}/c", 1 << 8)
    expect_errno("EINVAL", renameat2, f"{d}/a", f"{d}/c",
                 RENAME_NOREPLACE | RENAME_EXCHANGE)


if __name__ == "__main__":
    main("rename")
