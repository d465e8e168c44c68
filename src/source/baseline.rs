//! Comparison with a blank tree: a read-only btrfs snapshot of the blank
//! root, `/.zfs/snapshot/blank`, a mounted pristine image.
//!
//! Both trees are walked once each, side by side, one task per directory on
//! a work-stealing pool, one filesystem each, never following a symlink: names in both are compared (type, size,
//! mode, owner, mtime, symlink target), names only in the live tree are
//! created, names only in the blank tree removed, with whole subtrees below
//! them. Renames are recognised afterwards by inode number, which btrfs and
//! ZFS snapshots preserve: a created path with the inode of a removed one
//! is that path renamed. A renamed directory is one change, like `zfs diff`
//! reports it: what is unchanged below it comes back under its old name and
//! is not listed. The result is the same kind of change list a `zfs diff`
//! gives, as neutral [`ChangeRecord`]s (with no inode change time: two trees
//! do not tell one), fed into the same [`ChangeTree`].
//!
//! One difference keeps memory flat: a directory only in the live tree is
//! not entered here. Everything in it is created, so the change tree only
//! marks it ([`ChangeTree::mark_subtree`]) and its walk lists it live. It is
//! entered in full only when it is a renamed directory, and searched (not
//! stored) only for the inodes of removed entries still unaccounted for.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use rustix::io::Errno;

use super::tree::ChangeTree;
use super::walk::{list_names, Op, Root, WalkError};
use super::{Change, ChangeRecord, FileKind, Meta};

/// One side of a change: where it is and what it was.
#[derive(Debug, Clone)]
struct Seen {
    path: Vec<u8>,
    meta: Meta,
    target: Option<Vec<u8>>,
}

/// What differs; errors on single entries are kept and the rest goes on.
#[derive(Debug, Default)]
pub struct Comparison {
    pub errors: Vec<WalkError>,
}

fn child(path: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = path.to_vec();
    if out != b"/" {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

fn rel(path: &[u8]) -> &[u8] {
    path.strip_prefix(b"/").unwrap_or(path)
}

struct Side<'a> {
    root: &'a Root,
}

impl Side<'_> {
    fn open(&self, path: &[u8]) -> Result<OwnedFd, Errno> {
        self.root.open_dir(path)
    }

    fn seen(&self, dir: &OwnedFd, path: Vec<u8>, name: &[u8]) -> Result<Seen, Errno> {
        let meta = self.root.stat_at(dir.as_fd(), name)?;
        let target = if meta.kind == FileKind::Symlink { self.root.read_link(rel(&path)).ok() } else { None };
        Ok(Seen { path, meta, target })
    }
}

/// The same object, unchanged: nothing about it is lost at rollback.
fn same(a: &Seen, b: &Seen) -> bool {
    let (x, y) = (&a.meta, &b.meta);
    x.kind == y.kind
        && x.mode == y.mode
        && x.uid == y.uid
        && x.gid == y.gid
        && (x.kind == FileKind::Dir
            || (x.size == y.size && x.mtime == y.mtime && x.mtime_nsec == y.mtime_nsec))
        && a.target == b.target
}

/// The record of a change: two trees tell no inode change time.
fn line<'a>(change: Change, seen: &'a Seen, renamed_to: Option<&'a [u8]>) -> ChangeRecord<'a> {
    ChangeRecord {
        path: Cow::Borrowed(&seen.path),
        change,
        kind: Some(seen.meta.kind),
        ctime: None,
        renamed_to: renamed_to.map(Cow::Borrowed),
        links: None,
    }
}

/// What the tasks found, merged once per directory.
#[derive(Default)]
struct Found {
    created: Vec<Seen>,
    removed: Vec<Seen>,
    modified: Vec<Seen>,
    /// Directories only in the live tree, not entered (yet): created
    /// subtrees, unless one turns out to be a renamed directory.
    subtrees: Vec<Vec<u8>>,
    errors: Vec<WalkError>,
}

impl Found {
    fn error(&mut self, path: &[u8], op: Op, errno: Errno) {
        self.errors.push(WalkError { path: path.to_vec(), op, errno });
    }
}

struct Ctx<'a> {
    live: Side<'a>,
    blank: Side<'a>,
    found: Mutex<Found>,
}

impl Ctx<'_> {
    fn merge(&self, mut local: Found) {
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        found.created.append(&mut local.created);
        found.removed.append(&mut local.removed);
        found.modified.append(&mut local.modified);
        found.subtrees.append(&mut local.subtrees);
        found.errors.append(&mut local.errors);
    }
}

/// Compares the live tree with the blank one, one task per directory on
/// `threads` workers, and adds every difference to `tree`.
pub fn compare(live: &Root, blank: &Root, tree: &mut ChangeTree, threads: usize) -> Comparison {
    let ctx =
        Ctx { live: Side { root: live }, blank: Side { root: blank }, found: Mutex::new(Found::default()) };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build().ok();
    let pool = pool.as_ref();
    {
        let ctx = &ctx;
        in_pool(pool, move |s| s.spawn(move |s| pair(s, ctx, b"/".to_vec())));
    }
    // Created directories are not entered: below them everything is created,
    // which the change tree learns as a whole (`mark_subtree`), except what
    // renames bring in. A created directory with the inode of a removed one
    // is a renamed directory: entered in full, as before. Other created
    // subtrees are searched only for the inodes of removed entries still
    // unaccounted for (a file moved into a new directory).
    let (subtrees, renamed) = {
        let mut found = ctx.found.lock().unwrap_or_else(|e| e.into_inner());
        let removed: HashSet<(u64, FileKind)> =
            found.removed.iter().map(|s| (s.meta.ino, s.meta.kind)).collect();
        let subtrees = std::mem::take(&mut found.subtrees);
        let is_renamed = |path: &Vec<u8>| {
            found.created.iter().any(|c| &c.path == path && removed.contains(&(c.meta.ino, c.meta.kind)))
        };
        let (renamed, subtrees): (Vec<_>, Vec<_>) = subtrees.into_iter().partition(is_renamed);
        (subtrees, renamed)
    };
    if !renamed.is_empty() {
        let (ctx, renamed) = (&ctx, &renamed);
        in_pool(pool, move |s| {
            for path in renamed {
                let path = path.clone();
                s.spawn(move |s| one_side(s, ctx, true, path));
            }
        });
    }
    let wanted: HashSet<(u64, FileKind)> = {
        let found = ctx.found.lock().unwrap_or_else(|e| e.into_inner());
        let seen: HashSet<(u64, FileKind)> =
            found.created.iter().map(|s| (s.meta.ino, s.meta.kind)).collect();
        found.removed.iter().map(|s| (s.meta.ino, s.meta.kind)).filter(|k| !seen.contains(k)).collect()
    };
    if !wanted.is_empty() && !subtrees.is_empty() {
        let (ctx, wanted, subtrees) = (&ctx, &wanted, &subtrees);
        in_pool(pool, move |s| {
            for path in subtrees {
                let path = path.clone();
                s.spawn(move |s| search(s, ctx, wanted, path));
            }
        });
    }
    let mut found = ctx.found.into_inner().unwrap_or_else(|e| e.into_inner());
    // Tasks finish in any order: sort, so that the result never depends on it.
    for list in [&mut found.created, &mut found.removed, &mut found.modified] {
        list.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    }
    found.errors.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    renames(found.created, found.removed, found.modified, tree);
    for path in subtrees {
        tree.mark_subtree(&path);
    }
    Comparison { errors: found.errors }
}

/// Runs `op` in `pool` (or rayon's global pool), waiting for what it spawns.
fn in_pool<'s>(pool: Option<&rayon::ThreadPool>, op: impl FnOnce(&rayon::Scope<'s>) + Send) {
    match pool {
        Some(pool) => pool.scope(op),
        None => rayon::scope(op),
    }
}

/// A directory present on both sides: compare its entries.
fn pair<'s>(scope: &rayon::Scope<'s>, ctx: &'s Ctx<'s>, path: Vec<u8>) {
    let mut local = Found::default();
    let (ld, bd) = match ctx.live.open(&path).and_then(|l| Ok((l, ctx.blank.open(&path)?))) {
        Ok(x) => x,
        Err(e) => {
            local.error(&path, Op::Open, e);
            return ctx.merge(local);
        }
    };
    let (ln, bn) = match list_names(ld.as_fd()).and_then(|l| Ok((l, list_names(bd.as_fd())?))) {
        Ok(x) => x,
        Err(e) => {
            local.error(&path, Op::Read, e);
            return ctx.merge(local);
        }
    };
    let (mut i, mut j) = (0, 0);
    while i < ln.len() || j < bn.len() {
        let order = match (ln.get(i), bn.get(j)) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        let name = if order == Ordering::Greater { &bn[j] } else { &ln[i] };
        let p = child(&path, name);
        let lseen = (order != Ordering::Greater).then(|| ctx.live.seen(&ld, p.clone(), name)).transpose();
        let bseen = (order != Ordering::Less).then(|| ctx.blank.seen(&bd, p.clone(), name)).transpose();
        if order != Ordering::Greater {
            i += 1;
        }
        if order != Ordering::Less {
            j += 1;
        }
        let (lseen, bseen) = match (lseen, bseen) {
            (Ok(l), Ok(b)) => (l, b.filter(|s| !s.meta.other_fs)),
            (Err(e), _) | (_, Err(e)) => {
                local.error(&p, Op::Stat, e);
                continue;
            }
        };
        match (lseen, bseen) {
            (Some(ls), Some(bs)) if ls.meta.kind == bs.meta.kind => {
                // Another filesystem mounted over a directory of the root: not its content.
                if ls.meta.kind == FileKind::Dir && ls.meta.other_fs {
                    continue;
                }
                if ls.meta.kind == FileKind::Dir {
                    let child_path = p.clone();
                    scope.spawn(move |s| pair(s, ctx, child_path));
                }
                if !same(&ls, &bs) {
                    local.modified.push(ls);
                }
            }
            (ls, bs) => {
                if let Some(bs) = bs {
                    if bs.meta.kind == FileKind::Dir {
                        let child_path = p.clone();
                        scope.spawn(move |s| one_side(s, ctx, false, child_path));
                    }
                    local.removed.push(bs);
                }
                if let Some(ls) = ls {
                    if ls.meta.kind == FileKind::Dir && !ls.meta.other_fs {
                        local.subtrees.push(p);
                    }
                    local.created.push(ls);
                }
            }
        }
    }
    ctx.merge(local);
}

/// A directory on one side only: everything below it is created (live) or
/// removed (blank).
fn one_side<'s>(scope: &rayon::Scope<'s>, ctx: &'s Ctx<'s>, live: bool, path: Vec<u8>) {
    let side = if live { &ctx.live } else { &ctx.blank };
    let mut local = Found::default();
    let dir = match side.open(&path) {
        Ok(d) => d,
        Err(e) => {
            local.error(&path, Op::Open, e);
            return ctx.merge(local);
        }
    };
    let names = match list_names(dir.as_fd()) {
        Ok(n) => n,
        Err(e) => {
            local.error(&path, Op::Read, e);
            return ctx.merge(local);
        }
    };
    for name in names {
        let p = child(&path, &name);
        match side.seen(&dir, p.clone(), &name) {
            Ok(s) => {
                if s.meta.kind == FileKind::Dir && !s.meta.other_fs {
                    scope.spawn(move |sc| one_side(sc, ctx, live, p));
                }
                if live {
                    local.created.push(s);
                } else {
                    local.removed.push(s);
                }
            }
            Err(e) => local.error(&p, Op::Stat, e),
        }
    }
    ctx.merge(local);
}

/// Looks through a created subtree for entries with a `wanted` inode
/// (removed entries moved in here); a directory found so is entered in full
/// ([`one_side`]), for what moved with it. Errors are left to the walk of
/// the subtree, which reports them.
fn search<'s>(
    scope: &rayon::Scope<'s>,
    ctx: &'s Ctx<'s>,
    wanted: &'s HashSet<(u64, FileKind)>,
    path: Vec<u8>,
) {
    let Ok(dir) = ctx.live.open(&path) else { return };
    let Ok(names) = list_names(dir.as_fd()) else { return };
    let mut local = Found::default();
    for name in names {
        let p = child(&path, &name);
        let Ok(s) = ctx.live.seen(&dir, p.clone(), &name) else { continue };
        let is_dir = s.meta.kind == FileKind::Dir && !s.meta.other_fs;
        if wanted.contains(&(s.meta.ino, s.meta.kind)) {
            if is_dir {
                scope.spawn(move |sc| one_side(sc, ctx, true, p));
            }
            local.created.push(s);
        } else if is_dir {
            scope.spawn(move |sc| search(sc, ctx, wanted, p));
        }
    }
    ctx.merge(local);
}

/// Pairs created and removed paths by inode into renames, folds what is
/// unchanged below a renamed directory, and feeds the changes to `tree`.
fn renames(created: Vec<Seen>, removed: Vec<Seen>, modified: Vec<Seen>, tree: &mut ChangeTree) {
    let by_ino: HashMap<(u64, FileKind), usize> =
        removed.iter().enumerate().map(|(i, s)| ((s.meta.ino, s.meta.kind), i)).collect();
    let mut renamed_from: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut gone = vec![false; removed.len()];
    for s in &created {
        if let Some(&i) = by_ino.get(&(s.meta.ino, s.meta.kind)) {
            renamed_from.insert(s.path.clone(), i);
            gone[i] = true;
        }
    }
    // Renamed directories, new path → old path, to find what moved with them.
    let dirs: Vec<(Vec<u8>, Vec<u8>)> = created
        .iter()
        .filter(|s| s.meta.kind == FileKind::Dir)
        .filter_map(|s| renamed_from.get(&s.path).map(|&i| (s.path.clone(), removed[i].path.clone())))
        .collect();
    // The old path a path would have had if only its renamed ancestor moved.
    let moved_with = |path: &[u8]| -> Option<Vec<u8>> {
        dirs.iter()
            .filter(|(new, _)| path.starts_with(new) && path.get(new.len()) == Some(&b'/'))
            .max_by_key(|(new, _)| new.len())
            .map(|(new, old)| [old.as_slice(), &path[new.len()..]].concat())
    };
    for s in &created {
        match renamed_from.get(&s.path) {
            Some(&i) => {
                let old = &removed[i];
                if moved_with(&s.path).as_deref() == Some(old.path.as_slice()) {
                    // Carried along by its directory's rename.
                    if !same(s, old) {
                        tree.add(line(Change::Modified, s, None));
                    }
                } else {
                    tree.add(line(Change::Renamed, old, Some(&s.path)));
                    if !same(s, old) {
                        tree.add(line(Change::Modified, s, None));
                    }
                }
            }
            None => tree.add(line(Change::Created, s, None)),
        }
    }
    for (i, s) in removed.iter().enumerate() {
        if !gone[i] {
            tree.add(line(Change::Removed, s, None));
        }
    }
    for s in &modified {
        tree.add(line(Change::Modified, s, None));
    }
}
