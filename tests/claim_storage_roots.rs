//! Declared claims and their storage roots: one path claimed from two
//! storage roots is a contradiction in the configuration, and a storage
//! root reached through a symlink is never followed out of the audited
//! root.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::ffi::OsStr;

fn json_file(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(file.path(), text).expect("write");
    file
}

fn audit(t: &common::Tree, claims: &[(&str, &tempfile::NamedTempFile)]) -> std::process::Output {
    let mut args = vec![OsStr::new("audit"), OsStr::new("--root"), t.root().as_os_str()];
    args.extend([OsStr::new("--format"), OsStr::new("json"), OsStr::new("--no-default-manifest")]);
    for (flag, file) in claims {
        args.extend([OsStr::new(*flag), file.path().as_os_str()]);
    }
    common::run(args)
}

/// impermanence refuses to build a configuration that lists one path twice
/// (its assertion "specified two or more times"); two storage roots
/// claiming one path cannot both be mounted there. Neither declaration may
/// vanish: the audit refuses, naming both, and reports nothing.
#[test]
fn one_path_claimed_from_two_storage_roots_is_an_error_naming_both() {
    let t = common::Tree::new();
    t.file(b"/var/lib/x/state", b"s").file(b"/etc/machine-id", b"0123");
    let json = json_file(
        r#"{"/persist": {"directories": ["/var/lib/x", "/var/lib/y"]},
            "/persist/cache": {"directories": ["/var/lib/z", "/var/lib/x/"]}}"#,
    );
    let out = audit(&t, &[("--impermanence", &json)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(common::code(&out), 2, "{stderr}");
    assert!(out.stdout.is_empty(), "no report without every claim");
    for says in [
        "/var/lib/x: claimed from two storage roots",
        r#"/persist (impermanence "/persist".directories[0]"#,
        r#"/persist/cache (impermanence "/persist/cache".directories[1]"#,
        "only one of them can be mounted there",
    ] {
        assert!(stderr.contains(says), "does not say {says:?}: {stderr}");
    }
    assert!(stderr.contains(&json.path().display().to_string()), "names the file: {stderr}");

    // Across two files: impermanence and preservation both claim the file.
    let a = json_file(r#"{"/persist": {"files": ["/etc/machine-id"]}}"#);
    let b = json_file(r#"{"/persistent": {"files": [{"file": "/etc/machine-id", "how": "symlink"}]}}"#);
    let out = audit(&t, &[("--impermanence", &a), ("--preservation", &b)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(common::code(&out), 2, "{stderr}");
    assert!(stderr.contains("/etc/machine-id: claimed from two storage roots"), "{stderr}");
    for file in [&a, &b] {
        assert!(stderr.contains(&file.path().display().to_string()), "names both files: {stderr}");
    }
}

/// The same path from the same storage root twice is no contradiction
/// (older impermanence lists users' entries twice; two modules may agree):
/// one claim, checked once.
#[test]
fn one_path_claimed_twice_from_one_storage_root_is_one_claim() {
    let t = common::Tree::new();
    t.file(b"/var/lib/x/state", b"s");
    let a = json_file(r#"{"/persist": {"directories": ["/var/lib/x"]}}"#);
    let b = json_file(r#"{"/persist/": {"directories": [{"directory": "/var/lib/x", "how": "bindmount"}]}}"#);
    let out = audit(&t, &[("--impermanence", &a), ("--preservation", &b)]);
    assert_eq!(common::code(&out), 3, "{}", String::from_utf8_lossy(&out.stderr));
    let json = common::parse_json(&out);
    let x: Vec<_> =
        json["findings"].as_array().unwrap().iter().filter(|f| f["path"] == "/var/lib/x").collect();
    assert_eq!(x.len(), 1, "{x:?}");
    assert_eq!(x[0]["verdict"], "broken");
}
