#!/usr/bin/env python3
"""test_truncate.py — truncate(2) and ftruncate(2): shrink, grow with zeros,
keep, and the errnos."""
import os

from posix_lib import (GROUP_A, USER_A, case, eq, expect_errno, expect_ok, expect_user, main,
                       read_file, write_file)


@case("truncate")
def truncate_shrinks(d):
    p = f"{d}/f"
    write_file(p, b"0123456789")
    expect_ok(os.truncate, p, 4)
    eq("size", 4, os.stat(p).st_size)
    eq("content", b"0123", read_file(p))


@case("truncate")
def truncate_grows_with_zeros(d):
    p = f"{d}/f"
    write_file(p, b"ab")
    expect_ok(os.truncate, p, 6)
    eq("size", 6, os.stat(p).st_size)
    eq("content", b"ab\0\0\0\0", read_file(p))


@case("truncate")
def truncate_to_zero_and_to_the_same_size(d):
    p = f"{d}/f"
    write_file(p, b"abc")
    expect_ok(os.truncate, p, 3)
    eq("content (same size)", b"abc", read_file(p))
    expect_ok(os.truncate, p, 0)
    eq("content (zero)", b"", read_file(p))


@case("truncate")
def truncate_of_a_large_file_to_the_middle(d):
    p = f"{d}/f"
    data = os.urandom(2 * 1024 * 1024)
    write_file(p, data)
    expect_ok(os.truncate, p, 1024 * 1024 + 1)
    eq("content", True, read_file(p) == data[:1024 * 1024 + 1])


@case("truncate")
def truncate_of_a_missing_file_is_enoent(d):
    expect_errno("ENOENT", os.truncate, f"{d}/missing", 0)


@case("truncate")
def truncate_of_a_folder_is_eisdir(d):
    os.mkdir(f"{d}/sub")
    expect_errno("EISDIR", os.truncate, f"{d}/sub", 0)


@case("truncate")
def truncate_to_a_negative_length_is_einval(d):
    p = f"{d}/f"
    write_file(p, b"abc")
    expect_errno("EINVAL", os.truncate, p, -1)
    eq("content", b"abc", read_file(p))


@case("truncate")
def truncate_through_a_file_is_enotdir(d):
    write_file(f"{d}/f", b"x")
    expect_errno("ENOTDIR", os.truncate, f"{d}/f/x", 0)


@case("truncate")
def truncate_without_write_permission_is_eacces(d):
    p = f"{d}/f"
    write_file(p, b"abc", 0o644)
    expect_user("EACCES", USER_A, GROUP_A, os.truncate, p, 0)
    eq("content", b"abc", read_file(p))


@case("truncate")
def truncate_of_a_file_open_for_writing_here(d):
    p = f"{d}/f"
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"0123456789")
        expect_ok(os.truncate, p, 3)
        eq("lseek(SEEK_END) of the writer", 3, os.lseek(fd, 0, os.SEEK_END))
        os.write(fd, b"xy")
    finally:
        os.close(fd)
    eq("content", b"012xy", read_file(p))


@case("ftruncate")
def ftruncate_shrinks_and_grows(d):
    p = f"{d}/f"
    write_file(p, b"0123456789")
    fd = os.open(p, os.O_RDWR)
    try:
        expect_ok(os.ftruncate, fd, 3)
        eq("lseek(SEEK_END)", 3, os.lseek(fd, 0, os.SEEK_END))
        expect_ok(os.ftruncate, fd, 5)
        eq("pread", b"012\0\0", os.pread(fd, 100, 0))
    finally:
        os.close(fd)
    eq("content", b"012\0\0", read_file(p))


@case("ftruncate")
def ftruncate_then_write_at_the_old_offset(d):
    p = f"{d}/f"
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"abcdef")
        os.ftruncate(fd, 2)
        os.write(fd, b"X")  # the offset is still 6: a hole from 2 to 6
    finally:
        os.close(fd)
    eq("content", b"ab\0\0\0\0X", read_file(p))


@case("ftruncate")
def ftruncate_on_a_read_only_descriptor_is_einval(d):
    p = f"{d}/f"
    write_file(p, b"abc")
    fd = os.open(p, os.O_RDONLY)
    try:
        expect_errno("EINVAL", os.ftruncate, fd, 0)
    finally:
        os.close(fd)
    eq("content", b"abc", read_file(p))


@case("ftruncate")
def ftruncate_to_a_negative_length_is_einval(d):
    p = f"{d}/f"
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        expect_errno("EINVAL", os.ftruncate, fd, -5)
    finally:
        os.close(fd)


if __name__ == "__main__":
    main("truncate")
