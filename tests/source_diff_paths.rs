//! A saved `zfs diff` is hostile input: bytes zfs always escapes, and paths
//! that would need normalising (`.`, `..`, `//`), are refused with the file
//! and line, never read as some other path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hand-written.zfsdiff");

/// Audits `diff` saved as `bad.zfsdiff`; returns (exit code, stdout, stderr).
fn audit_saved(diff: &[u8], root: Option<&Path>) -> (i32, Vec<u8>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.zfsdiff");
    std::fs::write(&file, diff).expect("write");
    let mut args = vec![
        "audit".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        "--zfs-diff".as_ref(),
        file.as_os_str(),
        "--strip-prefix".as_ref(),
        "/mnt/root".as_ref(),
    ];
    if let Some(root) = root {
        args.extend(["--root".as_ref(), root.as_os_str()]);
    }
    let out = common::run(args);
    (common::code(&out), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The audit stops before any report, naming `bad.zfsdiff:LINE:` and `what`.
fn assert_refused(diff: &[u8], line: usize, what: &str) {
    let (code, stdout, stderr) = audit_saved(diff, None);
    assert_eq!(code, 2, "{}: {stderr}", String::from_utf8_lossy(diff));
    assert!(stdout.is_empty(), "no report");
    assert!(stderr.contains(&format!("bad.zfsdiff:{line}: ")), "{stderr}");
    assert!(stderr.contains(what), "expected {what:?} in {stderr}");
}

const ROOT: &[u8] = b"1700000000.000000000\tM\t/\t/mnt/root/\n";

fn with_line(line: &[u8]) -> Vec<u8> {
    [ROOT, line, b"\n"].concat()
}

#[test]
fn a_crlf_file_is_refused_at_its_first_line() {
    let crlf = std::fs::read_to_string(FIXTURE).expect("fixture").replace('\n', "\r\n");
    assert_refused(crlf.as_bytes(), 1, "CRLF");
}

#[test]
fn raw_spaces_and_nul_bytes_are_refused() {
    assert_refused(&with_line(b"1700000001.0\t+\tF\t/mnt/root/a b"), 2, "raw space");
    assert_refused(&with_line(b"1700000001.0\t+\tF\t/mnt/root/a\0b"), 2, "raw NUL");
    assert_refused(&with_line(b"1700000001.0\tR\tF\t/mnt/root/a\t/mnt/root/new name"), 2, "raw space");
    assert_refused(&with_line(b"1700000001.0\t+\tF\t/mnt/root/caf\xc3\xa9"), 2, "raw byte 0xC3");
}

#[test]
fn dot_dot_dot_and_empty_components_are_refused() {
    assert_refused(&with_line(b"1700000001.0\t+\tF\t/mnt/root/./a/./b"), 2, "a `.` component");
    assert_refused(&with_line(b"1700000001.0\t+\tF\t/mnt/root/../../etc/shadow"), 2, "a `..` component");
    assert_refused(&with_line(b"1700000001.0\t+\tF\t/mnt/root//etc"), 2, "an empty component");
    assert_refused(&with_line(b"1700000001.0\tR\tF\t/mnt/root/a\t/mnt/root/x/../b"), 2, "a `..` component");
    // An escaped dot is still a dot; an escaped slash is no name's.
    assert_refused(&with_line(b"1700000001.0\t+\tF\t/mnt/root/\\0056\\0056/etc"), 2, "a `..` component");
    assert_refused(&with_line(b"1700000001.0\t+\tF\t/mnt/root/a\\0057b"), 2, "decodes to /");
    // Only the dataset's root is printed with a trailing slash.
    assert_refused(&with_line(b"1700000001.0\t+\t/\t/mnt/root/etc/"), 2, "trailing /");
}

/// With the live tree at hand, a `..` path would have been stat'ed outside
/// it: it is refused before anything is read.
#[test]
fn a_path_out_of_the_root_is_refused_before_the_live_tree_is_read() {
    let t = common::Tree::new();
    t.file(b"/etc/hostname", b"h\n");
    let diff = with_line(b"1700000001.0\t+\tF\t/mnt/root/../../../../../../../../etc/passwd");
    let (code, stdout, stderr) = audit_saved(&diff, Some(t.root()));
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("bad.zfsdiff:2: ") && stderr.contains("`..` component"), "{stderr}");
}

#[test]
fn the_dataset_root_with_its_trailing_slash_and_escaped_names_are_read() {
    let diff = with_line(b"1700000001.0\t+\tF\t/mnt/root/with\\0040space\\0015");
    let (code, stdout, stderr) = audit_saved(&diff, None);
    assert_eq!(code, 1, "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&stdout).expect("json");
    let f = common::findings(&json);
    assert_eq!(f[&b"/with space\r"[..]]["change"], "created");
}
