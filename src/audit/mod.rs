//! The audit pipeline, as a library: [`run`] turns resolved settings
//! ([`config::Audit`]) into a sorted [`Report`].
//!
//! ```text
//! open the root → read rules → check every literal claim (claims::check)
//!   → choose a source (source::choose: walk, zfs diff, a blank snapshot,
//!     a saved diff) → feed what it shows to the classifier (classify.rs)
//!   → rows for claims it never met
//!   → what only a change list knows (restored, renames) → catalogue
//!   → totals, acceptance, sort
//! ```
//!
//! `audit` and `explain` (and, through them, `record` and `rollback`'s
//! guards) all come here: no other module repeats a step of it.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Instant, SystemTime};

use anyhow::Result;

use crate::claims::check::{Checker, Claims, State};
use crate::claims::matcher::RuleKind;
use crate::claims::{self, Loaded};
use crate::classify::{self, Classifier, Collected};
use crate::config;
use crate::knowledge::Catalogue;
use crate::report::{Accepted, EntryError, Finding, MissingClaim, Report, RuleRef, Tally, Totals, Verdict};
use crate::source::tree::ChangeTree;
use crate::source::Source;
use crate::sys::meta::{Change, FileKind};
use crate::sys::mounts::Mounts;
use crate::sys::root::Root;

mod settle;
use crate::source::shadowed::Hidden;
use settle::Settle;

/// The audited root, opened, with its canonical path.
pub use crate::source::Opened as Target;

pub fn open_root(path: &Path) -> Result<Target> {
    Ok(Target::open(path, "cannot audit")?)
}

pub fn load_rules(rules: &config::Rules, target: Option<&Target>) -> Result<Loaded> {
    // Files inside the root are named by the path the audit opened.
    let shown = target.map_or(rules.root.as_path(), |t| t.canonical.as_path());
    claims::load(&rules.sources, target.map(|t| &t.root), shown).map_err(anyhow::Error::from)
}

/// Runs an audit as configured and returns its sorted report.
pub fn run(cfg: &config::Audit) -> Result<Report> {
    run_full(cfg).map(|audited| audited.report)
}

/// An audit's report with the rules and claim checks that made it.
pub struct Audited {
    pub report: Report,
    pub loaded: Loaded,
    pub claims: Claims,
    /// The audited tree, as opened for the audit (`None`: a saved diff
    /// read offline).
    pub live: Option<Target>,
}

/// [`run`], keeping the rules, the claims' states and the opened root
/// (for `explain`).
pub fn run_full(cfg: &config::Audit) -> Result<Audited> {
    let done = audit(cfg, false)?;
    let mut collected = done.collected;
    collected.errors.sort_by(|a, b| a.path.cmp(&b.path));
    let mut report = Report {
        root: done.root,
        source: done.source,
        ephemeral: done.ephemeral,
        flat: cfg.flat,
        totals: Report::compute_totals(&collected.findings, &collected.links),
        findings: collected.findings,
        errors: collected.errors,
        missing_claims: done.missing,
        notes: done.notes,
        started: done.started,
        duration: done.duration,
    };
    report.sort(cfg.sort);
    Ok(Audited { report, loaded: done.loaded, claims: done.claims, live: done.live })
}

/// What the guards of `record` and `rollback` read of an audit: every path
/// judged by itself (flat), summed as the walk goes (see
/// `report::tally`), in memory that does not grow with the rows. It is
/// the flat report's decision, without the report.
pub struct Guarded {
    pub tally: Tally,
    pub totals: Totals,
    /// Entries that could not be read, all of them; the first few in `errors`.
    pub error_count: u64,
    pub errors: Vec<EntryError>,
    pub source: &'static str,
    pub notes: Vec<String>,
    /// The claims NixOS modules declared (the record keeps them).
    pub declared: Vec<crate::claims::nixos::Declared>,
}

impl Guarded {
    /// The exit code the flat report would have.
    pub fn exit_code(&self, cfg: &config::Audit) -> crate::error::ExitCode {
        self.tally.exit_code(self.error_count == 0, &cfg.fail_on, cfg.fail_severity)
    }
}

/// The audit `cfg` describes, for the guards (see [`Guarded`]).
pub fn guard(cfg: &config::Audit) -> Result<Guarded> {
    let done = audit(cfg, true)?;
    let mut collected = done.collected;
    collected.errors.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Guarded {
        totals: collected.tally.totals(&collected.links),
        error_count: collected.error_count(),
        tally: collected.tally,
        errors: collected.errors,
        source: done.source,
        notes: done.notes,
        declared: done.loaded.declared,
    })
}

/// Everything an audit made, before it becomes a report or a tally.
struct Done {
    collected: Collected,
    root: Vec<u8>,
    source: &'static str,
    ephemeral: bool,
    missing: Vec<MissingClaim>,
    notes: Vec<String>,
    started: SystemTime,
    duration: std::time::Duration,
    loaded: Loaded,
    claims: Claims,
    live: Option<Target>,
}

/// The audit itself. `tallied`: every row is settled and summed as it is
/// made, never kept (the guards); otherwise rows are kept and settled
/// once all are made (a report).
fn audit(cfg: &config::Audit, tallied: bool) -> Result<Done> {
    // A saved diff is audited offline unless --root says where its tree is.
    let live = match (&cfg.source.zfs_diff, cfg.rules.root_given) {
        (Some(_), false) => None,
        _ => Some(open_root(&cfg.rules.root)?),
    };
    let loaded = load_rules(&cfg.rules, live.as_ref())?;
    let accepted = match &cfg.accepted {
        Some(file) => read_accepted(file)?,
        None => Accepted::default(),
    };
    let settle =
        Settle { catalogue: Catalogue::new(loaded.precious.clone()), accepted, offline: live.is_none() };
    let root = live.as_ref().map(|t| &t.root);
    let mut notes = Vec::new();
    let mounts = match &live {
        Some(target) => Mounts::read(&target.canonical).unwrap_or_else(|e| {
            notes.push(format!("cannot read /proc/self/mountinfo ({e}): mount points are not described"));
            Mounts::default()
        }),
        None => Mounts::default(),
    };
    let started = SystemTime::now();
    let clock = Instant::now();
    // Every literal claim, checked once against the live system, whatever
    // the source shows of it.
    let checker = Checker::new(root, &mounts, cfg.rules.assume_claims);
    let claims = Claims::check_all(&loaded.matcher, &checker);
    let mut source = crate::source::choose::open(&cfg.source, live.as_ref(), &mounts)?;
    let per_row = |f: &mut Finding, path: &[u8]| settle.row_at(f, path, root, None);
    let each: classify::Settle<'_> = if tallied { Some(&per_row) } else { None };
    let mut classifier = Classifier::new(&loaded.matcher, &checker, &claims, cfg.flat);
    if tallied {
        classifier = classifier.tallying(&per_row);
    }
    source.feed(classifier.top(), &classifier, cfg.threads, cfg.progress)?;
    notes.extend_from_slice(source.notes());

    let unmet = classifier.unmet_claims();
    let mut collected = classifier.into_collected();
    collected.rows(unmet, each, b"");
    let missing = missing_claims(&claims, &loaded);
    for (path, op, errno) in &claims.errors {
        let error = EntryError {
            message: crate::sys::root::describe_errno(*errno),
            errno: Some(errno.raw_os_error()),
            operation: op,
            path: path.clone(),
        };
        collected.error(error, tallied);
    }
    for error in source.take_errors() {
        collected.error(entry_error(error), tallied);
    }
    let duration = clock.elapsed();

    let diff = source.changes();
    if let Some(tree) = diff {
        diff_findings(tree, &mut collected.findings);
        if live.is_some() {
            unseen(&tree.unseen(), tree, &mut collected.findings, &mut notes);
        }
    }
    if !tallied {
        collected.findings.iter_mut().for_each(|f| settle.row(f, root, diff));
    }
    if let Some(tree) = diff {
        // Restored, as the list has them: nothing of them to settle.
        collected.settled(removed(tree), tallied);
    }
    if let Some(target) = &live {
        // Tallied, each hidden path is summed as it is found.
        let hidden = std::sync::Mutex::new(Tally::default());
        let each = |clone: &Root, h: &Hidden| {
            let mut f = shadowed_row(h);
            settle.row(&mut f, Some(clone), None);
            hidden.lock().unwrap_or_else(std::sync::PoisonError::into_inner).add(&f, &f.path);
        };
        let each: Option<&Each<'_>> = if tallied { Some(&each) } else { None };
        let mut shadowed = shadowed(cfg, target, &mounts, &loaded, source.blank(), &mut notes, each);
        if let Some((clone, found)) = &mut shadowed {
            for error in std::mem::take(&mut found.errors) {
                collected.error(entry_error(error), tallied);
            }
            let rows = found.hidden.iter().map(shadowed_row).map(|mut f| {
                // A hidden group holds what the clone shows, not the live tree.
                settle.row(&mut f, Some(clone), None);
                f
            });
            collected.settled(rows, tallied);
        }
        collected.tally.merge(&mut hidden.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner));
    }
    if live.as_ref().is_some_and(|t| t.canonical == Path::new("/")) && diff.is_none() {
        pseudo_filesystems(&mounts, &mut notes);
    }
    for m in &loaded.manifests {
        notes.push(format!("rules read from {}", m.display()));
    }
    let mut missing = missing;
    missing.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Done {
        collected,
        // The root the audit opened (canonical), as the notes name it.
        root: live
            .as_ref()
            .map_or(cfg.rules.root.as_path(), |t| t.canonical.as_path())
            .as_os_str()
            .as_bytes()
            .to_vec(),
        source: source.name(),
        ephemeral: source.ephemeral(),
        missing,
        notes,
        started,
        duration,
        loaded,
        claims,
        live,
    })
}

/// On `/`: the pseudo filesystems, never walked, in a note.
fn pseudo_filesystems(mounts: &Mounts, notes: &mut Vec<String>) {
    let pseudo: Vec<String> = ["/dev", "/proc", "/run", "/sys"]
        .iter()
        .filter_map(|p| mounts.at(p.as_bytes()).map(|m| format!("{p} ({})", m.fstype)))
        .collect();
    if !pseudo.is_empty() {
        notes.push(format!(
            "{} are separate pseudo or runtime filesystems: never walked, nothing on them survives a reboot anyway",
            pseudo.join(", ")
        ));
    }
}

/// What only a change list knows of the rows: the change of those decided
/// before any metadata, the old names of renamed ones.
fn diff_findings(tree: &ChangeTree, findings: &mut [Finding]) {
    for f in findings.iter_mut() {
        // Rows decided before any metadata (kept, ignored) learn their change
        // here: a path the list does not name is unchanged (`present`).
        if f.change == Change::Present {
            f.change = tree.change_now(&f.path);
        }
        if f.change == Change::Renamed {
            f.renamed_from = tree.renamed_from(&f.path).map(<[u8]>::to_vec);
        }
    }
}

/// The paths removed since the blank snapshot: they come back at rollback.
fn removed(tree: &ChangeTree) -> impl Iterator<Item = Finding> {
    tree.removed().into_iter().map(|(path, kind, entries, ctime)| {
        let mut f = Finding::new(path, Verdict::Restored, kind);
        f.change = Change::Removed;
        f.entries = Some(entries);
        f.ctime = ctime;
        f.detail = Some("removed since the blank snapshot: comes back at rollback".into());
        f
    })
}

/// What the change list names that the live tree does not show as such
/// (a saved diff older than the tree): a path gone from the tree keeps its
/// finding, with the list's change time and no size or modification time
/// (unknown, not zero), and so does any group holding one; a path below
/// what is a symlink (never followed) or a file in the tree now cannot be
/// looked at. Both are said in notes, naming the paths.
fn unseen(
    unseen: &crate::source::tree::Unseen,
    tree: &ChangeTree,
    findings: &mut [Finding],
    notes: &mut Vec<String>,
) {
    let missing: std::collections::BTreeSet<&[u8]> = unseen.missing.iter().map(Vec::as_slice).collect();
    if !missing.is_empty() {
        for f in findings.iter_mut().filter(|f| f.entries.is_some()) {
            let gone = std::iter::successors(Some(&f.path[..]), |p| {
                (p.len() > 1).then(|| &p[..p.iter().rposition(|&b| b == b'/').unwrap_or(0).max(1)])
            })
            .any(|p| missing.contains(p));
            let below = [&f.path[..], b"/"].concat();
            let holds = missing.range(&below[..]..).next().is_some_and(|m| m.starts_with(&below));
            if gone {
                f.mtime = None;
                f.ctime = tree.ctime_of(&f.path);
            }
            if gone || holds {
                f.size = None;
                f.disk = None;
            }
        }
        let n = unseen.missing.len();
        notes.push(format!(
            "{} the diff names {} not in the tree under --root ({}): the tree changed after the diff was \
             made; reported with the diff's change time, size and modification time unknown",
            if n == 1 { "a path".to_owned() } else { format!("{n} paths") },
            if n == 1 { "is" } else { "are" },
            some_paths(unseen.missing.iter()),
        ));
    }
    for (path, kind, first, n) in &unseen.beneath {
        let what = match kind {
            FileKind::Symlink => "a symlink, never followed,".to_owned(),
            other => format!("a {}", other.name()),
        };
        notes.push(format!(
            "the diff names {} below {} ({}), which is {what} in the tree under --root now: \
             not reported (the diff is older than the tree)",
            if *n == 1 { "a path".to_owned() } else { format!("{n} paths") },
            String::from_utf8_lossy(path),
            String::from_utf8_lossy(first),
        ));
    }
}

/// "/a", "/a and /b", "/a, /b, /c and 4 more paths" (escaped by the renderer).
fn some_paths<'p>(paths: impl ExactSizeIterator<Item = &'p Vec<u8>>) -> String {
    const SHOWN: usize = 3;
    let n = paths.len();
    let shown: Vec<String> = paths.take(SHOWN).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    match n {
        0 => String::new(),
        1 => shown[0].clone(),
        _ if n <= SHOWN => format!("{} and {}", shown[..n - 1].join(", "), shown[n - 1]),
        _ => format!("{} and {} more paths", shown.join(", "), n - SHOWN),
    }
}

/// Content hidden under mount points, seen through a clone of the root's
/// mount (see `source/shadowed.rs`); `None` (with a note) when it cannot
/// be looked at.
fn shadowed(
    cfg: &config::Audit,
    target: &Target,
    mounts: &Mounts,
    loaded: &Loaded,
    blank: Option<&Root>,
    notes: &mut Vec<String>,
    each: Option<&Each<'_>>,
) -> Option<(Root, crate::source::shadowed::Found)> {
    if mounts.on_root().is_empty() {
        return None;
    }
    let clone = match crate::source::shadowed::clone_root(&target.root) {
        Ok(clone) => clone,
        Err(e) => {
            notes.push(format!(
                "could not look under mount points for shadowed content ({}): that needs root (CAP_SYS_ADMIN) and Linux 5.2 or later",
                crate::sys::root::describe_errno(e)
            ));
            return None;
        }
    };
    let matcher = &loaded.matcher;
    let ignored = |path: &[u8]| {
        matcher.decide_incrementally(path).is_some_and(|d| matcher.rule(d.rule).kind == RuleKind::Ignore)
    };
    let found = {
        let within = &clone;
        let sink = each.map(|each| move |h: &Hidden| each(within, h));
        let sink = sink.as_ref().map(|s| s as &(dyn Fn(&Hidden) + Sync));
        crate::source::shadowed::find(&clone, mounts, blank, &ignored, cfg.flat, sink, cfg.threads)
    };
    Some((clone, found))
}

/// What a tallying audit does with each hidden path (flat), given the
/// clone it was found in.
type Each<'a> = dyn Fn(&Root, &Hidden) + Sync + 'a;

fn shadowed_row(h: &Hidden) -> Finding {
    let mut f = Finding::new(h.path.clone(), Verdict::Shadowed, h.kind);
    f.entries = Some(h.entries);
    f.size = Some(h.size);
    f.disk = Some(h.disk);
    f.mtime = Some(h.mtime);
    let hidden_by = if h.path == h.mount_point {
        format!("hidden by the file mounted over it ({})", h.mount)
    } else {
        format!("under the mount point {} ({})", String::from_utf8_lossy(&h.mount_point), h.mount)
    };
    f.detail = Some(format!("on the root {hidden_by}: invisible to the running system, erased at rollback"));
    f
}

fn entry_error(e: crate::sys::root::WalkError) -> EntryError {
    EntryError {
        message: crate::sys::root::describe_errno(e.errno),
        errno: Some(e.errno.raw_os_error()),
        operation: e.op.name(),
        path: e.path,
    }
}

/// Literal claims whose path does not exist: nothing to lose, but the
/// configuration names something that is not there.
fn missing_claims(claims: &Claims, loaded: &Loaded) -> Vec<MissingClaim> {
    claims
        .by_path
        .iter()
        .filter(|(_, c)| c.state == State::Missing)
        .map(|(path, c)| MissingClaim { path: path.clone(), rule: loaded.matcher.rule(c.rule).to_ref() })
        .collect()
}

/// An `--accepted` file: a previous JSON report, or one path per line.
fn read_accepted(file: &Path) -> Result<Accepted> {
    Ok(Accepted::read(file)?)
}

/// What `explain` says of one path: the audit's own finding for it, and
/// every rule that applies.
pub struct Explained {
    pub path: Vec<u8>,
    pub report: Report,
    /// The audit's row for the path, or for the group, claim or ignored
    /// tree it lies in (the deepest such row that is not `structure`).
    pub finding: Option<Finding>,
    /// Whether the path exists in the audited tree as such, reached
    /// following no symlink (`None`: no live tree).
    pub exists: Option<bool>,
    /// The symlink the path passes through in the audited tree, and its
    /// target: the path is no entry of the tree (the audit follows no
    /// link), whatever lies where the link leads.
    pub through: Option<(Vec<u8>, Vec<u8>)>,
    /// Every rule that applies, best first: the rule, where it matches,
    /// and (for the first) why it wins over the next.
    pub rules: Vec<(RuleRef, Vec<u8>)>,
    pub why: Option<&'static str>,
    /// The literal claim deciding the path, as the audit checked it.
    pub claim: Option<(Vec<u8>, State)>,
}

/// Runs the audit `cfg` describes and explains `path` from it, so that
/// `explain` can never disagree with `audit`.
pub fn explain(cfg: &config::Audit, path: &[u8]) -> Result<Explained> {
    let audited = run_full(cfg)?;
    let matcher = &audited.loaded.matcher;
    let explanation = matcher.explain(path);
    let rules = explanation.matches.iter().map(|m| (matcher.rule(m.rule).to_ref(), m.at.clone())).collect();
    let why = match (explanation.matches.first(), explanation.matches.get(1)) {
        (Some(a), Some(b)) => Some(matcher.why_wins(a, b)),
        _ => None,
    };
    let claim = explanation.decider().and_then(|d| {
        audited.claims.get(&d.at).filter(|c| c.rule == d.rule).map(|c| (d.at.clone(), c.state.clone()))
    });
    let report = audited.report;
    let rel = path.strip_prefix(b"/").unwrap_or(path);
    // A symlink on the way (not the path itself): no link is followed.
    let through = audited.live.as_ref().and_then(|t| {
        let (link, target) = crate::claims::check::first_link(&t.root, rel)?;
        (link != rel).then(|| ([b"/", link].concat(), target.unwrap_or_default()))
    });
    let exists = audited.live.as_ref().map(|t| through.is_none() && t.root.exists(rel).unwrap_or(false));
    let own = report.findings.iter().find(|f| f.path == path).cloned();
    // Behind a link, the path is no entry of any row around it.
    let finding = if through.is_some() {
        own
    } else {
        own.or_else(|| {
            report
                .findings
                .iter()
                .filter(|f| {
                    f.verdict != Verdict::Structure && crate::sys::path::is_ancestor_or_self(&f.path, path)
                })
                // A hidden directory's row is not the row of a path the running
                // system sees (on the mount that hides it).
                .filter(|f| !(f.verdict == Verdict::Shadowed && exists == Some(true)))
                .max_by_key(|f| f.path.len())
                .cloned()
        })
    };
    Ok(Explained { path: path.to_vec(), report, finding, exists, through, rules, why, claim })
}
