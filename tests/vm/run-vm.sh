#!/usr/bin/env bash
# Boots the cached ZFS guest once with the files of INPUT_DIR (it must hold
# run.sh, which the guest runs as root) and unpacks what run.sh left in
# $OUT into RESULT_DIR. Fails loudly when the guest does not start or
# brings nothing back.
#
#   tests/vm/run-vm.sh INPUT_DIR RESULT_DIR
#
# QEMU runs in software emulation (TCG): this machine's /dev/kvm cannot boot
# an unmodified guest kernel. TIMEOUT (seconds, default 1800) bounds the run;
# SCRATCH_SIZE (default 2G) sizes the sparse disk the guest's pool lives on.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
IN=${1:?usage: run-vm.sh INPUT_DIR RESULT_DIR}
RES=${2:?usage: run-vm.sh INPUT_DIR RESULT_DIR}
IMAGE=$("$HERE/build-image.sh")
KVER=$(ls "$IMAGE/boot" | sed -n 's/^vmlinuz-//p' | head -1)
QEMU=$IMAGE/qemu/usr/bin/qemu-system-x86_64
[ -f "$IN/run.sh" ] || { echo "run-vm: $IN/run.sh is missing" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
tar -cf "$WORK/in.tar" -C "$IN" .
truncate -s "${SCRATCH_SIZE:-2G}" "$WORK/scratch.img"   # sparse: the guest's pool lives here
truncate -s 256M "$WORK/out.img"     # the guest writes a tar of its results here
mkdir -p "$RES"

echo "run-vm: booting $IMAGE (kernel $KVER) under TCG" >&2
start=$(date +%s)
status=0
timeout "${TIMEOUT:-1800}" "$QEMU" -accel tcg -cpu max -m 2048 -smp 2 \
  -nographic -no-reboot -nic none -L "$IMAGE/qemu/usr/share/qemu" -L /usr/share/seabios -L /usr/share/qemu \
  -kernel "$IMAGE/boot/vmlinuz-$KVER" -initrd "$IMAGE/boot/initrd.img-$KVER" \
  -append "console=ttyS0 root=/dev/vda rw init=/darlings-init panic=-1 quiet" \
  -drive "file=$IMAGE/root.img,if=virtio,format=raw,snapshot=on" \
  -drive "file=$WORK/scratch.img,if=virtio,format=raw" \
  -drive "file=$WORK/in.tar,if=virtio,format=raw,readonly=on" \
  -drive "file=$WORK/out.img,if=virtio,format=raw" \
  < /dev/null > "$RES/console.log" 2>&1 || status=$?
echo "run-vm: qemu exited with $status after $(( $(date +%s) - start ))s" >&2
if ! tar -xf "$WORK/out.img" -C "$RES" 2>/dev/null || [ ! -f "$RES/status" ]; then
  echo "run-vm: the guest brought no results back; its console says:" >&2
  tail -40 "$RES/console.log" >&2
  exit 1
fi
echo "run-vm: guest script exited with $(cat "$RES/status")" >&2
