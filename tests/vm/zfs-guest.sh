#!/bin/bash
# Runs inside the ZFS guest (as run.sh): builds rpool/local/root@blank
# mounted like a root, makes known changes to it, and runs darlings' ZFS
# sources and its walk on it. Everything it learns goes to $OUT for the
# host to check (tests/zfs_guest.rs). $IN holds the darlings binary.
set -euo pipefail
D=$IN/darlings
R=/mnt/root
say() { echo "== $*"; }

say "zfs"
modprobe zfs
zfs version
mkfs.ext4 -q /dev/vdb
mkdir -p /scratch && mount /dev/vdb /scratch
truncate -s 1500M /scratch/pool.img
zpool create -m none rpool /scratch/pool.img
zfs create -p -o mountpoint=legacy rpool/local/root
zfs create -p -o mountpoint=legacy rpool/safe/persist
mkdir -p "$R" /persist
mount -t zfs rpool/local/root "$R"
mount -t zfs rpool/safe/persist /persist

say "blank state"
mkdir -p "$R/blank-dir" "$R/srv-old/sub" "$R/etc"
echo keep > "$R/blank-file"
echo a > "$R/blank-dir/a"; echo b > "$R/blank-dir/b"
echo x > "$R/srv-old/sub/x"
echo orig > "$R/etc/orig.conf"
echo meta > "$R/etc/meta-only"
ln -s old "$R/etc/link"
echo moved > "$R/etc/moved-away"
zfs snapshot rpool/local/root@blank

say "changes"
rm "$R/blank-file"
rm -r "$R/blank-dir"
mv "$R/srv-old" "$R/srv"                       # a renamed directory
echo changed >> "$R/etc/orig.conf"             # content
chmod 600 "$R/etc/meta-only"                   # metadata only
ln -sfn new "$R/etc/link"                      # a replaced symlink
mkdir -p "$R/var/lib/bluetooth" "$R/var/log/journal" "$R/home/u/.cache" "$R/home/u/docs"
mv "$R/etc/moved-away" "$R/home/u/docs/moved-here"   # renamed across directories
echo pair > "$R/var/lib/bluetooth/info"
for i in $(seq 1 40); do echo "line $i" > "$R/var/log/journal/j$i"; done
head -c 100000 /dev/zero > "$R/var/log/big"
echo cached > "$R/home/u/.cache/c"
mkfifo "$R/var/fifo"
mknod "$R/var/null" c 1 3
mknod "$R/var/loop9" b 7 9
perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $ARGV[0], Listen => 1) or die' "$R/var/sock"
echo linked > "$R/var/hard-1"
ln "$R/var/hard-1" "$R/home/u/hard-2"           # one file, two names
H="$R/home/u/hostile"
mkdir -p "$H"
for name in 'with space' $'tab\there' $'new\nline' 'back\slash' '\0040 looks escaped' \
            $'caf\xe9 latin1' $'\xff\xfe' $'\e[31mred\e[0m' "$(printf 'n%.0s' $(seq 1 255))" \
            'résumé 日本語' '*star?[x]'; do
  printf '%s' "$name" > "$H/$name"
done
mkdir -p "$R/var/lib/nixos"
echo early > "$R/var/lib/nixos/early"                 # written before the mount: shadowed
mkdir -p /persist/var/lib/nixos && echo 1000 > /persist/var/lib/nixos/uid-map
mount --bind /persist/var/lib/nixos "$R/var/lib/nixos"   # a realised claim
sync

say "zfs diff"
zfs diff -FHt rpool/local/root@blank > "$OUT/diff.txt"
zfs diff -FHt rpool/local/root@blank > "$OUT/diff-again.txt"
wc -l "$OUT/diff.txt"

say "darlings"
RULES=(--keep /var/lib/nixos --keep /var/lib/bluetooth --ignore '/home/*/.cache' --no-default-manifest)
set +e
"$D" audit --root "$R" --source walk --format json --flat "${RULES[@]}" > "$OUT/walk.json"; echo "walk $?" >> "$OUT/codes"
"$D" audit --zfs-diff "$OUT/diff.txt" --strip-prefix "$R" --root "$R" --format json --flat "${RULES[@]}" \
  > "$OUT/zfs-diff-live.json"; echo "zfs-diff-live $?" >> "$OUT/codes"
"$D" audit --zfs-diff "$OUT/diff.txt" --strip-prefix "$R" --format json --flat "${RULES[@]}" \
  > "$OUT/zfs-diff-offline.json"; echo "zfs-diff-offline $?" >> "$OUT/codes"
"$D" audit --zfs-diff "$OUT/diff.txt" --strip-prefix "$R" --root "$R" --format json "${RULES[@]}" \
  > "$OUT/zfs-diff-grouped.json"; echo "zfs-diff-grouped $?" >> "$OUT/codes"
"$D" audit --root "$R" --source zfs --format json --flat "${RULES[@]}" > "$OUT/zfs-live.json"; echo "zfs-live $?" >> "$OUT/codes"
"$D" audit --root "$R" --format json --flat "${RULES[@]}" > "$OUT/auto.json"; echo "auto $?" >> "$OUT/codes"
"$D" audit --root "$R" --baseline "$R/.zfs/snapshot/blank" --format json --flat "${RULES[@]}" > "$OUT/baseline.json"
echo "baseline $?" >> "$OUT/codes"
"$D" audit --root "$R" --source zfs --snapshot nope --format json > "$OUT/no-snapshot.json" 2> "$OUT/no-snapshot.err"
echo "no-snapshot $?" >> "$OUT/codes"

say "auto on a full blank snapshot with few changes (zfs diff is cheaper there)"
F=/mnt/full
zfs create -o mountpoint=legacy -o snapdir=visible rpool/local/full
mkdir -p "$F" && mount -t zfs rpool/local/full "$F"
for d in $(seq 1 30); do
  mkdir -p "$F/usr/share/d$d"
  for i in $(seq 1 100); do echo "$d $i" > "$F/usr/share/d$d/f$i"; done
done
mkdir -p "$F/etc" && echo a > "$F/etc/a.conf" && echo b > "$F/etc/b.conf"
zfs snapshot rpool/local/full@blank
echo changed >> "$F/etc/a.conf"
rm "$F/etc/b.conf"
mv "$F/usr/share/d7" "$F/usr/share/d7-renamed"
mkdir -p "$F/var/lib/app" && echo state > "$F/var/lib/app/db"
echo linked > "$F/var/lib/app/one" && ln "$F/var/lib/app/one" "$F/etc/two"
sync
"$D" audit --root "$F" --format json --flat --no-default-manifest > "$OUT/full-auto.json"; echo "full-auto $?" >> "$OUT/codes"
"$D" audit --root "$F" --source zfs --format json --flat --no-default-manifest > "$OUT/full-zfs.json"
echo "full-zfs $?" >> "$OUT/codes"
"$D" audit --root "$F" --baseline "$F/.zfs/snapshot/blank" --format json --flat --no-default-manifest \
  > "$OUT/full-baseline.json"; echo "full-baseline $?" >> "$OUT/codes"
umount "$F"

umount "$R/var/lib/nixos"; umount "$R"
"$D" audit --root /mnt --source zfs --dataset rpool/local/root --format json > /dev/null 2> "$OUT/unmounted.err"
echo "unmounted $?" >> "$OUT/codes"
set -e
mount -t zfs rpool/local/root "$R"
(cd "$R" && find . -xdev -print0) > "$OUT/live-paths"
cat "$OUT/codes"
say "done"
