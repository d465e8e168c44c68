//! The catalogue of precious state: severities on loss findings, in every
//! format, critical first, and `--fail-on critical|important`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

fn lived_in() -> common::Tree {
    let t = common::Tree::new();
    t.file(b"/etc/machine-id", b"0123456789abcdef\n")
        .file(b"/etc/ssh/ssh_host_ed25519_key", b"KEY")
        .file(b"/var/lib/bluetooth/aa:bb/info", b"paired")
        .file(b"/var/lib/other/y", b"y")
        .file(b"/srv/app/data/upload", b"u")
        .file(b"/home/alice/.ssh/id_ed25519", b"id")
        .file(b"/etc/darlings/manifest.toml", b"[[precious]]\npath = \"/srv/app/data\"\nseverity = \"critical\"\nreason = \"customer uploads\"\n");
    t
}

fn severity(json: &serde_json::Value, path: &str) -> serde_json::Value {
    common::findings(json)[path.as_bytes()]["severity"].clone()
}

#[test]
fn flat_findings_carry_the_severity_of_their_entry() {
    let t = lived_in();
    let (json, _) = common::audit_json(t.root(), &["--flat"]);
    assert_eq!(severity(&json, "/etc/machine-id"), "critical");
    assert_eq!(severity(&json, "/etc/ssh/ssh_host_ed25519_key"), "critical");
    assert_eq!(severity(&json, "/var/lib/bluetooth/aa:bb/info"), "important");
    assert_eq!(severity(&json, "/home/alice/.ssh/id_ed25519"), "critical");
    assert_eq!(severity(&json, "/var/lib/other/y"), serde_json::Value::Null);
    let f = common::findings(&json);
    let upload = &f[&b"/srv/app/data/upload"[..]];
    assert_eq!(upload["severity"], "critical");
    assert_eq!(upload["precious"]["reason"], "customer uploads");
    let origin = upload["precious"]["origin"].as_str().expect("origin");
    assert!(origin.ends_with("/etc/darlings/manifest.toml:1"), "{origin}");
    assert_eq!(f[&b"/etc/machine-id"[..]]["precious"]["keep_as"], "file");
}

#[test]
fn a_group_takes_the_worst_entry_it_holds() {
    let t = lived_in();
    let (json, _) = common::audit_json(t.root(), &[]);
    // machine-id and the host key are rows of their own (new identities).
    assert_eq!(common::findings(&json)[&b"/etc"[..]]["verdict"], "structure");
    assert_eq!(severity(&json, "/etc/machine-id"), "critical");
    assert_eq!(severity(&json, "/var"), "important", "holds /var/lib/bluetooth");
    assert_eq!(severity(&json, "/home"), "critical", "holds /home/alice/.ssh");
    assert_eq!(severity(&json, "/srv"), "critical", "holds the manifest's entry");
    let (json, _) = common::audit_json(t.root(), &["--keep", "/var/lib/bluetooth"]);
    assert_eq!(severity(&json, "/var/lib/bluetooth"), "important", "broken claims carry it too");
    assert_eq!(severity(&json, "/var/lib/other"), serde_json::Value::Null);
}

#[test]
fn the_table_shows_critical_losses_first() {
    let t = lived_in();
    let out = common::run([
        "audit",
        "--root",
        t.root().to_str().expect("utf-8"),
        "--format",
        "table",
        "--flat",
        "--verdict",
        "unclaimed",
    ]);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let at = text.lines().next().and_then(|h| h.find("SEVERITY")).expect("a SEVERITY column");
    let critical = |r: &&str| r.get(at..).is_some_and(|s| s.starts_with("critical "));
    let rows: Vec<&str> = text.lines().skip(1).take_while(|l| !l.trim().is_empty()).collect();
    let first_plain = rows.iter().position(|r| !critical(r)).expect("a row without severity");
    assert!(first_plain > 0, "{text}");
    assert!(rows[first_plain..].iter().all(|r| !critical(r)), "{text}");
    assert!(text.contains("SSH keys and known hosts"), "{text}");
}

#[test]
fn fail_on_a_severity() {
    let t = lived_in();
    let ignore_critical = ["--ignore", "/etc", "--ignore", "/home", "--ignore", "/srv"];
    let mut args = ignore_critical.to_vec();
    args.extend(["--fail-on", "critical"]);
    let (_, code) = common::audit_json(t.root(), &args);
    assert_eq!(code, 0, "only important and unclassified losses are left");
    let mut args = ignore_critical.to_vec();
    args.extend(["--fail-on", "important"]);
    let (_, code) = common::audit_json(t.root(), &args);
    assert_eq!(code, 1, "/var/lib/bluetooth is important");
    let (_, code) = common::audit_json(t.root(), &["--fail-on", "critical"]);
    assert_eq!(code, 1);
}

#[test]
fn identities_recreated_at_boot_are_new_identity() {
    let t = lived_in();
    t.file(b"/etc/hostname", b"box").file(b"/var/lib/nixos/uid-map", b"{}");
    let (json, code) = common::audit_json(t.root(), &["--flat"]);
    let f = common::findings(&json);
    for path in ["/etc/machine-id", "/etc/ssh/ssh_host_ed25519_key", "/var/lib/nixos/uid-map"] {
        assert_eq!(f[path.as_bytes()]["verdict"], "new-identity", "{path}");
        assert!(f[path.as_bytes()]["detail"].as_str().unwrap_or("").starts_with("recreated at boot with"));
    }
    assert_eq!(f[&b"/etc/hostname"[..]]["verdict"], "unclaimed");
    assert_eq!(code, 1, "a new identity is a loss");
    // Claimed and broken stays broken; claimed and kept is kept.
    let (json, _) = common::audit_json(t.root(), &["--flat", "--keep", "/etc/machine-id"]);
    assert_eq!(common::findings(&json)[&b"/etc/machine-id"[..]]["verdict"], "broken");
}

/// `--suggest nix` prints a block that, evaluated by Nix and fed back as
/// declared claims, turns those findings into claims.
#[test]
fn suggested_claims_round_trip_through_nix() {
    let t = lived_in();
    let root = t.root().to_str().expect("utf-8");
    let out = common::run(["audit", "--root", root, "--suggest", "nix", "--ignore", "/srv"]);
    assert_eq!(common::code(&out), 0, "the snippet was written: `> claims.nix && …` goes on");
    let block = String::from_utf8(out.stdout).expect("utf-8");
    assert!(block.contains("environment.persistence.\"/persist\" = {"), "{block}");
    assert!(block.contains("\"/var/lib/bluetooth\""), "the catalogued path, not the grouped /var:\n{block}");
    assert!(block.contains("\"/etc/machine-id\""), "{block}");
    assert!(block.contains("users.alice = {") && block.contains("\".ssh\""), "{block}");
    assert!(!block.contains("/var/lib/other"), "not catalogued: only with --suggest-all\n{block}");

    if !common::have("nix-instantiate") {
        return common::unavailable("the Nix half: nix-instantiate (Debian's nix-bin) is not installed");
    }
    let eval = std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", &format!("({{ {block} }}).environment.persistence")])
        .env("NIX_REMOTE", "")
        .output()
        .expect("nix-instantiate");
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let json = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(json.path(), &eval.stdout).expect("write");
    let (report, _) = common::audit_json(
        t.root(),
        &["--flat", "--ignore", "/srv", "--impermanence", json.path().to_str().expect("utf-8")],
    );
    let f = common::findings(&report);
    for claimed in
        ["/var/lib/bluetooth", "/etc/machine-id", "/home/alice/.ssh", "/etc/ssh/ssh_host_ed25519_key"]
    {
        let rule = &f[claimed.as_bytes()]["rule"];
        assert_eq!(rule["kind"], "keep", "{claimed} is now a claim: {}", f[claimed.as_bytes()]);
        assert!(rule["origin"].as_str().unwrap_or("").starts_with("impermanence \"/persist\""));
    }
    // Nothing catalogued is left unclaimed.
    assert!(f.values().all(|x| !(x["verdict"] == "unclaimed" && x["severity"].is_string())));
}
