#!/usr/bin/env bash
# Builds, once, the Debian guest that runs real ZFS for darlings' ZFS tests,
# and prints the directory holding it. The result is cached outside the
# source tree, keyed by this recipe (this script and guest-init.sh): a change
# to either builds a new image; an unchanged recipe reuses the cache.
#
#   $DIR/qemu/        qemu-system-x86_64 unpacked from Debian's packages
#   $DIR/boot/        the guest kernel and initrd
#   $DIR/root.img     ext4 image of the guest (bookworm, zfs-dkms built for
#                     the guest kernel); attached with snapshot=on, never changed
#
# Needs root and Debian's package mirror. Takes about 20 minutes (the ZFS
# module build dominates). Why QEMU must emulate (no KVM, no host ZFS) and
# why qemu-system-x86 cannot be apt-installed here: see the project's notes
# in tests/vm/README.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KEY=$(cat "$HERE/build-image.sh" "$HERE/guest-init.sh" | sha256sum | cut -c1-16)
CACHE=${DARLINGS_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/darlings-zfs-vm}
DIR=$CACHE/$KEY
mkdir -p "$CACHE"
# stdout carries exactly one line, the image directory: everything the build
# runs writes to stderr (mkfs.ext4 -q still prints "Creating regular file"
# on stdout when the image file is new).
exec 3>&1 1>&2
exec 9>"$CACHE/.lock"
flock 9
if [ -f "$DIR/ready" ]; then echo "$DIR" >&3; exit 0; fi

log() { echo "[build-image $(date +%T)] $*" >&2; }
rm -rf "$DIR.tmp"; mkdir -p "$DIR.tmp"; cd "$DIR.tmp"
export DEBIAN_FRONTEND=noninteractive
APT="apt-get -o DPkg::Lock::Timeout=900 -y -q --no-install-recommends"

log "host packages: debootstrap, QEMU's libraries and firmware"
apt-get -o DPkg::Lock::Timeout=900 -q update >&2
$APT install debootstrap e2fsprogs qemu-system-data seabios ipxe-qemu \
  libaio1 libbpf1 libcapstone4 libfdt1 libfuse3-3 libibverbs1 libjpeg62-turbo libnuma1 \
  libpixman-1-0 libpmem1 libpng16-16 librdmacm1 libsasl2-2 libslirp0 liburing2 libvdeplug2 >&2
mkdir -p debs qemu
(cd debs && apt-get -q download qemu-system-x86 qemu-system-common >&2)
for deb in debs/*.deb; do dpkg -x "$deb" qemu; done
rm -rf debs
qemu/usr/bin/qemu-system-x86_64 --version | head -1 >&2

MIRROR=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
log "debootstrap bookworm from $MIRROR"
debootstrap --variant=minbase --components=main,contrib bookworm rootfs "$MIRROR" > debootstrap.log 2>&1 \
  || { tail -20 debootstrap.log >&2; exit 1; }

R=$PWD/rootfs
cat > "$R/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
rm -f "$R/etc/apt/sources.list"
# Snapshot mirrors serve Release files past their Valid-Until date.
echo 'Acquire::Check-Valid-Until "false"; Acquire::Languages "none";' > "$R/etc/apt/apt.conf.d/99darlings"
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"; chmod +x "$R/usr/sbin/policy-rc.d"
echo darlings-zfs > "$R/etc/hostname"
mount -t proc proc "$R/proc"; mount -t sysfs sys "$R/sys"
mount --bind /dev "$R/dev"; mount --bind /dev/pts "$R/dev/pts"
cleanup() { for m in dev/pts dev sys proc; do umount "$R/$m" 2>/dev/null || true; done; }
trap cleanup EXIT

log "guest kernel, busybox, zfsutils"
chroot "$R" apt-get -q update >&2
chroot "$R" $APT install linux-image-amd64 linux-headers-amd64 busybox kmod udev zfsutils-linux \
  > chroot-pkgs.log 2>&1 || { tail -20 chroot-pkgs.log >&2; exit 1; }
KVER=$(ls "$R/lib/modules" | sort -V | tail -1)   # the guest's kernel, not this machine's
log "zfs-dkms for guest kernel $KVER (the long part)"
chroot "$R" $APT install zfs-dkms > chroot-dkms.log 2>&1 || { tail -20 chroot-dkms.log >&2; exit 1; }
chroot "$R" dkms status -k "$KVER" | grep -q ': installed' || chroot "$R" dkms autoinstall -k "$KVER" >&2
test -f "$R/lib/modules/$KVER/updates/dkms/zfs.ko"
chroot "$R" apt-get clean
cleanup; trap - EXIT

install -m 0755 "$HERE/guest-init.sh" "$R/darlings-init"
mkdir -p boot
cp "$R/boot/vmlinuz-$KVER" "$R/boot/initrd.img-$KVER" boot/
log "root image"
mkfs.ext4 -q -F -L darlings-zfs -d "$R" root.img 3G
rm -rf "$R"
touch ready
cd "$CACHE"; rm -rf "$DIR"; mv "$DIR.tmp" "$DIR"
log "ready: $DIR"
echo "$DIR" >&3
