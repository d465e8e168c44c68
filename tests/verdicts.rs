//! Every verdict, through the real binary, with real mounts and symlinks:
//! a persist tree on its own filesystem, bind-mounted and linked into the root.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{map, verdicts};
use serde_json::Value;

/// A lived-in root: see each expectation below for what every path is.
fn lived_in() -> common::Tree {
    let t = common::Tree::new();
    t.file(b"/etc/hostname", b"box\n")
        .symlink(b"/etc/link-kept", b"/persist/etc/conf")
        .symlink(b"/etc/link-broken", b"/etc/hostname")
        .file(b"/var/cache/app/a", b"1")
        .file(b"/var/cache/app/b", b"2")
        .file(b"/var/lib/broken/data.db", b"12345")
        .dir(b"/var/lib/kept")
        .file(b"/home/u/.cache/thumbs/x", b"cached")
        .file(b"/home/u/notes.txt", b"n")
        .dir(b"/persist");
    t
}

const RULES: &str = "--keep /var/lib/broken --keep /var/lib/kept --keep /etc/link-kept \
                     --keep /etc/link-broken --ignore '/home/*/.cache'";

/// Mounts persistent storage on ROOT/persist, fills it, bind-mounts a directory of it
/// onto ROOT/var/lib/kept, then runs the audit with `args`.
fn audit_with_mounts(t: &common::Tree, args: &str) -> (Value, i32) {
    let script = format!(
        r#"R='{root}'
persistent persist "$R/persist"
mkdir -p "$R/persist/var/lib/kept" "$R/persist/etc"
echo secret > "$R/persist/var/lib/kept/secret"
echo conf > "$R/persist/etc/conf"
mount --bind "$R/persist/var/lib/kept" "$R/var/lib/kept"
set +e
"$D" audit --root "$R" --format json {args}
echo "exit=$?" >&2"#,
        root = t.root().display()
    );
    let out = common::in_mount_namespace(&script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = stderr
        .lines()
        .find_map(|l| l.strip_prefix("exit="))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("script failed: {stderr}"));
    (common::parse_json(&out), code)
}

#[test]
fn every_verdict_with_real_mounts_and_symlinks() {
    require_root!();
    let t = lived_in();
    let (json, code) = audit_with_mounts(&t, RULES);
    assert_eq!(
        verdicts(&json),
        map(&[
            // Holds claims: only the directory itself is structure.
            ("/etc", "structure 1"),
            ("/etc/hostname", "unclaimed 1"),
            // Points back onto the ephemeral root.
            ("/etc/link-broken", "broken 1"),
            // Points into the persistent storage.
            ("/etc/link-kept", "kept -"),
            // /home, /home/u, notes.txt; the ignored cache does not split it.
            ("/home", "unclaimed 3"),
            ("/home/u/.cache", "ignored -"),
            // Another filesystem: its directory is structure, never walked.
            ("/persist", "structure 1"),
            ("/var", "structure 1"),
            // /var/cache, app, a, b.
            ("/var/cache", "unclaimed 4"),
            ("/var/lib", "structure 1"),
            // The directory and data.db: plain content under a claim.
            ("/var/lib/broken", "broken 2"),
            ("/var/lib/kept", "kept -"),
        ])
    );
    assert_eq!(code, 3, "a broken claim makes the exit code 3");

    let f = common::findings(&json);
    assert_eq!(f[&b"/var/lib/broken"[..]]["size"], 5);
    assert_eq!(f[&b"/etc/link-broken"[..]]["size"], "/etc/hostname".len());
    assert_eq!(f[&b"/var/cache"[..]]["size"], 2);
    assert_eq!(f[&b"/var/lib/kept"[..]]["rule"]["pattern"], "/var/lib/kept");
    assert_eq!(f[&b"/var/lib/kept"[..]]["rule"]["origin"], "--keep");
    assert!(f[&b"/var/lib/kept"[..]]["detail"].as_str().unwrap_or("").starts_with("mount point"));
    assert!(f[&b"/persist"[..]]["detail"].as_str().unwrap_or("").contains("overlay persist"));
    assert!(f[&b"/etc/link-kept"[..]]["detail"].as_str().unwrap_or("").contains("/persist/etc/conf"));
    assert!(f[&b"/etc/link-broken"[..]]["detail"].as_str().unwrap_or("").contains("ephemeral root"));
    assert_eq!(f[&b"/home/u/.cache"[..]]["rule"]["kind"], "ignore");

    // Nothing below a mount was walked.
    assert!(f.keys().all(|p| !p.starts_with(b"/persist/") && !p.starts_with(b"/var/lib/kept/")));

    let totals = &json["totals"];
    assert_eq!(totals["unclaimed"]["entries"], 8);
    assert_eq!(totals["unclaimed"]["bytes"], 4 + 1 + 2);
    assert_eq!(totals["broken"]["entries"], 3);
    assert_eq!(totals["broken"]["bytes"], 13 + 5);
    assert_eq!(totals["kept"]["findings"], 2);
    assert_eq!(json["complete"], true);
    assert_eq!(json["source"], "walk");
}

#[test]
fn flat_lists_every_loss_path_with_the_same_totals() {
    require_root!();
    let t = lived_in();
    let (grouped, _) = audit_with_mounts(&t, RULES);
    let (flat, code) = audit_with_mounts(&t, &format!("{RULES} --flat"));
    assert_eq!(code, 3);
    assert_eq!(flat["grouping"], "flat");
    assert_eq!(
        verdicts(&flat),
        map(&[
            ("/etc", "structure 1"),
            ("/etc/hostname", "unclaimed 1"),
            ("/etc/link-broken", "broken 1"),
            ("/etc/link-kept", "kept -"),
            ("/home", "unclaimed 1"),
            ("/home/u", "unclaimed 1"),
            ("/home/u/.cache", "ignored -"),
            ("/home/u/notes.txt", "unclaimed 1"),
            ("/persist", "structure 1"),
            ("/var", "structure 1"),
            ("/var/cache", "unclaimed 1"),
            ("/var/cache/app", "unclaimed 1"),
            ("/var/cache/app/a", "unclaimed 1"),
            ("/var/cache/app/b", "unclaimed 1"),
            ("/var/lib", "structure 1"),
            ("/var/lib/broken", "broken 1"),
            ("/var/lib/broken/data.db", "broken 1"),
            ("/var/lib/kept", "kept -"),
        ])
    );
    for verdict in ["unclaimed", "broken", "structure", "kept", "ignored"] {
        for what in ["entries", "bytes", "disk"] {
            assert_eq!(
                grouped["totals"][verdict][what], flat["totals"][verdict][what],
                "grouping never changes what is counted ({verdict} {what})"
            );
        }
    }
}

#[test]
fn assume_claims_trusts_without_looking() {
    let t = lived_in();
    let root = t.root().to_str().expect("utf-8 temp path");
    let out = common::run([
        "audit",
        "--root",
        root,
        "--format",
        "json",
        "--assume-claims",
        "--keep",
        "/var/lib/broken",
        "--keep",
        "/var/lib/kept",
    ]);
    let json = common::parse_json(&out);
    let f = common::findings(&json);
    for claimed in [&b"/var/lib/broken"[..], b"/var/lib/kept"] {
        assert_eq!(f[claimed]["verdict"], "kept");
        assert_eq!(f[claimed]["unverified"], true);
    }
    assert!(!f.contains_key(&b"/var/lib/broken/data.db"[..]));
    assert_eq!(common::code(&out), 1, "the rest is still unclaimed");
}

#[test]
fn missing_claims_are_listed_not_lost() {
    let t = common::Tree::new();
    t.file(b"/etc/x", b"x");
    let (json, code) = common::audit_json(t.root(), &["--keep", "/var/lib/gone", "--keep", "/etc/x"]);
    let missing = json["missing_claims"].as_array().expect("array");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["path"], "/var/lib/gone");
    assert_eq!(missing[0]["rule"]["kind"], "keep");
    // /etc/x is claimed but plain content: broken.
    assert_eq!(common::findings(&json)[&b"/etc/x"[..]]["verdict"], "broken");
    assert_eq!(code, 3);
}

#[test]
fn nested_rules_of_the_other_kind() {
    let t = common::Tree::new();
    t.file(b"/var/cache/junk/1", b"1")
        .file(b"/var/cache/pkg/p", b"pp")
        .file(b"/srv/data/db", b"db")
        .file(b"/srv/data/tmp/t", b"t");
    let (json, code) = common::audit_json(
        t.root(),
        &[
            "--ignore",
            "/var/cache",
            "--keep",
            "/var/cache/pkg",
            "--keep",
            "/srv/data",
            "--ignore",
            "/srv/data/tmp",
        ],
    );
    assert_eq!(
        verdicts(&json),
        map(&[
            ("/srv", "structure 1"),
            // The broken claim counts itself and db; tmp is ignored inside it.
            ("/srv/data", "broken 2"),
            ("/srv/data/tmp", "ignored -"),
            ("/var", "structure 1"),
            ("/var/cache", "ignored -"),
            // Entered only because a claim lies below the ignored directory.
            ("/var/cache/pkg", "broken 2"),
        ])
    );
    assert_eq!(code, 3);
}

#[test]
fn a_clean_root_exits_zero() {
    let t = common::Tree::new();
    t.file(b"/var/cache/x", b"x").dir(b"/tmp");
    let (json, code) = common::audit_json(t.root(), &["--ignore", "/var/cache", "--ignore", "/tmp"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["exit_code"], 0);
    // /var holds nothing but an ignored path: structure, not a loss.
    assert_eq!(
        verdicts(&json),
        map(&[("/tmp", "ignored -"), ("/var", "structure 1"), ("/var/cache", "ignored -")])
    );
}

#[test]
fn a_bind_mount_from_the_same_filesystem_is_a_mount_point() {
    require_root!();
    // Same st_dev on both sides: only the mount id tells them apart. A bind
    // from outside the audited root is a realised claim; one from inside it
    // shows the ephemeral root itself and is erased with it.
    let t = common::Tree::new();
    let outside = common::Tree::new();
    outside.file(b"/state/db", b"kept data");
    t.file(b"/elsewhere/state/db", b"lost data")
        .dir(b"/var/lib/app")
        .dir(b"/var/lib/self")
        .file(b"/var/lib/other/x", b"x");
    let script = format!(
        r#"R='{root}'
mount --bind '{outside}/state' "$R/var/lib/app"
mount --bind "$R/elsewhere/state" "$R/var/lib/self"
set +e
"$D" audit --root "$R" --format json --keep /var/lib/app --keep /var/lib/self --ignore /elsewhere
echo "exit=$?" >&2"#,
        root = t.root().display(),
        outside = outside.root().display()
    );
    let out = common::in_mount_namespace(&script);
    let json = common::parse_json(&out);
    assert_eq!(
        verdicts(&json),
        map(&[
            ("/elsewhere", "ignored -"),
            ("/var", "structure 1"),
            ("/var/lib", "structure 1"),
            ("/var/lib/app", "kept -"),
            ("/var/lib/other", "unclaimed 2"),
            ("/var/lib/self", "broken 1"),
        ])
    );
    let f = common::findings(&json);
    assert!(f[&b"/var/lib/self"[..]]["detail"].as_str().unwrap().contains("from the ephemeral root itself"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exit=3"));
}

#[test]
fn a_file_with_two_names_counts_its_bytes_once() {
    let t = common::Tree::new();
    t.file(b"/a/big", &[b'h'; 1000]).dir(b"/b");
    std::fs::hard_link(t.at(b"/a/big"), t.at(b"/b/same")).expect("link");
    let (json, _) = common::audit_json(t.root(), &[]);
    let f = common::findings(&json);
    // Each group holds what its paths hold...
    assert_eq!(f[&b"/a"[..]]["size"], 1000);
    assert_eq!(f[&b"/b"[..]]["size"], 1000);
    // ...but the next boot frees the bytes once.
    assert_eq!(json["totals"]["unclaimed"]["bytes"], 1000);
    assert_eq!(json["totals"]["unclaimed"]["entries"], 4);
}
