//! How `--source zfs` fails: a stand-in `zfs` on PATH injects each failure
//! (the real thing is tested in the ZFS guest, tests/zfs_guest.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

/// A directory holding an executable `zfs` that runs `script`.
fn fake_zfs(script: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("zfs");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn audit_with(zfs: &tempfile::TempDir, root: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let path = format!("{}:{}", zfs.path().display(), std::env::var("PATH").unwrap_or_default());
    Command::new(common::bin())
        .args(["audit", "--format", "json", "--source", "zfs", "--dataset", "rpool/local/root", "--root"])
        .arg(root)
        .args(extra)
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .expect("run")
}

const LIST: &str =
    r#"if [ "$1" = list ]; then printf 'rpool/local/root@before\nrpool/local/root@blank\n'; exit 0; fi"#;

#[test]
fn a_missing_snapshot_names_the_ones_that_exist() {
    let t = common::Tree::new();
    let zfs = fake_zfs(LIST);
    let out = audit_with(&zfs, t.root(), &["--snapshot", "empty"]);
    assert_eq!(common::code(&out), 2);
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no snapshot rpool/local/root@empty; the dataset has: before, blank"),
        "{stderr}"
    );
}

#[test]
fn known_zfs_errors_become_clear_messages() {
    let t = common::Tree::new();
    for (stderr, message) in [
        ("cannot open 'rpool/local/root': dataset does not exist", "no such dataset or snapshot"),
        (
            "Cannot diff an unmounted snapshot: operation not applicable to datasets of this type",
            "the dataset is not mounted",
        ),
        ("cannot diff: permission denied", "zfs diff needs root, or `zfs allow USER diff DATASET`"),
    ] {
        let zfs = fake_zfs(&format!("{LIST}\necho \"{stderr}\" >&2\nexit 1"));
        let out = audit_with(&zfs, t.root(), &[]);
        assert_eq!(common::code(&out), 2);
        let got = String::from_utf8_lossy(&out.stderr);
        assert!(got.contains(message), "{got}");
        assert!(got.contains(stderr), "the original text is kept: {got}");
    }
}

#[test]
fn a_malformed_line_from_zfs_fails_with_its_number() {
    let t = common::Tree::new();
    let root = t.root().display().to_string();
    let zfs =
        fake_zfs(&format!("{LIST}\nprintf '1.0\\tM\\t/\\t{root}/\\n1.0\\t+\\tF\\t{root}/ok\\ngarbage\\n'"));
    let out = audit_with(&zfs, t.root(), &[]);
    assert_eq!(common::code(&out), 2);
    let got = String::from_utf8_lossy(&out.stderr);
    assert!(got.contains("line 3:"), "{got}");
}

#[test]
fn the_diff_is_read_as_a_stream_and_classified() {
    let t = common::Tree::new();
    t.file(b"/etc/new", b"12345");
    let root = t.root().display().to_string();
    // Lines below the dataset's mount point (the root), in object order.
    let zfs = fake_zfs(&format!(
        "{LIST}\n[ \"$1\" = diff ] && [ \"$2\" = -FHt ] && [ \"$3\" = rpool/local/root@blank ] || exit 9\n\
         printf '1.0\\tM\\t/\\t{root}/\\n2.0\\t+\\t/\\t{root}/etc\\n3.0\\t+\\tF\\t{root}/etc/new\\n'"
    ));
    let out = audit_with(&zfs, t.root(), &[]);
    assert_eq!(common::code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let json = common::parse_json(&out);
    assert_eq!(json["source"], "zfs");
    let f = common::findings(&json);
    assert_eq!(f[&b"/etc"[..]]["entries"], 2);
    assert_eq!(f[&b"/etc"[..]]["size"], 5, "sizes from the live tree");
}

#[test]
fn zfs_missing_from_path_is_an_error() {
    let t = common::Tree::new();
    let out = Command::new(common::bin())
        .args(["audit", "--source", "zfs", "--dataset", "rpool/x", "--root"])
        .arg(t.root())
        .env("PATH", "/nonexistent")
        .output()
        .expect("run");
    assert_eq!(common::code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run zfs"));
}

#[test]
fn source_zfs_on_a_root_that_is_not_zfs_refuses() {
    let t = common::Tree::new();
    let out = common::run([
        std::ffi::OsStr::new("audit"),
        "--source".as_ref(),
        "zfs".as_ref(),
        "--root".as_ref(),
        t.root().as_os_str(),
    ]);
    assert_eq!(common::code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not the mount point of a ZFS dataset"));
}
