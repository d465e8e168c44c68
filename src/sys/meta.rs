//! What is known of one filesystem entry: its type, its metadata from one
//! `statx`, and how it differs from the blank state. Every source produces
//! these; claims, classification and reports read them.

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
