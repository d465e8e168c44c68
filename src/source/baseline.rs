//! Comparison with a blank tree: a read-only btrfs snapshot of the blank
//! root, `/.zfs/snapshot/blank`, a mounted pristine image.
//!
//! Both trees are walked once each, side by side, one task per directory on
//! a work-stealing pool, one filesystem each, never following a symlink:
//! names in both are compared (type, size, mode, owner, mtime, symlink
//! target), names only in the live tree are created, names only in the
//! blank tree removed, with whole subtrees below them. Renames are
//! recognised afterwards by inode number, which btrfs and ZFS snapshots
//! preserve: a created path with the inode of a removed one is that path
//! renamed. A renamed directory is one change, like `zfs diff` reports it:
//! what is unchanged below it comes back under its old name and is not
//! listed. The result is the same kind of change list a `zfs diff` gives,
//! as neutral [`ChangeRecord`]s (with no inode change time: two trees do not
//! tell one), fed into the same [`ChangeTree`].
//!
//! No path is stored whole: a directory entered is an id in `Dirs` (its
//! parent's id and its own name), a change found is that id and a name,
//! and a task opens its directory from its parent's
//! open descriptor (kept within [`fd_budget`]; past it, from the root by
//! path). Whole paths exist only while a record is handed to the tree or an
//! error is written.
//!
//! One difference keeps memory flat: a directory only in the live tree is
//! not entered here. Everything in it is created, so the change tree only
//! marks it ([`ChangeTree::mark_subtree`]) and its walk lists it live. It is
//! entered in full only when it is a renamed directory, and searched (not
//! stored) only for the inodes of removed entries still unaccounted for.
//!
//! Memory is linear in what changed, not in the depth alone: every
//! directory entered keeps its id, and every change its node in the change
//! tree (some 370 bytes an entry: a million new files in a directory the
//! blank tree has cost 373 MB).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{self, AtomicUsize};
use std::sync::{Arc, Mutex};

use rustix::io::Errno;

use super::tree::ChangeTree;
use super::walk::fd_budget;
use super::ChangeRecord;
use crate::sys::meta::{Change, FileKind, Meta};
use crate::sys::root::open_dir_at;
use crate::sys::root::{list_names, Op, Root, WalkError};

/// The root directory's id in [`Dirs`].
const TOP: u32 = 0;

/// Every directory entered, on either side, as its parent's id and its
/// name: a path is an id here, never a copy.
struct Dirs {
    dirs: Vec<(u32, Box<[u8]>)>,
}

impl Dirs {
    fn new() -> Dirs {
        Dirs { dirs: vec![(TOP, Box::default())] }
    }

    fn add(&mut self, parent: u32, name: &[u8]) -> u32 {
        let id = u32::try_from(self.dirs.len()).unwrap_or(u32::MAX);
        self.dirs.push((parent, name.into()));
        id
    }

    fn parent(&self, id: u32) -> u32 {
        self.dirs[id as usize].0
    }

    fn name(&self, id: u32) -> &[u8] {
        &self.dirs[id as usize].1
    }

    /// The path of `name` in the directory `dir` (of `dir` itself when
    /// `name` is empty), written into `out`.
    fn path_into(&self, dir: u32, name: &[u8], out: &mut Vec<u8>) {
        let mut len = if name.is_empty() { 0 } else { name.len() + 1 };
        let mut at = dir;
        while at != TOP {
            len += self.name(at).len() + 1;
            at = self.parent(at);
        }
        out.clear();
        if len == 0 {
            out.push(b'/');
            return;
        }
        out.resize(len, b'/');
        // Filled from the end, each name after its `/`.
        let mut end = len;
        let mut put = |bytes: &[u8]| {
            out[end - bytes.len()..end].copy_from_slice(bytes);
            end -= bytes.len() + 1;
        };
        if !name.is_empty() {
            put(name);
        }
        let mut at = dir;
        while at != TOP {
            put(self.name(at));
            at = self.parent(at);
        }
    }

    fn path(&self, dir: u32, name: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.path_into(dir, name, &mut out);
        out
    }

    /// Each directory's place in a fixed order (every directory before its
    /// subdirectories, siblings by name): what is found is sorted by it, so
    /// that the result never depends on the order tasks ran in.
    fn ranks(&self) -> Vec<u32> {
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); self.dirs.len()];
        for (id, (parent, _)) in self.dirs.iter().enumerate().skip(1) {
            children[*parent as usize].push(id as u32);
        }
        let mut rank = vec![0u32; self.dirs.len()];
        let mut next = 0u32;
        let mut stack = vec![TOP];
        while let Some(id) = stack.pop() {
            rank[id as usize] = next;
            next += 1;
            let kids = &mut children[id as usize];
            // Popped in name order.
            kids.sort_unstable_by(|a, b| self.name(*b).cmp(self.name(*a)));
            stack.append(kids);
        }
        rank
    }
}

/// One side of a change: the directory it is in, its name there, and what
/// it was.
#[derive(Debug, Clone)]
struct Seen {
    dir: u32,
    name: Box<[u8]>,
    /// Its own id in [`Dirs`], once entered as a directory.
    own: Option<u32>,
    /// A directory only in the live tree, not entered (yet).
    subtree: bool,
    meta: Meta,
    target: Option<Vec<u8>>,
}

/// What differs; errors on single entries are kept and the rest goes on.
#[derive(Debug, Default)]
pub struct Comparison {
    pub errors: Vec<WalkError>,
}

/// What the blank tree is to the live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blank {
    /// A snapshot of it (ZFS `.zfs/snapshot`, a btrfs snapshot the root was
    /// made from): a name whose inode differs names a new object.
    Snapshot,
    /// Any blank tree (`--baseline`): names are compared by what they hold.
    Tree,
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
fn record<'a>(
    change: Change,
    path: &'a [u8],
    kind: FileKind,
    renamed_to: Option<&'a [u8]>,
) -> ChangeRecord<'a> {
    ChangeRecord {
        path: Cow::Borrowed(path),
        change,
        kind: Some(kind),
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
    /// Where an entry could not be read: a directory and a name in it.
    errors: Vec<(u32, Box<[u8]>, Op, Errno)>,
}

impl Found {
    fn error(&mut self, dir: u32, name: &[u8], op: Op, errno: Errno) {
        self.errors.push((dir, name.into(), op, errno));
    }
}

/// The open directories of a task, shared with the tasks of its
/// subdirectories (which open themselves from them) when the descriptor
/// budget allows: then counted against it while alive.
struct Held<'a> {
    live: Option<OwnedFd>,
    blank: Option<OwnedFd>,
    counter: Option<&'a AtomicUsize>,
}

impl Held<'_> {
    fn fds(&self) -> usize {
        usize::from(self.live.is_some()) + usize::from(self.blank.is_some())
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(counter) = self.counter {
            counter.fetch_sub(self.fds(), atomic::Ordering::Relaxed);
        }
    }
}

/// A directory a task is to compare, list or search.
struct Task<'a> {
    id: u32,
    /// Its name (empty for the root).
    name: Box<[u8]>,
    /// Its parent's open directories, when they were kept.
    parent: Option<Arc<Held<'a>>>,
}

struct Ctx<'a> {
    live: &'a Root,
    blank: &'a Root,
    /// The blank tree is a snapshot of the live one: an inode number names
    /// the same object on both sides.
    snapshot: bool,
    dirs: Mutex<Dirs>,
    found: Mutex<Found>,
    retained: AtomicUsize,
    budget: usize,
}

impl<'a> Ctx<'a> {
    fn merge(&self, mut local: Found) {
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        found.created.append(&mut local.created);
        found.removed.append(&mut local.removed);
        found.modified.append(&mut local.modified);
        found.errors.append(&mut local.errors);
    }

    fn dirs(&self) -> std::sync::MutexGuard<'_, Dirs> {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the task's directory on one side: from its parent's
    /// descriptor when kept, else from the root by path.
    fn open(&self, live: bool, task: &Task<'_>) -> Result<OwnedFd, Errno> {
        let parent = task.parent.as_ref().and_then(|h| if live { h.live.as_ref() } else { h.blank.as_ref() });
        match parent {
            Some(fd) if task.id != TOP => open_dir_at(fd.as_fd(), &task.name),
            _ => {
                let path = self.dirs().path(task.id, b"");
                (if live { self.live } else { self.blank }).open_dir(&path)
            }
        }
    }

    /// The task's open directories, shared with its subdirectories (`true`)
    /// while the budget allows; past it, they reopen themselves by path.
    fn hold(&'a self, live: Option<OwnedFd>, blank: Option<OwnedFd>) -> (Arc<Held<'a>>, bool) {
        let mut held = Held { live, blank, counter: None };
        let n = held.fds();
        let shared = self.retained.fetch_add(n, atomic::Ordering::Relaxed) < self.budget;
        if shared {
            held.counter = Some(&self.retained);
        } else {
            self.retained.fetch_sub(n, atomic::Ordering::Relaxed);
        }
        (Arc::new(held), shared)
    }

    /// Registers the subdirectory `name` of `dir`.
    fn enter(&self, dir: u32, name: &[u8]) -> u32 {
        self.dirs().add(dir, name)
    }
}

fn seen(root: &Root, fd: BorrowedFd<'_>, dir: u32, name: &[u8]) -> Result<Seen, Errno> {
    let meta = root.stat_at(fd, name)?;
    let target = match meta.kind {
        FileKind::Symlink => rustix::fs::readlinkat(fd, name, Vec::new()).ok().map(|t| t.into_bytes()),
        _ => None,
    };
    Ok(Seen { dir, name: name.into(), own: None, subtree: false, meta, target })
}

/// Compares the live tree with the blank one, one task per directory on
/// the walk's pool ([`pool`](super::walk::pool)`(threads)`: enough requests
/// in flight for a cold tree), and adds every difference to `tree`.
pub fn compare(
    live: &Root,
    blank: &Root,
    blank_is: Blank,
    tree: &mut ChangeTree,
    threads: usize,
) -> Comparison {
    let ctx = Ctx {
        live,
        blank,
        snapshot: blank_is == Blank::Snapshot,
        dirs: Mutex::new(Dirs::new()),
        found: Mutex::new(Found::default()),
        retained: AtomicUsize::new(0),
        budget: fd_budget(),
    };
    let pool = super::walk::pool(threads).ok();
    let pool = pool.as_ref();
    {
        let ctx = &ctx;
        let top = Task { id: TOP, name: Box::default(), parent: None };
        in_pool(pool, move |s| s.spawn(move |s| pair(s, ctx, top)));
    }
    // Created directories are not entered: below them everything is created,
    // which the change tree learns as a whole (`mark_subtree`), except what
    // renames bring in. A created directory with the inode of a removed one
    // is a renamed directory: entered in full. Other created subtrees are
    // searched only for the inodes of removed entries still unaccounted
    // for (a file moved into a new directory).
    let mut subtrees = Vec::new();
    let mut renamed = Vec::new();
    {
        let mut found = ctx.found.lock().unwrap_or_else(|e| e.into_inner());
        let removed: HashSet<(u64, FileKind)> =
            found.removed.iter().map(|s| (s.meta.ino, s.meta.kind)).collect();
        let mut dirs = ctx.dirs();
        for s in found.created.iter_mut().filter(|s| s.subtree) {
            let id = dirs.add(s.dir, &s.name);
            let task = (id, s.name.clone());
            if removed.contains(&(s.meta.ino, s.meta.kind)) {
                s.own = Some(id);
                renamed.push(task);
            } else {
                subtrees.push(task);
            }
        }
    }
    if !renamed.is_empty() {
        let ctx = &ctx;
        in_pool(pool, move |s| {
            for (id, name) in renamed {
                s.spawn(move |s| one_side(s, ctx, true, Task { id, name, parent: None }));
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
        let (ctx, wanted) = (&ctx, &wanted);
        let subtrees = &subtrees;
        in_pool(pool, move |s| {
            for (id, name) in subtrees {
                let task = Task { id: *id, name: name.clone(), parent: None };
                s.spawn(move |s| search(s, ctx, wanted, task));
            }
        });
    }
    let dirs = ctx.dirs.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut found = ctx.found.into_inner().unwrap_or_else(|e| e.into_inner());
    // Tasks finish in any order: sort, so that the result never depends on it.
    let rank = dirs.ranks();
    for list in [&mut found.created, &mut found.removed, &mut found.modified] {
        list.sort_by(|a, b| (rank[a.dir as usize], &a.name).cmp(&(rank[b.dir as usize], &b.name)));
    }
    let mut errors: Vec<WalkError> = found
        .errors
        .iter()
        .map(|(dir, name, op, errno)| WalkError { path: dirs.path(*dir, name), op: *op, errno: *errno })
        .collect();
    errors.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    renames(&dirs, found.created, found.removed, found.modified, tree);
    let mut path = Vec::new();
    for (id, _) in subtrees {
        dirs.path_into(id, b"", &mut path);
        tree.mark_subtree(&path);
    }
    Comparison { errors }
}

/// Runs `op` in `pool` (or rayon's global pool), waiting for what it spawns.
fn in_pool<'s>(pool: Option<&rayon::ThreadPool>, op: impl FnOnce(&rayon::Scope<'s>) + Send) {
    match pool {
        Some(pool) => pool.scope(op),
        None => rayon::scope(op),
    }
}

/// A directory present on both sides: compare its entries.
fn pair<'s>(scope: &rayon::Scope<'s>, ctx: &'s Ctx<'s>, task: Task<'s>) {
    let mut local = Found::default();
    let id = task.id;
    let opened = ctx.open(true, &task).and_then(|l| Ok((l, ctx.open(false, &task)?)));
    drop(task);
    let (ld, bd) = match opened {
        Ok(x) => x,
        Err(e) => {
            local.error(id, b"", Op::Open, e);
            return ctx.merge(local);
        }
    };
    let (ln, bn) = match list_names(ld.as_fd()).and_then(|l| Ok((l, list_names(bd.as_fd())?))) {
        Ok(x) => x,
        Err(e) => {
            local.error(id, b"", Op::Read, e);
            return ctx.merge(local);
        }
    };
    let (here, shared) = ctx.hold(Some(ld), Some(bd));
    let (Some(lfd), Some(bfd)) = (here.live.as_ref(), here.blank.as_ref()) else { return ctx.merge(local) };
    let (lfd, bfd) = (lfd.as_fd(), bfd.as_fd());
    let child = |name: &[u8]| {
        let id = ctx.enter(id, name);
        (id, Task { id, name: name.into(), parent: shared.then(|| Arc::clone(&here)) })
    };
    let (mut i, mut j) = (0, 0);
    while i < ln.len() || j < bn.len() {
        let order = match (ln.get(i), bn.get(j)) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        let name = if order == Ordering::Greater { &bn[j] } else { &ln[i] };
        if order != Ordering::Greater {
            i += 1;
        }
        if order != Ordering::Less {
            j += 1;
        }
        let lseen = (order != Ordering::Greater).then(|| seen(ctx.live, lfd, id, name)).transpose();
        let bseen = (order != Ordering::Less).then(|| seen(ctx.blank, bfd, id, name)).transpose();
        let (lseen, bseen) = match (lseen, bseen) {
            (Ok(l), Ok(b)) => (l, b.filter(|s| !s.meta.other_fs)),
            (Err(e), _) | (_, Err(e)) => {
                local.error(id, name, Op::Stat, e);
                continue;
            }
        };
        match (lseen, bseen) {
            // The same object, or (a new inode: `ln -sfn`, a save by rename) a
            // new one under the old name: removed and created, as zfs diff says.
            (Some(mut ls), Some(bs))
                if ls.meta.kind == bs.meta.kind
                    && (!ctx.snapshot || ls.meta.kind == FileKind::Dir || ls.meta.ino == bs.meta.ino) =>
            {
                // Another filesystem mounted over a directory of the root: not its content.
                if ls.meta.kind == FileKind::Dir && ls.meta.other_fs {
                    continue;
                }
                if ls.meta.kind == FileKind::Dir {
                    let (own, task) = child(name);
                    ls.own = Some(own);
                    scope.spawn(move |s| pair(s, ctx, task));
                }
                if !same(&ls, &bs) {
                    local.modified.push(ls);
                }
            }
            (ls, bs) => {
                if let Some(mut bs) = bs {
                    if bs.meta.kind == FileKind::Dir {
                        let (own, task) = child(name);
                        bs.own = Some(own);
                        scope.spawn(move |s| one_side(s, ctx, false, task));
                    }
                    local.removed.push(bs);
                }
                if let Some(mut ls) = ls {
                    ls.subtree = ls.meta.kind == FileKind::Dir && !ls.meta.other_fs;
                    local.created.push(ls);
                }
            }
        }
    }
    ctx.merge(local);
}

/// A directory on one side only: everything below it is created (live) or
/// removed (blank).
fn one_side<'s>(scope: &rayon::Scope<'s>, ctx: &'s Ctx<'s>, live: bool, task: Task<'s>) {
    let (root, id) = (if live { ctx.live } else { ctx.blank }, task.id);
    let mut local = Found::default();
    let opened = ctx.open(live, &task);
    drop(task);
    let dir = match opened {
        Ok(d) => d,
        Err(e) => {
            local.error(id, b"", Op::Open, e);
            return ctx.merge(local);
        }
    };
    let names = match list_names(dir.as_fd()) {
        Ok(n) => n,
        Err(e) => {
            local.error(id, b"", Op::Read, e);
            return ctx.merge(local);
        }
    };
    let (here, shared) = if live { ctx.hold(Some(dir), None) } else { ctx.hold(None, Some(dir)) };
    let Some(fd) = (if live { here.live.as_ref() } else { here.blank.as_ref() }) else {
        return ctx.merge(local);
    };
    for name in names {
        match seen(root, fd.as_fd(), id, &name) {
            Ok(mut s) => {
                if s.meta.kind == FileKind::Dir && !s.meta.other_fs {
                    let own = ctx.enter(id, &name);
                    s.own = Some(own);
                    let task = Task { id: own, name: name.into(), parent: shared.then(|| Arc::clone(&here)) };
                    scope.spawn(move |sc| one_side(sc, ctx, live, task));
                }
                if live {
                    local.created.push(s);
                } else {
                    local.removed.push(s);
                }
            }
            Err(e) => local.error(id, &name, Op::Stat, e),
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
    task: Task<'s>,
) {
    let id = task.id;
    let opened = ctx.open(true, &task);
    drop(task);
    let Ok(dir) = opened else { return };
    let Ok(names) = list_names(dir.as_fd()) else { return };
    let (here, shared) = ctx.hold(Some(dir), None);
    let Some(fd) = here.live.as_ref() else { return };
    let mut local = Found::default();
    for name in names {
        let Ok(mut s) = seen(ctx.live, fd.as_fd(), id, &name) else { continue };
        let is_dir = s.meta.kind == FileKind::Dir && !s.meta.other_fs;
        let found = wanted.contains(&(s.meta.ino, s.meta.kind));
        if is_dir {
            let own = ctx.enter(id, &name);
            let task = Task { id: own, name: name.into(), parent: shared.then(|| Arc::clone(&here)) };
            if found {
                s.own = Some(own);
                scope.spawn(move |sc| one_side(sc, ctx, true, task));
            } else {
                scope.spawn(move |sc| search(sc, ctx, wanted, task));
            }
        }
        if found {
            local.created.push(s);
        }
    }
    ctx.merge(local);
}

/// Whether the created `new` is the removed `old` carried along by the
/// rename of its nearest renamed ancestor (`renamed`: new id → old id):
/// the same names from each up to that directory and its old one.
fn carried(dirs: &Dirs, renamed: &HashMap<u32, u32>, new: &Seen, old: &Seen) -> bool {
    if new.name != old.name {
        return false;
    }
    let (mut x, mut y) = (new.dir, old.dir);
    loop {
        if let Some(&o) = renamed.get(&x) {
            return y == o;
        }
        if x == TOP || y == TOP || dirs.name(x) != dirs.name(y) {
            return false;
        }
        (x, y) = (dirs.parent(x), dirs.parent(y));
    }
}

/// Pairs created and removed entries by inode into renames, folds what is
/// unchanged below a renamed directory, and feeds the changes to `tree`.
fn renames(dirs: &Dirs, created: Vec<Seen>, removed: Vec<Seen>, modified: Vec<Seen>, tree: &mut ChangeTree) {
    let by_ino: HashMap<(u64, FileKind), usize> =
        removed.iter().enumerate().map(|(i, s)| ((s.meta.ino, s.meta.kind), i)).collect();
    let partner: Vec<Option<usize>> =
        created.iter().map(|s| by_ino.get(&(s.meta.ino, s.meta.kind)).copied()).collect();
    let mut gone = vec![false; removed.len()];
    for &i in partner.iter().flatten() {
        gone[i] = true;
    }
    // Renamed directories, new id → old id, to find what moved with them.
    let renamed: HashMap<u32, u32> = created
        .iter()
        .zip(&partner)
        .filter(|(s, _)| s.meta.kind == FileKind::Dir)
        .filter_map(|(s, i)| Some((s.own?, removed[(*i)?].own?)))
        .collect();
    let (mut path, mut from) = (Vec::new(), Vec::new());
    for (s, i) in created.iter().zip(&partner) {
        dirs.path_into(s.dir, &s.name, &mut path);
        let Some(old) = i.map(|i| &removed[i]) else {
            tree.add(record(Change::Created, &path, s.meta.kind, None));
            continue;
        };
        // Unless carried along by its directory's rename, a rename of its own.
        if !carried(dirs, &renamed, s, old) {
            dirs.path_into(old.dir, &old.name, &mut from);
            tree.add(record(Change::Renamed, &from, old.meta.kind, Some(&path)));
        }
        if !same(s, old) {
            tree.add(record(Change::Modified, &path, s.meta.kind, None));
        }
    }
    for (s, _) in removed.iter().zip(&gone).filter(|(_, gone)| !**gone) {
        dirs.path_into(s.dir, &s.name, &mut path);
        tree.add(record(Change::Removed, &path, s.meta.kind, None));
    }
    for s in &modified {
        dirs.path_into(s.dir, &s.name, &mut path);
        tree.add(record(Change::Modified, &path, s.meta.kind, None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_from_ids_and_ranks_order_them() {
        let mut d = Dirs::new();
        let b = d.add(TOP, b"b");
        let a = d.add(TOP, b"a");
        let ab = d.add(a, b"x y");
        assert_eq!(d.path(TOP, b""), b"/");
        assert_eq!(d.path(TOP, b"f"), b"/f");
        assert_eq!(d.path(ab, b""), b"/a/x y");
        assert_eq!(d.path(ab, b"\n"), b"/a/x y/\n");
        let rank = d.ranks();
        // A directory before what is below it, siblings by name.
        assert!(rank[TOP as usize] < rank[a as usize]);
        assert!(rank[a as usize] < rank[ab as usize]);
        assert!(rank[ab as usize] < rank[b as usize]);
    }
}
