#!/usr/bin/env python3
"""test_utimensat.py — utimensat(2) and futimens(2): explicit times with
nanoseconds, UTIME_NOW, UTIME_OMIT, and who may set what (an explicit time:
the owner; "now": anybody with write permission)."""
import ctypes
import os
import time

from posix_lib import (GROUP_A, GROUP_B, USER_A, USER_B, _libc, case, check, eq, expect_errno,
                       expect_ok, expect_user, main, write_file)

UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path, atime, mtime):
    """atime/mtime: (sec, nsec) or UTIME_NOW / UTIME_OMIT."""
    def ts(t):
        return Timespec(0, t) if isinstance(t, int) else Timespec(*t)
    arr = (Timespec * 2)(ts(atime), ts(mtime))
    if _libc.utimensat(-100, os.fsencode(path), arr, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


def mtime_ns(p):
    return os.stat(p).st_mtime_ns


@case("utimensat")
def an_explicit_mtime_with_nanoseconds(d):
    p = f"{d}/f"
    write_file(p, b"x")
    expect_ok(os.utime, p, ns=(1_000_000_000, 1_234_567_890_123_456_789))
    eq("st_mtime_ns", 1_234_567_890_123_456_789, mtime_ns(p))


@case("utimensat")
def an_mtime_before_1970(d):
    p = f"{d}/f"
    write_file(p, b"x")
    expect_ok(os.utime, p, ns=(0, -86_400_000_000_000))
    eq("st_mtime_ns", -86_400_000_000_000, mtime_ns(p))


@case("utimensat")
def an_explicit_mtime_on_a_folder(d):
    os.mkdir(f"{d}/x")
    expect_ok(os.utime, f"{d}/x", ns=(5, 1_600_000_000_000_000_007))
    eq("st_mtime_ns", 1_600_000_000_000_000_007, mtime_ns(f"{d}/x"))


@case("utimensat")
def utime_now(d):
    p = f"{d}/f"
    write_file(p, b"x")
    os.utime(p, ns=(0, 0))
    before = time.time_ns()
    expect_ok(os.utime, p)
    after = time.time_ns()
    m = mtime_ns(p)
    check(before - 10_000_000 <= m <= after + 10_000_000,
          f"mtime {m} not between {before} and {after}")


@case("utimensat")
def utime_omit_for_mtime_keeps_it(d):
    p = f"{d}/f"
    write_file(p, b"x")
    os.utime(p, ns=(7, 1_500_000_000_000_000_000))
    expect_ok(utimensat, p, (9, 9), UTIME_OMIT)
    eq("st_mtime_ns", 1_500_000_000_000_000_000, mtime_ns(p))


@case("utimensat")
def a_write_sets_mtime_to_about_now(d):
    p = f"{d}/f"
    write_file(p, b"x")
    os.utime(p, ns=(0, 0))
    before = time.time_ns()
    fd = os.open(p, os.O_WRONLY)
    os.write(fd, b"y")
    os.close(fd)
    m = mtime_ns(p)
    check(m >= before - 10_000_000, f"mtime {m} older than the write at {before}")


@case("utimensat")
def an_explicit_mtime_set_while_writing_survives_close(d):
    # what cp -p, rsync -t and tar do: write, then set the mtime, then close
    p = f"{d}/f"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"data")
        os.utime(fd, ns=(1, 1_111_111_111_000_000_000))
    finally:
        os.close(fd)
    eq("st_mtime_ns", 1_111_111_111_000_000_000, mtime_ns(p))


@case("utimensat")
def utimensat_of_a_missing_name_is_enoent(d):
    expect_errno("ENOENT", os.utime, f"{d}/missing", ns=(1, 1))


@case("utimensat")
def an_explicit_time_by_another_user_is_eperm(d):
    p = f"{d}/f"
    write_file(p, b"x", 0o666)
    os.chmod(p, 0o666)
    os.utime(p, ns=(3, 3_000_000_000))
    expect_user("EPERM", USER_A, GROUP_A, os.utime, p, (1, 1))
    eq("st_mtime_ns", 3_000_000_000, mtime_ns(p))


@case("utimensat")
def now_by_another_user_with_write_permission_works(d):
    p = f"{d}/f"
    write_file(p, b"x")
    os.chmod(p, 0o666)
    os.utime(p, ns=(0, 0))
    expect_user("OK", USER_A, GROUP_A, os.utime, p, None)
    check(mtime_ns(p) > 0, "mtime not set")


@case("utimensat")
def now_by_another_user_without_write_permission_is_eacces(d):
    p = f"{d}/f"
    write_file(p, b"x", 0o644)
    os.utime(p, ns=(0, 0))
    expect_user("EACCES", USER_A, GROUP_A, os.utime, p, None)
    eq("st_mtime_ns", 0, mtime_ns(p))


@case("utimensat")
def an_explicit_time_by_the_owner_works(d):
    p = f"{d}/f"
    expect_user("OK", USER_B, GROUP_B, write_file, p, b"x")
    expect_user("OK", USER_B, GROUP_B, os.utime, p, (5, 5))
    eq("st_mtime_ns", 5_000_000_000, mtime_ns(p))


@case("futimens")
def futimens_on_a_reader(d):
    p = f"{d}/f"
    write_file(p, b"x")
    fd = os.open(p, os.O_RDONLY)
    try:
        expect_ok(os.utime, fd, ns=(1, 1_222_333_444_555_666_777))
    finally:
        os.close(fd)
    eq("st_mtime_ns", 1_222_333_444_555_666_777, mtime_ns(p))


if __name__ == "__main__":
    main("utimensat")
