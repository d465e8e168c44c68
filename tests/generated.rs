//! Generated files are committed and must match the CLI: shell completions
//! in `completions/`, the man page in `doc/`. After a CLI change, refresh
//! them with `DARLINGS_BLESS=1 cargo test --test generated`.
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

#[test]
fn man_page_is_current() {
    check(&["man"], "doc/darlings.1");
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
