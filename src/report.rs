//! The report: findings, errors, missing claims, notes and totals.
//!
//! Totals are computed here, once ([`Report::compute_totals`]); every
//! format reads [`Totals`] and none adds up findings itself. Sorting,
//! acceptance ([`accepted`]) and the exit code live here too; what is
//! shown and how lives in `render/`.

pub mod accepted;
mod precious;
mod rule;
pub mod tally;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use accepted::Accepted;
pub use precious::{Precious, Severity};
pub use rule::{Origin, RuleKind, RuleRef};
pub use tally::{Capped, Tally};

use crate::error::ExitCode;
use crate::sys::meta::{Change, FileKind};

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
    pub precious: Option<crate::report::Precious>,
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

    pub fn severity(&self) -> Option<crate::report::Severity> {
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

/// Counts for one verdict (or one verdict and severity).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Total {
    pub findings: u64,
    pub entries: u64,
    /// Bytes of the findings whose size is known (see [`Total::sized`]).
    pub bytes: u64,
    pub disk: u64,
    /// A count exceeded `u64::MAX` and is shown as `u64::MAX`: the real
    /// value is larger.
    pub saturated: bool,
    /// Findings counted with entries but no size: read from a change list
    /// alone (a saved diff without `--root`), or gone from the tree since
    /// the list was made. Their bytes are unknown, not zero.
    pub size_unknown: u64,
}

impl Total {
    /// `(bytes, disk)` when every finding's size is known: otherwise the
    /// total is not known either (JSON `null`, "size unknown" in prose).
    pub fn sized(&self) -> Option<(u64, u64)> {
        (self.size_unknown == 0).then_some((self.bytes, self.disk))
    }
}

/// JSON: `bytes` and `disk` are `null` when not every size is known
/// (`size_unknown` says how many findings lack one), as a finding's `size` is.
impl Serialize for Total {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let sized = self.sized();
        let mut m = s.serialize_struct("Total", 6)?;
        m.serialize_field("findings", &self.findings)?;
        m.serialize_field("entries", &self.entries)?;
        m.serialize_field("bytes", &sized.map(|(b, _)| b))?;
        m.serialize_field("disk", &sized.map(|(_, d)| d))?;
        m.serialize_field("saturated", &self.saturated)?;
        m.serialize_field("size_unknown", &self.size_unknown)?;
        m.end()
    }
}

/// A [`Total`] being summed, wide enough never to wrap (each addend is a
/// `u64`, and there are fewer than 2^64 of them).
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    findings: u128,
    entries: u128,
    bytes: u128,
    disk: u128,
    size_unknown: u128,
}

impl Sum {
    fn add(&mut self, f: &Finding) {
        self.findings += 1;
        self.entries += u128::from(f.entries.unwrap_or(0));
        self.bytes += u128::from(f.size.unwrap_or(0));
        self.disk += u128::from(f.disk.unwrap_or(0));
        // A loss counted in entries whose size nobody could read (kept and
        // ignored rows are not walked: no size is expected of them).
        if f.verdict.is_loss() && f.entries.is_some_and(|e| e > 0) && f.size.is_none() {
            self.size_unknown += 1;
        }
    }

    fn merge(&mut self, other: &Sum) {
        self.findings += other.findings;
        self.entries += other.entries;
        self.bytes += other.bytes;
        self.disk += other.disk;
        self.size_unknown += other.size_unknown;
    }

    /// Takes back bytes counted more than once, never below zero.
    fn take(&mut self, bytes: u128, disk: u128) {
        self.bytes = self.bytes.saturating_sub(bytes);
        self.disk = self.disk.saturating_sub(disk);
    }

    /// Clamped to `u64`; `saturated` says whether anything was.
    fn total(self) -> Total {
        let mut saturated = false;
        let mut clamp = |n: u128| {
            u64::try_from(n).unwrap_or_else(|_| {
                saturated = true;
                u64::MAX
            })
        };
        let (findings, entries, bytes, disk) =
            (clamp(self.findings), clamp(self.entries), clamp(self.bytes), clamp(self.disk));
        let size_unknown = clamp(self.size_unknown);
        Total { findings, entries, bytes, disk, saturated, size_unknown }
    }
}

/// The severities a total is broken down by, in order (`None` first).
const SEVERITIES: [SeverityKey; 4] = [
    None,
    Some(crate::report::Severity::Info),
    Some(crate::report::Severity::Important),
    Some(crate::report::Severity::Critical),
];

fn severity_index(s: SeverityKey) -> usize {
    SEVERITIES.iter().position(|k| *k == s).unwrap_or(0)
}

/// [`Totals`] being summed, a finding at a time, in fixed space: the
/// report sums its findings here, and the guards' tally sums rows as the
/// walk makes them (see `report::tally`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sums {
    severities: [[Sum; 4]; Verdict::ALL.len()],
    loss: Sum,
}

impl Sums {
    pub fn add(&mut self, f: &Finding) {
        self.severities[f.verdict as usize][severity_index(f.severity())].add(f);
        if f.verdict.is_loss() {
            self.loss.add(f);
        }
    }

    pub fn merge(&mut self, other: &Sums) {
        for (mine, theirs) in self.severities.iter_mut().flatten().zip(other.severities.iter().flatten()) {
            mine.merge(theirs);
        }
        self.loss.merge(&other.loss);
    }

    /// The totals, with bytes counted more than once by `links` taken back.
    pub fn totals(&self, links: &HardLinks) -> Totals {
        let mut severities = self.severities;
        let mut verdicts = [Sum::default(); Verdict::ALL.len()];
        for (v, shares) in verdicts.iter_mut().zip(&severities) {
            shares.iter().for_each(|s| v.merge(s));
        }
        let mut loss = self.loss;
        let (excess, loss_excess) = links.excess();
        for (v, (bytes, disk)) in excess {
            verdicts[v as usize].take(bytes, disk);
            // Least severe share first (see `Totals`).
            let (mut bytes, mut disk) = (bytes, disk);
            for share in &mut severities[v as usize] {
                let (b, d) = (bytes.min(share.bytes), disk.min(share.disk));
                share.take(b, d);
                bytes -= b;
                disk -= d;
            }
        }
        loss.take(loss_excess.0, loss_excess.1);
        let mut by_severity = BTreeMap::new();
        for (&v, shares) in Verdict::ALL.iter().zip(&severities) {
            for (&s, share) in SEVERITIES.iter().zip(shares) {
                // Every verdict has its `None` line; a severity, when a finding has it.
                if s.is_none() || share.findings > 0 {
                    by_severity.insert((v, s), share.total());
                }
            }
        }
        Totals {
            verdicts: Verdict::ALL.iter().zip(verdicts).map(|(&v, s)| (v, s.total())).collect(),
            severities: by_severity,
            loss: loss.total(),
        }
    }
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

    /// Bytes and allocated bytes counted more than once: per verdict, and
    /// over all loss verdicts together.
    fn excess(&self) -> (BTreeMap<Verdict, (u128, u128)>, (u128, u128)) {
        let mut per_verdict: BTreeMap<Verdict, (u128, u128)> = BTreeMap::new();
        let mut loss = (0u128, 0u128);
        for (size, disk, verdicts) in self.seen.values() {
            let (size, disk) = (u128::from(*size), u128::from(*disk));
            let mut counts: BTreeMap<Verdict, u128> = BTreeMap::new();
            for v in verdicts {
                *counts.entry(*v).or_default() += 1;
            }
            let mut losses = 0u128;
            for (v, n) in counts {
                let e = per_verdict.entry(v).or_default();
                e.0 += size * (n - 1);
                e.1 += disk * (n - 1);
                if v.is_loss() {
                    losses += n;
                }
            }
            if losses > 1 {
                loss.0 += size * (losses - 1);
                loss.1 += disk * (losses - 1);
            }
        }
        (per_verdict, loss)
    }
}

/// Severity of a finding, as the totals break it down (`None`: the
/// catalogue knows nothing of it).
pub type SeverityKey = Option<crate::report::Severity>;

/// What every format prints as totals, computed once by
/// [`Report::compute_totals`]: renderers read these and never add up
/// findings themselves, so JSON, ndjson, Prometheus and the table agree.
///
/// A file with several names counts its bytes once per verdict (and once
/// in [`Totals::loss`]). Which finding holds each name is not recorded, so
/// the severity shares of a verdict give up bytes counted twice least
/// severe first: they add up to the verdict's total, and the bytes at or
/// above any severity are never understated. Counts are summed without
/// wrapping and clamped to `u64::MAX`, with [`Total::saturated`] set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    verdicts: BTreeMap<Verdict, Total>,
    severities: BTreeMap<(Verdict, SeverityKey), Total>,
    loss: Total,
}

impl Totals {
    /// The totals of one verdict (every verdict has one).
    pub fn get(&self, verdict: &Verdict) -> Option<&Total> {
        self.verdicts.get(verdict)
    }

    /// Every verdict, in reporting order.
    pub fn iter(&self) -> impl Iterator<Item = (&Verdict, &Total)> {
        self.verdicts.iter()
    }

    /// Per verdict and severity: every verdict with `None`, plus each
    /// severity a finding of it has. Per verdict, they add up to
    /// [`Totals::get`].
    pub fn by_severity(&self) -> impl Iterator<Item = (&(Verdict, SeverityKey), &Total)> {
        self.severities.iter()
    }

    /// Everything the next boot erases: the loss verdicts together.
    pub fn loss(&self) -> &Total {
        &self.loss
    }

    /// The verdicts whose totals are clamped.
    pub fn saturated(&self) -> Vec<Verdict> {
        self.verdicts.iter().filter(|(_, t)| t.saturated).map(|(v, _)| *v).collect()
    }

    /// Says which totals are clamped, if any.
    pub fn note(&self) -> Option<String> {
        let mut names: Vec<&str> = self.saturated().into_iter().map(Verdict::name).collect();
        if self.loss.saturated && names.is_empty() {
            names.push("all losses together");
        }
        (!names.is_empty()).then(|| {
            format!(
                "totals of {} exceed {} and are shown as that (\"saturated\": true in JSON): \
                 the real amount is larger",
                names.join(", "),
                u64::MAX
            )
        })
    }
}

impl<'a> IntoIterator for &'a Totals {
    type Item = (&'a Verdict, &'a Total);
    type IntoIter = std::collections::btree_map::Iter<'a, Verdict, Total>;

    fn into_iter(self) -> Self::IntoIter {
        self.verdicts.iter()
    }
}

#[derive(Debug)]
pub struct Report {
    /// The audited root as given (`--root`).
    pub root: Vec<u8>,
    pub source: &'static str,
    /// Whether the root is known to be erased at boot
    /// (`Source::ephemeral`): the summary says "erases" only then.
    pub ephemeral: bool,
    pub flat: bool,
    pub findings: Vec<Finding>,
    pub errors: Vec<EntryError>,
    pub missing_claims: Vec<MissingClaim>,
    pub notes: Vec<String>,
    /// Over every finding (filters never change them).
    pub totals: Totals,
    pub started: SystemTime,
    pub duration: Duration,
}

impl Report {
    /// The `source` of `darlings stray`'s report: its findings lie in the
    /// storage roots, which the boot does not erase.
    pub const STRAY: &'static str = "stray";

    /// The totals of these findings (see [`Totals`]). Severities must be
    /// set first.
    pub fn compute_totals(findings: &[Finding], links: &HardLinks) -> Totals {
        let mut sums = Sums::default();
        findings.iter().for_each(|f| sums.add(f));
        sums.totals(links)
    }

    /// The report's notes, then what the totals and the findings' times
    /// need said.
    pub fn notes(&self) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
        self.notes
            .iter()
            .map(|n| std::borrow::Cow::Borrowed(n.as_str()))
            .chain(self.totals.note().map(Into::into))
            .chain(self.times_note().map(Into::into))
    }

    /// How many findings have a time RFC 3339 cannot write (shown as `null`
    /// in JSON), when some do.
    fn times_note(&self) -> Option<String> {
        let outside = |t: Option<i64>| t.is_some_and(|t| !crate::sys::fmt::RFC3339_RANGE.contains(&t));
        let n = self.findings.iter().filter(|f| outside(f.mtime) || outside(f.ctime)).count();
        (n > 0).then(|| {
            format!(
                "{n} finding{} a modification or change time before year 0000 or after 9999, which RFC 3339 cannot write: no date is given (null in JSON)",
                if n == 1 { " has" } else { "s have" }
            )
        })
    }

    /// Every entry was read.
    pub fn complete(&self) -> bool {
        self.errors.is_empty()
    }

    /// Orders the findings by `key` (see [`SortKey`]).
    pub fn sort(&mut self, key: SortKey) {
        match key {
            SortKey::Path => self.findings.sort_by(|a, b| a.path.cmp(&b.path)),
            // `None` (not walked) sorts below every size, 0 included.
            SortKey::Size => {
                self.findings.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)))
            }
        }
    }

    /// The exit code the contract gives this report: a loss raises it when
    /// its verdict is in `fail_on`, or its severity reaches `severity`.
    pub fn exit_code(
        &self,
        fail_on: &HashSet<Verdict>,
        severity: Option<crate::report::Severity>,
    ) -> ExitCode {
        let open = self.findings.iter().filter(|f| !f.accepted).map(|f| (f.verdict, f.severity()));
        exit_code(self.complete(), open, fail_on, severity)
    }
}

/// The exit code the contract gives an audit: `complete` when no entry
/// failed to be read, `open` the verdict and severity of every finding not
/// accepted. A loss raises it when its verdict is in `fail_on`, or its
/// severity reaches `severity`. The report and the guards' tally both
/// decide here.
pub fn exit_code(
    complete: bool,
    open: impl IntoIterator<Item = (Verdict, SeverityKey)>,
    fail_on: &HashSet<Verdict>,
    severity: Option<crate::report::Severity>,
) -> ExitCode {
    if !complete {
        return ExitCode::Incomplete;
    }
    let mut code = ExitCode::Clean;
    for (verdict, s) in open {
        if verdict == Verdict::Broken {
            return ExitCode::Broken;
        }
        let severe = verdict.is_loss() && severity.is_some_and(|min| s >= Some(min));
        if fail_on.contains(&verdict) || severe {
            code = ExitCode::Loss;
        }
    }
    code
}

/// The order of findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SortKey {
    /// By path, bytewise (the table: in sections by verdict, losses first,
    /// critical state first)
    #[default]
    Path,
    /// Largest first, whatever the verdict (the table too: one list, no
    /// sections); equal sizes by path, then rows without a size (kept,
    /// ignored, structure)
    Size,
}

/// What is shown (never what is counted).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these verdicts; `None`: all.
    pub verdicts: Option<HashSet<Verdict>>,
    /// Only findings of at least this many bytes.
    pub min_size: Option<u64>,
}

impl Filter {
    pub fn shows(&self, f: &Finding) -> bool {
        self.verdicts.as_ref().is_none_or(|v| v.contains(&f.verdict))
            && self.min_size.is_none_or(|min| f.size.unwrap_or(0) >= min)
    }

    pub fn shown<'a>(&'a self, report: &'a Report) -> impl Iterator<Item = &'a Finding> + 'a {
        report.findings.iter().filter(move |f| self.shows(f))
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
            ephemeral: true,
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
        let acc = Accepted::parse(
            br#"{"findings": [{"path": "/var/cache", "verdict": "unclaimed"}, {"path": "/b", "verdict": "unclaimed"}]}"#,
            std::path::Path::new("acc.json"),
        )
        .unwrap_or_default();
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
        assert_eq!(
            t.get(&Verdict::Unclaimed),
            Some(&Total {
                findings: 2,
                entries: 2,
                bytes: 100,
                disk: 100,
                saturated: false,
                size_unknown: 0
            })
        );
    }

    #[test]
    fn totals_saturate_instead_of_wrapping() {
        // Three sparse files of 8000 PiB: 3 × 8000 × 2^50 > 2^64.
        let big = 8000u64 << 50;
        let findings: Vec<Finding> =
            ["/a", "/b", "/c"].iter().map(|p| finding(p, Verdict::Unclaimed, big)).collect();
        let t = Report::compute_totals(&findings, &HardLinks::default());
        let u = t.get(&Verdict::Unclaimed).copied().unwrap_or_default();
        assert_eq!((u.findings, u.entries, u.bytes, u.saturated), (3, 3, u64::MAX, true));
        assert_eq!(t.loss().bytes, u64::MAX);
        assert_eq!(t.saturated(), vec![Verdict::Unclaimed]);
        let note = t.note().unwrap_or_default();
        assert!(note.contains("unclaimed") && note.contains("18446744073709551615"), "{note}");
        let kept = t.get(&Verdict::Kept).copied().unwrap_or_default();
        assert!(!kept.saturated);

        // Two of them fit (2 × 8000 × 2^50 < 2^64): exact, not saturated.
        let t = Report::compute_totals(&findings[..2], &HardLinks::default());
        assert_eq!(t.get(&Verdict::Unclaimed).map(|u| (u.bytes, u.saturated)), Some((2 * big, false)));
        assert_eq!(t.note(), None);

        // Four names of one such file: counted once, never wrapping.
        let names: Vec<Finding> =
            ["/a", "/b", "/c", "/d"].iter().map(|p| finding(p, Verdict::Unclaimed, big)).collect();
        let mut links = HardLinks::default();
        for _ in 0..4 {
            links.record(LinkKey { dev: 1, ino: 9 }, big, big, Verdict::Unclaimed);
        }
        let t = Report::compute_totals(&names, &links);
        assert_eq!(t.get(&Verdict::Unclaimed).map(|u| (u.bytes, u.saturated)), Some((big, false)));
    }

    #[test]
    fn severity_shares_add_up_and_never_understate_the_severe() {
        use crate::report::{Precious, Severity};
        let precious = |severity| Precious {
            pattern: "/p".into(),
            severity,
            reason: String::new(),
            directory: true,
            origin: "built-in".into(),
        };
        // A critical finding of 300 bytes holding two names of one 100-byte
        // file, and an unknown finding of 50 bytes.
        let mut critical = finding("/home", Verdict::Unclaimed, 300);
        critical.precious = Some(precious(Severity::Critical));
        let other = finding("/srv", Verdict::Unclaimed, 50);
        let mut links = HardLinks::default();
        links.record(LinkKey { dev: 1, ino: 3 }, 100, 100, Verdict::Unclaimed);
        links.record(LinkKey { dev: 1, ino: 3 }, 100, 100, Verdict::Unclaimed);
        let t = Report::compute_totals(&[critical, other], &links);
        let shares: Vec<(Option<Severity>, u64)> = t
            .by_severity()
            .filter(|((v, _), _)| *v == Verdict::Unclaimed)
            .map(|((_, s), total)| (*s, total.bytes))
            .collect();
        // 350 - 100 counted twice = 250; taken from the unknown share first.
        assert_eq!(shares, vec![(None, 0), (Some(Severity::Critical), 250)]);
        assert_eq!(t.get(&Verdict::Unclaimed).map(|u| u.bytes), Some(250));
        // Every verdict has its `None` line.
        assert_eq!(t.by_severity().filter(|((_, s), _)| s.is_none()).count(), Verdict::ALL.len());
    }

    #[test]
    fn the_loss_total_counts_a_file_once_across_verdicts() {
        // One 100-byte file: a name in a broken claim, a name unclaimed.
        let findings = vec![finding("/b", Verdict::Broken, 100), finding("/u", Verdict::Unclaimed, 100)];
        let mut links = HardLinks::default();
        links.record(LinkKey { dev: 1, ino: 5 }, 100, 100, Verdict::Broken);
        links.record(LinkKey { dev: 1, ino: 5 }, 100, 100, Verdict::Unclaimed);
        let t = Report::compute_totals(&findings, &links);
        assert_eq!(t.get(&Verdict::Broken).map(|x| x.bytes), Some(100));
        assert_eq!(t.get(&Verdict::Unclaimed).map(|x| x.bytes), Some(100));
        assert_eq!((t.loss().findings, t.loss().entries, t.loss().bytes), (2, 2, 100));
    }
}
