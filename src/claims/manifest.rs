//! The darlings manifest: keep and ignore rules in a TOML file.
//!
//! ```toml
//! # /etc/darlings/manifest.toml
//! version = 1                      # optional; the only version so far
//!
//! keep = [
//!     "/etc/nixos",
//!     { path = "/var/lib/bluetooth", reason = "pairings" },
//! ]
//!
//! [[ignore]]                       # the same rules, as tables
//! path = "/home/*/.cache"
//! reason = "caches rebuild themselves"
//! ```
//!
//! `impermanence = "/etc/darlings/impermanence.json"` and `preservation =
//! "…"` name claim files: the JSON `--impermanence` / `--preservation`
//! read. A path is absolute and read where the manifest is: inside the
//! audited root for the default manifest, on this machine for
//! `--manifest`. The NixOS module writes such files from the
//! configuration, so a plain `darlings audit` knows every declared claim.
//!
//! `keep` and `ignore` each take strings or `{ path, reason }` tables (as an
//! inline array or as `[[keep]]` / `[[ignore]]` sections). Unknown keys are
//! errors, so a typo never silently drops a rule. Every error names the
//! file, the line and the column, and a manifest with an error yields no
//! rules at all.

use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::matcher::{
    is_glob_text, too_many_globs, Origin, Pattern, Rule, RuleKind, MAX_GLOBS, MAX_GLOB_BYTES,
};
use crate::report::{Precious, Severity};
use crate::sanitize::escape_path;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifest {}", escape_path(file))]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", escape_path(file))]
    Invalid { file: PathBuf, line: usize, column: usize, message: String },
    /// The default manifest is (or lies below) a symlink whose target is
    /// not inside the audited root: a NixOS `/etc` links into `/nix/store`,
    /// which `--root` may not have mounted.
    #[error(
        "{}: the default manifest leads through the symlink {link} (to {target}), which does not resolve \
         inside the audited root (is what it points to mounted there?): its rules and claims cannot be read; \
         mount it, or audit without them with --no-default-manifest",
        escape_path(file)
    )]
    Dangling { file: PathBuf, link: String, target: String },
}

/// What one manifest says.
#[derive(Debug, Default)]
pub struct Manifest {
    pub rules: Vec<Rule>,
    /// Additions to the catalogue of precious state (`[[precious]]`).
    pub precious: Vec<Precious>,
    /// Claim files it names (`impermanence = "…"`, `preservation = "…"`).
    pub claim_files: Vec<ClaimFile>,
}

/// A NixOS module's claims as JSON, named by a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimFile {
    /// `impermanence` or `preservation`.
    pub module: &'static str,
    /// Absolute; where it is read depends on where the manifest was.
    pub path: PathBuf,
    pub line: usize,
}

/// Reads and parses a manifest named on the command line: a regular file
/// or a FIFO (`--manifest <(...)`), at most
/// [`MAX_CONFIG`](crate::sys::root::MAX_CONFIG) bytes; a directory or a
/// device is an error.
pub fn load(file: &Path) -> Result<Manifest, ManifestError> {
    let text = crate::sys::root::read_given(file)
        .map_err(|e| ManifestError::Read { file: file.to_owned(), source: e.into() })?;
    parse_bytes(&text, file)
}

/// Parses manifest bytes; `file` names it in rules and errors.
pub fn parse_bytes(text: &[u8], file: &Path) -> Result<Manifest, ManifestError> {
    let text = std::str::from_utf8(text).map_err(|e| {
        let (line, column) = Lines::new(&String::from_utf8_lossy(text)).line_col(e.valid_up_to());
        ManifestError::Invalid { file: file.to_owned(), line, column, message: "not valid UTF-8".into() }
    })?;
    parse(text, file)
}

/// Parses manifest text; `file` names it in rules and errors.
pub fn parse(text: &str, file: &Path) -> Result<Manifest, ManifestError> {
    let lines = Lines::new(text);
    let invalid = |offset: usize, message: String| {
        let (line, column) = lines.line_col(offset);
        ManifestError::Invalid { file: file.to_owned(), line, column, message }
    };
    let doc = DeTable::parse(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        invalid(offset, e.message().trim().to_owned())
    })?;
    let mut rules = Vec::new();
    let mut precious = Vec::new();
    let mut claim_files = Vec::new();
    // Globs so far: refused past the limit, before any more is compiled.
    let (mut globs, mut bytes) = (0, 0);
    let mut glob = |path: &str, at: usize| {
        if is_glob_text(path.as_bytes()) {
            globs += 1;
            bytes += path.len();
        }
        if globs > MAX_GLOBS || bytes > MAX_GLOB_BYTES {
            return Err(invalid(
                at,
                format!("this is glob pattern {globs} ({bytes} bytes so far): {}", too_many_globs()),
            ));
        }
        Ok(())
    };
    for (key, value) in doc.get_ref() {
        let kind = match key.get_ref().as_ref() {
            "version" => {
                let version = value.get_ref().as_integer().map(|i| i.as_str().to_owned());
                if version.as_deref() != Some("1") {
                    let shown = version.unwrap_or_else(|| value.get_ref().type_str().to_owned());
                    return Err(invalid(
                        value.span().start,
                        format!("unsupported manifest version {shown} (this darlings reads version 1)"),
                    ));
                }
                continue;
            }
            "keep" => RuleKind::Keep,
            "ignore" => RuleKind::Ignore,
            "precious" => {
                let DeValue::Array(items) = value.get_ref() else {
                    return Err(invalid(value.span().start, "`precious` must be a list of tables".into()));
                };
                for item in items {
                    if let DeValue::Table(t) = item.get_ref() {
                        let path = t.get("path").and_then(|v| v.get_ref().as_str()).unwrap_or_default();
                        glob(path, item.span().start)?;
                    }
                    precious.push(precious_entry(item, file, &lines, &invalid)?);
                }
                continue;
            }
            module @ ("impermanence" | "preservation") => {
                let at = value.span().start;
                match value.get_ref() {
                    DeValue::String(s) if s.starts_with('/') => {
                        // Read inside the audited root for the default
                        // manifest, where such a path is refused: refused
                        // here, for every manifest, with where it is written.
                        if let Err(e) = crate::sys::root::check_relative(s.as_bytes()) {
                            return Err(invalid(
                                at,
                                format!("`{module}` path {s:?} has {e}: write the file's own path"),
                            ));
                        }
                        let (line, _) = lines.line_col(at);
                        claim_files.push(ClaimFile {
                            module: if module == "impermanence" { "impermanence" } else { "preservation" },
                            path: PathBuf::from(s.as_ref()),
                            line,
                        });
                    }
                    _ => {
                        return Err(invalid(
                            at,
                            format!("`{module}` must be the absolute path of a JSON file"),
                        ))
                    }
                }
                continue;
            }
            other => {
                return Err(invalid(
                    key.span().start,
                    format!(
                        "unknown key `{other}` (expected `version`, `keep`, `ignore`, `precious`, \
                         `impermanence` or `preservation`)"
                    ),
                ))
            }
        };
        let DeValue::Array(items) = value.get_ref() else {
            return Err(invalid(
                value.span().start,
                format!("`{}` must be a list of paths or of {{ path, reason }} tables", kind.name()),
            ));
        };
        for item in items {
            let path = match item.get_ref() {
                DeValue::String(s) => s.as_ref(),
                DeValue::Table(t) => t.get("path").and_then(|v| v.get_ref().as_str()).unwrap_or_default(),
                _ => "",
            };
            glob(path, item.span().start)?;
            rules.push(rule(kind, item, file, &lines, &invalid)?);
        }
    }
    // File order (the document's keys come sorted): the last tie-breaker.
    rules.sort_by_key(|r| match r.origin {
        Origin::Manifest { line, .. } => line,
        _ => 0,
    });
    claim_files.sort_by_key(|c| c.line);
    Ok(Manifest { rules, precious, claim_files })
}

/// A `[[precious]]` table: `path`, `severity` (critical, important, info),
/// `reason`, and `file = true` for a file (a directory otherwise).
fn precious_entry(
    item: &Spanned<DeValue<'_>>,
    file: &Path,
    lines: &Lines<'_>,
    invalid: &dyn Fn(usize, String) -> ManifestError,
) -> Result<Precious, ManifestError> {
    let DeValue::Table(table) = item.get_ref() else {
        return Err(invalid(
            item.span().start,
            "a precious entry must be a { path, severity, reason } table".into(),
        ));
    };
    let (mut path, mut severity, mut reason, mut is_file) = (None, None, None, false);
    for (key, value) in table {
        let at = value.span().start;
        match (key.get_ref().as_ref(), value.get_ref()) {
            ("path", DeValue::String(s)) => {
                Pattern::parse(s.as_bytes()).map_err(|e| invalid(at, format!("precious path {s:?}: {e}")))?;
                path = Some(s.to_string());
            }
            ("severity", DeValue::String(s)) => {
                severity = Some(Severity::parse(s).ok_or_else(|| {
                    invalid(at, format!("unknown severity {s:?} (expected critical, important or info)"))
                })?);
            }
            ("reason", DeValue::String(s)) => reason = Some(s.to_string()),
            ("file", DeValue::Boolean(b)) => is_file = *b,
            (other, _) => {
                return Err(invalid(
                    key.span().start,
                    format!(
                        "unexpected `{other}` in a precious entry (expected path, severity, reason, file)"
                    ),
                ))
            }
        }
    }
    let start = item.span().start;
    let path = path.ok_or_else(|| invalid(start, "precious entry without `path`".into()))?;
    let severity = severity.ok_or_else(|| invalid(start, "precious entry without `severity`".into()))?;
    let (line, _) = lines.line_col(start);
    Ok(Precious {
        pattern: path,
        severity,
        reason: reason.unwrap_or_default(),
        directory: !is_file,
        origin: format!("{}:{line}", file.display()),
    })
}

/// One rule from an array item: a string or a `{ path, reason }` table.
fn rule(
    kind: RuleKind,
    item: &Spanned<DeValue<'_>>,
    file: &Path,
    lines: &Lines<'_>,
    invalid: &dyn Fn(usize, String) -> ManifestError,
) -> Result<Rule, ManifestError> {
    let (path, reason) = match item.get_ref() {
        DeValue::String(s) => ((s.as_ref(), item.span()), None),
        DeValue::Table(table) => {
            let mut path = None;
            let mut reason = None;
            for (key, value) in table {
                match (key.get_ref().as_ref(), value.get_ref()) {
                    ("path", DeValue::String(s)) => path = Some((s.as_ref(), value.span())),
                    ("reason", DeValue::String(s)) => reason = Some(s.to_string()),
                    ("path" | "reason", other) => {
                        return Err(invalid(
                            value.span().start,
                            format!("`{}` must be a string, not {}", key.get_ref(), other.type_str()),
                        ))
                    }
                    (other, _) => {
                        return Err(invalid(
                            key.span().start,
                            format!(
                                "unknown key `{other}` in a {} rule (expected `path` or `reason`)",
                                kind.name()
                            ),
                        ))
                    }
                }
            }
            let path = path
                .ok_or_else(|| invalid(item.span().start, format!("{} rule without `path`", kind.name())))?;
            (path, reason)
        }
        other => {
            return Err(invalid(
                item.span().start,
                format!(
                    "a {} rule must be a path string or a {{ path, reason }} table, not {}",
                    kind.name(),
                    other.type_str()
                ),
            ))
        }
    };
    let ((path, span), reason) = (path, reason);
    let pattern = Pattern::parse(path.as_bytes())
        .map_err(|e| invalid(span.start, format!("{} pattern {path:?}: {e}", kind.name())))?;
    let (line, _) = lines.line_col(span.start);
    Ok(Rule { kind, pattern, origin: Origin::Manifest { file: file.to_owned(), line }, reason })
}

/// Where each line of a text starts, found once: a position is then a
/// binary search away (counting from the start for every rule made a
/// manifest of 100,000 rules take minutes).
struct Lines<'t> {
    text: &'t str,
    /// Byte offsets of the first byte of every line.
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Lines<'t> {
        let starts =
            std::iter::once(0).chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1)).collect();
        Lines { text, starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        // The line whose start is the last one at or before `offset` (the
        // first start is 0, so there is always one).
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts.get(line.wrapping_sub(1)).copied().unwrap_or(0);
        let column = self.text.get(start..offset).map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Vec<(RuleKind, String, usize, Option<String>)> {
        parse(text, Path::new("m.toml"))
            .expect("valid manifest")
            .rules
            .into_iter()
            .map(|r| {
                let Origin::Manifest { line, .. } = r.origin else { unreachable!() };
                (r.kind, r.pattern.text().into_owned(), line, r.reason)
            })
            .collect()
    }

    fn parse_err(text: &str) -> String {
        parse(text, Path::new("m.toml")).expect_err("invalid manifest").to_string()
    }

    #[test]
    fn both_forms_with_lines_and_reasons() {
        let text = r#"# comment
version = 1
keep = [
  "/etc/nixos",
  { path = "/var/lib/bluetooth", reason = "pairings" },
]

[[ignore]]
path = "/home/*/.cache/"
reason = "rebuilt"

[[ignore]]
path = "/var/tmp"
"#;
        assert_eq!(
            parse_ok(text),
            vec![
                (RuleKind::Keep, "/etc/nixos".into(), 4, None),
                (RuleKind::Keep, "/var/lib/bluetooth".into(), 5, Some("pairings".into())),
                (RuleKind::Ignore, "/home/*/.cache".into(), 9, Some("rebuilt".into())),
                (RuleKind::Ignore, "/var/tmp".into(), 13, None),
            ]
        );
    }

    #[test]
    fn precious_entries_extend_the_catalogue() {
        let m = parse(
            "[[precious]]\npath = \"/srv/app/data\"\nseverity = \"critical\"\nreason = \"uploads\"\n",
            Path::new("m.toml"),
        )
        .expect("valid");
        assert_eq!(m.precious.len(), 1);
        assert_eq!(m.precious[0].severity, Severity::Critical);
        assert_eq!(m.precious[0].origin, "m.toml:1");
        let e = parse("[[precious]]\npath = \"/x\"\nseverity = \"dire\"\n", Path::new("m.toml"))
            .expect_err("bad");
        assert_eq!(
            e.to_string(),
            "m.toml:3:12: unknown severity \"dire\" (expected critical, important or info)"
        );
    }

    #[test]
    fn claim_files_are_named_with_their_module_and_line() {
        let m = parse(
            "keep = [\"/a\"]\npreservation = \"/etc/darlings/preservation.json\"\n\
             impermanence = \"/etc/darlings/impermanence.json\"\n",
            Path::new("m.toml"),
        )
        .expect("valid");
        let got: Vec<_> = m.claim_files.iter().map(|c| (c.module, c.path.to_str(), c.line)).collect();
        assert_eq!(
            got,
            vec![
                ("preservation", Some("/etc/darlings/preservation.json"), 2),
                ("impermanence", Some("/etc/darlings/impermanence.json"), 3),
            ]
        );
        for (path, what) in [
            ("/etc/../etc/i.json", "a `.` or `..` component"),
            ("/etc/./i.json", "a `.` or `..` component"),
            ("/etc//i.json", "an empty component"),
        ] {
            assert_eq!(
                parse_err(&format!("\n\nimpermanence = \"{path}\"\n")),
                format!("m.toml:3:16: `impermanence` path \"{path}\" has {what}: write the file's own path")
            );
        }
        assert_eq!(
            parse_err("impermanence = \"persistence.json\"\n"),
            "m.toml:1:16: `impermanence` must be the absolute path of a JSON file"
        );
        assert_eq!(
            parse_err("preservation = [\"/a.json\"]\n"),
            "m.toml:1:16: `preservation` must be the absolute path of a JSON file"
        );
    }

    #[test]
    fn empty_manifest_has_no_rules() {
        assert!(parse_ok("# nothing yet\n").is_empty());
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        assert_eq!(
            parse_err("keep = [\n  \"/ok\",\n  \"relative/path\",\n]\n"),
            "m.toml:3:3: keep pattern \"relative/path\": pattern must be an absolute path (start with /)"
        );
        assert_eq!(
            parse_err("[[keep]]\npath = \"/a\"\nreasno = \"typo\"\n"),
            "m.toml:3:1: unknown key `reasno` in a keep rule (expected `path` or `reason`)"
        );
        let e = parse_err("keep = [\"/a\"\nignore = 3\n");
        assert!(e.starts_with("m.toml:"), "{e}");
        assert_eq!(
            parse_err("kept = [\"/a\"]\n"),
            "m.toml:1:1: unknown key `kept` (expected `version`, `keep`, `ignore`, `precious`, \
             `impermanence` or `preservation`)"
        );
        assert_eq!(
            parse_err("keep = \"/a\"\n"),
            "m.toml:1:8: `keep` must be a list of paths or of { path, reason } tables"
        );
        assert_eq!(
            parse_err("keep = [3]\n"),
            "m.toml:1:9: a keep rule must be a path string or a { path, reason } table, not integer"
        );
        let e = parse_err("version = 2\n");
        assert_eq!(e, "m.toml:1:11: unsupported manifest version 2 (this darlings reads version 1)");
        assert_eq!(parse_err("[[ignore]]\nreason = \"no path\"\n"), "m.toml:1:1: ignore rule without `path`");
        let e = parse_err("ignore = [\"/x/[oops\"]\n");
        assert!(e.starts_with("m.toml:1:11: ignore pattern"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_an_error_with_a_position() {
        let e = parse_bytes(b"keep = [\"/a\"]\n# caf\xe9\n", Path::new("m.toml")).expect_err("invalid");
        assert_eq!(e.to_string(), "m.toml:2:6: not valid UTF-8");
    }
    #[test]
    fn positions_match_counting_from_the_start() {
        let text = "a\n\nkeep = [\"/é\", \"/x\"]\r\n# ünï\nlast";
        let lines = Lines::new(text);
        for offset in (0..=text.len() + 2).filter(|&o| o > text.len() || text.is_char_boundary(o)) {
            let before = &text[..offset.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            assert_eq!(lines.line_col(offset), (line, column), "offset {offset}");
        }
        assert_eq!(lines.line_col(0), (1, 1));
        assert_eq!(lines.line_col(2), (2, 1));
        // After `keep = ["/é` (11 characters, é is one): column 12.
        assert_eq!(lines.line_col(3 + "keep = [\"/é".len()), (3, 12));
        assert_eq!(Lines::new("").line_col(0), (1, 1));
    }
}
