//! `--accepted FILE`: losses someone reviewed and chose to lose, so CI
//! fails only on what is new or worse.
//!
//! The file is a previous JSON report (`--format json`) or a list of
//! paths, one per line (`#` comments). A line accepts everything at or
//! below its path, whatever its verdict. A report's finding accepts a
//! finding at or below its path only if nothing about it is worse: the
//! same verdict, and a severity no higher (none < info < important <
//! critical). Growth in entries or bytes is accepted: an accepted log or
//! cache directory grows all the time, while a claim that broke or
//! precious state that appeared changes the verdict or the severity.
//!
//! A report this module cannot read fully (an unknown verdict or
//! severity, a finding without a path) is an error naming the file and
//! the finding: a guess here would accept what nobody reviewed.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use super::{Finding, Verdict};
use crate::report::Severity;
use crate::sanitize::{escape, escape_path};
use crate::sys::path::is_ancestor_or_self;

#[derive(Debug, thiserror::Error)]
pub enum AcceptedError {
    #[error("cannot read accepted list {}", escape_path(file))]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not valid JSON: {message}", escape_path(file))]
    Json { file: PathBuf, message: String },
    /// A finding of a previous report, by index (and path when known).
    #[error("{}: {at}: {message}", escape_path(file))]
    Finding { file: PathBuf, at: String, message: String },
    #[error("{}: {message}", escape_path(file))]
    Report { file: PathBuf, message: String },
    /// A line of a list of paths (1-based).
    #[error("{}:{line}: not an absolute path: {text}", escape_path(file))]
    Line { file: PathBuf, line: usize, text: String },
}

/// What an accepted path lets through below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// A line of a list: any verdict, any severity.
    Any,
    /// A previous finding: this verdict, at most this severity.
    Finding { verdict: Verdict, severity: Option<Severity> },
}

/// The accepted paths, each with what it accepts.
#[derive(Debug, Default)]
pub struct Accepted {
    entries: Vec<(Vec<u8>, Limit)>,
}

impl Accepted {
    /// Reads an `--accepted` file: a JSON report when it starts with `{`,
    /// else a list of paths.
    pub fn read(file: &Path) -> Result<Accepted, AcceptedError> {
        // A regular file or a FIFO of at most 8 MiB, as every file named on
        // the command line: a device (`/dev/zero`) is never read.
        let bytes = crate::sys::root::read_given(file)
            .map_err(|e| AcceptedError::Read { file: file.to_owned(), source: e.into() })?;
        Accepted::parse(&bytes, file)
    }

    /// Parses the bytes of an `--accepted` file; `file` names it in errors.
    pub fn parse(bytes: &[u8], file: &Path) -> Result<Accepted, AcceptedError> {
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            let value: Value = serde_json::from_slice(bytes)
                .map_err(|e| AcceptedError::Json { file: file.to_owned(), message: e.to_string() })?;
            return from_report(&value, file);
        }
        let mut entries = Vec::new();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let trimmed = line.trim_ascii();
            if trimmed.is_empty() || trimmed.starts_with(b"#") {
                continue;
            }
            if !line.starts_with(b"/") {
                let text = escape(line).into_owned();
                return Err(AcceptedError::Line { file: file.to_owned(), line: i + 1, text });
            }
            let path = if line.len() > 1 { line.strip_suffix(b"/").unwrap_or(line) } else { line };
            entries.push((path.to_vec(), Limit::Any));
        }
        Ok(Accepted { entries })
    }

    /// Whether an accepted path covers `f` and nothing about `f` is worse.
    pub fn matches(&self, f: &Finding) -> bool {
        self.matches_at(f, &f.path)
    }

    /// [`Accepted::matches`] for `f` at `at` (its own path may be left empty).
    pub fn matches_at(&self, f: &Finding, at: &[u8]) -> bool {
        self.entries.iter().any(|(path, limit)| {
            is_ancestor_or_self(path, at)
                && match *limit {
                    Limit::Any => true,
                    Limit::Finding { verdict, severity } => verdict == f.verdict && f.severity() <= severity,
                }
        })
    }

    /// Marks the accepted loss findings.
    pub fn apply(&self, findings: &mut [Finding]) {
        if self.entries.is_empty() {
            return;
        }
        for f in findings.iter_mut() {
            f.accepted = f.verdict.is_loss() && self.matches(f);
        }
    }
}

/// The findings of a previous JSON report (the shape `render::json`
/// writes: `path`, or `path_base64` for exact bytes; `verdict`; `severity`
/// or null).
fn from_report(value: &Value, file: &Path) -> Result<Accepted, AcceptedError> {
    let findings = value.get("findings").and_then(Value::as_array).ok_or_else(|| AcceptedError::Report {
        file: file.to_owned(),
        message: "not a darlings JSON report (no \"findings\" array)".into(),
    })?;
    let mut entries = Vec::with_capacity(findings.len());
    for (i, f) in findings.iter().enumerate() {
        let bad = |at: String, message: String| AcceptedError::Finding { file: file.to_owned(), at, message };
        let path = match (f.get("path_base64").and_then(Value::as_str), f.get("path").and_then(Value::as_str))
        {
            (Some(b64), _) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| bad(format!("findings[{i}].path_base64"), e.to_string()))?,
            (None, Some(p)) => p.as_bytes().to_vec(),
            (None, None) => return Err(bad(format!("findings[{i}]"), "no \"path\"".into())),
        };
        let at = format!("findings[{i}] ({})", escape(&path));
        if !path.starts_with(b"/") {
            return Err(bad(at, "the path is not absolute".into()));
        }
        let verdict = match f.get("verdict") {
            Some(Value::String(v)) => Verdict::ALL
                .into_iter()
                .find(|x| x.name() == v)
                .ok_or_else(|| bad(at.clone(), format!("unknown verdict {v:?}")))?,
            Some(other) => return Err(bad(at, format!("\"verdict\" must be a string, not {other}"))),
            None => return Err(bad(at, "no \"verdict\"".into())),
        };
        let severity = match f.get("severity") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                Some(Severity::parse(s).ok_or_else(|| bad(at.clone(), format!("unknown severity {s:?}")))?)
            }
            Some(other) => {
                return Err(bad(at, format!("\"severity\" must be a string or null, not {other}")))
            }
        };
        entries.push((path, Limit::Finding { verdict, severity }));
    }
    Ok(Accepted { entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Precious;
    use crate::sys::meta::FileKind;

    fn finding(path: &str, verdict: Verdict, severity: Option<Severity>) -> Finding {
        let mut f = Finding::new(path.as_bytes().to_vec(), verdict, FileKind::Dir);
        f.precious = severity.map(|severity| Precious {
            pattern: "/p".into(),
            severity,
            reason: String::new(),
            directory: true,
            origin: "built-in".into(),
        });
        f
    }

    fn report(json: &str) -> Result<Accepted, AcceptedError> {
        Accepted::parse(json.as_bytes(), Path::new("acc.json"))
    }

    #[test]
    fn a_finding_is_accepted_only_if_nothing_is_worse() {
        let acc = report(
            r#"{"findings": [
                {"path": "/home", "verdict": "unclaimed", "severity": null},
                {"path": "/var", "verdict": "unclaimed", "severity": "important"}]}"#,
        )
        .expect("valid");
        let none = finding("/home", Verdict::Unclaimed, None);
        assert!(acc.matches(&none));
        assert!(acc.matches(&finding("/home/bob/notes", Verdict::Unclaimed, None)), "below it");
        assert!(
            !acc.matches(&finding("/home", Verdict::Unclaimed, Some(Severity::Critical))),
            "now critical"
        );
        assert!(!acc.matches(&finding("/home", Verdict::Broken, None)), "now broken");
        assert!(acc.matches(&finding("/var", Verdict::Unclaimed, Some(Severity::Info))), "less severe");
        assert!(acc.matches(&finding("/var", Verdict::Unclaimed, Some(Severity::Important))));
        assert!(
            !acc.matches(&finding("/var/lib/postgresql/17", Verdict::Unclaimed, Some(Severity::Critical))),
            "new critical state below an accepted important group"
        );
        assert!(!acc.matches(&finding("/homer", Verdict::Unclaimed, None)));
    }

    #[test]
    fn a_list_accepts_anything_below_its_paths() {
        let acc = Accepted::parse(b"# reviewed\n/var/cache/\n\n/home\r\n", Path::new("l")).expect("valid");
        assert!(acc.matches(&finding("/var/cache/x", Verdict::Broken, Some(Severity::Critical))));
        assert!(acc.matches(&finding("/home", Verdict::Unclaimed, None)));
        assert!(!acc.matches(&finding("/var", Verdict::Unclaimed, None)));
        let e = Accepted::parse(b"/ok\nrelative\n", Path::new("l")).expect_err("relative");
        assert_eq!(e.to_string(), "l:2: not an absolute path: relative");
    }

    #[test]
    fn what_cannot_be_read_is_an_error_naming_the_finding() {
        let err = |json: &str| report(json).map(|_| ()).expect_err("invalid").to_string();
        assert_eq!(
            err(r#"{"findings": [{"path": "/a", "verdict": "kept"}, {"path": "/b", "verdict": "bogus"}]}"#),
            r#"acc.json: findings[1] (/b): unknown verdict "bogus""#
        );
        assert_eq!(err(r#"{"findings": [{"path": "/a"}]}"#), r#"acc.json: findings[0] (/a): no "verdict""#);
        assert_eq!(
            err(r#"{"findings": [{"path": "/a", "verdict": "unclaimed", "severity": "dire"}]}"#),
            r#"acc.json: findings[0] (/a): unknown severity "dire""#
        );
        assert_eq!(
            err(r#"{"findings": [{"path": "/a", "verdict": "unclaimed", "severity": 3}]}"#),
            r#"acc.json: findings[0] (/a): "severity" must be a string or null, not 3"#
        );
        assert_eq!(err(r#"{"findings": [{"verdict": "kept"}]}"#), r#"acc.json: findings[0]: no "path""#);
        assert_eq!(
            err(r#"{"findings": [{"path": "a", "verdict": "kept"}]}"#),
            "acc.json: findings[0] (a): the path is not absolute"
        );
        assert_eq!(
            err(r#"{"results": []}"#),
            r#"acc.json: not a darlings JSON report (no "findings" array)"#
        );
        assert!(err("{oops").starts_with("acc.json: not valid JSON"));
    }

    #[test]
    fn exact_bytes_come_from_path_base64() {
        let acc = report(
            r#"{"findings": [{"path": "/caf\ufffd", "path_base64": "L2NhZuk=", "verdict": "unclaimed"}]}"#,
        )
        .expect("valid");
        let mut f = finding("/", Verdict::Unclaimed, None);
        f.path = b"/caf\xe9".to_vec();
        assert!(acc.matches(&f));
    }
}
