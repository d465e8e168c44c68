#!/usr/bin/env bash
# The audit behind the guards against `find -xdev`, side by side, warm.
#
#   bench/guards-vs-find.sh [ENTRIES]      (as root; default 100000)
#
# Builds a btrfs on a loop device (in a private mount namespace) whose
# `root` holds a lived-in corpus (in /lived) (../shared/bench/make-corpus.py) beside
# an empty read-only `root-blank`, reads it once, then times, in ROUNDS
# interleaved rounds (default 5), with peak RSS: `find ROOT -xdev`, the
# grouped `darlings audit --root ROOT` (what people run), `darlings record
# --dry-run --root ROOT` (the shutdown record's audit: every path judged
# by itself, summed as it goes) and `darlings rollback --dry-run --force`
# (the plan with its audit). Prints the median, the spread, the worst peak
# RSS and the ratios to the grouped audit and to find. Machine load is
# printed: only figures from the same run compare.
set -euo pipefail
ENTRIES=${1:-100000}
ROUNDS=${ROUNDS:-5}
cd "$(dirname "$0")/.."
. bench/corpus.sh
cargo build --release --locked --bin darlings >&2
D=$PWD/target/release/darlings
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
unshare --mount --propagation private -- bash -s "$D" "$CORPUS" "$ENTRIES" "$WORK" "$ROUNDS" <<'SCRIPT'
set -euo pipefail
D=$1; CORPUS=$2; ENTRIES=$3; cd "$4"; ROUNDS=$5
truncate -s 8G fs.img; mkfs.btrfs -q fs.img > /dev/null; mkdir m; mount -o loop fs.img m
btrfs -q subvolume create m/root-blank; btrfs property set -ts m/root-blank ro true
btrfs -q subvolume create m/root
python3 "$CORPUS" --entries "$ENTRIES" --seed 1 m/root/lived > /dev/null
"$D" mark --mountpoint m > /dev/null
find m/root -xdev > /dev/null
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
WHAT="find audit record dry-run"
for i in $(seq "$ROUNDS"); do
  for what in $WHAT; do
    case $what in
      find) /usr/bin/time -f "%e %M" -o t find m/root -xdev > /dev/null ;;
      audit) /usr/bin/time -f "%e %M" -o t "$D" audit --root m/root --no-default-manifest --fail-on none > /dev/null ;;
      record) /usr/bin/time -f "%e %M" -o t "$D" record --dry-run --root m/root --no-default-manifest --fail-on none > /dev/null ;;
      dry-run) /usr/bin/time -f "%e %M" -o t "$D" rollback --mountpoint m --dry-run --force > /dev/null ;;
    esac
    cat t >> "$what.times"
  done
done
med() { cut -d' ' -f1 "$1.times" | median; }
AUDIT=$(med audit); FIND=$(med find)
for what in $WHAT; do
  m=$(med "$what")
  printf '%-8s median %5s s (%s..%s), %.2fx audit, %.2fx find, peak RSS %s KB\n' "$what" "$m" \
    "$(cut -d' ' -f1 "$what.times" | sort -n | head -1)" "$(cut -d' ' -f1 "$what.times" | sort -n | tail -1)" \
    "$(awk -v a="$m" -v b="$AUDIT" 'BEGIN { print a / b }')" "$(awk -v a="$m" -v b="$FIND" 'BEGIN { print a / b }')" \
    "$(cut -d' ' -f2 "$what.times" | sort -n | tail -1)"
done
echo "entries: $(find m/root -xdev | wc -l)"
umount m
SCRIPT
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
