//! `zfs diff -FHt` output: a pure, streaming line parser.
//!
//! Each line is `CTIME<TAB>CHANGE<TAB>TYPE<TAB>PATH` with, after the path,
//! a `<TAB>NEWPATH` for renames or a `<TAB>(+N)` / `(-N)` link-count change
//! on a modified non-directory. `CTIME` is `seconds.nanoseconds`, `CHANGE`
//! one of `+ - M R`, `TYPE` one letter of `B C / > | @ P = F ?`. Paths are
//! absolute under the dataset's mount point and escaped: every byte outside
//! `0x21..=0x7E`, and the backslash, is a backslash and octal digits.
//!
//! # Three or four digits
//!
//! Current OpenZFS writes four digits (`\0040` for a space); some older
//! releases wrote three (`\040`). The width is decided once per run, from
//! the first line that has an escape, and kept: three when that line shows
//! an escape that four digits cannot explain (a first digit other than `0`,
//! fewer than three octal digits after a `\0`, a value above `0377`), four
//! otherwise. A later line that contradicts the decision is an error rather
//! than a silently mangled path. Lines with no escape read the same either way.
//!
//! # What a path may hold
//!
//! zfs writes every byte outside `0x21..=0x7E` escaped, so a raw one (a
//! space, a NUL, the `\r` of a file with CRLF line ends) means the text was
//! not written by `zfs diff` and is refused. A decoded path is absolute and
//! has no empty, `.` or `..` component; one trailing `/` is allowed (zfs
//! prints the dataset's root as `/mnt/`; [`super::zfs::relative_to`] accepts
//! it there only). An escape never decodes to NUL or `/`, which no name holds.
//! Paths are never normalised: what would need it is an error.
//!
//! # Pseudo-paths
//!
//! [`DiffLine::record`] turns a line into the neutral [`ChangeRecord`] and
//! reads what only zfs writes: a change below `<xattrdir>` is a change of
//! the file owning the extended attribute; an object already unlinked but
//! still open (a name ending `(on_delete_queue)`) has no path to report.

use std::borrow::Cow;
use std::fmt;

use super::ChangeRecord;
use crate::sys::meta::{Change, FileKind};

/// The change of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffChange {
    Created,
    Removed,
    Modified,
    Renamed,
}

/// One parsed line; paths borrow from the line unless they had escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine<'a> {
    /// Inode change time: seconds and nanoseconds.
    pub ctime: (i64, u32),
    pub change: DiffChange,
    pub kind: FileKind,
    pub path: Cow<'a, [u8]>,
    /// The new name of a rename.
    pub renamed_to: Option<Cow<'a, [u8]>>,
    /// A link-count change on a modified non-directory (`(+1)` → 1).
    pub links: Option<i64>,
}

impl<'a> DiffLine<'a> {
    /// The neutral record of this line; `None` for an object already
    /// unlinked but still open, which no path names.
    pub fn record(self) -> Option<ChangeRecord<'a>> {
        let on_delete_queue = |p: &[u8]| {
            memchr::memchr(b')', p).is_some()
                && p.split(|&b| b == b'/').any(|c| c.ends_with(b"(on_delete_queue)"))
        };
        if on_delete_queue(&self.path) || self.renamed_to.as_deref().is_some_and(on_delete_queue) {
            return None;
        }
        let ctime = Some(self.ctime.0);
        // Extended attributes: a modification of the file that owns them,
        // whose type the line does not give.
        let owned = owner(&self.path).len();
        let xattr = |p: &[u8]| owner(p).len() != p.len();
        if owned != self.path.len() || self.renamed_to.as_deref().is_some_and(xattr) {
            let path = match self.path {
                Cow::Borrowed(p) => Cow::Borrowed(&p[..owned]),
                Cow::Owned(mut p) => {
                    p.truncate(owned);
                    Cow::Owned(p)
                }
            };
            let change = Change::Modified;
            return Some(ChangeRecord { path, change, kind: None, ctime, renamed_to: None, links: None });
        }
        let change = match self.change {
            DiffChange::Created => Change::Created,
            DiffChange::Removed => Change::Removed,
            DiffChange::Modified => Change::Modified,
            DiffChange::Renamed => Change::Renamed,
        };
        Some(ChangeRecord {
            path: self.path,
            change,
            kind: Some(self.kind),
            ctime,
            renamed_to: self.renamed_to,
            links: self.links,
        })
    }
}

/// The file that owns `path`, which may name one of its extended
/// attributes (`/f/<xattrdir>/user.x`); a prefix of `path`.
fn owner(path: &[u8]) -> &[u8] {
    if memchr::memchr(b'<', path).is_none() {
        return path;
    }
    match memchr::memmem::find(path, b"/<xattrdir>") {
        // The root directory's own attributes: `/<xattrdir>/user.x`.
        Some(0) => b"/",
        Some(i) => &path[..i],
        None => path,
    }
}

/// Why a line could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError { message: message.into() })
}

/// The escape width of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Escapes {
    /// Not decided yet: no escape seen.
    #[default]
    Undecided,
    Three,
    Four,
}

/// A streaming parser: feed it lines in order.
#[derive(Debug, Default)]
pub struct Parser {
    escapes: Escapes,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// The escape width this run was decided to use.
    pub fn escapes(&self) -> Escapes {
        self.escapes
    }

    /// Parses one line (without its newline).
    pub fn line<'a>(&mut self, line: &'a [u8]) -> Result<DiffLine<'a>, ParseError> {
        let mut fields = Fields { rest: Some(line) };
        let (Some(ctime), Some(change), Some(kind), Some(path)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return err(
                "expected TIME, CHANGE, TYPE and PATH separated by tabs (is this `zfs diff -FHt` output?)",
            );
        };
        let ctime = parse_ctime(ctime)?;
        let change = match change {
            b"+" => DiffChange::Created,
            b"-" => DiffChange::Removed,
            b"M" => DiffChange::Modified,
            b"R" => DiffChange::Renamed,
            other => return err(format!("unknown change {:?} (expected +, -, M or R)", lossy(other))),
        };
        let kind = match kind {
            b"F" => FileKind::File,
            b"/" => FileKind::Dir,
            b"@" => FileKind::Symlink,
            b"|" => FileKind::Fifo,
            b"=" => FileKind::Socket,
            b"C" => FileKind::CharDevice,
            b"B" => FileKind::BlockDevice,
            b">" => FileKind::Door,
            b"P" => FileKind::EventPort,
            b"?" => FileKind::Unknown,
            other => return err(format!("unknown file type {:?}", lossy(other))),
        };
        let path = self.unescape(path)?;
        let extra = fields.next();
        if fields.next().is_some() {
            return err("too many fields");
        }
        let (renamed_to, links) = match (change, extra) {
            (DiffChange::Renamed, Some(new)) => (Some(self.unescape(new)?), None),
            (DiffChange::Renamed, None) => return err("a rename without its new name"),
            (DiffChange::Modified, Some(count)) => (None, Some(parse_links(count)?)),
            (_, Some(_)) => return err("an extra field on a line that is not a rename or a modification"),
            (_, None) => (None, None),
        };
        Ok(DiffLine { ctime, change, kind, path, renamed_to, links })
    }

    fn unescape<'a>(&mut self, field: &'a [u8]) -> Result<Cow<'a, [u8]>, ParseError> {
        if field.is_empty() {
            return err("an empty path");
        }
        let scan = Scan::of(field);
        if scan.raw {
            return err(raw_byte(field));
        }
        if !scan.escaped {
            if scan.suspect || field[0] != b'/' {
                check_components(field)?;
            }
            return Ok(Cow::Borrowed(field));
        }
        if self.escapes == Escapes::Undecided {
            self.escapes = decide(field);
        }
        let width = if self.escapes == Escapes::Three { 3 } else { 4 };
        let mut out = Vec::with_capacity(field.len());
        let mut i = 0;
        while i < field.len() {
            let b = field[i];
            if b != b'\\' {
                out.push(b);
                i += 1;
                continue;
            }
            let digits =
                field.get(i + 1..i + 1 + width).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
            let Some(digits) = digits else {
                return err(format!(
                    "a backslash not followed by {width} octal digits in {:?} (this run uses {width}-digit escapes)",
                    lossy(field)
                ));
            };
            let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
            let Ok(byte) = u8::try_from(value) else {
                return err(format!("escape \\{} is not a byte", lossy(digits)));
            };
            if byte == 0 || byte == b'/' {
                return err(format!(
                    "escape \\{} in {:?} decodes to {}, which no file name holds",
                    lossy(digits),
                    lossy(field),
                    if byte == 0 { "NUL" } else { "/" }
                ));
            }
            out.push(byte);
            i += 1 + width;
        }
        check_components(&out)?;
        Ok(Cow::Owned(out))
    }
}

/// What one pass over a path field finds (every line comes here: the
/// compiler vectorises it, the details are looked at only when needed).
struct Scan {
    /// A byte zfs escapes, written raw.
    raw: bool,
    /// A backslash: an escape.
    escaped: bool,
    /// A `/` followed by `/` or `.`: only there can a component be empty,
    /// `.` or `..`.
    suspect: bool,
}

impl Scan {
    fn of(field: &[u8]) -> Scan {
        let outside = |b: u8| u8::from(b.wrapping_sub(0x21) > 0x7e - 0x21);
        let first = field.first().map_or(0, |&b| outside(b) | (u8::from(b == b'\\') << 1));
        let flags = field.iter().zip(field.iter().skip(1)).fold(first, |flags, (&before, &b)| {
            let next = u8::from(b == b'/') | u8::from(b == b'.');
            flags | outside(b) | (u8::from(b == b'\\') << 1) | ((u8::from(before == b'/') & next) << 2)
        });
        Scan { raw: flags & 1 != 0, escaped: flags & 2 != 0, suspect: flags & 4 != 0 }
    }
}

/// Why `field` holds a byte zfs would have escaped.
fn raw_byte(field: &[u8]) -> String {
    let at = field.iter().position(|b| !(0x21..=0x7e).contains(b)).unwrap_or(0);
    let what = match field.get(at) {
        Some(b'\r') if at + 1 == field.len() => {
            return format!(
                "a raw carriage return ends the path {:?} (CRLF line ends? zfs diff writes LF only)",
                lossy(field)
            );
        }
        Some(b' ') => "space".to_owned(),
        Some(0) => "NUL".to_owned(),
        Some(b) => format!("byte 0x{b:02X}"),
        None => "byte".to_owned(),
    };
    format!("a raw {what} in the path {:?} (zfs diff escapes every byte outside 0x21..0x7E)", lossy(field))
}

/// A decoded path: absolute, no empty, `.` or `..` component; one trailing
/// `/` allowed (the dataset's root).
fn check_components(path: &[u8]) -> Result<(), ParseError> {
    if path.first() != Some(&b'/') {
        return err(format!("the path {:?} is not absolute", lossy(path)));
    }
    let mut start = 1;
    for i in 1..=path.len() {
        if i < path.len() && path[i] != b'/' {
            continue;
        }
        let what = match &path[start..i] {
            // The end of `/` or of a trailing slash.
            b"" if i == path.len() => break,
            b"" => "an empty component (`//`)",
            b"." => "a `.` component",
            b".." => "a `..` component",
            _ => {
                start = i + 1;
                continue;
            }
        };
        return err(format!(
            "the path {:?} has {what}; darlings takes no path that would need normalising",
            lossy(path)
        ));
    }
    Ok(())
}

/// Tab-separated fields, found with memchr (a field never holds a raw tab:
/// zfs escapes it).
struct Fields<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match memchr::memchr(b'\t', rest) {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Three digits when the field shows an escape four digits cannot explain.
fn decide(field: &[u8]) -> Escapes {
    let mut i = 0;
    while let Some(pos) = field[i..].iter().position(|&b| b == b'\\') {
        let at = i + pos + 1;
        let octal = |k: usize| field.get(at + k).is_some_and(|c| (b'0'..=b'7').contains(c));
        if field.get(at) != Some(&b'0') || !(octal(1) && octal(2) && octal(3)) {
            return Escapes::Three;
        }
        let value = field[at..at + 4].iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
        if value > 0o377 {
            return Escapes::Three;
        }
        i = at + 4;
    }
    Escapes::Four
}

fn parse_ctime(field: &[u8]) -> Result<(i64, u32), ParseError> {
    /// Digits only, at most 18 of them (no overflow).
    fn number(digits: &[u8]) -> Option<u64> {
        if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
    }
    let trimmed = field.trim_ascii_start();
    let parsed = trimmed.iter().position(|&b| b == b'.').and_then(|dot| {
        let secs = i64::try_from(number(&trimmed[..dot])?).ok()?;
        let nanos = u32::try_from(number(&trimmed[dot + 1..])?).ok().filter(|n| *n < 1_000_000_000)?;
        Some((secs, nanos))
    });
    match parsed {
        Some(t) => Ok(t),
        None => err(format!(
            "expected a time as SECONDS.NANOSECONDS, found {:?} (is this `zfs diff -FHt` output?)",
            lossy(field)
        )),
    }
}

fn parse_links(field: &[u8]) -> Result<i64, ParseError> {
    let text = std::str::from_utf8(field).ok();
    let n = text
        .and_then(|t| t.strip_prefix('(')?.strip_suffix(')'))
        .and_then(|t| t.strip_prefix('+').unwrap_or(t).parse::<i64>().ok());
    match n {
        Some(n) => Ok(n),
        None => err(format!("expected a link-count change like (+1), found {:?}", lossy(field))),
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> DiffLine<'_> {
        Parser::new().line(line.as_bytes()).expect("valid line")
    }

    fn parse_err(line: &[u8]) -> String {
        Parser::new().line(line).expect_err("invalid line").message
    }

    #[test]
    fn every_change_and_type() {
        let l = parse("1700000000.123456789\t+\tF\t/etc/hostname");
        assert_eq!(l.ctime, (1_700_000_000, 123_456_789));
        assert_eq!(
            (l.change, l.kind, &l.path[..]),
            (DiffChange::Created, FileKind::File, &b"/etc/hostname"[..])
        );
        for (letter, kind) in [
            ("B", FileKind::BlockDevice),
            ("C", FileKind::CharDevice),
            ("/", FileKind::Dir),
            (">", FileKind::Door),
            ("|", FileKind::Fifo),
            ("@", FileKind::Symlink),
            ("P", FileKind::EventPort),
            ("=", FileKind::Socket),
            ("F", FileKind::File),
            ("?", FileKind::Unknown),
        ] {
            assert_eq!(parse(&format!("1.000000000\t-\t{letter}\t/x")).kind, kind);
        }
        assert_eq!(parse("1.0\tM\t/\t/var/").change, DiffChange::Modified);
        // Seconds padded to width 10.
        assert_eq!(parse("         5.000000001\t+\tF\t/x").ctime, (5, 1));
    }

    #[test]
    fn renames_and_link_counts() {
        let l = parse("1.5\tR\tF\t/a/old\\0040name\t/b/new");
        assert_eq!(&l.path[..], &b"/a/old name"[..]);
        assert_eq!(l.renamed_to.as_deref(), Some(&b"/b/new"[..]));
        assert_eq!(parse("1.5\tM\tF\t/a/f\t(+1)").links, Some(1));
        assert_eq!(parse("1.5\tM\tF\t/a/f\t(-2)").links, Some(-2));
    }

    #[test]
    fn four_digit_escapes() {
        let mut p = Parser::new();
        let l = p
            .line(b"1.0\t+\tF\t/with\\0040space/new\\0012line/back\\0134slash/caf\\0303\\0251")
            .expect("valid");
        assert_eq!(&l.path[..], "/with space/new\nline/back\\slash/café".as_bytes());
        assert_eq!(p.escapes(), Escapes::Four);
        // A name containing a literal `\0040` is unambiguous.
        assert_eq!(&p.line(b"1.0\t+\tF\t/\\01340040").expect("valid").path[..], &b"/\\0040"[..]);
        // Tabs inside names are escaped, so the tab split is safe.
        assert_eq!(
            p.line(b"1.0\tR\tF\t/a\\0011b\t/c\\0011d").expect("valid").renamed_to.as_deref(),
            Some(&b"/c\td"[..])
        );
    }

    #[test]
    fn three_digit_escapes_are_recognised_per_run() {
        let mut p = Parser::new();
        assert_eq!(&p.line(b"1.0\t+\tF\t/caf\\303\\251").expect("valid").path[..], "/café".as_bytes());
        assert_eq!(p.escapes(), Escapes::Three);
        // Then kept for the run, even where four digits would also parse.
        assert_eq!(&p.line(b"1.0\t+\tF\t/a\\0401").expect("valid").path[..], &b"/a 1"[..]);
        // A space then a letter: only three digits explain it.
        let mut p = Parser::new();
        assert_eq!(&p.line(b"1.0\t+\tF\t/a\\040b").expect("valid").path[..], &b"/a b"[..]);
        assert_eq!(p.escapes(), Escapes::Three);
        // A backslash in the three-digit form.
        let mut p = Parser::new();
        assert_eq!(&p.line(b"1.0\t+\tF\t/a\\134b").expect("valid").path[..], &b"/a\\b"[..]);
    }

    #[test]
    fn a_run_that_contradicts_its_width_is_an_error() {
        let mut p = Parser::new();
        p.line(b"1.0\t+\tF\t/a\\0040b").expect("four digits");
        let e = p.line(b"1.0\t+\tF\t/caf\\303\\251x").expect_err("three digits later").message;
        assert!(e.contains("4 octal digits"), "{e}");
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        assert!(parse_err(b"+\tF\t/x").contains("zfs diff -FHt"));
        assert!(parse_err(b"+\tF\t/x\t/y").contains("SECONDS.NANOSECONDS"));
        assert!(parse_err(b"/etc/hostname").contains("is this `zfs diff -FHt` output"));
        assert!(parse_err(b"1.0\tX\tF\t/x").contains("unknown change"));
        assert!(parse_err(b"1.0\t+\tZ\t/x").contains("unknown file type"));
        assert!(parse_err(b"1.0\tR\tF\t/x").contains("without its new name"));
        assert!(parse_err(b"1.0\tM\tF\t/x\tfoo").contains("link-count change"));
        assert!(parse_err(b"1.0\t+\tF\t/x\t/y").contains("extra field"));
        assert!(parse_err(b"1.0\t+\tF\t/x\\09").contains("octal digits"));
        assert!(parse_err(b"1.0\t+\tF\t").contains("empty path"));
        assert!(parse_err(b"1.0\t+\tF\t/a\t(+1)\tx").contains("too many fields"));
    }

    #[test]
    fn bytes_zfs_always_escapes_are_refused_raw() {
        assert!(parse_err(b"1.0\t+\tF\t/etc/hostname\r").contains("CRLF"));
        assert!(parse_err(b"1.0\tR\tF\t/a\t/b\r").contains("CRLF"));
        assert!(parse_err(b"1.0\t+\tF\t/a b").contains("raw space"));
        assert!(parse_err(b"1.0\t+\tF\t/a\0b").contains("raw NUL"));
        assert!(parse_err(b"1.0\t+\tF\t/caf\xc3\xa9").contains("raw byte 0xC3"));
        assert!(parse_err(b"1.0\t+\tF\t/a\x7f").contains("raw byte 0x7F"));
        // Escaped, the same bytes are names.
        assert_eq!(&parse("1.0\t+\tF\t/a\\0015").path[..], b"/a\r");
    }

    #[test]
    fn paths_that_would_need_normalising_are_refused() {
        for bad in ["/./a/./b", "/../../etc/shadow", "/a/..", "/a//b", "//", "a/b", "/a/b//"] {
            let e = parse_err(format!("1.0\t+\tF\t{bad}").as_bytes());
            assert!(e.contains("component") || e.contains("not absolute"), "{bad}: {e}");
        }
        // Escapes cannot smuggle them in: `.` decodes before the check, and
        // no escape may stand for `/` or NUL.
        assert!(parse_err(b"1.0\t+\tF\t/a/\\0056\\0056/b").contains("`..` component"));
        assert!(parse_err(b"1.0\t+\tF\t/a\\0057..\\0057etc").contains("decodes to /"));
        assert!(parse_err(b"1.0\t+\tF\t/a\\0000").contains("decodes to NUL"));
        assert!(parse_err(b"1.0\tR\tF\t/a\t/../b").contains("`..` component"));
        // Names that merely start with dots are names.
        assert_eq!(&parse("1.0\t+\tF\t/.../..a/.b").path[..], b"/.../..a/.b");
        // The dataset's root is printed with one trailing slash.
        assert_eq!(&parse("1.0\tM\t/\t/mnt/").path[..], b"/mnt/");
        assert_eq!(&parse("1.0\tM\t/\t/").path[..], b"/");
    }
}
