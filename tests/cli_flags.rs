//! Every subcommand says exactly what it means: its help lists the flags
//! it reads and no other (a table written from what each command does,
//! checked against `--help` both ways), a flag it does not read is refused,
//! and two flags of which one would be ignored are an error naming both
//! (exit 2, like every usage error), never silently half-obeyed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

/// Where the rules come from (audit, explain, record; rollback has no --root:
/// its target says where the root is).
const RULES: &[&str] = &[
    "--root",
    "--manifest",
    "--no-default-manifest",
    "--keep",
    "--ignore",
    "--impermanence",
    "--preservation",
    "--assume-claims",
];
/// Where the list of state comes from (audit, explain, record).
const SOURCE: &[&str] =
    &["--source", "--snapshot", "--dataset", "--baseline", "--zfs-diff", "--strip-prefix"];
/// How a report is shown (audit, stray).
const REPORT: &[&str] = &["--format", "--flat", "--verdict", "--min-size", "--sort", "--color"];
/// The audit's own: acceptance, exit code, the NixOS block, the walk.
const AUDIT: &[&str] = &[
    "--accepted",
    "--fail-on",
    "--suggest",
    "--suggest-all",
    "--suggest-storage",
    "--threads",
    "--progress",
];

/// The flags each subcommand reads, besides --help.
fn table() -> Vec<(&'static str, Vec<&'static str>)> {
    let audit = [RULES, SOURCE, REPORT, AUDIT].concat();
    vec![
        // The default command is the audit, with --version besides.
        ("", [&audit[..], &["--version"]].concat()),
        ("audit", audit),
        // The same audit as `audit`, for one path: no filters, no exit code.
        ("explain", [RULES, SOURCE, &["--flat", "--format", "--threads"]].concat()),
        // Walks the storage roots of the declared claims (given, or named by
        // a manifest): no source, no --keep/--ignore, nothing accepted.
        (
            "stray",
            [
                &["--root", "--manifest", "--no-default-manifest", "--impermanence", "--preservation"][..],
                REPORT,
                &["--fail-on", "--threads"],
            ]
            .concat(),
        ),
        // Its output is the record (JSON, flat): the audit, the exit code, and
        // the target that keeps it (--dataset is the source's and the target's).
        (
            "record",
            [
                RULES,
                SOURCE,
                &["--accepted", "--fail-on", "--threads", "--progress"],
                &[
                    "--device",
                    "--mountpoint",
                    "--subvolume",
                    "--archive-dataset",
                    "--wait",
                    "--invalidate",
                    "--dry-run",
                ],
            ]
            .concat(),
        ),
        (
            "rollback",
            [
                &[
                    "--dataset",
                    "--device",
                    "--mountpoint",
                    "--subvolume",
                    "--snapshot",
                    "--blank",
                    "--archive-dataset",
                    "--old-roots",
                ][..],
                &RULES[1..],
                &[
                    "--dry-run",
                    "--yes",
                    "--force",
                    "--live",
                    "--destroy-newer",
                    "--destroy-clones",
                    "--retain",
                    "--retain-days",
                    "--writable-archive",
                    "--initrd",
                    "--format",
                    "--threads",
                    "--wait",
                ],
            ]
            .concat(),
        ),
        // The mark is on the root itself: no blank, no archives.
        ("mark", vec!["--dataset", "--device", "--mountpoint", "--subvolume", "--wait", "--off"]),
        // Archives are per filesystem (btrfs) or per archive dataset (ZFS).
        (
            "archives",
            vec!["--dataset", "--device", "--mountpoint", "--archive-dataset", "--old-roots", "--format"],
        ),
        (
            "restore",
            vec![
                "--dataset",
                "--device",
                "--mountpoint",
                "--archive-dataset",
                "--old-roots",
                "--from",
                "--root",
                "--force",
                "--dry-run",
            ],
        ),
        // The mark and the record are on the root, then the archives.
        (
            "status",
            vec![
                "--dataset",
                "--device",
                "--mountpoint",
                "--subvolume",
                "--archive-dataset",
                "--old-roots",
                "--format",
            ],
        ),
        ("nix expr", vec![]),
        ("completions", vec![]),
    ]
}

/// The long flags `--help` lists: the lines that start an option (two
/// spaces and `-x, --long`, or six and `--long`), not the prose below them.
fn listed(subcommand: &str) -> BTreeSet<String> {
    let mut args: Vec<&str> = subcommand.split_whitespace().collect();
    args.push("--help");
    let out = common::run(&args);
    assert_eq!(common::code(&out), 0, "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("      --").map(|r| format!("--{r}")).or_else(|| {
                let r = line.strip_prefix("  -")?;
                Some(r.split_once(", ").map_or(format!("-{r}"), |(_, long)| long.to_owned()))
            })?;
            let flag = rest.split([' ', '=', '[']).next()?;
            flag.starts_with("--").then(|| flag.to_owned())
        })
        .collect()
}

#[test]
fn help_lists_exactly_the_flags_each_subcommand_reads() {
    let mut wrong = Vec::new();
    for (subcommand, flags) in table() {
        let want: BTreeSet<String> = flags.iter().chain(&["--help"]).map(|f| (*f).to_owned()).collect();
        assert_eq!(want.len(), flags.len() + 1, "{subcommand:?}: a flag twice in the table");
        let shown = listed(subcommand);
        let extra: Vec<_> = shown.difference(&want).collect();
        let missing: Vec<_> = want.difference(&shown).collect();
        if !extra.is_empty() || !missing.is_empty() {
            wrong.push(format!("darlings {subcommand}: shows unread {extra:?}, misses {missing:?}"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

/// A flag a subcommand does not read is refused, not taken and ignored.
#[test]
fn a_flag_a_subcommand_does_not_read_is_refused() {
    let t = common::Tree::new();
    t.file(b"/etc/x", b"x");
    let root = t.root().to_str().unwrap();
    for args in [
        &["record", "--root", root, "--format", "json"][..],
        &["record", "--root", root, "--suggest", "nix"],
        &["record", "--root", root, "--sort", "size"],
        &["record", "--root", root, "--flat"],
        &["stray", "--root", root, "--keep", "/x"],
        &["stray", "--root", root, "--source", "walk"],
        &["stray", "--root", root, "--accepted", "/dev/null"],
        &["mark", "--mountpoint", root, "--snapshot", "blank"],
        &["status", "--mountpoint", root, "--blank", "root-blank"],
        &["archives", "--mountpoint", root, "--subvolume", "root"],
    ] {
        let out = common::run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(common::code(&out), 2, "{args:?}: {err}");
        let flag = args[3];
        assert!(err.contains(&format!("unexpected argument '{flag}'")), "{args:?}: {err}");
    }
}

const DIFF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hand-written.zfsdiff");

/// Each pair: the flags it names, then the command line. Everything else
/// on the line is valid, so that without the conflict an audit would run
/// (a rollback target would not: there is no ZFS or btrfs filesystem here).
fn conflicts(root: &str, other: &str, json: &str, accepted: &str) -> Vec<([&'static str; 2], Vec<String>)> {
    let cases: Vec<([&'static str; 2], Vec<&str>)> = vec![
        // Sources: a saved diff or a baseline is the source; --source would be ignored.
        (
            ["--zfs-diff", "--source"],
            vec!["audit", "--zfs-diff", DIFF, "--strip-prefix", "/mnt/root", "--source", "btrfs"],
        ),
        (
            ["--zfs-diff", "--source"],
            vec!["--zfs-diff", DIFF, "--strip-prefix", "/mnt/root", "--source", "zfs"],
        ),
        (
            ["--zfs-diff", "--dataset"],
            vec!["audit", "--zfs-diff", DIFF, "--strip-prefix", "/mnt/root", "--dataset", "rpool/x"],
        ),
        (["--baseline", "--source"], vec!["audit", "--root", root, "--baseline", other, "--source", "btrfs"]),
        (["--baseline", "--snapshot"], vec!["audit", "--root", root, "--baseline", other, "--snapshot", "s"]),
        (
            ["--baseline", "--dataset"],
            vec!["record", "--root", root, "--baseline", other, "--dataset", "rpool/x"],
        ),
        (
            ["--snapshot", "--source walk"],
            vec!["audit", "--root", root, "--source", "walk", "--snapshot", "s"],
        ),
        (
            ["--dataset", "--source btrfs"],
            vec!["explain", "--root", root, "--source", "btrfs", "--dataset", "d", "/etc"],
        ),
        // Formats that do not read a flag: the metrics are totals, only the table has colour.
        (
            ["--verdict", "--format prometheus"],
            vec!["audit", "--root", root, "--format", "prometheus", "--verdict", "unclaimed"],
        ),
        (
            ["--min-size", "--format prometheus"],
            vec!["audit", "--root", root, "--format", "prometheus", "--min-size", "1K"],
        ),
        (
            ["--sort", "--format prometheus"],
            vec!["stray", "--root", root, "--impermanence", json, "--format", "prometheus", "--sort", "size"],
        ),
        (
            ["--color", "--format json"],
            vec!["audit", "--root", root, "--format", "json", "--color", "always"],
        ),
        (["--color", "--format ndjson"], vec!["--root", root, "--format", "ndjson", "--color", "never"]),
        // --suggest prints a NixOS block instead of the report, and exits 0.
        (["--suggest", "--format"], vec!["audit", "--root", root, "--suggest", "nix", "--format", "json"]),
        (
            ["--suggest", "--verdict"],
            vec!["audit", "--root", root, "--suggest", "nix", "--verdict", "unclaimed"],
        ),
        (["--suggest", "--sort"], vec!["audit", "--root", root, "--suggest", "nix", "--sort", "size"]),
        (
            ["--suggest", "--color"],
            vec!["audit", "--root", root, "--suggest", "preservation", "--color", "always"],
        ),
        (
            ["--suggest", "--fail-on"],
            vec!["audit", "--root", root, "--suggest", "nix", "--fail-on", "critical"],
        ),
        (
            ["--suggest", "--accepted"],
            vec!["audit", "--root", root, "--suggest", "nix", "--accepted", accepted],
        ),
        (
            ["--fail-on none", "--fail-on unclaimed"],
            vec!["audit", "--root", root, "--fail-on", "none,unclaimed"],
        ),
        // The target: ZFS flags with a btrfs filesystem, btrfs flags with a dataset.
        (
            ["--dataset", "--subvolume"],
            vec!["rollback", "--dry-run", "--dataset", "rpool/x", "--subvolume", "root"],
        ),
        (["--dataset", "--blank"], vec!["rollback", "--dry-run", "--dataset", "rpool/x", "--blank", "b"]),
        (["--dataset", "--old-roots"], vec!["archives", "--dataset", "rpool/x", "--old-roots", "old"]),
        (
            ["--dataset", "--writable-archive"],
            vec!["rollback", "--dry-run", "--dataset", "rpool/x", "--writable-archive"],
        ),
        (
            ["--mountpoint", "--snapshot"],
            vec!["rollback", "--dry-run", "--mountpoint", root, "--snapshot", "s"],
        ),
        (
            ["--mountpoint", "--archive-dataset"],
            vec!["status", "--mountpoint", root, "--archive-dataset", "a/b"],
        ),
        (
            ["--device", "--destroy-newer"],
            vec!["rollback", "--dry-run", "--device", "/dev/null", "--destroy-newer"],
        ),
    ];
    cases.into_iter().map(|(flags, args)| (flags, args.into_iter().map(str::to_owned).collect())).collect()
}

#[test]
fn flags_of_which_one_would_be_ignored_are_an_error_naming_both() {
    let t = common::Tree::new();
    t.file(b"/etc/x", b"x").file(b"/persist/etc/y", b"y");
    let other = common::Tree::new();
    other.dir(b"/etc");
    let json = t.root().join("claims.json");
    let claims = r#"{"/persist": {"enable": true, "persistentStoragePath": "/persist", "users": {},
        "directories": [{"directory": "/etc/y", "dirPath": "/etc/y", "persistentStoragePath": "/persist"}],
        "files": []}}"#;
    std::fs::write(&json, claims).unwrap();
    let accepted = t.root().join("accepted.txt");
    std::fs::write(&accepted, "/etc/x\n").unwrap();
    let (root, other) = (t.root().to_str().unwrap(), other.root().to_str().unwrap());
    let mut wrong = Vec::new();
    for ([a, b], args) in conflicts(root, other, json.to_str().unwrap(), accepted.to_str().unwrap()) {
        let out = common::run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        if common::code(&out) != 2
            || !err.contains("cannot be used with")
            || !err.contains(a)
            || !err.contains(b)
        {
            wrong.push(format!("{args:?} exits {} saying: {err}", common::code(&out)));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));

    // What is read together still runs (0, or 1 and 3 for findings).
    for args in [
        &["audit", "--root", root, "--format", "table", "--color", "always"][..],
        &["audit", "--root", root, "--format", "prometheus", "--flat", "--fail-on", "critical"],
        &["audit", "--root", root, "--suggest", "nix", "--flat", "--suggest-all"],
        &["audit", "--zfs-diff", DIFF, "--snapshot", "blank", "--strip-prefix", "/mnt/root"],
        &["audit", "--root", root, "--baseline", other, "--flat", "--format", "json"],
        &["audit", "--root", root, "--verdict", "unclaimed", "--sort", "size", "--color", "never"],
        &["audit", "--root", root, "--fail-on", "none"],
    ] {
        let out = common::run(args);
        assert!(
            [0, 1, 3].contains(&common::code(&out)),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
