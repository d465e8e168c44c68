//! The harness of the btrfs rollback tests: a real btrfs on a loop device
//! in a private mount namespace, a lived-in root beside its read-only
//! blank, and a bash scenario whose results the test reads back.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::common;

/// The filesystem every test starts from: `root` (a lived-in state with
/// a nested subvolume and an odd name) beside its read-only `root-blank`.
/// `state` prints everything a refusal must leave alone: every name, its
/// type, size, mode, inode and mtime, every extended attribute (darlings
/// keeps its mark, record and archives there) but the outcome a refusal
/// records for `status`, and the subvolumes. Not
/// the subvolumes' generations: a rollback that goes past the guards known
/// before its audit commits the filesystem's pending writes while it
/// audits, which moves the generation even when the audit then refuses.
const SETUP: &str = r#"
set -u
cd "$WORK"
truncate -s 300M fs.img
mkfs.btrfs -q fs.img >/dev/null
mkdir m && mount -o loop fs.img m
LOOP=$(findmnt -n -o SOURCE --target m)
btrfs -q subvolume create m/root
mkdir -p m/root/etc m/root/var/lib
echo orig > m/root/etc/blank.conf
btrfs -q subvolume snapshot -r m/root m/root-blank
mkdir -p m/root/var/lib/app m/root/home/u
echo state > m/root/var/lib/app/db
printf x > "m/root/home/u/$(printf 'odd\nname')"
echo changed >> m/root/etc/blank.conf
btrfs -q subvolume create m/root/var/lib/machines
echo inside > m/root/var/lib/machines/m1
state() {
  (cd m && find . -printf '%p|%y|%s|%m|%i|%T@\n' | LC_ALL=C sort
   python3 -c 'import os
for d, dirs, files in sorted(os.walk(b".")):
    for n in [b""] + sorted(dirs + files):
        p = os.path.join(d, n) if n else d
        for a in sorted(os.listxattr(p, follow_symlinks=False)):
            if a == "user.darlings.last-rollback": continue
            print(p, a, os.getxattr(p, a, follow_symlinks=False))'
   btrfs subvolume list -a -u . | sed 's/ gen [0-9]*//')
}
# The same but for the recorded audit, which a rollback in the initrd
# takes away as it reads it, whatever it then decides.
state_but_record() { state | grep -v -e 'user.darlings.audit' -e '^\./\.darlings'; }
tree() { (cd "$1" && find . -printf '%p|%y|%s|%m\n' | LC_ALL=C sort); }
# Runs darlings as NAME, keeping its output, exit code, and whether the filesystem changed.
check() {
  name=$1; shift
  before=$(state)
  "$@" > "$OUT/$name.out" 2>&1 < /dev/null
  echo $? > "$OUT/$name.code"
  if [ "$(state)" = "$before" ]; then echo same; else echo changed; fi > "$OUT/$name.state"
}
# A btrfs at $WORK/fake/btrfs (put it first on PATH) that runs the sh
# lines $1 before the real btrfs, with the real one's arguments.
fake_btrfs() {
  mkdir -p "$WORK/fake"
  printf '#!/bin/sh\n%s\nexec %s "$@"\n' "$1" "$(command -v btrfs)" > "$WORK/fake/btrfs"
  chmod +x "$WORK/fake/btrfs"
}
# Runs `darlings rollback --mountpoint m ARGS…` on a real terminal
# (script) as NAME; once it waits for the name, puts the archive name its
# plan shows in $WORK/name, runs the sh lines ACT, then types the name.
at_prompt() {
  name=$1; act=$2; shift 2
  : > "$OUT/$name.out"
  { for i in $(seq 400); do grep -q "Type the name" "$OUT/$name.out" && break; sleep 0.05; done
    sed -n 's|.*way back: .*/old_roots/\([^ ]*\) .*|\1|p' "$OUT/$name.out" > "$WORK/name"
    eval "$act"
    printf 'root\n'
    sleep 1; } | script -q -e -f -c "$D rollback --mountpoint m $*" /dev/null > "$OUT/$name.out" 2>&1
  echo $? > "$OUT/$name.code"
}
# `check` for a rollback in the initrd: everything but the record.
icheck() {
  name=$1; shift
  before=$(state_but_record)
  "$@" > "$OUT/$name.out" 2>&1 < /dev/null
  echo $? > "$OUT/$name.code"
  if [ "$(state_but_record)" = "$before" ]; then echo same; else echo changed; fi > "$OUT/$name.state"
}
"#;

pub struct Run {
    _work: tempfile::TempDir,
    out: PathBuf,
}

impl Run {
    pub fn text(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub fn code(&self, name: &str) -> i32 {
        self.text(&format!("{name}.code")).trim().parse().expect("a code")
    }

    /// A refusal: its exit code, its message, and nothing changed.
    pub fn refused(&self, name: &str, code: i32, says: &str) {
        let out = self.text(&format!("{name}.out"));
        assert_eq!(self.code(name), code, "{name}: {out}");
        assert_eq!(
            self.text(&format!("{name}.state")).trim(),
            "same",
            "{name} changed the filesystem: {out}"
        );
        assert!(out.contains(says), "{name} does not say {says:?}:\n{out}");
        assert!(out.contains("Refused, nothing was changed"), "{name}:\n{out}");
    }

    pub fn json(&self, name: &str) -> serde_json::Value {
        let text = self.text(name);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON ({e}):\n{text}"))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    pub fn lines(&self, name: &str) -> Vec<String> {
        self.text(name).lines().map(str::to_owned).collect()
    }
}

/// Runs SETUP then `body` in bash, in a private mount namespace; `$D` is
/// darlings, `$OUT` collects what the checks read.
pub fn run(body: &str) -> Run {
    let (work, out) = scenario(SETUP, body);
    Run { _work: work, out }
}

/// Runs `setup` then `body` in bash, in a private mount namespace, in a
/// new work directory (`$WORK`); `$D` is darlings, `$OUT` (returned with
/// the work directory, which lives as long as it) collects what the checks
/// read. The scenario must succeed.
pub fn scenario(setup: &str, body: &str) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let script = format!("{setup}\n{body}\n");
    let result = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "bash", "-c", &script])
        .env("D", common::bin())
        .env("WORK", work.path())
        .env("OUT", &out)
        .stdin(Stdio::null())
        .output()
        .expect("unshare");
    assert!(
        result.status.success(),
        "scenario failed:\n{}\n{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    (work, out)
}
