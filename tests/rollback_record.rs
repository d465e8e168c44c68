//! The record `darlings record` keeps at shutdown for the initrd, on a
//! real btrfs (a loop device in a private mount namespace): a file beside
//! the root of any size, a pointer with its digest on the root, used at
//! most once, and never left behind old when a new one fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod rollback_common;

use rollback_common::run;
use serde_json::Value;

/// 10,000 declared claims: recorded (about 1 MB, far past what an extended
/// attribute holds), read back whole by the initrd's rollback.
#[test]
fn a_record_of_ten_thousand_claims_round_trips() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
python3 - "$WORK/claims.json" <<'P'
import json, sys
files = ["/var/lib/app/f%05d-%s" % (i, "x" * 60) for i in range(10000)]
json.dump({"/persist": {"files": files}}, open(sys.argv[1], "w"))
P
mkdir r && mount -o subvol=root "$LOOP" r
$D record --root r --mountpoint m --no-default-manifest --impermanence "$WORK/claims.json" > "$OUT/record.out" 2> "$OUT/record.err"
echo $? > "$OUT/record.code"
umount r
stat -c %s m/.darlings/* > "$OUT/size"
$D status --mountpoint m --format json > "$OUT/status.json"
$D rollback --initrd --mountpoint m --dry-run --format json > "$OUT/plan.json" 2>&1
"#);
    assert!(r.code("record") <= 1, "{}", r.text("record.err"));
    let size: u64 = r.text("size").trim().parse().unwrap();
    assert!(size > 700_000, "the record file holds every claim: {size} bytes");
    let status = r.json("status.json");
    assert_eq!(status["record"]["claims"], 10_000, "{}", status["record"]);
    let plan = r.json("plan.json");
    let notes: Vec<&str> = plan["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert!(notes.iter().any(|n| n.contains("the claims are the 10000 declared at shutdown")), "{notes:?}");
}

/// A record that fails leaves none: the one before it is gone first, so
/// the initrd refuses (and says so in `status`) instead of acting on an
/// older decision. A record of another format, or one whose file is not
/// the one its pointer names, is refused too.
#[test]
fn a_failed_or_foreign_record_is_never_acted_on() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
mkdir r && mount -o subvol=root "$LOOP" r
$D record --root r --mountpoint m --no-default-manifest > /dev/null 2>&1
$D status --mountpoint m > "$OUT/first.status"
# The next record cannot change the directory that keeps it.
chattr +i m/.darlings
$D record --root r --mountpoint m --no-default-manifest > "$OUT/failed.out" 2>&1; echo $? > "$OUT/failed.code"
chattr -i m/.darlings
$D status --mountpoint m > "$OUT/failed.status"
# A full disk at shutdown: a large record cannot be written.
python3 - "$WORK/claims.json" <<'P'
import json, sys
files = ["/var/lib/app/f%05d-%s" % (i, "x" * 60) for i in range(10000)]
json.dump({"/persist": {"files": files}}, open(sys.argv[1], "w"))
P
$D record --root r --mountpoint m --no-default-manifest > /dev/null 2>&1
$D status --mountpoint m > "$OUT/large.status"
dd if=/dev/zero of=m/fill bs=1M 2>/dev/null; sync
dd if=/dev/zero of=m/fill2 bs=4K 2>/dev/null; sync
$D record --root r --mountpoint m --no-default-manifest --impermanence "$WORK/claims.json" > "$OUT/full.out" 2>&1; echo $? > "$OUT/full.code"
$D status --mountpoint m > "$OUT/full.status"
rm m/fill m/fill2; sync
umount r
icheck initrd-after-failure $D rollback --initrd --mountpoint m
$D status --mountpoint m --format json > "$OUT/after-failure.json"
# A record of a format this darlings does not know.
mount -o subvol=root "$LOOP" r
$D record --root r --mountpoint m --no-default-manifest > /dev/null 2>&1
python3 -c 'import os, json; os.setxattr("m/root", "user.darlings.audit", json.dumps({"version": 99, "file": "x", "sha256": "0"}).encode())'
$D status --mountpoint m > "$OUT/foreign.status"
# A pointer that names another file than the target's record.
python3 -c 'import os, json; os.setxattr("m/root", "user.darlings.audit", json.dumps({"version": 2, "file": "../root/etc/x", "sha256": "0"}).encode())'
$D status --mountpoint m > "$OUT/elsewhere-pointer.status"
# A file that is not the one the pointer names.
$D record --root r --mountpoint m --no-default-manifest > /dev/null 2>&1
echo ' ' >> m/.darlings/*.json
umount r
icheck initrd-changed $D rollback --initrd --mountpoint m
# --invalidate, as the running system does when it comes up.
mount -o subvol=root "$LOOP" r
$D record --root r --mountpoint m --no-default-manifest > /dev/null 2>&1
$D record --invalidate --mountpoint m > "$OUT/invalidate.out" 2>&1; echo $? > "$OUT/invalidate.code"
$D status --mountpoint m > "$OUT/invalidated.status"
ls -A m/.darlings > "$OUT/invalidated.ls"
$D record --invalidate --mountpoint m > "$OUT/invalidate-again.out" 2>&1
# A record of something else than the root the rollback erases: refused,
# and the record before it is gone all the same.
$D record --root r --mountpoint m --no-default-manifest > /dev/null 2>&1
mkdir "$WORK/elsewhere"
$D record --root "$WORK/elsewhere" --mountpoint m --no-default-manifest > "$OUT/elsewhere.out" 2>&1; echo $? > "$OUT/elsewhere.code"
$D status --mountpoint m > "$OUT/elsewhere.status"
$D record --root r --mountpoint m --subvolume nosuch --no-default-manifest > "$OUT/nosuch.out" 2>&1; echo $? > "$OUT/nosuch.code"
ls -A m/.darlings > "$OUT/nosuch.ls"
"#);
    assert!(r.text("first.status").contains("the next rollback may erase"), "{}", r.text("first.status"));
    let failed = r.text("failed.out");
    assert_eq!(r.code("failed"), 2, "{failed}");
    assert!(failed.contains("cannot remove the record"), "{failed}");
    let status = r.text("failed.status");
    assert!(status.contains("recorded audit: none"), "the old record is gone: {status}");
    assert!(r.text("large.status").contains("the next rollback may erase"), "{}", r.text("large.status"));
    let full = r.text("full.out");
    let head = &full[..full.len().min(400)];
    assert_eq!(r.code("full"), 2, "{head}");
    assert!(full.contains("cannot write the record") && full.contains("No space left"), "{head}");
    let status = r.text("full.status");
    assert!(status.contains("recorded audit: none"), "the old record is gone: {status}");
    r.refused("initrd-after-failure", 0, "no audit was recorded at shutdown");
    let after = r.json("after-failure.json");
    assert_eq!(after["last_rollback"]["outcome"], "refused", "{after}");

    let foreign = r.text("foreign.status");
    assert!(foreign.contains("format version 99 is not one this darlings reads"), "{foreign}");
    r.refused("initrd-changed", 0, "is not the one recorded (its digest differs)");
    let pointer = r.text("elsewhere-pointer.status");
    assert!(pointer.contains("its pointer names ../root/etc/x, not this target's record"), "{pointer}");

    assert_eq!(r.code("invalidate"), 0, "{}", r.text("invalidate.out"));
    assert!(r.text("invalidated.status").contains("recorded audit: none"));
    assert_eq!(r.text("invalidated.ls"), "", "no record file is left");
    assert!(
        r.text("invalidate-again.out").contains("there was no recorded audit"),
        "{}",
        r.text("invalidate-again.out")
    );

    let elsewhere = r.text("elsewhere.out");
    assert_eq!(r.code("elsewhere"), 2, "{elsewhere}");
    assert!(
        elsewhere.contains("is not btrfs subvolume root")
            && elsewhere.contains("the root the rollback erases"),
        "{elsewhere}"
    );
    assert!(r.text("elsewhere.status").contains("recorded audit: none"), "{}", r.text("elsewhere.status"));
    let nosuch = r.text("nosuch.out");
    assert_eq!(r.code("nosuch"), 2, "{nosuch}");
    assert!(nosuch.contains("there is no subvolume nosuch") && nosuch.contains("there are: "), "{nosuch}");
    assert_eq!(r.text("nosuch.ls"), "", "no stray record file: {nosuch}");
}

/// Two records at once, or a record during a rollback: one at a time.
#[test]
fn record_takes_the_targets_lock() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
mkdir r && mount -o subvol=root "$LOOP" r
# Hold the lock as a rollback would: the same file, from a shell.
name=$(python3 -c 'import os; print("btrfs-%016x.lock" % os.statvfs("m").f_fsid)')
# It holds the lock until $WORK/done exists; the test goes on once the
# lock is taken (a try without waiting fails), never after a guessed time.
( flock -x 9; echo $$ >&9; until [ -e "$WORK/done" ]; do sleep 0.05; done ) 9>>"/run/darlings/$name" &
until ! flock -n -x "/run/darlings/$name" true; do sleep 0.05; done
$D record --root r --mountpoint m --no-default-manifest > "$OUT/held.out" 2>&1; echo $? > "$OUT/held.code"
# Waiting: let go while the second record waits.
$D record --root r --mountpoint m --no-default-manifest --wait 30 > "$OUT/waited.out" 2>&1 & w=$!
touch "$WORK/done"
wait $w; echo $? > "$OUT/waited.code"
wait
"#);
    let held = r.text("held.out");
    assert_eq!(r.code("held"), 2, "{held}");
    assert!(held.contains("is locked by another darlings, pid "), "{held}");
    let waited = r.text("waited.out");
    assert!(r.code("waited") <= 1, "{waited}");
    let record: Value = serde_json::from_str(waited.trim()).unwrap();
    assert_eq!(record["version"], 2, "{record}");
}

/// The record's claims reach the initrd's audit as they were declared, in
/// memory: no file is written for them on the way (an `--impermanence`
/// file written and parsed again could lose or change a claim), and the
/// audit names them from the record.
#[test]
fn the_recorded_claims_reach_the_audit_without_a_file() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    require_tool!("strace", "strace");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
printf '%s' '{"/persist": {"directories": ["/var/lib/app"], "files": ["/etc/machine-id"]}}' > "$WORK/claims.json"
mkdir r && mount -o subvol=root "$LOOP" r
$D record --root r --mountpoint m --no-default-manifest --impermanence "$WORK/claims.json" > /dev/null 2>&1
umount r
strace -f -qq -o "$OUT/trace" -e trace=openat,open,creat $D rollback --initrd --mountpoint m --dry-run --format json > "$OUT/plan.json" 2>/dev/null
grep -E 'O_CREAT|creat\(' "$OUT/trace" > "$OUT/created" || true
"#);
    let created = r.lines("created");
    let files: Vec<&String> = created.iter().filter(|l| !l.contains(".lock\"")).collect();
    assert!(files.is_empty(), "only lock files are made: {files:#?}");
    let plan = r.json("plan.json");
    let notes = plan["notes"].to_string();
    assert!(notes.contains("the claims are the 2 declared at shutdown"), "{notes}");
    // The claim on /var/lib/app holds content on the root: the record's
    // own decision (claims checked at shutdown) is what refuses.
    assert!(plan["refusals"].to_string().contains("the audit recorded at shutdown"), "{}", plan["refusals"]);
}
