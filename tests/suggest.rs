//! `--suggest nix|preservation`: the snippet is valid Nix that names
//! exactly the unclaimed paths, whatever bytes they hold, shows nothing raw
//! to a terminal, proposes nothing in places no system keeps, and suits
//! the module it is for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod nix;

use std::collections::BTreeSet;

use serde_json::Value;

/// Names a terminal would act on, or that hide or reorder text.
const HOSTILE: [&str; 9] = [
    "esc \u{1b}[31mred",
    "osc52 \u{1b}]52;c;ZXZpbA==\u{7}end",
    "bel \u{7}",
    "c1 \u{9b}2J",
    "del \u{7f}",
    "bidi \u{202e}txt.exe",
    "zero\u{200b}width",
    "new\nline\ttab",
    "nix ${x} $y \"q\" it's '' \\ \\${z}",
];

fn run_suggest(root: &std::path::Path, args: &[&str]) -> (String, i32) {
    let mut cmd = vec!["audit", "--root", root.to_str().expect("utf-8"), "--no-default-manifest"];
    cmd.extend(args);
    let out = common::run(&cmd);
    let code = common::code(&out);
    (String::from_utf8(out.stdout).expect("the snippet is UTF-8"), code)
}

/// Evaluates the snippet as a module body and returns `expr` of it.
fn eval_snippet(block: &str, expr: &str) -> Value {
    nix::eval(&format!("({{ {block} }}).{expr}"))
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array().expect("a list").iter().map(|s| s.as_str().expect("a string").to_owned()).collect()
}

#[test]
fn hostile_names_round_trip_through_nix_and_never_reach_the_terminal_raw() {
    let t = common::Tree::new();
    for name in HOSTILE {
        t.file(format!("/srv/{name}").as_bytes(), b"x");
    }
    // Top-level files are findings of their own, each a suggestion.
    for name in HOSTILE {
        t.file(format!("/{name}").as_bytes(), b"x");
    }
    t.file(b"/caf\xe9", b"latin-1");
    let (block, code) = run_suggest(t.root(), &["--suggest", "nix", "--suggest-all"]);
    assert_eq!(code, 0, "{block}");
    for c in block.chars() {
        let raw =
            (c.is_control() && c != '\n') || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}');
        assert!(!raw, "raw {:?} in the snippet:\n{}", c, block.escape_debug());
    }
    assert!(block.contains("# Not valid UTF-8, claim it by hand: /caf\\xE9"), "{block}");
    if !nix::available() {
        return;
    }
    let files = strings(&eval_snippet(&block, "environment.persistence.\"/persist\".files"));
    let want: BTreeSet<String> = HOSTILE.iter().map(|n| format!("/{n}")).collect();
    assert_eq!(files, want, "{block}");
    assert_eq!(
        strings(&eval_snippet(&block, "environment.persistence.\"/persist\".directories")),
        ["/srv".to_owned()].into()
    );

    // Fed back as declared claims, each names its file byte for byte.
    let json = eval_snippet(&block, "environment.persistence");
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(file.path(), json.to_string()).expect("write");
    let (report, _) = common::audit_json(
        t.root(),
        &["--flat", "--no-default-manifest", "--impermanence", file.path().to_str().expect("utf-8")],
    );
    let f = common::findings(&report);
    for name in HOSTILE {
        let path = format!("/{name}");
        let finding = &f[path.as_bytes()];
        assert_eq!(finding["verdict"], "broken", "{path:?} is claimed now (not mounted: broken): {finding}");
        assert_eq!(finding["rule"]["kind"], "keep", "{path:?}");
    }
}

#[test]
fn volatile_places_fifos_and_sockets_are_never_suggested() {
    let t = common::Tree::new();
    t.file(b"/tmp/scratch.txt", b"s")
        .dir(b"/tmp/.X11-unix")
        .file(b"/run/user/1000/state", b"r")
        .file(b"/var/run/app.pid", b"1")
        .file(b"/var/lock/app.lock", b"")
        .file(b"/var/tmp/keep-me", b"k")
        .file(b"/srv/data", b"d")
        .file(b"/notes.txt", b"n");
    let mkfifo = |rel: &[u8]| {
        rustix::fs::mknodat(rustix::fs::CWD, t.at(rel), rustix::fs::FileType::Fifo, rustix::fs::Mode::RUSR, 0)
            .expect("mkfifo")
    };
    mkfifo(b"/tmp/fifo1");
    mkfifo(b"/fifo1");
    let sockdir = tempfile::tempdir().expect("tempdir");
    let listener = std::os::unix::net::UnixListener::bind(sockdir.path().join("s")).expect("bind");
    std::fs::rename(sockdir.path().join("s"), t.at(b"/app.sock")).expect("move socket");
    drop(listener);

    for flat in [false, true] {
        let mut args = vec!["--suggest", "nix", "--suggest-all"];
        if flat {
            args.push("--flat");
        }
        let (block, code) = run_suggest(t.root(), &args);
        assert_eq!(code, 0, "{block}");
        for volatile in ["\"/tmp", "\"/run", "\"/var/run", "\"/var/lock", "fifo1", "app.sock"] {
            assert!(!block.contains(volatile), "{volatile} suggested (flat: {flat}):\n{block}");
        }
        assert!(block.contains("# Left out: what lies in /dev, /proc, /run, /sys, /tmp"), "{block}");
        if nix::available() {
            let dirs = strings(&eval_snippet(&block, "environment.persistence.\"/persist\".directories"));
            let files = strings(&eval_snippet(&block, "environment.persistence.\"/persist\".files"));
            let all: BTreeSet<String> = dirs.union(&files).cloned().collect();
            // /var/tmp is meant to survive reboots: worth a claim (the
            // catalogue names it, so a grouped /var suggests it by name).
            let want: BTreeSet<String> =
                ["/var/tmp", "/srv", "/notes.txt"].iter().map(|s| (*s).to_owned()).collect();
            assert_eq!(all, want, "flat: {flat}\n{block}");
        }
    }
}

#[test]
fn preservation_is_enabled_and_sets_machine_id_up_in_the_initrd() {
    let t = common::Tree::new();
    t.file(b"/etc/machine-id", b"0123456789abcdef\n")
        .file(b"/etc/ssh/ssh_host_ed25519_key", b"KEY")
        .file(b"/var/lib/bluetooth/aa:bb/info", b"paired");
    let (block, code) = run_suggest(t.root(), &["--suggest", "preservation"]);
    assert_eq!(code, 0, "{block}");
    assert!(block.contains("preservation.enable = true;"), "{block}");
    assert!(block.contains("{ file = \"/etc/machine-id\"; inInitrd = true; }"), "{block}");
    assert!(
        block.contains("    \"/etc/ssh/ssh_host_ed25519_key\"\n"),
        "only machine-id is read in the initrd:\n{block}"
    );
    // A broken claim would make an audit exit 3; the snippet written is a success.
    let (_, code) = run_suggest(t.root(), &["--suggest", "preservation", "--keep", "/var/lib/bluetooth"]);
    assert_eq!(code, 0);

    if !nix::available() {
        return;
    }
    // Through the real preservation module: enabled, machine-id mounted
    // in the initrd, and its value read back as the claims suggested.
    let shared = nix::SHARED;
    let repo = nix::REPO;
    let config = nix::eval(&format!(
        r#"let
  lib = import {shared}/nixpkgs-lib;
  e = lib.evalModules {{
    modules = [
      {repo}/tests/nix/stubs.nix
      {shared}/preservation/module.nix
      {{ boot.initrd.systemd.enable = true; }}
      ({{ ... }}: {{ {block} }})
    ];
  }};
in {{ inherit (e.config.preservation) enable preserveAt; }}"#
    ));
    assert_eq!(config["enable"], true);
    let files = config["preserveAt"]["/persist"]["files"].as_array().expect("files").clone();
    let initrd: Vec<(&str, bool)> =
        files.iter().map(|f| (f["file"].as_str().unwrap(), f["inInitrd"].as_bool().unwrap())).collect();
    assert_eq!(initrd, [("/etc/machine-id", true), ("/etc/ssh/ssh_host_ed25519_key", false)], "{config}");
    let json = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(json.path(), config["preserveAt"].to_string()).expect("write");
    let (report, _) = common::audit_json(
        t.root(),
        &["--flat", "--no-default-manifest", "--preservation", json.path().to_str().expect("utf-8")],
    );
    let f = common::findings(&report);
    for claimed in ["/etc/machine-id", "/etc/ssh/ssh_host_ed25519_key", "/var/lib/bluetooth"] {
        assert_eq!(f[claimed.as_bytes()]["rule"]["kind"], "keep", "{claimed}: {}", f[claimed.as_bytes()]);
    }
}

/// `--suggest-all`, evaluated and fed back, leaves nothing unclaimed but
/// what is never suggested: a grouped `/home` (precious `.mozilla` beside
/// plain files) and a grouped `/var` holding a volatile `/var/run` beside
/// state of its own.
#[test]
fn suggest_all_fed_back_leaves_only_what_is_never_suggested() {
    let t = common::Tree::new();
    t.file(b"/home/alice/.mozilla/firefox/prefs.js", b"p")
        .file(b"/home/alice/notes.txt", b"n")
        .file(b"/home/alice/.cache/x", b"c")
        .file(b"/var/lib/app/state", b"s")
        .file(b"/var/run/app.pid", b"1")
        .file(b"/var/tmp/keep-me", b"k")
        .file(b"/tmp/scratch", b"t")
        .file(b"/srv/data", b"d");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        t.at(b"/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR,
        0,
    )
    .expect("mkfifo");
    let never = |path: &str| path.starts_with("/tmp") || path.starts_with("/var/run") || path == "/fifo";
    for flat in [false, true] {
        let mut args = vec!["--suggest", "nix", "--suggest-all"];
        if flat {
            args.push("--flat");
        }
        let (block, code) = run_suggest(t.root(), &args);
        assert_eq!(code, 0, "{block}");
        if !nix::available() {
            return;
        }
        let file = tempfile::NamedTempFile::new().expect("tempfile");
        std::fs::write(file.path(), eval_snippet(&block, "environment.persistence").to_string())
            .expect("write");
        let claims = ["--no-default-manifest", "--impermanence", file.path().to_str().expect("utf-8")];
        for grouping in [None, Some("--flat")] {
            let (report, _) = common::audit_json(t.root(), &[&claims[..], grouping.as_slice()].concat());
            let left: Vec<String> = common::findings(&report)
                .into_iter()
                .filter(|(_, f)| f["verdict"] == "unclaimed" || f["verdict"] == "new-identity")
                .map(|(path, _)| String::from_utf8(path).expect("utf-8"))
                .filter(|path| !never(path))
                .collect();
            assert!(
                left.is_empty(),
                "still unclaimed ({grouping:?}, suggested flat: {flat}): {left:?}\n{block}"
            );
        }
    }
}
