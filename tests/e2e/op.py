#!/usr/bin/env python3
"""op.py — do one system call (or a short sequence) and print how it went.

    python3 op.py OP ARGS...

Prints "OK" when the operation succeeded, or the errno name (ENOENT,
ENAMETOOLONG, ...) when it failed; for the multi-step operations (write,
copy) a failure before close() is printed as NAME@step (EIO@write), so a test
can require the error to come from close() itself.  Exit status 0 either way;
2 for a usage error.  Paths are taken as bytes (surrogateescape), so names
that are not valid UTF-8 reach the kernel unchanged.

OPs:
  stat PATH | lstat PATH | open PATH (O_RDONLY) | listdir PATH
  create PATH (O_CREAT|O_EXCL|O_WRONLY, then close)
  write PATH TEXT (O_CREAT|O_TRUNC|O_WRONLY, write TEXT, close)
  copy SRC DST (write SRC's bytes to DST in 1 MiB writes, fsync=no, close)
  append PATH TEXT (O_APPEND)
  mkdir PATH | rmdir PATH | unlink PATH | rename OLD NEW
  symlink TARGET PATH | link OLD NEW | mkfifo PATH | mknod_chr PATH | mknod_reg PATH
  truncate PATH SIZE | chmod PATH MODE(octal) | setxattr PATH NAME VALUE
  removexattr PATH NAME
"""
import errno
import os
import stat
import sys


def name(e: OSError) -> str:
    return errno.errorcode.get(e.errno, str(e.errno))


def steps_write(path, chunks, flags):
    """open, write every chunk, close: OK, NAME (close failed) or NAME@step."""
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        return name(e) + "@open"
    try:
        for c in chunks:
            view = memoryview(c)
            while view:
                n = os.write(fd, view)
                view = view[n:]
    except OSError as e:
        try:
            os.close(fd)
        except OSError:
            pass
        return name(e) + "@write"
    try:
        os.close(fd)
    except OSError as e:
        return name(e)
    return "OK"


def file_chunks(src, size=1 << 20):
    with open(src, "rb") as f:
        while True:
            b = f.read(size)
            if not b:
                return
            yield b


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    op, args = argv[1], [os.fsencode(a) for a in argv[2:]]
    W = os.O_WRONLY | os.O_CREAT
    try:
        if op == "stat":
            os.stat(args[0])
        elif op == "lstat":
            os.lstat(args[0])
        elif op == "open":
            os.close(os.open(args[0], os.O_RDONLY))
        elif op == "listdir":
            os.listdir(args[0])
        elif op == "create":
            os.close(os.open(args[0], W | os.O_EXCL, 0o644))
        elif op == "write":
            print(steps_write(args[0], [args[1]], W | os.O_TRUNC))
            return 0
        elif op == "append":
            print(steps_write(args[0], [args[1]], W | os.O_APPEND))
            return 0
        elif op == "copy":
            print(steps_write(args[1], file_chunks(args[0]), W | os.O_TRUNC))
            return 0
        elif op == "mkdir":
            os.mkdir(args[0])
        elif op == "rmdir":
            os.rmdir(args[0])
        elif op == "unlink":
            os.unlink(args[0])
        elif op == "rename":
            os.rename(args[0], args[1])
        elif op == "symlink":
            os.symlink(args[0], args[1])
        elif op == "link":
            os.link(args[0], args[1])
        elif op == "mkfifo":
            os.mkfifo(args[0])
        elif op == "mknod_chr":
            os.mknod(args[0], 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        elif op == "mknod_reg":
            os.mknod(args[0], 0o600 | stat.S_IFREG)
        elif op == "truncate":
            os.truncate(args[0], int(args[1]))
        elif op == "chmod":
            os.chmod(args[0], int(args[1], 8))
        elif op == "setxattr":
            os.setxattr(args[0], args[1], args[2])
        elif op == "removexattr":
            os.removexattr(args[0], args[1])
        else:
            print(f"op.py: unknown op {op!r}", file=sys.stderr)
            return 2
    except IndexError:
        print(f"op.py: {op}: missing argument", file=sys.stderr)
        return 2
    except OSError as e:
        print(name(e))
        return 0
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
