//! Claims declared in impermanence or preservation JSON are literal paths,
//! and JSON of the wrong shape is an error, never an empty set of claims.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::ffi::OsStr;

use common::{map, verdicts};

fn audit(t: &common::Tree, flag: &str, json: &str) -> std::process::Output {
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(file.path(), json).expect("write");
    common::run([
        OsStr::new("audit"),
        OsStr::new("--root"),
        t.root().as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
        OsStr::new(flag),
        file.path().as_os_str(),
    ])
}

#[test]
fn declared_paths_with_glob_characters_name_exactly_that_path() {
    let t = common::Tree::new();
    t.file(b"/var/lib/app[1]/db", b"rows")
        .file(b"/var/lib/app1/x", b"not claimed")
        .file(b"/opt/star * dir\there/f", b"f")
        .file(b"/opt/starry/g", b"g");
    let json = r#"{"/persist": {"persistentStoragePath": "/persist",
        "directories": ["/var/lib/app[1]", "/opt/star * dir\there", "/srv/{a,b}"]}}"#;
    for flag in ["--impermanence", "--preservation"] {
        let out = audit(&t, flag, json);
        let report = common::parse_json(&out);
        assert_eq!(
            verdicts(&report),
            map(&[
                ("/opt", "structure 1"),
                // The directory and its file: plain content on the root.
                ("/opt/star * dir\there", "broken 2"),
                ("/opt/starry", "unclaimed 2"),
                ("/var", "structure 1"),
                ("/var/lib", "structure 1"),
                ("/var/lib/app1", "unclaimed 2"),
                ("/var/lib/app[1]", "broken 2"),
            ]),
            "{flag}"
        );
        let missing: Vec<&str> = report["missing_claims"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|m| m["path"].as_str())
            .collect();
        assert_eq!(missing, vec!["/srv/{a,b}"], "{flag}: checked, not dropped");
        assert_eq!(common::code(&out), 3, "{flag}: a broken claim");
    }
}

#[test]
fn a_storage_root_of_the_wrong_shape_is_an_error() {
    let t = common::Tree::new();
    t.file(b"/var/lib/x", b"x");
    for flag in ["--impermanence", "--preservation"] {
        let out = audit(&t, flag, r#"{"/persist": 5}"#);
        assert_eq!(common::code(&out), 2, "{flag}");
        assert!(out.stdout.is_empty(), "{flag}: no report without the claims");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(r#""/persist": expected a storage root (an attribute set), not a number"#),
            "{stderr}"
        );

        let out = audit(&t, flag, r#"{"/persist": {"directories": {"/var/lib/x": {}}}}"#);
        assert_eq!(common::code(&out), 2, "{flag}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(r#""/persist".directories: expected a list, not an attribute set"#),
            "{stderr}"
        );
    }
}

#[test]
fn a_nul_in_a_declared_path_is_an_error() {
    let t = common::Tree::new();
    t.file(b"/var/lib/a/b", b"x");
    let out =
        audit(&t, "--impermanence", r#"{"/persist": {"directories": ["/var/lib/ok", "/var/lib/a\u0000b"]}}"#);
    assert_eq!(common::code(&out), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#""/persist".directories[1]: "/var/lib/a\x00b": a path holds a NUL byte"#),
        "{stderr}"
    );
}
