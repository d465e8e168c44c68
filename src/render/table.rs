//! `--format table`: the report for people.
//!
//! Rows are grouped by verdict, losses first (broken claims lead), critical
//! state first inside each, then in path order; with `--sort size` the rows
//! are simply largest first, whatever their verdict. Every file name goes
//! through [`crate::sanitize::escape`], on a terminal or not.
//!
//! On a terminal the table fits its width (see `layout`): the WHY column is
//! elided first (the full text is in JSON and `explain`), then the least
//! needed columns are dropped; a path is never cut. Off a terminal lines are
//! as long as their content. No line ends in a space.

mod layout;

use std::io::{self, Write};

use layout::{Cell, Column, Fit, Grid};

use super::{human_size, rfc3339};
use crate::config::Style;
use crate::report::Filter;
use crate::report::{Finding, Report, Severity, Verdict};
use crate::sanitize::escape;
use crate::sys::meta::Change;

/// Errors listed in full before "... and N more".
const MAX_ERRORS: usize = 20;

fn verdict_cell(f: &Finding) -> Cell {
    let mut text = f.verdict.name().to_owned();
    if f.accepted {
        text.push_str(" (accepted)");
    }
    if f.unverified {
        text.push_str(" (unverified)");
    }
    let sgr = match f.verdict {
        Verdict::Broken => "1;31",
        Verdict::Unclaimed | Verdict::Shadowed => "33",
        Verdict::NewIdentity => "35",
        Verdict::Kept | Verdict::Recreated | Verdict::Restored => "32",
        Verdict::Ignored | Verdict::Structure => "90",
    };
    Cell::styled(text, Some(sgr))
}

fn severity_cell(f: &Finding) -> Cell {
    match f.severity() {
        Some(s) => Cell::styled(
            s.name(),
            match s {
                Severity::Critical => Some("1;31"),
                Severity::Important => Some("33"),
                Severity::Info => None,
            },
        ),
        None => Cell::default(),
    }
}

/// Why this verdict, the most telling part first, since a narrow terminal
/// cuts the end: the finding's own detail ("plain content on the ephemeral
/// root"), the rule that decided (for darlings' own knowledge, which the
/// detail already says, only the file it was read from), the catalogue's
/// reason, a rename.
/// Severity has a column of its own; empty parts are left out.
fn why(f: &Finding) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(detail) = &f.detail {
        parts.push(detail.clone());
    }
    // Knowledge says itself in the detail ("recreated by NixOS activation"):
    // only a file it was read from is added (JSON and explain have it all).
    let knowledge = f.rule.as_ref().filter(|r| r.is_knowledge() && f.detail.is_some());
    if let Some(rule) = knowledge {
        if !rule.is_built_in() {
            parts.push(format!("from {}", rule.origin));
        }
    } else if let Some(rule) = &f.rule {
        let mut s = format!("{} {} ({})", rule.kind.name(), rule.pattern, rule.origin);
        if let Some(reason) = rule.reason.as_deref().filter(|r| !r.trim().is_empty()) {
            s.push_str(": ");
            s.push_str(reason);
        }
        parts.push(s);
    }
    if let Some(p) = &f.precious {
        parts.push(if p.reason.trim().is_empty() {
            p.pattern.clone()
        } else {
            format!("{} ({})", p.reason, p.pattern)
        });
    }
    let mut parts: Vec<String> =
        parts.iter().map(|p| escape(p.trim().as_bytes()).into_owned()).filter(|p| !p.is_empty()).collect();
    if let Some(old) = &f.renamed_from {
        parts.push(format!("renamed from {}", escape(old)));
    }
    parts.join("; ")
}

fn write_lines(out: &mut dyn Write, lines: &[String]) -> io::Result<()> {
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Prose, wrapped at spaces to the terminal's width.
fn write_prose(out: &mut dyn Write, text: &str, style: Style) -> io::Result<()> {
    write_lines(out, &layout::wrap(text, style.width))
}

/// The findings' columns: SEVERITY when the catalogue gave any a
/// severity, CHANGE when the source compares with the blank state.
struct FindingColumns {
    severities: bool,
    changes: bool,
}

impl FindingColumns {
    fn of(shown: &[&Finding]) -> FindingColumns {
        FindingColumns {
            severities: shown.iter().any(|f| f.severity().is_some()),
            changes: shown.iter().any(|f| f.change != Change::Present),
        }
    }

    fn grid(&self, style: Style) -> Grid {
        let mut columns = vec![Column::new("VERDICT", Fit::Keep)];
        if self.severities {
            columns.push(Column::new("SEVERITY", Fit::Drop(5)));
        }
        columns.push(Column::new("PATH", Fit::Keep));
        if self.changes {
            columns.push(Column::new("CHANGE", Fit::Drop(2)));
        }
        columns.extend([
            Column::new("TYPE", Fit::Drop(1)),
            Column::right("ENTRIES", Fit::Drop(3)),
            Column::right("SIZE", Fit::Drop(6)),
            Column::new("NEWEST (UTC)", Fit::Drop(0)),
            Column::new("WHY", Fit::Elide(4)),
        ]);
        Grid::new(columns, style.color)
    }

    /// One finding's cells, made when its line is measured or written.
    fn row(&self, f: &Finding) -> Vec<Cell> {
        let newest = f.mtime.or(f.ctime);
        let mut row = vec![verdict_cell(f)];
        if self.severities {
            row.push(severity_cell(f));
        }
        row.push(Cell::new(escape(&f.path)));
        if self.changes {
            row.push(Cell::new(f.change.name()));
        }
        row.extend([
            Cell::new(f.kind.name()),
            Cell::new(f.entries.map_or(String::new(), |e| e.to_string())),
            Cell::new(f.size.map_or(String::new(), human_size)),
            Cell::new(newest.map_or(String::new(), |t| match rfc3339(t) {
                Some(text) => text.replace('T', " ").trim_end_matches('Z').to_owned(),
                None => "out of range".to_owned(),
            })),
            Cell::new(why(f)),
        ]);
        row
    }
}

fn totals_grid(report: &Report, style: Style) -> Grid {
    let mut grid = Grid::new(
        vec![
            // On a narrow terminal the bytes on disk go first, then the
            // entries, then the findings: the verdict and its size stay.
            Column::new("TOTAL", Fit::Keep),
            Column::right("FINDINGS", Fit::Drop(2)),
            Column::right("ENTRIES", Fit::Drop(1)),
            Column::right("SIZE", Fit::Keep),
            Column::right("ON DISK", Fit::Drop(0)),
        ],
        style.color,
    );
    for (verdict, t) in &report.totals {
        if t.findings == 0 {
            continue;
        }
        grid.rows.push(vec![
            Cell::new(verdict.name()),
            Cell::new(t.findings.to_string()),
            Cell::new(t.entries.to_string()),
            Cell::new(super::total_sizes(t).0),
            Cell::new(super::total_sizes(t).1),
        ]);
    }
    grid
}

/// An indented list without a header: a path, then what about it.
fn list_grid(rows: Vec<[String; 2]>, style: Style) -> Grid {
    let mut grid = Grid::new(vec![Column::new("", Fit::Keep), Column::new("", Fit::Elide(0))], style.color);
    grid.header = false;
    grid.indent = 2;
    grid.rows = rows.into_iter().map(|r| r.map(Cell::new).into()).collect();
    grid
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
        let columns = FindingColumns::of(&shown);
        columns.grid(style).write(out, style.width, || shown.iter().map(|f| columns.row(f)))?;
    }

    writeln!(out)?;
    write_lines(out, &totals_grid(report, style).lines(style.width))?;

    if !report.missing_claims.is_empty() {
        writeln!(out)?;
        write_prose(out, "Claimed paths that do not exist (nothing to lose there):", style)?;
        let rows = report
            .missing_claims
            .iter()
            .map(|m| {
                [
                    escape(&m.path).into_owned(),
                    format!(
                        "{} {} from {}",
                        m.rule.kind.name(),
                        escape(m.rule.pattern.as_bytes()),
                        escape(m.rule.origin.as_bytes())
                    ),
                ]
            })
            .collect();
        write_lines(out, &list_grid(rows, style).lines(style.width))?;
    }
    if !report.errors.is_empty() {
        let n = report.errors.len();
        let what = if n == 1 { "entry" } else { "entries" };
        writeln!(out)?;
        write_prose(out, &format!("The audit is incomplete: {n} {what} could not be read:"), style)?;
        let rows = report
            .errors
            .iter()
            .take(MAX_ERRORS)
            .map(|e| {
                [escape(&e.path).into_owned(), format!("{}: {}", e.operation, escape(e.message.as_bytes()))]
            })
            .collect();
        write_lines(out, &list_grid(rows, style).lines(style.width))?;
        if n > MAX_ERRORS {
            write_prose(
                out,
                &format!("  ... and {} more (--format json lists them all)", n - MAX_ERRORS),
                style,
            )?;
        }
    }
    for note in report.notes() {
        writeln!(out)?;
        write_prose(out, &format!("Note: {}", escape(note.as_bytes())), style)?;
    }
    writeln!(out)?;
    write_prose(out, &summary(report), style)
}

/// `1 entry`, `2 entries`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The closing sentences: what the next boot erases, or for `stray`, what
/// lies in the storage roots undeclared.
pub fn summary(report: &Report) -> String {
    let loss = report.totals.loss();
    let what = format!(
        "{} ({}) in {}",
        count(loss.entries, "entry", "entries"),
        super::total_size_words(loss),
        count(loss.findings, "finding", "findings")
    );
    let mut s = if report.source == Report::STRAY {
        // Storage roots survive the boot: what is there is not lost, only
        // forgotten.
        if loss.findings == 0 {
            "Nothing stray: the storage roots hold only what the claims declare.".to_owned()
        } else {
            format!(
                "Stray: {what} in the storage roots, declared by no claim. It survives the boot, \
                 but no claim mounts or links it into the system any more: declare it again, \
                 or delete it once you are sure nothing needs it."
            )
        }
    } else if !report.ephemeral {
        // The root does not look erased at boot (see the notes): say what
        // erasing it would lose, not that the next boot will.
        if loss.findings == 0 {
            "Nothing on this root would be lost if it were erased.".to_owned()
        } else {
            format!("Erasing this root would lose {what}; it does not look erased at boot (see the note).")
        }
    } else if loss.findings == 0 {
        "Nothing on this root will be lost at the next boot.".to_owned()
    } else {
        format!("The next boot erases {what}.")
    };
    let broken = report.totals.get(&Verdict::Broken).map_or(0, |t| t.findings);
    if broken > 0 {
        s.push_str(&format!(" {broken} claim{} broken.", if broken == 1 { " is" } else { "s are" }));
    }
    let accepted = report.findings.iter().filter(|f| f.accepted).count();
    if accepted > 0 {
        s.push_str(&format!(" {accepted} accepted."));
    }
    s
}
