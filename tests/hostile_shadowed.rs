//! Hostile and confused cases for shadowed state (content on the root
//! hidden under a mount point). Real mounts in a private mount namespace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

/// An ignore rule applies inside a hidden tree as it does in the walk: an
/// ignored cache below a hidden home is neither counted nor a reason to
/// report a directory that holds nothing else.
#[test]
fn ignored_paths_inside_a_hidden_tree_are_not_counted() {
    require_root!();
    let t = common::Tree::new();
    t.file(b"/home/u/.cache/blob", b"0123456789")
        .file(b"/home/u/notes", b"abc")
        .file(b"/home/v/.cache/only", b"cache");
    let script = format!(
        r#"R='{}'
mount -t tmpfs home "$R/home"
"$D" audit --root "$R" --format json --no-default-manifest --ignore '/home/*/.cache' || true"#,
        t.root().display()
    );
    let out = common::in_mount_namespace(&script);
    let json = common::parse_json(&out);
    let f = common::findings(&json);
    let u = &f[&b"/home/u"[..]];
    assert_eq!(u["verdict"], "shadowed");
    assert_eq!(u["entries"], 2, "u and notes, not the ignored cache: {u}");
    assert_eq!(u["size"], 3, "{u}");
    // Nothing but an ignored cache: nothing to lose there.
    assert!(
        f.get(&b"/home/v"[..]).is_none_or(|v| v["verdict"] != "shadowed" || v["entries"] == 1),
        "{:?}",
        f.get(&b"/home/v"[..])
    );
}

/// With a blank tree, a hidden directory the blank tree also has (same
/// modification time: nothing was added to or removed from it directly)
/// may still hold new content deeper down: an SSH key written into an
/// existing `.ssh` before `/home` was mounted is shadowed, and is lost.
#[test]
fn new_content_deep_in_a_hidden_directory_the_blank_tree_has_is_shadowed() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let dir = tempfile::tempdir().expect("tempdir");
    let script = format!(
        r#"cd '{}'
truncate -s 256M fs.img
mkfs.btrfs -q fs.img >/dev/null 2>&1
mkdir m && mount -o loop fs.img m
btrfs -q subvolume create m/root
R="$PWD/m/root"
mkdir -p "$R/home/u/.ssh" "$R/home/w"
echo old > "$R/home/u/.ssh/known_hosts"
echo same > "$R/home/w/unchanged"
btrfs -q subvolume snapshot -r m/root m/root-blank
echo SECRET > "$R/home/u/.ssh/id_ed25519"
mount -t tmpfs home "$R/home"
"$D" audit --root "$R" --baseline "$PWD/m/root-blank" --format json --no-default-manifest || true"#,
        dir.path().display()
    );
    let out = common::in_mount_namespace(&script);
    let json = common::parse_json(&out);
    let f = common::findings(&json);
    let hidden: Vec<(String, &serde_json::Value)> = f
        .iter()
        .filter(|(_, v)| v["verdict"] == "shadowed")
        .map(|(p, v)| (String::from_utf8_lossy(p).into_owned(), v))
        .collect();
    assert!(
        hidden.iter().any(|(p, v)| p.starts_with("/home/u") && v["size"].as_u64().unwrap_or(0) >= 7),
        "the new key under the mount point is shadowed: {hidden:?}"
    );
    // What the blank tree holds unchanged comes back at rollback.
    assert!(!hidden.iter().any(|(p, _)| p.starts_with("/home/w")), "{hidden:?}");
    let total = &json["totals"]["shadowed"];
    assert_eq!(total["bytes"], 7, "only the key is new, not the known hosts the blank tree has: {total}");
}

/// `explain` of a file the running system sees on a mount must not be
/// given the row of a hidden directory of the same name under that mount
/// point: the hidden `/home/u` is shadowed, the visible
/// `/home/u/.bashrc` on the mounted filesystem is not.
#[test]
fn explain_does_not_give_a_visible_path_the_row_of_a_hidden_one() {
    require_root!();
    let t = common::Tree::new();
    t.file(b"/home/u/early", b"written before the mount");
    let script = format!(
        r#"R='{}'
mount -t tmpfs home "$R/home"
mkdir "$R/home/u"; echo live > "$R/home/u/.bashrc"
echo '=== hidden'
"$D" explain --root "$R" --no-default-manifest --format json /home/u/early
echo '=== visible'
"$D" explain --root "$R" --no-default-manifest --format json /home/u/.bashrc"#,
        t.root().display()
    );
    let out = common::in_mount_namespace(&script);
    let s = common::sections(&out);
    let (hidden, visible) = (&s[0].1, &s[1].1);
    assert_eq!(hidden["finding"]["verdict"], "shadowed", "{hidden}");
    assert_eq!(visible["exists"], true);
    assert!(visible["finding"]["verdict"] != "shadowed", "{visible}");
}

/// The root is renamed away while the audit runs (here: while it waits for
/// its `--impermanence` FIFO) and another directory, with a mount over
/// planted content, takes its path. What is looked into under mount
/// points is the tree the audit opened, never what its path names later.
#[test]
fn a_root_swapped_during_the_audit_is_not_what_is_looked_under() {
    require_root!();
    let dir = tempfile::tempdir().expect("tempdir");
    let script = format!(
        r#"cd '{}'
mkdir -p r/srv && echo mine > r/srv/data
mkdir -p other/home && echo planted > other/home/planted
mount -t tmpfs home other/home
mkfifo claims.json
"$D" audit --root "$PWD/r" --format json --no-default-manifest --impermanence claims.json > report.json || true &
sleep 1
mv r r-opened && mv other r
echo '{{}}' > claims.json
wait
cat report.json"#,
        dir.path().display()
    );
    let out = common::in_mount_namespace(&script);
    let json = common::parse_json(&out);
    let f = common::findings(&json);
    assert!(f.contains_key(&b"/srv"[..]), "the opened tree is audited: {:?}", f.keys());
    let planted: Vec<_> = f
        .iter()
        .filter(|(p, _)| p.starts_with(b"/home"))
        .map(|(p, v)| (String::from_utf8_lossy(p), v))
        .collect();
    assert!(planted.is_empty(), "content of the tree swapped in is reported: {planted:?}");
}
