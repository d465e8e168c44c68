//! The audit pipeline, as a library: [`run`] turns resolved settings
//! ([`config::Audit`]) into a sorted [`Report`].
//!
//! ```text
//! open the root → read rules → check every literal claim (claims::check)
//!   → choose a source (walk, zfs diff, a blank snapshot, a saved diff)
//!   → classify what it shows (classify.rs) → rows for claims it never met
//!   → what only a change list knows (restored, renames) → catalogue
//!   → totals, acceptance, sort
//! ```
//!
//! `audit` and `explain` (and, through them, `record` and `rollback`'s
//! guards) all come here: no other module repeats a step of it.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context, Result};

use crate::claims::check::{Checker, Claims, State};
use crate::claims::matcher::RuleKind;
use crate::claims::{self, Loaded};
use crate::classify::Classifier;
use crate::cli::SourceKind;
use crate::config;
use crate::knowledge::Catalogue;
use crate::report::{Accepted, Finding, MissingClaim, Report, RuleRef, Verdict};
use crate::sanitize::escape;
use crate::source::baseline::Blank;
use crate::source::choose::Way;
use crate::source::tree::ChangeTree;
use crate::source::walk::{self};
use crate::source::zfs;
use crate::sys::meta::{Change, FileKind};
use crate::sys::mounts::Mounts;
use crate::sys::root::Root;

/// The audited root, opened, with its canonical path.
pub struct Target {
    pub root: Root,
    pub canonical: PathBuf,
}

pub fn open_root(path: &Path) -> Result<Target> {
    open_tree(path, "cannot audit")
}

/// Opens a directory tree; errors start with `what` (what the tree is for).
fn open_tree(path: &Path, what: &str) -> Result<Target> {
    let shown = escape(path.as_os_str().as_bytes());
    let canonical = std::fs::canonicalize(path).with_context(|| format!("{what} {shown}"))?;
    if !canonical.is_dir() {
        bail!("{what} {shown}: not a directory");
    }
    let root = Root::open(&canonical)
        .map_err(|e| anyhow::anyhow!("{what} {shown}: {}", crate::sys::root::describe_errno(e.errno)))?;
    Ok(Target { root, canonical })
}

pub fn load_rules(rules: &config::Rules, target: Option<&Target>) -> Result<Loaded> {
    claims::load(&rules.sources, target.map(|t| &t.root), &rules.root).map_err(anyhow::Error::from)
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
}

/// [`run`], keeping the rules and the claims' states (for `explain`).
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
    let changes = choose_source(cfg, live.as_ref(), &mounts, &mut notes)?;
    let (diff, diff_source, source_errors, blank_root) = match changes {
        Some(Changes { tree, source, errors, blank }) => (Some(tree), source, errors, blank),
        None => (None, "walk", Vec::new(), None),
    };

    let root = live.as_ref().map(|t| &t.root);
    let classifier = Classifier::new(&loaded.matcher, &checker, &claims, cfg.flat);
    let top = classifier.top();
    let source = match (&diff, &live) {
        (Some(tree), _) => {
            tree.walk(top, &classifier, root, cfg.threads);
            diff_source
        }
        (None, Some(target)) => {
            crate::progress::with_progress(cfg.progress, |progress| {
                walk::walk(&target.root, top, &classifier, cfg.threads, progress)
            })
            .context("cannot start the walk's threads")?;
            "walk"
        }
        (None, None) => bail!("nothing to audit"),
    };
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
    collected.errors.extend(source_errors.into_iter().map(entry_error));
    let duration = clock.elapsed();

    if let Some(tree) = &diff {
        diff_findings(tree, &mut collected.findings, live.is_none(), &mut notes);
    }
    let catalogue = Catalogue::new(loaded.precious.clone());
    mark_precious(&catalogue, &mut collected.findings, live.as_ref().map(|t| &t.root), diff.as_ref());
    if let Some(target) = &live {
        let mut shadowed = shadowed(cfg, target, &mounts, &loaded, blank_root.as_ref(), &mut notes);
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
        root: cfg.rules.root.as_os_str().as_bytes().to_vec(),
        source,
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
    Ok(Audited { report, loaded, claims })
}

/// The changes since the blank state, when the source compares with one
/// (a saved diff, `--baseline`, a ZFS or btrfs snapshot); `None`: walk.
fn choose_source(
    cfg: &config::Audit,
    live: Option<&Target>,
    mounts: &Mounts,
    notes: &mut Vec<String>,
) -> Result<Option<Changes>> {
    match (&cfg.source.zfs_diff, &cfg.source.baseline, live) {
        (Some(file), _, _) => {
            let mut tree = read_diff(file, cfg.source.strip_prefix.as_deref())?;
            if let Some(target) = live {
                recover_links(&mut tree, target, cfg, notes);
            }
            Ok(Some(Changes { tree, source: "zfs-diff-file", errors: Vec::new(), blank: None }))
        }
        (None, Some(blank), Some(target)) => {
            let blank = open_tree(blank, "cannot read the blank tree (--baseline)")?;
            let mut tree = ChangeTree::new();
            let errors = crate::source::baseline::compare(
                &target.root,
                &blank.root,
                Blank::Tree,
                &mut tree,
                cfg.threads,
            )
            .errors;
            notes.push(format!("compared with the blank tree {}", blank.canonical.display()));
            Ok(Some(Changes { tree, source: "baseline", errors, blank: Some(blank.root) }))
        }
        (None, None, Some(target)) => snapshot_source(cfg, target, mounts, notes),
        (None, _, None) => Ok(None),
    }
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

/// `--source zfs`, or `auto` on a ZFS or btrfs root: the changes since the
/// blank snapshot (`zfs diff`, or a comparison with the btrfs snapshot).
/// `None`: walk instead (with a note saying why).
fn snapshot_source(
    cfg: &config::Audit,
    target: &Target,
    mounts: &Mounts,
    notes: &mut Vec<String>,
) -> Result<Option<Changes>> {
    if cfg.source.kind == SourceKind::Walk {
        return Ok(None);
    }
    let shown = target.canonical.display();
    if cfg.source.kind == SourceKind::Btrfs {
        let Some(m) = mounts.root().filter(|m| m.fstype == "btrfs") else {
            bail!("--source btrfs: {shown} is not the mount point of a btrfs subvolume; compare with --baseline DIR");
        };
        return match btrfs_source(target, cfg.threads, m, notes)? {
            Some(found) => Ok(Some(found)),
            None => {
                bail!("--source btrfs: no blank snapshot of {shown} was found; name it with --baseline DIR")
            }
        };
    }
    let on_zfs = mounts.root().filter(|m| m.fstype == "zfs");
    let dataset = match (&cfg.source.dataset, on_zfs) {
        (Some(d), _) => d.as_bytes().to_vec(),
        (None, Some(m)) => m.source.clone(),
        (None, None) => {
            let fstype =
                mounts.root().map_or("a directory of a larger filesystem".to_owned(), |m| m.fstype.clone());
            if cfg.source.kind == SourceKind::Zfs {
                bail!("--source zfs: {shown} is not the mount point of a ZFS dataset (it is {fstype}); name one with --dataset");
            }
            if let Some(m) = mounts.root().filter(|m| m.fstype == "btrfs") {
                return btrfs_source(target, cfg.threads, m, notes);
            }
            notes.push(match fstype.as_str() {
                "tmpfs" | "ramfs" => {
                    format!("{shown} is a {fstype}: everything on it is erased, so it was walked")
                }
                other => format!("{shown} ({other}) does not look like an ephemeral root: walked"),
            });
            return Ok(None);
        }
    };
    let shown_snapshot = format!("{}@{}", String::from_utf8_lossy(&dataset), cfg.source.snapshot);
    // auto, at the dataset's mount point: the snapshot's own tree may be
    // far cheaper to compare with than zfs diff (see source/choose.rs).
    let snapdir = target.canonical.join(".zfs/snapshot").join(&cfg.source.snapshot);
    let blank = match (cfg.source.kind, on_zfs) {
        (SourceKind::Auto, Some(m)) if m.source == dataset => Root::open(&snapdir).ok(),
        _ => None,
    };
    let way = blank.as_ref().and_then(|blank| {
        crate::source::choose::facts(target.root.fd(), blank.fd(), &dataset, &cfg.source.snapshot)
            .map(|facts| facts.choose())
    });
    if let (Some(blank), Some(Way::Compare(why))) = (blank, &way) {
        let mut tree = ChangeTree::new();
        let errors =
            crate::source::baseline::compare(&target.root, &blank, Blank::Snapshot, &mut tree, cfg.threads)
                .errors;
        notes.push(format!("compared {shown_snapshot} with the live dataset by reading both trees: {why}"));
        zfs_children(&dataset, notes);
        return Ok(Some(Changes { tree, source: "zfs-snapshot", errors, blank: Some(blank) }));
    }
    // zfs prints paths below where the dataset is mounted: the root.
    let prefix = target.canonical.as_os_str().as_bytes();
    let mut tree = ChangeTree::new();
    crate::source::zfs::diff_into(&dataset, &cfg.source.snapshot, prefix, &mut tree)?;
    recover_links(&mut tree, target, cfg, notes);
    notes.push(match way {
        Some(Way::Diff(why)) => format!("compared {shown_snapshot} with the live dataset (zfs diff): {why}"),
        _ => format!("compared {shown_snapshot} with the live dataset (zfs diff)"),
    });
    zfs_children(&dataset, notes);
    Ok(Some(Changes { tree, source: "zfs", errors: Vec::new(), blank: Root::open(&snapdir).ok() }))
}

/// What a source that compares with the blank state found.
struct Changes {
    tree: ChangeTree,
    source: &'static str,
    errors: Vec<crate::sys::root::WalkError>,
    /// The blank tree, when the source read one.
    blank: Option<Root>,
}

/// Names the datasets below `dataset` in a note: not in its changes, and
/// kept by a rollback.
fn zfs_children(dataset: &[u8], notes: &mut Vec<String>) {
    if let Ok(children) = crate::source::zfs::children(dataset) {
        if !children.is_empty() {
            let list: Vec<String> =
                children.iter().map(|(name, mp)| format!("{name} (mountpoint {mp})")).collect();
            notes.push(format!(
                "datasets below {} are not in its zfs diff and a rollback keeps them: {}",
                String::from_utf8_lossy(dataset),
                list.join(", ")
            ));
        }
    }
}

/// The other names of hard-linked files a diff lists, from the live tree
/// (the blank snapshot, where ZFS shows it under `.zfs`, tells which names
/// are old).
fn recover_links(tree: &mut ChangeTree, target: &Target, cfg: &config::Audit, notes: &mut Vec<String>) {
    let snapdir = target.canonical.join(".zfs/snapshot").join(&cfg.source.snapshot);
    let blank = Root::open(&snapdir).ok();
    let found = crate::source::links::recover(tree, &target.root, blank.as_ref(), cfg.threads);
    if found.files > 0 {
        notes.push(format!(
            "zfs diff names a file with several hard links under one name only: {} such files, {} other names found in the live tree",
            found.files, found.names
        ));
    }
}

/// `auto` on a btrfs root: compare with its blank snapshot, found by the
/// conventional layouts (see `source/btrfs.rs`); walk when there is none.
fn btrfs_source(
    target: &Target,
    threads: usize,
    mount: &crate::sys::mounts::Mount,
    notes: &mut Vec<String>,
) -> Result<Option<Changes>> {
    let shown = target.canonical.display();
    let places = crate::source::btrfs::candidates(&mount.fs_root)
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let blank = match crate::source::btrfs::find_blank(mount) {
        Ok(Some(blank)) => blank,
        Ok(None) => {
            notes.push(format!(
                "{shown} is btrfs but no blank snapshot was found at {places}: walked; pass --baseline"
            ));
            return Ok(None);
        }
        Err(e) => {
            notes.push(format!(
                "{shown} is btrfs but its snapshots could not be looked at ({e}): walked; pass --baseline"
            ));
            return Ok(None);
        }
    };
    let base = open_root(&blank.path)?;
    let mut tree = ChangeTree::new();
    let errors =
        crate::source::baseline::compare(&target.root, &base.root, Blank::Snapshot, &mut tree, threads)
            .errors;
    notes.push(format!("compared with the blank snapshot {}", String::from_utf8_lossy(&blank.subvolume)));
    Ok(Some(Changes { tree, source: "btrfs", errors, blank: Some(base.root) }))
}

/// Reads a saved `zfs diff -FHt` into a change tree; a malformed line is
/// an error naming the file and line, and nothing is audited.
fn read_diff(file: &Path, strip: Option<&Path>) -> Result<ChangeTree> {
    Ok(zfs::read_saved(file, strip)?)
}

/// Adds what only a change list knows: removed paths (they come back),
/// the old names of renamed ones, and what an offline audit cannot say.
fn diff_findings(tree: &ChangeTree, findings: &mut Vec<Finding>, offline: bool, notes: &mut Vec<String>) {
    for f in findings.iter_mut() {
        // Rows decided before any metadata (kept, ignored) learn their change here.
        if f.change == Change::Present {
            f.change = tree.change_of(&f.path).unwrap_or(Change::Modified);
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
    if offline {
        notes.push(
            "offline: the diff was read without its tree (no --root), so there are no sizes and claims are \
             checked only against what the diff lists"
                .into(),
        );
    }
    if tree.link_changes > 0 {
        notes.push(format!(
            "zfs diff names a file with several hard links under one name only ({} link-count changes seen): \
             its other names are not in this list",
            tree.link_changes
        ));
    }
    if tree.delete_queue > 0 {
        notes.push(format!(
            "{} objects were unlinked but still open when diffed (on_delete_queue): not listed",
            tree.delete_queue
        ));
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
    let clone = match crate::source::shadowed::clone_root(&target.canonical) {
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
        matcher.explain(path).decider().is_some_and(|d| matcher.rule(d.rule).kind == RuleKind::Ignore)
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
    /// Whether the path exists in the audited tree (`None`: no live tree).
    pub exists: Option<bool>,
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
    let exists = if cfg.source.zfs_diff.is_some() && !cfg.rules.root_given {
        None
    } else {
        let target = open_root(&cfg.rules.root)?;
        Some(target.root.exists(path.strip_prefix(b"/").unwrap_or(path)).unwrap_or(false))
    };
    let finding = report.findings.iter().find(|f| f.path == path).cloned().or_else(|| {
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
    });
    Ok(Explained { path: path.to_vec(), report, finding, exists, rules, why, claim })
}
