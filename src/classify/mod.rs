//! Classification of a walked tree: every entry gets a verdict, and whole
//! unclaimed subtrees fold into one finding.
//!
//! [`Classifier`] is the [`Visitor`] the audit hands to the walk. It
//! gathers the facts of each entry — the rule the matcher finds on its
//! path, the knowledge rules naming it, its metadata, its claim's state —
//! and wires two parts kept apart:
//!
//! - [`judge`]: one entry → verdict, detail and rule. Pure, table-tested.
//! - [`group`]: per-directory folding into rows, hard-link accounting.
//!
//! It decides on the path alone wherever it can (an ignored subtree, a
//! claim trusted by `--assume-claims`) so such entries are never stat'ed
//! or entered, and checks every other claim against the live tree through
//! the one claim checker: a mount point or a symlink to another filesystem
//! realises it (`kept`); ordinary content breaks it (`broken`, entered,
//! every entry and byte below counted). Knowledge (what NixOS recreates,
//! identities, tmpfiles objects) is looked up only in the directories that
//! hold a path it names, and symlink targets are read only where links
//! NixOS recreates live.

pub mod group;
pub mod judge;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::claims::check::{Checker, Claims, State};
use crate::claims::matcher::{Cursor, Matcher, RuleId, RuleKind};
use crate::knowledge::{recreated, Hits, Knowledge, Known};
use crate::report::{EntryError, Finding, RuleRef, Verdict};
use crate::source::walk::{EntryRef, Visitor};
use crate::sys::meta::{Change, FileKind, Meta};
use crate::sys::mounts::Mounts;
use crate::sys::root::{describe_errno, Root, WalkError};

use group::{content_disk, content_size, listing, lock, Closing, Group, Out};
pub use group::{Collected, Settle};
use judge::{By, Judged, Mode, Planned, Shape};

/// The plan for one entry, decided before its stat.
pub struct Plan {
    cursor: Cursor,
    planned: Planned,
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
    /// Holds a path the knowledge names: its entries are looked up.
    knows: bool,
    /// Where NixOS recreates links (see `knowledge::recreated::area`):
    /// symlinks here are judged by their target too.
    links: bool,
    /// A directory systemd-tmpfiles creates: empty, it is recreated; with
    /// content, that content is lost as usual (it does not split groups).
    tmpfiles: Option<Known>,
    group: Mutex<Group>,
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
    /// Rows are summed, not kept (see [`Classifier::tallying`]).
    settle: Settle<'a>,
    /// Recognise identities and what NixOS recreates (not inside a storage root).
    identities: bool,
    /// Identities, what NixOS and systemd-tmpfiles recreate: rules of
    /// their own matcher, read from the root.
    knowledge: Knowledge,
    /// Keep rules whose claim row the walk made.
    seen: Vec<AtomicBool>,
    out: Out,
}

impl<'a> Classifier<'a> {
    pub fn new(matcher: &'a Matcher, checker: &'a Checker<'a>, claims: &'a Claims, flat: bool) -> Self {
        let root = checker.root();
        // What NixOS recreates, read from the root; a file that cannot be
        // read (a FIFO, a device, too large) is an error of the audit, and
        // nothing is taken as recreated from it.
        let knowledge = root.map_or_else(Knowledge::built_in, Knowledge::read);
        let errors = knowledge
            .problems()
            .iter()
            .map(|(path, operation, message)| EntryError {
                path: path.clone(),
                operation,
                message: message.clone(),
                errno: None,
            })
            .collect();
        Classifier {
            matcher,
            root,
            mounts: checker.mounts(),
            checker,
            claims,
            flat,
            settle: None,
            identities: true,
            knowledge,
            seen: matcher.rules().iter().map(|_| AtomicBool::new(false)).collect(),
            out: Out::new(errors),
        }
    }

    /// Sums the rows instead of keeping them, each settled by `settle`
    /// first (see [`Settle`]): every path judged by itself (flat), in
    /// memory that does not grow with the rows. The rows of
    /// [`Classifier::into_collected`] are then in its `tally`.
    pub fn tallying(mut self, settle: &'a (dyn Fn(&mut Finding, &[u8]) + Sync)) -> Self {
        self.flat = true;
        self.settle = Some(settle);
        self
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
        let decided = cursor.decided.map(|d| (d.rule, self.matcher.rule(d.rule).kind));
        let (mode, claim_root) = judge::root(decided);
        if let Mode::Broken(rule) = mode {
            self.seen[rule as usize].store(true, Ordering::Relaxed);
        }
        Dir {
            cursor,
            mode,
            claim_root,
            mtime: 0,
            change: Change::Present,
            returns: true,
            unchecked: self.root.is_none(),
            knows: self.identities && self.knowledge.holds(b"/"),
            links: false,
            tmpfiles: None,
            group: Mutex::new(Group::default()),
        }
    }

    pub fn into_collected(self) -> Collected {
        self.out.into_inner()
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
            f.rule = Some(self.rule_ref(By::Rule(claim.rule)));
            rows.push(f);
        }
        rows
    }

    /// The rule behind a decision, as a finding names it.
    fn rule_ref(&self, by: By) -> RuleRef {
        match by {
            By::Rule(id) => self.matcher.rule(id).to_ref(),
            By::Knowledge(id) => self.knowledge.rule(id).to_ref(),
        }
    }

    fn loss_row(&self, path: &[u8], verdict: Verdict, meta: &Meta, rule: Option<By>) -> Finding {
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
            None => {
                self.checker.check(path, Some(meta), crate::claims::check::storage_of(self.matcher, rule))
            }
        }
    }

    /// What the knowledge says of a symlink's target, where the judge asks.
    fn target(&self, parent: &Dir, entry: &EntryRef<'_>, planned: &Planned, meta: &Meta) -> Option<Known> {
        if !parent.links || !judge::wants_target(planned, meta) {
            return None;
        }
        let target = self.root?.read_link(entry.path.strip_prefix(b"/").unwrap_or(entry.path)).ok()?;
        self.knowledge.of_target(&target)
    }

    /// Turns a row the judge decided into the finding, into the listing.
    fn judged_row(&self, entry: &EntryRef<'_>, meta: &Meta, row: judge::Row) {
        if row.link {
            self.out.record_link(meta, row.verdict);
        }
        let mut f = match row.shape {
            Shape::Loss => self.loss_row(entry.path, row.verdict, meta, row.rule),
            Shape::Bare => {
                let mut f = Finding::new(entry.path.to_vec(), row.verdict, meta.kind);
                f.rule = row.rule.map(|r| self.rule_ref(r));
                f
            }
            Shape::MountPoint => {
                let mut f = Finding::new(entry.path.to_vec(), row.verdict, meta.kind);
                f.entries = Some(1);
                f.detail = Some(self.mount_detail(entry.path, meta));
                f
            }
        };
        if let Some(detail) = row.detail {
            f.detail = Some(detail.into_owned());
        }
        f.unverified = row.unverified;
        listing(|g| g.row(f, true, self.settle));
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

impl Visitor for Classifier<'_> {
    type Dir = Dir;
    type Plan = Plan;

    fn plan(&self, parent: &Dir, entry: &EntryRef<'_>) -> Option<Plan> {
        let cursor = if self.matcher.is_empty() {
            parent.cursor
        } else {
            self.matcher.step(&parent.cursor, entry.path, entry.name)
        };
        // The rule that applies from this entry on (not its parent's).
        let fresh = cursor
            .decided
            .filter(|d| parent.cursor.decided != Some(*d))
            .map(|d| (d.rule, self.matcher.rule(d.rule).kind));
        if let Some((rule, RuleKind::Keep)) = fresh {
            self.seen[rule as usize].store(true, Ordering::Relaxed);
        }
        let before = judge::before_stat(
            parent.mode,
            fresh,
            self.checker.assumed(),
            || may_be_dir(entry) && self.matcher.keep_below(&cursor, entry.path),
            || if parent.knows { self.knowledge.of_path(entry.path) } else { Hits::NONE },
        );
        if let Some(early) = before.row {
            let mut f =
                Finding::new(entry.path.to_vec(), early.verdict, entry.hint.unwrap_or(FileKind::Unknown));
            f.rule = Some(self.rule_ref(By::Rule(early.rule)));
            f.unverified = early.unverified;
            f.detail = early.detail.map(str::to_owned);
            listing(|g| g.row(f, early.verdict != Verdict::Ignored, self.settle));
        }
        before.then.map(|planned| Plan { cursor, planned })
    }

    fn leaf(&self, parent: &Dir, entry: &EntryRef<'_>, plan: Plan, meta: &Meta) {
        let claim = match plan.planned {
            Planned::Claim(rule) => match self.claim_state(entry.path, meta, rule) {
                Ok(state) => Some(state),
                Err(errno) => {
                    let error =
                        WalkError { path: entry.path.to_vec(), op: crate::sys::root::Op::Stat, errno };
                    return self.out.error(entry_error(error), self.settle);
                }
            },
            Planned::Inherit(..) => None,
        };
        let target = self.target(parent, entry, &plan.planned, meta);
        let leaf = judge::Leaf { name: entry.name, meta, planned: plan.planned, claim, target };
        match judge::leaf(leaf) {
            Judged::Nothing => {}
            Judged::Row(row) => self.judged_row(entry, meta, row),
            Judged::Content(content) => {
                self.out.record_link(meta, content.verdict);
                let flat = self.flat.then(|| {
                    let mut f = self.loss_row(entry.path, content.verdict, meta, content.rule);
                    f.detail = content.detail.map(str::to_owned);
                    f
                });
                listing(|g| g.content(entry.name, meta, content, flat, self.settle));
            }
        }
    }

    fn enter(&self, _parent: &Dir, entry: &EntryRef<'_>, plan: Plan, meta: &Meta) -> Option<Dir> {
        let claim = match plan.planned {
            Planned::Claim(rule) => self.claim_state(entry.path, meta, rule).ok(),
            Planned::Inherit(..) => None,
        };
        let entered = judge::enter(plan.planned, claim);
        if entered.claim_root.is_some() {
            listing(|g| g.mixed = true);
        }
        let unchecked = entered.claim_root.is_some() && self.root.is_none();
        let returns = meta.change == Change::Modified;
        let mut group = Group::default();
        if !matches!(entered.mode, Mode::Ignored(_)) && !returns {
            group.count(1, 0, 0, Some(meta.mtime));
        }
        Some(Dir {
            cursor: plan.cursor,
            mode: entered.mode,
            claim_root: entered.claim_root,
            mtime: meta.mtime,
            change: meta.change,
            returns,
            unchecked,
            knows: self.identities && self.knowledge.holds(entry.path),
            links: self.identities && recreated::area(entry.path),
            tmpfiles: entered.tmpfiles,
            group: Mutex::new(group),
        })
    }

    fn listed(&self, dir: &Dir) {
        listing(|local| {
            // Summed rows go to the walk's tally now, not to the directory:
            // a directory waiting for its subtree holds no tally (a chain
            // with a row at every level would hold one a level).
            if let Some(mut tally) = local.tally.take() {
                self.out.tally(&mut tally);
            }
            if local.is_empty() {
                return;
            }
            lock(&dir.group).absorb(local);
        });
    }

    fn finish(&self, dir: &Dir, path: &[u8], parent: Option<&Dir>) {
        let g = std::mem::take(&mut *lock(&dir.group));
        let closing = Closing {
            path,
            mode: dir.mode,
            claim_root: dir.claim_root.as_deref(),
            mtime: dir.mtime,
            change: dir.change,
            returns: dir.returns,
            unchecked: dir.unchecked,
            tmpfiles: dir.tmpfiles,
            flat: self.flat,
            tallied: self.settle.is_some(),
        };
        let rows = group::close(&closing, g, parent.map(|p| &p.group), &|by| self.rule_ref(by));
        self.out.rows(rows, self.settle, path);
    }

    fn error(&self, _dir: &Dir, error: WalkError) {
        self.out.error(entry_error(error), self.settle);
    }
}

/// `d_type` says directory, or says nothing.
fn may_be_dir(entry: &EntryRef<'_>) -> bool {
    matches!(entry.hint, None | Some(FileKind::Dir))
}
