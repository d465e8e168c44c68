//! `--format prometheus`: the node_exporter textfile-collector format.
//!
//! Write it to a `.prom` file in the collector's directory (atomically:
//! write a temporary file, then rename) from a systemd timer; see README.

use std::io::{self, Write};

use crate::report::{Report, Total};

/// Escapes a label value: backslash, double quote and newline.
pub fn label(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

pub fn render(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let root = label(&report.root);
    // Per verdict and severity (`none` where the catalogue knows nothing),
    // as the report totals them; every verdict has its `none` line.
    // Bytes nobody could read (a saved diff without its tree) have no
    // line: a missing sample, not a zero.
    type Pick = fn(&Total) -> Option<u64>;
    let metrics: [(&str, &str, Pick); 3] = [
        ("darlings_findings", "Findings of the last audit.", |t| Some(t.findings)),
        ("darlings_entries", "Paths in the findings of the last audit.", |t| Some(t.entries)),
        (
            "darlings_bytes",
            "Apparent bytes in the findings of the last audit (no sample where sizes are unknown).",
            |t| t.sized().map(|(bytes, _)| bytes),
        ),
    ];
    for (name, help, get) in metrics {
        writeln!(out, "# HELP {name} {help}")?;
        writeln!(out, "# TYPE {name} gauge")?;
        for ((verdict, severity), t) in report.totals.by_severity() {
            let Some(value) = get(t) else { continue };
            let severity = severity.map_or("none", |s| s.name());
            writeln!(
                out,
                "{name}{{root=\"{root}\",verdict=\"{}\",loss=\"{}\",severity=\"{severity}\"}} {}",
                verdict.name(),
                verdict.is_loss(),
                value
            )?;
        }
    }
    let started = report.started.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let scalars: [(&str, &str, String); 5] = [
        ("darlings_audit_errors", "Entries the last audit could not read.", report.errors.len().to_string()),
        (
            "darlings_audit_complete",
            "1 if the last audit read every entry.",
            u8::from(report.complete()).to_string(),
        ),
        (
            "darlings_audit_duration_seconds",
            "How long the last audit took.",
            format!("{:.6}", report.duration.as_secs_f64()),
        ),
        (
            "darlings_audit_timestamp_seconds",
            "When the last audit started (Unix time).",
            format!("{started:.3}"),
        ),
        (
            "darlings_missing_claims",
            "Claimed paths that do not exist.",
            report.missing_claims.len().to_string(),
        ),
    ];
    for (name, help, value) in scalars {
        writeln!(out, "# HELP {name} {help}")?;
        writeln!(out, "# TYPE {name} gauge")?;
        writeln!(out, "{name}{{root=\"{root}\"}} {value}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label(b"/a\"b\\c\nd"), "/a\\\"b\\\\c\\nd");
    }
}
