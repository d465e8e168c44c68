//! The plan for people (text) and for programs (one JSON object). Text
//! fields of the plan are already safe for a terminal (names escaped,
//! commands quoted); what came from outside the plan is made safe here.

use std::fmt::Write;

use super::flow::Done;
use super::{age, Plan};
use crate::error::ExitCode;
use crate::sanitize::terminal_safe;
use crate::sys::fmt::{human_size, rfc3339, time_text};

/// The plan as text, every line ending in a newline.
pub fn plan_text(plan: &Plan, now: i64) -> String {
    let mut out = String::new();
    let _ = write_plan(&mut out, plan, now);
    terminal_safe(&out).into_owned()
}

fn write_plan(out: &mut String, plan: &Plan, now: i64) -> std::fmt::Result {
    writeln!(out, "Rollback plan ({})", plan.backend)?;
    writeln!(out, "  target:     {}", plan.target)?;
    let made =
        plan.blank_created.map_or(String::new(), |t| format!(", made {} ({})", time_text(t), age(t, now)));
    writeln!(out, "  blank:      {}{made}", plan.blank)?;
    let marked = match &plan.facts.mark {
        super::Mark::Marked(how) => how.as_str(),
        _ => "NO",
    };
    writeln!(out, "  marked:     {marked}")?;
    for m in &plan.mounted {
        writeln!(out, "  mounted:    {m}")?;
    }
    match &plan.facts.loss {
        Some(loss) => {
            writeln!(
                out,
                "  erases:     {} unclaimed entries ({}), {} broken claims, {} new identities, {} critical{}",
                loss.unclaimed_entries,
                human_size(loss.unclaimed_bytes),
                loss.broken.len(),
                loss.new_identity_total,
                loss.critical_total,
                if loss.claims_verified { "" } else { " (claims assumed, not checked)" }
            )?;
            for c in &loss.critical {
                writeln!(out, "              critical: {c}")?;
            }
            let more = loss.critical_total.saturating_sub(loss.critical.len() as u64);
            if more > 0 {
                let paths = if more == 1 { "path" } else { "paths" };
                writeln!(out, "              and {more} more critical {paths}")?;
            }
            if loss.errors > 0 {
                writeln!(out, "              {} entries could not be read", loss.errors)?;
            }
        }
        None if !plan.steps.is_empty() => writeln!(out, "  erases:     not audited")?,
        None => {}
    }
    for d in &plan.destroyed {
        writeln!(out, "  destroys:   {d}")?;
    }
    for c in &plan.children {
        writeln!(out, "  child:      {c}")?;
    }
    writeln!(out, "  way back:   {}", plan.archive.as_deref().unwrap_or("none"))?;
    for p in &plan.pruned {
        writeln!(out, "  prunes:     {p} (retention)")?;
    }
    for k in &plan.retained {
        writeln!(out, "  keeps:      {k}")?;
    }
    for n in &plan.notes {
        writeln!(out, "  note:       {n}")?;
    }
    if !plan.steps.is_empty() {
        writeln!(out, "Commands:")?;
        for (i, s) in plan.steps.iter().enumerate() {
            writeln!(out, "  {}. {}", i + 1, s.action.display())?;
            writeln!(out, "       {}", s.what)?;
        }
    }
    Ok(())
}

/// The refusals that stand, as the text ends with them.
pub fn refusals_text(plan: &Plan) -> String {
    let mut out = String::from("\nRefused, nothing was changed:\n");
    for r in &plan.refusals {
        let lift = r.unless.map_or(String::new(), |o| format!(" (pass {} to go ahead anyway)", o.flag()));
        let _ = writeln!(out, "  - {}{lift}", r.reason);
    }
    terminal_safe(&out).into_owned()
}

pub fn plan_json(plan: &Plan, done: &Done, dry_run: bool, code: ExitCode) -> serde_json::Value {
    serde_json::json!({
        "backend": plan.backend,
        "target": plan.target,
        "blank": plan.blank,
        "blank_created": plan.blank_created.and_then(rfc3339),
        "marked": match &plan.facts.mark { super::Mark::Marked(how) => Some(how), _ => None },
        "mounted": plan.mounted,
        "loss": plan.facts.loss,
        "destroys": plan.destroyed,
        "children": plan.children,
        "archive": plan.archive,
        "prunes": plan.pruned,
        "keeps": plan.retained,
        "notes": plan.notes,
        "commands": plan.steps.iter().map(|s| serde_json::json!({
            "argv": s.action.argv(),
            "shell": s.action.display(),
            "what": s.what,
            "if_fails": s.if_fails,
        })).collect::<Vec<_>>(),
        "refusals": plan.refusals.iter().map(|r| serde_json::json!({
            "reason": r.reason,
            "unless": r.unless.map(super::Override::flag),
            "exit_code": r.code.code(),
        })).collect::<Vec<_>>(),
        "dry_run": dry_run,
        // As `status` records it; a refusal outside the initrd is not
        // recorded, and is still one.
        "outcome": done.last.as_ref().map(|l| l.outcome.name())
            .or_else(|| (!plan.refusals.is_empty()).then_some(super::Outcome::Refused.name())),
        "not_confirmed": done.not_confirmed,
        "commands_done": done.steps_done,
        "failed": done.failed,
        "verified": done.verified.iter().map(|(what, ok)| serde_json::json!({"check": what, "ok": ok})).collect::<Vec<_>>(),
        "warnings": done.warnings,
        "exit_code": code.code(),
    })
}
