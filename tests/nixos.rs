//! Claims declared by NixOS's impermanence module (`--impermanence`),
//! checked against real bind mounts like any claim.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{map, verdicts};

/// The current module's shape, as `nix eval --json` prints it (written from
/// the module's options: absolute `dirPath`/`filePath`, users apart).
const PERSISTENCE: &str = r#"{
  "/persist": {
    "enable": true, "hideMounts": true, "persistentStoragePath": "/persist",
    "directories": [
      {"directory": "/var/lib/bluetooth", "dirPath": "/var/lib/bluetooth", "home": null,
       "persistentStoragePath": "/persist", "user": "root", "group": "root", "mode": "0755"}
    ],
    "files": [
      {"file": "/etc/machine-id", "filePath": "/etc/machine-id", "home": null, "method": "auto",
       "persistentStoragePath": "/persist"}
    ],
    "users": {
      "alice": {
        "directories": [{"directory": ".ssh", "dirPath": "/home/alice/.ssh", "home": "/home/alice",
                         "persistentStoragePath": "/persist"}],
        "files": []
      }
    }
  },
  "/scratch": {"enable": false, "persistentStoragePath": "/scratch", "directories": ["/var/cache"]}
}"#;

#[test]
fn declared_claims_are_checked_like_any_claim() {
    require_root!();
    let t = common::Tree::new();
    t.file(b"/etc/machine-id", b"0123456789abcdef\n")
        .dir(b"/var/lib/bluetooth")
        .file(b"/home/alice/.ssh/id_ed25519", b"key")
        .file(b"/var/cache/x", b"x")
        .dir(b"/persist");
    let json = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(json.path(), PERSISTENCE).expect("write");
    let script = format!(
        r#"R='{root}'
persistent persist "$R/persist"
mkdir -p "$R/persist/var/lib/bluetooth"
mount --bind "$R/persist/var/lib/bluetooth" "$R/var/lib/bluetooth"
"$D" audit --root "$R" --format json --impermanence '{json}' || true"#,
        root = t.root().display(),
        json = json.path().display()
    );
    let out = common::in_mount_namespace(&script);
    let report = common::parse_json(&out);
    assert_eq!(
        verdicts(&report),
        map(&[
            ("/etc", "structure 1"),
            // Declared, but plain content on the root.
            ("/etc/machine-id", "broken 1"),
            ("/home", "structure 1"),
            ("/home/alice", "structure 1"),
            ("/home/alice/.ssh", "broken 2"),
            ("/persist", "structure 1"),
            // /scratch is disabled: it claims nothing.
            ("/var", "structure 1"),
            ("/var/cache", "unclaimed 2"),
            ("/var/lib", "structure 1"),
            ("/var/lib/bluetooth", "kept -"),
        ])
    );
    let f = common::findings(&report);
    let rule = &f[&b"/home/alice/.ssh"[..]]["rule"];
    assert_eq!(rule["origin"], r#"impermanence "/persist".users.alice.directories[0]"#);
    assert_eq!(rule["reason"], "persisted in /persist");
    assert_eq!(f[&b"/var/lib/bluetooth"[..]]["rule"]["origin"], r#"impermanence "/persist".directories[0]"#);
}

#[test]
fn bad_declarations_stop_the_audit_and_say_where() {
    let t = common::Tree::new();
    let json = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(json.path(), r#"{"/persist": {"files": [{"method": "auto"}]}}"#).expect("write");
    let out = common::run([
        std::ffi::OsStr::new("audit"),
        "--root".as_ref(),
        t.root().as_os_str(),
        "--impermanence".as_ref(),
        json.path().as_os_str(),
    ]);
    assert_eq!(common::code(&out), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(r#""/persist".files[0]: a file entry without `file` or `filePath`"#), "{stderr}");
    assert!(out.stdout.is_empty());
}

/// A storage root with a `.` or `..` component names another directory
/// than the one written: `audit` and `stray` refuse it alike, naming the
/// file and the key, as they do a declared path with `..` — whether the
/// storage root is the attribute name, its `persistentStoragePath`, or an
/// entry's own.
#[test]
fn a_storage_root_with_dot_components_is_refused_by_audit_and_stray() {
    let t = common::Tree::new();
    t.dir(b"/persist/sub").dir(b"/var/lib/app");
    for (text, key, says) in [
        (
            r#"{"/persist/sub/..": {"directories": ["/var/lib/app"]}}"#,
            r#""/persist/sub/..""#,
            "`..` component",
        ),
        (r#"{"/persist/./": {"directories": ["/var/lib/app"]}}"#, r#""/persist/./""#, "`.` component"),
        (
            r#"{"p": {"persistentStoragePath": "/persist/.", "directories": ["/var/lib/app"]}}"#,
            r#""p".persistentStoragePath"#,
            "`.` component",
        ),
        (
            r#"{"/persist": {"directories": [{"directory": "/var/lib/app", "persistentStoragePath": "/persist/sub/.."}]}}"#,
            r#""/persist".directories[0].persistentStoragePath"#,
            "`..` component",
        ),
        (r#"{"persist": {"directories": ["/var/lib/app"]}}"#, r#""persist""#, "not an absolute path"),
    ] {
        let json = tempfile::NamedTempFile::new().expect("tempfile");
        std::fs::write(json.path(), text).expect("write");
        for command in ["audit", "stray"] {
            let out = common::run([
                std::ffi::OsStr::new(command),
                "--root".as_ref(),
                t.root().as_os_str(),
                "--no-default-manifest".as_ref(),
                "--impermanence".as_ref(),
                json.path().as_os_str(),
            ]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(common::code(&out), 2, "{command} {text}: {stderr}");
            assert!(out.stdout.is_empty(), "{command} {text}");
            let file = json.path().display().to_string();
            assert!(stderr.contains(&format!("{file}: {key}: storage root")), "{command} {text}: {stderr}");
            assert!(stderr.contains(says), "{command} {text}: {stderr}");
        }
    }
}

/// The `--apply` expression, evaluated for real by Nix on a value shaped
/// like current impermanence's, whose removed options throw when forced;
/// its JSON then feeds `--impermanence`.
#[test]
fn the_apply_expression_makes_nix_eval_work_and_feeds_darlings() {
    if !common::have("nix-instantiate") {
        return common::unavailable("nix-instantiate (Debian's nix-bin) is not installed");
    }
    let expr = common::run(["nix", "expr", "impermanence"]);
    assert_eq!(common::code(&expr), 0);
    let apply = String::from_utf8(expr.stdout).expect("utf-8");
    let value = r#"{
      "/persist" = {
        enable = true;
        persistentStoragePath = "/persist";
        allowOther = throw "The option `environment.persistence./persist.allowOther' can no longer be used";
        removePrefixDirectory = throw "removed";
        directories = [
          { directory = "/var/log"; dirPath = "/var/log"; home = null; method = throw "removed"; }
          "/var/lib/bluetooth"
        ];
        files = [ { file = "/etc/machine-id"; filePath = "/etc/machine-id"; parentDirectory = { mode = "0755"; }; } ];
        users.alice = {
          home = throw "The option `home' can no longer be used";
          directories = [ { directory = ".ssh"; dirPath = "/home/alice/.ssh"; home = "/home/alice"; } ];
          files = [ ];
        };
        enableDebugging = x: x;
      };
    }"#;
    // Without the expression, evaluation fails on the first removed option.
    let plain = std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", value])
        .env("NIX_REMOTE", "")
        .output()
        .expect("nix-instantiate");
    assert!(!plain.status.success(), "a throwing attribute fails a plain evaluation");
    let out = std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", &format!("({apply}) ({value})")])
        .env("NIX_REMOTE", "")
        .output()
        .expect("nix-instantiate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(json["/persist"].get("allowOther").is_none());
    assert!(json["/persist"]["users"]["alice"].get("home").is_none());
    assert_eq!(json["/persist"]["directories"][0]["dirPath"], "/var/log");

    // And darlings reads it.
    let t = common::Tree::new();
    t.file(b"/var/log/syslog", b"log").file(b"/home/alice/.ssh/id", b"k");
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(file.path(), &out.stdout).expect("write");
    let (report, _) = common::audit_json(t.root(), &["--impermanence", file.path().to_str().expect("utf-8")]);
    let f = common::findings(&report);
    assert_eq!(f[&b"/var/log"[..]]["verdict"], "broken");
    assert_eq!(f[&b"/home/alice/.ssh"[..]]["verdict"], "broken");
    let missing: Vec<&str> = report["missing_claims"]
        .as_array()
        .expect("missing")
        .iter()
        .map(|m| m["path"].as_str().expect("path"))
        .collect();
    assert_eq!(missing, vec!["/etc/machine-id", "/var/lib/bluetooth"]);
}

/// Each way a declared claim is not realised, with real mounts: a bind
/// from another filesystem, a bind shadowed by a later mount, a symlink
/// outside the storage root, a missing persistent source.
#[test]
fn a_declared_claim_must_come_from_its_own_storage_root() {
    require_root!();
    let t = common::Tree::new();
    for d in [&b"/var/lib/good"[..], b"/var/lib/wrong", b"/var/lib/shadowed", b"/persist", b"/other"] {
        t.dir(d);
    }
    t.file(b"/var/lib/missing/data", b"d")
        .symlink(b"/etc/linked-ok", b"/persist/etc/ok")
        .symlink(b"/etc/linked-out", b"/other/etc/ok");
    let decl = r#"{"/persist": {"persistentStoragePath": "/persist",
        "directories": ["/var/lib/good", "/var/lib/wrong", "/var/lib/shadowed", "/var/lib/missing"],
        "files": [{"file": "/etc/linked-ok", "filePath": "/etc/linked-ok", "method": "symlink"},
                  {"file": "/etc/linked-out", "filePath": "/etc/linked-out", "method": "symlink"}]}}"#;
    let json = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(json.path(), decl).expect("write");
    let script = format!(
        r#"R='{root}'
persistent persist "$R/persist"
mount -t tmpfs other "$R/other"
mkdir -p "$R/persist/var/lib/good" "$R/persist/var/lib/shadowed" "$R/persist/etc" "$R/other/wrong" "$R/other/etc"
echo ok > "$R/persist/etc/ok"; echo ok > "$R/other/etc/ok"
mount --bind "$R/persist/var/lib/good" "$R/var/lib/good"
mount --bind "$R/other/wrong" "$R/var/lib/wrong"
mount --bind "$R/persist/var/lib/shadowed" "$R/var/lib/shadowed"
mount -t tmpfs later "$R/var/lib/shadowed"
"$D" audit --root "$R" --format json --impermanence '{json}' || true"#,
        root = t.root().display(),
        json = json.path().display()
    );
    let out = common::in_mount_namespace(&script);
    let report = common::parse_json(&out);
    let f = common::findings(&report);
    let check = |path: &str, verdict: &str, detail: &str| {
        let row = &f[path.as_bytes()];
        assert_eq!(row["verdict"], verdict, "{path}: {row}");
        let got = row["detail"].as_str().unwrap_or("");
        assert!(got.contains(detail), "{path}: {got:?} lacks {detail:?}");
    };
    check("/var/lib/good", "kept", "mount point (overlay persist[/var/lib/good])");
    check("/var/lib/wrong", "broken", "mounted from tmpfs other[/wrong], not from its storage root /persist");
    check(
        "/var/lib/shadowed",
        "broken",
        "the bind mount from /persist is shadowed by a later mount (tmpfs later)",
    );
    check("/var/lib/missing", "broken", "its persistent source /persist/var/lib/missing is missing");
    check("/etc/linked-ok", "kept", "symlink to /persist/etc/ok");
    check("/etc/linked-out", "broken", "symlink to /other/etc/ok, outside its storage root /persist");
    assert_eq!(report["exit_code"], 3);
}

#[test]
fn preservation_claims_are_read_too() {
    let t = common::Tree::new();
    t.file(b"/var/lib/nixos/uid-map", b"{}")
        .file(b"/home/alice/.config/other", b"o")
        .file(b"/home/alice/.config/foo/x", b"x");
    let json = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(
        json.path(),
        r#"{"/persistent": {"persistentStoragePath": "/persistent",
            "directories": [{"directory": "/var/lib/nixos", "how": "bindmount"}], "files": [],
            "users": {"alice": {"username": "alice", "home": "/home/alice", "files": [],
              "directories": [{"directory": "/home/alice/.config", "how": "_intermediate"},
                              {"directory": "/home/alice/.config/foo", "how": "symlink"}]}}}}"#,
    )
    .expect("write");
    let (report, code) =
        common::audit_json(t.root(), &["--preservation", json.path().to_str().expect("utf-8")]);
    assert_eq!(code, 3);
    let f = common::findings(&report);
    assert_eq!(f[&b"/var/lib/nixos"[..]]["verdict"], "broken");
    assert_eq!(f[&b"/var/lib/nixos"[..]]["rule"]["origin"], r#"preservation "/persistent".directories[0]"#);
    assert_eq!(f[&b"/home/alice/.config/foo"[..]]["verdict"], "broken");
    // The generated parent is structure, not a claim: its other content is unclaimed.
    assert_eq!(f[&b"/home/alice/.config/other"[..]]["verdict"], "unclaimed");
}

#[test]
fn stray_lists_what_the_storage_root_holds_beyond_the_claims() {
    let t = common::Tree::new();
    t.file(b"/persist/var/lib/bluetooth/aa/info", b"paired")
        .file(b"/persist/var/lib/old-app/db", b"forgotten")
        .file(b"/persist/etc/machine-id", b"id")
        .file(b"/persist/home/alice/.ssh/id", b"k")
        .file(b"/persist/home/alice/old-notes.txt", b"n")
        .file(b"/var/lib/bluetooth/not-in-storage", b"x");
    let json = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(json.path(), PERSISTENCE).expect("write");
    let root = t.root().to_str().expect("utf-8");
    let out = common::run([
        "stray",
        "--root",
        root,
        "--format",
        "json",
        "--impermanence",
        json.path().to_str().expect("utf-8"),
    ]);
    assert_eq!(common::code(&out), 1);
    let report = common::parse_json(&out);
    assert_eq!(report["source"], "stray");
    // Declared: bluetooth, machine-id, alice's .ssh. The rest is stray, at
    // its path on this machine; parents of claims are not.
    assert_eq!(
        verdicts(&report),
        map(&[
            ("/persist/home/alice/old-notes.txt", "unclaimed 1"),
            ("/persist/var/lib/old-app", "unclaimed 2")
        ])
    );
    let out = common::run(["stray", "--root", root]);
    assert_eq!(common::code(&out), 2, "stray needs declared claims");
}
