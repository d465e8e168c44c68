//! Generated files are committed and must match the CLI: shell completions
//! in `completions/`, the man pages in `doc/` (darlings(1) and one page per
//! subcommand, as `darlings man SUBCOMMAND…` prints it). After a CLI
//! change, refresh them with `DARLINGS_BLESS=1 cargo test --test generated`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

fn check(args: &[&str], file: &str) {
    let out = common::run(args);
    assert_eq!(common::code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    if std::env::var_os("DARLINGS_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &out.stdout).expect("write");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == out.stdout,
        "{file} is out of date: run DARLINGS_BLESS=1 cargo test --test generated, and commit it"
    );
}

#[test]
fn completions_are_current() {
    check(&["completions", "bash"], "completions/darlings.bash");
    check(&["completions", "zsh"], "completions/_darlings");
    check(&["completions", "fish"], "completions/darlings.fish");
}

fn bless() -> bool {
    std::env::var_os("DARLINGS_BLESS").is_some()
}

/// Every page there must be: the command's and each visible subcommand's
/// (at any depth), as (names of the subcommand, file in `doc/`).
fn pages() -> Vec<(Vec<String>, String)> {
    fn walk(cmd: &clap::Command, names: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
        let file = std::iter::once("darlings").chain(names.iter().map(String::as_str)).collect::<Vec<_>>();
        out.push((names.clone(), format!("doc/{}.1", file.join("-"))));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            names.push(sub.get_name().to_owned());
            walk(sub, names, out);
            names.pop();
        }
    }
    use clap::CommandFactory;
    let mut out = Vec::new();
    walk(&darlings::cli::Cli::command(), &mut Vec::new(), &mut out);
    out
}

/// The `.1` files in `doc/`.
fn committed_pages() -> Vec<String> {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("doc");
    let mut files: Vec<String> = std::fs::read_dir(&doc)
        .expect("doc/")
        .map(|e| e.expect("doc/ entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".1"))
        .map(|name| format!("doc/{name}"))
        .collect();
    files.sort();
    files
}

#[test]
fn man_pages_are_current() {
    let pages = pages();
    assert!(pages.len() > 10, "{pages:?}");
    for (names, file) in &pages {
        let args: Vec<&str> = std::iter::once("man").chain(names.iter().map(String::as_str)).collect();
        check(&args, file);
    }
    let mut wanted: Vec<String> = pages.into_iter().map(|(_, file)| file).collect();
    wanted.sort();
    for stale in committed_pages().into_iter().filter(|f| !wanted.contains(f)) {
        if bless() {
            std::fs::remove_file(Path::new(env!("CARGO_MANIFEST_DIR")).join(&stale)).expect("rm");
        } else {
            panic!("{stale} is no page of darlings: run DARLINGS_BLESS=1 cargo test --test generated");
        }
    }
}

/// `darlings-rollback(1)` in a page (SUBCOMMANDS, SEE ALSO) is one of the
/// pages: with `man_pages_are_current`, a file in `doc/`.
#[test]
fn every_page_a_page_names_exists() {
    let pages = pages();
    let files: Vec<&str> = pages.iter().map(|(_, file)| file.as_str()).collect();
    let mut named = 0;
    for (names, file) in &pages {
        let args: Vec<&str> = std::iter::once("man").chain(names.iter().map(String::as_str)).collect();
        let out = common::run(&args);
        assert_eq!(common::code(&out), 0, "man {names:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let text = text.replace("\\-", "-").replace("\\fB", "").replace("\\fR", "");
        for (at, _) in text.match_indices("darlings") {
            let rest = &text[at..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).unwrap_or(rest.len());
            let Some((section, _)) = rest[end..].strip_prefix('(').and_then(|r| r.split_once(')')) else {
                continue;
            };
            named += 1;
            let page = format!("doc/{}.{section}", &rest[..end]);
            assert!(
                files.contains(&page.as_str()),
                "{file} names {}({section}), which is no page",
                &rest[..end]
            );
        }
    }
    assert!(named >= files.len() * 2 - 2, "each page is named, and names the page above it: {named}");
}

#[test]
fn completions_know_the_subcommands_and_flags() {
    let out = common::run(["completions", "bash"]);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    for word in
        ["audit", "explain", "--root", "--keep", "--ignore", "--assume-claims", "--flat", "--accepted"]
    {
        assert!(text.contains(word), "{word}");
    }
}
