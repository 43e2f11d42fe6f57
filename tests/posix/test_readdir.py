#!/usr/bin/env python3
"""test_readdir.py — getdents64(2) through os.scandir/listdir (and `ls -a`
for "." and ".."): every name once, the right d_type, errnos, and listings
taken while other processes create, rename and remove names in the folder."""
import os
import subprocess
import threading

from posix_lib import (GROUP_A, USER_A, case, check, eq, expect_errno, expect_ok, expect_user,
                       main, write_file)


@case("readdir")
def an_empty_folder_lists_dot_and_dotdot_only(d):
    os.mkdir(f"{d}/x")
    eq("scandir", [], [e.name for e in os.scandir(f"{d}/x")])
    out = subprocess.run(["ls", "-a1f", f"{d}/x"], capture_output=True, check=True).stdout
    eq("ls -a", [b".", b".."], sorted(out.split()))


@case("readdir")
def files_and_folders_with_their_types(d):
    for i in range(5):
        write_file(f"{d}/f{i}", b"x")
        os.mkdir(f"{d}/d{i}")
    got = {e.name: ("dir" if e.is_dir(follow_symlinks=False) else
                    "file" if e.is_file(follow_symlinks=False) else "?")
           for e in os.scandir(d)}
    want = {**{f"f{i}": "file" for i in range(5)}, **{f"d{i}": "dir" for i in range(5)}}
    eq("entries", want, got)


@case("readdir")
def two_thousand_names_each_once(d):
    names = [f"n{i:05d}.txt" for i in range(2000)]
    for n in names:
        fd = os.open(f"{d}/{n}", os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(fd)
    got = os.listdir(d)
    eq("count", len(names), len(got))
    eq("names", sorted(names), sorted(got))


@case("readdir")
def names_in_utf8_and_with_spaces(d):
    names = ["gr\u00fc\u00dfe.txt", "\u65e5\u672c\u8a9e", " lead", "trail ", "a b c",
             "tab\there", "back\\slash", "new\nline"]
    for n in names:
        write_file(f"{d}/{n}", b"x")
    eq("names", sorted(names), sorted(os.listdir(d)))


@case("readdir")
def a_file_being_written_is_listed(d):
    fd = os.open(f"{d}/pending", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"x")
        eq("listing while open", ["pending"], os.listdir(d))
    finally:
        os.close(fd)
    eq("listing after close", ["pending"], os.listdir(d))


@case("readdir")
def readdir_of_a_file_is_enotdir(d):
    write_file(f"{d}/f", b"x")
    expect_errno("ENOTDIR", os.listdir, f"{d}/f")


@case("readdir")
def readdir_of_a_missing_folder_is_enoent(d):
    expect_errno("ENOENT", os.listdir, f"{d}/missing")


@case("readdir")
def readdir_without_read_permission_is_eacces(d):
    os.mkdir(f"{d}/noread", 0o711)
    expect_user("EACCES", USER_A, GROUP_A, os.listdir, f"{d}/noread")


@case("readdir")
def listings_during_concurrent_changes(d):
    # POSIX: a name present during the whole listing appears exactly once; a
    # name added or removed meanwhile may or may not appear.  Never a name that
    # did not exist, never a duplicate.
    stable = {f"stable{i:03d}" for i in range(150)}
    for n in stable:
        write_file(f"{d}/{n}", b"s")
    churn = [f"churn{i:03d}" for i in range(40)]
    stop = threading.Event()
    errors = []

    def mutate():
        i = 0
        try:
            while not stop.is_set():
                n = churn[i % len(churn)]
                write_file(f"{d}/{n}", b"c")
                os.rename(f"{d}/{n}", f"{d}/{n}.moved")
                os.unlink(f"{d}/{n}.moved")
                if i % 7 == 0:
                    os.mkdir(f"{d}/{n}.dir")
                    os.rmdir(f"{d}/{n}.dir")
                i += 1
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=mutate)
    t.start()
    allowed = stable | set(churn) | {c + ".moved" for c in churn} | {c + ".dir" for c in churn}
    try:
        for _ in range(60):
            got = expect_ok(os.listdir, d)
            dups = {n for n in got if got.count(n) > 1}
            check(not dups, f"names listed twice: {sorted(dups)[:5]}")
            missing = stable - set(got)
            check(not missing, f"stable names missing: {sorted(missing)[:5]}")
            strange = set(got) - allowed
            check(not strange, f"names that never existed: {sorted(strange)[:5]}")
    finally:
        stop.set()
        t.join()
    check(not errors, f"the mutating thread failed: {errors}")


if __name__ == "__main__":
    main("readdir")
