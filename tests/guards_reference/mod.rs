//! The reference the guards' tally is checked against: the decision taken
//! from a whole flat report, row by row, as `rollback` and `record` took it
//! before their audit streamed (test-only; nothing in darlings calls it).
#![allow(dead_code)]

use std::collections::HashSet;

use darlings::error::ExitCode;
use darlings::report::{Finding, Report, Severity, Verdict};
use darlings::rollback::Loss;
use darlings::sanitize::escape;
use darlings::sys::meta::FileKind;

/// Every field of [`Loss`] from a flat report, lists whole.
pub fn loss(report: &Report, verified: bool) -> Loss {
    let total = report.totals.get(&Verdict::Unclaimed);
    let counted = |f: &&Finding| !f.accepted && f.kind != FileKind::Dir;
    let paths = |keep: &dyn Fn(&Finding) -> bool| -> Vec<String> {
        let mut p: Vec<&[u8]> =
            report.findings.iter().filter(|f| keep(f)).filter(counted).map(|f| f.path.as_slice()).collect();
        p.sort();
        p.into_iter().map(|p| escape(p).into_owned()).collect()
    };
    let mut broken: Vec<Vec<u8>> = report
        .findings
        .iter()
        .filter(|f| f.verdict == Verdict::Broken)
        .filter(counted)
        .map(|f| f.rule.as_ref().map_or_else(|| f.path.clone(), |r| r.pattern.as_bytes().to_vec()))
        .collect();
    broken.sort();
    broken.dedup();
    let holds_nothing = report.errors.is_empty()
        && report.findings.iter().all(|f| match f.verdict {
            Verdict::Recreated | Verdict::Structure | Verdict::Restored | Verdict::Ignored => true,
            Verdict::Kept => !f.unverified,
            _ => false,
        });
    let new_identity = paths(&|f| f.verdict == Verdict::NewIdentity);
    let critical = paths(&|f| f.verdict.is_loss() && f.severity() == Some(Severity::Critical));
    Loss {
        source: report.source.to_owned(),
        claims_verified: verified,
        unclaimed_entries: total.map_or(0, |t| t.entries),
        unclaimed_bytes: total.map_or(0, |t| t.bytes),
        broken: broken.iter().map(|b| escape(b).into_owned()).collect(),
        new_identity_total: new_identity.len() as u64,
        new_identity,
        critical_total: critical.len() as u64,
        critical,
        errors: report.errors.len() as u64,
        holds_nothing,
    }
}

/// The exit code of a flat report, decided row by row.
pub fn exit_code(report: &Report, fail_on: &HashSet<Verdict>, severity: Option<Severity>) -> ExitCode {
    if !report.errors.is_empty() {
        return ExitCode::Incomplete;
    }
    let open: Vec<&Finding> = report.findings.iter().filter(|f| !f.accepted).collect();
    if open.iter().any(|f| f.verdict == Verdict::Broken) {
        return ExitCode::Broken;
    }
    let severe = |f: &Finding| f.verdict.is_loss() && severity.is_some_and(|s| f.severity() >= Some(s));
    if open.iter().any(|f| fail_on.contains(&f.verdict) || severe(f)) {
        return ExitCode::Loss;
    }
    ExitCode::Clean
}

/// The reference's lists cut as the tally cuts them (the first
/// [`darlings::report::Capped::KEPT`]), totals kept.
pub fn capped(mut loss: Loss) -> Loss {
    loss.critical.truncate(darlings::report::Capped::KEPT);
    loss.new_identity.truncate(darlings::report::Capped::KEPT);
    loss
}
