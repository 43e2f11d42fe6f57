#!/usr/bin/env python3
"""exerciser.py — a model-checked random exerciser for lamfs.

    python3 exerciser.py MOUNT_DIR REFERENCE_DIR [--seed N] [--ops N]
                         [--full-every N] [--avoid BUG,...] [-v]

Runs a long random mix of open (O_CREAT, O_EXCL, O_TRUNC, O_APPEND,
O_RDONLY/O_WRONLY/O_RDWR), write, pwrite, read, pread, lseek, ftruncate,
truncate, fsync, mmap(MAP_PRIVATE) reads, close, rename, unlink, mkdir,
rmdir and stat/listdir on a lamfs mount and, step for step, on a reference
directory on a native filesystem.  Every step's outcome (return value, bytes
or errno) must be the same on both sides, and after every step the names it
touched are compared (type, size, mode, whole content read by name); every
--full-every steps (default 200) and at the end the whole trees are.

What is modelled, because lamfs and a native filesystem legitimately differ:
  * lamfs saves a file at close (a reader sees the version it opened; a
    writer has a private copy).  So the exerciser never lets a reader and a
    writer, or two writers, have the same file open at once, and never
    truncates by name a file that has readers.
  * By name, a file with an open writer shows its last committed version
    under lamfs (close-to-open), the live bytes natively: such names are
    compared by existence only until the writer closes.  The writer itself
    is checked through lseek(SEEK_END) and, for O_RDWR, by reading through
    its descriptor.  (fstat of a writer is not compared: see the README's
    deviations.)
Everything else — errnos of bad renames, unlinks of open files, renames of
open files and of folders holding them — must simply match.

The seed is printed first; a divergence prints the step, both outcomes and
the last 40 steps, and exits 1.  Exit 0: all steps matched.
--avoid steers clear of known lamfs bugs (see the hardening report), to look
further than the first one:
  close-unwritten  write before closing a writer that wrote nothing, never
                truncate by name a file with an open writer (a create, an
                O_TRUNC or a truncate that no write followed is saved late,
                after close() returned, and can undo a later save)
  unlinked-fd   nothing but close on a descriptor whose file was unlinked or
                renamed over (lseek(SEEK_END)/ftruncate crash the daemon:
                libfuse passes a NULL path with hard_remove; a writer that
                had not written yet gets ENOENT from read and write)
  rename-unsaved  no rename of a folder over a folder in which a file is
                being written (lamfs renames instead of ENOTEMPTY)
  append-offset after an O_APPEND write, put both offsets at the end (the
                kernel's offset is off when a stat by name has set its idea
                of the size to the committed version's)
"""
import argparse
import errno
import mmap
import os
import random
import shutil
import stat
import sys
import time
from collections import deque

FILES = ["f0", "f1", "f2", "f3", "d0/f0", "d0/f1", "d1/f0", "d1/f1", "d0/e/f0", "d1/e/f0"]
DIRS = ["d0", "d1", "d0/e", "d1/e"]
MAX_OFF = 72 * 1024
MAX_WRITE = 6000


class Divergence(Exception):
    pass


def outcome(fn, *args):
    """('OK', value) or ('ERR', errno name) or ('EXC', exception class)."""
    try:
        return ("OK", fn(*args))
    except OSError as e:
        return ("ERR", errno.errorcode.get(e.errno, str(e.errno)))
    except (ValueError, OverflowError) as e:
        return ("EXC", type(e).__name__)


class Fd:
    def __init__(self, ident, kind, flags, name, fm, fr):
        self.ident = ident
        self.kind = kind              # "r" or "w"
        self.flags = flags
        self.name = name              # at open time (for the log)
        self.fm = fm
        self.fr = fr
        self.wrote = False            # any write/ftruncate through it

    @property
    def readable(self):
        return (self.flags & os.O_ACCMODE) in (os.O_RDONLY, os.O_RDWR)


class Exerciser:
    def __init__(self, mnt, ref, seed, full_every, avoid, verbose):
        self.m = mnt
        self.r = ref
        self.rnd = random.Random(seed)
        self.full_every = full_every
        self.no_trunc_only = "close-unwritten" in avoid
        self.no_unlinked_fd = "unlinked-fd" in avoid
        self.no_rename_unsaved = "rename-unsaved" in avoid
        self.no_append_offset = "append-offset" in avoid
        # lamfs opens files by name with direct I/O (README: limits): mmap of
        # such a file is refused; /.lamfs/uid/<uid> paths are mmap-able
        self.no_mmap = "mmap" in avoid
        self.verbose = verbose
        self.files = {}               # name -> identity
        self.dirs = set()
        self.next_ident = 1
        self.fds = []
        self.log = deque(maxlen=40)
        self.step = 0
        self.counts = {}

    # ------------------------------------------------------------- helpers

    def pm(self, name):
        return os.path.join(self.m, name)

    def pr(self, name):
        return os.path.join(self.r, name)

    def both(self, what, fn_m, fn_r):
        """Run on both sides; the outcomes must be equal; returns the outcome."""
        a = outcome(*fn_m)
        b = outcome(*fn_r)
        if a != b:
            raise Divergence(f"{what}: lamfs {a!r}, reference {b!r}")
        return a

    def note(self, s):
        self.log.append(f"{self.step}: {s}")
        if self.verbose:
            print(f"{self.step}: {s}", flush=True)

    def fds_of(self, ident):
        return [f for f in self.fds if f.ident == ident]

    def writer_open(self, ident):
        return any(f.kind == "w" for f in self.fds_of(ident))

    def parent_ok(self, name):
        parent = os.path.dirname(name)
        return parent == "" or parent in self.dirs

    def name_choices(self, pool):
        return sorted(set(pool) | set(self.files) | self.dirs)

    def pick_name(self):
        return self.rnd.choice(self.name_choices(FILES))

    # --------------------------------------------------------- comparisons

    def compare_name(self, name):
        """Type, size, mode and content of name, read by name on both sides."""
        sm = outcome(os.stat, self.pm(name))
        sr = outcome(os.stat, self.pr(name))
        if (sm[0], sr[0]) != ("OK", "OK"):
            if sm != sr:
                raise Divergence(f"stat {name}: lamfs {sm!r}, reference {sr!r}")
            return
        a, b = sm[1], sr[1]
        if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
            raise Divergence(f"type of {name}: lamfs {oct(a.st_mode)}, reference {oct(b.st_mode)}")
        if stat.S_ISDIR(a.st_mode):
            self.compare_listing(name)
            return
        ident = self.files.get(name)
        if ident is not None and self.writer_open(ident):
            return  # close-to-open: compared when the writer closes
        if stat.S_IMODE(a.st_mode) != stat.S_IMODE(b.st_mode):
            raise Divergence(f"mode of {name}: lamfs {oct(a.st_mode)}, reference {oct(b.st_mode)}")
        if a.st_size != b.st_size:
            raise Divergence(f"size of {name} by stat: lamfs {a.st_size}, reference {b.st_size}")
        cm = self.read_all(self.pm(name))
        cr = self.read_all(self.pr(name))
        if cm != cr:
            raise Divergence(f"content of {name}: {self.diff(cm, cr)}")
        if len(cm) != a.st_size:
            raise Divergence(f"{name}: stat says {a.st_size} bytes, read gave {len(cm)}")

    @staticmethod
    def read_all(path):
        try:
            with open(path, "rb", buffering=0) as f:
                return f.read()
        except OSError as e:
            return ("ERR", errno.errorcode.get(e.errno))

    @staticmethod
    def diff(a, b):
        if isinstance(a, tuple) or isinstance(b, tuple):
            return f"lamfs {a!r}, reference {b!r}"
        n = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        return (f"lamfs {len(a)} bytes, reference {len(b)} bytes, first difference at {n}: "
                f"lamfs {a[n:n + 16]!r}, reference {b[n:n + 16]!r}")

    def compare_listing(self, name):
        lm = outcome(os.listdir, self.pm(name))
        lr = outcome(os.listdir, self.pr(name))
        if lm[0] == "OK" and lr[0] == "OK":
            lm = ("OK", sorted(lm[1]))
            lr = ("OK", sorted(lr[1]))
        if lm != lr:
            raise Divergence(f"listing of '{name}': lamfs {lm!r}, reference {lr!r}")

    def compare_tree(self):
        self.compare_listing("")
        for d in sorted(self.dirs):
            self.compare_listing(d)
        for name in sorted(self.files):
            self.compare_name(name)

    # ------------------------------------------------------------------ ops

    def op_open(self):
        name = self.pick_name()
        rnd = self.rnd
        write = rnd.random() < 0.6
        flags = (rnd.choice([os.O_WRONLY, os.O_RDWR]) if write else os.O_RDONLY)
        if write:
            if rnd.random() < 0.7:
                flags |= os.O_CREAT
                if rnd.random() < 0.15:
                    flags |= os.O_EXCL
            if rnd.random() < 0.35:
                flags |= os.O_TRUNC
            if rnd.random() < 0.2:
                flags |= os.O_APPEND
        ident = self.files.get(name)
        if ident is not None:
            open_here = self.fds_of(ident)
            if write and open_here:
                return False      # one writer, and never beside readers
            if not write and any(f.kind == "w" for f in open_here):
                return False
        self.note(f"open {name} flags={flags:#o}")
        a = outcome(os.open, self.pm(name), flags, 0o644)
        b = outcome(os.open, self.pr(name), flags, 0o644)
        if (a[0], b[0]) == ("OK", "OK") and stat.S_ISDIR(os.fstat(b[1]).st_mode):
            # a folder opened for reading: nothing to exercise through it
            dm = stat.S_ISDIR(os.fstat(a[1]).st_mode)
            os.close(a[1])
            os.close(b[1])
            if not dm:
                raise Divergence(f"open {name}: a folder in the reference, not under lamfs")
            return True
        if (a[0], b[0]) == ("OK", "OK"):
            if ident is None:
                ident = self.next_ident
                self.next_ident += 1
                self.files[name] = ident
            self.fds.append(Fd(ident, "w" if write else "r", flags, name, a[1], b[1]))
            return True
        for x in (a, b):
            if x[0] == "OK":
                os.close(x[1])
        if a != b:
            raise Divergence(f"open {name} {flags:#o}: lamfs {a!r}, reference {b!r}")
        return True

    def pick_fd(self, kind=None, readable=False):
        c = [f for f in self.fds if (kind is None or f.kind == kind) and
             (not readable or f.readable) and
             (not self.no_unlinked_fd or self.named(f))]
        return self.rnd.choice(c) if c else None

    def op_write(self):
        f = self.pick_fd("w")
        if not f:
            return False
        rnd = self.rnd
        data = rnd.randbytes(rnd.randrange(0, MAX_WRITE))
        if rnd.random() < 0.5:
            off = rnd.randrange(0, MAX_OFF)
            self.note(f"pwrite fd({f.name}) {len(data)} bytes at {off}")
            self.both("pwrite", (os.pwrite, f.fm, data, off), (os.pwrite, f.fr, data, off))
        else:
            if rnd.random() < 0.4:
                off = rnd.randrange(0, MAX_OFF)
                self.both("lseek", (os.lseek, f.fm, off, os.SEEK_SET),
                          (os.lseek, f.fr, off, os.SEEK_SET))
            self.note(f"write fd({f.name}) {len(data)} bytes")
            self.both("write", (os.write, f.fm, data), (os.write, f.fr, data))
            if self.no_append_offset and f.flags & os.O_APPEND:
                os.lseek(f.fm, 0, os.SEEK_END)
                os.lseek(f.fr, 0, os.SEEK_END)
        f.wrote = True
        self.check_writer(f)
        return True

    def named(self, f):
        return f.ident in self.files.values()

    def check_writer(self, f):
        """The writer's own view: its size (lseek SEEK_END) and, if it can read, its bytes."""
        if self.no_unlinked_fd and not self.named(f):
            return
        cur_m = os.lseek(f.fm, 0, os.SEEK_CUR)
        cur_r = os.lseek(f.fr, 0, os.SEEK_CUR)
        end = self.both("lseek SEEK_END of the writer", (os.lseek, f.fm, 0, os.SEEK_END),
                        (os.lseek, f.fr, 0, os.SEEK_END))
        os.lseek(f.fm, cur_m, os.SEEK_SET)
        os.lseek(f.fr, cur_r, os.SEEK_SET)
        if cur_m != cur_r:
            raise Divergence(f"file offset of the writer: lamfs {cur_m}, reference {cur_r}")
        if f.readable and self.rnd.random() < 0.3:
            size = end[1]
            self.both("pread of the whole file through the writer",
                      (os.pread, f.fm, size + 10, 0), (os.pread, f.fr, size + 10, 0))

    def op_read(self):
        f = self.pick_fd(readable=True)
        if not f:
            return False
        rnd = self.rnd
        n = rnd.randrange(0, 3 * MAX_WRITE)
        if rnd.random() < 0.5:
            off = rnd.randrange(0, MAX_OFF + 1000)
            self.note(f"pread fd({f.name}) {n} at {off}")
            self.both("pread", (os.pread, f.fm, n, off), (os.pread, f.fr, n, off))
        else:
            if rnd.random() < 0.3:
                whence = rnd.choice([os.SEEK_SET, os.SEEK_END])
                if self.no_unlinked_fd and not self.named(f):
                    whence = os.SEEK_SET
                off = rnd.randrange(0, MAX_OFF) if whence == os.SEEK_SET else -rnd.randrange(0, 100)
                self.note(f"lseek fd({f.name}) {off} {whence}")
                self.both("lseek", (os.lseek, f.fm, off, whence), (os.lseek, f.fr, off, whence))
            self.note(f"read fd({f.name}) {n}")
            self.both("read", (os.read, f.fm, n), (os.read, f.fr, n))
        if f.kind == "r" and rnd.random() < 0.2:
            a, b = os.fstat(f.fm), os.fstat(f.fr)
            if a.st_size != b.st_size:
                raise Divergence(f"fstat size of a reader: lamfs {a.st_size}, reference {b.st_size}")
        return True

    def op_mmap(self):
        f = self.pick_fd("r")
        if not f:
            return False
        if self.no_mmap:
            return False
        self.note(f"mmap MAP_PRIVATE fd({f.name})")

        def mapped(fd):
            m = mmap.mmap(fd, 0, mmap.MAP_PRIVATE, mmap.PROT_READ)
            try:
                return m[:]
            finally:
                m.close()

        self.both("mmap MAP_PRIVATE read", (mapped, f.fm), (mapped, f.fr))
        return True

    def op_ftruncate(self):
        f = self.pick_fd("w")
        if not f or (self.no_unlinked_fd and not self.named(f)):
            return False
        size = self.rnd.randrange(0, MAX_OFF)
        self.note(f"ftruncate fd({f.name}) {size}")
        self.both("ftruncate", (os.ftruncate, f.fm, size), (os.ftruncate, f.fr, size))
        f.wrote = True
        self.check_writer(f)
        return True

    def op_truncate(self):
        name = self.pick_name()
        ident = self.files.get(name)
        if ident is not None and any(f.kind == "r" for f in self.fds_of(ident)):
            return False          # lamfs readers keep their version
        if ident is not None and self.no_trunc_only and self.writer_open(ident):
            return False          # lands on the writer's stage: the same known bug
        size = self.rnd.randrange(0, MAX_OFF)
        self.note(f"truncate {name} {size}")
        self.both("truncate", (os.truncate, self.pm(name), size), (os.truncate, self.pr(name), size))
        for f in self.fds_of(ident) if ident is not None else []:
            f.wrote = True
        self.compare_name(name)
        return True

    def op_fsync(self):
        f = self.pick_fd()
        if not f:
            return False
        self.note(f"fsync fd({f.name})")
        self.both("fsync", (os.fsync, f.fm), (os.fsync, f.fr))
        return True

    def op_close(self):
        c = self.fds
        if not c:
            return False
        f = self.rnd.choice(c)
        if self.no_trunc_only and f.kind == "w" and not f.wrote and self.named(f):
            data = self.rnd.randbytes(self.rnd.randrange(1, 100))
            self.note(f"write fd({f.name}) {len(data)} bytes (before closing, see --avoid)")
            self.both("write", (os.write, f.fm, data), (os.write, f.fr, data))
        self.note(f"close fd({f.name})")
        self.fds.remove(f)
        self.both("close", (os.close, f.fm), (os.close, f.fr))
        for name, ident in list(self.files.items()):
            if ident == f.ident:
                self.compare_name(name)
        return True

    def forget_under(self, name):
        for n in [n for n in self.files if n.startswith(name + "/")]:
            del self.files[n]
        self.dirs = {d for d in self.dirs if not d.startswith(name + "/")}

    def op_rename(self):
        rnd = self.rnd
        if rnd.random() < 0.75:
            src = self.pick_name()
            dst = self.pick_name() if rnd.random() < 0.8 else rnd.choice(self.name_choices(DIRS))
        else:
            src = rnd.choice(self.name_choices(DIRS))
            dst = rnd.choice(self.name_choices(DIRS + FILES))
        if self.no_rename_unsaved and src in self.dirs and dst in self.dirs and any(
                n.startswith(dst + "/") and self.writer_open(i) for n, i in self.files.items()):
            return False
        self.note(f"rename {src} -> {dst}")
        res = self.both("rename", (os.rename, self.pm(src), self.pm(dst)),
                        (os.rename, self.pr(src), self.pr(dst)))
        if res[0] == "OK" and src != dst:
            if src in self.files:
                self.forget_under(dst)
                self.dirs.discard(dst)
                self.files[dst] = self.files.pop(src)
            elif src in self.dirs:
                moved = {dst + n[len(src):]: i for n, i in self.files.items()
                         if n.startswith(src + "/")}
                moved_dirs = {dst + d[len(src):] for d in self.dirs if d.startswith(src + "/")}
                self.forget_under(src)
                self.dirs.discard(src)
                self.files.pop(dst, None)
                self.forget_under(dst)
                self.dirs.add(dst)
                self.dirs |= moved_dirs
                self.files.update(moved)
        self.compare_name(src)
        self.compare_name(dst)
        return True

    def op_unlink(self):
        name = self.pick_name()
        self.note(f"unlink {name}")
        res = self.both("unlink", (os.unlink, self.pm(name)), (os.unlink, self.pr(name)))
        if res[0] == "OK":
            self.files.pop(name, None)
        self.compare_name(name)
        return True

    def op_mkdir(self):
        name = self.rnd.choice(self.name_choices(DIRS))
        self.note(f"mkdir {name}")
        res = self.both("mkdir", (os.mkdir, self.pm(name), 0o755), (os.mkdir, self.pr(name), 0o755))
        if res[0] == "OK":
            self.dirs.add(name)
        self.compare_name(name)
        return True

    def op_rmdir(self):
        name = self.rnd.choice(self.name_choices(DIRS))
        self.note(f"rmdir {name}")
        res = self.both("rmdir", (os.rmdir, self.pm(name)), (os.rmdir, self.pr(name)))
        if res[0] == "OK":
            self.dirs.discard(name)
        self.compare_name(name)
        return True

    def op_stat(self):
        name = self.pick_name()
        self.note(f"stat {name}")
        self.compare_name(name)
        parent = os.path.dirname(name)
        if parent == "" or parent in self.dirs:
            self.compare_listing(parent)
        return True

    OPS = [
        ("open", 16), ("write", 30), ("read", 16), ("mmap", 2), ("ftruncate", 3),
        ("truncate", 2), ("fsync", 2), ("close", 8), ("rename", 5), ("unlink", 3),
        ("mkdir", 1), ("rmdir", 1), ("stat", 3),
    ]

    def run(self, nops):
        names = [n for n, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        for d in ("d0", "d1"):
            os.mkdir(self.pm(d))
            os.mkdir(self.pr(d))
            self.dirs.add(d)
        while self.step < nops:
            # keep the number of open descriptors bounded
            op = "close" if len(self.fds) > 8 else self.rnd.choices(names, weights)[0]
            if getattr(self, "op_" + op)():
                self.counts[op] = self.counts.get(op, 0) + 1
                self.step += 1
                if self.full_every and self.step % self.full_every == 0:
                    self.compare_tree()
        while self.fds:
            self.step += 1
            self.op_close()
        self.compare_tree()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mount_dir")
    ap.add_argument("reference_dir")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--ops", type=int, default=10000)
    ap.add_argument("--full-every", type=int, default=200)
    ap.add_argument("--avoid", default="", help="known bugs to steer clear of: "
                    "close-unwritten, unlinked-fd, rename-unsaved, append-offset (comma-separated)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 32)
    print(f"exerciser: seed {seed}, {a.ops} operations", flush=True)
    m = os.path.join(a.mount_dir, f"exerciser-{seed}")
    r = os.path.join(a.reference_dir, f"exerciser-{seed}")
    for d in (m, r):
        if os.path.lexists(d):
            shutil.rmtree(d)
        os.mkdir(d)
    old = os.umask(0o022)
    avoid = {x for x in a.avoid.split(",") if x}
    unknown = avoid - {"close-unwritten", "unlinked-fd", "rename-unsaved", "append-offset",
                       "mmap"}
    if unknown:
        ap.error(f"--avoid: unknown {sorted(unknown)}")
    ex = Exerciser(m, r, seed, a.full_every, avoid, a.verbose)
    t0 = time.monotonic()
    try:
        ex.run(a.ops)
    except Divergence as e:
        print(f"DIVERGENCE at step {ex.step} (seed {seed}): {e}")
        print("last steps:")
        for line in ex.log:
            print("  " + line)
        print(f"reproduce: python3 {sys.argv[0]} MOUNT REF --seed {seed} --ops {ex.step + 1}"
              + (f" --avoid {a.avoid}" if a.avoid else ""))
        for f in ex.fds:
            for fd in (f.fm, f.fr):
                try:
                    os.close(fd)
                except OSError:
                    pass
        return 1
    finally:
        os.umask(old)
    secs = time.monotonic() - t0
    print(f"exerciser: seed {seed}: {ex.step} operations matched in {secs:.1f}s "
          f"({ex.step / max(secs, 1e-9):.0f}/s); "
          + ", ".join(f"{k} {v}" for k, v in sorted(ex.counts.items())))
    shutil.rmtree(m, ignore_errors=True)
    shutil.rmtree(r, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
