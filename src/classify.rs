//! Classification of a walked tree: every entry gets a verdict, and whole
//! unclaimed subtrees fold into one finding.
//!
//! This is the [`Visitor`] the audit hands to the walk. It decides on the
//! path alone wherever it can (an ignored subtree, a claim trusted by
//! `--assume-claims`) so such entries are never stat'ed or entered, and
//! checks every other claim against the live tree: a mount point or a
//! symlink to another filesystem realises it (`kept`); ordinary content
//! breaks it (`broken`, entered, every entry and byte below counted).
//!
//! # Grouping
//!
//! Each entered directory keeps a `Group`: totals of its subtree and the
//! list of its direct children that are whole unclaimed subtrees (as names
//! in one arena, so a 100,000-entry directory costs no per-entry
//! allocation). When a directory finishes, the walk hands it to
//! [`Visitor::finish`]: an unclaimed directory that contains nothing but
//! unclaimed entries (ignored ones do not count) becomes one candidate row in
//! its parent; a *mixed* one (it contains a claim, a mount point, or a mixed
//! directory) is `structure`, and its pending children become rows. A
//! broken claim is always one row, with everything at risk below it.
//! `--flat` skips the folding: every loss path is its own row.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::claims::check::{self, Checker, Claims, State};
use crate::claims::matcher::{Cursor, Matcher, RuleId, RuleKind};
use crate::knowledge::{identity, recreated, tmpfiles};
use crate::report::{EntryError, Finding, HardLinks, LinkKey, RuleRef, Verdict};
use crate::source::walk::{EntryRef, Visitor};
use crate::sys::meta::{Change, FileKind, Meta};
use crate::sys::mounts::Mounts;
use crate::sys::root::{describe_errno, Root, WalkError};

/// How the entries of a directory are classified unless a rule says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Unclaimed,
    /// Inside a broken claim: content at risk.
    Broken(RuleId),
    /// Inside an ignored directory entered only to check claims below it.
    Ignored(RuleId),
}

/// The plan for one entry, decided before its stat.
pub struct Plan {
    cursor: Cursor,
    what: What,
}

#[derive(Debug, Clone, Copy)]
enum What {
    /// The root of a claim to check.
    Claim(RuleId),
    /// Inherits the parent's mode.
    Inherit(Mode),
    /// Unclaimed, and recreated at boot with a new identity.
    Identity(&'static str),
}

/// Per-directory state.
pub struct Dir {
    cursor: Cursor,
    mode: Mode,
    /// This directory is itself a claimed path (broken, since entered):
    /// why, in words.
    claim_root: Option<String>,
    /// The directory's own modification time.
    mtime: i64,
    change: Change,
    /// Exists in the blank state (modified, not created): it comes back at
    /// rollback, so it is never a loss itself and never folds.
    returns: bool,
    /// A claimed directory that cannot be checked (no live tree).
    unchecked: bool,
    /// One of the directories where identities live (see `knowledge::identity`).
    identity: Option<u8>,
    /// Where NixOS recreates things (see `knowledge::recreated`).
    recreate_area: bool,
    /// Holds objects systemd-tmpfiles creates.
    tmpfiles_here: bool,
    /// A directory systemd-tmpfiles creates: empty, it is recreated; with
    /// content, that content is lost as usual (it does not split groups).
    tmpfiles_dir: bool,
    group: Mutex<Group>,
}

#[derive(Default)]
struct Group {
    entries: u64,
    size: u64,
    disk: u64,
    newest: Option<i64>,
    /// Contains a claim, a mount point or a mixed directory.
    mixed: bool,
    /// Contains an ignored path.
    ignored: bool,
    /// Unclaimed non-directories in the subtree.
    files: u64,
    /// Non-directories NixOS recreates, in the subtree.
    recreated: u64,
    /// Direct children that are whole unclaimed subtrees, names in `names`.
    pending: Vec<Pending>,
    names: Vec<u8>,
    /// Rows decided in this directory, handed to the report at finish.
    rows: Vec<Finding>,
}

struct Pending {
    name: (u32, u32),
    verdict: Verdict,
    /// Why, for a single recreated entry.
    detail: Option<&'static str>,
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

fn listing<R>(f: impl FnOnce(&mut Group) -> R) -> R {
    LISTING.with_borrow_mut(f)
}

impl Group {
    fn is_empty(&self) -> bool {
        self.entries == 0 && !self.mixed && !self.ignored && self.rows.is_empty() && self.pending.is_empty()
    }

    /// Moves everything of `other` (left empty, capacity kept) into `self`.
    fn absorb(&mut self, other: &mut Group) {
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

    fn count(&mut self, entries: u64, size: u64, disk: u64, mtime: Option<i64>) {
        // Sizes can be absurd (sparse files): saturate, never wrap.
        self.entries = self.entries.saturating_add(entries);
        self.size = self.size.saturating_add(size);
        self.disk = self.disk.saturating_add(disk);
        if let Some(m) = mtime {
            self.newest = Some(self.newest.map_or(m, |n| n.max(m)));
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
        self.pending.push(Pending { name, verdict, detail: None, kind, change, entries, size, disk, mtime });
    }
}

/// The audit's visitor; collects the rows and errors of the whole walk.
pub struct Classifier<'a> {
    matcher: &'a Matcher,
    /// The live tree; `None` for a change list with nothing mounted behind it.
    root: Option<&'a Root>,
    mounts: &'a Mounts,
    /// The one claim checker, and the literal claims it checked up front.
    checker: &'a Checker<'a>,
    claims: &'a Claims,
    flat: bool,
    /// Recognise identities and what NixOS recreates (not inside a storage root).
    identities: bool,
    /// The files `/etc/.clean` lists: copied from the configuration at boot.
    etc_clean: std::collections::HashSet<Vec<u8>>,
    /// What systemd-tmpfiles creates at boot.
    tmpfiles: tmpfiles::Tmpfiles,
    /// Keep rules whose claim row the walk made.
    seen: Vec<AtomicBool>,
    out: Mutex<Collected>,
}

#[derive(Default)]
pub struct Collected {
    pub findings: Vec<Finding>,
    pub errors: Vec<EntryError>,
    pub links: HardLinks,
}

impl<'a> Classifier<'a> {
    pub fn new(matcher: &'a Matcher, checker: &'a Checker<'a>, claims: &'a Claims, flat: bool) -> Self {
        let root = checker.root();
        // What NixOS recreates, read from the root; a file that cannot be
        // read (a FIFO, a device, too large) is an error of the audit, and
        // nothing is taken as recreated from it.
        let mut errors = Vec::new();
        let problem = |path: &[u8], operation: &'static str, message: String| EntryError {
            path: path.to_vec(),
            operation,
            message,
            errno: None,
        };
        let etc_clean = match root.map(recreated::read_etc_clean) {
            Some(Ok(set)) => set,
            Some(Err(e)) => {
                errors.push(problem(b"/etc/.clean", "read", e.to_string()));
                Default::default()
            }
            None => Default::default(),
        };
        let tmpfiles = root.map(tmpfiles::Tmpfiles::read).unwrap_or_default();
        errors.extend(
            tmpfiles.problems().iter().map(|(path, why)| problem(path, "read tmpfiles.d", why.clone())),
        );
        Classifier {
            matcher,
            root,
            mounts: checker.mounts(),
            checker,
            claims,
            flat,
            identities: true,
            etc_clean,
            tmpfiles,
            seen: matcher.rules().iter().map(|_| AtomicBool::new(false)).collect(),
            out: Mutex::new(Collected { errors, ..Collected::default() }),
        }
    }

    /// Classifies a tree that is not a root (a storage root): no path in
    /// it is an identity recreated at boot.
    pub fn without_identities(mut self) -> Self {
        self.identities = false;
        self
    }

    /// The state of the root directory.
    pub fn top(&self) -> Dir {
        let cursor = self.matcher.root();
        let (mode, claim_root) = match cursor.decided {
            None => (Mode::Unclaimed, None),
            Some(d) => match self.matcher.rule(d.rule).kind {
                // A claim on `/` itself can never be realised on the root.
                RuleKind::Keep => {
                    self.seen[d.rule as usize].store(true, Ordering::Relaxed);
                    (Mode::Broken(d.rule), Some("plain content on the ephemeral root".to_owned()))
                }
                RuleKind::Ignore => (Mode::Ignored(d.rule), None),
            },
        };
        Dir {
            cursor,
            mode,
            claim_root,
            mtime: 0,
            change: Change::Present,
            returns: true,
            unchecked: self.root.is_none(),
            identity: None,
            tmpfiles_dir: false,
            recreate_area: false,
            tmpfiles_here: self.identities && self.tmpfiles.holds(b"/"),
            group: Mutex::new(Group::default()),
        }
    }

    pub fn into_collected(self) -> Collected {
        self.out.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    /// Rows for the literal claims the source never met (a change list
    /// names only what changed): each claim has a row whatever the source.
    pub fn unmet_claims(&self) -> Vec<Finding> {
        let mut rows = Vec::new();
        for (path, claim) in &self.claims.by_path {
            if self.seen[claim.rule as usize].load(Ordering::Relaxed) {
                continue;
            }
            let mut f = match &claim.state {
                State::Missing => continue,
                State::Kept(detail) => {
                    let mut f = Finding::new(path.clone(), Verdict::Kept, claim.kind);
                    f.detail = Some(detail.clone());
                    f
                }
                State::Unverified(why) => {
                    let mut f = Finding::new(path.clone(), Verdict::Kept, claim.kind);
                    f.unverified = true;
                    f.detail = Some((*why).to_owned());
                    f
                }
                State::Broken { reason, .. } => {
                    // Nothing of it differs from the blank state: no content counted.
                    let mut f = Finding::new(path.clone(), Verdict::Broken, claim.kind);
                    f.entries = Some(0);
                    f.size = Some(0);
                    f.disk = Some(0);
                    f.detail = Some(reason.clone());
                    f
                }
            };
            f.rule = Some(self.rule_ref(claim.rule));
            rows.push(f);
        }
        rows
    }

    fn rule_ref(&self, id: RuleId) -> RuleRef {
        self.matcher.rule(id).to_ref()
    }

    fn lock(group: &Mutex<Group>) -> std::sync::MutexGuard<'_, Group> {
        group.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A row decided without a stat, or a non-loss row: into the parent's rows.
    fn row(&self, finding: Finding, mixes: bool) {
        listing(|g| {
            g.mixed |= mixes;
            g.ignored |= finding.verdict == Verdict::Ignored;
            g.rows.push(finding);
        });
    }

    fn record_link(&self, meta: &Meta, verdict: Verdict) {
        if meta.kind != FileKind::Dir && meta.nlink > 1 {
            let key = LinkKey { dev: meta.dev, ino: meta.ino };
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            out.links.record(key, meta.size, meta.disk, verdict);
        }
    }

    fn loss_row(&self, path: &[u8], verdict: Verdict, meta: &Meta, rule: Option<RuleId>) -> Finding {
        let mut f = Finding::new(path.to_vec(), verdict, meta.kind);
        f.change = meta.change;
        f.entries = Some(1);
        f.size = Some(content_size(meta));
        f.disk = Some(content_disk(meta));
        f.mtime = Some(meta.mtime);
        f.rule = rule.map(|r| self.rule_ref(r));
        f
    }

    fn mount_detail(&self, path: &[u8], meta: &Meta) -> String {
        let what = if meta.kind == FileKind::Dir { "mount point" } else { "bind-mounted file" };
        match self.mounts.at(path) {
            Some(m) => format!("{what} ({})", m.describe()),
            None if !meta.kind.eq(&FileKind::Dir) || self.mounts.is_empty() => what.to_owned(),
            None => format!("{what} (another filesystem)"),
        }
    }

    /// The state of the claim `rule` on `path`: the one checked up front
    /// for a literal claim, else (a glob) checked now by the same checker.
    fn claim_state(&self, path: &[u8], meta: &Meta, rule: RuleId) -> Result<State, rustix::io::Errno> {
        self.seen[rule as usize].store(true, Ordering::Relaxed);
        match self.claims.get(path).filter(|c| c.rule == rule) {
            Some(claim) => Ok(claim.state.clone()),
            None => self.checker.check(path, Some(meta), check::storage_of(self.matcher, rule)),
        }
    }

    /// Makes the row of a claimed path that is not a directory on this
    /// filesystem.
    fn check_claim(&self, entry: &EntryRef<'_>, meta: &Meta, rule: RuleId) {
        let path = entry.path;
        let state = match self.claim_state(path, meta, rule) {
            Ok(state) => state,
            Err(errno) => {
                let error = WalkError { path: path.to_vec(), op: crate::sys::root::Op::Stat, errno };
                let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
                return out.errors.push(entry_error(error));
            }
        };
        let mut f = match state {
            State::Kept(detail) => {
                let mut f = Finding::new(path.to_vec(), Verdict::Kept, meta.kind);
                f.detail = Some(detail);
                f
            }
            State::Unverified(why) => {
                let mut f = Finding::new(path.to_vec(), Verdict::Kept, meta.kind);
                f.unverified = true;
                f.detail = Some(why.to_owned());
                f
            }
            State::Broken { reason, enter } => {
                let mut f = self.loss_row(path, Verdict::Broken, meta, None);
                f.detail = Some(reason);
                if enter {
                    self.record_link(meta, Verdict::Broken);
                }
                f
            }
            // It was just found: it exists.
            State::Missing => return,
        };
        f.rule = Some(self.rule_ref(rule));
        self.row(f, true);
    }

    /// Why NixOS recreates this unclaimed entry, if it does.
    fn recreated_why(&self, parent: &Dir, entry: &EntryRef<'_>, meta: &Meta) -> Option<&'static str> {
        if parent.tmpfiles_here {
            match self.tmpfiles.object(entry.path) {
                Some(tmpfiles::Object::File) if meta.size > 0 => {}
                Some(_) => return Some("created by systemd-tmpfiles at every boot"),
                None => {}
            }
        }
        if !parent.recreate_area {
            return None;
        }
        if let Some(why) = recreated::fixed(entry.path) {
            return Some(why);
        }
        if self.etc_clean.contains(entry.path) {
            return Some(recreated::CLEAN);
        }
        if meta.kind == FileKind::Symlink {
            let target = self.root?.read_link(entry.path.strip_prefix(b"/").unwrap_or(entry.path)).ok()?;
            return recreated::link(&target);
        }
        None
    }
}

fn entry_error(error: WalkError) -> EntryError {
    EntryError {
        path: error.path,
        operation: error.op.name(),
        message: describe_errno(error.errno),
        errno: Some(error.errno.raw_os_error()),
    }
}

/// Directories' own sizes mean nothing across filesystems: content only.
fn content_size(meta: &Meta) -> u64 {
    if meta.kind == FileKind::Dir {
        0
    } else {
        meta.size
    }
}

fn content_disk(meta: &Meta) -> u64 {
    if meta.kind == FileKind::Dir {
        0
    } else {
        meta.disk
    }
}

impl Visitor for Classifier<'_> {
    type Dir = Dir;
    type Plan = Plan;

    fn plan(&self, parent: &Dir, entry: &EntryRef<'_>) -> Option<Plan> {
        let cursor = if self.matcher.is_empty() {
            parent.cursor
        } else {
            self.matcher.step(&parent.cursor, entry.path, entry.name)
        };
        let fresh = cursor.decided.filter(|d| parent.cursor.decided != Some(*d));
        let what = match fresh {
            Some(d) => match self.matcher.rule(d.rule).kind {
                RuleKind::Keep => {
                    self.seen[d.rule as usize].store(true, Ordering::Relaxed);
                    if self.checker.assumed() {
                        let mut f = Finding::new(
                            entry.path.to_vec(),
                            Verdict::Kept,
                            entry.hint.unwrap_or(FileKind::Unknown),
                        );
                        f.rule = Some(self.rule_ref(d.rule));
                        f.unverified = true;
                        f.detail = Some(check::ASSUMED.into());
                        self.row(f, true);
                        return None;
                    }
                    What::Claim(d.rule)
                }
                RuleKind::Ignore => {
                    let mut f = Finding::new(
                        entry.path.to_vec(),
                        Verdict::Ignored,
                        entry.hint.unwrap_or(FileKind::Unknown),
                    );
                    f.rule = Some(self.rule_ref(d.rule));
                    self.row(f, false);
                    if may_be_dir(entry) && self.matcher.keep_below(&cursor, entry.path) {
                        What::Inherit(Mode::Ignored(d.rule))
                    } else {
                        return None;
                    }
                }
            },
            None => match parent.mode {
                Mode::Ignored(_) if !(may_be_dir(entry) && self.matcher.keep_below(&cursor, entry.path)) => {
                    return None
                }
                Mode::Unclaimed if parent.identity.is_some() && entry.hint != Some(FileKind::Dir) => {
                    match parent.identity.and_then(|d| identity::reason(d, entry.name)) {
                        Some(why) => What::Identity(why),
                        None => What::Inherit(Mode::Unclaimed),
                    }
                }
                mode => What::Inherit(mode),
            },
        };
        Some(Plan { cursor, what })
    }

    fn leaf(&self, parent: &Dir, entry: &EntryRef<'_>, plan: Plan, meta: &Meta) {
        if crate::sys::meta::is_zfs_control_dir(entry.name, meta) {
            return;
        }
        let mode = match plan.what {
            What::Claim(rule) => return self.check_claim(entry, meta, rule),
            What::Identity(why) if !meta.other_fs => {
                let mut f = self.loss_row(entry.path, Verdict::NewIdentity, meta, None);
                f.detail = Some(format!("recreated at boot with {why}"));
                self.record_link(meta, Verdict::NewIdentity);
                return self.row(f, true);
            }
            What::Identity(_) => Mode::Unclaimed,
            What::Inherit(mode) => mode,
        };
        if meta.other_fs {
            let rule = match mode {
                Mode::Ignored(_) => return,
                Mode::Broken(rule) => Some(rule),
                Mode::Unclaimed => None,
            };
            if meta.subvolume {
                let verdict = if rule.is_some() { Verdict::Broken } else { Verdict::Unclaimed };
                let mut f = self.loss_row(entry.path, verdict, meta, rule);
                f.detail = Some(check::NESTED.into());
                return self.row(f, true);
            }
            let mut f = Finding::new(entry.path.to_vec(), Verdict::Structure, meta.kind);
            f.entries = Some(1);
            f.detail = Some(self.mount_detail(entry.path, meta));
            return self.row(f, true);
        }
        match mode {
            Mode::Ignored(_) => {}
            Mode::Unclaimed => {
                let recreated = self.recreated_why(parent, entry, meta);
                let verdict = if recreated.is_some() { Verdict::Recreated } else { Verdict::Unclaimed };
                self.record_link(meta, verdict);
                let f = self.flat.then(|| {
                    let mut f = self.loss_row(entry.path, verdict, meta, None);
                    f.detail = recreated.map(str::to_owned);
                    f
                });
                listing(|g| {
                    g.count(1, content_size(meta), content_disk(meta), Some(meta.mtime));
                    if recreated.is_some() {
                        g.recreated += 1;
                    } else {
                        g.files += 1;
                    }
                    match f {
                        Some(f) => g.rows.push(f),
                        None => {
                            let counts = (1, content_size(meta), content_disk(meta));
                            g.push_pending(entry.name, verdict, (meta.kind, meta.change), counts, meta.mtime);
                            if let Some(p) = g.pending.last_mut() {
                                p.detail = recreated;
                            }
                        }
                    }
                });
            }
            Mode::Broken(rule) => {
                self.record_link(meta, Verdict::Broken);
                let f = self.flat.then(|| self.loss_row(entry.path, Verdict::Broken, meta, Some(rule)));
                listing(|g| {
                    g.count(1, content_size(meta), content_disk(meta), Some(meta.mtime));
                    g.rows.extend(f);
                });
            }
        }
    }

    fn enter(&self, parent: &Dir, entry: &EntryRef<'_>, plan: Plan, meta: &Meta) -> Option<Dir> {
        let (mode, claim_root) = match plan.what {
            What::Claim(rule) => {
                // A claimed directory holding ordinary content: broken
                // (offline, unless nothing of it is on the root).
                listing(|g| g.mixed = true);
                let why = match self.claim_state(entry.path, meta, rule) {
                    Ok(State::Broken { reason, .. }) => reason,
                    _ => "plain content on the ephemeral root".to_owned(),
                };
                (Mode::Broken(rule), Some(why))
            }
            What::Inherit(mode) => (mode, None),
            What::Identity(_) => (Mode::Unclaimed, None),
        };
        let unchecked = claim_root.is_some() && self.root.is_none();
        let returns = meta.change == Change::Modified;
        let mut group = Group::default();
        if !matches!(mode, Mode::Ignored(_)) && !returns {
            group.count(1, 0, 0, Some(meta.mtime));
        }
        // A directory systemd-tmpfiles creates comes back, empty.
        let tmpfiles_dir = mode == Mode::Unclaimed
            && parent.tmpfiles_here
            && self.tmpfiles.object(entry.path) == Some(tmpfiles::Object::Directory);
        Some(Dir {
            cursor: plan.cursor,
            mode,
            claim_root,
            mtime: meta.mtime,
            change: meta.change,
            returns,
            unchecked,
            identity: identity::directory(entry.path).filter(|_| self.identities),
            tmpfiles_dir,
            recreate_area: self.identities && recreated::area(entry.path),
            tmpfiles_here: self.identities && self.tmpfiles.holds(entry.path),
            group: Mutex::new(group),
        })
    }

    fn listed(&self, dir: &Dir) {
        listing(|local| {
            if local.is_empty() {
                return;
            }
            Self::lock(&dir.group).absorb(local);
        });
    }

    fn finish(&self, dir: &Dir, path: &[u8], parent: Option<&Dir>) {
        let mut g = std::mem::take(&mut *Self::lock(&dir.group));
        let mut rows = std::mem::take(&mut g.rows);
        // What the parent learns: the subtree folds into it, counts into
        // it, or makes it mixed.
        let mut fold = false;
        let mut count = false;
        // Holds ignored paths and nothing else: it exists for them.
        let holder = g.ignored && g.files == 0 && g.recreated == 0;
        // Holds both what is lost and what NixOS recreates: split.
        let both = g.files > 0 && g.recreated > 0;
        let empty_tmpfiles = dir.tmpfiles_dir && g.entries <= 1 && !g.mixed && !g.ignored;
        let verdict = if (g.files == 0 && g.recreated > 0) || empty_tmpfiles {
            Verdict::Recreated
        } else {
            Verdict::Unclaimed
        };
        match dir.mode {
            Mode::Unclaimed
                if !self.flat && !g.mixed && !holder && !both && !dir.returns && parent.is_some() =>
            {
                fold = true
            }
            Mode::Unclaimed => {
                for p in &g.pending {
                    let mut child = path.to_vec();
                    if path != b"/" {
                        child.push(b'/');
                    }
                    child.extend_from_slice(&g.names[p.name.0 as usize..(p.name.0 + p.name.1) as usize]);
                    let mut f = Finding::new(child, p.verdict, p.kind);
                    f.change = p.change;
                    f.detail = p.detail.map(str::to_owned);
                    f.entries = Some(p.entries);
                    f.size = Some(p.size);
                    f.disk = Some(p.disk);
                    f.mtime = Some(p.mtime);
                    rows.push(f);
                }
                if !dir.returns {
                    let mut f = Finding::new(path.to_vec(), verdict, FileKind::Dir);
                    f.change = dir.change;
                    f.entries = Some(1);
                    if g.mixed || holder || both {
                        f.verdict = Verdict::Structure;
                        f.detail =
                            Some("holds claims, mounts, ignored or recreated paths, or identities".into());
                    } else {
                        f.size = Some(0);
                        f.disk = Some(0);
                        f.mtime = Some(dir.mtime);
                    }
                    rows.push(f);
                }
            }
            Mode::Broken(rule) => {
                if dir.unchecked && g.entries <= 1 {
                    // Offline, with nothing of it on the root: cannot tell.
                    let mut f = Finding::new(path.to_vec(), Verdict::Kept, FileKind::Dir);
                    f.rule = Some(self.rule_ref(rule));
                    f.unverified = true;
                    f.detail = Some(check::OFFLINE.into());
                    rows.push(f);
                } else if dir.claim_root.is_some() || self.flat {
                    let mut f = Finding::new(path.to_vec(), Verdict::Broken, FileKind::Dir);
                    f.change = dir.change;
                    f.rule = Some(self.rule_ref(rule));
                    let (entries, size, disk, mtime) = if self.flat {
                        (1, 0, 0, Some(dir.mtime))
                    } else {
                        (g.entries, g.size, g.disk, g.newest)
                    };
                    f.entries = Some(entries);
                    f.size = Some(size);
                    f.disk = Some(disk);
                    f.mtime = mtime;
                    f.detail.clone_from(&dir.claim_root);
                    rows.push(f);
                } else {
                    count = true;
                }
            }
            Mode::Ignored(_) => {}
        }
        if let Some(parent) = parent {
            let mut pg = Self::lock(&parent.group);
            if fold || count {
                pg.count(g.entries, g.size, g.disk, g.newest);
            }
            if fold {
                pg.files += g.files;
                pg.recreated += g.recreated + u64::from(empty_tmpfiles);
                pg.ignored |= g.ignored;
                let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
                let counts = (g.entries, g.size, g.disk);
                let newest = g.newest.unwrap_or(dir.mtime);
                pg.push_pending(name, verdict, (FileKind::Dir, dir.change), counts, newest);
                if dir.tmpfiles_dir {
                    if let Some(p) = pg.pending.last_mut() {
                        p.detail = Some(if empty_tmpfiles {
                            "created by systemd-tmpfiles at every boot"
                        } else {
                            "systemd-tmpfiles recreates the directory at boot, not what it holds"
                        });
                    }
                }
            } else if !matches!(dir.mode, Mode::Broken(_)) {
                pg.mixed |= g.mixed || holder || dir.returns || both;
            }
        }
        if !rows.is_empty() {
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            out.findings.append(&mut rows);
        }
    }

    fn error(&self, _dir: &Dir, error: WalkError) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.errors.push(EntryError {
            path: error.path,
            operation: error.op.name(),
            message: describe_errno(error.errno),
            errno: Some(error.errno.raw_os_error()),
        });
    }
}

/// `d_type` says directory, or says nothing.
fn may_be_dir(entry: &EntryRef<'_>) -> bool {
    matches!(entry.hint, None | Some(FileKind::Dir))
}
