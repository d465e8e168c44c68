//! Claim files named by a manifest (`impermanence = "…"`,
//! `preservation = "…"`): read inside the audited root for its default
//! manifest, so a plain `darlings audit` knows every declared claim.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{map, verdicts};

const PERSISTENCE: &str = r#"{
  "/persist": {
    "enable": true, "persistentStoragePath": "/persist",
    "directories": [{"directory": "/var/lib/bluetooth", "dirPath": "/var/lib/bluetooth"}],
    "files": [{"file": "/etc/machine-id", "filePath": "/etc/machine-id"}],
    "users": {"alice": {"directories": [{"directory": ".ssh", "dirPath": "/home/alice/.ssh"}], "files": []}}
  },
  "/scratch": {"enable": false, "persistentStoragePath": "/scratch", "directories": ["/var/cache"]}
}"#;

const PRESERVATION: &str = r#"{
  "/persistent": {"persistentStoragePath": "/persistent",
    "directories": [{"directory": "/var/lib/nixos", "how": "bindmount"}], "files": []}
}"#;

/// A root laid out as NixOS does it: the manifest and claim files are links
/// into the store (inside the root), the claims real bind mounts.
fn nixos_like_root(t: &common::Tree, manifest: &str) {
    t.file(b"/etc/machine-id", b"0123456789abcdef\n")
        .dir(b"/var/lib/bluetooth")
        .dir(b"/var/lib/nixos")
        .file(b"/home/alice/.ssh/id_ed25519", b"key")
        .file(b"/var/cache/x", b"x")
        .dir(b"/persist")
        .dir(b"/persistent")
        .file(b"/nix/store/aaa-manifest.toml", manifest.as_bytes())
        .file(b"/nix/store/bbb-impermanence.json", PERSISTENCE.as_bytes())
        .file(b"/nix/store/ccc-preservation.json", PRESERVATION.as_bytes())
        .symlink(b"/etc/static", b"/nix/store")
        .symlink(b"/etc/darlings/manifest.toml", b"/etc/static/aaa-manifest.toml")
        .symlink(b"/etc/darlings/impermanence.json", b"../static/bbb-impermanence.json")
        .symlink(b"/etc/darlings/preservation.json", b"/etc/static/ccc-preservation.json");
}

const MOUNTS: &str = r#"persistent persist "$R/persist"
persistent persistent "$R/persistent"
mkdir -p "$R/persist/var/lib/bluetooth" "$R/persistent/var/lib/nixos"
mount --bind "$R/persist/var/lib/bluetooth" "$R/var/lib/bluetooth"
mount --bind "$R/persistent/var/lib/nixos" "$R/var/lib/nixos"
"#;

#[test]
fn the_default_manifest_names_claim_files_inside_the_root() {
    require_root!();
    let t = common::Tree::new();
    nixos_like_root(
        &t,
        "impermanence = \"/etc/darlings/impermanence.json\"\npreservation = \"/etc/darlings/preservation.json\"\n",
    );
    let (imp, pres) = (tempfile::NamedTempFile::new().unwrap(), tempfile::NamedTempFile::new().unwrap());
    std::fs::write(imp.path(), PERSISTENCE).unwrap();
    std::fs::write(pres.path(), PRESERVATION).unwrap();
    let script = format!(
        r#"R='{root}'
{MOUNTS}
"$D" audit --root "$R" --format json || true
echo '=====' 
"$D" audit --root "$R" --format json --no-default-manifest --impermanence '{imp}' --preservation '{pres}' || true"#,
        root = t.root().display(),
        imp = imp.path().display(),
        pres = pres.path().display()
    );
    let out = common::in_mount_namespace(&script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (plain, flags) =
        stdout.split_once("=====").unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let plain: serde_json::Value = serde_json::from_str(plain).expect("plain audit JSON");
    let flags: serde_json::Value = serde_json::from_str(flags).expect("flag audit JSON");
    let expected = map(&[
        ("/etc", "structure 1"),
        ("/etc/machine-id", "broken 1"),
        ("/home", "structure 1"),
        ("/home/alice", "structure 1"),
        ("/home/alice/.ssh", "broken 2"),
        ("/persist", "structure 1"),
        ("/persistent", "structure 1"),
        ("/var", "structure 1"),
        // /scratch is disabled: it claims nothing.
        ("/var/cache", "unclaimed 2"),
        ("/var/lib", "structure 1"),
        ("/var/lib/bluetooth", "kept -"),
        ("/var/lib/nixos", "kept -"),
    ]);
    // /etc/darlings and /nix are what the machine holds besides.
    let mine = |r: &serde_json::Value| {
        let mut v = verdicts(r);
        v.retain(|p, _| {
            !p.starts_with("/etc/darlings") && !p.starts_with("/etc/static") && !p.starts_with("/nix")
        });
        v
    };
    assert_eq!(mine(&plain), expected);
    assert_eq!(mine(&flags), expected);
    assert_eq!(plain["exit_code"], 3);
    assert_eq!(flags["exit_code"], 3);
    // Each claim says where it was declared.
    let f = common::findings(&plain);
    assert_eq!(
        f[&b"/home/alice/.ssh"[..]]["rule"]["origin"],
        r#"impermanence "/persist".users.alice.directories[0]"#
    );
    assert_eq!(f[&b"/var/lib/nixos"[..]]["rule"]["origin"], r#"preservation "/persistent".directories[0]"#);
}

#[test]
fn claim_files_are_read_inside_the_root_only() {
    let t = common::Tree::new();
    t.file(b"/var/lib/bluetooth/x", b"x");
    // Valid claims on the host, outside the root: an absolute link and one
    // that climbs both stay inside the root, where nothing is.
    let host = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(host.path(), PERSISTENCE).unwrap();
    let abs = host.path().to_str().unwrap().to_owned();
    for target in [abs.clone(), format!("../../../../../../../..{abs}")] {
        t.file(b"/etc/darlings/manifest.toml", b"impermanence = \"/etc/darlings/imp.json\"\n");
        let _ = std::fs::remove_file(t.at(b"/etc/darlings/imp.json"));
        t.symlink(b"/etc/darlings/imp.json", target.as_bytes());
        let out = common::run(["audit".as_ref(), "--root".as_ref(), t.root().as_os_str()]);
        assert_eq!(common::code(&out), 2, "{target}: {}", String::from_utf8_lossy(&out.stderr));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("etc/darlings/imp.json"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    // The same link target inside the root is read.
    t.file(abs.as_bytes(), PERSISTENCE.as_bytes());
    let (report, code) = common::audit_json(t.root(), &[]);
    assert_eq!(code, 3);
    assert_eq!(common::findings(&report)[&b"/var/lib/bluetooth"[..]]["verdict"], "broken");
    // A FIFO there is an error, not a hang.
    let _ = std::fs::remove_file(t.at(b"/etc/darlings/imp.json"));
    let fifo = t.at(b"/etc/darlings/imp.json");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let out = common::run(["audit".as_ref(), "--root".as_ref(), t.root().as_os_str()]);
    assert_eq!(common::code(&out), 2, "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_given_manifest_names_claim_files_on_this_machine() {
    let t = common::Tree::new();
    t.file(b"/var/lib/bluetooth/x", b"x").file(b"/var/cache/y", b"y");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("imp.json");
    std::fs::write(&json, PERSISTENCE).unwrap();
    let manifest = dir.path().join("site.toml");
    std::fs::write(&manifest, format!("keep = [\"/srv\"]\nimpermanence = \"{}\"\n", json.display())).unwrap();
    let (report, code) = common::audit_json(t.root(), &["--manifest", manifest.to_str().unwrap()]);
    assert_eq!(code, 3);
    let f = common::findings(&report);
    assert_eq!(f[&b"/var/lib/bluetooth"[..]]["verdict"], "broken");
    assert_eq!(f[&b"/var/lib/bluetooth"[..]]["rule"]["origin"], r#"impermanence "/persist".directories[0]"#);
    assert_eq!(f[&b"/var/cache"[..]]["verdict"], "unclaimed");
    // A relative path is refused, naming the line.
    std::fs::write(&manifest, "\nimpermanence = \"imp.json\"\n").unwrap();
    let out = common::run([
        "audit".as_ref(),
        "--root".as_ref(),
        t.root().as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
    ]);
    assert_eq!(common::code(&out), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("site.toml:2:16: `impermanence` must be the absolute path of a JSON file"),
        "{stderr}"
    );
}

/// `--root` on a NixOS tree whose `/nix` is not mounted there: the default
/// manifest is a link into a store that is not inside the root. Treated as
/// absent, every rule and claim in it would vanish without a word, so it
/// is an error naming the manifest and the link — whether the manifest
/// itself or a directory above it is the link — as a dangling claim file
/// is. A manifest that simply is not there is still fine.
#[test]
fn a_default_manifest_linking_outside_what_the_root_holds_is_an_error() {
    for (link, target) in [
        (&b"/etc/darlings/manifest.toml"[..], &b"/nix/store/aaa-manifest.toml"[..]),
        (b"/etc/darlings", b"/nix/store/bbb-darlings etc"),
    ] {
        let t = common::Tree::new();
        t.file(b"/var/lib/x", b"x").symlink(link, target);
        let out = common::run([std::ffi::OsStr::new("audit"), "--root".as_ref(), t.root().as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(common::code(&out), 2, "{stderr}");
        assert!(out.stdout.is_empty(), "no report without its rules");
        for says in [
            "/etc/darlings/manifest.toml: the default manifest leads through the symlink".to_owned(),
            format!("{} (to {})", String::from_utf8_lossy(link), String::from_utf8_lossy(target)),
            "--no-default-manifest".to_owned(),
        ] {
            assert!(stderr.contains(&says), "does not say {says:?}: {stderr}");
        }
        let (_, code) = common::audit_json(t.root(), &["--no-default-manifest"]);
        assert_eq!(code, 1, "without it, the audit runs");
    }
    let t = common::Tree::new();
    t.file(b"/var/lib/x", b"x").dir(b"/etc");
    let (_, code) = common::audit_json(t.root(), &[]);
    assert_eq!(code, 1, "no manifest at all is no error");
}
