#!/usr/bin/env bash
# The whole test suite (the README's test command; .ci/run runs it):
# real ZFS in a QEMU guest first (it builds and caches the guest image on
# first use), then every unit and end-to-end test, the guest's results
# checked among them. Run as root: the tests mount, bind-mount, make device
# nodes and switch users.
#
# A test that cannot run its real system (no root, no btrfs-progs, no
# nix-bin, no guest results) fails under CI (CI=true); run by hand, it is
# skipped, and the list of what was skipped is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

# Packages the tests use: unshare and setpriv (util-linux), mount (mount),
# chmod (coreutils), mkfs.btrfs and btrfs (btrfs-progs), mkfs.ext4 (e2fsprogs: a
# claim on a loop-mounted image), nix-instantiate
# (nix-bin: the shipped Nix expression is evaluated for real), strace (the
# confinement tests watch every file darlings touches; they also use
# util-linux's prlimit), GNU time (the deep-tree tests measure peak memory
# with /usr/bin/time), python3 (the restore tests set and read xattrs with
# it), script (bsdutils, essential: the table tests run on a real pty).
# tests/vm/build-image.sh installs what the ZFS guest needs (debootstrap,
# QEMU's libraries) when it builds the image.
need=()
for pkg in util-linux mount coreutils bsdutils btrfs-progs e2fsprogs nix-bin strace time python3; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ] && [ "$(id -u)" != 0 ]; then
  echo "tests/all.sh: the tests need these Debian packages; as root: apt-get install ${need[*]}" >&2
elif [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi

# Nix makes its database on first use; tests evaluating in parallel on a
# fresh machine would race to make it ("database is busy"): make it once.
if command -v nix-instantiate > /dev/null; then
  NIX_REMOTE= nix-instantiate --eval -E 1 > /dev/null 2>&1 || true
fi

DARLINGS_ZFS_RESULTS=$(mktemp -d)
DARLINGS_SKIP_LOG=$(mktemp)
export DARLINGS_ZFS_RESULTS DARLINGS_SKIP_LOG
trap 'rm -rf "$DARLINGS_ZFS_RESULTS" "$DARLINGS_SKIP_LOG"' EXIT
tests/vm/zfs-suite.sh
cargo test --locked
if [ -s "$DARLINGS_SKIP_LOG" ]; then
  echo "tests/all.sh: these tests could not run their real system and were SKIPPED:" >&2
  sort -u "$DARLINGS_SKIP_LOG" | sed 's/^/  /' >&2
fi
