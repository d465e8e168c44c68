//! A `[[precious]]` glob matches exactly what the same glob given to
//! `--keep` matches: one pattern type, one glob engine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{map, verdicts};

const MANIFEST: &str = r#"
[[precious]]
path = "/srv/{a,b c}"
severity = "critical"
reason = "uploads"
"#;

/// `/srv/a` and `/srv/b c` are the entry's; `/srv/c` is not; `/srv/k` is
/// claimed (broken), so `/srv` is structure and each is a row.
fn tree() -> common::Tree {
    let t = common::Tree::new();
    t.file(b"/srv/a/upload", b"1").file(b"/srv/b c/upload", b"2").file(b"/srv/c/upload", b"3").dir(b"/srv/k");
    t
}

#[test]
fn a_brace_glob_in_the_manifest_gives_its_severity() {
    let t = tree();
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("m.toml");
    std::fs::write(&manifest, MANIFEST).expect("write");
    let manifest = manifest.to_str().expect("utf-8");

    let (json, code) = common::audit_json(t.root(), &["--manifest", manifest, "--keep", "/srv/k"]);
    assert_eq!(code, 3);
    assert_eq!(
        verdicts(&json),
        map(&[
            ("/srv", "structure 1"),
            ("/srv/a", "unclaimed 2"),
            ("/srv/b c", "unclaimed 2"),
            ("/srv/c", "unclaimed 2"),
            ("/srv/k", "broken 1"),
        ])
    );
    let f = common::findings(&json);
    assert_eq!(f[&b"/srv/a"[..]]["severity"], "critical");
    assert_eq!(f[&b"/srv/a"[..]]["keep_path"], "/srv/a");
    assert_eq!(f[&b"/srv/b c"[..]]["severity"], "critical");
    assert_eq!(f[&b"/srv/c"[..]]["severity"], serde_json::Value::Null);

    // The same glob as a keep rule claims the same two directories.
    let (json, _) = common::audit_json(t.root(), &["--manifest", manifest, "--keep", "/srv/{a,b c}"]);
    assert_eq!(
        verdicts(&json),
        map(&[
            ("/srv", "structure 1"),
            ("/srv/a", "broken 2"),
            ("/srv/b c", "broken 2"),
            ("/srv/c", "unclaimed 2"),
            ("/srv/k", "unclaimed 1")
        ])
    );
    let f = common::findings(&json);
    assert_eq!(f[&b"/srv/a"[..]]["severity"], "critical");
    assert_eq!(f[&b"/srv/b c"[..]]["severity"], "critical");
}
