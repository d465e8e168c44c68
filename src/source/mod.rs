//! Sources: everything that says "this path exists (or changed) on the
//! ephemeral root".
//!
//! A source knows nothing about claims. Every source ends in the same
//! [`walk::Visitor`], which gets each entry with its metadata and decides
//! what it means (see `classify.rs`):
//!
//! - `walk.rs`: the parallel one-filesystem walk of the live tree;
//! - `zfs_diff.rs` (the `zfs diff -FHt` line parser) and `zfs.rs` (runs
//!   `zfs diff` or reads a saved one); `baseline.rs` (compares the live tree
//!   with a blank one) and `btrfs.rs` (finds the blank snapshot): each turns
//!   what it learns into [`ChangeRecord`]s, fed to a `tree::ChangeTree`,
//!   which walks the changes with the same visitor;
//! - `links.rs`: the other names of hard-linked files a change list names.
//!
//! This file owns the vocabulary they share: [`FileKind`], [`Change`],
//! [`Meta`](crate::sys::meta::Meta) and the neutral [`ChangeRecord`]; and `open_subdir`, how the
//! change sources step from an open directory into a subdirectory.

pub mod baseline;
pub mod btrfs;
pub mod choose;
pub mod links;
pub mod shadowed;
pub mod tree;
pub mod walk;
pub mod zfs;
pub mod zfs_diff;

use std::borrow::Cow;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys::meta::{Change, FileKind};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// One change, as any change source states it, shaped like none of them:
/// `zfs diff` lines convert into it, the baseline comparison makes it
/// directly. [`tree::ChangeTree::add`] takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord<'a> {
    /// Absolute, as the audited system sees it, with no empty, `.` or `..`
    /// component.
    pub path: Cow<'a, [u8]>,
    /// `Renamed`: `path` is the old name, [`ChangeRecord::renamed_to`] the
    /// new one. `Present` reads as `Created` (something is there that the
    /// blank state did not have).
    pub change: Change,
    /// `None`: the source does not know (the tree keeps what it knows).
    pub kind: Option<FileKind>,
    /// Inode change time, seconds since the epoch, when the source has one
    /// (`zfs diff -t` does; a comparison of two trees does not).
    pub ctime: Option<i64>,
    /// The new name of a rename.
    pub renamed_to: Option<Cow<'a, [u8]>>,
    /// A change of the link count of a non-directory (`+1`, `-1`), when
    /// the source reports one.
    pub links: Option<i64>,
}

/// The kernel has no `openat2` (before Linux 5.6); learnt once.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens the subdirectory `name` (one component) of `dir` the way the walk
/// opens directories: never through a symlink, never onto another mount.
/// Stepping down from an open directory keeps the cost of a deep tree
/// linear, and reaches paths longer than `PATH_MAX`.
pub(crate) fn open_subdir(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV | ResolveFlags::BENEATH;
        match rustix::fs::openat2(dir, name, flags, Mode::empty(), resolve) {
            Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            // A rename raced the lookup: the plain open below tries again.
            Err(Errno::AGAIN) => {}
            other => return other,
        }
    }
    // Old kernels: one component with O_NOFOLLOW cannot pass a symlink; the
    // caller has stat'ed it as a directory of this filesystem.
    rustix::fs::openat(dir, name, flags, Mode::empty())
}
