//! The table fits the terminal it is printed on, and nothing else.
//!
//! The binary runs on a real pty (`script` from util-linux; `stty cols N`
//! sets the width it reads) at 80 and 120 columns and at width 0 (a pty
//! nobody sized), on a tree with wide, escaped and spaced names. On every
//! run: no line is wider than the terminal, no line ends in a space, every
//! finding is one line, and every path of the JSON report of the same tree
//! stands whole on its line. Off a terminal nothing is fitted at all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

use serde_json::Value;
use unicode_width::UnicodeWidthStr;

fn odd_tree() -> common::Tree {
    let t = common::Tree::new();
    t.file(b"/etc/machine-id", b"0123456789abcdef0123456789abcdef\n")
        .file(b"/etc/ssh/ssh_host_ed25519_key", &[b'k'; 400])
        .file(b"/var/log/journal/system.journal", &vec![b'j'; 100_000])
        .file("/srv/media library/日本語のファイル名.txt".as_bytes(), b"wide")
        .file(b"/srv/media library/tab\there.txt", b"t")
        .file(b"/srv/media library/new\nline.txt", b"n")
        .file(b"/srv/media library/\x1b[31mred.txt", b"r")
        .file(b"/srv/media library/caf\xe9 latin1.txt", b"l")
        .file(b"/srv/media library/back\\slash.txt", b"b")
        .file(b"/home/alice/notes with  two spaces.txt", b"notes")
        .file(b"/home/alice/.ssh/id_ed25519", b"secret")
        .file(b"/tmp/scratch", b"x");
    t
}

/// The rules of every run: a broken claim, a claim on nothing (listed
/// apart), an ignored tree; `--flat` for long paths.
const RULES: [&str; 7] =
    ["--flat", "--keep", "/etc/ssh", "--keep", "/var/lib/a claim naming nothing", "--ignore", "/tmp"];

fn args(t: &common::Tree) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["audit".into(), "--root".into(), t.root().into()];
    args.extend(RULES.iter().map(OsString::from));
    args
}

/// How the table shows a name (README: `\n`, `\t`, `\\`, `\xNN` for
/// other controls and bytes that are not UTF-8), for the names used here.
fn shown(path: &[u8]) -> String {
    let mut out = String::new();
    for chunk in path.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                '\x1b' => out.push_str("\\x1B"),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

fn quote(arg: &OsStr) -> String {
    format!("'{}'", String::from_utf8_lossy(arg.as_bytes()).replace('\'', r"'\''"))
}

/// Removes the colour codes (SGR: `ESC [ … m`) a terminal gets.
fn strip_sgr(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after.find('m').expect("an SGR sequence ends in m");
        assert!(after[..end].bytes().all(|b| b.is_ascii_digit() || b == b';'), "not SGR: {after:?}");
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// darlings ARGS on a pty `cols` wide (0: unsized), `COLUMNS` as given.
fn on_pty(cols: u16, args: &[OsString], columns: Option<&str>) -> String {
    let mut script = format!("stty cols {cols} rows 50 && exec {}", quote(OsStr::new(common::bin())));
    for a in args {
        script.push(' ');
        script.push_str(&quote(a));
    }
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &script, "/dev/null"])
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .stdin(Stdio::null());
    if let Some(c) = columns {
        cmd.env("COLUMNS", c);
    }
    let out = cmd.output().expect("run script");
    // Exit 3: the claim on /etc/ssh is broken.
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("the table is UTF-8 (names escaped)");
    strip_sgr(&text.replace("\r\n", "\n"))
}

fn report(t: &common::Tree) -> Value {
    let mut all = args(t);
    all.extend(["--format".into(), "json".into()]);
    common::parse_json(&common::run(all))
}

/// The row showing `path` whole in its column: after a gap, before a gap
/// or the end of the line.
fn row_of<'a>(rows: &[&'a str], path: &str) -> Option<&'a str> {
    let needle = format!("  {path}");
    rows.iter().copied().find(|row| {
        row.match_indices(&needle).any(|(at, m)| {
            let after = &row[at + m.len()..];
            after.is_empty() || after.starts_with("  ")
        })
    })
}

/// The checks every table must pass, at `width` when fitted.
fn check(table: &str, json: &Value, width: Option<usize>) {
    let lines: Vec<&str> = table.lines().collect();
    for line in &lines {
        assert!(!line.ends_with(' '), "a line ends in a space: {line:?}\n{table}");
        if let Some(width) = width {
            assert!(line.width() <= width, "wider than {width}: {line:?}\n{table}");
        }
    }
    // One line per finding, between the header and the first blank line.
    let rows: Vec<&str> = lines.iter().skip(1).take_while(|l| !l.is_empty()).copied().collect();
    let findings = json["findings"].as_array().expect("findings");
    assert_eq!(rows.len(), findings.len(), "one line per finding:\n{table}");
    for f in findings {
        let path = shown(&common::path_of(f, "path"));
        assert!(row_of(&rows, &path).is_some(), "{path:?} is not whole on a line:\n{table}");
    }
    for m in json["missing_claims"].as_array().expect("missing claims") {
        let path = shown(&common::path_of(m, "path"));
        assert!(lines.iter().any(|l| l.starts_with(&format!("  {path}"))), "{path:?}:\n{table}");
    }
}

#[test]
fn the_table_fits_a_terminal_of_80_and_120_columns() {
    require_tool!("script", "util-linux");
    let t = odd_tree();
    let json = report(&t);
    assert!(json["findings"].as_array().expect("findings").len() >= 12, "{json}");
    for cols in [80, 120] {
        let table = on_pty(cols, &args(&t), None);
        check(&table, &json, Some(usize::from(cols)));
        // The explanation and the least needed columns give way first.
        let header = table.lines().next().expect("a header");
        for column in ["VERDICT", "SEVERITY", "PATH", "SIZE"] {
            assert!(header.contains(column), "{cols}: no {column} in {header:?}");
        }
    }
    // At 120 the explanation is there, elided to fit, not wrapped.
    let table = on_pty(120, &args(&t), None);
    assert!(table.lines().next().is_some_and(|h| h.ends_with("  WHY")), "{table}");
    assert!(table.contains('…'), "{table}");
}

/// On a terminal too narrow for every total, the totals give way too
/// (the findings' paths stay whole, wider than the terminal if need be).
#[test]
fn the_totals_fit_a_narrow_terminal() {
    require_tool!("script", "util-linux");
    let t = odd_tree();
    let table = on_pty(40, &args(&t), None);
    let totals: Vec<&str> =
        table.lines().skip_while(|l| !l.starts_with("TOTAL")).take_while(|l| !l.is_empty()).collect();
    assert!(totals.len() > 1, "{table}");
    for line in &totals {
        assert!(line.width() <= 40, "wider than 40: {line:?}\n{table}");
    }
    assert!(totals[0].contains("SIZE"), "{table}");
}

#[test]
fn a_terminal_that_reports_no_width_gets_80_columns_or_columns() {
    require_tool!("script", "util-linux");
    let t = odd_tree();
    let json = report(&t);
    let table = on_pty(0, &args(&t), None);
    check(&table, &json, Some(80));
    assert!(table.lines().next().is_some_and(|h| h.starts_with("VERDICT ")), "{table}");
    // COLUMNS speaks for a terminal that does not.
    let table = on_pty(0, &args(&t), Some("100"));
    check(&table, &json, Some(100));
    assert!(table.lines().any(|l| l.width() > 80), "COLUMNS=100 was not used:\n{table}");
}

#[test]
fn off_a_terminal_lines_are_as_long_as_their_content() {
    let t = odd_tree();
    let json = report(&t);
    let mut all = args(&t);
    all.extend(["--format".into(), "table".into()]);
    let out = common::run(all);
    assert_eq!(common::code(&out), 3);
    let table = String::from_utf8(out.stdout).expect("utf-8");
    check(&table, &json, None);
    assert!(!table.contains('…'), "nothing elided:\n{table}");
    assert!(!table.contains('\x1b'), "no colour in a pipe:\n{table}");
    // Every explanation whole: the detail of each finding is on its line.
    for f in json["findings"].as_array().expect("findings") {
        if let Some(detail) = f["detail"].as_str() {
            let path = shown(&common::path_of(f, "path"));
            let rows: Vec<&str> = table.lines().collect();
            let row = row_of(&rows, &path).expect("a row");
            assert!(row.contains(&shown(detail.as_bytes())), "{row:?} lacks {detail:?}");
        }
    }
    assert!(table.lines().any(|l| l.width() > 120), "not fitted to any width:\n{table}");
}

#[test]
fn severity_has_its_own_column_and_why_has_no_empty_parts() {
    let t = odd_tree();
    let mut all = args(&t);
    all.extend(["--format".into(), "table".into()]);
    let table = String::from_utf8(common::run(all).stdout).expect("utf-8");
    let header = table.lines().next().expect("header");
    let (severity, why) = (header.find("SEVERITY").expect("SEVERITY"), header.find("WHY").expect("WHY"));
    // machine-id: a catalogue entry and a detail, but no rule.
    let row = table.lines().find(|l| l.contains("  /etc/machine-id  ")).expect("the machine-id row");
    assert_eq!(row.find("critical"), Some(severity), "{header}\n{row}");
    let text = &row[why..];
    assert!(text.starts_with("recreated at boot with a new machine id"), "{text:?}");
    assert!(text.contains("; machine identity"), "{text:?}");
    // No row's explanation has an empty part, nor repeats the severity.
    for row in table.lines().skip(1).take_while(|l| !l.is_empty()) {
        let text = row.get(why..).unwrap_or("");
        if text.is_empty() {
            continue;
        }
        assert!(text.split("; ").all(|part| !part.trim().is_empty()), "an empty part: {text:?}");
        assert!(!text.contains(";;") && !text.ends_with(';'), "{text:?}");
        for word in ["critical", "important", "info:"] {
            assert!(!text.contains(word), "the severity is in its column: {row:?}");
        }
    }
}
