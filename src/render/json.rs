//! `--format json` and `--format ndjson`.
//!
//! Paths are bytes. A path that is valid UTF-8 is written as a JSON string;
//! one that is not is written lossily (invalid bytes become U+FFFD) *and*
//! exactly, base64-encoded (standard alphabet, padded), in a sibling field
//! with the suffix `_base64`: `"path"` and `"path_base64"`. So a consumer
//! that wants exact bytes reads `path_base64` when present, else `path`.
//!
//! ndjson writes one finding object per line (the same objects as the
//! `findings` array), then one summary line: the JSON document without
//! `findings`, recognisable by its `schema_version` field.

use std::io::{self, Write};

use base64::Engine;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::rfc3339;
use crate::report::Filter;
use crate::report::{EntryError, Finding, MissingClaim, Report, Totals};

/// Bumped on any incompatible change of the JSON shape.
pub const SCHEMA_VERSION: u32 = 1;

/// Writes `key` (lossy text) and, for non-UTF-8 bytes, `key_base64`.
fn path_entry<M: SerializeMap>(map: &mut M, key: &'static str, path: &[u8]) -> Result<(), M::Error> {
    match std::str::from_utf8(path) {
        Ok(s) => map.serialize_entry(key, s),
        Err(_) => {
            map.serialize_entry(key, &String::from_utf8_lossy(path))?;
            let b64 = base64::engine::general_purpose::STANDARD.encode(path);
            map.serialize_entry(&format!("{key}_base64"), &b64)
        }
    }
}

/// One finding as the `findings` array has it (also `explain`'s `finding`).
pub struct FindingJson<'a>(pub &'a Finding);

/// `path` as a JSON object's fields: `key`, and `key_base64` when not UTF-8.
pub fn path_fields(key: &str, path: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert(key.to_owned(), String::from_utf8_lossy(path).into_owned().into());
    if std::str::from_utf8(path).is_err() {
        m.insert(format!("{key}_base64"), base64::engine::general_purpose::STANDARD.encode(path).into());
    }
    m
}

impl Serialize for FindingJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut m = s.serialize_map(None)?;
        path_entry(&mut m, "path", &f.path)?;
        m.serialize_entry("verdict", &f.verdict)?;
        m.serialize_entry("change", &f.change)?;
        m.serialize_entry("type", &f.kind)?;
        m.serialize_entry("entries", &f.entries)?;
        m.serialize_entry("size", &f.size)?;
        m.serialize_entry("disk", &f.disk)?;
        m.serialize_entry("mtime", &f.mtime.and_then(rfc3339))?;
        m.serialize_entry("ctime", &f.ctime.and_then(rfc3339))?;
        match &f.renamed_from {
            Some(old) => path_entry(&mut m, "renamed_from", old)?,
            None => m.serialize_entry("renamed_from", &None::<&str>)?,
        }
        m.serialize_entry("rule", &f.rule)?;
        m.serialize_entry("severity", &f.severity().map(|s| s.name()))?;
        m.serialize_entry("precious", &f.precious.as_ref().map(PreciousJson))?;
        match &f.keep_path {
            Some(p) => path_entry(&mut m, "keep_path", p)?,
            None => m.serialize_entry("keep_path", &None::<&str>)?,
        }
        m.serialize_entry("detail", &f.detail)?;
        m.serialize_entry("unverified", &f.unverified)?;
        m.serialize_entry("accepted", &f.accepted)?;
        m.end()
    }
}

/// The catalogue entry behind a severity.
struct PreciousJson<'a>(&'a crate::report::Precious);

impl Serialize for PreciousJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("pattern", &p.pattern)?;
        m.serialize_entry("reason", &p.reason)?;
        m.serialize_entry("keep_as", if p.directory { "directory" } else { "file" })?;
        m.serialize_entry("origin", &p.origin)?;
        m.end()
    }
}

struct ErrorJson<'a>(&'a EntryError);

impl Serialize for ErrorJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = s.serialize_map(None)?;
        path_entry(&mut m, "path", &e.path)?;
        m.serialize_entry("operation", e.operation)?;
        m.serialize_entry("error", &e.message)?;
        m.serialize_entry("errno", &e.errno)?;
        m.end()
    }
}

struct MissingJson<'a>(&'a MissingClaim);

impl Serialize for MissingJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        path_entry(&mut m, "path", &self.0.path)?;
        m.serialize_entry("rule", &self.0.rule)?;
        m.end()
    }
}

/// `totals`: the report's, one object per verdict name.
struct TotalsJson<'a>(&'a Totals);

impl Serialize for TotalsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (verdict, total) in self.0 {
            m.serialize_entry(verdict.name(), total)?;
        }
        m.end()
    }
}

/// The whole document, or (ndjson) its summary without findings.
struct Doc<'a> {
    report: &'a Report,
    filter: &'a Filter,
    exit_code: u8,
    with_findings: bool,
}

impl Serialize for Doc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.report;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("schema_version", &SCHEMA_VERSION)?;
        m.serialize_entry("darlings_version", env!("CARGO_PKG_VERSION"))?;
        path_entry(&mut m, "root", &r.root)?;
        m.serialize_entry("source", r.source)?;
        m.serialize_entry("grouping", if r.flat { "flat" } else { "grouped" })?;
        m.serialize_entry("complete", &r.complete())?;
        m.serialize_entry("exit_code", &self.exit_code)?;
        let started = r.started.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        m.serialize_entry("started_at", &rfc3339(started))?;
        m.serialize_entry("duration_seconds", &r.duration.as_secs_f64())?;
        m.serialize_entry("totals", &TotalsJson(&r.totals))?;
        if self.with_findings {
            let shown: Vec<FindingJson<'_>> = self.filter.shown(r).map(FindingJson).collect();
            m.serialize_entry("findings", &shown)?;
        }
        let missing: Vec<MissingJson<'_>> = r.missing_claims.iter().map(MissingJson).collect();
        m.serialize_entry("missing_claims", &missing)?;
        let errors: Vec<ErrorJson<'_>> = r.errors.iter().map(ErrorJson).collect();
        m.serialize_entry("errors", &errors)?;
        let notes: Vec<_> = r.notes().collect();
        m.serialize_entry("notes", &notes)?;
        m.end()
    }
}

pub fn render(out: &mut dyn Write, report: &Report, filter: &Filter, exit_code: u8) -> io::Result<()> {
    let doc = Doc { report, filter, exit_code, with_findings: true };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    out.write_all(b"\n")
}

pub fn render_ndjson(out: &mut dyn Write, report: &Report, filter: &Filter, exit_code: u8) -> io::Result<()> {
    for f in filter.shown(report) {
        serde_json::to_writer(&mut *out, &FindingJson(f))?;
        out.write_all(b"\n")?;
    }
    let doc = Doc { report, filter, exit_code, with_findings: false };
    serde_json::to_writer(&mut *out, &doc)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{HardLinks, Verdict};
    use crate::sys::meta::FileKind;

    #[test]
    fn saturated_totals_are_flagged_and_noted() {
        // Three 8000 PiB files: their sum does not fit in 64 bits.
        let findings: Vec<Finding> = ["/a", "/b", "/c"]
            .iter()
            .map(|p| {
                let mut f = Finding::new(p.as_bytes().to_vec(), Verdict::Unclaimed, FileKind::File);
                f.entries = Some(1);
                f.size = Some(8000 << 50);
                f
            })
            .collect();
        let report = Report {
            root: b"/".to_vec(),
            source: "walk",
            ephemeral: true,
            flat: false,
            totals: Report::compute_totals(&findings, &HardLinks::default()),
            findings,
            errors: vec![],
            missing_claims: vec![],
            notes: vec!["walked".into()],
            started: std::time::SystemTime::UNIX_EPOCH,
            duration: std::time::Duration::ZERO,
        };
        let mut out = Vec::new();
        let filter = Filter { verdicts: None, min_size: Some(1 << 30) };
        render(&mut out, &report, &filter, 1).expect("render");
        let doc: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(doc["totals"]["unclaimed"]["bytes"], u64::MAX);
        assert_eq!(doc["totals"]["unclaimed"]["saturated"], true);
        assert_eq!(doc["totals"]["kept"]["saturated"], false);
        assert_eq!(doc["findings"].as_array().map(Vec::len), Some(3), "--min-size 1G shows all three");
        let notes = doc["notes"].as_array().cloned().unwrap_or_default();
        assert_eq!(notes.len(), 2);
        assert!(notes[1].as_str().is_some_and(|n| n.contains("saturated")), "{notes:?}");
    }
}
