#!/bin/bash
# Runs inside the ZFS guest after zfs-rollback.sh: `darlings restore` from
# an archive received by `zfs receive`, on a pool of its own (rest). A
# rollback archives alice's files (owners, modes, times and extended
# attributes of their own, a FIFO, links, a nasty name); then restore runs
# against a root where alice owns /home/alice: hostile symlinks (a parent
# pointing out of the root, the destination a link with and without
# --force), `..`, a FIFO at the destination, and missing parents that must
# come back as in the archive. Results go to $OUT/restore for
# tests/zfs_restore_guest.rs.
set -uo pipefail
D=$IN/darlings
O=$OUT/restore
mkdir -p "$O"
R=/mnt/rroot
X=/mnt/outside
DS=rest/local/root
AR=rest/safe/darlings
T=(--dataset "$DS" --archive-dataset "$AR")
say() { echo "== $*"; }
# Everything a refusal must leave alone: the root, the outside, the pool.
state() {
  zpool sync rest
  find "$R" "$X" -xdev -printf '%p|%y|%s|%m|%U:%G|%i|%T@|%l\n' | LC_ALL=C sort
  zfs list -Hp -t all -o name,guid,written -r rest
}
# Runs darlings as NAME (bounded: a FIFO must never block it): output, exit
# code, and whether anything changed.
run() {
  local name=$1; shift
  local before; before=$(state)
  timeout 120 "$@" > "$O/$name.out" 2>&1 < /dev/null
  echo $? > "$O/$name.code"
  if [ "$(state)" = "$before" ]; then echo same; else echo changed; fi > "$O/$name.state"
}
# dump [-r] BASE REL…: one line of metadata per entry (recursively with -r).
dump() {
  python3 - "$@" <<'PY'
import hashlib, os, stat, sys
args = sys.argv[1:]
deep = args[0] == "-r"
base, rels = (args[1], args[2:]) if deep else (args[0], args[1:])
def line(rel):
    p = os.path.join(base, rel)
    st = os.lstat(p)
    size = "-" if stat.S_ISDIR(st.st_mode) else st.st_size
    extra = os.readlink(p) if stat.S_ISLNK(st.st_mode) else ""
    if stat.S_ISREG(st.st_mode):
        extra = hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]
    xattrs = "" if stat.S_ISLNK(st.st_mode) else ",".join(
        n + "=" + os.getxattr(p, n).decode() for n in sorted(os.listxattr(p)))
    print(ascii(rel), stat.S_IFMT(st.st_mode), f"{st.st_uid}:{st.st_gid}", oct(stat.S_IMODE(st.st_mode)),
          st.st_nlink, size, st.st_mtime_ns, st.st_atime_ns, ascii(extra), xattrs, sep="|")
for rel in rels:
    line(rel)
    if deep and os.path.isdir(os.path.join(base, rel)) and not os.path.islink(os.path.join(base, rel)):
        for dirpath, dirs, files in os.walk(os.path.join(base, rel)):
            for n in sorted(dirs + files):
                line(os.path.relpath(os.path.join(dirpath, n), base))
PY
}

say "pool"
truncate -s 300M /scratch/rest.img
zpool create -m none rest /scratch/rest.img || exit 1
# atime=off: listing a directory must not change what is compared.
zfs create -p -o mountpoint=legacy -o atime=off "$DS" || exit 1
zfs create -p -o canmount=off -o mountpoint=none rest/safe
mkdir -p "$R" "$X" && mount -t zfs "$DS" "$R" || exit 1
mkdir -p "$R/etc" "$R/var/lib" "$R/home"
zfs snapshot "$DS@blank"
A=$R/home/alice
mkdir -p "$A/.config/fish" "$A/.gnupg" "$R/var/lib/app"
echo state > "$R/var/lib/app/f1"
echo 'set -x EDITOR vi' > "$A/.config/fish/config.fish"
ln -s config.fish "$A/.config/fish/link"
echo key > "$A/.gnupg/private"
ln "$A/.gnupg/private" "$A/.gnupg/hard"
mkfifo "$A/.gnupg/S.gpg-agent"
NASTY=$(printf 'new\nline \033[31mred\\')
mkdir "$A/.gnupg/$NASTY" && printf x > "$A/.gnupg/$NASTY/$(printf 'tab\there')"
chown -R 1000:100 "$A"
chmod 0751 "$A/.config"; chmod 0700 "$A/.config/fish" "$A/.gnupg"; chmod 0640 "$A/.config/fish/config.fish"
chmod 0600 "$A/.gnupg/private"; chmod 2750 "$A/.gnupg/$NASTY"; chmod 0620 "$A/.gnupg/S.gpg-agent"
python3 - "$A" <<'PY'
import os, sys
a = sys.argv[1]
for rel in [".config", ".config/fish", ".config/fish/config.fish", ".gnupg", ".gnupg/private"]:
    os.setxattr(os.path.join(a, rel), "user.darlings-test", ("on " + rel).encode())
PY
find "$A" -depth -exec touch -h -m -d '2001-02-03 04:05:06.123456789' {} + -exec touch -h -a -d '2002-03-04 05:06:07.5' {} +
sync
"$D" mark --dataset "$DS" > /dev/null
"$D" rollback "${T[@]}" --yes --force > "$O/rollback.out" 2>&1 || { cat "$O/rollback.out"; exit 1; }
mkdir "$A" && chown 1000:100 "$A" && chmod 0711 "$A"

say "hostile"
ln -s "$X" "$A/.config"
run parent-link "$D" restore "${T[@]}" /home/alice/.config/fish/config.fish --root "$R"
rm "$A/.config"
echo precious > "$X/target"
mkdir -p "$R/var/lib/app" && ln -s "$X/target" "$R/var/lib/app/f1"
run dest-link "$D" restore "${T[@]}" /var/lib/app/f1 --root "$R"
run dest-link-force "$D" restore "${T[@]}" /var/lib/app/f1 --root "$R" --force
cat "$R/var/lib/app/f1" > "$O/f1.after" 2>&1
run dots "$D" restore "${T[@]}" /var/lib/app/../../../mnt/outside/x --root "$R"
rm "$R/var/lib/app/f1" && mkfifo "$R/var/lib/app/f1"
run fifo "$D" restore "${T[@]}" /var/lib/app/f1 --root "$R"
run fifo-force "$D" restore "${T[@]}" /var/lib/app/f1 --root "$R" --force
stat -c %F "$R/var/lib/app/f1" > "$O/fifo.type"
ls -A "$X" > "$O/outside.ls"
cat "$X/target" > "$O/target.after"

say "parents"
stat -c '%u:%g %a' "$A" > "$O/home.before"
run config "$D" restore "${T[@]}" /home/alice/.config/fish/config.fish --root "$R"
run gnupg "$D" restore "${T[@]}" /home/alice/.gnupg --root "$R"
ls -A "$A" "$A/.config/fish" > "$O/ls"
stat -c '%u:%g %a' "$A" > "$O/home.after"
grep -c darlings /proc/self/mountinfo > "$O/mounts-left"
ARC=$(zfs list -H -o name -d 1 "$AR" | grep -v "^$AR\$" | head -1)
mkdir -p /mnt/rarchive && mount -t zfs -o ro "$ARC@darlings-${ARC##*/}" /mnt/rarchive || exit 1
dump /mnt/rarchive/home/alice .config .config/fish > "$O/parents.archive"
dump "$A" .config .config/fish > "$O/parents.root"
{ dump /mnt/rarchive/home/alice .config/fish/config.fish; dump -r /mnt/rarchive/home/alice .gnupg; } > "$O/entries.archive"
{ dump "$A" .config/fish/config.fish; dump -r "$A" .gnupg; } > "$O/entries.root"
umount /mnt/rarchive
say "done"
echo done > "$O/done"
