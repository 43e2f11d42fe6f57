#!/usr/bin/env python3
"""report.py RESULTS_DIR — tables, ratios, the issue's targets and a chart
from RESULTS_DIR/raw.csv (written by bench/run.sh).

Writes summary.csv, table.txt, table.md, targets.txt, chart.dat, chart.gp and
chart.png (if gnuplot is installed) into RESULTS_DIR; prints table.txt and
targets.txt.

Ratios are speeds relative to the reference target (BENCH_REF, native by
default): above 1 is faster than the reference, below 1 slower.  For rates
(MB/s, IOPS, files/s) that is target / reference; for times (s) reference /
target.
"""
import csv
import os
import shutil
import statistics
import subprocess
import sys

ORDER_T = ["native", "lamfs-local", "lamfs-local-wb", "rclone-local",
           "lamfs-s3", "s3fs", "rclone-s3", "http-s3"]
ORDER_W = ["seqwrite_fio", "seqwrite_cp", "seqread", "randread",
           "smallfiles_1", "smallfiles_4", "ls_l", "stat", "rename"]
# the workloads the http-s3 reference row runs (bench/run.sh HTTP_WORKLOADS)
HTTP_WORKLOADS = ["seqwrite_cp", "seqread", "smallfiles_1", "smallfiles_4"]
ORDER_M = ["durable_MBps", "close_MBps", "MBps", "iops",
           "durable_files_per_s", "close_files_per_s", "seconds", "rss_MiB"]
# the figure of each workload that goes into the chart
PRIMARY = {"seqwrite_fio": "durable_MBps", "seqwrite_cp": "durable_MBps",
           "seqread": "MBps", "randread": "iops",
           "smallfiles_1": "durable_files_per_s", "smallfiles_4": "durable_files_per_s",
           "ls_l": "seconds", "stat": "seconds", "rename": "seconds"}


def params(d):
    p = {}
    try:
        with open(os.path.join(d, "params.env")) as f:
            for ln in f:
                if "=" in ln:
                    k, v = ln.rstrip("\n").split("=", 1)
                    p[k] = v.strip('"')
    except OSError:
        pass
    return p


def labels(p):
    g = lambda k, dflt="?": p.get(k, dflt)
    return {
        "seqwrite_fio": "seq write %s MiB (fio bs=1M, end_fsync)" % g("SEQ_MB"),
        "seqwrite_cp": "seq write %s MiB (cp)" % g("SEQ_MB"),
        "seqread": "cold seq read %s MiB (dd bs=1M)" % g("SEQ_MB"),
        "randread": "cold rand read 4 KiB in %s MiB (fio, %ss)" % (g("SEQ_MB"), g("RR_SECONDS")),
        "smallfiles_1": "%s files x 4 KiB, 1 writer" % g("SMALL_N"),
        "smallfiles_4": "%s files x 4 KiB, 4 writers" % g("SMALL_N"),
        "ls_l": "ls -l of %s files (cold)" % g("LS_N"),
        "stat": "stat of %s of them (cold)" % g("STAT_N"),
        "rename": "mv of a folder of %s files" % g("REN_N"),
    }


def short_labels(p):
    g = lambda k: p.get(k, "?")
    return {
        "seqwrite_fio": "write fio", "seqwrite_cp": "write cp", "seqread": "seq read",
        "randread": "rand read", "smallfiles_1": "%s files 1w" % g("SMALL_N"),
        "smallfiles_4": "%s files 4w" % g("SMALL_N"), "ls_l": "ls -l %s" % g("LS_N"),
        "stat": "stat %s" % g("STAT_N"), "rename": "mv %s" % g("REN_N"),
    }


def metric_label(m):
    return {"durable_MBps": "durable", "close_MBps": "at close", "MBps": "",
            "iops": "", "durable_files_per_s": "durable", "close_files_per_s": "at close",
            "seconds": "", "rss_MiB": "daemon peak RSS"}.get(m, m)


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return "%.0f" % v
    if a >= 100:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    if a >= 0.01:
        return "%.3f" % v
    return "%.2g" % v


def fmt_ratio(r):
    if r is None:
        return "-"
    if r >= 10:
        return "%.0fx" % r
    if r >= 0.1:
        return "%.2fx" % r
    return "%.3fx" % r


def main():
    d = sys.argv[1]
    p = params(d)
    ref = p.get("BENCH_REF", "native")
    rows = []
    with open(os.path.join(d, "raw.csv")) as f:
        for r in csv.DictReader(f):
            rows.append(r)

    data = {}     # (w, m) -> target -> [values]
    notes = {}    # (w, m, t) -> set of notes
    units, better = {}, {}
    failures = []
    for r in rows:
        w, m, t = r["workload"], r["metric"], r["target"]
        if m == "error":
            failures.append("%s round %s on %s: %s" % (w, r["round"], t, r["note"]))
            continue
        units[(w, m)] = r["unit"]
        better[(w, m)] = r["better"]
        data.setdefault((w, m), {}).setdefault(t, [])
        if r["value"] not in ("", "NA"):
            data[(w, m)][t].append(float(r["value"]))
        if r["note"]:
            notes.setdefault((w, m, t), set()).add(r["note"])

    targets = [t for t in ORDER_T if any(t in v for v in data.values())]
    targets += sorted({t for v in data.values() for t in v} - set(targets))
    keys = sorted(data, key=lambda k: (ORDER_W.index(k[0]) if k[0] in ORDER_W else 99,
                                       ORDER_M.index(k[1]) if k[1] in ORDER_M else 99))
    stats = {}
    for k in keys:
        for t, vals in data[k].items():
            if not vals:
                continue
            med = statistics.median(vals)
            stats[(k, t)] = (med, min(vals), max(vals), len(vals))

    def rel(k, t, other):
        """speed of t relative to other (>1: t is faster)"""
        if (k, t) not in stats or (k, other) not in stats:
            return None
        v, ov = stats[(k, t)][0], stats[(k, other)][0]
        if v <= 0 or ov <= 0:
            return None
        return v / ov if better[k] == "higher" else ov / v

    def ratio(k, t):
        if k[1] == "rss_MiB" or (k, t) not in stats or (k, ref) not in stats:
            return None
        v, rv = stats[(k, t)][0], stats[(k, ref)][0]
        if v <= 0 or rv <= 0:
            return None
        return v / rv if better[k] == "higher" else rv / v

    # summary.csv
    with open(os.path.join(d, "summary.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["workload", "metric", "unit", "better", "target", "median", "min",
                     "max", "n", "speed_ratio_to_" + ref, "notes"])
        for k in keys:
            for t in targets:
                if (k, t) not in stats:
                    continue
                med, lo, hi, n = stats[(k, t)]
                rr = ratio(k, t)
                wr.writerow([k[0], k[1], units[k], better[k], t, "%.6g" % med, "%.6g" % lo,
                             "%.6g" % hi, n, "" if rr is None else "%.4f" % rr,
                             "; ".join(sorted(notes.get((k[0], k[1], t), ())))])

    lab = labels(p)

    def row_label(k):
        ml = metric_label(k[1])
        return lab.get(k[0], k[0]) + (", " + ml if ml else "")

    def cell(k, t):
        if (k, t) not in stats:
            return "-"
        med, lo, hi, n = stats[(k, t)]
        s = fmt(med)
        if n > 1 and med:
            s += " ±%.0f%%" % (100.0 * (hi - lo) / 2 / abs(med))
        if any(nt.startswith("NOT durable") for nt in notes.get((k[0], k[1], t), ())):
            s += " !"
        return s

    # table.txt
    out = []
    out.append("lamfs benchmark — scale %s, %s rounds, medians ±half the min-max spread; "
               "PRELIMINARY if the machine was shared" % (p.get("BENCH_SCALE", "?"), p.get("BENCH_ROUNDS", "?")))
    out.append("")
    w0 = max([len(row_label(k)) + len(units[k]) + 3 for k in keys] + [10])
    cw = max([len(t) for t in targets] + [14]) + 1
    head = "%-*s" % (w0, "absolute figures") + "".join("%*s" % (cw, t) for t in targets)
    out.append(head)
    out.append("-" * len(head))
    for k in keys:
        out.append("%-*s" % (w0, "%s [%s]" % (row_label(k), units[k])) +
                   "".join("%*s" % (cw, cell(k, t)) for t in targets))
    out.append("")
    head = "%-*s" % (w0, "speed relative to %s (>1 faster)" % ref) + "".join("%*s" % (cw, t) for t in targets)
    out.append(head)
    out.append("-" * len(head))
    for k in keys:
        if k[1] == "rss_MiB":
            continue
        out.append("%-*s" % (w0, row_label(k)) +
                   "".join("%*s" % (cw, fmt_ratio(ratio(k, t))) for t in targets))
    out.append("")
    out.append("durable: until the bytes are in the backend (see bench/README.md); "
               "'!' marks a target that was NOT durable when close() returned")
    note_lines = []
    for (w, m, t), ns in sorted(notes.items()):
        for nt in sorted(ns):
            note_lines.append("  %s %s on %s: %s" % (w, m, t, nt))
    if note_lines:
        out.append("notes:")
        out.extend(note_lines[:40])
    # lamfs on S3 against its peers and against the limit (issue 16)
    s3k = [k for k in keys if k[1] != "rss_MiB" and k[0] in HTTP_WORKLOADS
           and (k, "lamfs-s3") in stats]
    peers = [t for t in ("s3fs", "rclone-s3", "http-s3") if any((k, t) in stats for k in s3k)]
    if s3k and peers:
        out.append("")
        head = "%-*s" % (w0, "lamfs-s3 relative to (>1 faster)") + "".join("%*s" % (cw, t) for t in peers)
        out.append(head)
        out.append("-" * len(head))
        for k in s3k:
            out.append("%-*s" % (w0, row_label(k)) +
                       "".join("%*s" % (cw, fmt_ratio(rel(k, "lamfs-s3", t))) for t in peers))
        out.append("http-s3: no file system, the same bytes with plain curl requests, "
                   "%s in flight (the limit)" % p.get("HTTP_JOBS", "?"))
    if failures:
        out.append("failed measurements:")
        out.extend("  " + x for x in failures)
    table = "\n".join(out) + "\n"
    with open(os.path.join(d, "table.txt"), "w") as f:
        f.write(table)

    # table.md
    md = ["| workload | unit | " + " | ".join(targets) + " |",
          "|---|---|" + "---:|" * len(targets)]
    for k in keys:
        cells = []
        for t in targets:
            c = cell(k, t)
            rr = ratio(k, t)
            if rr is not None and t != ref:
                c += " (%s)" % fmt_ratio(rr)
            cells.append(c)
        md.append("| %s | %s | %s |" % (row_label(k), units[k], " | ".join(cells)))
    md.append("")
    md.append("Median of %s rounds ± half the min–max spread; in parentheses the speed "
              "relative to %s (>1 is faster)." % (p.get("BENCH_ROUNDS", "?"), ref))
    with open(os.path.join(d, "table.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    # the targets
    def med(w, m, t):
        s = stats.get(((w, m), t))
        return None if s is None else s[0]

    chk = []

    def check(desc, ok, detail):
        if ok is None:
            chk.append("  n/a   %s (%s)" % (desc, detail))
        else:
            chk.append("  %s  %s: %s" % ("MET " if ok else "MISS", desc, detail))

    def vs(desc, w, m, t, other, factor, higher=True):
        a, b = med(w, m, t), med(w, m, other)
        if a is None or b is None:
            check(desc, None, "not measured")
            return
        r = a / b if higher else b / a
        check(desc, r >= factor, "%s %s vs %s %s = %.2fx (need %.2gx)" % (
            t, fmt(a), other, fmt(b), r, factor))

    def absolute(desc, w, m, t, limit, higher):
        a = med(w, m, t)
        if a is None:
            check(desc, None, "not measured")
            return
        ok = a >= limit if higher else a <= limit
        check(desc, ok, "%s %s (need %s %s)" % (fmt(a), units.get((w, m), ""),
                                              ">=" if higher else "<=", fmt(limit)))

    scale = float(p.get("BENCH_SCALE", "1"))
    ls_n = int(p.get("LS_N", "100000"))
    ren_n = int(p.get("REN_N", "10000"))
    vs("local sync: seq write (fio, durable) >= 0.8x native", "seqwrite_fio", "durable_MBps", "lamfs-local", "native", 0.8)
    vs("local sync: seq write (cp, durable) >= 0.8x native", "seqwrite_cp", "durable_MBps", "lamfs-local", "native", 0.8)
    vs("local sync: cold seq read >= 0.9x native", "seqread", "MBps", "lamfs-local", "native", 0.9)
    if ls_n == 100000:
        absolute("local sync: ls -l of 100000 files <= 1 s", "ls_l", "seconds", "lamfs-local", 1.0, False)
    else:
        check("local sync: ls -l of 100000 files <= 1 s", None,
              "measured %s files: %s s; the limit applies at scale 1" % (ls_n, fmt(med("ls_l", "seconds", "lamfs-local"))))
    vs("local sync: ls -l <= 3x native's time", "ls_l", "seconds", "lamfs-local", "native", 1 / 3.0, higher=False)
    if ren_n == 10000:
        absolute("local sync: rename of a folder of 10000 files <= 50 ms", "rename", "seconds", "lamfs-local", 0.05, False)
    else:
        check("local sync: rename of a folder of 10000 files <= 50 ms", None,
              "measured %s files: %s s; the limit applies at scale 1" % (ren_n, fmt(med("rename", "seconds", "lamfs-local"))))
    absolute("local sync: small files, 4 writers, durable >= 2000 files/s", "smallfiles_4",
             "durable_files_per_s", "lamfs-local", 2000, True)
    absolute("local write-back: small files, 4 writers, at close >= 5000 files/s", "smallfiles_4",
             "close_files_per_s", "lamfs-local-wb", 5000, True)
    absolute("local write-back: small files, 4 writers, durable >= 5000 files/s", "smallfiles_4",
             "durable_files_per_s", "lamfs-local-wb", 5000, True)
    for peer, f in (("s3fs", 2.0), ("rclone-s3", 1.0)):
        vs("S3: durable seq write (fio) >= %gx %s" % (f, peer), "seqwrite_fio", "durable_MBps", "lamfs-s3", peer, f)
        vs("S3: durable seq write (cp) >= %gx %s" % (f, peer), "seqwrite_cp", "durable_MBps", "lamfs-s3", peer, f)
        vs("S3: cold seq read >= %gx %s" % (f, peer), "seqread", "MBps", "lamfs-s3", peer, f)
    # issue 16: 2x s3fs, or 0.8x the plain-HTTP row where that is lower
    for desc, w, m in (("durable seq write (cp)", "seqwrite_cp", "durable_MBps"),
                       ("cold seq read", "seqread", "MBps")):
        a, b, h = med(w, m, "lamfs-s3"), med(w, m, "s3fs"), med(w, m, "http-s3")
        d16 = "S3 (issue 16): %s >= min(2x s3fs, 0.8x http-s3)" % desc
        if a is None or (b is None and h is None):
            check(d16, None, "not measured")
            continue
        need = min(x for x in (None if b is None else 2 * b, None if h is None else 0.8 * h)
                   if x is not None)
        check(d16, a >= need, "lamfs-s3 %s, s3fs %s, http-s3 %s MB/s: need %s" % (
            fmt(a), fmt(b), fmt(h), fmt(need)))
    vs("S3: small files (4 writers, durable) >= 10x s3fs", "smallfiles_4", "durable_files_per_s", "lamfs-s3", "s3fs", 10)
    for t in ("lamfs-local", "lamfs-local-wb", "lamfs-s3"):
        peak = [med(w, "rss_MiB", t) for w in ("seqwrite_fio", "seqwrite_cp", "seqread", "smallfiles_1", "smallfiles_4")]
        peak = [x for x in peak if x is not None]
        if peak:
            check("%s: daemon peak RSS <= 64 MiB (during a %s MiB write or read; issue 6 asks for 10 GiB)"
                  % (t, p.get("SEQ_MB", "?")), max(peak) <= 64, "%.1f MiB" % max(peak))
    targets_txt = "targets of issues 6 and 16 (scale %s)\n" % scale + "\n".join(chk) + "\n"
    with open(os.path.join(d, "targets.txt"), "w") as f:
        f.write(targets_txt)

    # chart
    prim = [k for k in keys if PRIMARY.get(k[0]) == k[1]]
    sl = short_labels(p)
    rss_keys = [k for k in keys if k[1] == "rss_MiB"]
    with open(os.path.join(d, "chart.dat"), "w") as f:
        f.write("# workload " + " ".join(targets) + "\n")
        for k in prim:
            vals = []
            for t in targets:
                rr = ratio(k, t)
                vals.append("NA" if rr is None else "%.5g" % rr)
            f.write('"%s" %s\n' % (sl.get(k[0], k[0]), " ".join(vals)))
    with open(os.path.join(d, "rss.dat"), "w") as f:
        f.write("# workload " + " ".join(targets) + "\n")
        for k in rss_keys:
            vals = []
            for t in targets:
                s = stats.get((k, t))
                vals.append("NA" if s is None else "%.5g" % s[0])
            f.write('"%s" %s\n' % (sl.get(k[0], k[0]), " ".join(vals)))
    ncol = len(targets)
    rmin = [ratio(k, t) for k in prim for t in targets]
    rmin = [x for x in rmin if x]
    ylo = 10 ** (__import__("math").floor(__import__("math").log10(min(rmin + [1.0]) / 1.5)))
    title = "lamfs benchmark (scale %s, %s rounds, median) — speed relative to %s, log scale" % (
        p.get("BENCH_SCALE", "?"), p.get("BENCH_ROUNDS", "?"), ref)
    gp = """set terminal pngcairo size 1500,1000 font "sans,10"
set output "chart.png"
set datafile missing "NA"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside right top vertical
set grid ytics
set multiplot layout 2,1
set size 1,0.62
set origin 0,0.38
set title "%s"
set logscale y
set yrange [%g:*]
set ytics format "%%gx"
set xtics rotate by -20
plot for [i=2:%d] "chart.dat" using i:xtic(1) title columnhead(i)
unset logscale y
set yrange [0:*]
set ytics format "%%g"
set size 1,0.38
set origin 0,0
set title "daemon peak RSS (MiB; the issue's limit: 64 MiB)"
plot for [i=2:%d] "rss.dat" using i:xtic(1) title columnhead(i), 64 with lines lw 2 dt 2 lc rgb "red" title "64 MiB"
unset multiplot
""" % (title, ylo, ncol + 1, ncol + 1)
    with open(os.path.join(d, "chart.gp"), "w") as f:
        f.write(gp)
    # column heads for columnhead(): a header line without the leading '#'
    for name in ("chart.dat", "rss.dat"):
        path = os.path.join(d, name)
        with open(path) as f:
            lines = f.read().splitlines()
        lines[0] = "workload " + " ".join('"%s"' % t for t in targets)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    if shutil.which("gnuplot") and prim:
        r = subprocess.run(["gnuplot", "chart.gp"], cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            # no cairo: fall back to libgd's png
            gp2 = gp.replace('set terminal pngcairo size 1500,1000 font "sans,10"', "set terminal png size 1500,1000")
            with open(os.path.join(d, "chart.gp"), "w") as f:
                f.write(gp2)
            r = subprocess.run(["gnuplot", "chart.gp"], cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write("report.py: gnuplot failed: %s\n" % r.stderr)

    sys.stdout.write(table)
    sys.stdout.write("\n" + targets_txt)
    sys.stdout.write("\nresults in %s (raw.csv, summary.csv, table.md, chart.png, machine.txt)\n" % d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
