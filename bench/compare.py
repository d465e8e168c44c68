#!/usr/bin/env python3
"""Compare `darlings audit` with find, fd and the syscall floor, side by side.

Usage:
    bench/compare.py TREE [--rounds 7] [--threads 2] [--skip-fd] [--reference OLD_DARLINGS]

Every round runs each command once, in a rotating order, with a warm page
cache (one untimed warm-up run of each first). Prints the median wall time
and peak RSS of each command and the ratios the project tracks:

    darlings / find -xdev -printf '%s\\n'    (target <= 0.40)
    darlings / fd -HIu --one-file-system     (target <= 1.00)
    darlings / floor walker                  (target <= 1.15)

    darlings / reference                     (target <= 1.05, with --reference:
                                              an older binary, same flags)

plus darlings with /home and /var pruned (claimed with --assume-claims),
against the share of entries pruned. Builds the release binary and the
floor walker (examples/floor_walk.rs) first. Machine load is printed at the
start and the end: the machines are noisy, so only ratios measured in the
same run mean anything.

Generate a tree with ../shared/bench/make-corpus.py --entries 1000000 DIR.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys

from measure import GNU_TIME, run  # bench/measure.py, beside this script

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def count_entries(tree, sub):
    path = os.path.join(tree, sub)
    if not os.path.isdir(path):
        return 0
    out = subprocess.run(["find", path, "-xdev"], capture_output=True, check=False)
    return out.stdout.count(b"\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tree")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-fd", action="store_true")
    ap.add_argument("--reference", help="an older darlings binary, run with the same flags")
    args = ap.parse_args()
    tree = os.path.abspath(args.tree)
    if not os.access(GNU_TIME, os.X_OK):
        sys.exit("needs GNU time for peak memory: apt-get install time")

    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "darlings", "--example", "floor_walk"],
                   cwd=REPO, check=True)
    darlings = os.path.join(REPO, "target", "release", "darlings")
    floor = os.path.join(REPO, "target", "release", "examples", "floor_walk")
    fd = shutil.which("fd") or shutil.which("fdfind")

    common = [darlings, "audit", "--root", tree, "--format", "json", "--no-default-manifest",
              "--progress", "never", "--threads", str(args.threads)]
    commands = {
        "darlings": common,
        "darlings-pruned": common + ["--assume-claims", "--keep", "/home", "--keep", "/var"],
        "floor": [floor, tree, str(args.threads)],
        "find": ["find", tree, "-xdev", "-printf", "%s\n"],
    }
    if args.reference:
        commands["reference"] = [os.path.abspath(args.reference)] + common[1:]
    if fd and not args.skip_fd:
        commands["fd"] = [fd, "-HIu", "--one-file-system", "--threads", str(args.threads), ".", tree]

    print(f"tree: {tree}")
    print(f"load at start: {os.getloadavg()}  cores: {os.cpu_count()}  threads: {args.threads}")
    for cmd in commands.values():
        run(cmd)  # warm the cache

    times = {name: [] for name in commands}
    rss = {name: 0 for name in commands}
    names = list(commands)
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            t, m = run(commands[name])
            times[name].append(t)
            rss[name] = max(rss[name], m)

    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"load at end:   {os.getloadavg()}")
    print(f"\n{'command':<16} {'median s':>9} {'min s':>7} {'max s':>7} {'peak RSS':>10}")
    for name in names:
        print(f"{name:<16} {med[name]:9.3f} {min(times[name]):7.3f} {max(times[name]):7.3f} "
              f"{rss[name] / 1024:8.1f} MiB")

    print("\nratios of medians:")
    print(f"  darlings / find  = {med['darlings'] / med['find']:.3f}   (target <= 0.40)")
    if "fd" in med:
        print(f"  darlings / fd    = {med['darlings'] / med['fd']:.3f}   (target <= 1.00)")
    if "reference" in med:
        print(f"  darlings / reference = {med['darlings'] / med['reference']:.3f}   (target <= 1.05)")
    print(f"  darlings / floor = {med['darlings'] / med['floor']:.3f}   (target <= 1.15)")
    print(f"  floor / find     = {med['floor'] / med['find']:.3f}")
    total = count_entries(tree, ".")
    pruned = count_entries(tree, "home") + count_entries(tree, "var")
    if total:
        print(f"  pruned /home + /var: {pruned / total:.1%} of entries; "
              f"time {med['darlings-pruned'] / med['darlings']:.1%} of the full audit")


if __name__ == "__main__":
    main()
