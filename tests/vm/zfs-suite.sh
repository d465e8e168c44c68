#!/usr/bin/env bash
# The ZFS part of the test suite: boots the ZFS guest once (building its
# image first if the cache has none), runs tests/vm/zfs-guest.sh in it with
# the freshly built darlings, and checks the results on the host with
# tests/zfs_guest.rs. Fails loudly if the guest cannot start.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --locked --bin darlings
IN=$(mktemp -d)
RES=${DARLINGS_ZFS_RESULTS:-$(mktemp -d)}
cp target/debug/darlings "$IN/darlings"
cp tests/vm/zfs-guest.sh tests/vm/zfs-rollback.sh tests/vm/zfs-restore.sh "$IN/"
# One boot: the sources scenario, then the rollback one (its own pool).
cat > "$IN/run.sh" <<'EOF'
bash "$IN/zfs-guest.sh"; sources=$?
bash "$IN/zfs-rollback.sh" > "$OUT/rollback.log" 2>&1; rollback=$?
bash "$IN/zfs-restore.sh" > "$OUT/restore.log" 2>&1 || echo "restore scenario: $? (tests/zfs_restore_guest.rs says what)"
echo "sources scenario: $sources, rollback scenario: $rollback"
[ "$sources" = 0 ] && [ "$rollback" = 0 ]
EOF
tests/vm/run-vm.sh "$IN" "$RES"
if [ "$(cat "$RES/status")" != 0 ]; then
  echo "zfs-suite: the guest scenario failed:" >&2
  tail -40 "$RES/guest.log" >&2
  tail -40 "$RES/rollback.log" >&2 2>/dev/null || true
  exit 1
fi
DARLINGS_ZFS_RESULTS=$RES cargo test --locked --test zfs_guest --test zfs_rollback_guest --test zfs_restore_guest
