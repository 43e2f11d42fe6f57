#!/usr/bin/env python3
"""files.py — the many-files parts of lamfs's benchmark suite (bench/run.sh).

  files.py write DIR COUNT JOBS SIZE   COUNT files of SIZE unique random bytes,
                                       written by JOBS processes in parallel;
                                       prints the elapsed seconds
  files.py stat DIR TOTAL COUNT JOBS   stat COUNT of the TOTAL files a `write`
                                       with JOBS made in DIR, spread evenly;
                                       prints the elapsed seconds
  files.py names TOTAL JOBS            the names `write` uses, one a line

Every file is opened, written in one write(2) and closed: close() is where
lamfs (sync mode) and s3fs make the file durable.  Names are f<job>_<i>, so
the writers never collide and `stat` can name files without listing.
"""
import os
import sys
import time


def names(total, jobs):
    """The names job j writes: an even split of TOTAL among JOBS."""
    out = []
    for j in range(jobs):
        n = total // jobs + (1 if j < total % jobs else 0)
        out.append(["f%d_%06d" % (j, i) for i in range(n)])
    return out


def writer(d, mine, size):
    for name in mine:
        data = os.urandom(size)  # unique bytes: no store may deduplicate them
        fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            off = 0
            while off < len(data):
                off += os.write(fd, data[off:])
        finally:
            os.close(fd)


def cmd_write(d, total, jobs, size):
    plan = names(total, jobs)
    t0 = time.perf_counter()
    pids = []
    for mine in plan:
        pid = os.fork()
        if pid == 0:
            rc = 0
            try:
                writer(d, mine, size)
            except OSError as e:
                sys.stderr.write("files.py: %s\n" % e)
                rc = 1
            os._exit(rc)
        pids.append(pid)
    bad = 0
    for pid in pids:
        _, st = os.waitpid(pid, 0)
        if not os.WIFEXITED(st) or os.WEXITSTATUS(st) != 0:
            bad += 1
    t1 = time.perf_counter()
    if bad:
        sys.stderr.write("files.py: %d of %d writers failed\n" % (bad, jobs))
        return 1
    print("%.6f" % (t1 - t0))
    return 0


def cmd_stat(d, total, count, jobs):
    all_names = [n for mine in names(total, jobs) for n in mine]
    step = max(1, len(all_names) // max(1, count))
    pick = all_names[::step][:count]
    t0 = time.perf_counter()
    for n in pick:
        os.stat(os.path.join(d, n))
    t1 = time.perf_counter()
    print("%.6f" % (t1 - t0))
    return 0


def main(argv):
    if len(argv) >= 6 and argv[1] == "write":
        return cmd_write(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
    if len(argv) >= 6 and argv[1] == "stat":
        return cmd_stat(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
    if len(argv) >= 4 and argv[1] == "names":
        for mine in names(int(argv[2]), int(argv[3])):
            for n in mine:
                print(n)
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
