#!/usr/bin/env bash
# A chain of directories any local user can make (`d/d/d/…`), audited as
# the shutdown record audits it, side by side with `find -xdev`.
#
#   bench/guards-deep.sh [DEPTH ...]      (defaults 15000 30000 60000)
#
# For each depth: builds the chain in a temporary directory, reads it once,
# then times `find -xdev`, `darlings audit` (grouped) and `darlings record
# --dry-run` (every path judged by itself, summed as it goes), median of 3,
# with the worst peak RSS. Machine load is printed: only figures from the
# same run compare.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin darlings >&2
D=$PWD/target/release/darlings
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
[ $# -gt 0 ] || set -- 15000 30000 60000
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for depth in "$@"; do
  root="$WORK/chain-$depth"
  python3 - "$root" "$depth" <<'PY'
import os, sys
root, depth = sys.argv[1], int(sys.argv[2])
os.mkdir(root)
fd = os.open(root, os.O_DIRECTORY)
for _ in range(depth):
    os.mkdir("d", dir_fd=fd)
    child = os.open("d", os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = child
os.close(os.open("f", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
PY
  find "$root" -xdev > /dev/null
  for what in find audit record; do
    : > "$WORK/$what.times"
    for _ in 1 2 3; do
      case $what in
        find) /usr/bin/time -f "%e %M" -o "$WORK/t" find "$root" -xdev > /dev/null ;;
        audit) /usr/bin/time -f "%e %M" -o "$WORK/t" "$D" audit --root "$root" --source walk --no-default-manifest --fail-on none > /dev/null ;;
        record) /usr/bin/time -f "%e %M" -o "$WORK/t" "$D" record --dry-run --root "$root" --source walk --no-default-manifest --fail-on none > /dev/null ;;
      esac
      tail -1 "$WORK/t" >> "$WORK/$what.times"
    done
    printf 'depth %6s  %-7s median %6s s, peak RSS %s KB\n' "$depth" "$what" \
      "$(cut -d' ' -f1 "$WORK/$what.times" | median)" "$(cut -d' ' -f2 "$WORK/$what.times" | sort -n | tail -1)"
  done
  rm -rf "$root"
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
