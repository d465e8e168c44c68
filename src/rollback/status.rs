//! The rollback's companions that read or mark, never erase: `mark`,
//! `archives`, `record` (the audit kept on the root for the initrd) and
//! `status`.

use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};

use super::{age, now, shown, Loss, Record, Target, RECORD_XATTR};
use crate::cli::{ArchivesArgs, MarkArgs, PlanFormat, RecordArgs, StatusArgs};
use crate::error::ExitCode;
use crate::sanitize::escape;
use crate::sys::fmt::human_size;

/// `darlings mark`.
pub fn mark(args: &MarkArgs) -> Result<ExitCode> {
    let target = Target::open(&args.target, true)?;
    let text = match &target {
        Target::Zfs(z) => z.mark(!args.off)?,
        Target::Btrfs(b) => b.mark(!args.off)?,
    };
    println!("{text}");
    Ok(ExitCode::Clean)
}

/// `darlings archives`.
pub fn archives(args: &ArchivesArgs) -> Result<ExitCode> {
    let target = Target::open(&args.target, false)?;
    let list = target.archives()?;
    let now = now();
    let out = &mut io::stdout().lock();
    if args.format == PlanFormat::Json {
        let value: Vec<_> = list
            .iter()
            .map(|a| {
                serde_json::json!({
                    "name": a.name,
                    "created": a.created.map(crate::render::rfc3339),
                    "size": a.size,
                    "darlings": a.ours,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &value)?;
        writeln!(out)?;
        return Ok(ExitCode::Clean);
    }
    if list.is_empty() {
        writeln!(out, "no archives of {}", target.name())?;
        return Ok(ExitCode::Clean);
    }
    writeln!(out, "{:<24} {:<22} {:>12}  made by", "archive", "made", "size")?;
    for a in &list {
        writeln!(
            out,
            "{:<24} {:<22} {:>12}  {}",
            escape(a.name.as_bytes()),
            a.created.map_or("?".into(), |c| age(c, now)),
            a.size.map_or("?".into(), human_size),
            if a.ours { "darlings" } else { "someone else (never pruned)" }
        )?;
    }
    Ok(ExitCode::Clean)
}

/// `darlings record`: audits the running root and keeps the summary on it,
/// for the initrd's rollback (which cannot check claims) to read.
pub fn record(args: &RecordArgs) -> Result<ExitCode> {
    let cfg = crate::config::Audit::from_args(&args.audit)?;
    let report = crate::audit::run(&cfg)?;
    let code = report.exit_code(&cfg.fail_on, cfg.fail_severity);
    let loss = Loss::from_report(&report, !cfg.rules.assume_claims);
    let record = Record {
        time: now(),
        unclaimed_entries: loss.unclaimed_entries,
        unclaimed_bytes: loss.unclaimed_bytes,
        broken: loss.broken.len() as u64,
        critical: loss.critical.len() as u64,
        errors: loss.errors as u64,
    };
    let text = serde_json::to_string(&record)?;
    rustix::fs::setxattr(&cfg.rules.root, RECORD_XATTR, text.as_bytes(), rustix::fs::XattrFlags::empty())
        .with_context(|| {
            format!("cannot record the audit on {} ({RECORD_XATTR})", cfg.rules.root.display())
        })?;
    println!("{text}");
    Ok(code)
}

/// Reads the record of `darlings record` from a root directory.
pub fn read_record(root: &Path) -> Result<Option<Record>> {
    let mut buf = vec![0u8; 4096];
    match rustix::fs::getxattr(root, RECORD_XATTR, &mut buf[..]) {
        Ok(n) => {
            let record = serde_json::from_slice(&buf[..n])
                .with_context(|| format!("{RECORD_XATTR} of {} is not a darlings record", root.display()))?;
            Ok(Some(record))
        }
        Err(rustix::io::Errno::NODATA) => Ok(None),
        Err(e) => Err(anyhow::Error::from(io::Error::from(e)))
            .with_context(|| format!("cannot read {RECORD_XATTR} of {}", root.display())),
    }
}

/// `darlings status`.
pub fn status(args: &StatusArgs) -> Result<ExitCode> {
    let target = Target::open(&args.target, false)?;
    let marked = target.marked()?;
    let last = target.last_outcome();
    let record = target.read_record().ok().flatten();
    let archives = target.archives().map_err(|e| format!("{e:#}"));
    let out = &mut io::stdout().lock();
    if args.format == PlanFormat::Json {
        let value = serde_json::json!({
            "target": target.name(),
            "marked": marked,
            "last_rollback": last,
            "recorded_audit": record,
            "archives": archives.as_ref().ok().map(Vec::len),
            "newest_archive": archives.as_ref().ok().and_then(|a| a.first()).map(|a| &a.name),
        });
        serde_json::to_writer_pretty(&mut *out, &value)?;
        writeln!(out)?;
        return Ok(ExitCode::Clean);
    }
    writeln!(out, "target:         {}", target.name())?;
    writeln!(out, "marked:         {}", marked.as_deref().unwrap_or("no (rollback refuses it)"))?;
    writeln!(out, "last rollback:  {}", shown(last.as_deref().unwrap_or("none recorded")))?;
    match record {
        Some(r) => writeln!(
            out,
            "recorded audit: {}: {} unclaimed entries ({}), {} broken claims, {} critical",
            crate::render::rfc3339(r.time),
            r.unclaimed_entries,
            human_size(r.unclaimed_bytes),
            r.broken,
            r.critical
        )?,
        None => writeln!(out, "recorded audit: none (run `darlings record` at shutdown)")?,
    }
    match &archives {
        Ok(list) => writeln!(
            out,
            "archives:       {}{}",
            list.len(),
            list.first().map_or(String::new(), |a| format!(", newest {}", a.name))
        )?,
        Err(why) => writeln!(out, "archives:       unknown: {why}")?,
    }
    Ok(ExitCode::Clean)
}
