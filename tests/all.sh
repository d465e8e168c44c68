#!/usr/bin/env bash
# The whole test suite (the README's test command; .ci/run runs it):
# unit and end-to-end tests, then real ZFS in a QEMU guest. Run as root:
# the tests mount, bind-mount, make device nodes and switch users.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked
tests/vm/zfs-suite.sh
