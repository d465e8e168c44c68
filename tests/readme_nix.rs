//! The README's `nix` blocks are evaluated. Each block is a piece of a
//! NixOS configuration; it is evaluated as a module (its text inside
//! `inputs: { config, lib, pkgs, ... }: { … }`) by tests/nix/readme.nix:
//! Nix's real module system, the stubs, nix/module.nix, and the flake
//! outputs a machine's flake would pass (this repository's `flake.nix`,
//! the real impermanence and preservation flakes; only nixpkgs `lib` is
//! real, packages are store paths that are never built).
//!
//! In the NixOS section (`## Claims declared in NixOS`), every block is
//! preceded by an HTML comment `<!-- eval: NAME -->` (not shown to a
//! reader) naming its check below, which asserts what the block generates.
//! A block there without one, a NAME without a check, and a check whose
//! block is gone all fail. Blocks of other sections (written by hand, for
//! setups without the module) are evaluated all the same and must
//! configure some darlings unit or initrd step. Every block, anywhere,
//! goes through `nix-instantiate --parse` first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod nix;

use std::collections::BTreeSet;

use serde_json::{json, Value};

use nix::{argv, status_argv, strs, REPO, SHARED};

/// The store path of the flake's package (tests/nix/readme.nix makes it
/// from the name and version the flake reads from Cargo.toml).
const PKG: &str = concat!("/nix/store/11111111111111111111111111111111-darlings-", env!("CARGO_PKG_VERSION"));
const NIXOS_SECTION: &str = "## Claims declared in NixOS";

struct Block {
    /// README line of the opening fence.
    line: usize,
    marker: Option<String>,
    in_nixos_section: bool,
    text: String,
}

fn blocks() -> Vec<Block> {
    let readme = std::fs::read_to_string(format!("{REPO}/README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    assert!(lines.contains(&NIXOS_SECTION), "README has no {NIXOS_SECTION:?}");
    let mut found = Vec::new();
    let mut section = "";
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.starts_with("## ") {
            section = line;
        }
        if line.trim_end() == "```nix" {
            let marker = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().strip_prefix("<!-- eval: "))
                .and_then(|l| l.strip_suffix(" -->"))
                .map(str::to_owned);
            let end = i + lines[i..].iter().position(|l| l.trim_end() == "```").expect("closed block");
            found.push(Block {
                line: i + 1,
                marker,
                in_nixos_section: section == NIXOS_SECTION,
                text: lines[i + 1..end].join("\n"),
            });
            i = end;
        }
        i += 1;
    }
    found
}

/// The block as a module file of tests/nix/readme.nix's shape.
fn module_file(block: &Block) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".nix").tempfile().unwrap();
    std::fs::write(
        file.path(),
        format!(
            "# README.md, line {}\n{{ darlings, impermanence, preservation, ... }}:\n{{ config, lib, pkgs, ... }}:\n{{\n{}\n}}\n",
            block.line, block.text
        ),
    )
    .unwrap();
    file
}

/// Evaluates a block with EXTRA modules (a Nix function of the inputs).
fn evaluate(block: &Block, extra: &str) -> Value {
    let file = module_file(block);
    let text = format!(
        "let e = import {REPO}/tests/nix/readme.nix {{ shared = {SHARED}; block = {}; extra = {extra}; }};
         in {{ inherit (e) failed warnings package etc services timers initrd; }}",
        file.path().display()
    );
    nix::try_eval(&text)
        .unwrap_or_else(|e| panic!("README.md line {}: the block does not evaluate:\n{e}", block.line))
}

fn json_of(v: &Value, file: &str) -> Value {
    serde_json::from_str(v["etc"][file].as_str().unwrap_or_else(|| panic!("no {file} in {}", v["etc"])))
        .unwrap()
}

fn exec(unit: &Value, key: &str) -> Vec<String> {
    argv(unit["serviceConfig"][key].as_str().unwrap_or_else(|| panic!("no {key} in {unit}")))
}

/// The first example: the flake's module, ZFS, scripted initrd, textfile.
fn flake_zfs(v: &Value) {
    let bin = format!("{PKG}/bin/darlings");
    assert_eq!(v["failed"], json!([]));
    assert_eq!(v["warnings"], json!([]));
    // nixosModules.default brings the flake's own package.
    assert_eq!(v["package"], PKG);
    assert_eq!(
        v["etc"]["darlings/manifest.toml"],
        "# Written by the NixOS module services.darlings.\nversion = 1\nkeep = [\n]\nignore = [\n  \"/home/*/.cache\",\n]\n"
    );
    let target = [
        "--dataset",
        "rpool/local/root",
        "--snapshot",
        "blank",
        "--archive-dataset",
        "rpool/safe/darlings/root",
    ];
    // The textfile, with the rollback's status, renamed into place.
    let audit = exec(&v["services"]["darlings-audit"], "ExecStart");
    assert_eq!(audit[..2], ["/bin/sh", "-c"]);
    let script = &audit[2];
    assert!(script.starts_with(&format!(
        "t=/var/lib/prometheus-node-exporter-text-files/.darlings.prom.$$; {bin} audit --progress never --format prometheus > \"$t\"; "
    )), "{script}");
    // The status takes the root and its archives, not the blank snapshot.
    let status = [&target[..2], &target[4..]].concat();
    assert_eq!(status_argv(script).unwrap(), [&["status", "--format", "prometheus"][..], &status].concat());
    assert!(
        script.contains("mv -f \"$t\" /var/lib/prometheus-node-exporter-text-files/darlings.prom;"),
        "{script}"
    );
    assert_eq!(v["timers"]["darlings-audit"]["timerConfig"]["OnCalendar"], "hourly");
    assert_eq!(
        exec(&v["services"]["darlings-record"], "ExecStop"),
        [&[bin.as_str(), "record", "--progress", "never"][..], &status].concat()
    );
    // The scripted initrd (the default): the binary copied in, the step
    // after the pool import.
    let initrd = &v["initrd"];
    assert_eq!(initrd["extraUtilsCommands"], format!("copy_bin_and_libs {bin}\n"));
    assert_eq!(
        initrd["postResumeCommands"].as_str().unwrap().split_whitespace().collect::<Vec<_>>(),
        [
            &[
                "darlings",
                "rollback",
                "--initrd",
                "--no-default-manifest",
                "--manifest",
                "/etc/darlings/manifest.toml"
            ][..],
            &target,
            &["--retain-days", "30"]
        ]
        .concat()
    );
    assert_eq!(initrd["services"], json!({}));
    assert_eq!(
        initrd["extraFiles"].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["/etc/darlings/manifest.toml"]
    );
}

/// The second: impermanence's claims, btrfs, the systemd initrd.
fn impermanence_btrfs(v: &Value) {
    let bin = format!("{PKG}/bin/darlings");
    assert_eq!(v["failed"], json!([]));
    assert_eq!(v["package"], PKG);
    let claims = json_of(v, "darlings/impermanence.json");
    let persist = &claims["/persist"];
    let paths = |list: &Value, key: &str| -> Vec<String> {
        list.as_array().unwrap().iter().map(|d| d[key].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(paths(&persist["directories"], "dirPath"), ["/var/lib/nixos", "/var/lib/bluetooth"]);
    assert_eq!(paths(&persist["files"], "filePath"), ["/etc/machine-id"]);
    assert_eq!(paths(&persist["users"]["alice"]["directories"], "dirPath"), ["/home/alice/.ssh"]);
    let manifest = v["etc"]["darlings/manifest.toml"].as_str().unwrap();
    assert_eq!(
        manifest,
        r#"# Written by the NixOS module services.darlings.
version = 1
keep = [
  { path = "/srv/www", reason = "served from a subvolume of its own" },
]
ignore = [
]
impermanence = "/etc/darlings/impermanence.json"

[[precious]]
path = "/srv/www/uploads"
severity = "critical"
reason = "visitors' files"
file = false
"#
    );
    // No textfile: the audit is darlings itself.
    assert_eq!(exec(&v["services"]["darlings-audit"], "ExecStart"), [&bin, "audit", "--progress", "never"]);
    // The systemd initrd: after the root device, before /sysroot, with
    // the same manifest and claims.
    let initrd = &v["initrd"];
    let rollback = &initrd["services"]["darlings-rollback"];
    assert_eq!(
        exec(rollback, "ExecStart"),
        [
            &bin,
            "rollback",
            "--initrd",
            "--no-default-manifest",
            "--manifest",
            "/etc/darlings/manifest.toml",
            "--device",
            "/dev/disk/by-label/nixos",
            "--subvolume",
            "root",
            "--blank",
            "root-blank",
            "--retain",
            "10"
        ]
    );
    assert_eq!(strs(&rollback["after"]), ["initrd-root-device.target"]);
    assert_eq!(strs(&rollback["before"]), ["sysroot.mount"]);
    assert_eq!(strs(&initrd["storePaths"]), [&bin]);
    assert_eq!(initrd["contents"]["/etc/darlings/manifest.toml"]["text"], manifest);
    assert_eq!(
        initrd["contents"]["/etc/darlings/impermanence.json"]["text"],
        v["etc"]["darlings/impermanence.json"]
    );
    assert_eq!(initrd["postResumeCommands"], "");
}

/// `--suggest nix`'s example: once evaluated, its paths are the claims the
/// module writes for the audit.
fn suggested(v: &Value) {
    assert_eq!(v["failed"], json!([]));
    let claims = json_of(v, "darlings/impermanence.json");
    let persist = &claims["/persist"];
    let paths = |list: &Value, key: &str| -> Vec<String> {
        list.as_array().unwrap().iter().map(|d| d[key].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(paths(&persist["directories"], "dirPath"), ["/var/lib/bluetooth"]);
    assert_eq!(paths(&persist["files"], "filePath"), ["/etc/machine-id", "/etc/ssh/ssh_host_ed25519_key"]);
    assert_eq!(paths(&persist["users"]["alice"]["directories"], "dirPath"), ["/home/alice/.ssh"]);
    assert_eq!(persist["users"]["alice"]["files"], json!([]));
}

type Check = fn(&Value);

/// NAME of the marker → the modules the block needs besides itself, and
/// what it must generate.
const CHECKS: &[(&str, &str, Check)] = &[
    ("flake-zfs", "_: [ ]", flake_zfs),
    ("impermanence-btrfs", "_: [ ]", impermanence_btrfs),
    (
        "suggested",
        "inputs: [ inputs.impermanence.nixosModules.impermanence { services.darlings.enable = true; } ]",
        suggested,
    ),
];

#[test]
fn every_nix_block_parses() {
    if !nix::available() {
        return;
    }
    let blocks = blocks();
    assert!(blocks.iter().filter(|b| b.in_nixos_section).count() >= CHECKS.len(), "too few blocks found");
    for block in &blocks {
        let file = module_file(block);
        let out = nix::nix(&["--parse", file.path().to_str().unwrap()]);
        assert!(
            out.status.success(),
            "README.md line {}: the block does not parse:\n{}",
            block.line,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_nixos_sections_examples_generate_what_they_show() {
    if !nix::available() {
        return;
    }
    let mut used = BTreeSet::new();
    for block in blocks().iter().filter(|b| b.in_nixos_section) {
        let name = block.marker.as_deref().unwrap_or_else(|| {
            panic!(
                "README.md line {}: a nix block of the NixOS section needs `<!-- eval: NAME -->` before it, \
                 and a check NAME in tests/readme_nix.rs",
                block.line
            )
        });
        let &(known, extra, check) = CHECKS
            .iter()
            .find(|(n, _, _)| *n == name)
            .unwrap_or_else(|| panic!("README.md line {}: no check named {name:?}", block.line));
        assert!(used.insert(known), "README.md line {}: a second block named {name:?}", block.line);
        check(&evaluate(block, extra));
    }
    let missing: Vec<_> = CHECKS.iter().map(|c| c.0).filter(|n| !used.contains(n)).collect();
    assert!(missing.is_empty(), "checks without their README block: {missing:?}");
}

/// The hand-written blocks elsewhere (the initrd without the module)
/// evaluate with the stubs and configure a darlings unit or initrd step.
#[test]
fn the_other_sections_blocks_evaluate() {
    if !nix::available() {
        return;
    }
    for block in blocks().iter().filter(|b| !b.in_nixos_section) {
        let v = evaluate(block, "_: [ ]");
        assert_eq!(v["failed"], json!([]), "README.md line {}", block.line);
        let initrd = &v["initrd"];
        let configured = [&v["services"], &v["timers"], &initrd["services"]]
            .iter()
            .any(|units| units.as_object().is_some_and(|u| !u.is_empty()))
            || [&initrd["extraUtilsCommands"], &initrd["postResumeCommands"], &initrd["postDeviceCommands"]]
                .iter()
                .any(|step| step.as_str().is_some_and(|s| s.contains("darlings")))
            || initrd["storePaths"].as_array().is_some_and(|p| !p.is_empty());
        assert!(
            configured,
            "README.md line {}: the block configures no darlings unit or initrd step: {v}",
            block.line
        );
    }
}
