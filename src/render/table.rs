//! `--format table`: the report for people.
//!
//! Rows are grouped by verdict, losses first (broken claims lead), each
//! section in path order; with `--sort size` the rows are simply largest
//! first, whatever their verdict. Every
//! file name goes through [`crate::sanitize::escape`], on a terminal or not.

use std::io::{self, Write};

use comfy_table::{Attribute, Cell, CellAlignment, Color, ContentArrangement, Table};

use super::{human_size, rfc3339};
use crate::config::Style;
use crate::report::Filter;
use crate::report::{Finding, Report, Verdict};
use crate::sanitize::escape;
use crate::sys::meta::Change;

/// Errors listed in full before "... and N more".
const MAX_ERRORS: usize = 20;

fn verdict_cell(f: &Finding, style: Style) -> Cell {
    let mut text = f.verdict.name().to_owned();
    if f.accepted {
        text.push_str(" (accepted)");
    }
    if f.unverified {
        text.push_str(" (unverified)");
    }
    let cell = Cell::new(text);
    if !style.color {
        return cell;
    }
    match f.verdict {
        Verdict::Broken => cell.fg(Color::Red).add_attribute(Attribute::Bold),
        Verdict::Unclaimed | Verdict::Shadowed => cell.fg(Color::Yellow),
        Verdict::NewIdentity => cell.fg(Color::Magenta),
        Verdict::Kept | Verdict::Recreated | Verdict::Restored => cell.fg(Color::Green),
        Verdict::Ignored | Verdict::Structure => cell.fg(Color::DarkGrey),
    }
}

fn why(f: &Finding) -> String {
    let mut out = String::new();
    if let Some(p) = &f.precious {
        out = format!("{}: {} ({})", p.severity.name(), p.reason, p.pattern);
        if f.rule.is_some() || f.detail.is_some() {
            out.push_str("; ");
        }
    }
    if let Some(rule) = &f.rule {
        out.push_str(&format!("{} {} ({})", rule.kind.name(), rule.pattern, rule.origin));
        if let Some(reason) = &rule.reason {
            out.push_str(": ");
            out.push_str(reason);
        }
    }
    if let Some(detail) = &f.detail {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(detail);
    }
    let mut out = escape(out.as_bytes()).into_owned();
    if let Some(old) = &f.renamed_from {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str("renamed from ");
        out.push_str(&escape(old));
    }
    out
}

fn new_table(style: Style, header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    if style.color {
        table.enforce_styling();
    }
    table.set_content_arrangement(if style.fit {
        ContentArrangement::Dynamic
    } else {
        ContentArrangement::Disabled
    });
    let header: Vec<Cell> = header
        .iter()
        .map(|h| if style.color { Cell::new(h).add_attribute(Attribute::Bold) } else { Cell::new(h) })
        .collect();
    table.set_header(header);
    table
}

fn right(table: &mut Table, columns: &[usize]) {
    for &i in columns {
        if let Some(c) = table.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

pub fn render(out: &mut dyn Write, report: &Report, filter: &Filter, style: Style) -> io::Result<()> {
    let mut shown: Vec<&Finding> = filter.shown(report).collect();
    // Stable: by verdict, losses first; critical state first inside each.
    if style.by_verdict {
        shown.sort_by_key(|f| (f.verdict, std::cmp::Reverse(f.severity())));
    }

    if shown.is_empty() {
        writeln!(out, "No findings to show.")?;
    } else {
        // Sources that compare with the blank state say how each path changed.
        let changes = shown.iter().any(|f| f.change != Change::Present);
        let mut header = vec!["VERDICT", "PATH", "TYPE", "ENTRIES", "SIZE", "NEWEST (UTC)", "RULE / WHY"];
        if changes {
            header.insert(2, "CHANGE");
        }
        let mut table = new_table(style, &header);
        for f in &shown {
            let newest = f.mtime.or(f.ctime);
            let mut row = vec![
                verdict_cell(f, style),
                Cell::new(escape(&f.path)),
                Cell::new(f.kind.name()),
                Cell::new(f.entries.map_or(String::new(), |e| e.to_string())),
                Cell::new(f.size.map_or(String::new(), human_size)),
                Cell::new(newest.map_or(String::new(), |t| {
                    rfc3339(t).replace('T', " ").trim_end_matches('Z').to_owned()
                })),
                Cell::new(why(f)),
            ];
            if changes {
                row.insert(2, Cell::new(f.change.name()));
            }
            table.add_row(row);
        }
        right(&mut table, if changes { &[4, 5] } else { &[3, 4] });
        writeln!(out, "{table}")?;
    }

    writeln!(out)?;
    let mut totals = new_table(style, &["TOTAL", "FINDINGS", "ENTRIES", "SIZE", "ON DISK"]);
    for (verdict, t) in &report.totals {
        if t.findings == 0 {
            continue;
        }
        totals.add_row(vec![
            Cell::new(verdict.name()),
            Cell::new(t.findings),
            Cell::new(t.entries),
            Cell::new(human_size(t.bytes)),
            Cell::new(human_size(t.disk)),
        ]);
    }
    right(&mut totals, &[1, 2, 3, 4]);
    writeln!(out, "{totals}")?;

    if !report.missing_claims.is_empty() {
        writeln!(out, "\nClaimed paths that do not exist (nothing to lose there):")?;
        for m in &report.missing_claims {
            writeln!(
                out,
                "  {}  ({} {} from {})",
                escape(&m.path),
                m.rule.kind.name(),
                escape(m.rule.pattern.as_bytes()),
                escape(m.rule.origin.as_bytes())
            )?;
        }
    }
    if !report.errors.is_empty() {
        let n = report.errors.len();
        let what = if n == 1 { "entry" } else { "entries" };
        writeln!(out, "\nThe audit is incomplete: {n} {what} could not be read:")?;
        for e in report.errors.iter().take(MAX_ERRORS) {
            writeln!(out, "  {} {}: {}", e.operation, escape(&e.path), e.message)?;
        }
        if report.errors.len() > MAX_ERRORS {
            writeln!(
                out,
                "  ... and {} more (--format json lists them all)",
                report.errors.len() - MAX_ERRORS
            )?;
        }
    }
    for note in report.notes() {
        writeln!(out, "\nNote: {}", escape(note.as_bytes()))?;
    }
    writeln!(out, "\n{}", summary(report))
}

/// One sentence: what the next boot erases.
pub fn summary(report: &Report) -> String {
    let loss = report.totals.loss();
    let (entries, bytes, findings) = (loss.entries, loss.bytes, loss.findings);
    let broken = report.totals.get(&Verdict::Broken).map_or(0, |t| t.findings);
    let mut s = if findings == 0 {
        "Nothing on this root will be lost at the next boot.".to_owned()
    } else {
        format!(
            "The next boot erases {entries} entries ({}) in {findings} finding{}.",
            human_size(bytes),
            if findings == 1 { "" } else { "s" }
        )
    };
    if broken > 0 {
        s.push_str(&format!(" {broken} claim{} broken.", if broken == 1 { " is" } else { "s are" }));
    }
    let accepted = report.findings.iter().filter(|f| f.accepted).count();
    if accepted > 0 {
        s.push_str(&format!(" {accepted} accepted."));
    }
    s
}
