//! The parallel one-filesystem walk.
//!
//! # Design
//!
//! One rayon task per directory. A task opens its directory relative to its
//! parent's open descriptor (`openat2` with `RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_XDEV`, so neither a symlink nor a mount point can ever be
//! entered), reads it with `getdents64` into a reusable buffer, and for each
//! entry asks the [`Visitor`] whether the path alone already decides it
//! before spending a `statx` on it. Subdirectories the
//! visitor wants entered become new tasks on the same work-stealing pool
//! (rayon's deques are LIFO for the owner, so the walk stays depth-first and
//! memory stays low).
//!
//! Results are folded bottom-up: every directory is a `Node` with a
//! counter of unfinished children; when the last one finishes, the visitor's
//! [`Visitor::finish`] runs for it and the count of its parent drops. No
//! recursion is involved anywhere, so a 100,000-deep tree needs no stack.
//!
//! A cold walk (the first after boot, a freshly mounted image) waits on the
//! disk, not the CPU: its speed is how many requests are in flight. So the
//! pool has [`workers`]`(threads)` threads, at least [`IO_DEPTH`], whatever
//! `--threads` says: a worker waiting for a directory block or an inode
//! uses no CPU, and on a cached tree the workers share the cores like any
//! runnable threads (`bench/cold.py` measures cold, `bench/compare.py`
//! warm). Measured cold on a 300k-entry ext4 image, side by side: a depth
//! of 16 took 3.23 s, 32 took 3.09 s and 64 took 3.61 s (medians of 5),
//! within the spread of such runs; 16 stays, since every thread reserves
//! address space (its stack, a malloc arena) and 32 no longer fit an audit
//! run under `prlimit --as=1G`. Where the system refuses that many threads
//! at all, the pool falls back to `--threads` workers ([`pool`]).
//! Also tried, and no better: stat'ing a directory's entries in inode order
//! instead of `getdents64` order, and fanning one directory's stats out to
//! helper threads (ext4 reads a directory's inodes ahead in one request,
//! so the parallelism that counts is across directories).
//!
//! Descriptors are bounded: a directory keeps its descriptor open for its
//! children only while fewer than [`fd_budget`] are retained; otherwise its
//! children reopen themselves from the root, by path, in chunks shorter than
//! `PATH_MAX` — which is also how paths longer than `PATH_MAX` are reached.
//!
//! The walk never writes, never follows a symlink and never crosses a mount
//! point: an entry whose device or mount id differs from the root's is
//! reported with [`Meta::other_fs`] set and never opened.
//!
//! [`Walk`] is this walk as a [`Source`] (report `source`: `walk`), with
//! progress on stderr when asked for.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rustix::fs::{AtFlags, RawDir};
use rustix::io::Errno;

use super::tree::ChangeTree;
use super::{Opened, Source, SourceError};
use crate::progress::Progress;
use crate::sys::meta::{FileKind, Meta};
use crate::sys::root::{open_dir_at, Op, Root, WalkError, STATX_MASK};

/// One directory entry, as the visitor sees it before any metadata.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    /// The path as the audited system sees it: `/var/lib/x`.
    pub path: &'a [u8],
    /// The last component.
    pub name: &'a [u8],
    /// The type from `d_type`, when the filesystem gives one.
    pub hint: Option<FileKind>,
}

/// What the walk calls back. All methods run on worker threads.
pub trait Visitor: Sync {
    /// Per-directory state, created by [`Visitor::enter`]; children see
    /// their parent's through `&`.
    type Dir: Send + Sync;
    /// What [`Visitor::plan`] decided about an entry, handed back with its
    /// metadata.
    type Plan;

    /// Decides on an entry from its path alone. `None`: already settled (an
    /// ignored subtree, a trusted claim): no stat, never entered.
    fn plan(&self, parent: &Self::Dir, entry: &EntryRef<'_>) -> Option<Self::Plan>;
    /// Every stat'ed entry that is not entered: non-directories, and
    /// directories on another filesystem (`meta.other_fs`).
    fn leaf(&self, parent: &Self::Dir, entry: &EntryRef<'_>, plan: Self::Plan, meta: &Meta);
    /// A directory on the walked filesystem: `Some` to descend into it.
    /// `None` means the visitor recorded it itself.
    fn enter(
        &self,
        parent: &Self::Dir,
        entry: &EntryRef<'_>,
        plan: Self::Plan,
        meta: &Meta,
    ) -> Option<Self::Dir>;
    /// The listing of `dir` is over (every entry handed to `plan`, `leaf`
    /// or `enter` on this thread since the listing began belongs to it);
    /// its subdirectories may still be running.
    fn listed(&self, dir: &Self::Dir);
    /// Every entry below `dir` has been visited and every subdirectory
    /// finished. Runs exactly once per entered directory, children first.
    fn finish(&self, dir: &Self::Dir, path: &[u8], parent: Option<&Self::Dir>);
    /// An entry could not be read; the walk goes on. `dir` is the directory
    /// the failed entry is in (or the failed directory itself).
    fn error(&self, dir: &Self::Dir, error: WalkError);
}

/// The walk as a [`Source`]: every entry of the live tree, on its own
/// filesystem (report `source`: `walk`).
pub struct Walk<'a> {
    live: &'a Opened,
    /// Why the walk was chosen, when `auto` chose it.
    notes: Vec<String>,
    /// `auto` saw a tmpfs (or was told to walk): see [`Source::ephemeral`].
    ephemeral: bool,
}

impl<'a> Walk<'a> {
    pub fn new(live: &'a Opened, notes: Vec<String>) -> Walk<'a> {
        Walk { live, notes, ephemeral: true }
    }

    /// A walk of a root that does not look erased at boot (`auto` on ext4,
    /// xfs, …): see [`Source::ephemeral`].
    pub fn not_ephemeral(mut self) -> Walk<'a> {
        self.ephemeral = false;
        self
    }
}

impl Source for Walk<'_> {
    fn name(&self) -> &'static str {
        "walk"
    }

    fn feed<V: Visitor>(
        &mut self,
        top: V::Dir,
        visitor: &V,
        threads: usize,
        progress: bool,
    ) -> Result<(), SourceError> {
        crate::progress::with_progress(progress, |progress| {
            walk(&self.live.root, top, visitor, threads, progress)
        })
        .map_err(SourceError::Threads)
    }

    fn notes(&self) -> &[String] {
        &self.notes
    }

    fn changes(&self) -> Option<&ChangeTree> {
        None
    }

    fn ephemeral(&self) -> bool {
        self.ephemeral
    }
}

/// How many directory descriptors the walk keeps open for children at most:
/// a quarter of the soft `RLIMIT_NOFILE`, between 16 and 1024.
pub fn fd_budget() -> usize {
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let soft = lim.current.unwrap_or(1024);
    usize::try_from(soft / 4).unwrap_or(1024).clamp(16, 1024)
}

/// How many directory reads and stats the walk keeps waiting on the disk at
/// once, at the least, whatever `--threads` says (see the module doc).
pub const IO_DEPTH: usize = 16;

/// The walk's pool size for `threads` CPU workers: enough workers for
/// [`IO_DEPTH`] requests in flight.
pub fn workers(threads: usize) -> usize {
    threads.max(IO_DEPTH)
}

/// The pool every walk of darlings runs on (the walk, the comparison with a
/// blank tree, the search under mount points): [`workers`]`(threads)`
/// threads, or `threads` where the system refuses that many (a tight
/// `RLIMIT_NPROC` or address-space limit).
pub fn pool(threads: usize) -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    let build = |n: usize| {
        rayon::ThreadPoolBuilder::new().num_threads(n).thread_name(|i| format!("darlings-walk-{i}")).build()
    };
    build(workers(threads)).or_else(|_| build(threads.max(1)))
}

/// Walks the tree below `root`, calling `visitor` for every entry, with
/// `threads` workers. `top` is the state of the root directory itself.
pub fn walk<V: Visitor>(
    root: &Root,
    top: V::Dir,
    visitor: &V,
    threads: usize,
    progress: Option<&Progress>,
) -> Result<(), rayon::ThreadPoolBuildError> {
    let pool = pool(threads)?;
    let ctx =
        Ctx { root, visitor, progress, retained: AtomicUsize::new(0), budget: fd_budget(), keep_top: false };
    let node = Arc::new(Node { parent: Parent(None), pending: AtomicUsize::new(1), dir: top });
    pool.scope(|s| {
        let ctx = &ctx;
        s.spawn(move |s| process(ctx, s, node, None, b"/".to_vec()));
    });
    Ok(())
}

/// Walks below `path`, a directory of `root` whose state is `top`, on
/// `pool`, like [`walk`]; everything below is finished, `top` itself is
/// not: it is handed back for the caller to finish (a change tree's walk
/// hands created subtrees over this way). `None` only if the walk lost it.
pub fn walk_below<V: Visitor>(
    root: &Root,
    pool: &rayon::ThreadPool,
    path: Vec<u8>,
    top: V::Dir,
    visitor: &V,
) -> Option<V::Dir> {
    let ctx = Ctx {
        root,
        visitor,
        progress: None,
        retained: AtomicUsize::new(0),
        budget: fd_budget(),
        keep_top: true,
    };
    let node = Arc::new(Node { parent: Parent(None), pending: AtomicUsize::new(1), dir: top });
    let kept = Arc::clone(&node);
    pool.scope(|s| {
        let ctx = &ctx;
        s.spawn(move |s| process(ctx, s, node, None, path));
    });
    // Every task is over: the only reference left is ours.
    Arc::try_unwrap(kept).ok().map(|Node { dir, .. }| dir)
}

struct Ctx<'a, V: Visitor> {
    root: &'a Root,
    visitor: &'a V,
    progress: Option<&'a Progress>,
    retained: AtomicUsize,
    budget: usize,
    /// The top directory is the caller's to finish ([`walk_below`]).
    keep_top: bool,
}

/// A directory in progress: alive while it or any descendant is unfinished.
/// Its path travels with the work instead (a node deep in a chain must not
/// hold a copy of its whole path).
struct Node<D> {
    parent: Parent<D>,
    /// Unfinished children, plus one for the directory's own listing.
    pending: AtomicUsize,
    dir: D,
}

/// The parent of a [`Node`]; dropping it frees a chain of ancestors
/// iteratively (the default recursive drop would overflow the stack on a
/// very deep tree).
struct Parent<D>(Option<Arc<Node<D>>>);

impl<D> Drop for Parent<D> {
    fn drop(&mut self) {
        let mut next = self.0.take();
        while let Some(parent) = next {
            next = match Arc::try_unwrap(parent) {
                Ok(mut node) => node.parent.0.take(),
                Err(_) => None,
            };
        }
    }
}

/// A directory descriptor shared with the children that still have to open
/// themselves from it; counted against the budget while alive.
struct RetainedFd<'a> {
    fd: OwnedFd,
    counter: &'a AtomicUsize,
}

impl Drop for RetainedFd<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::Relaxed);
    }
}

thread_local! {
    static DIRENT_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(64 * 1024));
}

/// Walks one directory, then, in the same task, the last subdirectory it
/// found when its path is long (see [`HOLD_BELOW`]; the others are spawned
/// as they are found). That one takes over the path buffer, so a chain of
/// directories (`d/d/d/…`, which any user can make) costs each level its
/// own name, not its whole path: the walk is linear in depth, not
/// quadratic.
fn process<'s, V: Visitor>(
    ctx: &'s Ctx<'s, V>,
    scope: &rayon::Scope<'s>,
    mut node: Arc<Node<V::Dir>>,
    mut parent_fd: Option<Arc<RetainedFd<'s>>>,
    mut path: Vec<u8>,
) {
    loop {
        let opened = match &parent_fd {
            Some(parent) => open_dir_at(parent.fd.as_fd(), last_component(&path)),
            None => open_from_root(ctx.root.fd(), &path),
        };
        drop(parent_fd.take());
        let fd = match opened {
            Ok(fd) => fd,
            Err(errno) => {
                ctx.visitor.error(&node.dir, WalkError { path: path.clone(), op: Op::Open, errno });
                complete(ctx, node, path);
                return;
            }
        };
        if let Some(p) = ctx.progress {
            p.directory(&path);
        }

        // Share the descriptor with the children while the budget allows;
        // otherwise they reopen themselves by path.
        let shared = if ctx.retained.fetch_add(1, Ordering::Relaxed) < ctx.budget {
            Ok(Arc::new(RetainedFd { fd, counter: &ctx.retained }))
        } else {
            ctx.retained.fetch_sub(1, Ordering::Relaxed);
            Err(fd)
        };
        let listing = match &shared {
            Ok(s) => list(ctx, scope, &node, s.fd.as_fd(), &mut path, Some(s)),
            Err(fd) => list(ctx, scope, &node, fd.as_fd(), &mut path, None),
        };
        let next_fd = shared.as_ref().ok().cloned();
        drop(shared);
        ctx.visitor.listed(&node.dir);
        if let Some(p) = ctx.progress {
            p.add(listing.entries, listing.bytes);
        }
        let Some((child, name)) = listing.held else {
            complete(ctx, node, path);
            return;
        };
        // The listing is done; the held child still counts, so the
        // directory cannot finish here (it finishes when its last child does).
        node.pending.fetch_sub(1, Ordering::AcqRel);
        if path != b"/" {
            path.push(b'/');
        }
        path.extend_from_slice(&name);
        node = child;
        parent_fd = next_fd;
    }
}

/// The last component of a path (`/` for the root).
fn last_component(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) if i + 1 < path.len() => &path[i + 1..],
        _ => path,
    }
}

/// From how long a path on a directory walks its last subdirectory itself
/// (see [`process`]): shorter paths cost less to copy than a later start
/// costs a cold walk; a chain of directories passes it within a few
/// thousand levels and is linear from there.
const HOLD_BELOW: usize = 4096;

/// A subdirectory to enter, with its name.
type Held<D> = (Arc<Node<D>>, Vec<u8>);

/// What reading one directory found.
struct Listing<D> {
    /// Entries and bytes, for progress.
    entries: u64,
    bytes: u64,
    /// The last subdirectory to enter, not spawned: the caller walks it next.
    held: Option<Held<D>>,
}

/// Reads one directory, handing every entry to the visitor and spawning a
/// task per subdirectory to enter, but the last below a long path (see
/// [`process`]). `path`
/// is the directory's; entries' paths are made in it, and it is as it was
/// on return.
fn list<'s, V: Visitor>(
    ctx: &'s Ctx<'s, V>,
    scope: &rayon::Scope<'s>,
    node: &Arc<Node<V::Dir>>,
    fd: BorrowedFd<'_>,
    path: &mut Vec<u8>,
    shared: Option<&Arc<RetainedFd<'s>>>,
) -> Listing<V::Dir> {
    let own = path.len();
    if path != b"/" {
        path.push(b'/');
    }
    let base = path.len();
    let (mut entries, mut bytes) = (0u64, 0u64);
    let mut held: Option<Held<V::Dir>> = None;

    DIRENT_BUF.with_borrow_mut(|buf| {
        let mut dir = RawDir::new(fd, buf.spare_capacity_mut());
        while let Some(next) = dir.next() {
            let raw = match next {
                Ok(raw) => raw,
                Err(errno) => {
                    let error = WalkError { path: path[..own].to_vec(), op: Op::Read, errno };
                    ctx.visitor.error(&node.dir, error);
                    break;
                }
            };
            let cname: &CStr = raw.file_name();
            let name = cname.to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            entries += 1;
            path.truncate(base);
            path.extend_from_slice(name);
            let entry = EntryRef { path, name, hint: FileKind::from_rustix(raw.file_type()) };
            let Some(plan) = ctx.visitor.plan(&node.dir, &entry) else {
                continue;
            };
            let meta = match rustix::fs::statx(
                fd,
                cname,
                AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT,
                STATX_MASK,
            ) {
                Ok(st) => ctx.root.meta(&st),
                Err(errno) => {
                    let error = WalkError { path: path.clone(), op: Op::Stat, errno };
                    ctx.visitor.error(&node.dir, error);
                    continue;
                }
            };
            if meta.kind != FileKind::Dir {
                bytes += meta.size;
            }
            if meta.kind != FileKind::Dir || meta.other_fs {
                ctx.visitor.leaf(&node.dir, &entry, plan, &meta);
                continue;
            }
            if let Some(dir) = ctx.visitor.enter(&node.dir, &entry, plan, &meta) {
                node.pending.fetch_add(1, Ordering::Relaxed);
                let child = Arc::new(Node {
                    parent: Parent(Some(Arc::clone(node))),
                    pending: AtomicUsize::new(1),
                    dir,
                });
                // Below a short path every subdirectory goes at once, with
                // a copy of its path (the most reads in flight, for a cold
                // walk); below a long one, the last is held (its copy is
                // what a deep chain would pay at every level), and the one
                // held before goes now.
                let spawned = if base < HOLD_BELOW {
                    Some((child, name.to_vec()))
                } else {
                    held.replace((child, name.to_vec()))
                };
                if let Some((earlier, name)) = spawned {
                    let mut child_path = Vec::with_capacity(base + name.len());
                    child_path.extend_from_slice(&path[..base]);
                    child_path.extend_from_slice(&name);
                    let fd = shared.cloned();
                    scope.spawn(move |s| process(ctx, s, earlier, fd, child_path));
                }
            }
        }
    });
    path.truncate(own);
    Listing { entries, bytes, held }
}

/// Marks the listing of `node` done and finishes every directory whose last
/// piece of work this was, walking up the tree; each parent's path is its
/// child's, truncated.
fn complete<V: Visitor>(ctx: &Ctx<'_, V>, node: Arc<Node<V::Dir>>, mut path: Vec<u8>) {
    let mut current = node;
    loop {
        if current.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let parent = current.parent.0.clone();
        if parent.is_none() && ctx.keep_top {
            return;
        }
        ctx.visitor.finish(&current.dir, &path, parent.as_deref().map(|p| &p.dir));
        drop(current);
        match parent {
            Some(parent) => current = parent,
            None => return,
        }
        let cut = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
        path.truncate(cut.max(1));
    }
}

/// Longest relative path handed to one open (PATH_MAX is 4096 with its NUL).
const CHUNK: usize = 4000;

/// Opens the directory at `path` (as the audited system sees it) from the
/// root, in chunks shorter than `PATH_MAX` when the path is longer.
fn open_from_root(root: BorrowedFd<'_>, path: &[u8]) -> Result<OwnedFd, Errno> {
    let mut rest = path.strip_prefix(b"/").unwrap_or(path);
    if rest.is_empty() {
        rest = b".";
    }
    let mut current: Option<OwnedFd> = None;
    loop {
        let (head, tail) = if rest.len() <= CHUNK {
            (rest, &b""[..])
        } else {
            // Names are at most 255 bytes, so a `/` always lies in reach.
            let cut = rest[..=CHUNK].iter().rposition(|&b| b == b'/').unwrap_or(CHUNK);
            (&rest[..cut], &rest[cut + 1..])
        };
        let from = current.as_ref().map_or(root, |fd| fd.as_fd());
        let fd = open_dir_at(from, head)?;
        current = Some(fd);
        if tail.is_empty() {
            break;
        }
        rest = tail;
    }
    current.ok_or(Errno::INVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_components() {
        assert_eq!(last_component(b"/a b/\xff"), b"\xff");
        assert_eq!(last_component(b"/a"), b"a");
        assert_eq!(last_component(b"/"), b"/");
    }

    #[test]
    fn dropping_a_deep_chain_does_not_recurse() {
        let mut node = Arc::new(Node { parent: Parent(None), pending: AtomicUsize::new(0), dir: () });
        for _ in 0..200_000 {
            node = Arc::new(Node { parent: Parent(Some(node)), pending: AtomicUsize::new(0), dir: () });
        }
        drop(node);
    }
}
