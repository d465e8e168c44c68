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
//! [`Meta`] and the neutral [`ChangeRecord`]; and `open_subdir`, how the
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

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use serde::Serialize;

/// The type of a filesystem object, named as in the JSON contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Door,
    EventPort,
    Unknown,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
            FileKind::CharDevice => "char-device",
            FileKind::BlockDevice => "block-device",
            FileKind::Door => "door",
            FileKind::EventPort => "event-port",
            FileKind::Unknown => "unknown",
        }
    }

    /// From the `S_IFMT` bits of a mode.
    pub fn from_mode(mode: u32) -> FileKind {
        match mode & 0o170000 {
            0o100000 => FileKind::File,
            0o040000 => FileKind::Dir,
            0o120000 => FileKind::Symlink,
            0o010000 => FileKind::Fifo,
            0o140000 => FileKind::Socket,
            0o020000 => FileKind::CharDevice,
            0o060000 => FileKind::BlockDevice,
            _ => FileKind::Unknown,
        }
    }

    pub(crate) fn from_rustix(t: rustix::fs::FileType) -> Option<FileKind> {
        use rustix::fs::FileType as T;
        Some(match t {
            T::RegularFile => FileKind::File,
            T::Directory => FileKind::Dir,
            T::Symlink => FileKind::Symlink,
            T::Fifo => FileKind::Fifo,
            T::Socket => FileKind::Socket,
            T::CharacterDevice => FileKind::CharDevice,
            T::BlockDevice => FileKind::BlockDevice,
            _ => return None,
        })
    }
}

/// How a path differs from the blank state, when the source knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// The plain walk: the path exists now (and the blank root is empty).
    Present,
    Created,
    Modified,
    Renamed,
    Removed,
}

impl Change {
    pub fn name(self) -> &'static str {
        match self {
            Change::Present => "present",
            Change::Created => "created",
            Change::Modified => "modified",
            Change::Renamed => "renamed",
            Change::Removed => "removed",
        }
    }
}

/// The inode number ZFS gives the `.zfs` control directory at a dataset's
/// root (`ZFSCTL_INO_ROOT`): snapshots and shares, not the dataset's content.
pub const ZFS_CONTROL_INO: u64 = 0x0000_FFFF_FFFF_FFFF;

/// Whether `name` with `meta` is ZFS's `.zfs` control directory (listed
/// with `snapdir=visible`): never content of the root.
pub fn is_zfs_control_dir(name: &[u8], meta: &Meta) -> bool {
    name == b".zfs" && meta.ino == ZFS_CONTROL_INO && meta.kind == FileKind::Dir
}

/// Metadata of one entry, from a single `statx` relative to its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: FileKind,
    /// Apparent size in bytes (`st_size`).
    pub size: u64,
    /// Allocated bytes (`st_blocks * 512`).
    pub disk: u64,
    /// Modification time, seconds since the epoch, and its nanoseconds.
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub ino: u64,
    pub dev: u64,
    /// The entry is the root of another mount or filesystem (a mount point,
    /// a bind-mounted file, a nested btrfs subvolume): it is not on the
    /// audited filesystem and is never descended into.
    pub other_fs: bool,
    /// Of those, one reached without a mount: a nested btrfs subvolume. It
    /// belongs to the root's subvolume and goes with it at rollback.
    pub subvolume: bool,
    /// How the entry differs from the blank state (`Present` for a walk).
    pub change: Change,
    /// Size, disk and mtime were read from a live tree (a saved diff alone
    /// has no sizes).
    pub known: bool,
    /// Inode change time from a change list, when the source has one.
    pub ctime: Option<i64>,
}

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
