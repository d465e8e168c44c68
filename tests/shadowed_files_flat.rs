//! Shadowed state the first look missed: a file hidden by a bind-mounted
//! file, and `--flat` listing every hidden path on its own row. Real
//! mounts in a private mount namespace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::Value;

/// Every finding of a report with `verdict` (a path may have two rows: the
/// claim on what the running system sees, and what the root hides under it).
fn rows<'a>(json: &'a Value, verdict: &str) -> Vec<(String, &'a Value)> {
    json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["verdict"] == verdict)
        .map(|f| (String::from_utf8_lossy(&common::path_of(f, "path")).into_owned(), f))
        .collect()
}

/// A file written at `/etc/app.key` before `/persist/etc/app.key` was
/// bind-mounted onto it stays on the root, invisible, and is erased at
/// rollback: shadowed, like content under a directory mount. The empty
/// file a bind mount needs as its mount point holds nothing to lose, and
/// the claim itself is still kept.
#[test]
fn a_file_under_a_bind_mounted_file_is_shadowed() {
    require_root!();
    let t = common::Tree::new();
    t.file(b"/etc/app.key", b"early secret")
        .file(b"/etc/machine-id", b"")
        .file(b"/etc/odd name\n", b"x")
        .dir(b"/persist");
    let script = format!(
        r#"R='{}'
persistent persist "$R/persist"
mkdir "$R/persist/etc"
echo persisted > "$R/persist/etc/app.key"
echo 0123 > "$R/persist/etc/machine-id"
echo y > "$R/persist/etc/odd"
mount --bind "$R/persist/etc/app.key" "$R/etc/app.key"
mount --bind "$R/persist/etc/machine-id" "$R/etc/machine-id"
mount --bind "$R/persist/etc/odd" "$R/etc/odd name
"
"$D" audit --root "$R" --format json --no-default-manifest --keep /etc/app.key --keep /etc/machine-id || true"#,
        t.root().display()
    );
    let out = common::in_mount_namespace(&script);
    let json = common::parse_json(&out);
    let shadowed = rows(&json, "shadowed");
    let paths: Vec<&str> = shadowed.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/etc/app.key", "/etc/odd name\n"], "{shadowed:?}");
    let key = shadowed[0].1;
    assert_eq!(key["type"], "file");
    assert_eq!(key["entries"], 1);
    assert_eq!(key["size"], 12, "the hidden file's bytes, not the persisted one's: {key}");
    assert!(
        key["detail"]
            .as_str()
            .unwrap()
            .contains("on the root hidden by the file mounted over it (overlay persist"),
        "{key}"
    );
    let kept: Vec<String> = rows(&json, "kept").into_iter().map(|(p, _)| p).collect();
    assert_eq!(kept, ["/etc/app.key", "/etc/machine-id"], "the claims are realised");
    assert_eq!(json["totals"]["shadowed"]["bytes"], 13);
}

/// With a blank tree, a file under a bind-mounted file that the blank tree
/// has as it is (same type and modification time) comes back at rollback.
#[test]
fn a_hidden_file_the_blank_tree_has_is_not_shadowed() {
    require_root!();
    let t = common::Tree::new();
    let blank = tempfile::tempdir().expect("tempdir");
    t.file(b"/etc/from-blank", b"as in the image").file(b"/etc/new", b"written later").dir(b"/persist");
    let script = format!(
        r#"R='{root}'; B='{blank}'
mkdir "$B/etc"; cp -a "$R/etc/from-blank" "$B/etc/"
persistent persist "$R/persist"
touch "$R/persist/a" "$R/persist/b"
mount --bind "$R/persist/a" "$R/etc/from-blank"
mount --bind "$R/persist/b" "$R/etc/new"
"$D" audit --root "$R" --baseline "$B" --format json --no-default-manifest || true"#,
        root = t.root().display(),
        blank = blank.path().display()
    );
    let out = common::in_mount_namespace(&script);
    let json = common::parse_json(&out);
    let paths: Vec<String> = rows(&json, "shadowed").into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["/etc/new"], "{}", json["findings"]);
}

/// `--flat` lists every path of every loss verdict on its own row:
/// shadowed content too, each directory as one entry of no size, with the
/// same totals as the grouped report.
#[test]
fn flat_lists_every_shadowed_path() {
    require_root!();
    let t = common::Tree::new();
    t.file(b"/home/u/.ssh/id_ed25519", b"private key")
        .file(b"/home/u/notes", b"notes")
        .file(b"/home/top", b"t");
    let script = format!(
        r#"R='{}'
mount -t tmpfs home "$R/home"
echo '=== grouped'
"$D" audit --root "$R" --format json --no-default-manifest || true
echo '=== flat'
"$D" audit --root "$R" --format json --no-default-manifest --flat || true"#,
        t.root().display()
    );
    let out = common::in_mount_namespace(&script);
    let s = common::sections(&out);
    let (grouped, flat) = (&s[0].1, &s[1].1);
    let summary = |json: &Value| -> Vec<(String, u64, u64)> {
        rows(json, "shadowed")
            .into_iter()
            .map(|(p, f)| (p, f["entries"].as_u64().unwrap(), f["size"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(
        summary(grouped),
        [("/home/top".to_owned(), 1, 1), ("/home/u".to_owned(), 4, 16)],
        "grouped: one row per entry under the mount point"
    );
    assert_eq!(
        summary(flat),
        [
            ("/home/top".to_owned(), 1, 1),
            ("/home/u".to_owned(), 1, 0),
            ("/home/u/.ssh".to_owned(), 1, 0),
            ("/home/u/.ssh/id_ed25519".to_owned(), 1, 11),
            ("/home/u/notes".to_owned(), 1, 5),
        ]
    );
    let key = rows(flat, "shadowed").into_iter().find(|(p, _)| p.ends_with("id_ed25519")).unwrap().1;
    assert_eq!(key["severity"], "critical", "{key}");
    assert!(key["detail"].as_str().unwrap().contains("under the mount point /home (tmpfs home"), "{key}");
    assert_eq!(grouped["totals"]["shadowed"]["entries"], flat["totals"]["shadowed"]["entries"]);
    assert_eq!(grouped["totals"]["shadowed"]["bytes"], flat["totals"]["shadowed"]["bytes"]);
}
