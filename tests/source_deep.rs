//! A tree any local user can build: a chain of directories far deeper than
//! `PATH_MAX`, with long names. The change sources must cost memory in
//! proportion to it, not to depth × path length, and still read the live
//! tree at the bottom of it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Command;

use rustix::fs::{Mode, OFlags};

const DEPTH: usize = 1200;
const NAME: usize = 250;
/// Peak RSS allowed for one audit of the chain. Its path is 300 KB; a copy
/// per level would be 180 MB.
const LIMIT_KB: u64 = 64 * 1024;

fn name(level: usize) -> Vec<u8> {
    let mut n = format!("{level}-").into_bytes();
    n.resize(NAME, b'd');
    n
}

/// `DEPTH` nested directories below `top`, a file `leaf` at the bottom
/// holding `content`, built with `openat` (the path is far beyond PATH_MAX).
fn chain(top: &Path, content: &[u8]) {
    chain_with_mode(top, content, 0o755);
}

fn chain_with_mode(top: &Path, content: &[u8], mode: u32) {
    let open = |at: &OwnedFd, name: &[u8]| {
        rustix::fs::openat(at, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .expect("open level")
    };
    let mut dir = rustix::fs::open(top, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .expect("open top");
    for level in 0..DEPTH {
        rustix::fs::mkdirat(&dir, name(level), Mode::from_raw_mode(0o755)).expect("mkdir level");
        rustix::fs::chmodat(&dir, name(level), Mode::from_raw_mode(mode), rustix::fs::AtFlags::empty())
            .expect("chmod level");
        dir = open(&dir, &name(level));
    }
    let leaf = rustix::fs::openat(
        &dir,
        "leaf",
        OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .expect("create leaf");
    rustix::io::write(&leaf, content).expect("write leaf");
}

/// The leaf's path as the audited system sees it.
fn leaf_path() -> Vec<u8> {
    let mut p = Vec::new();
    for level in 0..DEPTH {
        p.push(b'/');
        p.extend_from_slice(&name(level));
    }
    p.extend_from_slice(b"/leaf");
    p
}

/// Runs darlings under GNU time: its JSON report (`--flat`) and its peak
/// RSS in KB.
fn audit_measured(args: &[&std::ffi::OsStr]) -> (serde_json::Value, u64) {
    audit_measured_as(&[&["--flat".as_ref()], args].concat())
}

fn audit_measured_as(args: &[&std::ffi::OsStr]) -> (serde_json::Value, u64) {
    let time = Path::new("/usr/bin/time");
    assert!(time.exists(), "this test measures memory with GNU time (/usr/bin/time): install it");
    let out = Command::new(time)
        .args(["-f", "%M", common::bin(), "audit", "--format", "json"])
        .args(args)
        .output()
        .expect("run darlings under time");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kb = stderr.lines().rev().find_map(|l| l.trim().parse::<u64>().ok()).expect("time's %M");
    eprintln!("peak RSS {kb} KB");
    (common::parse_json(&out), kb)
}

/// The one finding, its path checked: (change, size).
fn only_leaf(json: &serde_json::Value) -> (String, serde_json::Value) {
    let f = common::findings(json);
    assert_eq!(f.len(), 1, "one finding: the leaf");
    let (path, finding) = f.into_iter().next().expect("a finding");
    assert!(path == leaf_path(), "the leaf's exact path ({} bytes, not {})", path.len(), leaf_path().len());
    (finding["change"].as_str().unwrap_or("").to_owned(), finding["size"].clone())
}

#[test]
fn a_baseline_of_a_deep_chain_costs_linear_memory_and_reads_the_leaf() {
    let (live, blank) = (common::Tree::new(), common::Tree::new());
    chain(live.root(), b"changed since the blank state\n");
    chain(blank.root(), b"blank\n");
    let (json, kb) = audit_measured(&[
        "--root".as_ref(),
        live.root().as_os_str(),
        "--baseline".as_ref(),
        blank.root().as_os_str(),
    ]);
    assert!(kb < LIMIT_KB, "peak RSS {kb} KB, more than {LIMIT_KB} KB");
    assert!(json["errors"].as_array().is_some_and(Vec::is_empty), "{}", json["errors"]);
    // Its size comes from the live tree, 300 KB of path below the root.
    assert_eq!(only_leaf(&json), ("modified".to_owned(), 30.into()));
}

/// Every level changed (its mode): a change found at each depth.
#[test]
fn a_baseline_with_every_level_changed_costs_linear_memory() {
    let (live, blank) = (common::Tree::new(), common::Tree::new());
    chain_with_mode(live.root(), b"same\n", 0o700);
    chain_with_mode(blank.root(), b"blank\n", 0o755);
    let (json, kb) = audit_measured(&[
        "--root".as_ref(),
        live.root().as_os_str(),
        "--baseline".as_ref(),
        blank.root().as_os_str(),
    ]);
    assert!(kb < LIMIT_KB, "peak RSS {kb} KB, more than {LIMIT_KB} KB");
    assert!(json["errors"].as_array().is_some_and(Vec::is_empty), "{}", json["errors"]);
    assert_eq!(only_leaf(&json).0, "modified");
}

/// zfs never writes a path this long (its paths fit in two `PATH_MAX`):
/// the line is refused, naming it, before it is kept whole.
#[test]
fn a_diff_line_naming_a_deep_chain_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("deep.zfsdiff");
    let mut line = b"1700000001.000000000\t+\tF\t/mnt/root".to_vec();
    line.extend_from_slice(&leaf_path());
    line.push(b'\n');
    std::fs::write(&file, line).expect("write diff");
    let out = Command::new(common::bin())
        .args(["audit", "--format", "json", "--strip-prefix", "/mnt/root", "--zfs-diff"])
        .arg(&file)
        .output()
        .expect("run darlings");
    assert_eq!(common::code(&out), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("deep.zfsdiff:1: longer than 82176 bytes"), "{stderr}");
}

/// Nested renames: each line names the path its parent was renamed to, so
/// the diff itself grows as depth² (6 MB here, as deep as a line zfs
/// writes can name); the tree must not keep a copy of every path. (The report is one finding: the outer rename.)
#[test]
fn nested_renames_are_not_kept_as_whole_paths() {
    // Each line below the longest zfs writes (82176 bytes: two paths).
    const LEVELS: usize = 160;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("renames.zfsdiff");
    let mut text = Vec::new();
    let mut new_path = b"/mnt/root".to_vec();
    for level in 0..LEVELS {
        let (old, new) = ([b"o", &name(level)[1..]].concat(), [b"n", &name(level)[1..]].concat());
        text.extend_from_slice(b"1700000001.000000000\tR\t/\t");
        text.extend_from_slice(&[&new_path[..], b"/", &old].concat());
        text.push(b'\t');
        new_path.extend_from_slice(&[&b"/"[..], &new].concat());
        text.extend_from_slice(&new_path);
        text.push(b'\n');
    }
    std::fs::write(&file, &text).expect("write diff");
    drop(text);
    let (json, kb) = audit_measured_as(&[
        "--zfs-diff".as_ref(),
        file.as_os_str(),
        "--strip-prefix".as_ref(),
        "/mnt/root".as_ref(),
    ]);
    assert!(kb < 32 * 1024, "peak RSS {kb} KB, more than 32 MB");
    let f = common::findings(&json);
    assert_eq!(f.len(), 1, "one finding: the outer rename");
    let top = [&b"/n"[..], &name(0)[1..]].concat();
    assert_eq!(
        f[&top]["renamed_from"].as_str().map(str::as_bytes),
        Some(&[&b"/o"[..], &name(0)[1..]].concat()[..])
    );
}
