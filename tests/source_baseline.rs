//! `--baseline`: what the comparison of two trees tells, and only that. It
//! has no inode change times, and names that look like `zfs diff`'s
//! pseudo-paths are ordinary names on a live tree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Tree;

/// A blank tree and a live one that differ by a removed file, a changed
/// one, and two names a `zfs diff` would give a meaning to.
fn trees() -> (Tree, Tree) {
    let blank = Tree::new();
    blank.file(b"/etc/gone", b"was here\n").file(b"/etc/changed", b"old\n");
    let live = Tree::new();
    live.file(b"/etc/changed", b"new and longer\n")
        .file(b"/etc/x(on_delete_queue)", b"hidden?\n")
        .file(b"/etc/<xattrdir>", b"an attribute?\n")
        .file(b"/etc/sub/<xattrdir>/user.k", b"or a file\n");
    (blank, live)
}

#[test]
fn a_baseline_audit_reports_no_change_times() {
    let (blank, live) = trees();
    let blank_dir = blank.root().to_str().expect("utf-8");
    let (json, _) = common::audit_json(live.root(), &["--baseline", blank_dir, "--flat"]);
    assert_eq!(json["source"], "baseline");
    let f = common::findings(&json);
    assert_eq!(f[&b"/etc/gone"[..]]["verdict"], "restored");
    assert_eq!(f[&b"/etc/changed"[..]]["change"], "modified");
    for (path, finding) in &f {
        assert!(finding["ctime"].is_null(), "{}: {}", String::from_utf8_lossy(path), finding);
    }
    // The live tree's own times are still there.
    assert!(f[&b"/etc/changed"[..]]["mtime"].is_string());
}

#[test]
fn zfs_pseudo_names_on_a_live_tree_are_plain_names() {
    let (blank, live) = trees();
    let blank_dir = blank.root().to_str().expect("utf-8");
    let (json, _) = common::audit_json(live.root(), &["--baseline", blank_dir, "--flat"]);
    let f = common::findings(&json);
    for path in [&b"/etc/x(on_delete_queue)"[..], b"/etc/<xattrdir>", b"/etc/sub/<xattrdir>/user.k"] {
        let shown = String::from_utf8_lossy(path);
        let found: Vec<_> = f.keys().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
        assert_eq!(f.get(path).map(|x| &x["change"]), Some(&"created".into()), "{shown}; found {found:?}");
        assert_eq!(f[path]["type"], "file", "{shown}");
    }
}
