#!/usr/bin/env python3
"""savepty.py — run a command under a pseudo-terminal (stdout and stderr both
the terminal, as in an interactive shell), watch a folder's size meanwhile,
and optionally act when the output first shows a text.

  savepty.py OUTFILE WATCHDIR [--when TEXT --append FILE] -- CMD ARGS...

Writes everything the command printed (raw, with its \\r redraws) to OUTFILE;
prints "exit=N peak=BYTES acted=0|1" (peak: the largest total size of the
regular files under WATCHDIR seen, sampled every 20 ms).  --when/--append:
as soon as TEXT appears in the output, append a byte to FILE (a file that
changes while it is saved)."""
import os, pty, subprocess, sys, threading, time

args = sys.argv[1:]
out_path, watch = args[0], args[1]
when = append = None
i = 2
while args[i] != "--":
    if args[i] == "--when":
        when = args[i + 1].encode()
    elif args[i] == "--append":
        append = args[i + 1]
    i += 2
cmd = args[i + 1:]

peak = 0
done = False


def size_of(d):
    total = 0
    for root, _, files in os.walk(d):
        for f in files:
            try:
                st = os.lstat(os.path.join(root, f))
            except OSError:
                continue
            total += st.st_size
    return total


def watcher():
    global peak
    while not done:
        peak = max(peak, size_of(watch))
        time.sleep(0.02)


master, slave = pty.openpty()
p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
os.close(slave)
t = threading.Thread(target=watcher)
t.start()
buf = b""
acted = 0
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:
        break
    if not chunk:
        break
    buf += chunk
    if when and not acted and when in buf:
        with open(append, "ab") as f:
            f.write(b"x")
        acted = 1
rc = p.wait()
done = True
t.join()
open(out_path, "wb").write(buf)
print("exit=%d peak=%d acted=%d" % (rc, peak, acted))
