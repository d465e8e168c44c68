//! Columns laid out by their content, fitted to a terminal or not at all.
//!
//! Column widths are the widths of their widest cell (terminal columns, so
//! wide and combining characters count right). Off a terminal nothing is
//! fitted: each line is as long as its content. On a terminal of `width`
//! columns, while the table is too wide:
//!
//! 1. the elastic column (the explanation) is elided with `…`, down to
//!    [`ELASTIC_FLOOR`] columns;
//! 2. then columns give way by rank, lowest first: an optional column is
//!    dropped; at its own rank the elastic column shrinks further, down to
//!    [`ELASTIC_MIN`], or goes.
//!
//! The columns that are kept (the verdict, the path) are never cut: a path
//! wider than the terminal overflows its line rather than being broken in
//! two, and one wider than [`ALIGN_MAX`] columns overflows its cell (the
//! others are not padded to it). No line ends in a space: padding is
//! written only before more text.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Spaces between columns.
const GAP: usize = 2;

/// The widest a kept column is padded to. A longer cell (a path deeper
/// than any real one) overflows its line instead: one such path must not
/// pad every other line of the report to its length.
const ALIGN_MAX: usize = 4096;

/// What the explanation keeps before any other column gives way.
const ELASTIC_FLOOR: usize = 20;

/// Narrower than this, the explanation says nothing: it goes.
const ELASTIC_MIN: usize = 10;

/// How a column gives way to a narrow terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Always shown in full.
    Keep,
    /// Dropped when the table does not fit; the lowest rank goes first.
    Drop(u8),
    /// Elided with `…` before anything else gives way (at most one column);
    /// shrinks further or goes at its rank.
    Elide(u8),
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    /// Right-aligned (numbers, sizes).
    pub right: bool,
    pub fit: Fit,
}

impl Column {
    pub const fn new(header: &'static str, fit: Fit) -> Column {
        Column { header, right: false, fit }
    }

    pub const fn right(header: &'static str, fit: Fit) -> Column {
        Column { header, right: true, fit }
    }
}

/// One cell: its text (already escaped for a terminal) and an SGR colour.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub text: String,
    /// `1;31` for bold red; used only when the grid is coloured.
    pub sgr: Option<&'static str>,
}

impl Cell {
    pub fn new(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), sgr: None }
    }

    pub fn styled(text: impl Into<String>, sgr: Option<&'static str>) -> Cell {
        Cell { text: text.into(), sgr }
    }
}

#[derive(Debug, Clone)]
pub struct Grid {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// Print a header line of the column names.
    pub header: bool,
    /// Spaces before every line.
    pub indent: usize,
    pub color: bool,
}

impl Grid {
    pub fn new(columns: Vec<Column>, color: bool) -> Grid {
        Grid { columns, rows: Vec::new(), header: true, indent: 0, color }
    }

    /// The lines, without newlines, fitted to `width` when given.
    pub fn lines(&self, width: Option<usize>) -> Vec<String> {
        let widths = self.widths(width, self.rows.iter().map(Vec::as_slice));
        let mut lines = Vec::with_capacity(self.rows.len() + 1);
        lines.extend(self.header_line(&widths));
        lines.extend(self.rows.iter().map(|row| self.line(row, &widths)));
        lines
    }

    /// Writes the lines of the rows `rows` makes (the grid's own are not
    /// used), fitted to `width` when given. `rows` is called twice, to
    /// measure and to write: no cell and no line is kept for the whole
    /// table, so a report of long paths costs one line of memory.
    pub fn write<I: Iterator<Item = Vec<Cell>>>(
        &self,
        out: &mut dyn io::Write,
        width: Option<usize>,
        rows: impl Fn() -> I,
    ) -> io::Result<()> {
        let widths = self.widths(width, rows());
        if let Some(line) = self.header_line(&widths) {
            writeln!(out, "{line}")?;
        }
        for row in rows() {
            writeln!(out, "{}", self.line(&row, &widths))?;
        }
        Ok(())
    }

    /// Each column's width (`None`: dropped) for these rows: the widest
    /// cell, a kept column no wider than [`ALIGN_MAX`], then fitted.
    fn widths<R: std::borrow::Borrow<[Cell]>>(
        &self,
        width: Option<usize>,
        rows: impl Iterator<Item = R>,
    ) -> Vec<Option<usize>> {
        let mut natural: Vec<usize> =
            self.columns.iter().map(|c| if self.header { c.header.width() } else { 0 }).collect();
        for row in rows {
            for (n, cell) in natural.iter_mut().zip(row.borrow()) {
                *n = (*n).max(cell.text.width());
            }
        }
        for (n, c) in natural.iter_mut().zip(&self.columns) {
            if c.fit == Fit::Keep {
                *n = (*n).min(ALIGN_MAX);
            }
        }
        let fits: Vec<Fit> = self.columns.iter().map(|c| c.fit).collect();
        fit(&fits, &natural, width.map(|w| w.saturating_sub(self.indent)))
    }

    fn header_line(&self, widths: &[Option<usize>]) -> Option<String> {
        self.header.then(|| {
            let header: Vec<Cell> = self.columns.iter().map(|c| Cell::styled(c.header, Some("1"))).collect();
            self.line(&header, widths)
        })
    }

    fn line(&self, row: &[Cell], widths: &[Option<usize>]) -> String {
        let mut out = " ".repeat(self.indent);
        // Spaces owed before the next text (a cell's own trailing spaces
        // too): never written at the end of a line.
        let mut pending = 0;
        let mut first = true;
        for (i, (column, width)) in self.columns.iter().zip(widths).enumerate() {
            let Some(width) = *width else { continue };
            if !first {
                pending += GAP;
            }
            first = false;
            // A kept column is never cut: a cell wider than it overflows.
            let text = row.get(i).map_or(Cow::Borrowed(""), |cell| match column.fit {
                Fit::Keep => Cow::Borrowed(cell.text.as_str()),
                _ => elide(&cell.text, width),
            });
            let pad = width.saturating_sub(text.width());
            if column.right {
                pending += pad;
            }
            let body = text.trim_end_matches(' ');
            if !body.is_empty() {
                out.extend(std::iter::repeat_n(' ', pending));
                pending = 0;
                match row.get(i).and_then(|cell| cell.sgr).filter(|_| self.color) {
                    Some(sgr) => {
                        let _ = write!(out, "\x1b[{sgr}m{body}\x1b[0m");
                    }
                    None => out.push_str(body),
                }
            }
            pending += text.len() - body.len();
            if !column.right {
                pending += pad;
            }
        }
        out
    }
}

/// Each column's width, or `None` where it is dropped (see the module doc).
fn fit(fits: &[Fit], natural: &[usize], width: Option<usize>) -> Vec<Option<usize>> {
    let mut widths: Vec<Option<usize>> = natural.iter().copied().map(Some).collect();
    let Some(width) = width else { return widths };
    let total = |widths: &[Option<usize>]| {
        let (sum, n) = widths.iter().flatten().fold((0, 0usize), |(sum, n), w| (sum + w, n + 1));
        sum + GAP * n.saturating_sub(1)
    };
    // What column `e` would have with the others as they are.
    let room = |widths: &[Option<usize>], e: usize| {
        let mut others = widths.to_vec();
        others[e] = None;
        let used = total(&others);
        width.saturating_sub(used + if used > 0 { GAP } else { 0 })
    };
    let elastic = fits.iter().position(|f| matches!(f, Fit::Elide(_)));
    let mut ranked: Vec<(u8, usize)> = fits
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match f {
            Fit::Drop(rank) | Fit::Elide(rank) => Some((*rank, i)),
            Fit::Keep => None,
        })
        .collect();
    ranked.sort_unstable();
    let mut ranked = ranked.into_iter().map(|(_, i)| i);
    loop {
        if total(&widths) <= width {
            return widths;
        }
        if let Some(e) = elastic.filter(|&e| widths[e].is_some()) {
            let room = room(&widths, e);
            if room >= ELASTIC_FLOOR.min(natural[e]) {
                widths[e] = Some(room);
                return widths;
            }
        }
        match ranked.next() {
            Some(e) if Some(e) == elastic => {
                let room = room(&widths, e);
                if room >= ELASTIC_MIN.min(natural[e]) {
                    widths[e] = Some(room);
                    return widths;
                }
                widths[e] = None;
            }
            Some(i) => widths[i] = None,
            None => return widths,
        }
    }
}

/// `text` cut to `width` columns, ending in `…` when cut.
fn elide(text: &str, width: usize) -> Cow<'_, str> {
    if text.width() <= width {
        return Cow::Borrowed(text);
    }
    if width == 0 {
        return Cow::Borrowed("");
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    // Character widths may not add up to the string's (emoji sequences).
    while out.width() > width - 1 {
        out.pop();
    }
    let kept = out.trim_end_matches(' ').len();
    out.truncate(kept);
    out.push('…');
    Cow::Owned(out)
}

/// Prose wrapped at spaces to `width` (a word wider than that gets a line
/// of its own); one line when `width` is `None`.
pub fn wrap(text: &str, width: Option<usize>) -> Vec<String> {
    let Some(width) = width else { return vec![text.trim_end_matches(' ').to_owned()] };
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !line.is_empty() && line.width() + 1 + word.width() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: &[&[&str]]) -> Grid {
        let mut g = Grid::new(
            vec![
                Column::new("VERDICT", Fit::Keep),
                Column::new("PATH", Fit::Keep),
                Column::right("SIZE", Fit::Drop(2)),
                Column::new("NEWEST", Fit::Drop(0)),
                Column::new("WHY", Fit::Elide(1)),
            ],
            false,
        );
        g.rows = rows.iter().map(|r| r.iter().map(|t| Cell::new(*t)).collect()).collect();
        g
    }

    fn rows() -> Grid {
        grid(&[
            &[
                "broken",
                "/etc/ssh",
                "404 B",
                "2026-11-26 14:52:07",
                "keep /etc/ssh (--keep); plain content on the ephemeral root",
            ],
            &["kept", "/var/lib/nixos", "", "", ""],
            &[
                "unclaimed",
                "/home/alice/日本語 notes",
                "97.7 KiB",
                "2026-11-26 14:52:07",
                "Firefox profiles (/home/*/.mozilla)",
            ],
        ])
    }

    fn sp(n: usize) -> String {
        " ".repeat(n)
    }

    const TIME: &str = "2026-11-26 14:52:07";
    const WHY: &str = "keep /etc/ssh (--keep); plain content on the ephemeral root";

    #[test]
    fn off_a_terminal_lines_are_as_long_as_their_content() {
        // Widths: VERDICT 9, PATH 24 (日本語 is 6 columns), SIZE 8, NEWEST 19.
        let lines = rows().lines(None);
        assert_eq!(
            lines,
            [
                format!("VERDICT{}PATH{}SIZE  NEWEST{}WHY", sp(4), sp(26), sp(15)),
                format!("broken{}/etc/ssh{}404 B  {TIME}  {WHY}", sp(5), sp(21)),
                format!("kept{}/var/lib/nixos", sp(7)),
                format!("unclaimed  /home/alice/日本語 notes  97.7 KiB  {TIME}  Firefox profiles (/home/*/.mozilla)"),
            ]
        );
    }

    #[test]
    fn the_explanation_yields_first_then_columns_drop() {
        // Everything but WHY takes 9 + 24 + 8 + 19 + 3 gaps = 66: at 90,
        // WHY gets 90 - 66 - 2 = 22 columns, at least its floor of 20.
        let lines = rows().lines(Some(90));
        assert_eq!(
            lines[1],
            format!("broken{}/etc/ssh{}404 B  {TIME}  keep /etc/ssh (--keep…", sp(5), sp(21))
        );
        assert_eq!(lines[2], format!("kept{}/var/lib/nixos", sp(7)));
        // At 80 it would get 12: NEWEST (rank 0) goes, and WHY gets 80 - 47.
        let lines = rows().lines(Some(80));
        assert_eq!(lines[0], format!("VERDICT{}PATH{}SIZE  WHY", sp(4), sp(26)));
        assert_eq!(
            lines[1],
            format!("broken{}/etc/ssh{}404 B  keep /etc/ssh (--keep); plain co…", sp(5), sp(21))
        );
        // At 60 it would get 13: below its floor, so the next rank is its
        // own, and it shrinks to 13 before SIZE (rank 2) goes.
        let lines = rows().lines(Some(60));
        assert_eq!(lines[0], format!("VERDICT{}PATH{}SIZE  WHY", sp(4), sp(26)));
        assert_eq!(lines[1], format!("broken{}/etc/ssh{}404 B  keep /etc/ss…", sp(5), sp(21)));
        // At 40 it would get nothing: it goes, then SIZE. The path is
        // whole; at 30 it is wider than what is left, and overflows rather
        // than being cut.
        for width in [40, 30] {
            let lines = rows().lines(Some(width));
            assert_eq!(lines[0], format!("VERDICT{}PATH", sp(4)));
            assert_eq!(lines[3], "unclaimed  /home/alice/日本語 notes");
        }
        for width in [90, 80, 60, 40] {
            assert!(rows().lines(Some(width)).iter().all(|l| l.width() <= width), "{width}");
        }
    }

    #[test]
    fn no_line_ends_in_a_space() {
        let mut g = rows();
        g.rows.push(vec![
            Cell::new("ignored"),
            Cell::new("/trailing "),
            Cell::new(""),
            Cell::new(""),
            Cell::new("x  "),
        ]);
        for width in [None, Some(200), Some(80), Some(50), Some(10), Some(0)] {
            for line in g.lines(width) {
                assert!(!line.ends_with(' '), "{width:?}: {line:?}");
            }
        }
    }

    #[test]
    fn colour_wraps_the_text_not_the_padding() {
        let mut g = grid(&[]);
        g.color = true;
        g.rows.push(vec![Cell::styled("broken", Some("31")), Cell::new("/x"), Cell::new("1 B")]);
        let lines = g.lines(None);
        assert_eq!(lines[0], "\x1b[1mVERDICT\x1b[0m  \x1b[1mPATH\x1b[0m  \x1b[1mSIZE\x1b[0m  \x1b[1mNEWEST\x1b[0m  \x1b[1mWHY\x1b[0m");
        assert_eq!(lines[1], "\x1b[31mbroken\x1b[0m   /x     1 B");
    }

    #[test]
    fn elision_counts_terminal_columns() {
        assert_eq!(elide("abcdef", 6), "abcdef");
        assert_eq!(elide("abcdef", 4), "abc…");
        assert_eq!(elide("日本語です", 5), "日本…");
        assert_eq!(elide("ab cd", 4), "ab…", "no space before the ellipsis");
        assert_eq!(elide("abc", 0), "");
    }

    #[test]
    fn prose_wraps_at_spaces() {
        assert_eq!(wrap("aa bb cc", Some(5)), ["aa bb", "cc"]);
        assert_eq!(wrap("a /very/long/path b", Some(6)), ["a", "/very/long/path", "b"]);
        assert_eq!(wrap("aa bb cc ", None), ["aa bb cc"]);
    }
}
