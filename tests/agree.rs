//! One audit core: every source, and `explain`, decide the same way.
//!
//! A lived-in root on a real btrfs (a `root` subvolume mounted on its own,
//! its read-only `root-blank` beside it), with claims realised by a bind
//! mount and by a symlink, broken with and without changes since the blank
//! snapshot, a literal `[1]` in a declared path, a bind mount from the
//! ephemeral root itself, and a missing claim. Audited by the walk, by
//! `auto` (the btrfs comparison) and by `--baseline`: the claims' verdicts
//! are identical; `explain` says what the audit says, path by path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use serde_json::Value;

/// Declared in impermanence's current JSON shape; `/var/lib/selfbind` is
/// claimed with `--keep` (a person's rule, no storage root).
const CLAIMS: &str = r#"{"/persist": {"enable": true, "persistentStoragePath": "/persist",
  "directories": [
    {"directory": "/etc/ssh", "dirPath": "/etc/ssh"},
    {"directory": "/var/log", "dirPath": "/var/log"},
    {"directory": "/var/lib/nixos", "dirPath": "/var/lib/nixos"},
    {"directory": "/var/lib/app[1]", "dirPath": "/var/lib/app[1]"},
    {"directory": "/var/lib/bluetooth", "dirPath": "/var/lib/bluetooth"},
    {"directory": "/var/lib/absent", "dirPath": "/var/lib/absent"}],
  "files": [{"file": "/etc/machine-id", "filePath": "/etc/machine-id"}],
  "users": {}}}"#;

const SCENARIO: &str = r#"
truncate -s 256M fs.img
mkfs.btrfs -q fs.img
mkdir m && mount -o loop fs.img m
btrfs -q subvolume create m/root
R=m/root
mkdir -p "$R/etc/ssh" "$R/var/log" "$R/var/lib/nixos" "$R/persist" "$R/srv/mnt"
echo key > "$R/etc/ssh/ssh_host_ed25519_key"
echo old > "$R/srv/mnt/old"
echo old > "$R/var/log/old.log"
btrfs -q subvolume snapshot -r m/root m/root-blank
mkdir r && mount -o loop,subvol=root fs.img r
R=r
persistent persist "$R/persist"
mkdir -p "$R/persist/var/lib/nixos" "$R/persist/etc"
echo 1000 > "$R/persist/var/lib/nixos/uid-map"
echo 0123456789abcdef > "$R/persist/etc/machine-id"
echo early > "$R/var/lib/nixos/early"
mount --bind "$R/persist/var/lib/nixos" "$R/var/lib/nixos"
mount -t tmpfs scratch "$R/srv/mnt"
ln -s /persist/etc/machine-id "$R/etc/machine-id"
mkdir -p "$R/var/lib/app[1]" "$R/var/lib/bluetooth" "$R/srv/self" "$R/var/lib/selfbind"
echo data > "$R/var/lib/app[1]/db"
echo pair > "$R/var/lib/bluetooth/info"
echo s > "$R/srv/self/f"
mount --bind "$R/srv/self" "$R/var/lib/selfbind"
echo x > "$R/srv/new-file"
"#;

/// The claimed paths and their verdicts, as worked out from the scenario.
const EXPECTED: &[(&str, &str)] = &[
    ("/etc/machine-id", "kept"),
    ("/etc/ssh", "broken"),
    ("/var/lib/app[1]", "broken"),
    ("/var/lib/bluetooth", "broken"),
    ("/var/lib/nixos", "kept"),
    ("/var/lib/selfbind", "broken"),
    ("/var/log", "broken"),
];

/// Runs the scenario, then each named darlings command (arguments after
/// `darlings`), printing `=== NAME` before each output.
fn scenario(commands: &[(String, String)]) -> BTreeMap<String, Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("claims.json"), CLAIMS).expect("write");
    let mut script = format!("cd '{}'\n{SCENARIO}", dir.path().display());
    for (name, args) in commands {
        script.push_str(&format!("echo '=== {name}'\n\"$D\" {args} || true\n"));
    }
    common::sections(&common::in_mount_namespace(&script)).into_iter().collect()
}

const RULES: &str = "--root \"$PWD/r\" --impermanence \"$PWD/claims.json\" --keep /var/lib/selfbind";

fn claims(json: &Value) -> Vec<(String, String)> {
    let f = common::findings(json);
    EXPECTED
        .iter()
        .map(|(p, _)| {
            let verdict =
                f.get(p.as_bytes()).map_or("none".into(), |f| f["verdict"].as_str().unwrap().to_owned());
            ((*p).to_owned(), verdict)
        })
        .collect()
}

fn missing(json: &Value) -> Vec<String> {
    json["missing_claims"].as_array().expect("missing").iter().map(|m| m["path"].to_string()).collect()
}

fn losses(json: &Value) -> BTreeSet<Vec<u8>> {
    common::findings(json).into_iter().filter(|(_, f)| f["verdict"] == "unclaimed").map(|(p, _)| p).collect()
}

#[test]
fn every_source_checks_every_claim_the_same_way() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let mut commands: Vec<(String, String)> =
        [("walk", "--source walk"), ("auto", ""), ("baseline", "--baseline \"$PWD/m/root-blank\"")]
            .iter()
            .map(|(n, a)| ((*n).to_owned(), format!("audit --format json --flat {RULES} {a}")))
            .collect();
    for (path, _) in EXPECTED {
        commands.push((format!("explain {path}"), format!("explain --format json --flat {RULES} '{path}'")));
    }
    let out = scenario(&commands);
    let expected: Vec<(String, String)> = EXPECTED.iter().map(|(p, v)| ((*p).into(), (*v).into())).collect();
    assert_eq!(out["auto"]["source"], "btrfs");
    assert_eq!(out["baseline"]["source"], "baseline");
    for name in ["walk", "auto", "baseline"] {
        let json = &out[name];
        assert_eq!(claims(json), expected, "{name}");
        assert_eq!(missing(json), vec!["\"/var/lib/absent\"".to_owned()], "{name}");
        assert_eq!(json["exit_code"], 3, "{name}");
    }
    // The bind from the root itself, and the unchanged broken claim, say why.
    let f = common::findings(&out["auto"]);
    assert!(f[&b"/var/lib/selfbind"[..]]["detail"]
        .as_str()
        .unwrap()
        .contains("from the ephemeral root itself"));
    assert!(f[&b"/etc/ssh"[..]]["detail"]
        .as_str()
        .unwrap()
        .contains("its persistent source /persist/etc/ssh is missing"));
    // Losses: the snapshot sources agree; the walk also lists what is
    // unchanged since the blank snapshot.
    assert_eq!(losses(&out["auto"]), losses(&out["baseline"]));
    assert!(losses(&out["auto"]).is_subset(&losses(&out["walk"])));
    assert!(losses(&out["auto"]).contains(&b"/srv/new-file"[..]));
    // Hidden under the bind mount, whatever the source; what the blank
    // snapshot also holds under a mount point comes back at rollback.
    let shadowed = |name: &str| -> Vec<String> {
        common::findings(&out[name])
            .into_iter()
            .filter(|(_, f)| f["verdict"] == "shadowed")
            .map(|(p, _)| String::from_utf8_lossy(&p).into_owned())
            .collect()
    };
    assert_eq!(shadowed("walk"), ["/srv/mnt/old", "/var/lib/nixos/early"]);
    assert_eq!(shadowed("auto"), ["/var/lib/nixos/early"]);
    assert_eq!(shadowed("baseline"), ["/var/lib/nixos/early"]);
    // explain gives the walk's own rows for the claims.
    let walk = common::findings(&out["walk"]);
    for (path, _) in EXPECTED {
        let e = &out[&format!("explain {path}")];
        let row = &walk[path.as_bytes()];
        for key in ["verdict", "severity", "rule", "detail"] {
            assert_eq!(e["finding"][key], row[key], "{path}: {key}");
        }
        assert_eq!(e["claim"]["state"], row["verdict"], "{path}");
    }
}

/// Audits `root` with `args`, then explains every path of the report with
/// the same arguments; each explanation's finding must be the report's row.
fn explain_agrees(root: &std::path::Path, args: &[&str]) {
    let mut audit: Vec<&OsStr> = vec!["audit".as_ref(), "--format".as_ref(), "json".as_ref()];
    audit.extend(["--root".as_ref(), root.as_os_str()]);
    audit.extend(args.iter().map(OsStr::new));
    let out = common::run(&audit);
    let report = common::parse_json(&out);
    let findings = common::findings(&report);
    assert!(findings.len() > 10, "a real corpus");
    for (path, row) in &findings {
        let mut explain: Vec<&OsStr> = vec!["explain".as_ref(), "--format".as_ref(), "json".as_ref()];
        explain.extend(["--root".as_ref(), root.as_os_str()]);
        explain.extend(args.iter().map(OsStr::new));
        explain.push(OsStr::from_bytes(path));
        let out = common::run(&explain);
        assert_eq!(common::code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        let e = common::parse_json(&out);
        assert_eq!(common::path_of(&e["finding"], "path"), *path, "{}", String::from_utf8_lossy(path));
        for key in ["verdict", "severity", "rule", "detail", "entries", "size"] {
            assert_eq!(e["finding"][key], row[key], "{}: {key}", String::from_utf8_lossy(path));
        }
    }
}

/// A tree with hostile names, recreated and identity state, a precious
/// file and rules of every kind.
fn corpus() -> common::Tree {
    let t = common::Tree::new();
    t.file(b"/etc/machine-id", b"0123456789abcdef\n")
        .file(b"/etc/hosts", b"127.0.0.1 localhost\n")
        .file(b"/etc/ssh/ssh_host_ed25519_key", b"key")
        .file(b"/var/lib/systemd/random-seed", b"seed")
        .file(b"/home/u/.ssh/id_ed25519", b"key")
        .file(b"/home/u/.cache/c", b"c")
        .file(b"/var/lib/app/db", b"db")
        .file(b"/tmp/scratch", b"s");
    for name in [
        &b"with space"[..],
        b"tab\there",
        b"new\nline",
        b"back\\slash",
        b"caf\xe9 latin1",
        b"\xff\xfe",
        b"\x1b[31mred\x1b[0m",
        b"*star?[x]",
    ] {
        t.file(&[&b"/home/u/hostile/"[..], name].concat(), name);
    }
    t
}

#[test]
fn explain_says_what_the_audit_says_for_every_path() {
    let t = corpus();
    let rules =
        ["--keep", "/var/lib/app", "--ignore", "/home/*/.cache", "--ignore", "/tmp", "--no-default-manifest"];
    explain_agrees(t.root(), &rules);
    let mut flat = rules.to_vec();
    flat.push("--flat");
    explain_agrees(t.root(), &flat);
}

/// A claim inside another filesystem is kept (nothing of it is on the
/// root); one reached through a symlinked parent is decided by where the
/// link leads. Neither makes the audit incomplete.
#[test]
fn claims_inside_mounts_and_behind_symlinked_parents() {
    require_root!();
    let t = common::Tree::new();
    t.dir(b"/home").dir(b"/persist").dir(b"/srv/real/app").symlink(b"/var/lib", b"/persist/var-lib");
    t.symlink(b"/opt", b"/srv/real");
    let script = format!(
        r#"R='{root}'
persistent home "$R/home"
mkdir -p "$R/home/alice/.ssh"
persistent persist "$R/persist"
mkdir -p "$R/persist/var-lib/app"
"$D" audit --root "$R" --format json --no-default-manifest --keep /home/alice/.ssh --keep /var/lib/app --keep /opt/app || true"#,
        root = t.root().display()
    );
    let out = common::in_mount_namespace(&script);
    let json = common::parse_json(&out);
    assert_eq!(json["errors"], Value::Array(vec![]), "{json}");
    let f = common::findings(&json);
    assert_eq!(f[&b"/home/alice/.ssh"[..]]["verdict"], "kept");
    assert!(f[&b"/home/alice/.ssh"[..]]["detail"]
        .as_str()
        .unwrap()
        .contains("inside overlay home mounted at /home"));
    assert_eq!(f[&b"/var/lib/app"[..]]["verdict"], "kept", "through /var/lib -> /persist/var-lib");
    assert_eq!(f[&b"/opt/app"[..]]["verdict"], "broken", "through /opt -> /srv/real, on the root");
    assert_eq!(json["exit_code"], 3);
}

/// `explain` of a path through a symlink (`/home/alice/link -> /etc`) is
/// not `/etc/shadow`, and no entry of `/home`: the audit follows no link,
/// so the path is in none of its rows, and `explain` says it passes through
/// the link — text and JSON — instead of "exists" with `/home`'s row.
#[test]
fn explain_through_a_symlink_says_so_and_gives_no_row_around_it() {
    let t = common::Tree::new();
    t.file(b"/etc/shadow", b"root:x")
        .file(b"/home/alice/notes", b"n")
        .symlink(b"/home/alice/link", b"/etc")
        .symlink(b"/home/alice/new\nline", b"/etc");
    for name in [&b"link"[..], b"new\nline"] {
        let path = [&b"/home/alice/"[..], name, b"/shadow"].concat();
        let explain = |format: &str| {
            common::run([
                "explain".as_ref(),
                "--root".as_ref(),
                t.root().as_os_str(),
                "--no-default-manifest".as_ref(),
                "--format".as_ref(),
                OsStr::new(format),
                OsStr::from_bytes(&path),
            ])
        };
        let e = common::parse_json(&explain("json"));
        assert_eq!(e["exists"], false, "{e}");
        assert_eq!(e["finding"], Value::Null, "no row of /home holds it: {e}");
        let link = [&b"/home/alice/"[..], name].concat();
        assert_eq!(common::path_of(&e["through_symlink"], "path"), link, "{e}");
        assert_eq!(e["through_symlink"]["target"], "/etc", "{e}");
        assert!(e["no_finding"].as_str().unwrap().contains("passes through the symlink"), "{e}");
        let text = String::from_utf8(explain("text").stdout).expect("utf-8");
        assert!(text.contains("verdict: none (passes through the symlink /home/alice/"), "{text}");

        // The audit agrees: the path is in none of its rows.
        let (report, _) = common::audit_json(t.root(), &["--no-default-manifest", "--flat"]);
        assert!(!common::findings(&report).contains_key(&path));
    }
}
