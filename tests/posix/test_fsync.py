#!/usr/bin/env python3
"""test_fsync.py — fsync(2) and fdatasync(2): they succeed on writers and
readers, the bytes are saved by then, and writing may go on afterwards."""
import os

from posix_lib import case, eq, expect_ok, main, read_file, write_file


@case("fsync")
def fsync_of_a_writer_then_more_writes(d):
    p = f"{d}/f"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"first ")
        expect_ok(os.fsync, fd)
        eq("content after fsync (another open)", b"first ", read_file(p))
        os.write(fd, b"second")
    finally:
        os.close(fd)
    eq("content after close", b"first second", read_file(p))


@case("fsync")
def fsync_of_a_reader(d):
    p = f"{d}/f"
    write_file(p, b"x")
    fd = os.open(p, os.O_RDONLY)
    try:
        expect_ok(os.fsync, fd)
    finally:
        os.close(fd)


@case("fsync")
def fsync_of_a_folder(d):
    os.mkdir(f"{d}/x")
    fd = os.open(f"{d}/x", os.O_RDONLY | os.O_DIRECTORY)
    try:
        expect_ok(os.fsync, fd)
    finally:
        os.close(fd)


@case("fdatasync")
def fdatasync_of_a_writer(d):
    p = f"{d}/f"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"data")
        expect_ok(os.fdatasync, fd)
    finally:
        os.close(fd)
    eq("content", b"data", read_file(p))


if __name__ == "__main__":
    main("fsync")
