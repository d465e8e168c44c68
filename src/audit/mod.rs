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
use crate::classify::Classifier;
use crate::config;
use crate::knowledge::Catalogue;
use crate::report::{Accepted, Finding, MissingClaim, Report, RuleRef, Verdict};
use crate::source::tree::ChangeTree;
use crate::source::Source;
use crate::sys::meta::{Change, FileKind};
use crate::sys::mounts::Mounts;
use crate::sys::root::Root;

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
    let checker = Checker::new(live.as_ref().map(|t| &t.root), &mounts, cfg.rules.assume_claims);
    let claims = Claims::check_all(&loaded.matcher, &checker);
    let mut source = crate::source::choose::open(&cfg.source, live.as_ref(), &mounts)?;
    let classifier = Classifier::new(&loaded.matcher, &checker, &claims, cfg.flat);
    source.feed(classifier.top(), &classifier, cfg.threads, cfg.progress)?;
    notes.extend_from_slice(source.notes());

    let unmet = classifier.unmet_claims();
    let mut collected = classifier.into_collected();
    collected.findings.extend(unmet);
    let missing = missing_claims(&claims, &loaded);
    collected.errors.extend(claims.errors.iter().map(|(path, op, errno)| crate::report::EntryError {
        message: crate::sys::root::describe_errno(*errno),
        errno: Some(errno.raw_os_error()),
        operation: op,
        path: path.clone(),
    }));
    collected.errors.extend(source.take_errors().into_iter().map(entry_error));
    let duration = clock.elapsed();

    let diff = source.changes();
    if let Some(tree) = diff {
        diff_findings(tree, &mut collected.findings, live.is_none());
        if live.is_some() {
            unseen(&tree.unseen(), tree, &mut collected.findings, &mut notes);
        }
    }
    let catalogue = Catalogue::new(loaded.precious.clone());
    mark_precious(&catalogue, &mut collected.findings, live.as_ref().map(|t| &t.root), diff);
    if let Some(target) = &live {
        let mut shadowed = shadowed(cfg, target, &mounts, &loaded, source.blank(), &mut notes);
        if let Some((clone, found)) = &mut shadowed {
            collected.errors.extend(std::mem::take(&mut found.errors).into_iter().map(entry_error));
            let mut rows: Vec<Finding> = found.hidden.iter().map(shadowed_row).collect();
            mark_precious(&catalogue, &mut rows, Some(clone), None);
            collected.findings.append(&mut rows);
        }
    }
    if live.as_ref().is_some_and(|t| t.canonical == Path::new("/")) && diff.is_none() {
        pseudo_filesystems(&mounts, &mut notes);
    }
    for m in &loaded.manifests {
        notes.push(format!("rules read from {}", m.display()));
    }

    let mut report = Report {
        // The root the audit opened (canonical), as the notes name it.
        root: live
            .as_ref()
            .map_or(cfg.rules.root.as_path(), |t| t.canonical.as_path())
            .as_os_str()
            .as_bytes()
            .to_vec(),
        source: source.name(),
        ephemeral: source.ephemeral(),
        flat: cfg.flat,
        totals: Report::compute_totals(&collected.findings, &collected.links),
        findings: collected.findings,
        errors: collected.errors,
        missing_claims: missing,
        notes,
        started,
        duration,
    };
    report.errors.sort_by(|a, b| a.path.cmp(&b.path));
    report.missing_claims.sort_by(|a, b| a.path.cmp(&b.path));
    accepted.apply(&mut report.findings);
    report.sort(cfg.sort);
    Ok(Audited { report, loaded, claims, live })
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

/// Adds what only a change list knows: removed paths (they come back),
/// the old names of renamed ones, and what an offline audit cannot say
/// (the notes on what the list cannot show are the source's own).
fn diff_findings(tree: &ChangeTree, findings: &mut Vec<Finding>, offline: bool) {
    for f in findings.iter_mut() {
        // Rows decided before any metadata (kept, ignored) learn their change
        // here: a path the list does not name is unchanged (`present`).
        if f.change == Change::Present {
            f.change = tree.change_now(&f.path);
        }
        if f.change == Change::Renamed {
            f.renamed_from = tree.renamed_from(&f.path).map(<[u8]>::to_vec);
        }
        if offline {
            // Times from the list are inode change times; no sizes.
            f.ctime = f.mtime.take();
            f.size = None;
            f.disk = None;
        }
    }
    for (path, kind, entries, ctime) in tree.removed() {
        let mut f = Finding::new(path, Verdict::Restored, kind);
        f.change = Change::Removed;
        f.entries = Some(entries);
        f.ctime = ctime;
        f.detail = Some("removed since the blank snapshot: comes back at rollback".into());
        findings.push(f);
    }
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
    let found = crate::source::shadowed::find(&clone, mounts, blank, &ignored, cfg.flat, cfg.threads);
    Some((clone, found))
}

fn shadowed_row(h: &crate::source::shadowed::Hidden) -> Finding {
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

fn entry_error(e: crate::sys::root::WalkError) -> crate::report::EntryError {
    crate::report::EntryError {
        message: crate::sys::root::describe_errno(e.errno),
        errno: Some(e.errno.raw_os_error()),
        operation: e.op.name(),
        path: e.path,
    }
}

/// Gives every loss finding the catalogue entry it is, lies in, or holds.
/// Whether a grouped directory holds an entry is asked of the live tree
/// (or, without one, of the change list).
fn mark_precious(
    catalogue: &Catalogue,
    findings: &mut [Finding],
    root: Option<&Root>,
    tree: Option<&ChangeTree>,
) {
    for f in findings.iter_mut().filter(|f| f.verdict.is_loss()) {
        let group = f.kind == FileKind::Dir && f.entries.unwrap_or(0) > 1;
        let holds = |pattern: &str| match (root, tree) {
            (Some(root), _) => crate::knowledge::catalogue::find_in(root, pattern.as_bytes(), &f.path),
            (None, Some(tree)) => {
                let literal = crate::claims::matcher::Pattern::parse(pattern.as_bytes()).ok()?;
                let path = literal.prefix()?;
                tree.names(path).then(|| path.to_vec())
            }
            (None, None) => None,
        };
        if let Some((precious, at)) = catalogue.lookup(&f.path, group, &holds) {
            f.precious = Some(precious.clone());
            f.keep_path = Some(at);
        }
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
