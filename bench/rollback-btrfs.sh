#!/usr/bin/env bash
# What a guarded rollback costs over the bare erase, on a real btrfs.
#
#   bench/rollback-btrfs.sh [ENTRIES] [ROUNDS]      (as root; defaults 100000, 5)
#
# Builds a btrfs on a loop device with direct I/O (in a private mount
# namespace) whose `root` holds a lived-in corpus
# (../shared/bench/make-corpus.py) and a blank `root-blank`, then, each
# round, makes the root anew as a snapshot of the corpus (cheap), reads
# every inode of it once and times, warm (what was just read is cached,
# and what reading it changed is not yet written, as on a system in use):
#   bare      mv root old_roots/N && btrfs subvolume snapshot root-blank root
#             (the popular initrd script, without guards or audit)
#   dry-run   darlings rollback --dry-run --force (the plan, with its audit;
#             --force because the corpus holds critical state, SSH host keys)
#   rollback  darlings rollback --yes --force (plan, audit, act, verify)
# and cold (the root made anew, everything written, the filesystem
# unmounted and mounted again, as at boot): bare and rollback again. Prints medians and darlings' peak
# RSS. Machine load is printed too: only figures from the same run compare.
set -euo pipefail
ENTRIES=${1:-100000}
ROUNDS=${2:-5}
cd "$(dirname "$0")/.."
. bench/corpus.sh
cargo build --release --locked --bin darlings >&2
D=$PWD/target/release/darlings
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
unshare --mount --propagation private -- bash -s "$D" "$CORPUS" "$ENTRIES" "$ROUNDS" "$WORK" <<'EOF'
set -euo pipefail
D=$1; CORPUS=$2; ENTRIES=$3; ROUNDS=$4; WORK=$5
[ -z "${BENCH_TRACE:-}" ] || set -x
cd "$WORK"
truncate -s 24G fs.img && mkfs.btrfs -q fs.img >/dev/null
LOOP=$(losetup --find --show --direct-io=on fs.img)
trap 'umount m 2>/dev/null; losetup -d "$LOOP"' EXIT
mkdir m && mount "$LOOP" m
btrfs -q subvolume create m/root
btrfs -q subvolume snapshot -r m/root m/root-blank
# Marked while it exists (mark refuses a name that is not there); the mark
# names the subvolume, so it holds for every root made later.
"$D" mark --mountpoint m >/dev/null
btrfs -q subvolume delete m/root >/dev/null
python3 "$CORPUS" --entries "$ENTRIES" --seed 1 m/gen >/dev/null
btrfs -q subvolume create m/corpus
cp -a --reflink=always m/gen/. m/corpus/ && rm -rf m/gen
btrfs property set -ts m/corpus ro true
mkdir -p m/old_roots
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
snap() { btrfs -q subvolume snapshot m/corpus m/root; }
fresh() { snap; find m/root -printf '%s\n' > /dev/null; }
cold() { sync -f m; umount m; mount "$LOOP" m; }
# The round's archives go, and their space with them (a 1M-entry root's
# metadata, rewritten by every read, fills a small image otherwise), and
# so does the root the last rollback made: the next round's snapshot of
# the corpus must be the root, not a subvolume inside it.
clear() {
  for a in m/old_roots/* m/root; do btrfs -q subvolume delete "$a" > /dev/null; done
  btrfs subvolume sync m > /dev/null
}
bare() { # NAME: times the bare erase
  t=$(now); mv m/root "m/old_roots/$1"; btrfs -q subvolume snapshot m/root-blank m/root; since "$t"
}
declare -a bare dry roll rss cbare croll crss
for i in $(seq 1 "$ROUNDS"); do
  fresh; bare+=("$(bare "bare-$i")")
  btrfs -q subvolume delete m/root >/dev/null
  fresh
  t=$(now); "$D" rollback --mountpoint m --dry-run --force > /dev/null; dry+=("$(since "$t")")
  t=$(now); /usr/bin/time -f %M -o rss.txt "$D" rollback --mountpoint m --yes --force > /dev/null; roll+=("$(since "$t")")
  rss+=("$(cat rss.txt)")
  btrfs -q subvolume delete m/root >/dev/null
  snap; cold; cbare+=("$(bare "cold-bare-$i")")
  btrfs -q subvolume delete m/root >/dev/null
  snap; cold
  t=$(now); /usr/bin/time -f %M -o rss.txt "$D" rollback --mountpoint m --yes --force > /dev/null; croll+=("$(since "$t")")
  crss+=("$(cat rss.txt)")
  clear
  echo "round $i: load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "entries: $ENTRIES (+ the corpus root), rounds: $ROUNDS"
echo "warm (cached, unwritten changes pending):"
printf '  bare mv + snapshot     %8.3f s\n' "$(median "${bare[@]}")"
printf '  darlings --dry-run     %8.3f s\n' "$(median "${dry[@]}")"
printf '  darlings rollback      %8.3f s   %sx bare   peak RSS %s KiB\n' "$(median "${roll[@]}")" \
  "$(ratio "$(median "${roll[@]}")" "$(median "${bare[@]}")")" "$(median "${rss[@]}")"
echo "cold (freshly mounted, nothing pending):"
printf '  bare mv + snapshot     %8.3f s\n' "$(median "${cbare[@]}")"
printf '  darlings rollback      %8.3f s   %sx bare   peak RSS %s KiB\n' "$(median "${croll[@]}")" \
  "$(ratio "$(median "${croll[@]}")" "$(median "${cbare[@]}")")" "$(median "${crss[@]}")"
EOF
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
