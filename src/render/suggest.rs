//! `--suggest nix|preservation`: a ready-to-paste NixOS block that claims
//! the state the audit found unclaimed.
//!
//! By default the block names what the catalogue says matters (important
//! and critical findings, by the path a claim would name: `/var/lib/bluetooth`
//! for a grouped `/var`); `--suggest-all` adds every other unclaimed subtree.
//! Never suggested: what lies in a place no system keeps
//! ([`knowledge::VOLATILE`]: `/tmp`, `/run`, …) or a directory that holds
//! one (`/var` holding `/var/run`: what else it holds is suggested
//! instead), and what is not a file, a directory or a symlink (FIFOs,
//! sockets and devices are made anew by whatever uses them). Content of `/home/USER` and `/root` goes under
//! `users.USER`, relative to the home.
//!
//! Names go into Nix strings exactly. Nix strings escape only `\n`, `\r`,
//! `\t`, `\\`, `\"` and `\${`; any other control or invisible character
//! (ESC, BEL, DEL, C1, bidi, zero-width) would be written raw and reach the
//! terminal that shows the snippet, so such a name is written as
//! `(builtins.fromJSON ''"…\u001b…"'')`, JSON's `\uXXXX` escapes inside a
//! Nix indented string: the same string once evaluated, and plain text on a
//! screen. Names that are not UTF-8 (JSON cannot carry them) are listed in
//! a comment instead.
//!
//! For preservation the block also enables the module, and files systemd
//! reads before the initrd hands over ([`knowledge::READ_IN_INITRD`]:
//! `/etc/machine-id`) are set up in the initrd (`inInitrd = true`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::config::Module;
use crate::knowledge;
use crate::report::Severity;
use crate::report::{Report, Verdict};
use crate::sanitize::{escape, unsafe_char};
use crate::sys::meta::FileKind;
use crate::sys::path::is_ancestor_or_self;

/// What to keep: (path, is a directory), and whether something unclaimed
/// was left out as volatile or not a file, directory or symlink.
pub fn items(report: &Report, all: bool) -> (Vec<(Vec<u8>, bool)>, bool) {
    let mut items: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut left_out = false;
    // Volatile paths seen (with --flat): a directory holding one is not
    // suggested whole, its other content is.
    let mut volatile = Vec::new();
    for f in &report.findings {
        if !matches!(f.verdict, Verdict::Unclaimed | Verdict::NewIdentity) {
            continue;
        }
        let item = match (&f.precious, &f.keep_path) {
            (Some(p), Some(at)) if all || p.severity >= Severity::Important => (at.clone(), p.directory),
            _ if all => (f.path.clone(), f.kind == FileKind::Dir),
            _ => continue,
        };
        let plain = matches!(f.kind, FileKind::File | FileKind::Dir | FileKind::Symlink);
        if knowledge::volatile(&item.0) {
            volatile.push(item.0);
            left_out = true;
        } else if !plain {
            left_out = true;
        } else {
            items.push(item);
        }
    }
    items.retain(|(p, _)| !volatile.iter().any(|v| is_ancestor_or_self(p, v)));
    items.sort();
    items.dedup();
    // A path inside a suggested directory is kept with it.
    let dirs: Vec<Vec<u8>> = items.iter().filter(|(_, d)| *d).map(|(p, _)| p.clone()).collect();
    items.retain(|(p, _)| !dirs.iter().any(|d| d != p && is_ancestor_or_self(d, p)));
    (items, left_out)
}

/// A Nix expression for the string `bytes` that holds no raw control or
/// invisible character: a string literal, or `builtins.fromJSON` of an
/// indented string when a character needs JSON's `\uXXXX`. `None` for
/// bytes that are not UTF-8.
fn nix_string(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.chars().any(|c| unsafe_char(c) && !matches!(c, '\n' | '\r' | '\t')) {
        return Some(from_json(text));
    }
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

/// `(builtins.fromJSON ''"…"'')`: the JSON string of `text` with every
/// control and invisible character as `\uXXXX`, and `'` and `$` too, so
/// that the indented string around it holds neither `''` nor `${`.
fn from_json(text: &str) -> String {
    let mut out = String::from("(builtins.fromJSON ''\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if unsafe_char(c) || c == '\'' || c == '$' => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push_str("\"'')");
    out
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

/// The entries of one list: each a Nix expression, with a comment line
/// before it when it needs one.
#[derive(Default)]
struct Lists {
    directories: Vec<(Option<String>, String)>,
    files: Vec<(Option<String>, String)>,
}

pub fn render(
    out: &mut dyn Write,
    report: &Report,
    module: Module,
    all: bool,
    storage: &str,
) -> io::Result<()> {
    let (items, left_out) = items(report, all);
    let mut system = Lists::default();
    let mut users: BTreeMap<String, Lists> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (path, directory) in &items {
        let (lists, rel) = match in_home(path) {
            Some((user, rel)) => (users.entry(user).or_default(), rel),
            None => (&mut system, path.clone()),
        };
        let Some(s) = nix_string(&rel) else {
            skipped.push(escape(path).into_owned());
            continue;
        };
        let comment = s
            .starts_with('(')
            .then(|| format!("# {}: control or invisible characters, as JSON escapes", escape(path)));
        let initrd = module == Module::Preservation
            && !*directory
            && knowledge::READ_IN_INITRD.iter().any(|p| p.as_bytes() == &path[..]);
        match (*directory, initrd) {
            (true, _) => lists.directories.push((comment, s)),
            (false, true) => lists.files.push((comment, format!("{{ file = {s}; inInitrd = true; }}"))),
            (false, false) => lists.files.push((comment, s)),
        }
    }
    let storage = nix_string(storage.as_bytes()).unwrap_or_else(|| "\"/persist\"".into());
    writeln!(out, "# Suggested by darlings from the audit of {}.", escape(&report.root))?;
    if items.is_empty() {
        writeln!(
            out,
            "# Nothing to suggest{}.",
            if all { "" } else { " (--suggest-all for every unclaimed subtree)" }
        )?;
    }
    if left_out {
        writeln!(
            out,
            "# Left out: what lies in {} (no system keeps it), FIFOs, sockets and devices.",
            knowledge::VOLATILE.join(", ")
        )?;
    }
    for s in &skipped {
        writeln!(out, "# Not valid UTF-8, claim it by hand: {s}")?;
    }
    let option = match module {
        Module::Impermanence => "environment.persistence",
        Module::Preservation => {
            // The module does nothing until it is enabled.
            writeln!(out, "preservation.enable = true;")?;
            "preservation.preserveAt"
        }
    };
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
        for (comment, item) in list {
            if let Some(comment) = comment {
                writeln!(out, "{indent}  {comment}")?;
            }
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
        assert_eq!(nix_string(b"/new\nline").as_deref(), Some(r#""/new\nline""#));
    }

    #[test]
    fn controls_nix_cannot_escape_become_json_escapes() {
        assert_eq!(
            nix_string("/a\u{1b}[2J \u{202e}'' ${x}\n\\\"".as_bytes()).as_deref(),
            Some(r#"(builtins.fromJSON ''"/a\u001b[2J \u202e\u0027\u0027 \u0024{x}\u000a\\\""'')"#)
        );
    }

    #[test]
    fn homes_become_users() {
        assert_eq!(in_home(b"/home/alice/.ssh"), Some(("alice".into(), b".ssh".to_vec())));
        assert_eq!(in_home(b"/root/.ssh"), Some(("root".into(), b".ssh".to_vec())));
        assert_eq!(in_home(b"/home/alice"), None);
        assert_eq!(in_home(b"/var/lib/x"), None);
    }
}
