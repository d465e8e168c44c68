//! The guards' audit (`record`, `rollback`) sums its rows as the walk makes
//! them and never keeps them; it must decide exactly as the whole flat
//! report did, row by row (the reference in `guards_reference`). On at least
//! 1,000 random trees with random claims, ignore rules, catalogue entries,
//! acceptances, links and odd names, every field the guards and the record
//! read is compared: the refusals, the critical list (path for path), the
//! exit code, the counts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod guards_reference;
mod rollback_common;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use clap::Parser;
use darlings::cli::{Cli, Command};
use darlings::rollback::{loss_refusals, Loss};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Names that meet the catalogue, what NixOS recreates, and odd bytes.
const NAMES: &[&[u8]] = &[
    b"etc",
    b"ssh",
    b"var",
    b"lib",
    b"home",
    b"alice",
    b".ssh",
    b"nixos",
    b"postgresql",
    b"log",
    b"app",
    b"data",
    b"x",
    b"ssh_host_ed25519_key",
    b"machine-id",
    b"cache",
    b"root",
    b"srv",
    b"tmp",
    b"d",
    b"\xffodd",
    b"a b",
    b"new\nline",
    b"systemd",
    b"random-seed",
    b"wireguard",
    b"static",
];

const SEEDED: &[&str] = &[
    "etc/machine-id",
    "etc/ssh/ssh_host_ed25519_key",
    "var/lib/nixos/uid-map",
    "root/.ssh/id_ed25519",
    "home/alice/.ssh/id_ed25519",
    "home/alice/notes.txt",
    "var/log/journal/x",
    "var/lib/systemd/random-seed",
    "srv/data/db",
];

/// A random relative path of 1 to 5 components.
fn random_path(rng: &mut Rng) -> Vec<u8> {
    let depth = 1 + rng.below(5);
    let mut p = Vec::new();
    for i in 0..depth {
        if i > 0 {
            p.push(b'/');
        }
        let name: &[u8] = NAMES[rng.below(NAMES.len())];
        p.extend_from_slice(name);
    }
    p
}

fn os(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(bytes.to_vec()))
}

/// Fills `root` with a random tree; returns the paths made (relative).
fn random_tree(rng: &mut Rng, root: &Path) -> Vec<Vec<u8>> {
    let mut made = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    let seeded = rng.below(SEEDED.len() + 1);
    let mut wanted: Vec<(Vec<u8>, bool)> = Vec::new();
    for _ in 0..seeded {
        wanted.push((rng.pick(SEEDED).as_bytes().to_vec(), true));
    }
    for _ in 0..(3 + rng.below(40)) {
        let p = random_path(rng);
        wanted.push((p, false));
    }
    for (rel, seeded) in wanted {
        let path = root.join(os(&rel));
        let parent = path.parent().unwrap();
        if std::fs::create_dir_all(parent).is_err() {
            continue; // a file where a directory would be
        }
        if path.symlink_metadata().is_ok() {
            continue;
        }
        let kind = if seeded { 0 } else { rng.below(10) };
        let ok = match kind {
            0..=3 => {
                let size = rng.below(3000);
                std::fs::write(&path, vec![b'x'; size]).is_ok()
            }
            4..=5 => std::fs::create_dir(&path).is_ok(),
            6 => {
                let target = *rng.pick(&["/persist/x", "../etc", "/nix/store/abc-x/y", "gone", "/tmp"]);
                std::os::unix::fs::symlink(target, &path).is_ok()
            }
            7 if !files.is_empty() => {
                let from = rng.pick(&files).clone();
                std::fs::hard_link(from, &path).is_ok()
            }
            8 => std::os::unix::net::UnixListener::bind(&path).is_ok(),
            _ => std::fs::write(&path, b"").is_ok(),
        };
        if ok {
            if path.symlink_metadata().is_ok_and(|m| m.is_file()) {
                files.push(path.clone());
            }
            made.push(rel);
        }
    }
    made
}

/// Random rules, as command-line words, and a manifest's text.
fn random_rules(rng: &mut Rng, made: &[Vec<u8>], dir: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let some_path = |rng: &mut Rng| -> Vec<u8> {
        if !made.is_empty() && rng.chance(70) {
            let p = rng.pick(made).clone();
            // Sometimes the path's parent.
            match p.iter().rposition(|&b| b == b'/') {
                Some(i) if rng.chance(30) => p[..i].to_vec(),
                _ => p,
            }
        } else {
            random_path(rng)
        }
    };
    const GLOBS: &[&str] = &[
        "/home/*/.cache",
        "/var/lib/**",
        "/srv/*",
        "/etc/ssh/ssh_host_*",
        "/**/x",
        "/var/*/nixos",
        "/d/**/d",
    ];
    for flag in ["--keep", "--ignore"] {
        for _ in 0..rng.below(4) {
            args.push(flag.into());
            if rng.chance(25) {
                args.push((*rng.pick(GLOBS)).into());
            } else {
                let mut p = b"/".to_vec();
                p.extend_from_slice(&some_path(rng));
                args.push(OsString::from_vec(p));
            }
        }
    }
    if rng.chance(60) {
        let mut toml = String::new();
        for _ in 0..(1 + rng.below(3)) {
            let severity = *rng.pick(&["info", "important", "critical"]);
            let path = if rng.chance(30) {
                (*rng.pick(GLOBS)).to_owned()
            } else {
                let p = some_path(rng);
                if p.iter().any(|&b| b == b'\n' || b == b'"' || b == b'\\' || b >= 0x80) {
                    continue;
                }
                format!("/{}", String::from_utf8(p).unwrap())
            };
            let file = if rng.chance(30) { "file = true\n" } else { "" };
            toml.push_str(&format!("[[precious]]\npath = {path:?}\nseverity = \"{severity}\"\n{file}"));
        }
        let manifest = dir.join("manifest.toml");
        std::fs::write(&manifest, toml).unwrap();
        args.push("--manifest".into());
        args.push(manifest.into());
    }
    if rng.chance(25) && !made.is_empty() {
        let mut list = Vec::new();
        for _ in 0..(1 + rng.below(3)) {
            let p = some_path(rng);
            if !p.contains(&b'\n') {
                list.extend_from_slice(b"/");
                list.extend_from_slice(&p);
                list.push(b'\n');
            }
        }
        let accepted = dir.join("accepted.txt");
        std::fs::write(&accepted, list).unwrap();
        args.push("--accepted".into());
        args.push(accepted.into());
    }
    if rng.chance(20) {
        args.push("--assume-claims".into());
    }
    if rng.chance(30) {
        args.push("--fail-on".into());
        args.push((*rng.pick(&["unclaimed", "broken", "critical", "important", "new-identity"])).into());
    }
    args
}

/// What a guard's decision consists of, from either side.
#[derive(Debug, PartialEq, Eq)]
struct Decision {
    loss: Loss,
    refusals: Vec<(String, darlings::error::ExitCode)>,
    code: darlings::error::ExitCode,
}

fn decision(loss: Loss, code: darlings::error::ExitCode) -> Decision {
    let refusals = loss_refusals(&loss).into_iter().map(|r| (r.reason, r.code)).collect();
    Decision { loss, refusals, code }
}

/// Audits `root` with `rules` both ways and compares.
fn compare(root: &Path, rules: &[OsString], what: &str) {
    let mut argv: Vec<OsString> = vec!["darlings".into(), "record".into(), "--dry-run".into()];
    argv.extend(["--root".into(), root.as_os_str().to_owned(), "--source".into(), "walk".into()]);
    argv.extend(rules.iter().cloned());
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{what}: {argv:?}: {e}"));
    let Some(Command::Record(args)) = cli.command else { panic!("not a record") };
    let cfg = darlings::config::Audit::for_record(&args).unwrap();
    let verified = !cfg.rules.assume_claims;
    let reference = match darlings::audit::run_full(&cfg) {
        Ok(audited) => {
            let r = &audited.report;
            Ok(decision(
                guards_reference::capped(guards_reference::loss(r, verified)),
                guards_reference::exit_code(r, &cfg.fail_on, cfg.fail_severity),
            ))
        }
        Err(e) => Err(e.to_string()),
    };
    let tallied = match darlings::audit::guard(&cfg) {
        Ok(g) => Ok(decision(Loss::from_guarded(&g, verified), g.exit_code(&cfg))),
        Err(e) => Err(e.to_string()),
    };
    assert_eq!(tallied, reference, "{what}: {argv:?}");
}

#[test]
fn the_tally_decides_as_the_flat_report_on_a_thousand_random_trees() {
    let base = tempfile::tempdir().unwrap();
    let mut refused = 0;
    let mut critical = 0;
    for seed in 1..=1000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let dir = base.path().join(seed.to_string());
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let made = random_tree(&mut rng, &root);
        let rules = random_rules(&mut rng, &made, &dir);
        compare(&root, &rules, &format!("tree {seed}"));
        // What the corpus exercised, so that it cannot pass by being empty.
        let cli = {
            let mut argv: Vec<OsString> = vec!["darlings".into(), "record".into(), "--dry-run".into()];
            argv.extend(["--root".into(), root.as_os_str().to_owned(), "--source".into(), "walk".into()]);
            argv.extend(rules.iter().cloned());
            Cli::try_parse_from(&argv).unwrap()
        };
        let Some(Command::Record(args)) = cli.command else { unreachable!() };
        let cfg = darlings::config::Audit::for_record(&args).unwrap();
        if let Ok(g) = darlings::audit::guard(&cfg) {
            let loss = Loss::from_guarded(&g, true);
            refused += usize::from(!loss_refusals(&loss).is_empty());
            critical += usize::from(loss.critical_total > 0);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    assert!(refused > 100, "only {refused} of the random trees were refused");
    assert!(critical > 50, "only {critical} of the random trees held critical state");
}

/// Critical state inside what the grouped audit folds into one row of a
/// less severe entry: every path by itself finds it.
#[test]
fn critical_state_inside_a_folded_row_under_a_less_severe_entry() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("srv/app/keys")).unwrap();
    std::fs::write(root.join("srv/app/keys/signing.key"), b"k").unwrap();
    std::fs::write(root.join("srv/app/readme"), b"r").unwrap();
    let manifest = dir.path().join("m.toml");
    std::fs::write(
        &manifest,
        "[[precious]]\npath = \"/srv/app\"\nseverity = \"info\"\n\
         [[precious]]\npath = \"/srv/app/keys/signing.key\"\nseverity = \"critical\"\nfile = true\n",
    )
    .unwrap();
    let rules = vec!["--manifest".into(), manifest.into_os_string()];
    compare(&root, &rules, "folded");
    let g = guard_of(&root, &rules);
    assert_eq!(Loss::from_guarded(&g, true).critical, ["/srv/app/keys/signing.key"]);
}

/// More critical paths than a list keeps: all counted, the first kept,
/// and the refusal says how many more there are.
#[test]
fn critical_paths_past_the_cap_are_counted_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    for u in 0..150 {
        let ssh = root.join(format!("home/u{u:03}/.ssh"));
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::write(ssh.join("id_ed25519"), b"k").unwrap();
    }
    compare(&root, &[], "many");
    let loss = Loss::from_guarded(&guard_of(&root, &[]), true);
    assert_eq!(loss.critical_total, 150);
    assert_eq!(loss.critical.len(), darlings::report::Capped::KEPT);
    assert_eq!(loss.critical[0], "/home/u000/.ssh/id_ed25519");
    let refusal = &loss_refusals(&loss)[0].reason;
    assert!(refusal.ends_with("/home/u004/.ssh/id_ed25519 and 145 more"), "{refusal}");
}

fn guard_of(root: &Path, rules: &[OsString]) -> darlings::audit::Guarded {
    let mut argv: Vec<OsString> = vec!["darlings".into(), "record".into(), "--dry-run".into()];
    argv.extend(["--root".into(), root.as_os_str().to_owned(), "--source".into(), "walk".into()]);
    argv.extend(rules.iter().cloned());
    let Some(Command::Record(args)) = Cli::try_parse_from(&argv).unwrap().command else { unreachable!() };
    darlings::audit::guard(&darlings::config::Audit::for_record(&args).unwrap()).unwrap()
}

/// What a flat audit's JSON says the guards must refuse: the critical
/// non-directory losses, and the broken claims holding something, not
/// accepted (the reference, read from `audit --flat --format json`).
fn reference_of_json(json: &serde_json::Value) -> (Vec<String>, Vec<String>) {
    let rows = json["findings"].as_array().unwrap();
    let counted = |f: &&serde_json::Value| f["type"] != "dir" && f["accepted"] != true;
    let loss = ["unclaimed", "broken", "new-identity", "shadowed"];
    let mut critical: Vec<String> = rows
        .iter()
        .filter(counted)
        .filter(|f| loss.contains(&f["verdict"].as_str().unwrap()) && f["severity"] == "critical")
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    critical.sort();
    let mut broken: Vec<String> = rows
        .iter()
        .filter(counted)
        .filter(|f| f["verdict"] == "broken")
        .map(|f| f["rule"]["pattern"].as_str().unwrap().to_owned())
        .collect();
    broken.sort();
    broken.dedup();
    (critical, broken)
}

/// On a real btrfs, what the grouped attempt let through: a broken claim
/// holding one file changed since the blank, and critical content hidden
/// under a mount point on a directory identical to the blank's. The
/// rollback's own plan (`--dry-run --format json`) refuses exactly what
/// the whole flat audit of the same root calls for.
#[test]
fn the_rollback_refuses_what_the_flat_audit_finds_on_btrfs() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = rollback_common::run(
        r#"
$D mark --mountpoint m > /dev/null
# The root mounted where it runs: its claims are checked.
mkdir r && mount -o subvol=root "$LOOP" r
flat() { $D audit --flat --format json --root r --baseline m/root-blank "$@"; }
# One file changed since the blank in /etc, claimed.
flat --keep /etc > "$OUT/broken-flat.json"
$D rollback --mountpoint m --dry-run --format json --keep /etc > "$OUT/broken-plan.json"; echo $? > "$OUT/broken.code"
# A machine id written under what is now a mount point, /etc left as
# the blank has it (its times too), then hidden.
echo id > r/etc/machine-id
touch -r m/root-blank/etc r/etc
mount -t tmpfs none r/etc
flat > "$OUT/hidden-flat.json"
$D rollback --mountpoint m --dry-run --format json > "$OUT/hidden-plan.json"; echo $? > "$OUT/hidden.code"
"#,
    );
    for (case, code) in [("broken", 3), ("hidden", 1)] {
        let flat = r.json(&format!("{case}-flat.json"));
        let plan = r.json(&format!("{case}-plan.json"));
        let (critical, broken) = reference_of_json(&flat);
        let loss = &plan["loss"];
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
        };
        assert_eq!(strings(&loss["critical"]), critical, "{case}: {plan}");
        assert_eq!(loss["critical_total"], critical.len(), "{case}: {plan}");
        assert_eq!(strings(&loss["broken"]), broken, "{case}: {plan}");
        assert_eq!(r.code(case), code, "{case}: {plan}");
    }
    let (critical, broken) = reference_of_json(&r.json("hidden-flat.json"));
    assert_eq!(critical, ["/etc/machine-id"], "the hidden id is found");
    assert!(broken.is_empty());
    assert_eq!(reference_of_json(&r.json("broken-flat.json")).1, ["/etc"]);
}
