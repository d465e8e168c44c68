//! `darlings stray` lists content of the storage roots that no claim
//! declares. That content is on persistent storage and survives the boot:
//! its summary says what it is, how much, and what to do, never that the
//! boot erases it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

const PERSISTENCE: &str = r#"{
  "/persist": {
    "enable": true, "persistentStoragePath": "/persist",
    "directories": [{"directory": "/var/lib/bluetooth", "dirPath": "/var/lib/bluetooth",
                     "persistentStoragePath": "/persist"}],
    "files": [{"file": "/etc/machine-id", "filePath": "/etc/machine-id", "persistentStoragePath": "/persist"}],
    "users": {}
  }
}"#;

fn stray_table(t: &common::Tree) -> (String, i32) {
    let json = t.root().join("persistence.json");
    std::fs::write(&json, PERSISTENCE).expect("write");
    let out = common::run([
        "stray".as_ref(),
        "--root".as_ref(),
        t.root().as_os_str(),
        "--impermanence".as_ref(),
        json.as_os_str(),
        "--format".as_ref(),
        "table".as_ref(),
    ]);
    let code = common::code(&out);
    (String::from_utf8(out.stdout).expect("utf-8"), code)
}

#[test]
fn stray_says_what_lies_undeclared_not_what_the_boot_erases() {
    let t = common::Tree::new();
    t.file(b"/persist/var/lib/bluetooth/aa/info", b"paired")
        .file(b"/persist/etc/machine-id", b"id")
        .file(b"/persist/var/lib/old-app/db", b"forgotten")
        .file(b"/persist/home/alice/old notes.txt", b"n");
    let (table, code) = stray_table(&t);
    assert_eq!(code, 1, "{table}");
    assert!(!table.contains("erase"), "stray content is not erased:\n{table}");
    // By hand: /persist/home (home, alice, and the 1-byte notes: no claim
    // lies in it) and /persist/var/lib/old-app (itself and its 9-byte db).
    let summary = table.lines().last().expect("a summary");
    assert!(
        summary
            .starts_with("Stray: 5 entries (10 B) in 2 findings in the storage roots, declared by no claim."),
        "{summary}"
    );
    assert!(summary.contains("survives the boot"), "{summary}");
    assert!(summary.contains("declare it again, or delete it"), "{summary}");
}

#[test]
fn a_storage_root_holding_only_claims_has_nothing_stray() {
    let t = common::Tree::new();
    t.file(b"/persist/var/lib/bluetooth/aa/info", b"paired").file(b"/persist/etc/machine-id", b"id");
    let (table, code) = stray_table(&t);
    assert_eq!(code, 0, "{table}");
    assert_eq!(
        table.lines().last(),
        Some("Nothing stray: the storage roots hold only what the claims declare."),
        "{table}"
    );
}
