#!/usr/bin/env python3
"""Cold-cache walks: darlings against find and fd on a freshly mounted image.

Usage (as root):
    bench/cold.py [--entries 300000] [--seed 1] [--rounds 5]
                  [--variant '--threads 16' ...] [--reference OLD_DARLINGS]
                  [--btrfs] [--skip-find] [--skip-fd]

A cold audit (the first after boot, a CI job on a freshly mounted image) is
bound by I/O latency, not CPU. It is measured the way ../shared/DOMAIN.md §8
says, never by dropping the host's caches: the corpus
(../shared/bench/make-corpus.py --entries N --seed S) lives in an ext4 image
(`mkfs.ext4 -i 4096`: the default inode ratio runs out of inodes) attached
with `losetup --direct-io=on`, so the host's page cache does not hold it, and
every single run attaches it anew, flushes the loop device's buffers and
mounts it (read-only): nothing of it is cached in this kernel. The image is made once per (entries, seed) and kept,
sparse, in /tmp/cold.

Every round runs each command once, in a rotating order. Prints the median
wall time and peak RSS (GNU time) of each command and the ratios the project
tracks for a cold walk:

    darlings / fd -HIu --one-file-system (fd's defaults)   (target <= 0.60)
    darlings / find -xdev -printf '%s\\n'                    (target <= 0.30)

`darlings` is `darlings audit --root MNT` with its defaults; every
`--variant FLAGS` adds darlings with those flags as well (leading NAME=VALUE
words set its environment instead), and `--reference` an older binary with
the defaults.

--btrfs: a btrfs image instead, the corpus in a subvolume `root` and a
read-only snapshot `root-blank` taken before some changes (files modified,
removed, created, a directory renamed); times
`darlings audit --baseline MNT/root-blank --root MNT/root` against fd and
find walking both trees.

Machine load is printed at the start, after every round and at the end: the
machines are noisy, so only ratios measured in the same run mean anything.
Loop devices and mounts are undone on any exit.
"""
import argparse
import os
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys

from measure import GNU_TIME, run  # bench/measure.py, beside this script

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# The corpus generator: the project's shared material holds it beside the
# checkout; DARLINGS_CORPUS names it anywhere else (as for bench/corpus.sh).
CORPUS = os.environ.get("DARLINGS_CORPUS") or os.path.join(
    os.path.dirname(REPO), "shared", "bench", "make-corpus.py"
)
WORK = "/tmp/cold"


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def sh(cmd, **kw):
    """Runs a setup command, its stdout discarded (mkfs prints even with -q)."""
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)


class Loop:
    """Loop devices and mounts made here, undone in reverse on close."""

    def __init__(self):
        self.devices = []
        self.mounts = []

    def attach(self, image, direct_io, read_only):
        cmd = ["losetup", "--find", "--show"]
        if direct_io:
            cmd.append("--direct-io=on")
        if read_only:
            cmd.append("--read-only")
        dev = subprocess.run(cmd + [image], check=True, capture_output=True, text=True).stdout.strip()
        self.devices.append(dev)
        return dev

    def detach(self, dev):
        sh(["losetup", "-d", dev])
        self.devices.remove(dev)

    def mount(self, dev, mnt, read_only):
        os.makedirs(mnt, exist_ok=True)
        sh(["mount", "-o", "ro" if read_only else "rw", dev, mnt])
        self.mounts.append(mnt)

    def umount(self, mnt):
        sh(["umount", mnt])
        self.mounts.remove(mnt)

    def close(self):
        for mnt in reversed(self.mounts):
            subprocess.run(["umount", mnt], check=False)
        for dev in reversed(self.devices):
            subprocess.run(["losetup", "-d", dev], check=False)
        self.mounts, self.devices = [], []


def make_corpus(target, entries, seed):
    """The corpus, generated straight into the directory `target`."""
    gen = os.path.join(target, "corpus.gen")
    if not os.path.isfile(CORPUS):
        sys.exit(f"bench: no corpus generator at {CORPUS}: set DARLINGS_CORPUS to make-corpus.py "
                 "(it comes with the project's shared material, shared/bench/, beside the checkout)")
    sh([sys.executable, CORPUS, "--entries", str(entries), "--seed", str(seed), gen])
    for name in os.listdir(gen):
        os.rename(os.path.join(gen, name), os.path.join(target, name))
    os.rmdir(gen)
    shutil.move(gen + ".stats.json", os.path.join(WORK, f"corpus-{entries}-s{seed}.stats.json"))


def change_tree(root, seed):
    """Changes after the blank snapshot, deterministic: every 97th file
    appended to, every 101st removed, a directory renamed, one created."""
    rng = random.Random(seed)
    files = []
    for top, dirs, names in os.walk(root):
        dirs.sort()
        files.extend(os.path.join(top, n) for n in sorted(names)
                     if os.path.isfile(os.path.join(top, n)) and not os.path.islink(os.path.join(top, n)))
    for i, path in enumerate(files):
        if i % 97 == 0:
            with open(path, "ab") as f:
                f.write(b"changed\n")
        elif i % 101 == 0:
            os.unlink(path)
    os.rename(os.path.join(root, "etc"), os.path.join(root, "etc.moved"))
    os.mkdir(os.path.join(root, "etc"))
    new = os.path.join(root, "var", "lib", "bench-new")
    os.makedirs(new)
    for i in range(max(len(files) // 100, 10)):
        with open(os.path.join(new, f"f{i:06}-{rng.randrange(1 << 30):x}"), "wb") as f:
            f.write(b"x" * rng.randrange(4096))


def make_image(loop, entries, seed, btrfs):
    """The image for (entries, seed), made once: generated into a `.part`
    file, renamed when complete."""
    kind = "btrfs" if btrfs else "ext4"
    image = os.path.join(WORK, f"{kind}-{entries}-s{seed}.img")
    if os.path.exists(image):
        return image
    part = image + ".part"
    size = max(entries * 16 * 1024, 1 << 30) * (2 if btrfs else 1)
    print(f"making {image} ({entries} entries, seed {seed}): this takes minutes", flush=True)
    with open(part, "wb") as f:
        f.truncate(size)
    if btrfs:
        sh(["mkfs.btrfs", "-q", "-f", part])
    else:
        sh(["mkfs.ext4", "-q", "-F", "-i", "4096", part])
    dev = loop.attach(part, direct_io=False, read_only=False)
    mnt = os.path.join(WORK, "make")
    loop.mount(dev, mnt, read_only=False)
    if btrfs:
        root = os.path.join(mnt, "root")
        sh(["btrfs", "-q", "subvolume", "create", root])
        make_corpus(root, entries, seed)
        sh(["btrfs", "-q", "subvolume", "snapshot", "-r", root, os.path.join(mnt, "root-blank")])
        change_tree(root, seed)
    else:
        make_corpus(mnt, entries, seed)
    sh(["sync", "-f", mnt])
    loop.umount(mnt)
    loop.detach(dev)
    os.replace(part, image)
    return image


def commands(args, darlings, mnt):
    """name -> argv; `darlings`, `find` and `fd` first."""
    fd = shutil.which("fd") or shutil.which("fdfind")
    if args.btrfs:
        trees = [os.path.join(mnt, "root"), os.path.join(mnt, "root-blank")]
        audit = ["audit", "--baseline", trees[1], "--root", trees[0]]
    else:
        trees = [mnt]
        audit = ["audit", "--root", mnt]
    cmds = {"darlings": [darlings] + audit}
    if not args.skip_find:
        cmds["find"] = ["find"] + trees + ["-xdev", "-printf", "%s\n"]
    if fd and not args.skip_fd:
        cmds["fd"] = [fd, "-HIu", "--one-file-system", "."] + trees
    for variant in args.variant:
        words = shlex.split(variant)
        env = [w for w in words if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", w)]
        flags = words[len(env):]
        cmds[f"darlings {variant}"] = (["env"] + env if env else []) + [darlings] + audit + flags
    if args.reference:
        cmds["reference"] = [os.path.abspath(args.reference)] + audit
    return cmds


def report(times, rss):
    med = {name: statistics.median(ts) for name, ts in times.items()}
    width = max(len(name) for name in times) + 2
    print(f"\n{'command':<{width}} {'median s':>9} {'min s':>7} {'max s':>7} {'peak RSS':>10}")
    for name, ts in times.items():
        print(f"{name:<{width}} {med[name]:9.3f} {min(ts):7.3f} {max(ts):7.3f} {rss[name] / 1024:8.1f} MiB")
    print("\nratios of medians:")
    for name in times:
        if not name.startswith("darlings") and name != "reference":
            continue
        parts = []
        if "fd" in med:
            parts.append(f"/ fd = {med[name] / med['fd']:.3f} (target <= 0.60)")
        if "find" in med:
            parts.append(f"/ find = {med[name] / med['find']:.3f} (target <= 0.30)")
        if "reference" in med and name != "reference":
            parts.append(f"/ reference = {med[name] / med['reference']:.3f}")
        print(f"  {name:<{width}} " + "   ".join(parts))


def cold_run(loop, image, mnt, cmd):
    """Runs cmd once on a fresh mount of a freshly attached loop device,
    its buffers flushed: nothing of the image is cached but on the host's
    disk, which direct I/O bypasses."""
    dev = loop.attach(image, direct_io=True, read_only=True)
    try:
        sh(["blockdev", "--flushbufs", dev])
        loop.mount(dev, mnt, read_only=True)
        try:
            return run(cmd)
        finally:
            loop.umount(mnt)
    finally:
        loop.detach(dev)


def measure(loop, args, image, darlings):
    mnt = os.path.join(WORK, "mnt")
    cmds = commands(args, darlings, mnt)
    names = list(cmds)
    times = {name: [] for name in names}
    rss = {name: 0 for name in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            t, m = cold_run(loop, image, mnt, cmds[name])
            times[name].append(t)
            rss[name] = max(rss[name], m)
        shown = ", ".join(f"{name} {times[name][-1]:.2f}" for name in names)
        print(f"round {r + 1}/{args.rounds}: load {load()}  s: {shown}", flush=True)
    print("\ncommands (MNT: a fresh read-only mount for every run):")
    for name, cmd in cmds.items():
        print(f"  {name}: {shlex.join(cmd)}")
    return times, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--variant", action="append", default=[], metavar="FLAGS",
                    help="darlings with these extra flags, e.g. '--threads 16' (repeatable; "
                         "leading NAME=VALUE words set its environment)")
    ap.add_argument("--reference", help="an older darlings binary, run with the defaults")
    ap.add_argument("--btrfs", action="store_true", help="a btrfs image: audit --baseline root-blank")
    ap.add_argument("--skip-find", action="store_true")
    ap.add_argument("--skip-fd", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root: losetup and mount")
    for tool in (GNU_TIME, "losetup", "mkfs.btrfs" if args.btrfs else "mkfs.ext4"):
        if not shutil.which(tool):
            sys.exit(f"needs {tool}")

    os.makedirs(WORK, exist_ok=True)

    # SIGTERM and SIGHUP unwind like Ctrl-C, through the finally below.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    loop = Loop()
    try:
        image = make_image(loop, args.entries, args.seed, args.btrfs)
        subprocess.run(["cargo", "build", "--release", "--quiet", "--locked", "--bin", "darlings"],
                       cwd=REPO, check=True)
        darlings = os.path.join(REPO, "target", "release", "darlings")
        print(f"image: {image}  entries: {args.entries}  seed: {args.seed}  rounds: {args.rounds}")
        print(f"load at start: {load()}  cores: {os.cpu_count()}", flush=True)
        times, rss = measure(loop, args, image, darlings)
    finally:
        loop.close()
    print(f"load at end:   {load()}")
    report(times, rss)


if __name__ == "__main__":
    main()
