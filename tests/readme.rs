//! The README's examples are real output. Every ```` ```text ```` block of
//! README.md that starts with a `$ darlings …` line is that command's output
//! on the machine built here, and this test fails when one drifts. Refresh
//! them with `DARLINGS_BLESS=1 cargo test --test readme`, read the diff, and
//! commit it.
//!
//! The machine: a tmpfs root (an ephemeral root, as on a tmpfs-root NixOS)
//! with persistent storage (see `common::in_mount_namespace`) on `/persist`
//! and `/var/lib/nixos` bind-mounted from it, in a
//! private mount namespace (so this needs root), every file time fixed.
//! Each command runs as written, with `--root` pointing at that tree, and
//! `--format table` added to an `audit` that names no format (a terminal's
//! default; the test's stdout is a pipe). What differs from run to run is
//! fixed afterwards, and only that: the tree's temporary path is shown as
//! `/` (the README's commands audit `/`), and JSON's `started_at` and
//! `duration_seconds` get the fixed values below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Every file and directory time of the machine: 2026-11-26 14:52:07 UTC.
const MTIME: i64 = 1_795_704_727;
const STARTED_AT: &str = r#"  "started_at": "2026-11-26T15:00:00Z","#;
const DURATION: &str = r#"  "duration_seconds": 0.02,"#;

/// The machine's files, before the mounts; its own `/persist` holds what
/// is bind-mounted onto `/var/lib/nixos`.
fn machine() -> (common::Tree, common::Tree) {
    let t = common::Tree::new();
    t.file(b"/etc/machine-id", b"5b2e1f6a0c9d4e7fa1b3c5d7e9f02468\n")
        .file(b"/etc/ssh/ssh_host_ed25519_key", &[b'k'; 411])
        .file(b"/etc/ssh/ssh_host_ed25519_key.pub", &[b'p'; 97])
        .file(b"/var/lib/bluetooth/AA:BB:CC:DD:EE:FF/info", b"[General]\nName=headphones\n")
        .dir(b"/var/lib/nixos")
        .file(b"/var/log/journal/5b2e1f6a/system.journal", &vec![b'j'; 300_000])
        .file(b"/var/cache/nix/binary-cache-v6.sqlite", &vec![b'c'; 20_000])
        .file(b"/home/alice/notes.txt", b"buy milk\n")
        .file(b"/home/alice/.mozilla/firefox/x1.default/places.sqlite", &vec![b'f'; 100_000])
        .file(b"/home/alice/.cache/fontconfig/cache-7", &[b'x'; 300])
        .file(b"/tmp/.X11-unix/keep", b"")
        .dir(b"/persist");
    let persist = common::Tree::new();
    persist.file(b"/var/lib/nixos/uid-map", b"{\"alice\": 1000}\n");
    (t, persist)
}

/// Words of a command line as a shell splits them (quotes, no expansion).
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(quote.is_none(), "unbalanced quotes: {line}");
    words.extend(word);
    words
}

/// One example: the byte range of its output in the README, the command
/// (continuation lines joined), and the output shown.
struct Example {
    output: std::ops::Range<usize>,
    command: String,
    shown: String,
}

fn examples(readme: &str) -> Vec<Example> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(start) = readme[at..].find("```text\n$ darlings ").map(|i| at + i + "```text\n".len()) {
        let end = start + readme[start..].find("\n```").expect("a closed block") + 1;
        let block = &readme[start..end];
        let mut command = String::new();
        let mut offset = 0;
        for line in block.split_inclusive('\n') {
            offset += line.len();
            let line = line.trim_end_matches('\n');
            match line.strip_suffix('\\') {
                Some(part) => command.push_str(part),
                None => {
                    command.push_str(line);
                    break;
                }
            }
        }
        let command = command.trim_start_matches("$ ").to_owned();
        found.push(Example { output: start + offset..end, command, shown: block[offset..].to_owned() });
        at = end;
    }
    found
}

fn quote(word: &[u8]) -> String {
    format!("'{}'", String::from_utf8_lossy(word).replace('\'', r"'\''"))
}

/// Runs the commands on the machine; returns each one's stdout.
fn run(commands: &[Vec<String>]) -> Vec<String> {
    let (t, persist) = machine();
    let root = tempfile::Builder::new().prefix("darlings-readme").tempdir().expect("tempdir");
    let r = quote(root.path().as_os_str().as_bytes());
    let mut script = format!(
        "mount -t tmpfs -o mode=755 root {r}\n\
         cp -a {src}/. {r}/\n\
         persistent persist {r}/persist\n\
         cp -a {persist}/. {r}/persist/\n\
         mount --bind {r}/persist/var/lib/nixos {r}/var/lib/nixos\n\
         find {r} -depth -exec touch -h -d @{MTIME} {{}} +\n\
         set +e\n",
        src = quote(t.root().as_os_str().as_bytes()),
        persist = quote(persist.root().as_os_str().as_bytes()),
    );
    for (i, words) in commands.iter().enumerate() {
        assert_eq!(words[0], "darlings", "{words:?}");
        let mut argv: Vec<&[u8]> = words[1..].iter().map(|w| w.as_bytes()).collect();
        argv.extend([&b"--root"[..], root.path().as_os_str().as_bytes()]);
        if words[1] == "audit" && !words.iter().any(|w| w == "--format") {
            argv.extend([&b"--format"[..], b"table"]);
        }
        let argv: Vec<String> = argv.into_iter().map(quote).collect();
        script.push_str(&format!("echo '=== example {i}'\n\"$D\" {}\n", argv.join(" ")));
    }
    // Exit codes are the audits' (3: a broken claim), not failures.
    script.push_str("exit 0\n");
    let out = common::in_mount_namespace(&script);
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let shown = root.path().to_str().expect("a UTF-8 temporary path");
    stdout
        .split("=== example ")
        .skip(1)
        .map(|part| {
            let text = part.split_once('\n').expect("a marker line").1;
            assert!(!text.is_empty(), "no output; stderr: {}", String::from_utf8_lossy(&out.stderr));
            normalise(text, shown)
        })
        .collect()
}

/// The temporary root shown as `/`; the run's start and duration fixed.
fn normalise(text: &str, root: &str) -> String {
    let text = text.replace(&format!("{root}/"), "/").replace(root, "/");
    text.split_inclusive('\n')
        .map(|line| {
            if line.starts_with(r#"  "started_at": ""#) {
                format!("{STARTED_AT}\n")
            } else if line.starts_with(r#"  "duration_seconds": "#) {
                format!("{DURATION}\n")
            } else {
                line.to_owned()
            }
        })
        .collect()
}

#[test]
fn readme_examples_are_current() {
    require_root!();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let examples = examples(&readme);
    let kinds: Vec<&str> = examples.iter().map(|e| e.command.split(' ').nth(1).unwrap_or("")).collect();
    assert!(
        kinds.contains(&"audit") && kinds.contains(&"explain"),
        "the README's table and explain examples are found: {kinds:?}"
    );
    assert!(examples.iter().any(|e| e.command.contains("--format json")), "a JSON example");
    let commands: Vec<Vec<String>> = examples.iter().map(|e| words(&e.command)).collect();
    let outputs = run(&commands);
    assert_eq!(outputs.len(), examples.len());

    if std::env::var_os("DARLINGS_BLESS").is_some() {
        let mut blessed = readme.clone();
        for (e, out) in examples.iter().zip(&outputs).rev() {
            blessed.replace_range(e.output.clone(), out);
        }
        std::fs::write(&path, blessed).expect("write README.md");
        return;
    }
    for (e, out) in examples.iter().zip(&outputs) {
        if e.shown != *out {
            let line = e.shown.lines().zip(out.lines()).position(|(a, b)| a != b).unwrap_or(0);
            panic!(
                "README.md's example `{}` is out of date (first difference in output line {}):\n\
                 README:\n{}\nnow:\n{}\n\
                 run DARLINGS_BLESS=1 cargo test --test readme, read the diff, and commit it",
                e.command,
                line + 1,
                e.shown,
                out
            );
        }
    }
}

#[test]
fn commands_are_split_like_a_shell() {
    assert_eq!(
        words("darlings audit --ignore '/home/*/.cache' --keep \"/a b\""),
        ["darlings", "audit", "--ignore", "/home/*/.cache", "--keep", "/a b"]
    );
    assert_eq!(words("a '' b"), ["a", "", "b"]);
    let readme = "x\n```text\n$ darlings audit \\\n    --keep /a\nout 1\nout 2\n```\n```text\nnot run\n```\n";
    let found = examples(readme);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].command, "darlings audit     --keep /a");
    assert_eq!(found[0].shown, "out 1\nout 2\n");
    assert_eq!(&readme[found[0].output.clone()], "out 1\nout 2\n");
}
