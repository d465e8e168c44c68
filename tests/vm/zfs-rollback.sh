#!/bin/bash
# Runs inside the ZFS guest after zfs-guest.sh: `darlings rollback` on real
# ZFS. A pool of its own (tank) with tank/local/root@blank mounted at
# /mnt/troot, a child dataset, lived-in changes; then every guard, the
# archive by send/receive (plain and raw-encrypted), restore, retention (an
# archive mounted by hand is kept), the running root in a chroot, and the
# initrd mode with and without a recorded audit, and with the claims the
# record carries. Results go to $OUT/rollback for tests/zfs_rollback_guest.rs.
set -uo pipefail
D=$IN/darlings
O=$OUT/rollback
mkdir -p "$O"
R=/mnt/troot
DS=tank/local/root
AR=tank/safe/darlings
say() { echo "== $*"; }
# Runs darlings as NAME: output, exit code, and whether the pool changed
# (datasets, snapshots and their guids, bytes written since blank).
state() { zpool sync tank; zfs list -Hp -t all -o name,guid -r tank | sort; zfs get -Hp -o value written@blank "$DS"; }
run() {
  local name=$1; shift
  local before; before=$(state)
  "$@" > "$O/$name.out" 2>&1 < /dev/null
  echo $? > "$O/$name.code"
  if [ "$(state)" = "$before" ]; then echo same; else echo changed; fi > "$O/$name.state"
}
tree() { (cd "$1" && find . -xdev -printf '%p|%y|%s\n' | LC_ALL=C sort); }

say "pool"
truncate -s 400M /scratch/tank.img
zpool create -m none tank /scratch/tank.img || exit 1
zfs create -p -o mountpoint=legacy "$DS" || exit 1
zfs create -p -o canmount=off -o mountpoint=none tank/safe
mkdir -p "$R" && mount -t zfs "$DS" "$R" || exit 1
mkdir -p "$R/etc" && echo orig > "$R/etc/blank.conf"
zfs snapshot "$DS@blank"
tree "$R" > "$O/blank.tree"
mkdir -p "$R/var/lib/app" "$R/home/u"
echo state > "$R/var/lib/app/db"
echo changed >> "$R/etc/blank.conf"
printf x > "$R/home/u/$(printf 'odd\nname')"
head -c 300000 /dev/urandom > "$R/home/u/big"
zfs create -o mountpoint=legacy "$DS/child"
sync
tree "$R" > "$O/lived.tree"
"$D" audit --root "$R" --source zfs --format json --no-default-manifest > "$O/audit.json" 2>&1

say "guards"
run unmarked "$D" rollback --dataset "$DS" --archive-dataset "$AR" --yes
zfs set darlings:ephemeral=on tank/local
run inherited "$D" rollback --dataset "$DS" --archive-dataset "$AR" --yes
zfs inherit darlings:ephemeral tank/local
"$D" mark --dataset "$DS" > "$O/mark.out" 2>&1
run no-snapshot "$D" rollback --dataset "$DS" --snapshot nope --archive-dataset "$AR" --yes
run no-archive "$D" rollback --dataset "$DS" --yes
zfs snapshot "$DS@later"
run newer "$D" rollback --dataset "$DS" --archive-dataset "$AR" --yes
zfs clone -o mountpoint=none "$DS@later" tank/clone
run clones "$D" rollback --dataset "$DS" --archive-dataset "$AR" --yes --destroy-newer
run clones-consent "$D" rollback --dataset "$DS" --archive-dataset "$AR" --dry-run --destroy-newer --destroy-clones --format json
zfs destroy tank/clone && zfs destroy "$DS@later"
zfs create -o mountpoint=none tank/small && zfs set quota=64K tank/small
run no-room "$D" rollback --dataset "$DS" --archive-dataset tank/small/a --yes
run broken "$D" rollback --dataset "$DS" --archive-dataset "$AR" --yes --keep /var/lib/app
mkdir -p "$R/etc/ssh" && echo key > "$R/etc/ssh/ssh_host_ed25519_key"
run critical "$D" rollback --dataset "$DS" --archive-dataset "$AR" --yes
rm -r "$R/etc/ssh"
run no-terminal "$D" rollback --dataset "$DS" --archive-dataset "$AR"
zfs create -o mountpoint=none tank/local/two
zfs snapshot tank/local/two@first && zfs snapshot tank/local/two@blank
"$D" mark --dataset tank/local/two > /dev/null
run not-oldest "$D" rollback --dataset tank/local/two --archive-dataset "$AR" --yes
# The running root: darlings in a chroot whose / is the dataset.
unshare -m bash -c '
  R=$1; D=$2
  for d in usr proc dev sys d run; do mkdir -p "$R/$d"; done
  for l in bin sbin lib lib64; do [ -e "$R/$l" ] || ln -s "usr/$l" "$R/$l"; done
  mount --rbind /usr "$R/usr"; mount -t proc proc "$R/proc"; mount -t sysfs sysfs "$R/sys"; mount --rbind /dev "$R/dev"
  mount --bind "$(dirname "$D")" "$R/d"
  mount -t tmpfs tmpfs "$R/run"   # as on a running system: darlings keeps its locks there
  chroot "$R" /d/darlings rollback --dataset tank/local/root --archive-dataset tank/safe/darlings --yes
' _ "$R" "$D" > "$O/live.out" 2>&1 < /dev/null
echo $? > "$O/live.code"
rm -rf "$R/usr" "$R/proc" "$R/dev" "$R/sys" "$R/d" "$R/run" "$R/bin" "$R/sbin" "$R/lib" "$R/lib64"
run dry-run "$D" rollback --dataset "$DS" --archive-dataset "$AR" --dry-run
"$D" rollback --dataset "$DS" --archive-dataset "$AR" --dry-run --format json > "$O/dry-run.json" 2>&1

say "rollback"
run rollback "$D" rollback --dataset "$DS" --archive-dataset "$AR" --yes
tree "$R" > "$O/after.tree"
zfs list -H -o name -r tank > "$O/datasets.txt"
zfs list -H -o name -t snapshot -r tank > "$O/snapshots.txt"
A=$(zfs list -H -o name -d 1 "$AR" | grep -v "^$AR\$" | head -1)
mkdir -p /mnt/archive && mount -t zfs -o ro "$A@darlings-${A##*/}" /mnt/archive 2> "$O/archive-mount.err" \
  || mount -t zfs -o ro,zfsutil "$A@darlings-${A##*/}" /mnt/archive 2>> "$O/archive-mount.err"
tree /mnt/archive > "$O/archive.tree"
umount /mnt/archive
"$D" archives --dataset "$DS" --archive-dataset "$AR" --format json > "$O/archives.json" 2>&1
"$D" status --dataset "$DS" --archive-dataset "$AR" > "$O/status.txt" 2>&1

say "restore"
run restore "$D" restore --dataset "$DS" --archive-dataset "$AR" /var/lib/app --root "$R"
cat "$R/var/lib/app/db" > "$O/restored" 2>&1
run restore-again "$D" restore --dataset "$DS" --archive-dataset "$AR" /var/lib/app/db --root "$R"
grep -c darlings /proc/self/mountinfo > "$O/mounts-left"

say "retention"
for old in 20200101T000000Z 20210101T000000Z; do zfs create -o canmount=off "$AR/$old"; done
zfs create -o canmount=off "$AR/kept-by-hand"
sleep 1
run retain "$D" rollback --dataset "$DS" --archive-dataset "$AR" --yes --retain 2
zfs list -H -o name -d 1 "$AR" > "$O/after-retention.txt"

say "mounted archive"
# The oldest darlings archive left, mounted by hand: retention keeps it.
M=$(zfs list -H -o name -s creation -d 1 "$AR" | grep -v -e "^$AR\$" -e kept-by-hand | head -1)
echo "$M" > "$O/mounted-archive"
mkdir -p /mnt/marchive
mount -t zfs -o ro,zfsutil "$M" /mnt/marchive > "$O/marchive.out" 2>&1; echo $? > "$O/marchive.code"
echo more > "$R/etc/more"
run retain-mounted "$D" rollback --dataset "$DS" --archive-dataset "$AR" --yes --retain 1
zfs list -H -o name -d 1 "$AR" > "$O/after-retain-mounted.txt"
"$D" archives --dataset "$DS" --archive-dataset "$AR" --format json > "$O/archives-mounted.json" 2>&1
ls /mnt/marchive > "$O/marchive.ls" 2>&1
umount /mnt/marchive
"$D" status --dataset "$DS" --archive-dataset "$AR" --format json > "$O/status.json" 2>&1

say "encrypted"
echo "darlings-test-key" > /scratch/key
zfs create -o encryption=on -o keyformat=passphrase -o keylocation=file:///scratch/key -o mountpoint=legacy tank/local/enc
mkdir -p /mnt/enc && mount -t zfs tank/local/enc /mnt/enc
zfs snapshot tank/local/enc@blank
echo secret > /mnt/enc/secret
"$D" mark --dataset tank/local/enc > /dev/null
run encrypted "$D" rollback --dataset tank/local/enc --archive-dataset tank/safe/enc-archive --yes
zfs get -H -o name,value encryption,keystatus -r tank/safe/enc-archive > "$O/enc-archive.txt"
umount /mnt/enc

say "initrd"
mkdir -p "$R/var/lib/app" && echo "initrd state" > "$R/var/lib/app/db"
sync
umount "$R"
run initrd-no-record "$D" rollback --initrd --dataset "$DS" --archive-dataset "$AR"
"$D" status --dataset "$DS" --archive-dataset "$AR" > "$O/status-refused.txt" 2>&1
mount -t zfs "$DS" "$R"
"$D" record --root "$R" --dataset "$DS" --archive-dataset "$AR" --no-default-manifest > "$O/record.out" 2>&1; echo $? > "$O/record.code"
umount "$R"
run initrd "$D" rollback --initrd --dataset "$DS" --archive-dataset "$AR"
mount -t zfs "$DS" "$R"
tree "$R" > "$O/after-initrd.tree"
grep -c darlings /proc/self/mountinfo > "$O/mounts-left-initrd"

say "initrd with the claims of the record"
# An impermanence system: claims realised by bind mounts from a persist dataset.
zfs create -o mountpoint=legacy tank/safe/persist
mkdir -p /mnt/persist && mount -t zfs tank/safe/persist /mnt/persist
mkdir -p /mnt/persist/home/alice/.ssh /mnt/persist/var/lib/nixos
echo key > /mnt/persist/home/alice/.ssh/id_ed25519
cat > /scratch/persistence.json <<'J'
{"/persist": {"directories": ["/var/lib/nixos"], "users": {"alice": {"home": "/home/alice", "directories": [".ssh"]}}}}
J
zboot() {
  mkdir -p "$R/home/alice/.ssh" "$R/var/lib/nixos" "$R/persist"
  mount --bind /mnt/persist "$R/persist"
  mount --bind /mnt/persist/home/alice/.ssh "$R/home/alice/.ssh"
  mount --bind /mnt/persist/var/lib/nixos "$R/var/lib/nixos"
}
zshutdown() { umount "$R/var/lib/nixos" "$R/home/alice/.ssh" "$R/persist"; sync; umount "$R"; }
zrecord() {
  "$D" record --root "$R" --dataset "$DS" --archive-dataset "$AR" --no-default-manifest \
    --impermanence /scratch/persistence.json > "$O/$1.out" 2>&1
  echo $? > "$O/$1.code"
}
zboot
zrecord record-claims
zshutdown
run initrd-claims "$D" rollback --initrd --dataset "$DS" --archive-dataset "$AR"
"$D" status --dataset "$DS" --archive-dataset "$AR" --format prometheus > "$O/initrd-claims.prom" 2>&1
mount -t zfs "$DS" "$R"
tree "$R" > "$O/after-initrd-claims.tree"
zboot
mkdir -p "$R/etc/ssh" && echo hostkey > "$R/etc/ssh/ssh_host_ed25519_key"
zrecord record-critical
zshutdown
run initrd-critical "$D" rollback --initrd --dataset "$DS" --archive-dataset "$AR"
"$D" status --dataset "$DS" --archive-dataset "$AR" --format prometheus > "$O/initrd-critical.prom" 2>&1
"$D" status --dataset "$DS" --archive-dataset "$AR" --format json > "$O/initrd-critical.json" 2>&1
grep -c darlings /proc/self/mountinfo > "$O/mounts-left-claims"

say "lock, record file, used once"
mount -t zfs "$DS" "$R"
rm -r "$R/etc/ssh"
"$D" record --root "$R" --dataset "$DS" --archive-dataset "$AR" --no-default-manifest > /dev/null 2>&1
zfs get -H -o value,source darlings:record "$DS" > "$O/record-pointer.txt" 2>&1
zfs get -H -o value mountpoint,canmount "$AR/darlings-record" > "$O/record-dataset.txt" 2>&1
"$D" archives --dataset "$DS" --archive-dataset "$AR" --format json > "$O/archives-with-record.json" 2>&1
# Another darlings holds the target's lock.
mkdir -p /run/darlings
LF="/run/darlings/zfs-tank%2Flocal%2Froot.lock"
flock -o -x "$LF" sleep 600 & holder=$!
# Go on once it holds the lock (a try without waiting fails).
until ! flock -n -x "$LF" true; do sleep 0.1; done
run locked "$D" rollback --dataset "$DS" --archive-dataset "$AR" --yes
run locked-mark "$D" mark --dataset "$DS" --off
kill "$holder"; wait "$holder" 2>/dev/null
# A snapshot taken while the plan waits for its name: `zfs rollback -r`
# would destroy it, and nobody agreed to that.
echo sneaked > "$R/etc/sneaked"
{ for i in $(seq 1200); do grep -q "Type the name" "$O/sneaked.out" 2>/dev/null && break; sleep 0.05; done
  zfs snapshot "$DS@sneaked"; printf '%s\n' "$DS"; sleep 2; } \
  | script -q -e -f -c "$D rollback --dataset $DS --archive-dataset $AR" /dev/null > "$O/sneaked.out" 2>&1
echo $? > "$O/sneaked.code"
zfs list -H -o name -t snapshot -d 1 "$DS" > "$O/sneaked.snapshots" 2>&1
zfs destroy "$DS@sneaked"
umount "$R"
"$D" rollback --initrd --dataset "$DS" --archive-dataset "$AR" --dry-run > "$O/record-dry.out" 2>&1
"$D" status --dataset "$DS" --archive-dataset "$AR" > "$O/record-kept.txt" 2>&1
run initrd-once "$D" rollback --initrd --dataset "$DS" --archive-dataset "$AR"
"$D" status --dataset "$DS" --archive-dataset "$AR" > "$O/record-used.txt" 2>&1
zfs get -H -o value,source darlings:record "$DS" > "$O/record-pointer-used.txt" 2>&1
run initrd-twice "$D" rollback --initrd --dataset "$DS" --archive-dataset "$AR"
zfs set 'darlings:record={"version":99,"file":"record.json","sha256":"0"}' "$DS"
"$D" status --dataset "$DS" --archive-dataset "$AR" > "$O/record-foreign.txt" 2>&1
run initrd-foreign "$D" rollback --initrd --dataset "$DS" --archive-dataset "$AR"
grep -c darlings /proc/self/mountinfo > "$O/mounts-left-record"
say "done"
