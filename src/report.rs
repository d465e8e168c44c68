//! The report: findings, errors, totals. Sorting, filtering, acceptance and
//! the exit code live here; formatting lives in `render/`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::claims::matcher::{is_ancestor_or_self, Origin, RuleKind};
use crate::error::ExitCode;
use crate::source::{Change, FileKind};

/// One verdict per finding (the contract's table, in reporting order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Broken,
    Unclaimed,
    NewIdentity,
    /// On the root, hidden under a mount point: erased, and invisible.
    Shadowed,
    Kept,
    Ignored,
    Recreated,
    Structure,
    Restored,
}

impl Verdict {
    pub const ALL: [Verdict; 9] = [
        Verdict::Broken,
        Verdict::Unclaimed,
        Verdict::NewIdentity,
        Verdict::Shadowed,
        Verdict::Kept,
        Verdict::Ignored,
        Verdict::Recreated,
        Verdict::Structure,
        Verdict::Restored,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Broken => "broken",
            Verdict::Unclaimed => "unclaimed",
            Verdict::NewIdentity => "new-identity",
            Verdict::Shadowed => "shadowed",
            Verdict::Kept => "kept",
            Verdict::Ignored => "ignored",
            Verdict::Recreated => "recreated",
            Verdict::Structure => "structure",
            Verdict::Restored => "restored",
        }
    }

    /// Will the next boot lose this?
    pub fn is_loss(self) -> bool {
        matches!(self, Verdict::Broken | Verdict::Unclaimed | Verdict::NewIdentity | Verdict::Shadowed)
    }
}

/// What decided a finding's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub kind: RuleKind,
    pub pattern: String,
    /// `--keep`, `--ignore`, or `FILE:LINE`.
    pub origin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl RuleRef {
    pub fn new(rule: &crate::claims::matcher::Rule) -> RuleRef {
        RuleRef {
            kind: rule.kind,
            pattern: rule.pattern.text().into_owned(),
            origin: match &rule.origin {
                Origin::Flag(f) => (*f).to_owned(),
                o => o.to_string(),
            },
            reason: rule.reason.clone(),
        }
    }
}

/// One row of the report: a path (or a whole subtree) with its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: Vec<u8>,
    pub verdict: Verdict,
    pub change: Change,
    pub kind: FileKind,
    /// Paths in this finding (a grouped subtree counts all of them, itself
    /// included); `None` where the subtree was not walked (kept, ignored).
    pub entries: Option<u64>,
    /// Apparent bytes of the non-directories in it.
    pub size: Option<u64>,
    /// Allocated bytes of the non-directories in it.
    pub disk: Option<u64>,
    /// Newest modification time in it (seconds since the epoch), from a live tree.
    pub mtime: Option<i64>,
    /// Newest inode change time in it, from a change list (`zfs diff -t`)
    /// when no live tree gives `mtime`.
    pub ctime: Option<i64>,
    /// The old name of a renamed path (it comes back under that name).
    pub renamed_from: Option<Vec<u8>>,
    pub rule: Option<RuleRef>,
    /// Why, in a few words: "mount point (tmpfs)", "symlink to /persist/x".
    pub detail: Option<String>,
    /// A claim trusted by `--assume-claims`, not checked.
    pub unverified: bool,
    /// Listed in the `--accepted` file: shown, never raises the exit code.
    pub accepted: bool,
    /// The catalogue entry this loss is, lies in, or holds.
    pub precious: Option<crate::knowledge::Precious>,
    /// That entry's concrete path: what a claim would name to keep it.
    pub keep_path: Option<Vec<u8>>,
}

impl Finding {
    pub fn new(path: Vec<u8>, verdict: Verdict, kind: FileKind) -> Finding {
        Finding {
            path,
            verdict,
            change: Change::Present,
            kind,
            entries: None,
            size: None,
            disk: None,
            mtime: None,
            ctime: None,
            renamed_from: None,
            rule: None,
            detail: None,
            unverified: false,
            accepted: false,
            precious: None,
            keep_path: None,
        }
    }

    pub fn severity(&self) -> Option<crate::knowledge::Severity> {
        self.precious.as_ref().map(|p| p.severity)
    }
}

/// An entry the audit could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub path: Vec<u8>,
    pub operation: &'static str,
    pub message: String,
    pub errno: Option<i32>,
}

/// A keep rule naming a path that does not exist (not a loss).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingClaim {
    pub path: Vec<u8>,
    pub rule: RuleRef,
}

/// Counts for one verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Total {
    pub findings: u64,
    pub entries: u64,
    pub bytes: u64,
    pub disk: u64,
}

/// A file with several names, seen by the walk (for counting it once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkKey {
    pub dev: u64,
    pub ino: u64,
}

/// How often each multiply-linked file was counted in each verdict.
#[derive(Debug, Default)]
pub struct HardLinks {
    seen: HashMap<LinkKey, (u64, u64, Vec<Verdict>)>,
}

impl HardLinks {
    pub fn record(&mut self, key: LinkKey, size: u64, disk: u64, verdict: Verdict) {
        self.seen.entry(key).or_insert((size, disk, Vec::new())).2.push(verdict);
    }

    pub fn merge(&mut self, other: HardLinks) {
        for (key, (size, disk, verdicts)) in other.seen {
            self.seen.entry(key).or_insert((size, disk, Vec::new())).2.extend(verdicts);
        }
    }
}

#[derive(Debug)]
pub struct Report {
    /// The audited root as given (`--root`).
    pub root: Vec<u8>,
    pub source: &'static str,
    pub flat: bool,
    pub findings: Vec<Finding>,
    pub errors: Vec<EntryError>,
    pub missing_claims: Vec<MissingClaim>,
    pub notes: Vec<String>,
    /// Per verdict, over every finding (filters never change them).
    pub totals: BTreeMap<Verdict, Total>,
    pub started: SystemTime,
    pub duration: Duration,
}

impl Report {
    /// Totals per verdict; bytes of a file with several names counted once.
    pub fn compute_totals(findings: &[Finding], links: &HardLinks) -> BTreeMap<Verdict, Total> {
        let mut totals: BTreeMap<Verdict, Total> =
            Verdict::ALL.iter().map(|&v| (v, Total::default())).collect();
        for f in findings {
            let t = totals.entry(f.verdict).or_default();
            t.findings += 1;
            t.entries += f.entries.unwrap_or(0);
            t.bytes += f.size.unwrap_or(0);
            t.disk += f.disk.unwrap_or(0);
        }
        for (size, disk, verdicts) in links.seen.values() {
            let mut counts: HashMap<Verdict, u64> = HashMap::new();
            for v in verdicts {
                *counts.entry(*v).or_default() += 1;
            }
            for (v, n) in counts {
                let t = totals.entry(v).or_default();
                t.bytes = t.bytes.saturating_sub(size * (n - 1));
                t.disk = t.disk.saturating_sub(disk * (n - 1));
            }
        }
        totals
    }

    /// Every entry was read.
    pub fn complete(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn sort(&mut self, key: SortKey) {
        match key {
            SortKey::Path => self.findings.sort_by(|a, b| a.path.cmp(&b.path)),
            SortKey::Size => self.findings.sort_by(|a, b| {
                b.size.unwrap_or(0).cmp(&a.size.unwrap_or(0)).then_with(|| a.path.cmp(&b.path))
            }),
        }
    }

    /// The exit code the contract gives this report: a loss raises it when
    /// its verdict is in `fail_on`, or its severity reaches `severity`.
    pub fn exit_code(
        &self,
        fail_on: &HashSet<Verdict>,
        severity: Option<crate::knowledge::Severity>,
    ) -> ExitCode {
        if !self.complete() {
            return ExitCode::Incomplete;
        }
        let open = || self.findings.iter().filter(|f| !f.accepted);
        if open().any(|f| f.verdict == Verdict::Broken) {
            return ExitCode::Broken;
        }
        let severe = |f: &Finding| f.verdict.is_loss() && severity.is_some_and(|s| f.severity() >= Some(s));
        if open().any(|f| fail_on.contains(&f.verdict) || severe(f)) {
            return ExitCode::Loss;
        }
        ExitCode::Clean
    }
}

/// The order of findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SortKey {
    /// By path, bytewise
    #[default]
    Path,
    /// Largest first
    Size,
}

/// What `--accepted` accepts: paths (with everything below them), either
/// with any verdict (an accept list) or with the verdict a previous report
/// gave them.
#[derive(Debug, Default)]
pub struct Accepted {
    entries: Vec<(Vec<u8>, Option<Verdict>)>,
}

impl Accepted {
    pub fn new(entries: Vec<(Vec<u8>, Option<Verdict>)>) -> Accepted {
        Accepted { entries }
    }

    pub fn matches(&self, f: &Finding) -> bool {
        self.entries.iter().any(|(path, verdict)| {
            verdict.is_none_or(|v| v == f.verdict) && is_ancestor_or_self(path, &f.path)
        })
    }

    pub fn apply(&self, findings: &mut [Finding]) {
        if self.entries.is_empty() {
            return;
        }
        for f in findings.iter_mut() {
            f.accepted = f.verdict.is_loss() && self.matches(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(path: &str, verdict: Verdict, size: u64) -> Finding {
        let mut f = Finding::new(path.as_bytes().to_vec(), verdict, FileKind::File);
        f.entries = Some(1);
        f.size = Some(size);
        f.disk = Some(size);
        f
    }

    fn report(findings: Vec<Finding>) -> Report {
        Report {
            root: b"/".to_vec(),
            source: "walk",
            flat: false,
            totals: Report::compute_totals(&findings, &HardLinks::default()),
            findings,
            errors: vec![],
            missing_claims: vec![],
            notes: vec![],
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn exit_codes_highest_applicable_wins() {
        let all: HashSet<Verdict> = [Verdict::Unclaimed, Verdict::Broken, Verdict::NewIdentity].into();
        assert_eq!(report(vec![finding("/k", Verdict::Kept, 1)]).exit_code(&all, None), ExitCode::Clean);
        assert_eq!(report(vec![finding("/u", Verdict::Unclaimed, 1)]).exit_code(&all, None), ExitCode::Loss);
        let mut r = report(vec![finding("/u", Verdict::Unclaimed, 1), finding("/b", Verdict::Broken, 1)]);
        assert_eq!(r.exit_code(&all, None), ExitCode::Broken);
        r.errors.push(EntryError {
            path: b"/x".to_vec(),
            operation: "stat",
            message: "denied".into(),
            errno: Some(13),
        });
        assert_eq!(r.exit_code(&all, None), ExitCode::Incomplete);
        let none = HashSet::new();
        assert_eq!(
            report(vec![finding("/u", Verdict::Unclaimed, 1)]).exit_code(&none, None),
            ExitCode::Clean
        );
        assert_eq!(ExitCode::Broken.code(), 3);
        assert_eq!(ExitCode::Incomplete.code(), 2);
    }

    #[test]
    fn accepted_findings_do_not_count() {
        let all: HashSet<Verdict> = [Verdict::Unclaimed].into();
        let mut r =
            report(vec![finding("/var/cache/x/y", Verdict::Unclaimed, 1), finding("/b", Verdict::Broken, 1)]);
        let acc =
            Accepted::new(vec![(b"/var/cache".to_vec(), None), (b"/b".to_vec(), Some(Verdict::Unclaimed))]);
        acc.apply(&mut r.findings);
        assert!(r.findings[0].accepted);
        assert!(!r.findings[1].accepted, "a previous unclaimed /b does not accept a broken /b");
        assert_eq!(r.exit_code(&all, None), ExitCode::Broken);
    }

    #[test]
    fn hard_links_count_once_per_verdict() {
        let findings = vec![finding("/a", Verdict::Unclaimed, 100), finding("/b", Verdict::Unclaimed, 100)];
        let mut links = HardLinks::default();
        links.record(LinkKey { dev: 1, ino: 7 }, 100, 100, Verdict::Unclaimed);
        links.record(LinkKey { dev: 1, ino: 7 }, 100, 100, Verdict::Unclaimed);
        let t = Report::compute_totals(&findings, &links);
        assert_eq!(t[&Verdict::Unclaimed], Total { findings: 2, entries: 2, bytes: 100, disk: 100 });
    }
}
