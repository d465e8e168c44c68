//! `--accepted`: a previous report accepts only what is not worse now
//! (verdict, severity); growth is accepted; a report it cannot read is an
//! error, never a licence to accept everything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::ffi::OsStr;
use std::path::Path;

/// `/home/bob` with a note and `/var/lib/app` with data: two unclaimed
/// findings, `/home` and `/var`, neither in the catalogue.
fn lived_in() -> common::Tree {
    let t = common::Tree::new();
    t.file(b"/home/bob/notes", b"hi\n").file(b"/var/lib/app/state", b"x");
    t
}

/// Audits `t` as JSON and saves the report as the accepted file.
fn accept_now(t: &common::Tree, file: &Path) {
    let (json, code) = common::audit_json(t.root(), &[]);
    assert_eq!(code, 1, "two unclaimed findings");
    assert_eq!(common::verdicts(&json), common::map(&[("/home", "unclaimed 3"), ("/var", "unclaimed 4")]));
    assert_eq!(json["findings"][0]["severity"], serde_json::Value::Null);
    std::fs::write(file, serde_json::to_vec(&json).expect("json")).expect("write");
}

fn audit_accepting(t: &common::Tree, file: &Path) -> (serde_json::Value, i32) {
    let file = file.to_str().expect("utf-8 temp path");
    common::audit_json(t.root(), &["--accepted", file])
}

fn accepted(json: &serde_json::Value, path: &str) -> bool {
    common::findings(json)[path.as_bytes()]["accepted"].as_bool().expect("accepted flag")
}

#[test]
fn an_accepted_home_that_now_holds_an_ssh_key_fails_again() {
    let t = lived_in();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("accepted.json");
    accept_now(&t, &file);

    let (json, code) = audit_accepting(&t, &file);
    assert_eq!(code, 0, "nothing new");
    assert!(accepted(&json, "/home") && accepted(&json, "/var"));

    t.file(b"/home/bob/.ssh/id_ed25519", b"KEY");
    let (json, code) = audit_accepting(&t, &file);
    assert_eq!(common::findings(&json)[&b"/home"[..]]["severity"], "critical");
    assert!(!accepted(&json, "/home"), "none before, critical now");
    assert!(accepted(&json, "/var"));
    assert_eq!(code, 1);
}

#[test]
fn a_new_database_under_an_accepted_var_fails_again() {
    let t = lived_in();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("accepted.json");
    accept_now(&t, &file);

    t.file(b"/var/lib/postgresql/17/main/PG_VERSION", b"17\n");
    let (json, code) = audit_accepting(&t, &file);
    assert_eq!(common::findings(&json)[&b"/var"[..]]["severity"], "critical");
    assert!(!accepted(&json, "/var"));
    assert!(accepted(&json, "/home"));
    assert_eq!(code, 1);
}

#[test]
fn growth_with_the_same_verdict_and_severity_stays_accepted() {
    let t = lived_in();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("accepted.json");
    accept_now(&t, &file);

    t.file(b"/home/bob/more notes", &[b'n'; 5000]).file(b"/var/lib/app/more/state", b"y");
    let (json, code) = audit_accepting(&t, &file);
    assert_eq!(common::verdicts(&json), common::map(&[("/home", "unclaimed 4"), ("/var", "unclaimed 6")]));
    assert!(accepted(&json, "/home") && accepted(&json, "/var"));
    assert_eq!(code, 0);
}

#[test]
fn an_unknown_verdict_is_an_error_naming_the_file_and_the_finding() {
    let t = lived_in();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("accepted.json");
    std::fs::write(
        &file,
        r#"{"findings": [{"path": "/home", "verdict": "unclaimed", "severity": null},
                         {"path": "/var", "verdict": "unclaimmed", "severity": null}]}"#,
    )
    .expect("write");
    let out = common::run([
        OsStr::new("audit"),
        OsStr::new("--root"),
        t.root().as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
        OsStr::new("--accepted"),
        file.as_os_str(),
    ]);
    assert_eq!(common::code(&out), 2);
    assert!(out.stdout.is_empty(), "no report from an unreadable accepted file");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}: findings[1] (/var): unknown verdict \"unclaimmed\"", file.display());
    assert!(stderr.contains(&expected), "{stderr}");
}
