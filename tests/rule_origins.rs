//! Findings decided by darlings' knowledge name the rule that decided
//! them, with its origin: what NixOS recreates (`recreated`, built in or
//! from `/etc/.clean`), systemd-tmpfiles objects (`recreated`, from the
//! tmpfiles.d file and line), identities (`identity`, built in). Every
//! expected value below was worked out by hand from the tree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::{json, Value};

const SERVICES: &str = "built-in: written at boot by its service";
const ACTIVATION: &str = "built-in: NixOS activation";
const LINKS: &str = "built-in: links NixOS recreates from its configuration";
const IDENTITIES: &str = "built-in: identities systemd and NixOS recreate at boot";
const CREATED: &str = "created by systemd-tmpfiles at every boot";

fn tree() -> common::Tree {
    let t = common::Tree::new();
    t.file(b"/etc/resolv.conf", b"nameserver 192.0.2.1\n")
        .file(b"/etc/machine-id", b"0123456789abcdef0123456789abcdef\n")
        .file(b"/etc/ssh/ssh_host_ed25519_key", b"key")
        .file(b"/etc/.clean", b"passwd\n")
        .file(b"/etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .symlink(b"/etc/zshrc", b"/etc/static/zshrc")
        .file(
            b"/etc/tmpfiles.d/app.conf",
            b"# app state\nd /var/lib/app 0755 root root -\nL+ /var/lib/app-link - - - - /run/target\n",
        )
        .file(b"/etc/tmpfiles.d/with space.conf", b"\nd \"/var/lib/with space\" 0755\n")
        .dir(b"/var/lib/app")
        .symlink(b"/var/lib/app-link", b"/run/target")
        .dir(b"/var/lib/with space")
        .file(b"/var/lib/lost", b"data");
    t
}

fn rule(kind: &str, pattern: &str, origin: &str) -> Value {
    json!({ "kind": kind, "pattern": pattern, "origin": origin })
}

/// (path, verdict, rule, detail) of each finding.
fn rows(json: &Value) -> Vec<(String, String, Value, Value)> {
    common::findings(json)
        .into_iter()
        .map(|(p, f)| {
            let path = String::from_utf8_lossy(&p).into_owned();
            (path, f["verdict"].as_str().unwrap().to_owned(), f["rule"].clone(), f["detail"].clone())
        })
        .collect()
}

fn row(path: &str, verdict: &str, rule: Value, detail: Value) -> (String, String, Value, Value) {
    (path.to_owned(), verdict.to_owned(), rule, detail)
}

#[test]
fn knowledge_names_its_rule_and_origin_in_json() {
    let t = tree();
    let (json, code) = common::audit_json(t.root(), &["--no-default-manifest"]);
    let structure = json!("holds claims, mounts, ignored or recreated paths, or identities");
    let expected = vec![
        row("/etc", "structure", Value::Null, structure.clone()),
        row(
            "/etc/.clean",
            "recreated",
            rule("recreated", "/etc/.clean", ACTIVATION),
            json!("recreated by NixOS activation"),
        ),
        row(
            "/etc/machine-id",
            "new-identity",
            rule("identity", "/etc/machine-id", IDENTITIES),
            json!("recreated at boot with a new machine id: a new journal directory, a new DHCP identity"),
        ),
        row(
            "/etc/passwd",
            "recreated",
            rule("recreated", "/etc/passwd", "/etc/.clean:1"),
            json!("copied from the configuration at boot (a local edit to it is lost)"),
        ),
        row(
            "/etc/resolv.conf",
            "recreated",
            rule("recreated", "/etc/resolv.conf", SERVICES),
            json!("written anew at boot by the service that owns it"),
        ),
        row("/etc/ssh", "structure", Value::Null, structure.clone()),
        row(
            "/etc/ssh/ssh_host_ed25519_key",
            "new-identity",
            rule("identity", "/etc/ssh/ssh_host_*", IDENTITIES),
            json!("recreated at boot with new SSH host keys: clients see another host"),
        ),
        row("/etc/tmpfiles.d", "unclaimed", Value::Null, Value::Null),
        row(
            "/etc/zshrc",
            "recreated",
            rule("recreated", "/etc/static", LINKS),
            json!("a link into /etc/static, recreated from the configuration"),
        ),
        row("/var", "structure", Value::Null, structure.clone()),
        row("/var/lib", "structure", Value::Null, structure),
        row(
            "/var/lib/app",
            "recreated",
            rule("recreated", "/var/lib/app", "/etc/tmpfiles.d/app.conf:2"),
            json!(CREATED),
        ),
        row(
            "/var/lib/app-link",
            "recreated",
            rule("recreated", "/var/lib/app-link", "/etc/tmpfiles.d/app.conf:3"),
            json!(CREATED),
        ),
        row("/var/lib/lost", "unclaimed", Value::Null, Value::Null),
        row(
            "/var/lib/with space",
            "recreated",
            rule("recreated", "/var/lib/with space", "/etc/tmpfiles.d/with space.conf:2"),
            json!(CREATED),
        ),
    ];
    let got = rows(&json);
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e);
    }
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    assert_eq!(code, 1, "the identities and /var/lib/lost are lost");
    let f = common::findings(&json);
    assert_eq!(f[&b"/etc/machine-id"[..]]["severity"], "critical", "severity as before");
}

#[test]
fn flat_rows_carry_the_same_rules() {
    let t = tree();
    let (json, _) = common::audit_json(t.root(), &["--no-default-manifest", "--flat"]);
    let f = common::findings(&json);
    let tmp = |line| rule("recreated", "/var/lib/app", &format!("/etc/tmpfiles.d/app.conf:{line}"));
    assert_eq!(f[&b"/var/lib/app"[..]]["verdict"], "recreated");
    assert_eq!(f[&b"/var/lib/app"[..]]["rule"], tmp(2), "the empty directory tmpfiles creates");
    assert_eq!(f[&b"/etc/resolv.conf"[..]]["rule"], rule("recreated", "/etc/resolv.conf", SERVICES));
    assert_eq!(f[&b"/etc/machine-id"[..]]["rule"], rule("identity", "/etc/machine-id", IDENTITIES));
    assert_eq!(f[&b"/etc/tmpfiles.d/app.conf"[..]]["rule"], Value::Null, "an unclaimed file");
}

#[test]
fn explain_names_the_same_rule() {
    let t = tree();
    let root = t.root().to_str().unwrap();
    let out = common::run([
        "explain",
        "--root",
        root,
        "--no-default-manifest",
        "--format",
        "json",
        "/etc/resolv.conf",
    ]);
    let e = common::parse_json(&out);
    assert_eq!(e["finding"]["rule"], rule("recreated", "/etc/resolv.conf", SERVICES));
    assert_eq!(e["rules"], json!([]), "no keep or ignore rule applies");
    let out = common::run(["explain", "--root", root, "--no-default-manifest", "/var/lib/app-link"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "no keep or ignore rule applies; decided by: recreated /var/lib/app-link  (/etc/tmpfiles.d/app.conf:3)"
        ),
        "{text}"
    );
}

/// The table says each piece of knowledge once: a built-in rule is named
/// by the detail it gives ("written anew at boot by the service that owns
/// it"), not again as `recreated … (built-in: …)`; a rule read from a file
/// names its file and line.
#[test]
fn the_table_says_knowledge_once() {
    let t = tree();
    let root = t.root().to_str().unwrap();
    let out = common::run(["audit", "--root", root, "--no-default-manifest", "--flat", "--format", "table"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |path: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(path) || l.split_whitespace().nth(2) == Some(path))
            .unwrap_or_else(|| panic!("no row for {path}:\n{text}"))
            .to_owned()
    };
    let resolv = line("/etc/resolv.conf");
    assert!(resolv.ends_with("written anew at boot by the service that owns it"), "{resolv}");
    let id = line("/etc/machine-id");
    assert!(id.contains("recreated at boot with a new machine id") && !id.contains("built-in"), "{id}");
    assert_eq!(id.matches("/etc/machine-id").count(), 2, "the path and the catalogue's pattern only: {id}");
    let app = line("/var/lib/app");
    assert!(app.ends_with("recreated /var/lib/app (/etc/tmpfiles.d/app.conf:2)"), "{app}");
}
