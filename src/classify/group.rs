//! The grouper: folds whole subtrees into rows, and keeps what the walk
//! collects (rows, errors, hard-linked names).
//!
//! Each entered directory keeps a [`Group`]: totals of its subtree and the
//! list of its direct children that are whole unclaimed (or recreated)
//! subtrees, as names in one arena, so a 100,000-entry directory costs no
//! per-entry allocation. A listing fills a thread-local group ([`listing`])
//! merged into the directory's once, when the listing ends. When a
//! directory finishes, [`close`] decides: an unclaimed directory that
//! contains nothing but unclaimed entries (ignored ones do not count)
//! becomes one candidate row in its parent; a *mixed* one (it contains a
//! claim, a mount point, or a mixed directory) is `structure`, and its
//! pending children become rows. A broken claim is always one row, with
//! everything at risk below it. `--flat` skips the folding: every loss
//! path is its own row.

use std::cell::RefCell;
use std::sync::{Mutex, MutexGuard};

use super::judge::{By, Mode};
use crate::claims::check;
use crate::knowledge::tmpfiles;
use crate::knowledge::Known;
use crate::report::{EntryError, Finding, HardLinks, LinkKey, RuleRef, Tally, Verdict};
use crate::sys::meta::{Change, FileKind, Meta};

#[derive(Default)]
pub struct Group {
    entries: u64,
    size: u64,
    disk: u64,
    newest: Option<i64>,
    /// Contains a claim, a mount point or a mixed directory.
    pub mixed: bool,
    /// Contains an ignored path.
    pub ignored: bool,
    /// Unclaimed non-directories in the subtree.
    files: u64,
    /// Non-directories NixOS recreates, in the subtree.
    recreated: u64,
    /// Direct children that are whole unclaimed subtrees, names in `names`.
    pending: Vec<Pending>,
    names: Vec<u8>,
    /// Rows decided in this directory, handed to the report at finish.
    pub rows: Vec<Finding>,
    /// Or, in the group of the listing under way, when the rows are
    /// tallied (see [`Settle`]), their sum: boxed, made only when a row is
    /// summed, and handed to the walk's tally when the listing ends (so no
    /// directory's group keeps one; `absorb` never sees one).
    pub tally: Option<Box<Tally>>,
}

/// What a tallying audit does to a row before summing it (its severity,
/// whether it is accepted), given the row's path: rows are then summed
/// where they are made and never kept. `None`: rows are kept for a report.
pub type Settle<'a> = Option<&'a (dyn Fn(&mut Finding, &[u8]) + Sync)>;

struct Pending {
    name: (u32, u32),
    verdict: Verdict,
    /// Why, for a single recreated entry (or a directory tmpfiles creates).
    detail: Option<&'static str>,
    /// What decided it, likewise.
    rule: Option<By>,
    kind: FileKind,
    change: Change,
    entries: u64,
    size: u64,
    disk: u64,
    mtime: i64,
}

thread_local! {
    /// What the listing of the directory this thread is reading found so
    /// far: merged into the directory's [`Group`] once, when the listing
    /// ends, so a listing takes no lock and no allocation per entry.
    static LISTING: RefCell<Group> = RefCell::new(Group::default());
}

/// The group of the listing under way on this thread.
pub fn listing<R>(f: impl FnOnce(&mut Group) -> R) -> R {
    LISTING.with_borrow_mut(f)
}

pub fn lock(group: &Mutex<Group>) -> MutexGuard<'_, Group> {
    group.lock().unwrap_or_else(|e| e.into_inner())
}

/// Directories' own sizes mean nothing across filesystems: content only.
pub fn content_size(meta: &Meta) -> u64 {
    if meta.kind == FileKind::Dir {
        0
    } else {
        meta.size
    }
}

pub fn content_disk(meta: &Meta) -> u64 {
    if meta.kind == FileKind::Dir {
        0
    } else {
        meta.disk
    }
}

impl Group {
    pub fn is_empty(&self) -> bool {
        self.entries == 0 && !self.mixed && !self.ignored && self.rows.is_empty() && self.pending.is_empty()
    }

    /// Keeps a row for the report, or sums it (see [`Settle`]).
    fn keep(&mut self, mut finding: Finding, settle: Settle<'_>) {
        match settle {
            None => self.rows.push(finding),
            Some(settle) => {
                let path = std::mem::take(&mut finding.path);
                settle(&mut finding, &path);
                self.tally.get_or_insert_default().add(&finding, &path);
            }
        }
    }

    /// Moves everything of `other` (left empty, capacity kept) into `self`.
    pub fn absorb(&mut self, other: &mut Group) {
        self.count(other.entries, other.size, other.disk, other.newest);
        self.mixed |= other.mixed;
        self.ignored |= other.ignored;
        self.files += other.files;
        self.recreated += other.recreated;
        let base = self.names.len() as u32;
        self.names.extend_from_slice(&other.names);
        self.pending.extend(other.pending.drain(..).map(|mut p| {
            p.name.0 += base;
            p
        }));
        self.rows.append(&mut other.rows);
        other.names.clear();
        other.entries = 0;
        other.size = 0;
        other.disk = 0;
        other.newest = None;
        other.mixed = false;
        other.ignored = false;
        other.files = 0;
        other.recreated = 0;
    }

    pub fn count(&mut self, entries: u64, size: u64, disk: u64, mtime: Option<i64>) {
        // Sizes can be absurd (sparse files): saturate, never wrap.
        self.entries = self.entries.saturating_add(entries);
        self.size = self.size.saturating_add(size);
        self.disk = self.disk.saturating_add(disk);
        if let Some(m) = mtime {
            self.newest = Some(self.newest.map_or(m, |n| n.max(m)));
        }
    }

    /// A row decided in this directory (not content): `mixes` when it
    /// keeps the directory from folding.
    pub fn row(&mut self, finding: Finding, mixes: bool, settle: Settle<'_>) {
        self.mixed |= mixes;
        self.ignored |= finding.verdict == Verdict::Ignored;
        self.keep(finding, settle);
    }

    /// One entry of content: unclaimed, recreated or inside a broken
    /// claim. `flat` is its own row under `--flat`; otherwise an unclaimed
    /// or recreated entry waits, as a candidate row, for its directory to
    /// finish.
    pub fn content(
        &mut self,
        name: &[u8],
        meta: &Meta,
        judged: super::judge::Content,
        flat: Option<Finding>,
        settle: Settle<'_>,
    ) {
        self.count(1, content_size(meta), content_disk(meta), Some(meta.mtime));
        match judged.verdict {
            Verdict::Recreated => self.recreated += 1,
            Verdict::Unclaimed => self.files += 1,
            _ => {}
        }
        if let Some(f) = flat {
            return self.keep(f, settle);
        }
        if judged.verdict != Verdict::Broken {
            let counts = (1, content_size(meta), content_disk(meta));
            self.push_pending(name, judged.verdict, (meta.kind, meta.change), counts, meta.mtime);
            if let Some(p) = self.pending.last_mut() {
                p.detail = judged.detail;
                p.rule = judged.rule;
            }
        }
    }

    fn push_pending(
        &mut self,
        name: &[u8],
        verdict: Verdict,
        kind: (FileKind, Change),
        counts: (u64, u64, u64),
        mtime: i64,
    ) {
        let start = self.names.len() as u32;
        self.names.extend_from_slice(name);
        let (entries, size, disk) = counts;
        let (kind, change) = kind;
        let name = (start, name.len() as u32);
        let rule = None;
        self.pending.push(Pending {
            name,
            verdict,
            detail: None,
            rule,
            kind,
            change,
            entries,
            size,
            disk,
            mtime,
        });
    }
}

/// The rows (or their tally), errors and hard-linked names of a whole walk.
#[derive(Default)]
pub struct Collected {
    pub findings: Vec<Finding>,
    pub tally: Tally,
    pub errors: Vec<EntryError>,
    /// Errors past [`Collected::ERRORS_KEPT`] when rows are tallied: counted only.
    pub errors_cut: u64,
    pub links: HardLinks,
}

impl Collected {
    /// How many errors a tallying audit keeps (the count is exact).
    pub const ERRORS_KEPT: usize = crate::report::Capped::KEPT;

    /// Keeps an error; a tallying audit keeps the first few and counts the rest.
    pub fn error(&mut self, error: EntryError, tallied: bool) {
        if tallied && self.errors.len() >= Self::ERRORS_KEPT {
            self.errors_cut += 1;
        } else {
            self.errors.push(error);
        }
    }

    /// Keeps rows for the report, or sums them (see [`Settle`]). A row
    /// summed with an empty path is at `at` (a tallying walk makes the
    /// rows of a finished directory so, not copying its path).
    pub fn rows(&mut self, rows: impl IntoIterator<Item = Finding>, settle: Settle<'_>, at: &[u8]) {
        match settle {
            None => self.findings.extend(rows),
            Some(settle) => {
                for mut f in rows {
                    let own = std::mem::take(&mut f.path);
                    let path = if own.is_empty() { at } else { &own };
                    settle(&mut f, path);
                    self.tally.add(&f, path);
                }
            }
        }
    }

    /// Keeps rows already settled, or sums them when `tallied`.
    pub fn settled(&mut self, rows: impl IntoIterator<Item = Finding>, tallied: bool) {
        if tallied {
            rows.into_iter().for_each(|f| self.tally.add(&f, &f.path));
        } else {
            self.findings.extend(rows);
        }
    }

    /// Every error, the ones only counted included.
    pub fn error_count(&self) -> u64 {
        self.errors.len() as u64 + self.errors_cut
    }
}

/// [`Collected`], shared by the walk's threads.
pub struct Out(Mutex<Collected>);

impl Out {
    pub fn new(errors: Vec<EntryError>) -> Out {
        Out(Mutex::new(Collected { errors, ..Collected::default() }))
    }

    fn lock(&self) -> MutexGuard<'_, Collected> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn into_inner(self) -> Collected {
        self.0.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    /// A name of a file with several links: its bytes count once per verdict.
    pub fn record_link(&self, meta: &Meta, verdict: Verdict) {
        if meta.kind != FileKind::Dir && meta.nlink > 1 {
            let key = LinkKey { dev: meta.dev, ino: meta.ino };
            self.lock().links.record(key, meta.size, meta.disk, verdict);
        }
    }

    pub fn error(&self, error: EntryError, settle: Settle<'_>) {
        self.lock().error(error, settle.is_some());
    }

    /// The rows of the finished directory at `path`.
    pub fn rows(&self, rows: Vec<Finding>, settle: Settle<'_>, path: &[u8]) {
        if !rows.is_empty() {
            self.lock().rows(rows, settle, path);
        }
    }

    /// The tally of the rows a listing made.
    pub fn tally(&self, tally: &mut Tally) {
        self.lock().tally.merge(tally);
    }
}

/// A finished directory, as the grouper sees it.
pub struct Closing<'a> {
    pub path: &'a [u8],
    pub mode: Mode,
    /// A claimed path itself: why it is broken.
    pub claim_root: Option<&'a str>,
    pub mtime: i64,
    pub change: Change,
    /// Exists in the blank state: never a loss itself, never folds.
    pub returns: bool,
    /// A claimed directory that cannot be checked (no live tree).
    pub unchecked: bool,
    /// systemd-tmpfiles creates it.
    pub tmpfiles: Option<Known>,
    pub flat: bool,
    /// Rows are tallied: the directory's own rows are made with an empty
    /// path (see [`Collected::rows`]).
    pub tallied: bool,
}

impl Closing<'_> {
    /// The path a row of the directory itself is made with.
    fn own_path(&self) -> Vec<u8> {
        if self.tallied {
            Vec::new()
        } else {
            self.path.to_vec()
        }
    }
}

/// What a finished directory's group makes of it.
struct Shape {
    /// Holds ignored paths and nothing else: it exists for them.
    holder: bool,
    /// Holds both what is lost and what NixOS recreates: split.
    both: bool,
    /// A directory tmpfiles creates, with nothing in it: recreated.
    empty_tmpfiles: bool,
    verdict: Verdict,
}

impl Shape {
    fn of(g: &Group, dir: &Closing<'_>) -> Shape {
        let empty_tmpfiles = dir.tmpfiles.is_some() && g.entries <= 1 && !g.mixed && !g.ignored;
        let verdict = if (g.files == 0 && g.recreated > 0) || empty_tmpfiles {
            Verdict::Recreated
        } else {
            Verdict::Unclaimed
        };
        Shape {
            holder: g.ignored && g.files == 0 && g.recreated == 0,
            both: g.files > 0 && g.recreated > 0,
            empty_tmpfiles,
            verdict,
        }
    }

    /// What decided the directory's own verdict: the tmpfiles line that
    /// creates it, when that is what makes it recreated.
    fn rule(&self, dir: &Closing<'_>) -> Option<By> {
        dir.tmpfiles.filter(|_| self.empty_tmpfiles).map(|k| By::Knowledge(k.rule))
    }
}

/// Closes a finished directory: its rows (pending children, itself), and
/// what its parent learns (the subtree folds into it, counts into it, or
/// makes it mixed). `name` turns what decided a row into its rule.
pub fn close(
    dir: &Closing<'_>,
    mut g: Group,
    parent: Option<&Mutex<Group>>,
    name: &dyn Fn(By) -> RuleRef,
) -> Vec<Finding> {
    let mut rows = std::mem::take(&mut g.rows);
    let shape = Shape::of(&g, dir);
    let (fold, count) = match dir.mode {
        Mode::Unclaimed
            if !dir.flat && !g.mixed && !shape.holder && !shape.both && !dir.returns && parent.is_some() =>
        {
            (true, false)
        }
        Mode::Unclaimed => {
            unclaimed_rows(dir, &g, &shape, &mut rows, name);
            (false, false)
        }
        Mode::Broken(rule) => match broken_row(dir, &g, rule, name) {
            Some(row) => {
                rows.push(row);
                (false, false)
            }
            None => (false, true),
        },
        Mode::Ignored(_) => (false, false),
    };
    if let Some(parent) = parent {
        into_parent(dir, &g, &shape, &mut lock(parent), fold, count);
    }
    rows
}

/// The rows of an unclaimed directory that does not fold: its pending
/// children, and itself (unless it comes back at rollback).
fn unclaimed_rows(
    dir: &Closing<'_>,
    g: &Group,
    shape: &Shape,
    rows: &mut Vec<Finding>,
    name: &dyn Fn(By) -> RuleRef,
) {
    for p in &g.pending {
        let mut child = dir.path.to_vec();
        if dir.path != b"/" {
            child.push(b'/');
        }
        child.extend_from_slice(&g.names[p.name.0 as usize..(p.name.0 + p.name.1) as usize]);
        let mut f = Finding::new(child, p.verdict, p.kind);
        f.change = p.change;
        f.detail = p.detail.map(str::to_owned);
        f.rule = p.rule.map(name);
        f.entries = Some(p.entries);
        f.size = Some(p.size);
        f.disk = Some(p.disk);
        f.mtime = Some(p.mtime);
        rows.push(f);
    }
    if dir.returns {
        return;
    }
    let mut f = Finding::new(dir.own_path(), shape.verdict, FileKind::Dir);
    f.change = dir.change;
    f.entries = Some(1);
    if g.mixed || shape.holder || shape.both {
        f.verdict = Verdict::Structure;
        f.detail = Some("holds claims, mounts, ignored or recreated paths, or identities".into());
    } else {
        f.size = Some(0);
        f.disk = Some(0);
        f.mtime = Some(dir.mtime);
        f.rule = shape.rule(dir).map(name);
    }
    rows.push(f);
}

/// The row of a directory inside a broken claim: the claim's own row
/// (everything at risk below it), or, offline with nothing of it on the
/// root, an unverified `kept`. `None`: it only counts into its parent.
fn broken_row(dir: &Closing<'_>, g: &Group, rule: u32, name: &dyn Fn(By) -> RuleRef) -> Option<Finding> {
    if dir.unchecked && g.entries <= 1 {
        let mut f = Finding::new(dir.own_path(), Verdict::Kept, FileKind::Dir);
        f.rule = Some(name(By::Rule(rule)));
        f.unverified = true;
        f.detail = Some(check::OFFLINE.into());
        return Some(f);
    }
    if dir.claim_root.is_none() && !dir.flat {
        return None;
    }
    let mut f = Finding::new(dir.own_path(), Verdict::Broken, FileKind::Dir);
    f.change = dir.change;
    f.rule = Some(name(By::Rule(rule)));
    let (entries, size, disk, mtime) =
        if dir.flat { (1, 0, 0, Some(dir.mtime)) } else { (g.entries, g.size, g.disk, g.newest) };
    f.entries = Some(entries);
    f.size = Some(size);
    f.disk = Some(disk);
    f.mtime = mtime;
    f.detail = dir.claim_root.map(str::to_owned);
    Some(f)
}

/// What the parent learns of a finished directory.
fn into_parent(dir: &Closing<'_>, g: &Group, shape: &Shape, pg: &mut Group, fold: bool, count: bool) {
    if fold || count {
        pg.count(g.entries, g.size, g.disk, g.newest);
    }
    if fold {
        pg.files += g.files;
        pg.recreated += g.recreated + u64::from(shape.empty_tmpfiles);
        pg.ignored |= g.ignored;
        let name = dir.path.rsplit(|&b| b == b'/').next().unwrap_or(dir.path);
        let counts = (g.entries, g.size, g.disk);
        let newest = g.newest.unwrap_or(dir.mtime);
        pg.push_pending(name, shape.verdict, (FileKind::Dir, dir.change), counts, newest);
        if dir.tmpfiles.is_some() {
            if let Some(p) = pg.pending.last_mut() {
                p.detail = Some(if shape.empty_tmpfiles {
                    tmpfiles::CREATED
                } else {
                    "systemd-tmpfiles recreates the directory at boot, not what it holds"
                });
                p.rule = shape.rule(dir);
            }
        }
    } else if !matches!(dir.mode, Mode::Broken(_)) {
        pg.mixed |= g.mixed || shape.holder || dir.returns || shape.both;
    }
}
