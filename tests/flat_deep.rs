//! The flat audit of a tree any local user can build: a chain of nested
//! directories each named `d`. Every level is a row of its own, so the
//! report holds depth² / 2 path bytes and costs that much memory, once:
//! no row may cost a walk over its ancestors, and no format may keep a
//! second copy of every path (the table's cells and lines were two more).
//! `record` (at shutdown) and `rollback` (in the initrd) judge every path
//! the same way but keep no row: their memory must not grow with the
//! rows, on a chain ten times deeper. Peak memory is measured with GNU
//! time, as in `source_deep.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use rustix::fs::{Mode, OFlags};

const DEPTH: usize = 6000;
/// The paths of the flat rows: `/d`, `/d/d`, … (2 bytes a level).
const PATH_BYTES: u64 = (DEPTH * (DEPTH + 1)) as u64;
/// One copy of every path, what the process needs besides (the binary,
/// its threads, the walk), and slack for the allocator.
const LIMIT_KB: u64 = (PATH_BYTES + PATH_BYTES / 2) / 1024 + 24 * 1024;

/// `depth` directories named `d` below `top`, a file at the bottom.
fn chain(top: &Path, depth: usize) {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut dir = rustix::fs::open(top, flags, Mode::empty()).expect("open top");
    for _ in 0..depth {
        rustix::fs::mkdirat(&dir, "d", Mode::from_raw_mode(0o755)).expect("mkdir");
        dir = rustix::fs::openat(&dir, "d", flags, Mode::empty()).expect("open level");
    }
    rustix::fs::openat(
        &dir,
        "leaf",
        OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .expect("create leaf");
}

/// `darlings ARGS…` under GNU time: its output and peak RSS in KB.
fn measured(args: &[&OsStr]) -> (Output, u64) {
    let time = Path::new("/usr/bin/time");
    assert!(time.exists(), "this test measures memory with GNU time (/usr/bin/time): install it");
    let out = Command::new(time).args(["-f", "%M", common::bin()]).args(args).output().expect("run darlings");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kb = stderr.lines().rev().find_map(|l| l.trim().parse::<u64>().ok()).expect("time's %M");
    eprintln!("{args:?}: peak RSS {kb} KB (limit {LIMIT_KB} KB, paths {} KB)", PATH_BYTES / 1024);
    (out, kb)
}

fn audit(t: &common::Tree, format: &str) -> (Output, u64) {
    let args = ["audit", "--flat", "--no-default-manifest", "--format", format, "--root"];
    measured(&[&args.map(OsStr::new)[..], &[t.root().as_os_str()]].concat())
}

#[test]
fn a_flat_json_report_of_a_deep_chain_holds_each_path_once() {
    let t = common::Tree::new();
    chain(t.root(), DEPTH);
    let (out, kb) = audit(&t, "json");
    let json = common::parse_json(&out);
    assert_eq!(json["totals"]["unclaimed"]["findings"], DEPTH + 1, "every level and the leaf");
    assert!(kb < LIMIT_KB, "peak RSS {kb} KB, more than {LIMIT_KB} KB");
}

#[test]
fn a_flat_table_of_a_deep_chain_holds_each_path_once() {
    let t = common::Tree::new();
    chain(t.root(), DEPTH);
    let (out, kb) = audit(&t, "table");
    assert_eq!(common::code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    // Every row, and the deepest path whole on its line.
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().filter(|l| l.starts_with("unclaimed ") && l.contains(" /d")).count(), DEPTH + 1);
    let leaf = format!("{}/leaf", "/d".repeat(DEPTH));
    assert!(text.lines().any(|l| l.contains(&leaf)));
    assert!(kb < LIMIT_KB, "peak RSS {kb} KB, more than {LIMIT_KB} KB");
}

/// What the guards may use at most, however deep the chain (the rows of
/// a flat report of it would be 3.6 GB).
const GUARDS_KB: u64 = 64 * 1024;

#[test]
fn record_of_a_chain_sixty_thousand_deep_keeps_no_row() {
    const DEEP: usize = 60_000;
    let t = common::Tree::new();
    chain(t.root(), DEEP);
    let args =
        ["record", "--dry-run", "--no-default-manifest", "--fail-on", "none", "--root"].map(OsStr::new);
    let (out, kb) = measured(&[&args[..], &[t.root().as_os_str()]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(common::code(&out), 0, "{stderr}");
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the record");
    assert_eq!(record["counts"]["unclaimed_entries"], DEEP + 1, "{record}");
    assert!(kb < GUARDS_KB, "peak RSS {kb} KB, more than {GUARDS_KB} KB");
    // Removed by rm, which needs no stack per level (the test's own
    // removal would recurse once a level).
    let rm = Command::new("rm").arg("-rf").arg(t.root().join("d")).status().expect("rm");
    assert!(rm.success());
}
