#!/usr/bin/env python3
"""test_write.py — write(2) and pwrite(2): counts, offsets, holes, the file
size seen by the writer and by others after close, and the errnos."""
import os

from posix_lib import case, eq, expect_errno, expect_ok, main, read_file, write_file


@case("write")
def write_returns_the_count_and_the_bytes_are_there_after_close(d):
    p = f"{d}/f"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        eq("write count", 5, os.write(fd, b"hello"))
        eq("write count", 6, os.write(fd, b" world"))
        eq("zero-length write", 0, os.write(fd, b""))
    finally:
        os.close(fd)
    eq("content", b"hello world", read_file(p))
    eq("size", 11, os.stat(p).st_size)


@case("write")
def write_past_the_end_leaves_a_hole_of_zeros(d):
    p = f"{d}/f"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"ab")
        os.lseek(fd, 10, os.SEEK_SET)
        os.write(fd, b"cd")
    finally:
        os.close(fd)
    eq("content", b"ab" + b"\0" * 8 + b"cd", read_file(p))


@case("write")
def write_over_the_middle_of_an_existing_file(d):
    p = f"{d}/f"
    write_file(p, b"0123456789")
    fd = os.open(p, os.O_WRONLY)
    try:
        os.lseek(fd, 3, os.SEEK_SET)
        os.write(fd, b"abc")
    finally:
        os.close(fd)
    eq("content", b"012abc6789", read_file(p))


@case("write")
def write_of_several_mib_in_pieces(d):
    p = f"{d}/f"
    data = os.urandom(5 * 1024 * 1024 + 17)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view[:1000003])
            view = view[n:]
    finally:
        os.close(fd)
    eq("content", True, read_file(p) == data)


@case("write")
def write_on_a_read_only_descriptor_is_ebadf(d):
    p = f"{d}/f"
    write_file(p, b"x")
    fd = os.open(p, os.O_RDONLY)
    try:
        expect_errno("EBADF", os.write, fd, b"y")
    finally:
        os.close(fd)
    eq("content", b"x", read_file(p))


@case("write")
def the_writer_sees_its_size_through_lseek_seek_end(d):
    p = f"{d}/f"
    write_file(p, b"0123456789")
    fd = os.open(p, os.O_WRONLY)
    try:
        os.lseek(fd, 0, os.SEEK_END)
        os.write(fd, b"x" * 20)
        eq("lseek(SEEK_END)", 30, os.lseek(fd, 0, os.SEEK_END))
    finally:
        os.close(fd)


@case("write")
def the_writer_sees_its_size_through_fstat(d):
    # POSIX: st_size of an open file reflects the writes made through it.
    p = f"{d}/f"
    write_file(p, b"0123456789")
    fd = os.open(p, os.O_WRONLY)
    try:
        os.lseek(fd, 0, os.SEEK_END)
        os.write(fd, b"x" * 20)
        eq("fstat size of the writer", 30, os.fstat(fd).st_size)
    finally:
        os.close(fd)


@case("write")
def the_offset_after_o_append_writes_is_the_end_of_the_file(d):
    # a stat by name in between (any other process may make one) must not
    # change where the writer's offset ends up
    p = f"{d}/f"
    write_file(p, b"0123456789")
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"a" * 100)
        eq("offset after the first append", 110, os.lseek(fd, 0, os.SEEK_CUR))
        os.stat(p)
        os.write(fd, b"b" * 100)
        eq("offset after the second append", 210, os.lseek(fd, 0, os.SEEK_CUR))
    finally:
        os.close(fd)
    eq("size", 210, os.stat(p).st_size)


@case("write")
def a_new_files_writer_sees_its_size_through_fstat(d):
    p = f"{d}/new"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, b"x" * 20)
        eq("fstat size", 20, os.fstat(fd).st_size)
    finally:
        os.close(fd)


@case("write")
def writes_through_descriptors_opened_in_turn_accumulate(d):
    # Open, write, close, then open again: the second writer starts from the
    # first one's bytes.  (Writers open at the same time each save their own
    # copy at close under lamfs; the README says so, and it is not tested here.)
    p = f"{d}/f"
    write_file(p, b"..........")
    a = os.open(p, os.O_WRONLY)
    os.pwrite(a, b"AA", 0)
    os.close(a)
    b = os.open(p, os.O_WRONLY)
    os.pwrite(b, b"BB", 8)
    os.close(b)
    eq("content", b"AA......BB", read_file(p))


@case("pwrite")
def pwrite_writes_at_an_offset_without_moving_it(d):
    p = f"{d}/f"
    write_file(p, b"0123456789")
    fd = os.open(p, os.O_RDWR)
    try:
        eq("pwrite count", 2, os.pwrite(fd, b"xy", 4))
        eq("offset unchanged", 0, os.lseek(fd, 0, os.SEEK_CUR))
        eq("read from 0", b"0123xy6789", os.read(fd, 100))
    finally:
        os.close(fd)
    eq("content", b"0123xy6789", read_file(p))


@case("pwrite")
def pwrite_past_the_end_extends_with_zeros(d):
    p = f"{d}/f"
    write_file(p, b"ab")
    fd = os.open(p, os.O_WRONLY)
    try:
        os.pwrite(fd, b"z", 5)
    finally:
        os.close(fd)
    eq("content", b"ab\0\0\0z", read_file(p))


@case("pwrite")
def pwrite_at_a_negative_offset_is_einval(d):
    p = f"{d}/f"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        expect_errno("EINVAL", os.pwrite, fd, b"x", -1)
    finally:
        os.close(fd)


@case("pwrite")
def pwrite_on_a_read_only_descriptor_is_ebadf(d):
    p = f"{d}/f"
    write_file(p, b"x")
    fd = os.open(p, os.O_RDONLY)
    try:
        expect_errno("EBADF", os.pwrite, fd, b"y", 0)
    finally:
        os.close(fd)


@case("pwrite")
def pwrite_in_random_order_builds_the_file(d):
    import random
    p = f"{d}/f"
    rnd = random.Random(11)
    model = bytearray()
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for _ in range(300):
            off = rnd.randrange(0, 200000)
            data = os.urandom(rnd.randrange(1, 5000))
            expect_ok(os.pwrite, fd, data, off)
            if len(model) < off:
                model.extend(b"\0" * (off - len(model)))
            model[off:off + len(data)] = data
        eq("pread of the whole file before close", True,
           os.pread(fd, len(model) + 10, 0) == bytes(model))
    finally:
        os.close(fd)
    eq("content after close", True, read_file(p) == bytes(model))
    eq("size", len(model), os.stat(p).st_size)


if __name__ == "__main__":
    main("write")
