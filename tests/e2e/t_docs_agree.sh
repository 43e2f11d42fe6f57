#!/usr/bin/env bash
# t_docs_agree.sh — README, --help and the man pages list the same options
# for every command.  For each command the option set is read from
#  - `lamfs CMD --help` (lamfs-repair --help, mount.lamfs --help): its usage
#    line and its option lines ("  -k, --key KEY ..."),
#  - `lamfs --help` (the overview's line for CMD),
#  - the man page's SYNOPSIS (lamfs.1, lamfs-repair.1, mount.lamfs.8),
#  - the README's command block (between "commands: begin" and "end"),
# short and long forms of one option counted as one, --help left out; the
# sets must be equal.  Also: every LAMFS_* variable the programs read (but
# the fault-injection ones, for tests) is documented in lamfs(1), which the
# README sends its readers to.
# timeout: 60
. "$(dirname "$0")/lib.sh"
e2e_begin

BIN=$(dirname "$LAMFS_BIN")
for c in init mount ls info versions save cat get status backup; do
	"$LAMFS_BIN" "$c" --help >"$WORK/help.$c"
done
"$LAMFS_BIN" --help >"$WORK/help.overview"
"$BIN/lamfs-repair" --help >"$WORK/help.lamfs-repair"
"$BIN/mount.lamfs" --help >"$WORK/help.mount.lamfs"

out=$(python3 - "$REPO" "$WORK" <<'PY'
import re, sys
repo, work = sys.argv[1], sys.argv[2]
cmds = ["init", "mount", "ls", "info", "versions", "save", "cat", "get", "status", "backup",
        "lamfs-repair", "mount.lamfs"]
OPT = re.compile(r"(?<![\w/-])(--[a-z][a-z-]*|-[a-zA-Z]+)(?![\w-])")
bad = []

def tokens(text):
    out = []
    for t in OPT.findall(text):
        if t.startswith("--"):
            out.append(t)
        else:
            out.extend("-" + ch for ch in t[1:])    # [-sfnv]
    return out

pairs = {}      # short -> long, from every help text
helps = {}
for c in cmds:
    name = c if "." in c or "-" in c else c
    text = open("%s/help.%s" % (work, c)).read()
    lines = text.splitlines()
    defs = set()
    for l in lines:
        m = re.match(r"^\s+(-[a-zA-Z])(?:, (--[a-z][a-z-]*))?(?:\s|$)", l)
        if m:
            defs.add(m.group(1))
            if m.group(2):
                pairs[m.group(1)] = m.group(2)
                defs.add(m.group(2))
            continue
        m = re.match(r"^\s+(--[a-z][a-z-]*)(?:\s|$)", l)
        if m:
            defs.add(m.group(1))
    usage = " ".join(l for l in lines if l.startswith("usage:") or
                     (lines.index(l) < 3 and l.startswith("   ")))
    helps[c] = (defs, set(tokens(usage)))

def canon(s):
    return {pairs.get(t, t) for t in s} - {"--help", "-h"}

def man_synopsis(page, head):
    t = open("%s/man/%s" % (repo, page)).read()
    syn = t.split(".SH SYNOPSIS", 1)[1].split(".SH ", 1)[0].replace("\\-", "-")
    blocks = syn.split(".br")
    for b in blocks:
        words = re.sub(r"\\f[BIRP]", "", b).split()
        # ".B lamfs ls" / ".B lamfs-repair"
        flat = " ".join(w for w in words if not w.startswith("."))
        if flat.startswith(head + " ") or flat == head:
            return set(tokens(flat[len(head):]))
    return None

readme = open("%s/README.md" % repo).read()
block = readme.split("<!-- commands: begin -->", 1)[1].split("<!-- commands: end -->", 1)[0]
overview = open("%s/help.overview" % work).read()

for c in cmds:
    defs, usage = helps[c]
    want = canon(defs)
    if c == "lamfs-repair":
        head, page = "lamfs-repair", "lamfs-repair.1"
    elif c == "mount.lamfs":
        head, page = "mount.lamfs", "mount.lamfs.8"
    else:
        head, page = "lamfs " + c, "lamfs.1"
    sources = {"usage line of --help": canon(usage)}
    ms = man_synopsis(page, head)
    if ms is None:
        bad.append("%s: not in the SYNOPSIS of man/%s" % (c, page))
    else:
        sources["man/%s SYNOPSIS" % page] = canon(ms)
    rl = [l for l in block.splitlines() if l == head or l.startswith(head + " ")]
    if len(rl) != 1:
        bad.append("%s: %d lines in the README's command block" % (c, len(rl)))
    else:
        sources["README"] = canon(tokens(rl[0][len(head):]))
    if head.startswith("lamfs "):
        # "  CMD ARGS..." and its continuation lines ("      [--more ...]")
        ol, on = [], False
        for l in overview.splitlines():
            if l.startswith("  " + c + " "):
                ol.append(l[len(c) + 2:])
                on = True
            elif on and l.strip().startswith("["):
                ol[-1] += " " + l.strip()
            else:
                on = False
        if len(ol) != 1:
            bad.append("%s: not in `lamfs --help`" % c)
        else:
            sources["lamfs --help"] = canon(tokens(ol[0]))
    for where, got in sources.items():
        if got != want:
            bad.append("%s: %s lists %s, --help defines %s" %
                       (c, where, sorted(got), sorted(want)))
print("\n".join(bad))
PY
)
[[ -z "$out" ]] || fail "the docs disagree:
$out"

log "every LAMFS_* variable the programs read is in man lamfs"
vars=$(grep -rhoE '"LAMFS_[A-Z0-9_]+"' "$REPO"/core "$REPO"/fs "$REPO"/backend "$REPO"/meta "$REPO"/tools \
	--include='*.c' | tr -d '"' | grep -v '^LAMFS_FAULT' | sort -u)
[[ -n "$vars" ]] || fail "found no LAMFS_* variables in the sources"
for v in $vars; do
	grep -q "$v" "$REPO/man/lamfs.1" || fail "$v is read by lamfs but not documented in man/lamfs.1"
done
grep -q 'LAMFS_WB_\*` settings in\s*$\|`LAMFS_WB_\*`' "$REPO/README.md" &&
	grep -q 'LAMFS_WB_WORKERS' "$REPO/man/lamfs.1" || fail "README points to LAMFS_WB_* in man lamfs, which lacks them"
e2e_pass
