#!/usr/bin/env python3
"""test_read.py — read(2) and pread(2): whole files, chunks, offsets, EOF,
and the errnos of the wrong kind of descriptor."""
import hashlib
import os

from posix_lib import case, eq, expect_errno, expect_ok, main, write_file


@case("read")
def read_returns_the_bytes_then_zero_at_eof(d):
    p = f"{d}/f"
    write_file(p, b"hello, world\n")
    fd = os.open(p, os.O_RDONLY)
    try:
        eq("first read", b"hello, world\n", os.read(fd, 100))
        eq("read at EOF", b"", os.read(fd, 100))
        eq("read at EOF again", b"", os.read(fd, 100))
    finally:
        os.close(fd)


@case("read")
def read_in_small_chunks_moves_the_offset(d):
    p = f"{d}/f"
    data = bytes(range(256)) * 4
    write_file(p, data)
    fd = os.open(p, os.O_RDONLY)
    try:
        got = []
        while True:
            b = os.read(fd, 7)
            if not b:
                break
            got.append(b)
        eq("content", data, b"".join(got))
        eq("offset at the end", len(data), os.lseek(fd, 0, os.SEEK_CUR))
    finally:
        os.close(fd)


@case("read")
def read_of_an_empty_file_is_zero(d):
    p = f"{d}/empty"
    write_file(p, b"")
    fd = os.open(p, os.O_RDONLY)
    try:
        eq("read", b"", os.read(fd, 10))
    finally:
        os.close(fd)


@case("read")
def read_of_several_mib_matches_what_was_written(d):
    p = f"{d}/big"
    data = os.urandom(3 * 1024 * 1024 + 123)
    write_file(p, data)
    fd = os.open(p, os.O_RDONLY)
    try:
        h = hashlib.sha256()
        n = 0
        while True:
            b = os.read(fd, 128 * 1024)
            if not b:
                break
            h.update(b)
            n += len(b)
    finally:
        os.close(fd)
    eq("bytes read", len(data), n)
    eq("sha256", hashlib.sha256(data).hexdigest(), h.hexdigest())


@case("read")
def read_after_lseek(d):
    p = f"{d}/f"
    write_file(p, b"0123456789")
    fd = os.open(p, os.O_RDONLY)
    try:
        os.lseek(fd, 4, os.SEEK_SET)
        eq("read at 4", b"456", os.read(fd, 3))
        os.lseek(fd, -2, os.SEEK_END)
        eq("read 2 from the end", b"89", os.read(fd, 10))
        os.lseek(fd, 100, os.SEEK_SET)
        eq("read past EOF", b"", os.read(fd, 10))
    finally:
        os.close(fd)


@case("read")
def read_on_a_write_only_descriptor_is_ebadf(d):
    p = f"{d}/f"
    write_file(p, b"x")
    fd = os.open(p, os.O_WRONLY)
    try:
        expect_errno("EBADF", os.read, fd, 1)
    finally:
        os.close(fd)


@case("read")
def read_on_a_folder_is_eisdir(d):
    os.mkdir(f"{d}/sub")
    fd = os.open(f"{d}/sub", os.O_RDONLY | os.O_DIRECTORY)
    try:
        expect_errno("EISDIR", os.read, fd, 1)
    finally:
        os.close(fd)


@case("read")
def read_on_a_read_write_descriptor_sees_its_own_writes(d):
    p = f"{d}/f"
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"abcdef")
        os.lseek(fd, 2, os.SEEK_SET)
        eq("read back", b"cdef", os.read(fd, 100))
    finally:
        os.close(fd)


@case("pread")
def pread_reads_at_an_offset_without_moving_it(d):
    p = f"{d}/f"
    write_file(p, b"0123456789")
    fd = os.open(p, os.O_RDONLY)
    try:
        eq("pread(3, 5)", b"567", os.pread(fd, 3, 5))
        eq("offset unchanged", 0, os.lseek(fd, 0, os.SEEK_CUR))
        eq("pread across EOF", b"89", os.pread(fd, 10, 8))
        eq("pread at EOF", b"", os.pread(fd, 10, 10))
        eq("pread past EOF", b"", os.pread(fd, 10, 1 << 40))
        eq("read from 0 still", b"01", os.read(fd, 2))
    finally:
        os.close(fd)


@case("pread")
def pread_at_a_negative_offset_is_einval(d):
    p = f"{d}/f"
    write_file(p, b"x")
    fd = os.open(p, os.O_RDONLY)
    try:
        expect_errno("EINVAL", os.pread, fd, 1, -1)
    finally:
        os.close(fd)


@case("pread")
def pread_in_random_order_matches(d):
    import random
    p = f"{d}/f"
    data = os.urandom(256 * 1024)
    write_file(p, data)
    rnd = random.Random(7)
    fd = os.open(p, os.O_RDONLY)
    try:
        for _ in range(200):
            off = rnd.randrange(0, len(data) + 10)
            n = rnd.randrange(0, 70000)
            eq(f"pread({n}, {off})", data[off:off + n], expect_ok(os.pread, fd, n, off))
    finally:
        os.close(fd)


if __name__ == "__main__":
    main("read")
