//! Saved `zfs diff -FHt` output (`--zfs-diff`): offline, against its live
//! tree, and malformed. The fixture is written by hand; every expectation
//! below is worked out from its lines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{map, verdicts};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hand-written.zfsdiff");

fn diff_json(extra: &[&str]) -> (serde_json::Value, i32) {
    let mut args = vec!["audit", "--format", "json", "--zfs-diff", FIXTURE, "--strip-prefix", "/mnt/root"];
    args.extend(extra);
    let out = common::run(&args);
    (common::parse_json(&out), common::code(&out))
}

#[test]
fn a_saved_diff_is_audited_offline() {
    let (json, code) = diff_json(&["--keep", "/var/lib/bluetooth"]);
    assert_eq!(json["source"], "zfs-diff-file");
    assert_eq!(
        verdicts(&json),
        map(&[
            ("/blank-file", "restored 1"),
            // machine-id comes back as a new identity, apart from the rest.
            ("/etc", "structure 1"),
            ("/etc/localtime", "unclaimed 1"),
            ("/etc/machine-id", "new-identity 1"),
            // /home, u, and the file with a newline and é in its name.
            ("/home", "unclaimed 3"),
            // Renamed: one finding; its content returns under the old name.
            ("/srv", "unclaimed 1"),
            ("/var", "structure 1"),
            ("/var/lib", "structure 1"),
            // The diff lists content under the claim: it is on the root dataset.
            ("/var/lib/bluetooth", "broken 2"),
        ])
    );
    assert_eq!(code, 3);
    let f = common::findings(&json);
    assert_eq!(f[&b"/srv"[..]]["change"], "renamed");
    assert_eq!(f[&b"/srv"[..]]["renamed_from"], "/srv-old");
    assert_eq!(f[&b"/blank-file"[..]]["change"], "removed");
    assert_eq!(f[&b"/etc"[..]]["change"], "created");
    // Offline: change times from the diff, no sizes, no mtimes.
    assert_eq!(f[&b"/home"[..]]["ctime"], "2023-11-14T22:13:28Z", "newest: the odd name at 1700000008");
    assert_eq!(f[&b"/home"[..]]["size"], serde_json::Value::Null);
    assert_eq!(f[&b"/home"[..]]["mtime"], serde_json::Value::Null);
    let notes = json["notes"].as_array().expect("notes");
    assert!(notes.iter().any(|n| n.as_str().unwrap_or("").starts_with("offline")));
    assert!(notes.iter().any(|n| n.as_str().unwrap_or("").contains("1 link-count changes")));
}

#[test]
fn flat_shows_the_decoded_names() {
    let (json, _) = diff_json(&["--flat"]);
    let f = common::findings(&json);
    let odd = "/home/u/new\nline café".as_bytes();
    assert_eq!(f[odd]["verdict"], "unclaimed");
    assert_eq!(f[odd]["type"], "file");
    assert_eq!(f[&b"/etc/localtime"[..]]["type"], "symlink");
}

#[test]
fn an_offline_claim_with_nothing_below_it_is_unverified() {
    let (json, _) = diff_json(&["--keep", "/srv", "--keep", "/etc/machine-id"]);
    let f = common::findings(&json);
    assert_eq!(f[&b"/srv"[..]]["verdict"], "kept");
    assert_eq!(f[&b"/srv"[..]]["unverified"], true);
    assert_eq!(f[&b"/etc/machine-id"[..]]["verdict"], "kept");
    assert_eq!(f[&b"/etc/machine-id"[..]]["unverified"], true);
}

#[test]
fn with_root_the_live_tree_gives_sizes_and_checks_claims() {
    let t = common::Tree::new();
    t.file(b"/etc/machine-id", b"0123456789abcdef\n")
        .symlink(b"/etc/localtime", b"/usr/share/zoneinfo/UTC")
        .file(b"/var/lib/bluetooth/info", b"paired")
        .file("/home/u/new\nline café".as_bytes(), b"x")
        .dir(b"/srv");
    let root = t.root().to_str().expect("utf-8");
    let (json, code) = diff_json(&["--root", root, "--keep", "/var/lib/bluetooth"]);
    assert_eq!(code, 3);
    let f = common::findings(&json);
    assert_eq!(f[&b"/etc/machine-id"[..]]["size"], 17);
    assert_eq!(f[&b"/etc/localtime"[..]]["size"], "/usr/share/zoneinfo/UTC".len());
    assert_eq!(f[&b"/var/lib/bluetooth"[..]]["size"], 6);
    assert_eq!(f[&b"/var/lib/bluetooth"[..]]["verdict"], "broken");
    assert!(f[&b"/etc/localtime"[..]]["mtime"].is_string());
    assert!(!json["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .any(|n| n.as_str().unwrap_or("").starts_with("offline")));
}

#[test]
fn the_diff_can_come_on_stdin() {
    let mut child = Command::new(common::bin())
        .args(["audit", "--format", "json", "--zfs-diff", "-", "--strip-prefix", "/mnt/root"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(&std::fs::read(FIXTURE).expect("fixture")).expect("write");
    let out = child.wait_with_output().expect("wait");
    let json = common::parse_json(&out);
    // localtime 1 (machine-id is a new identity), /home 3, /srv 1,
    // /var with lib, bluetooth and info 4.
    assert_eq!(json["totals"]["unclaimed"]["entries"], 9);
}

#[test]
fn a_malformed_line_stops_the_audit_with_its_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.zfsdiff");
    let mut text = std::fs::read_to_string(FIXTURE).expect("fixture");
    text.push_str("1700000013.0\t+\tQ\t/mnt/root/what\n");
    std::fs::write(&bad, text).expect("write");
    let out = common::run([
        "audit",
        "--zfs-diff",
        bad.to_str().expect("utf-8"),
        "--strip-prefix",
        "/mnt/root",
        "--format",
        "json",
    ]);
    assert_eq!(common::code(&out), 2);
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.zfsdiff:15: unknown file type \"Q\""), "{stderr}");

    // Paths outside the prefix are not guessed at.
    let out =
        common::run(["audit", "--zfs-diff", FIXTURE, "--strip-prefix", "/elsewhere", "--format", "json"]);
    assert_eq!(common::code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("hand-written.zfsdiff:1: /mnt/root/ is not below --strip-prefix /elsewhere"));
}

/// Recorded from real ZFS 2.1.11 in the test guest (tests/vm/zfs-guest.sh
/// made these changes to rpool/local/root@blank mounted at /mnt/root).
const RECORDED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zfs-2.1.11-guest.zfsdiff");

#[test]
fn a_diff_recorded_from_real_zfs_decodes_exactly() {
    let out = common::run([
        "audit",
        "--format",
        "json",
        "--flat",
        "--zfs-diff",
        RECORDED,
        "--strip-prefix",
        "/mnt/root",
    ]);
    let json = common::parse_json(&out);
    let f = common::findings(&json);
    // The names zfs-guest.sh created, byte for byte.
    let names = common::guest_hostile_paths();
    for name in &names {
        assert_eq!(f[name]["change"], "created", "{}", String::from_utf8_lossy(name));
        assert_eq!(f[name]["type"], "file");
    }
    // Every file type zfs-guest.sh made.
    for (path, kind) in [
        ("/var/fifo", "fifo"),
        ("/var/null", "char-device"),
        ("/var/loop9", "block-device"),
        ("/var/sock", "socket"),
        ("/etc/link", "symlink"),
    ] {
        assert_eq!(f[path.as_bytes()]["type"], kind, "{path}");
    }
    // Content and metadata-only changes are both `M`; a replaced symlink is
    // `-` and `+`: it exists, new.
    assert_eq!(f[&b"/etc/orig.conf"[..]]["change"], "modified");
    assert_eq!(f[&b"/etc/meta-only"[..]]["change"], "modified");
    assert_eq!(f[&b"/etc/link"[..]]["change"], "created");
    assert_eq!(f[&b"/home/u/docs/moved-here"[..]]["renamed_from"], "/etc/moved-away");
    assert_eq!(f[&b"/srv"[..]]["renamed_from"], "/srv-old");
    assert_eq!(f[&b"/blank-dir"[..]]["verdict"], "restored");
    assert_eq!(f[&b"/blank-dir"[..]]["entries"], 3);
    assert_eq!(f[&b"/blank-file"[..]]["verdict"], "restored");
    // One file with two names: zfs diff lists only one of them.
    let names_listed =
        [&b"/var/hard-1"[..], b"/home/u/hard-2"].iter().filter(|p| f.contains_key(**p)).count();
    assert_eq!(names_listed, 1);
    // 40 journal files, each its own row in --flat.
    assert_eq!((1..=40).filter(|i| f.contains_key(format!("/var/log/journal/j{i}").as_bytes())).count(), 40);
}

#[test]
fn other_names_of_a_hard_linked_file_come_from_the_live_tree() {
    let t = common::Tree::new();
    t.file(b"/var/a", b"data").dir(b"/home/u");
    std::fs::hard_link(t.at(b"/var/a"), t.at(b"/home/u/b")).expect("link");
    let dir = tempfile::tempdir().expect("tempdir");
    let diff = dir.path().join("d.zfsdiff");
    // zfs diff lists one name only.
    std::fs::write(
        &diff,
        "1.0\tM\t/\t/\n1.0\t+\t/\t/var\n1.0\t+\tF\t/var/a\n1.0\t+\t/\t/home\n1.0\t+\t/\t/home/u\n",
    )
    .expect("write");
    let root = t.root().to_str().expect("utf-8");
    let out = common::run([
        "audit",
        "--format",
        "json",
        "--flat",
        "--zfs-diff",
        diff.to_str().expect("utf-8"),
        "--root",
        root,
    ]);
    let json = common::parse_json(&out);
    let f = common::findings(&json);
    assert_eq!(f[&b"/home/u/b"[..]]["change"], "created");
    assert_eq!(json["totals"]["unclaimed"]["bytes"], 4, "one file, counted once");
    assert!(json["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .any(|n| n.as_str().unwrap_or("").contains("1 such files, 1 other names")));
}
