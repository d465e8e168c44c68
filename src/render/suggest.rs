//! `--suggest nix|preservation`: a ready-to-paste NixOS block that claims
//! the state the audit found unclaimed.
//!
//! By default the block names what the catalogue says matters (important
//! and critical findings, by the path a claim would name: `/var/lib/bluetooth`
//! for a grouped `/var`); `--suggest-all` adds every other unclaimed subtree.
//! Content of `/home/USER` and `/root` goes under `users.USER`, relative to
//! the home. Names Nix strings cannot hold exactly (not UTF-8) are listed
//! in a comment instead.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::config::Module;
use crate::report::Severity;
use crate::report::{Report, Verdict};
use crate::sys::meta::FileKind;
use crate::sys::path::is_ancestor_or_self;

/// What to keep: (path, is a directory).
pub fn items(report: &Report, all: bool) -> Vec<(Vec<u8>, bool)> {
    let mut items: Vec<(Vec<u8>, bool)> = Vec::new();
    for f in &report.findings {
        if !matches!(f.verdict, Verdict::Unclaimed | Verdict::NewIdentity) {
            continue;
        }
        match (&f.precious, &f.keep_path) {
            (Some(p), Some(at)) if all || p.severity >= Severity::Important => {
                items.push((at.clone(), p.directory))
            }
            _ if all => items.push((f.path.clone(), f.kind == FileKind::Dir)),
            _ => {}
        }
    }
    items.sort();
    items.dedup();
    // A path inside a suggested directory is kept with it.
    let dirs: Vec<Vec<u8>> = items.iter().filter(|(_, d)| *d).map(|(p, _)| p.clone()).collect();
    items.retain(|(p, _)| !dirs.iter().any(|d| d != p && is_ancestor_or_self(d, p)));
    items
}

/// A Nix string literal, or `None` for bytes Nix cannot hold exactly.
fn nix_string(path: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(path).ok()?;
    let mut out = String::from("\"");
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    Some(out)
}

/// The user whose home holds `path`, and the path relative to that home.
fn in_home(path: &[u8]) -> Option<(String, Vec<u8>)> {
    if let Some(rest) = path.strip_prefix(b"/root/") {
        return Some(("root".into(), rest.to_vec()));
    }
    let rest = path.strip_prefix(b"/home/")?;
    let cut = rest.iter().position(|&b| b == b'/')?;
    let user = std::str::from_utf8(&rest[..cut]).ok()?;
    let ident = user.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
    ident.then(|| (user.to_owned(), rest[cut + 1..].to_vec()))
}

#[derive(Default)]
struct Lists {
    directories: Vec<String>,
    files: Vec<String>,
}

pub fn render(
    out: &mut dyn Write,
    report: &Report,
    module: Module,
    all: bool,
    storage: &str,
) -> io::Result<()> {
    let items = items(report, all);
    let mut system = Lists::default();
    let mut users: BTreeMap<String, Lists> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (path, directory) in &items {
        let (lists, rel) = match in_home(path) {
            Some((user, rel)) => (users.entry(user).or_default(), rel),
            None => (&mut system, path.clone()),
        };
        match nix_string(&rel) {
            Some(s) if *directory => lists.directories.push(s),
            Some(s) => lists.files.push(s),
            None => skipped.push(crate::sanitize::escape(path).into_owned()),
        }
    }
    let option = match module {
        Module::Impermanence => "environment.persistence",
        Module::Preservation => "preservation.preserveAt",
    };
    let storage = nix_string(storage.as_bytes()).unwrap_or_else(|| "\"/persist\"".into());
    writeln!(out, "# Suggested by darlings from the audit of {}.", crate::sanitize::escape(&report.root))?;
    if items.is_empty() {
        writeln!(
            out,
            "# Nothing to suggest{}.",
            if all { "" } else { " (--suggest-all for every unclaimed subtree)" }
        )?;
    }
    for s in &skipped {
        writeln!(out, "# Not valid UTF-8, claim it by hand: {s}")?;
    }
    writeln!(out, "{option}.{storage} = {{")?;
    write_lists(out, &system, "  ")?;
    for (user, lists) in &users {
        writeln!(out, "  users.{user} = {{")?;
        write_lists(out, lists, "    ")?;
        writeln!(out, "  }};")?;
    }
    writeln!(out, "}};")
}

fn write_lists(out: &mut dyn Write, lists: &Lists, indent: &str) -> io::Result<()> {
    for (name, list) in [("directories", &lists.directories), ("files", &lists.files)] {
        if list.is_empty() {
            writeln!(out, "{indent}{name} = [ ];")?;
            continue;
        }
        writeln!(out, "{indent}{name} = [")?;
        for item in list {
            writeln!(out, "{indent}  {item}")?;
        }
        writeln!(out, "{indent}];")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_strings_escape_what_nix_would_read() {
        assert_eq!(nix_string(b"/a \"b\" ${c} $d \\e").as_deref(), Some(r#""/a \"b\" \${c} $d \\e""#));
        assert_eq!(nix_string(b"/caf\xe9"), None);
    }

    #[test]
    fn homes_become_users() {
        assert_eq!(in_home(b"/home/alice/.ssh"), Some(("alice".into(), b".ssh".to_vec())));
        assert_eq!(in_home(b"/root/.ssh"), Some(("root".into(), b".ssh".to_vec())));
        assert_eq!(in_home(b"/home/alice"), None);
        assert_eq!(in_home(b"/var/lib/x"), None);
    }
}
