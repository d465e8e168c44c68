#!/usr/bin/env bash
# Fuzzes the zfs diff parser and the change tree for a bounded time
# (default 120 s; FUZZ_SECONDS changes it), seeded with the recorded diffs.
# Not run by CI. Needs cargo-fuzz (`cargo install cargo-fuzz`); the stable
# toolchain is told to accept the sanitizer flags with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/zfs_diff
cp ../tests/fixtures/*.zfsdiff corpus/zfs_diff/
RUSTC_BOOTSTRAP=1 cargo fuzz run zfs_diff corpus/zfs_diff -- -max_total_time="${FUZZ_SECONDS:-120}" -max_len=4096
