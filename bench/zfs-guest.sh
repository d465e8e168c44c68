#!/usr/bin/env bash
# How `--source auto` reads a ZFS root, against its two ways, in one boot of
# the ZFS test guest (real OpenZFS 2.1.11 under QEMU's emulation: absolute
# times are slow, ratios are what counts).
#
#   bench/zfs-guest.sh [EPHEMERAL_ENTRIES] [FULL_ENTRIES]   (as root; defaults 20000, 60000)
#
# Two roots, each a dataset mounted like a root, with lived-in corpora from
# ../shared/bench/make-corpus.py (made here, carried into the guest as tars):
#   ephemeral  an empty @blank, then a corpus of EPHEMERAL_ENTRIES and one
#              directory of 20,000 files: everything is new since @blank
#   full       @blank holds a corpus of FULL_ENTRIES (an installed system),
#              then about 100 changes (modified, created, removed, renamed)
# and on each times: `zfs diff -FHt DS@blank | wc -l` alone, darlings with
# `--source zfs` (once each: minutes), then the median of three runs of darlings
# with `--baseline ROOT/.zfs/snapshot/blank`, with `auto`
# (and the way it chose, with its reason), `--source walk`, and
# `find -xdev -printf '%s\n'`. Also prints the facts auto decides on
# (statfs object counts, written@blank). Not part of CI: one zfs diff of the
# ephemeral root takes minutes.
set -euo pipefail
EPH=${1:-20000}
FULL=${2:-60000}
cd "$(dirname "$0")/.."
. bench/corpus.sh
cargo build --release --locked --bin darlings >&2
IN=$(mktemp -d)
RES=${DARLINGS_BENCH_RESULTS:-$(mktemp -d)}
trap 'rm -rf "$IN"' EXIT
cp target/release/darlings "$IN/darlings"
python3 "$CORPUS" --entries "$EPH" --seed 1 "$IN/eph" > /dev/null
python3 "$CORPUS" --entries "$FULL" --seed 2 "$IN/full" > /dev/null
tar -C "$IN" -cSf "$IN/eph.tar" eph && rm -rf "$IN/eph" "$IN/eph.stats.json"
tar -C "$IN" -cSf "$IN/full.tar" full && rm -rf "$IN/full" "$IN/full.stats.json"
cat > "$IN/run.sh" <<'EOF'
set -eu
D=$IN/darlings
t() { # NAME COMMAND...: seconds of wall time, output discarded
  local name=$1 s e; shift
  s=$(date +%s.%N); "$@" > /dev/null 2>&1 || true; e=$(date +%s.%N)
  awk -v n="$name" -v s="$s" -v e="$e" 'BEGIN { printf "%-40s %8.2f s\n", n, e - s }'
}
t3() { # NAME COMMAND...: the median of three runs, and all three
  local name=$1 i s e all=; shift
  for i in 1 2 3; do
    s=$(date +%s.%N); "$@" > /dev/null 2>&1 || true; e=$(date +%s.%N)
    all="$all $(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.2f", e - s }')"
  done
  echo "$all" | tr ' ' '\n' | sed '/^$/d' | sort -n | awk -v n="$name" -v all="$all" \
    'NR == 2 { printf "%-40s %8.2f s  (median of%s)\n", n, $1, all }'
}
modprobe zfs
mkfs.ext4 -q /dev/vdb && mkdir -p /scratch && mount /dev/vdb /scratch
truncate -s 7G /scratch/pool.img
zpool create -m none rpool /scratch/pool.img
zfs version | head -1
facts() { # DATASET MOUNTPOINT
  echo "facts: live objects $(stat -f -c '%c %d' "$2" | awk '{ print $1 - $2 }')," \
       "blank objects $(stat -f -c '%c %d' "$2/.zfs/snapshot/blank" | awk '{ print $1 - $2 }')," \
       "written@blank $(zfs get -Hp -o value written@blank "$1")," \
       "blank referenced $(zfs get -Hp -o value referenced "$1@blank")"
}
measure() { # NAME DATASET MOUNTPOINT
  local name=$1 ds=$2 m=$3
  sync; facts "$ds" "$m"
  "$D" audit --root "$m" --format json --no-default-manifest > "$OUT/$name-auto.json" 2>/dev/null || true
  echo "auto chose: $(grep -o '"source": *"[^"]*"' "$OUT/$name-auto.json" || true)"
  grep -o '"compared[^"]*"' "$OUT/$name-auto.json" || true
  t "zfs diff -FHt | wc -l" sh -c "zfs diff -FHt $ds@blank | wc -l"
  t "darlings --source zfs" "$D" audit --root "$m" --source zfs --format json --no-default-manifest
  t3 "darlings --baseline .zfs/snapshot/blank" "$D" audit --root "$m" --baseline "$m/.zfs/snapshot/blank" --format json --no-default-manifest
  t3 "darlings auto" "$D" audit --root "$m" --format json --no-default-manifest
  t3 "darlings --source walk" "$D" audit --root "$m" --source walk --format json --no-default-manifest
  t3 "find -xdev -printf" find "$m" -xdev -printf '%s\n'
}
mkdir -p "$OUT"

echo "== ephemeral root: empty @blank, everything new"
zfs create -p -o mountpoint=legacy rpool/local/root
mkdir -p /mnt/root && mount -t zfs rpool/local/root /mnt/root
zfs snapshot rpool/local/root@blank
tar -C /mnt/root -xf "$IN/eph.tar"
mkdir /mnt/root/many && (cd /mnt/root/many && seq 1 20000 | xargs touch)
echo "entries: $(find /mnt/root -xdev | wc -l)"
measure ephemeral rpool/local/root /mnt/root

echo "== full @blank, few changes"
zfs create -p -o mountpoint=legacy rpool/local/full
mkdir -p /mnt/full && mount -t zfs rpool/local/full /mnt/full
tar -C /mnt/full -xf "$IN/full.tar"
zfs snapshot rpool/local/full@blank
F=/mnt/full/full
find "$F/etc" -type f -print0 | head -z -n 30 | while IFS= read -r -d '' f; do echo changed >> "$f" || true; done
mkdir -p "$F/var/lib/new" && for i in $(seq 1 50); do echo "$i" > "$F/var/lib/new/f$i"; done
find "$F/usr" -type f -print0 | head -z -n 10 | xargs -0 rm -f
find "$F/var/log" -maxdepth 1 -type f -print0 | head -z -n 5 | while IFS= read -r -d '' f; do mv "$f" "$f.renamed"; done
echo "entries: $(find /mnt/full -xdev | wc -l)"
measure full rpool/local/full /mnt/full
EOF
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
TIMEOUT=${TIMEOUT:-3600} SCRATCH_SIZE=8G tests/vm/run-vm.sh "$IN" "$RES"
cat "$RES/guest.log"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
