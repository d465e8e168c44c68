//! The NixOS module (nix/module.nix), evaluated by Nix's real module system
//! with the real impermanence and preservation modules and small stubs for
//! the NixOS options they touch (tests/nix/stubs.nix). What NixOS itself
//! builds from the result is not checked here: no nixpkgs.
//!
//! Every option of `services.darlings` and the tests that cover it (here
//! unless named; `readme_nix` is tests/readme_nix.rs, the README's blocks):
//!
//! | option | covered by |
//! |---|---|
//! | `enable` | `contradictory_settings_are_refused` (off: nothing written, nothing asserted); every other test (on) |
//! | `package` | `the_flake_gives_the_package_the_overlay_and_the_module` (the flake's default, a configuration's override); `readme_nix` `flake_zfs`; every argv (its `bin/darlings`) |
//! | `settings.keep` | `zfs_with_impermanence_and_the_systemd_initrd` (manifest text); `generated_claim_files_round_trip_through_a_plain_audit`; `readme_nix` `impermanence_btrfs` |
//! | `settings.ignore` | `zfs_with_impermanence_and_the_systemd_initrd`; `generated_claim_files_round_trip_through_a_plain_audit`; `readme_nix` `flake_zfs` |
//! | `settings.precious` | `zfs_with_impermanence_and_the_systemd_initrd`; `readme_nix` `impermanence_btrfs` |
//! | `audit.enable` | `preservation_claims_without_record_or_audit` (off: no unit, no timer); `zfs_with_impermanence_and_the_systemd_initrd` (on) |
//! | `audit.interval` | `zfs_with_impermanence_and_the_systemd_initrd` (set); `btrfs_with_the_scripted_initrd` (default) |
//! | `audit.textfileDir` | `zfs_with_impermanence_and_the_systemd_initrd` (script text, order); `the_audit_unit_writes_the_textfile_atomically` (run); `btrfs_with_the_scripted_initrd` (unset) |
//! | `audit.extraArgs` | `zfs_with_impermanence_and_the_systemd_initrd`; `the_audit_unit_writes_the_textfile_atomically` |
//! | `record.enable` | `zfs_with_impermanence_and_the_systemd_initrd` (the unit); `preservation_claims_without_record_or_audit` (off); `contradictory_settings_are_refused` (the warning) |
//! | `rollback.enable` | `zfs_with_impermanence_and_the_systemd_initrd`, `btrfs_with_the_scripted_initrd` (on); `preservation_claims_without_record_or_audit` (off); `the_audit_unit_writes_the_textfile_atomically` (off: no status); `contradictory_settings_are_refused` (no target) |
//! | `rollback.zfs.dataset` | `zfs_with_impermanence_and_the_systemd_initrd`; `contradictory_settings_are_refused` (with btrfs) |
//! | `rollback.zfs.snapshot` | `rollback_options_reach_the_initrd_and_the_status` (set); `zfs_with_impermanence_and_the_systemd_initrd` (default) |
//! | `rollback.zfs.archiveDataset` | `zfs_with_impermanence_and_the_systemd_initrd`; `contradictory_settings_are_refused` (missing) |
//! | `rollback.btrfs.device` | `btrfs_with_the_scripted_initrd`; `contradictory_settings_are_refused` |
//! | `rollback.btrfs.subvolume` | `rollback_options_reach_the_initrd_and_the_status` (set); `btrfs_with_the_scripted_initrd` (default) |
//! | `rollback.btrfs.blank` | `rollback_options_reach_the_initrd_and_the_status` (set); `btrfs_with_the_scripted_initrd` (default) |
//! | `rollback.retain` | `btrfs_with_the_scripted_initrd`; `readme_nix` `impermanence_btrfs` |
//! | `rollback.retainDays` | `zfs_with_impermanence_and_the_systemd_initrd`; `btrfs_with_the_scripted_initrd` |
//! | `rollback.after` | `rollback_options_reach_the_initrd_and_the_status` (set); `zfs_with_impermanence_and_the_systemd_initrd`, `btrfs_with_the_scripted_initrd` (defaults) |
//! | `rollback.extraArgs` | `rollback_options_reach_the_initrd_and_the_status` (the rollback's, not the status's) |
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod nix;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use nix::{argv, status_argv, strs, REPO, SHARED};

const PKG: &str = "/nix/store/00000000000000000000000000000000-darlings-0.1.0";
const BIN: &str = "/nix/store/00000000000000000000000000000000-darlings-0.1.0/bin/darlings";
/// What the textfile holds instead of the status metrics when `darlings
/// status` fails, as the script's shell words.
const STATUS_DOWN: &str =
    "'# HELP darlings_status_up 0: darlings status failed, the rollback status metrics \
                           are missing (see the darlings-audit unit log).' '# TYPE darlings_status_up gauge' \
                           'darlings_status_up 0'";

/// Evaluates `expr` over `e` (tests/nix/eval.nix) with the configuration
/// file `config` (in tests/nix) and an inline module.
fn eval_with(config: &str, inline: &str, package: &str, expr: &str) -> Value {
    let text = format!(
        r#"let
  shared = {SHARED};
  e = import {REPO}/tests/nix/eval.nix {{
    inherit shared;
    package = "{package}";
    modules = [ (import {REPO}/tests/nix/{config}.nix {{ inherit shared; }}) ({{ lib, ... }}: {inline}) ];
  }};
in {expr}"#
    );
    nix::eval(&text)
}

fn eval(config: &str, expr: &str) -> Value {
    eval_with(config, "{ }", PKG, expr)
}

#[test]
fn every_nix_file_parses() {
    if !nix::available() {
        return;
    }
    let mut files =
        vec![PathBuf::from(REPO).join("flake.nix"), PathBuf::from(REPO).join("src/claims/nix/clean.nix")];
    for dir in ["nix", "tests/nix"] {
        for entry in std::fs::read_dir(Path::new(REPO).join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "nix") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 7, "{files:?}");
    for file in files {
        let out = nix::nix(&["--parse", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    }
}

/// flake.nix, called as Nix calls a flake (only nixpkgs `lib` is real,
/// tests/nix/flakes.nix): the package of each system built from this
/// repository with Cargo.lock, the overlay giving the same, and the module
/// defaulting to the flake's package where a configuration may override it.
#[test]
fn the_flake_gives_the_package_the_overlay_and_the_module() {
    if !nix::available() {
        return;
    }
    let v = nix::eval(&format!(
        r#"let
  flakes = import {REPO}/tests/nix/flakes.nix {{ shared = {SHARED}; }};
  f = flakes.darlings;
  eval = modules: (import {REPO}/tests/nix/eval.nix {{ shared = {SHARED}; package = null; inherit modules; }}).package;
  pkg = p: {{ inherit (p) name system postInstall; lock = toString p.cargoLock.lockFile; inherit (p.meta) mainProgram platforms; inputs = map (i: i.name) p.nativeBuildInputs; }};
  final = flakes.nixpkgs.legacyPackages.x86_64-linux;
in {{
  packages = builtins.mapAttrs (_: p: pkg p.default) f.packages;
  overlay = pkg (f.overlays.default final {{ }}).darlings;
  module = eval [ f.nixosModules.default {{ services.darlings.enable = true; }} ];
  overridden = eval [ f.nixosModules.default {{ services.darlings.package = {{ type = "derivation"; name = "mine"; outPath = "/nix/store/mine"; }}; }} ];
}}"#
    ));
    let name = format!("darlings-{}", env!("CARGO_PKG_VERSION"));
    let lock = format!("{REPO}/Cargo.lock");
    for system in ["x86_64-linux", "aarch64-linux"] {
        let p = &v["packages"][system];
        assert_eq!(p["name"], name.as_str(), "{v}");
        assert_eq!(p["system"], system);
        assert_eq!(p["lock"], lock.as_str());
        assert_eq!(p["mainProgram"], "darlings");
        assert_eq!(p["inputs"], json!(["install-shell-files"]));
        // The man pages and completions the repository keeps current are
        // installed: every file the install step names exists.
        let install = p["postInstall"].as_str().unwrap();
        assert!(install.contains("installManPage doc/*.1"), "{install}");
        for file in ["completions/darlings.bash", "completions/darlings.fish", "completions/_darlings"] {
            assert!(install.contains(file), "{install}");
            assert!(Path::new(REPO).join(file).is_file(), "{file}");
        }
        let pages = std::fs::read_dir(Path::new(REPO).join("doc")).unwrap().count();
        assert!(pages > 10, "a page per subcommand: {pages}");
    }
    assert_eq!(v["packages"].as_object().unwrap().len(), 2);
    assert_eq!(v["overlay"]["name"], name.as_str());
    assert_eq!(v["module"], format!("/nix/store/11111111111111111111111111111111-{name}"));
    assert_eq!(v["overridden"], "/nix/store/mine");
}

#[test]
fn zfs_with_impermanence_and_the_systemd_initrd() {
    if !nix::available() {
        return;
    }
    let v = eval("impermanence-zfs", "{ inherit (e) failed warnings etc services timers initrd; }");
    assert_eq!(v["failed"], json!([]));

    // The default manifest: settings, then the claim file it names.
    let manifest = v["etc"]["darlings/manifest.toml"].as_str().unwrap();
    assert_eq!(
        manifest,
        r#"# Written by the NixOS module services.darlings.
version = 1
keep = [
  "/etc/nixos",
  { path = "/srv/app", reason = "the \"app\" data" },
]
ignore = [
  "/home/*/.cache",
]
impermanence = "/etc/darlings/impermanence.json"

[[precious]]
path = "/srv/app/uploads"
severity = "critical"
reason = "uploads"
file = false
"#
    );
    assert!(v["etc"].get("darlings/preservation.json").is_none());

    // The claims, filtered like `darlings nix expr`: removed options (which
    // throw when forced) are gone, the disabled root is kept as declared.
    let claims: Value =
        serde_json::from_str(v["etc"]["darlings/impermanence.json"].as_str().unwrap()).unwrap();
    let persist = &claims["/persist"];
    assert!(persist.get("allowOther").is_none() && persist.get("removePrefixDirectory").is_none());
    assert!(persist["users"]["alice"].get("home").is_none());
    let dirs: Vec<&str> =
        persist["directories"].as_array().unwrap().iter().map(|d| d["dirPath"].as_str().unwrap()).collect();
    assert_eq!(dirs, ["/var/lib/bluetooth", "/var/lib/colord"]);
    assert_eq!(persist["files"][0]["filePath"], "/etc/machine-id");
    assert_eq!(persist["users"]["alice"]["directories"][0]["dirPath"], "/home/alice/.ssh");
    assert_eq!(persist["users"]["alice"]["files"][0]["filePath"], "/home/alice/.zsh_history");
    assert_eq!(claims["/scratch"]["enable"], false);

    // The timer and the audit, writing the textfile through a temp name.
    let timer = &v["timers"]["darlings-audit"];
    assert_eq!(timer["timerConfig"]["OnCalendar"], "*:0/30");
    assert_eq!(strs(&timer["wantedBy"]), ["timers.target"]);
    let audit = &v["services"]["darlings-audit"]["serviceConfig"];
    assert_eq!(audit["SuccessExitStatus"], "1 3");
    let dir = "/var/lib/prometheus-node-exporter-text-files";
    assert_eq!(
        argv(audit["ExecStart"].as_str().unwrap()),
        [
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            format!(
                "t={dir}/.darlings.prom.$$; {BIN} audit --progress never --fail-on critical --format prometheus \
                 > \"$t\"; rc=$?; if [ \"$rc\" -le 3 ] && [ -s \"$t\" ]; then \
                 if {BIN} status --format prometheus --dataset rpool/local/root \
                 --archive-dataset rpool/safe/darlings/root > \"$t.status\"; \
                 then cat \"$t.status\" >> \"$t\"; else printf '%s\\n' {STATUS_DOWN} >> \"$t\"; fi; \
                 rm -f \"$t.status\"; mv -f \"$t\" {dir}/darlings.prom; \
                 else rm -f \"$t\"; fi; exit \"$rc\""
            )
        ]
    );
    // That is: the audit into the temp file, the status appended to it
    // only after a usable audit, then the one rename into place.
    let script = &argv(audit["ExecStart"].as_str().unwrap())[2];
    let at = |word: &str| script.find(word).unwrap_or_else(|| panic!("{word} in {script}"));
    assert!(at(" audit ") < at("rc=$?") && at("rc=$?") < at(" status ") && at(" status ") < at("mv -f"));
    assert_eq!(script.matches("mv -f").count(), 1);

    // The status goes into the audit's file: no second unit writes the
    // same metrics; the timer also fires soon after boot.
    assert!(v["services"].get("darlings-rollback-status").is_none());
    assert_eq!(timer["timerConfig"]["OnBootSec"], "2min");

    // The record: stopped after ordinary services, before local mounts go,
    // kept beside the root (the target's flags), used up at boot, given
    // time for a cold audit.
    let record = &v["services"]["darlings-record"];
    let target = ["--dataset", "rpool/local/root", "--archive-dataset", "rpool/safe/darlings/root"];
    assert_eq!(
        argv(record["serviceConfig"]["ExecStop"].as_str().unwrap()),
        [&[BIN, "record", "--progress", "never"][..], &target].concat()
    );
    assert_eq!(
        argv(record["serviceConfig"]["ExecStart"].as_str().unwrap()),
        [&[BIN, "record", "--invalidate"][..], &target].concat()
    );
    assert_eq!(record["serviceConfig"]["TimeoutStopSec"], "10min");
    assert_eq!(record["serviceConfig"]["StandardOutput"], "null", "the record is kept, not logged");
    assert_eq!(record["serviceConfig"]["RemainAfterExit"], true);
    assert_eq!(record["serviceConfig"]["SuccessExitStatus"], "1 3");
    assert_eq!(record["unitConfig"]["DefaultDependencies"], false);
    assert_eq!(strs(&record["after"]), ["local-fs.target"]);
    assert_eq!(strs(&record["before"]), ["sysinit.target", "shutdown.target"]);
    assert_eq!(strs(&record["wantedBy"]), ["sysinit.target"]);

    // The systemd initrd: after the pool import, before /sysroot.
    let initrd = &v["initrd"];
    let rollback = &initrd["services"]["darlings-rollback"];
    assert_eq!(
        argv(rollback["serviceConfig"]["ExecStart"].as_str().unwrap()),
        [
            BIN,
            "rollback",
            "--initrd",
            "--no-default-manifest",
            "--manifest",
            "/etc/darlings/manifest.toml",
            "--dataset",
            "rpool/local/root",
            "--snapshot",
            "blank",
            "--archive-dataset",
            "rpool/safe/darlings/root",
            "--retain-days",
            "30"
        ]
    );
    assert_eq!(strs(&rollback["after"]), ["zfs-import-rpool.service"]);
    assert_eq!(strs(&rollback["wants"]), ["zfs-import-rpool.service"]);
    assert_eq!(strs(&rollback["before"]), ["sysroot.mount"]);
    assert_eq!(strs(&rollback["wantedBy"]), ["initrd.target"]);
    assert_eq!(rollback["unitConfig"]["DefaultDependencies"], false);
    assert_eq!(rollback["serviceConfig"]["Type"], "oneshot");
    assert_eq!(strs(&initrd["storePaths"]), [BIN]);
    // The initrd holds the same manifest and claims at the same paths.
    assert_eq!(initrd["contents"]["/etc/darlings/manifest.toml"]["text"], manifest);
    assert_eq!(
        initrd["contents"]["/etc/darlings/impermanence.json"]["text"],
        v["etc"]["darlings/impermanence.json"]
    );
    // Nothing of the scripted initrd.
    assert_eq!(initrd["postResumeCommands"], "");
    assert_eq!(initrd["extraUtilsCommands"], "");
    assert_eq!(initrd["extraFiles"], json!({}));
}

#[test]
fn btrfs_with_the_scripted_initrd() {
    if !nix::available() {
        return;
    }
    let v = eval("btrfs-scripted", "{ inherit (e) failed etc services timers initrd; }");
    assert_eq!(v["failed"], json!([]));
    let initrd = &v["initrd"];
    assert_eq!(initrd["extraUtilsCommands"], format!("copy_bin_and_libs {BIN}\n"));
    assert_eq!(
        initrd["postResumeCommands"],
        "darlings rollback --initrd --no-default-manifest --manifest /etc/darlings/manifest.toml \
         --device /dev/disk/by-label/nixos --subvolume root --blank root-blank --retain 5 --retain-days 7\n"
    );
    assert_eq!(initrd["postDeviceCommands"], "");
    let files = initrd["extraFiles"].as_object().unwrap();
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["/etc/darlings/impermanence.json", "/etc/darlings/manifest.toml"]
    );
    for (name, source) in files {
        let source = source.as_str().unwrap();
        let base = name.rsplit('/').next().unwrap();
        assert!(
            source.starts_with("/nix/store/") && source.ends_with(&format!("-darlings-{base}")),
            "{source}"
        );
    }
    assert_eq!(initrd["services"], json!({}));
    assert_eq!(initrd["storePaths"], json!([]));
    // The audit without a textfile: darlings itself, default interval.
    let audit = &v["services"]["darlings-audit"]["serviceConfig"];
    assert_eq!(argv(audit["ExecStart"].as_str().unwrap()), [BIN, "audit", "--progress", "never"]);
    assert_eq!(v["timers"]["darlings-audit"]["timerConfig"]["OnCalendar"], "hourly");
    // Users' claims only, home from users.users.
    let claims: Value =
        serde_json::from_str(v["etc"]["darlings/impermanence.json"].as_str().unwrap()).unwrap();
    let bob = &claims["/persist"]["users"]["bob"];
    assert_eq!(bob["directories"][0]["dirPath"], "/srv/home/bob/projects");
    assert_eq!(bob["files"][0]["filePath"], "/srv/home/bob/.config/app.conf");
    // The systemd initrd's unit waits for the root device on btrfs.
    let v =
        eval_with("btrfs-scripted", "{ boot.initrd.systemd.enable = true; }", PKG, "{ inherit (e) initrd; }");
    let rollback = &v["initrd"]["services"]["darlings-rollback"];
    assert_eq!(strs(&rollback["after"]), ["initrd-root-device.target"]);
    assert_eq!(v["initrd"]["postResumeCommands"], "");
}

/// The target options reach the initrd's rollback and the status in the
/// textfile alike; `after` and `extraArgs` reach the rollback alone.
#[test]
fn rollback_options_reach_the_initrd_and_the_status() {
    if !nix::available() {
        return;
    }
    let v = eval_with(
        "impermanence-zfs",
        r#"{ services.darlings.rollback = {
              zfs.snapshot = "empty";
              after = [ "zfs-import-tank.service" "dev-sda2.device" ];
              extraArgs = [ "--destroy-newer" ];
            }; }"#,
        PKG,
        "{ inherit (e) failed services initrd; }",
    );
    assert_eq!(v["failed"], json!([]));
    let rollback = &v["initrd"]["services"]["darlings-rollback"];
    let tail = [
        "--dataset",
        "rpool/local/root",
        "--snapshot",
        "empty",
        "--archive-dataset",
        "rpool/safe/darlings/root",
    ];
    assert_eq!(
        argv(rollback["serviceConfig"]["ExecStart"].as_str().unwrap())[6..],
        [&tail[..], &["--retain-days", "30", "--destroy-newer"]].concat()
    );
    assert_eq!(strs(&rollback["after"]), ["zfs-import-tank.service", "dev-sda2.device"]);
    assert_eq!(strs(&rollback["wants"]), ["zfs-import-tank.service", "dev-sda2.device"]);
    let script = &argv(v["services"]["darlings-audit"]["serviceConfig"]["ExecStart"].as_str().unwrap())[2];
    // The status takes the root and its archives, not the blank snapshot.
    let status_tail = [&tail[..2], &tail[4..]].concat();
    assert_eq!(
        status_argv(script).unwrap(),
        [&["status", "--format", "prometheus"][..], &status_tail].concat()
    );

    let v = eval_with(
        "btrfs-scripted",
        r#"{ services.darlings = {
              rollback.btrfs = { subvolume = "@"; blank = "@blank"; };
              rollback.extraArgs = [ "--force" ];
              audit.textfileDir = "/run/textfiles";
            }; }"#,
        PKG,
        "{ inherit (e) failed services initrd; }",
    );
    assert_eq!(v["failed"], json!([]));
    let tail = ["--device", "/dev/disk/by-label/nixos", "--subvolume", "@", "--blank", "@blank"];
    assert_eq!(
        v["initrd"]["postResumeCommands"].as_str().unwrap().split_whitespace().skip(6).collect::<Vec<_>>(),
        [&tail[..], &["--retain", "5", "--retain-days", "7", "--force"]].concat()
    );
    let script = &argv(v["services"]["darlings-audit"]["serviceConfig"]["ExecStart"].as_str().unwrap())[2];
    assert!(
        script.contains(" > \"$t\"; rc=$?;")
            && script.ends_with("/run/textfiles/darlings.prom; else rm -f \"$t\"; fi; exit \"$rc\""),
        "{script}"
    );
    assert_eq!(
        status_argv(script).unwrap(),
        [&["status", "--format", "prometheus"][..], &tail[..4]].concat()
    );
}

#[test]
fn preservation_claims_without_record_or_audit() {
    if !nix::available() {
        return;
    }
    let v = eval("preservation", "{ inherit (e) failed etc services timers initrd; }");
    assert_eq!(v["failed"], json!([]));
    assert_eq!(v["services"], json!({}));
    assert_eq!(v["timers"], json!({}));
    assert_eq!(v["initrd"]["services"], json!({}));
    let manifest = v["etc"]["darlings/manifest.toml"].as_str().unwrap();
    assert!(manifest.ends_with("preservation = \"/etc/darlings/preservation.json\"\n"), "{manifest}");
    assert!(!manifest.contains("impermanence"));
    let claims: Value =
        serde_json::from_str(v["etc"]["darlings/preservation.json"].as_str().unwrap()).unwrap();
    let root = &claims["/persistent"];
    let dirs: Vec<&str> =
        root["directories"].as_array().unwrap().iter().map(|d| d["directory"].as_str().unwrap()).collect();
    assert_eq!(dirs, ["/var/lib/nixos", "/var/lib/private"]);
    assert_eq!(root["files"][0]["file"], "/etc/machine-id");
    let alice: Vec<(&str, &str)> = root["users"]["alice"]["directories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["directory"].as_str().unwrap(), d["how"].as_str().unwrap()))
        .collect();
    // preservation's generated parents are there, as `_intermediate`.
    assert!(alice.contains(&("/home/alice/.ssh", "bindmount")), "{alice:?}");
    assert!(alice.contains(&("/home/alice/.local/share/keyrings", "bindmount")), "{alice:?}");
    assert!(alice.contains(&("/home/alice/.local", "_intermediate")), "{alice:?}");
    // preservation switched off declares nothing.
    let v = eval_with("preservation", "{ preservation.enable = lib.mkForce false; }", PKG, "e.etc");
    assert!(v.get("darlings/preservation.json").is_none(), "{v}");
}

#[test]
fn contradictory_settings_are_refused() {
    if !nix::available() {
        return;
    }
    let failed = |inline: &str| eval_with("btrfs-scripted", inline, PKG, "{ inherit (e) failed warnings; }");
    let both = failed(
        r#"{ services.darlings.rollback.zfs = { dataset = "rpool/local/root"; archiveDataset = "rpool/safe/r"; }; }"#,
    );
    assert_eq!(
        strs(&both["failed"]),
        ["services.darlings.rollback: set either zfs.dataset or btrfs.device, not both."]
    );
    let none = failed(r#"{ services.darlings.rollback.btrfs.device = lib.mkForce null; }"#);
    assert_eq!(
        strs(&none["failed"]),
        ["services.darlings.rollback.enable needs a target: zfs.dataset or btrfs.device."]
    );
    let no_archive = failed(
        r#"{ services.darlings.rollback = { btrfs.device = lib.mkForce null; zfs.dataset = "rpool/local/root"; }; }"#,
    );
    assert_eq!(
        strs(&no_archive["failed"]),
        ["services.darlings.rollback.zfs.archiveDataset must be set: it keeps the way back."]
    );
    let no_record = failed("{ services.darlings.record.enable = false; }");
    assert_eq!(no_record["failed"], json!([]));
    assert!(
        strs(&no_record["warnings"])
            .iter()
            .any(|w| w.contains("refuses without an audit recorded at shutdown")),
        "{no_record}"
    );
    // Disabled, the module asks nothing and writes nothing.
    let off = failed("{ services.darlings.enable = lib.mkForce false; }");
    assert_eq!(off["failed"], json!([]));
    let off = eval_with(
        "btrfs-scripted",
        "{ services.darlings.enable = lib.mkForce false; }",
        PKG,
        "{ inherit (e) etc services initrd; }",
    );
    assert_eq!(off["etc"], json!({}));
    assert_eq!(off["services"], json!({}));
    assert_eq!(off["initrd"]["postResumeCommands"], "");
}

#[test]
fn a_removed_option_set_still_gives_the_claims() {
    if !nix::available() {
        return;
    }
    // impermanence refuses the configuration by its own assertion; the
    // claim file still evaluates, so the audit can say what it declares.
    let v = eval_with(
        "impermanence-zfs",
        r#"{ environment.persistence."/persist".users.alice.home = "/home/alice"; }"#,
        PKG,
        r#"{ inherit (e) failed; json = e.etc."darlings/impermanence.json"; }"#,
    );
    let failed = strs(&v["failed"]);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].contains("`home'") && failed[0].contains("no longer has any effect"), "{failed:?}");
    let claims: Value = serde_json::from_str(v["json"].as_str().unwrap()).unwrap();
    assert!(claims["/persist"]["users"]["alice"].get("home").is_none());
    assert_eq!(claims["/persist"]["users"]["alice"]["directories"][0]["dirPath"], "/home/alice/.ssh");
}

/// The audit unit's command line, run for real: the textfile appears whole
/// under its name with the audit's metrics and then the rollback's status
/// metrics; a failing status leaves `darlings_status_up 0` instead (never
/// half its output) and the audit's metrics all the same; a failed audit
/// leaves the previous file and runs no status; no temp file stays. The
/// audit is the real binary; `status` is a stand-in (the real one would
/// read this machine's disks), which records its argv.
#[test]
fn the_audit_unit_writes_the_textfile_atomically() {
    if !nix::available() {
        return;
    }
    let pkg = tempfile::tempdir().unwrap();
    let p = pkg.path().display();
    std::fs::create_dir(pkg.path().join("bin")).unwrap();
    let stand_in = format!(
        r#"#!/bin/sh
if [ "$1" = status ]; then
  printf '%s\n' "$@" > '{p}/status-argv'
  if [ -e '{p}/status-fails' ]; then
    echo 'darlings_half_written 1'
    echo 'darlings: error: cannot mount the top-level volume' >&2
    exit 2
  fi
  printf '%s\n' '# TYPE darlings_rollback_refused gauge' 'darlings_rollback_refused 1'
  exit 0
fi
exec '{}' "$@"
"#,
        common::bin()
    );
    let script = pkg.path().join("bin/darlings");
    std::fs::write(&script, stand_in).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let status_argv = pkg.path().join("status-argv");

    let textfiles = tempfile::tempdir().unwrap();
    let t = common::Tree::new();
    t.file(b"/var/lib/app/state", b"s").file(b"/etc/darlings/manifest.toml", b"ignore = [\"/etc\"]\n");
    let run = |root: &Path, more: &str| {
        let inline = format!(
            r#"{{ services.darlings.audit = {{ textfileDir = "{}"; extraArgs = [ "--root" "{}" ]; }}; {more} }}"#,
            textfiles.path().display(),
            root.display()
        );
        let v = eval_with(
            "btrfs-scripted",
            &inline,
            pkg.path().to_str().unwrap(),
            "e.services.darlings-audit.serviceConfig.ExecStart",
        );
        let argv = argv(v.as_str().unwrap());
        assert_eq!(argv[..2], ["/bin/sh", "-c"]);
        Command::new(&argv[0]).args(&argv[1..]).output().unwrap()
    };
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(textfiles.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let textfile = || std::fs::read_to_string(textfiles.path().join("darlings.prom")).unwrap();

    // The rollback is enabled (btrfs): the audit's metrics, then the status's.
    let out = run(t.root(), "");
    assert_eq!(common::code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(listing(), ["darlings.prom"]);
    let prom = textfile();
    let (audit, status) =
        prom.split_once("# TYPE darlings_rollback_refused").unwrap_or_else(|| panic!("{prom}"));
    assert!(audit.contains("darlings_audit_complete"), "{prom}");
    assert!(audit.contains(r#"verdict="unclaimed""#), "{prom}");
    assert_eq!(status, " gauge\ndarlings_rollback_refused 1\n");
    assert_eq!(
        std::fs::read_to_string(&status_argv).unwrap().lines().collect::<Vec<_>>(),
        ["status", "--format", "prometheus", "--device", "/dev/disk/by-label/nixos", "--subvolume", "root"]
    );

    // A failing status: the audit's metrics all the same, its own code,
    // and darlings_status_up 0 in place of the status's (half) output.
    std::fs::write(pkg.path().join("status-fails"), "").unwrap();
    let out = run(t.root(), "");
    assert_eq!(common::code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot mount the top-level volume"));
    assert_eq!(listing(), ["darlings.prom"]);
    let prom = textfile();
    let (audit, down) = prom.split_once("# HELP darlings_status_up").unwrap_or_else(|| panic!("{prom}"));
    assert!(audit.contains("darlings_audit_complete") && audit.contains(r#"verdict="unclaimed""#), "{prom}");
    let last = format!("darlings_missing_claims{{root=\"{}\"}} 0\n", t.root().display());
    assert!(audit.ends_with(&last), "{prom}");
    assert_eq!(
        down,
        " 0: darlings status failed, the rollback status metrics are missing \
         (see the darlings-audit unit log).\n# TYPE darlings_status_up gauge\ndarlings_status_up 0\n"
    );
    assert!(!prom.contains("half_written"), "{prom}");

    // A failed audit (no such root) keeps the last good file, asks no status.
    std::fs::remove_file(&status_argv).unwrap();
    let out = run(&t.root().join("missing"), "");
    assert_eq!(common::code(&out), 2);
    assert_eq!(listing(), ["darlings.prom"]);
    assert_eq!(textfile(), prom);
    assert!(!status_argv.exists());

    // Without the rollback, the audit's metrics alone.
    let out = run(t.root(), "services.darlings.rollback.enable = lib.mkForce false;");
    assert_eq!(common::code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(listing(), ["darlings.prom"]);
    let prom = textfile();
    assert!(prom.contains("darlings_audit_complete"), "{prom}");
    assert!(!prom.contains("darlings_status_up") && !prom.contains("darlings_rollback_refused"), "{prom}");
    assert!(!status_argv.exists());
}

/// What the module writes, placed in a root with real mounts, makes a plain
/// `darlings audit` give the verdicts `--impermanence J` gives, J made by
/// `darlings nix expr impermanence` from the same configuration.
#[test]
fn generated_claim_files_round_trip_through_a_plain_audit() {
    if !nix::available() {
        return;
    }
    require_root!();
    let expr = common::run(["nix", "expr", "impermanence"]);
    assert_eq!(common::code(&expr), 0);
    let apply = String::from_utf8(expr.stdout).unwrap();
    let v = eval(
        "impermanence-zfs",
        &format!(r#"{{ etc = e.etc; j = builtins.toJSON (({apply}) e.c.environment.persistence); }}"#),
    );
    let j_text = v["j"].as_str().unwrap();
    let generated = v["etc"]["darlings/impermanence.json"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(generated).unwrap(),
        serde_json::from_str::<Value>(j_text).unwrap()
    );

    let t = common::Tree::new();
    t.file(b"/etc/darlings/manifest.toml", v["etc"]["darlings/manifest.toml"].as_str().unwrap().as_bytes())
        .file(b"/etc/darlings/impermanence.json", generated.as_bytes())
        .file(b"/etc/machine-id", b"id\n")
        .file(b"/etc/nixos/configuration.nix", b"{ }")
        .dir(b"/var/lib/bluetooth")
        .file(b"/var/lib/colord/icc", b"c")
        .dir(b"/home/alice/.ssh")
        .file(b"/home/alice/.cache/x", b"x")
        .file(b"/var/cache/y", b"y")
        .dir(b"/persist");
    let j = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(j.path(), j_text).unwrap();
    let script = format!(
        r#"R='{root}'
persistent persist "$R/persist"
mkdir -p "$R/persist/var/lib/bluetooth" "$R/persist/home/alice/.ssh"
mount --bind "$R/persist/var/lib/bluetooth" "$R/var/lib/bluetooth"
mount --bind "$R/persist/home/alice/.ssh" "$R/home/alice/.ssh"
"$D" audit --root "$R" --format json || true
echo =====
"$D" audit --root "$R" --format json --no-default-manifest --impermanence '{j}' \
  --keep /etc/nixos --keep /srv/app --ignore '/home/*/.cache' || true"#,
        root = t.root().display(),
        j = j.path().display()
    );
    let out = common::in_mount_namespace(&script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (plain, flags) =
        stdout.split_once("=====").unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let verdicts = |text: &str| {
        let mut v = common::verdicts(&serde_json::from_str(text).expect("audit JSON"));
        v.retain(|p, _| !p.starts_with("/etc/darlings"));
        v
    };
    let expected = common::map(&[
        ("/etc", "structure 1"),
        ("/etc/machine-id", "broken 1"),
        ("/etc/nixos", "broken 2"),
        ("/home", "structure 1"),
        ("/home/alice", "structure 1"),
        ("/home/alice/.cache", "ignored -"),
        ("/home/alice/.ssh", "kept -"),
        ("/persist", "structure 1"),
        ("/var", "structure 1"),
        ("/var/cache", "unclaimed 2"),
        ("/var/lib", "structure 1"),
        ("/var/lib/bluetooth", "kept -"),
        ("/var/lib/colord", "broken 2"),
    ]);
    assert_eq!(verdicts(plain), expected);
    assert_eq!(verdicts(flags), expected);
}
