"""posix_lib.py — the small harness every tests/posix/test_*.py uses.

A test file is run as

    python3 test_open.py MOUNTPOINT [--keep] [--native]

against a mounted lamfs (mounted by root with -o allow_other, so that the
permission cases can run as other users).  It works in a fresh folder
MOUNTPOINT/posix-<name>-<pid> (mode 0777 so other users may create there),
removed at the end unless --keep.

Cases are functions decorated with @case("call"); each gets the scratch folder
as its only argument and asserts with the helpers below.  Output: one line per
case ("ok call: case" or "FAIL call: case: why"), then one line per call

    RESULT <call> <cases> <passed>

which tests/e2e/t_posix.sh collects into the conformance table.  Exit status
0 when every case passed, 1 otherwise.

--native runs the cases against a directory on a native filesystem (ext4,
tmpfs) to check the expectations themselves: every case that is not
lamfs_only must pass there too.

Errnos are compared by name (ENOENT) so a failure message says what was
expected and what came.  as_user() runs a function in a forked child with
other uids/gids (setresgid/setresuid), for the permission checks the kernel
makes under default_permissions.
"""
import ctypes
import errno
import os
import shutil
import sys
import traceback

_cases = []
_libc = ctypes.CDLL(None, use_errno=True)

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
RENAME_WHITEOUT = 4

# uids/gids for the permission cases; they need no passwd entry.
USER_A = 4242
USER_B = 4243
GROUP_A = 4242
GROUP_B = 4243
GROUP_SHARED = 4250


class Failure(Exception):
    pass


def case(call, lamfs_only=False):
    """Register the decorated function as a case of system call `call`.
    lamfs_only: the case checks a lamfs choice (an unsupported operation's
    errno), not Linux's behaviour; skipped with --native."""
    def deco(fn):
        fn.lamfs_only = lamfs_only
        _cases.append((call, fn))
        return fn
    return deco


def ename(e):
    return errno.errorcode.get(e, str(e))


def outcome(fn, *args, **kw):
    """'OK' or the errno name fn raised."""
    try:
        fn(*args, **kw)
    except OSError as e:
        return ename(e.errno)
    return "OK"


def expect_errno(want, fn, *args, **kw):
    """fn(*args) must fail with errno `want` (a name such as 'ENOENT')."""
    got = outcome(fn, *args, **kw)
    if got != want:
        raise Failure(f"{_show(fn, args)}: expected {want}, got {got}")


def expect_ok(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except OSError as e:
        raise Failure(f"{_show(fn, args)}: expected success, got {ename(e.errno)}")


def check(cond, what):
    if not cond:
        raise Failure(what)


def eq(what, want, got):
    if want != got:
        raise Failure(f"{what}: expected {want!r}, got {got!r}")


def _show(fn, args):
    name = getattr(fn, "__name__", str(fn))
    shown = ", ".join(os.path.basename(a) if isinstance(a, str) and "/" in a else repr(a)
                      for a in args)
    return f"{name}({shown})"


# ---------------------------------------------------------------- helpers

def write_file(path, data, mode=0o644):
    if isinstance(data, str):
        data = data.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


def read_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def renameat2(old, new, flags):
    """renameat2(2) through libc; raises OSError like os.rename."""
    rc = _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new),
                         ctypes.c_uint(flags))
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old)


renameat2.__name__ = "renameat2"


def as_user(uid, gid, fn, *args, groups=()):
    """Run fn(*args) in a child with these ids: 'OK', an errno name, or
    'RESULT:<repr>' when fn returned something other than None."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            os.setgroups(list(groups))
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            got = fn(*args)
            res = "OK" if got is None else "RESULT:" + repr(got)
        except OSError as e:
            res = ename(e.errno)
        except BaseException as e:  # noqa: BLE001 — report, never escape the child
            res = "EXCEPTION:" + repr(e)
        os.write(w, res.encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def expect_user(want, uid, gid, fn, *args, groups=()):
    got = as_user(uid, gid, fn, *args, groups=groups)
    if got != want:
        raise Failure(f"{_show(fn, args)} as uid {uid}: expected {want}, got {got}")


# ------------------------------------------------------------------ main

def main(name):
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    keep = "--keep" in sys.argv
    native = "--native" in sys.argv
    only = os.environ.get("POSIX_ONLY")  # a case-name substring, for debugging
    if len(args) != 1:
        print(f"usage: {sys.argv[0]} MOUNTPOINT [--keep] [--native]", file=sys.stderr)
        sys.exit(2)
    mnt = args[0]
    base = os.path.join(mnt, f"posix-{name}-{os.getpid()}")
    os.mkdir(base)
    os.chmod(base, 0o777)
    os.umask(0o022)
    results = {}
    order = []
    failed = 0
    for i, (call, fn) in enumerate(_cases):
        if only and only not in fn.__name__:
            continue
        if native and fn.lamfs_only:
            continue
        if call not in results:
            results[call] = [0, 0]
            order.append(call)
        d = os.path.join(base, f"c{i:02d}")
        os.mkdir(d)
        os.chmod(d, 0o777)
        results[call][0] += 1
        label = fn.__name__.replace("_", " ")
        try:
            fn(d)
        except Failure as e:
            failed += 1
            print(f"FAIL {call}: {label}: {e}")
        except Exception:  # noqa: BLE001 — a broken case is a failed case
            failed += 1
            print(f"FAIL {call}: {label}: unexpected exception:")
            traceback.print_exc(file=sys.stdout)
        else:
            results[call][1] += 1
            print(f"ok {call}: {label}")
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    for call in order:
        print(f"RESULT {call} {results[call][0]} {results[call][1]}")
    sys.stdout.flush()
    sys.exit(1 if failed else 0)
