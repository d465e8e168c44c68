//! The rollback's companions that read or mark, never erase: `mark`,
//! `archives`, `record` (the audit kept on the root for the initrd) and
//! `status` (text, JSON as data, and Prometheus textfile metrics so that a
//! silent refusal in the initrd shows up in monitoring).
//!
//! Each writes through one [`Out`]: a reader that goes away is not an
//! error, and nothing here panics on a closed stdout.

use std::io::Write;

use super::{age, now, Archive, Error, LastRollback, Outcome, Record, Result, Target};
use crate::cli::{ArchivesArgs, MarkArgs, PlanFormat, StatusArgs, StatusFormat};
use crate::config::TargetNames;
use crate::error::ExitCode;
use crate::sanitize::{escape, terminal_safe};
use crate::sys::fmt::{human_size, rfc3339, time_text};
use crate::sys::output::Out;

/// Writes `text` to stdout through the one writer: a closed pipe is fine,
/// any other failure an error.
pub(super) fn print(text: &str) -> Result<()> {
    let mut out = Out::stdout();
    let _ = out.write_all(text.as_bytes());
    out.finish().map_err(|e| Error::io("cannot write to stdout", e))
}

/// `darlings mark`.
pub fn mark(args: &MarkArgs) -> Result<ExitCode> {
    let names = TargetNames::new(&args.which, Some(&args.subvolume), None, None).waiting(&args.wait);
    let target = Target::open(&names, true)?;
    let _lock = target.backend().lock(names.wait)?;
    let text = target.backend().mark(!args.off)?;
    print(&format!("{}\n", terminal_safe(&text)))?;
    Ok(ExitCode::Clean)
}

fn archive_json(a: &Archive) -> serde_json::Value {
    serde_json::json!({
        "name": a.name,
        "created": a.created.and_then(rfc3339),
        "size": a.size,
        "darlings": a.ours,
        "holds_data": a.holds,
        "read_only": a.read_only,
        "mounted": a.mounted,
    })
}

/// `darlings archives`.
pub fn archives(args: &ArchivesArgs) -> Result<ExitCode> {
    let target = Target::open(&TargetNames::new(&args.which, None, None, Some(&args.archive)), false)?;
    let list = target.archives()?;
    let now = now();
    if args.format == PlanFormat::Json {
        let value: Vec<_> = list.iter().map(archive_json).collect();
        print(&format!("{}\n", serde_json::to_string_pretty(&value).unwrap_or_default()))?;
        return Ok(ExitCode::Clean);
    }
    if list.is_empty() {
        print(&format!("no archives of {}\n", terminal_safe(&target.name())))?;
        return Ok(ExitCode::Clean);
    }
    let mut text = format!("{:<24} {:<22} {:>12}  made by\n", "archive", "made", "size");
    for a in &list {
        let mut by = if a.ours { "darlings" } else { "someone else (never pruned)" }.to_owned();
        if !a.holds_data() {
            by.push_str(", holds no data");
        }
        if a.read_only == Some(false) {
            by.push_str(", WRITABLE (an interrupted rollback? the next rollback makes it read-only)");
        }
        if !a.mounted.is_empty() {
            by.push_str(&format!(
                ", mounted at {}",
                a.mounted.iter().map(|m| escape(m.as_bytes())).collect::<Vec<_>>().join(", ")
            ));
        }
        text.push_str(&format!(
            "{:<24} {:<22} {:>12}  {by}\n",
            escape(a.name.as_bytes()),
            a.created.map_or("?".into(), |c| age(c, now)),
            a.size.map_or("?".into(), human_size),
        ));
    }
    print(&text)?;
    Ok(ExitCode::Clean)
}

/// What `status` knows about a target; each part may be unknown, with why.
struct Status {
    target: String,
    marked: Option<String>,
    last: Option<std::result::Result<LastRollback, String>>,
    /// Whether the last rollback's archive holds the root it moved aside.
    kept: Option<bool>,
    record: std::result::Result<Option<Record>, String>,
    archives: std::result::Result<Vec<Archive>, String>,
}

/// `darlings status`.
pub fn status(args: &StatusArgs) -> Result<ExitCode> {
    let names = TargetNames::new(&args.which, Some(&args.subvolume), None, Some(&args.archive));
    let target = Target::open(&names, false)?;
    let b = target.backend();
    let last = b.last_outcome();
    let s = Status {
        target: b.name(),
        marked: b.marked()?,
        kept: match &last {
            Some(Ok(l)) if l.archive.is_some() => b.archive_holds_root(l),
            _ => None,
        },
        last,
        record: super::record::read(b),
        archives: target.archives().map_err(|e| e.to_string()),
    };
    let text = match args.format {
        StatusFormat::Text => status_text(&s, now()),
        StatusFormat::Json => {
            format!("{}\n", serde_json::to_string_pretty(&status_json(&s)).unwrap_or_default())
        }
        StatusFormat::Prometheus => status_prometheus(&s),
    };
    print(&text)?;
    Ok(ExitCode::Clean)
}

fn status_text(s: &Status, now: i64) -> String {
    let mut out = String::new();
    out.push_str(&format!("target:         {}\n", s.target));
    out.push_str(&format!("marked:         {}\n", s.marked.as_deref().unwrap_or("no (rollback refuses it)")));
    let last = match &s.last {
        None => "none recorded".to_owned(),
        Some(Ok(l)) => l.summary(s.kept),
        Some(Err(why)) => format!("unreadable: {why}"),
    };
    out.push_str(&format!("last rollback:  {last}\n"));
    match &s.record {
        Ok(Some(r)) => out.push_str(&format!(
            "recorded audit: {}: {} unclaimed entries ({}), {} broken claims, {} critical; {}\n",
            time_text(r.time),
            r.counts.unclaimed_entries,
            human_size(r.counts.unclaimed_bytes),
            r.counts.broken,
            r.counts.critical,
            if r.decision.erase {
                "the next rollback may erase".to_owned()
            } else {
                format!("the next rollback refuses: {}", r.decision.reasons.join("; "))
            }
        )),
        Ok(None) => out.push_str("recorded audit: none (run `darlings record` at shutdown)\n"),
        Err(why) => out.push_str(&format!("recorded audit: unreadable: {why}\n")),
    }
    match &s.archives {
        Ok(list) => out.push_str(&format!(
            "archives:       {}{}\n",
            list.len(),
            list.first().map_or(String::new(), |a| format!(
                ", newest {} ({})",
                escape(a.name.as_bytes()),
                a.created.map_or("?".into(), |c| age(c, now))
            ))
        )),
        Err(why) => out.push_str(&format!("archives:       unknown: {why}\n")),
    }
    terminal_safe(&out).into_owned()
}

fn status_json(s: &Status) -> serde_json::Value {
    let last = match &s.last {
        Some(Ok(l)) => serde_json::json!({
            "time": rfc3339(l.time),
            "outcome": l.outcome.name(),
            "reasons": l.reasons,
            "archive": l.archive,
            "archive_kept": s.kept,
            "steps": l.steps,
            "steps_done": l.steps_done,
            "initrd": l.initrd,
            "output_lost": l.output_lost,
            "warnings": l.warnings,
        }),
        _ => serde_json::Value::Null,
    };
    let record = match &s.record {
        Ok(Some(r)) => serde_json::json!({
            "time": rfc3339(r.time),
            "counts": r.counts,
            "claims_verified": r.claims_verified,
            "decision": r.decision,
            "claims": r.claims.len(),
        }),
        _ => serde_json::Value::Null,
    };
    let errors: Vec<String> = [
        s.last.as_ref().and_then(|l| l.as_ref().err()).map(|e| format!("last rollback: {e}")),
        s.record.as_ref().err().map(|e| format!("recorded audit: {e}")),
        s.archives.as_ref().err().map(|e| format!("archives: {e}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    serde_json::json!({
        "schema_version": 1,
        "target": s.target,
        "marked": s.marked.is_some(),
        "mark": s.marked,
        "last_rollback": last,
        "record": record,
        "archives": s.archives.as_ref().map(|l| l.iter().map(archive_json).collect::<Vec<_>>()).unwrap_or_default(),
        "errors": errors,
    })
}

/// The node_exporter textfile format: every metric named `darlings_…`,
/// with its HELP and TYPE, labelled with the target.
fn status_prometheus(s: &Status) -> String {
    let target = crate::render::prometheus::label(s.target.as_bytes());
    let last = s.last.as_ref().and_then(|l| l.as_ref().ok());
    let record = s.record.as_ref().ok().and_then(Option::as_ref);
    let archives = s.archives.as_ref().ok();
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, samples: Vec<(String, u64)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for (labels, value) in samples {
            out.push_str(&format!("{name}{{target=\"{target}\"{labels}}} {value}\n"));
        }
    };
    let one = |v: u64| vec![(String::new(), v)];
    let secs = |t: i64| u64::try_from(t).unwrap_or(0);
    metric(
        "darlings_rollback_marked",
        "1 if the target carries the ephemeral mark.",
        one(u64::from(s.marked.is_some())),
    );
    metric(
        "darlings_rollback_last_timestamp_seconds",
        "When the last rollback ran or was refused (0: none recorded).",
        one(last.map_or(0, |l| secs(l.time))),
    );
    metric(
        "darlings_rollback_last_outcome",
        "1 for the outcome of the last rollback (erased, refused, failed, interrupted), 0 for the others.",
        Outcome::ALL
            .iter()
            .map(|o| (format!(",outcome=\"{}\"", o.name()), u64::from(last.is_some_and(|l| l.outcome == *o))))
            .collect(),
    );
    metric(
        "darlings_rollback_last_refusals",
        "Reasons the last rollback was refused for (0 unless it was refused).",
        one(last.filter(|l| l.outcome == Outcome::Refused).map_or(0, |l| l.reasons.len() as u64)),
    );
    metric(
        "darlings_rollback_last_initrd",
        "1 if the last rollback ran in the initrd.",
        one(u64::from(last.is_some_and(|l| l.initrd))),
    );
    metric(
        "darlings_rollback_last_output_lost",
        "1 if the last rollback could not print all of its output.",
        one(u64::from(last.is_some_and(|l| l.output_lost.is_some()))),
    );
    metric(
        "darlings_rollback_record_timestamp_seconds",
        "When the audit for the next rollback was recorded (0: none).",
        one(record.map_or(0, |r| secs(r.time))),
    );
    metric(
        "darlings_rollback_record_allows",
        "1 if the recorded audit allows the next rollback to erase.",
        one(u64::from(record.is_some_and(|r| r.decision.erase))),
    );
    metric(
        "darlings_archives",
        "Archives of erased roots kept.",
        one(archives.map_or(0, |a| a.len() as u64)),
    );
    metric(
        "darlings_archives_bytes",
        "Bytes the archives take (as far as known).",
        one(archives.map_or(0, |a| a.iter().filter_map(|a| a.size).sum())),
    );
    metric(
        "darlings_status_complete",
        "1 if status could read the last rollback, the record and the archives.",
        one(u64::from(!matches!(s.last, Some(Err(_))) && s.record.is_ok() && s.archives.is_ok())),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(last: Option<LastRollback>) -> Status {
        Status {
            target: "tank/local/\"root\"\n".into(),
            marked: Some("yes".into()),
            kept: None,
            last: last.map(Ok),
            record: Ok(None),
            archives: Ok(vec![Archive { name: "x".into(), size: Some(10), ..Archive::default() }]),
        }
    }

    #[test]
    fn prometheus_names_the_outcome_and_escapes_the_target() {
        let text = status_prometheus(&status(Some(LastRollback {
            initrd: true,
            ..LastRollback::new(1_795_702_030, Outcome::Refused, vec!["a".into(), "b".into()])
        })));
        assert!(text.contains("darlings_rollback_last_outcome{target=\"tank/local/\\\"root\\\"\\n\",outcome=\"refused\"} 1\n"), "{text}");
        assert!(text.contains(",outcome=\"erased\"} 0\n"), "{text}");
        assert!(
            text.contains("darlings_rollback_last_refusals{target=\"tank/local/\\\"root\\\"\\n\"} 2\n"),
            "{text}"
        );
        assert!(text.contains(
            "darlings_rollback_last_timestamp_seconds{target=\"tank/local/\\\"root\\\"\\n\"} 1795702030\n"
        ));
        assert!(text.contains("darlings_archives_bytes{target=\"tank/local/\\\"root\\\"\\n\"} 10\n"));
        let none = status_prometheus(&status(None));
        assert!(none
            .contains("darlings_rollback_last_timestamp_seconds{target=\"tank/local/\\\"root\\\"\\n\"} 0\n"));
        assert!(!none.contains("} 1\n") || none.contains("darlings_rollback_marked"), "{none}");
    }

    #[test]
    fn json_is_data() {
        let v = status_json(&status(Some(LastRollback::new(0, Outcome::Erased, vec![]))));
        assert_eq!(v["marked"], true);
        assert_eq!(v["last_rollback"]["outcome"], "erased");
        assert_eq!(v["last_rollback"]["time"], "1970-01-01T00:00:00Z");
        assert_eq!(v["record"], serde_json::Value::Null);
        assert_eq!(v["archives"][0]["name"], "x");
    }
}
