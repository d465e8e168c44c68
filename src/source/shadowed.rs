//! Shadowed state: what lies on the root's own filesystem under a mount
//! point. Written before the mount came up (or under a claim's bind
//! mount), it is invisible to the running system and erased at rollback.
//!
//! The running system cannot see it, and darlings unmounts nothing: it
//! looks through a *detached, non-recursive clone* of the root's mount
//! (`open_tree(2)` with `OPEN_TREE_CLONE`, no `AT_RECURSIVE`). The clone
//! has no submounts, so every mount point in it shows what the root itself
//! holds there. The clone is never attached anywhere (no directory is made,
//! no mount namespace changed) and disappears with its descriptor. It
//! needs `CAP_SYS_ADMIN`; without it, the audit says it could not look.
//!
//! Each entry found directly under a mount point is one finding, with
//! everything below it counted, except what an ignore rule names; with
//! `--flat`, every path counted is a finding of its own (handed to the
//! caller as it is found, when the caller sums rather than keeps them:
//! `record` and `rollback`). A file mounted
//! over a file (a bind-mounted claim) hides the file the root holds at the
//! mount point itself: a finding when it holds bytes (the empty file a
//! bind mount needs as its mount point holds nothing to lose). When
//! the audit compares with a blank tree, an entry the blank tree has too
//! (same type and modification time) comes back at rollback and is not
//! counted; a directory is still looked into (its modification time says
//! nothing of what changed deeper down), and an entry is a finding only
//! when something in it is counted.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rustix::io::Errno;

use super::walk::{walk_below, EntryRef, Visitor};
use crate::sys::meta::{FileKind, Meta};
use crate::sys::mounts::{Mount, Mounts};
use crate::sys::root::{list_names, Op, Root, WalkError};

/// One entry hidden under a mount point, with its subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hidden {
    pub path: Vec<u8>,
    pub kind: FileKind,
    pub entries: u64,
    pub size: u64,
    pub disk: u64,
    pub mtime: i64,
    /// The mount that hides it, described (`tmpfs persist`).
    pub mount: String,
    pub mount_point: Vec<u8>,
}

/// What the look under the mount points found.
#[derive(Debug, Default)]
pub struct Found {
    pub hidden: Vec<Hidden>,
    pub errors: Vec<WalkError>,
}

/// Opens a detached, non-recursive clone of the mount at (or holding) the
/// opened root: the root's own filesystem, without any submount. The clone
/// is made from the descriptor the audit holds (`AT_EMPTY_PATH`), never by
/// its path again: a directory renamed over that path meanwhile is not
/// what is looked into.
pub fn clone_root(root: &Root) -> Result<Root, Errno> {
    use rustix::mount::OpenTreeFlags;
    let fd = rustix::mount::open_tree(
        root.fd(),
        "",
        OpenTreeFlags::AT_EMPTY_PATH | OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    Root::from_fd(fd)
}

/// Counts a subtree: what is neither ignored nor the same in the blank tree.
/// With `flat`, it also keeps one row for each path it counts.
struct Counter<'a> {
    entries: AtomicU64,
    size: AtomicU64,
    disk: AtomicU64,
    newest: AtomicU64,
    errors: Mutex<Vec<WalkError>>,
    rows: Mutex<Vec<Hidden>>,
    look: &'a Look<'a>,
}

impl<'a> Counter<'a> {
    fn new(look: &'a Look<'a>) -> Counter<'a> {
        Counter {
            entries: AtomicU64::new(0),
            size: AtomicU64::new(0),
            disk: AtomicU64::new(0),
            newest: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
            rows: Mutex::new(Vec::new()),
            look,
        }
    }

    /// Whether the blank tree has `path` as it is (it comes back at rollback).
    fn in_blank(&self, path: &[u8], meta: &Meta) -> bool {
        self.look
            .blank
            .and_then(|b| b.stat(path.strip_prefix(b"/").unwrap_or(path)).ok())
            .is_some_and(|b| b.kind == meta.kind && b.mtime == meta.mtime && b.mtime_nsec == meta.mtime_nsec)
    }

    /// Counts `meta` at `path`, unless the blank tree has it as it is.
    fn count(&self, path: &[u8], meta: &Meta) {
        if self.in_blank(path, meta) {
            return;
        }
        self.add(meta);
        if self.look.flat {
            let mut row = self.look.hidden(path.to_vec(), meta.kind);
            row.entries = 1;
            (row.size, row.disk) = content(meta);
            row.mtime = meta.mtime;
            match self.look.each {
                Some(each) => each(&row),
                None => self.rows.lock().unwrap_or_else(|e| e.into_inner()).push(row),
            }
        }
    }

    fn add(&self, meta: &Meta) {
        // Sparse files can be absurdly large: saturate, never wrap.
        let add = |n: &AtomicU64, v: u64| {
            let _ = n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(x.saturating_add(v)));
        };
        let (size, disk) = content(meta);
        add(&self.entries, 1);
        add(&self.size, size);
        add(&self.disk, disk);
        self.newest.fetch_max(u64::try_from(meta.mtime).unwrap_or(0), Ordering::Relaxed);
    }
}

/// The bytes an entry holds: a directory's own size means nothing.
fn content(meta: &Meta) -> (u64, u64) {
    if meta.kind == FileKind::Dir {
        (0, 0)
    } else {
        (meta.size, meta.disk)
    }
}

impl Visitor for Counter<'_> {
    type Dir = ();
    type Plan = ();

    fn plan(&self, _: &(), entry: &EntryRef<'_>) -> Option<()> {
        (!(self.look.skip)(entry.path)).then_some(())
    }

    fn leaf(&self, _: &(), entry: &EntryRef<'_>, _: (), meta: &Meta) {
        self.count(entry.path, meta);
    }

    fn enter(&self, _: &(), entry: &EntryRef<'_>, _: (), meta: &Meta) -> Option<()> {
        self.count(entry.path, meta);
        Some(())
    }

    fn listed(&self, _: &()) {}

    fn finish(&self, _: &(), _: &[u8], _: Option<&()>) {}

    fn error(&self, _: &(), error: WalkError) {
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).push(error);
    }
}

/// Looks under every mount point of `mounts` that lies on the root's own
/// filesystem, in `clone` (see [`clone_root`]). `skip(path)`: an entry
/// fine to lose (an ignore rule); `blank`: the blank tree, when the audit
/// has one; `flat`: one finding for every hidden path, not one for each
/// entry directly under a mount point, handed to `each` as it is found
/// when given (and then not kept in [`Found::hidden`]).
pub fn find(
    clone: &Root,
    mounts: &Mounts,
    blank: Option<&Root>,
    skip: &(dyn Fn(&[u8]) -> bool + Sync),
    flat: bool,
    each: Option<&(dyn Fn(&Hidden) + Sync)>,
    threads: usize,
) -> Found {
    let mut found = Found::default();
    let Ok(pool) = super::walk::pool(threads) else {
        return found;
    };
    // ZFS mounts its snapshots below the `.zfs` control directory: not the root's.
    for mount in mounts.on_root().into_iter().filter(|m| !m.mount_point.starts_with(b"/.zfs/")) {
        let look = Look { clone, pool: &pool, mount, description: mount.describe(), blank, skip, flat, each };
        look.under(&mut found);
    }
    found
}

/// The look under one mount point.
struct Look<'a> {
    clone: &'a Root,
    pool: &'a rayon::ThreadPool,
    mount: &'a Mount,
    description: String,
    blank: Option<&'a Root>,
    skip: &'a (dyn Fn(&[u8]) -> bool + Sync),
    flat: bool,
    each: Option<&'a (dyn Fn(&Hidden) + Sync)>,
}

impl Look<'_> {
    fn under(&self, found: &mut Found) {
        let point = &self.mount.mount_point;
        let dir = match self.clone.open_dir(point) {
            Ok(fd) => fd,
            Err(Errno::NOTDIR) => return self.under_file(found),
            // A mount point the root no longer has.
            Err(Errno::NOENT) => return,
            Err(errno) => return found.errors.push(WalkError { path: point.clone(), op: Op::Open, errno }),
        };
        let names = match list_names(dir.as_fd()) {
            Ok(names) => names,
            Err(errno) => return found.errors.push(WalkError { path: point.clone(), op: Op::Read, errno }),
        };
        for name in names {
            let mut path = point.clone();
            path.push(b'/');
            path.extend_from_slice(&name);
            if (self.skip)(&path) {
                continue;
            }
            let meta = match self.clone.stat_at(dir.as_fd(), &name) {
                Ok(meta) => meta,
                Err(errno) => {
                    found.errors.push(WalkError { path, op: Op::Stat, errno });
                    continue;
                }
            };
            let counter = Counter::new(self);
            counter.count(&path, &meta);
            if meta.kind == FileKind::Dir {
                walk_below(self.clone, self.pool, path.clone(), (), &counter);
            }
            self.collect(path, meta.kind, counter, found);
        }
    }

    /// A file mounted over a file: what the root holds at the mount point
    /// itself is hidden. The empty file a bind mount needs as its mount
    /// point holds nothing to lose.
    fn under_file(&self, found: &mut Found) {
        let point = &self.mount.mount_point;
        if (self.skip)(point) {
            return;
        }
        let meta = match self.clone.stat(point.strip_prefix(b"/").unwrap_or(point)) {
            Ok(meta) => meta,
            Err(Errno::NOENT) => return,
            Err(errno) => return found.errors.push(WalkError { path: point.clone(), op: Op::Stat, errno }),
        };
        if meta.kind == FileKind::Dir || meta.size == 0 {
            return;
        }
        let counter = Counter::new(self);
        counter.count(point, &meta);
        self.collect(point.clone(), meta.kind, counter, found);
    }

    /// The findings of one entry under the mount point, counted: one with
    /// everything below it counted, or (flat) one for each path counted;
    /// none when all of it is in the blank tree (it comes back at rollback).
    fn collect(&self, path: Vec<u8>, kind: FileKind, counter: Counter<'_>, found: &mut Found) {
        found.errors.append(&mut counter.errors.into_inner().unwrap_or_else(|e| e.into_inner()));
        if self.flat {
            found.hidden.append(&mut counter.rows.into_inner().unwrap_or_else(|e| e.into_inner()));
            return;
        }
        let entries = counter.entries.load(Ordering::Relaxed);
        if entries == 0 {
            return;
        }
        let mut row = self.hidden(path, kind);
        row.entries = entries;
        row.size = counter.size.load(Ordering::Relaxed);
        row.disk = counter.disk.load(Ordering::Relaxed);
        row.mtime = i64::try_from(counter.newest.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        found.hidden.push(row);
    }

    /// A finding at `path` under this mount point, not counted yet.
    fn hidden(&self, path: Vec<u8>, kind: FileKind) -> Hidden {
        Hidden {
            path,
            kind,
            entries: 0,
            size: 0,
            disk: 0,
            mtime: 0,
            mount: self.description.clone(),
            mount_point: self.mount.mount_point.clone(),
        }
    }
}
