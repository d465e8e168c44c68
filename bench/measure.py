"""What the benchmark scripts share: running one command and measuring it."""
import os
import subprocess
import sys
import tempfile
import time

GNU_TIME = "/usr/bin/time"


def run(cmd):
    """(seconds, peak RSS KiB) of cmd, output discarded; exit 0, 1 or 3.

    The peak RSS comes from GNU time (Debian package `time`): a child of
    this Python would carry Python's own peak into its rusage."""
    with tempfile.NamedTemporaryFile("r") as rss, open(os.devnull, "wb") as null:
        start = time.perf_counter()
        proc = subprocess.run([GNU_TIME, "-f", "%M", "-o", rss.name] + cmd, stdout=null,
                              stderr=subprocess.PIPE, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode not in (0, 1, 3):
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-500:]}")
        lines = [line for line in rss.read().splitlines() if line.strip().isdigit()]
        return elapsed, int(lines[-1]) if lines else 0
