#!/usr/bin/env python3
"""The audit core's other performance bars, measured side by side.

Usage:
    bench/bars.py [--rounds 5] [--reference OLD_DARLINGS] [--work DIR]

Builds the release binary, then measures (median of --rounds, peak RSS from
GNU time) against the targets the project tracks:

1. deep: a chain 4,000 directories deep with 250-byte names and one file
   at the bottom (a tree any local user can build). `audit --baseline` of
   it against an empty blank tree, and the plain walk of it.
   Targets: --baseline peak RSS <= 64 MiB, time <= 2x the walk.
2. rules: 100,000 keep rules (a manifest, each a distinct path) loaded for
   an audit of an empty root. Target: <= 1 s.
3. diff: a saved `zfs diff -FHt` of 2,000,000 lines (a lived-in root against
   an empty blank snapshot) audited offline, end to end, JSON to /dev/null.
   Target: >= 2M lines/s for parse + classify (the criterion bench
   `cargo bench --bench zfs_diff` measures those two alone; this is the
   whole command, reading and rendering included).

With --reference, an older darlings binary runs every case in the same
rounds (rotating order), and the ratio new / old is printed. Machine load is
printed at the start and the end: only figures from the same run compare.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

from measure import GNU_TIME, run  # bench/measure.py, beside this script

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEPTH = 4000
NAME = 250
RULES = 100_000
DIFF_LINES = 2_000_000


def deep_chain(top):
    """DEPTH nested directories with NAME-byte names below top (the path is
    far beyond PATH_MAX, so each level is made relative to the last)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for level in range(DEPTH):
        name = f"{level}-".ljust(NAME, "d")
        os.mkdir(name, dir_fd=fd)
        nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    leaf = os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(leaf, b"changed\n")
    os.close(leaf)
    os.close(fd)


def rules_manifest(path):
    with open(path, "w") as f:
        f.write("keep = [\n")
        for i in range(RULES):
            f.write(f'  "/srv/app-{i:06d}/data",\n')
        f.write("]\n")


def saved_diff(path):
    """A lived-in root against an empty snapshot: directories of 40 entries
    under a few trees, an escaped odd name now and then, some modifications
    and renames."""
    tops = ["var/lib/app", "home/alice/.cache", "srv/data", "usr/share/doc"]
    with open(path, "w") as f:
        f.write("1700000000.000000000\tM\t/\t/\n")
        n, d = 1, 0
        while n < DIFF_LINES:
            top = tops[d % 4]
            f.write(f"1700000001.000000000\t+\t/\t/{top}/d{d}\n")
            n += 1
            for e in range(min(40, DIFF_LINES - n)):
                if e % 20 == 7:
                    f.write(f"1700000002.000000000\t+\tF\t/{top}/d{d}/odd\\040name\\011{e}\n")
                elif e % 100 == 13:
                    f.write(f"1700000002.000000000\tM\tF\t/{top}/d{d}/f{e}\n")
                elif e % 200 == 17:
                    f.write(f"1700000002.000000000\tR\tF\t/{top}/d{d}/f{e}\t/{top}/d{d}/g{e}\n")
                else:
                    f.write(f"1700000002.000000000\t+\tF\t/{top}/d{d}/f{e}\n")
                n += 1
            d += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reference", help="an older darlings binary to run side by side")
    ap.add_argument("--work", help="where to build the inputs (default: a temporary directory)")
    args = ap.parse_args()
    if not os.access(GNU_TIME, os.X_OK):
        sys.exit("needs GNU time for peak memory: apt-get install time")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "darlings"], cwd=REPO, check=True)
    binaries = {"new": os.path.join(REPO, "target", "release", "darlings")}
    if args.reference:
        binaries["old"] = os.path.abspath(args.reference)

    work = args.work or tempfile.mkdtemp(prefix="darlings-bars-")
    deep, blank, empty = (os.path.join(work, d) for d in ("deep", "blank", "empty"))
    for d in (deep, blank, empty):
        os.makedirs(d, exist_ok=True)
    if not os.listdir(deep):
        deep_chain(deep)
    manifest = os.path.join(work, "rules.toml")
    if not os.path.exists(manifest):
        rules_manifest(manifest)
    diff = os.path.join(work, "root.diff")
    if not os.path.exists(diff):
        saved_diff(diff)

    quiet = ["--format", "json", "--no-default-manifest", "--progress", "never", "--threads", "2"]
    cases = {
        "deep-walk": lambda b: [b, "audit", "--root", deep, "--source", "walk"] + quiet,
        "deep-baseline": lambda b: [b, "audit", "--root", deep, "--baseline", blank] + quiet,
        "rules": lambda b: [b, "audit", "--root", empty, "--source", "walk", "--manifest", manifest] + quiet,
        "diff": lambda b: [b, "audit", "--zfs-diff", diff] + quiet,
    }
    runs = [(case, ver) for case in cases for ver in binaries]
    print(f"work: {work}")
    print(f"load at start: {os.getloadavg()}  cores: {os.cpu_count()}")
    times = {r: [] for r in runs}
    rss = {r: 0 for r in runs}
    for i in range(args.rounds):
        order = runs[i % len(runs):] + runs[:i % len(runs)]
        for case, ver in order:
            t, m = run(cases[case](binaries[ver]))
            times[(case, ver)].append(t)
            rss[(case, ver)] = max(rss[(case, ver)], m)
    print(f"load at end:   {os.getloadavg()}")
    med = {r: statistics.median(ts) for r, ts in times.items()}
    print(f"\n{'case':<15} {'binary':<6} {'median s':>9} {'min s':>7} {'max s':>7} {'peak RSS':>10}")
    for case, ver in runs:
        ts = times[(case, ver)]
        print(f"{case:<15} {ver:<6} {med[(case, ver)]:9.3f} {min(ts):7.3f} {max(ts):7.3f} "
              f"{rss[(case, ver)] / 1024:8.1f} MiB")
    new = lambda c: med[(c, "new")]
    print("\nbars (new binary):")
    print(f"  deep --baseline peak RSS = {rss[('deep-baseline', 'new')] / 1024:.1f} MiB   (target <= 64)")
    print(f"  deep --baseline / walk   = {new('deep-baseline') / new('deep-walk'):.2f}   (target <= 2.00)")
    print(f"  100,000 keep rules       = {new('rules'):.3f} s   (target <= 1.0, whole audit of an empty root)")
    print(f"  saved diff, end to end   = {DIFF_LINES / new('diff') / 1e6:.2f} M lines/s "
          f"(parse + classify alone: cargo bench --bench zfs_diff; target >= 2)")
    if "old" in binaries:
        print("\nnew / old (medians):")
        for case in cases:
            print(f"  {case:<15} {new(case) / med[(case, 'old')]:.3f}")


if __name__ == "__main__":
    main()
