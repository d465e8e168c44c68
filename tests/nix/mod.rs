//! What the tests of the Nix files share: where the pinned upstream Nix
//! sources are, running `nix-instantiate` offline, and reading back the
//! command lines the module writes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::common;

/// nixpkgs `lib`, impermanence and preservation, beside the clone.
pub const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/nix");
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Whether Nix and the upstream sources are here; skips (fails under CI)
/// the calling test when not.
pub fn available() -> bool {
    if !common::have("nix-instantiate") {
        common::unavailable("nix-instantiate (Debian's nix-bin) is not installed");
        return false;
    }
    if !Path::new(SHARED).join("impermanence/nixos.nix").exists() {
        common::unavailable(
            "../shared/nix (nixpkgs lib, impermanence, preservation) is not beside the clone",
        );
        return false;
    }
    true
}

/// `nix-instantiate ARGS` without a daemon or store writes.
pub fn nix(args: &[&str]) -> Output {
    Command::new("nix-instantiate").args(args).env("NIX_REMOTE", "").output().expect("run nix-instantiate")
}

/// Evaluates the expression `text` strictly to JSON, or the error.
pub fn try_eval(text: &str) -> Result<Value, String> {
    let out = nix(&["--readonly-mode", "--eval", "--strict", "--json", "-E", text]);
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("JSON"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Evaluates the expression `text` strictly to JSON.
pub fn eval(text: &str) -> Value {
    try_eval(text).unwrap_or_else(|e| panic!("{e}"))
}

/// A systemd command line split into its argv (quotes, `\` escapes,
/// `$$` and `%%`), as systemd reads what the module writes.
pub fn argv(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => word.push('\n'),
                        Some(other) => word.push(other),
                        None => panic!("dangling \\ in {line:?}"),
                    },
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word.replace("$$", "$").replace("%%", "%"));
    }
    words
}

/// A JSON list of strings.
pub fn strs(v: &Value) -> Vec<&str> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(|s| s.as_str().unwrap()).collect()
}

/// The `darlings status …` argv inside the audit unit's textfile script,
/// when there is one (the words up to the redirection).
pub fn status_argv(script: &str) -> Option<Vec<&str>> {
    let (_, rest) = script.split_once("/bin/darlings status ")?;
    let (words, _) = rest.split_once(" > ")?;
    Some(std::iter::once("status").chain(words.split(' ')).collect())
}
