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
//! everything below it counted, except what an ignore rule names. When
//! the audit compares with a blank tree, an entry the blank tree has too
//! (same type and modification time) comes back at rollback and is not
//! counted; a directory is still looked into (its modification time says
//! nothing of what changed deeper down), and an entry is a finding only
//! when something in it is counted.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rustix::io::Errno;

use super::walk::{walk_below, EntryRef, Visitor};
use crate::sys::meta::{FileKind, Meta};
use crate::sys::mounts::Mounts;
use crate::sys::root::{list_names, Root, WalkError};

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
/// directory `root`: the root's own filesystem, without any submount.
pub fn clone_root(root: &Path) -> Result<Root, Errno> {
    use rustix::mount::OpenTreeFlags;
    let fd = rustix::mount::open_tree(
        rustix::fs::CWD,
        root,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    Root::from_fd(fd)
}

/// Counts a subtree: what is neither ignored nor the same in the blank tree.
struct Counter<'a> {
    entries: AtomicU64,
    size: AtomicU64,
    disk: AtomicU64,
    newest: AtomicU64,
    errors: Mutex<Vec<WalkError>>,
    skip: &'a (dyn Fn(&[u8]) -> bool + Sync),
    blank: Option<&'a Root>,
}

impl<'a> Counter<'a> {
    fn new(skip: &'a (dyn Fn(&[u8]) -> bool + Sync), blank: Option<&'a Root>) -> Counter<'a> {
        Counter {
            entries: AtomicU64::new(0),
            size: AtomicU64::new(0),
            disk: AtomicU64::new(0),
            newest: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
            skip,
            blank,
        }
    }

    /// Whether the blank tree has `path` as it is (it comes back at rollback).
    fn in_blank(&self, path: &[u8], meta: &Meta) -> bool {
        self.blank
            .and_then(|b| b.stat(path.strip_prefix(b"/").unwrap_or(path)).ok())
            .is_some_and(|b| b.kind == meta.kind && b.mtime == meta.mtime && b.mtime_nsec == meta.mtime_nsec)
    }

    /// Counts `meta` at `path`, unless the blank tree has it as it is.
    fn count(&self, path: &[u8], meta: &Meta) {
        if !self.in_blank(path, meta) {
            self.add(meta);
        }
    }

    fn add(&self, meta: &Meta) {
        // Sparse files can be absurdly large: saturate, never wrap.
        let add = |n: &AtomicU64, v: u64| {
            let _ = n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(x.saturating_add(v)));
        };
        add(&self.entries, 1);
        if meta.kind != FileKind::Dir {
            add(&self.size, meta.size);
            add(&self.disk, meta.disk);
        }
        self.newest.fetch_max(u64::try_from(meta.mtime).unwrap_or(0), Ordering::Relaxed);
    }
}

impl Visitor for Counter<'_> {
    type Dir = ();
    type Plan = ();

    fn plan(&self, _: &(), entry: &EntryRef<'_>) -> Option<()> {
        (!(self.skip)(entry.path)).then_some(())
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
/// has one.
pub fn find(
    clone: &Root,
    mounts: &Mounts,
    blank: Option<&Root>,
    skip: &(dyn Fn(&[u8]) -> bool + Sync),
    threads: usize,
) -> Found {
    let mut found = Found::default();
    let Ok(pool) = rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build() else { return found };
    // ZFS mounts its snapshots below the `.zfs` control directory: not the root's.
    for m in mounts.on_root().into_iter().filter(|m| !m.mount_point.starts_with(b"/.zfs/")) {
        let dir = match clone.open_dir(&m.mount_point) {
            Ok(fd) => fd,
            // A bind-mounted file, or a mount point the root no longer has.
            Err(Errno::NOTDIR | Errno::NOENT) => continue,
            Err(errno) => {
                found.errors.push(WalkError {
                    path: m.mount_point.clone(),
                    op: crate::sys::root::Op::Open,
                    errno,
                });
                continue;
            }
        };
        let names = match list_names(dir.as_fd()) {
            Ok(names) => names,
            Err(errno) => {
                found.errors.push(WalkError {
                    path: m.mount_point.clone(),
                    op: crate::sys::root::Op::Read,
                    errno,
                });
                continue;
            }
        };
        for name in names {
            let mut path = m.mount_point.clone();
            path.push(b'/');
            path.extend_from_slice(&name);
            if skip(&path) {
                continue;
            }
            let meta = match clone.stat_at(dir.as_fd(), &name) {
                Ok(meta) => meta,
                Err(errno) => {
                    found.errors.push(WalkError { path, op: crate::sys::root::Op::Stat, errno });
                    continue;
                }
            };
            let counter = Counter::new(skip, blank);
            counter.count(&path, &meta);
            if meta.kind == FileKind::Dir {
                walk_below(clone, &pool, path.clone(), (), &counter);
            }
            found.errors.append(&mut counter.errors.lock().unwrap_or_else(|e| e.into_inner()));
            if counter.entries.load(Ordering::Relaxed) == 0 {
                // All of it is in the blank tree: it comes back at rollback.
                continue;
            }
            found.hidden.push(Hidden {
                path,
                kind: meta.kind,
                entries: counter.entries.load(Ordering::Relaxed),
                size: counter.size.load(Ordering::Relaxed),
                disk: counter.disk.load(Ordering::Relaxed),
                mtime: i64::try_from(counter.newest.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
                mount: m.describe(),
                mount_point: m.mount_point.clone(),
            });
        }
    }
    found
}
