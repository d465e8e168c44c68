//! Sources: everything that says "this path exists (or changed) on the
//! ephemeral root".
//!
//! A source knows nothing about claims, rules or reports. Each one is a
//! [`Source`]: it feeds every entry it knows of, with its metadata, to a
//! [`walk::Visitor`] (the classifier, see `classify.rs`), and afterwards
//! tells what it compared (notes), the entries it could not read, the
//! changes since the blank state and the blank tree it read. One type per
//! way of reading, and the choice between them in one place
//! ([`choose::open`]):
//!
//! - `walk.rs`: [`walk::Walk`], the parallel one-filesystem walk of the
//!   live tree (report `source`: `walk`);
//! - `zfs.rs`: [`zfs::ZfsDiff`], `zfs diff` of the live dataset (`zfs`),
//!   and [`zfs::SavedDiff`], a saved `zfs diff -FHt` (`zfs-diff-file`),
//!   both parsed by `zfs_diff.rs`; `links.rs` finds the other names of the
//!   hard-linked files a diff lists under one name only;
//! - `compared.rs`: [`compared::Compared`], the live tree compared with a
//!   blank one by `baseline.rs`: a tree given with `--baseline`
//!   (`baseline`), the btrfs blank snapshot found by `btrfs.rs` (`btrfs`),
//!   or the ZFS snapshot's own tree (`zfs-snapshot`);
//! - `choose.rs`: which of them an audit reads, from its [`Settings`] and
//!   the root's filesystem (and, on ZFS, which way is cheaper);
//! - `shadowed.rs`: what lies hidden under mount points.
//!
//! Every source but the walk turns what it learns into neutral
//! [`ChangeRecord`]s, fed to a [`tree::ChangeTree`], which walks the changes
//! with the same visitor as the live walk. Entry metadata
//! ([`FileKind`](crate::sys::meta::FileKind), [`Change`],
//! [`Meta`](crate::sys::meta::Meta)) lives in `sys/meta.rs`. This file
//! owns the trait, the settings, the errors, the opened tree a source
//! reads ([`Opened`]) and the change record. Every source steps from an
//! open directory into a subdirectory the same way,
//! [`open_dir_at`](crate::sys::root::open_dir_at).

pub mod baseline;
pub mod btrfs;
pub mod choose;
pub mod compared;
pub mod links;
pub mod shadowed;
pub mod tree;
pub mod walk;
pub mod zfs;
pub mod zfs_diff;

use std::borrow::Cow;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::sys::meta::{Change, FileKind};
use crate::sys::root::{Root, WalkError};

use tree::ChangeTree;
use walk::Visitor;

/// One way of learning what is on the ephemeral root.
///
/// [`Source::feed`] does the work (runs `zfs diff`, compares two trees,
/// walks); the rest describes what it did, and is complete once it has fed.
pub trait Source {
    /// The report's `source`: `walk`, `zfs`, `zfs-snapshot`,
    /// `zfs-diff-file`, `baseline` or `btrfs`.
    fn name(&self) -> &'static str;

    /// Hands every entry the source knows of to `visitor`, `top` being the
    /// state of the root directory, on `threads` workers (`progress`: draw
    /// progress on stderr where the source can). An entry that cannot be
    /// read does not stop it: the visitor or [`Source::take_errors`] gets it.
    fn feed<V: Visitor>(
        &mut self,
        top: V::Dir,
        visitor: &V,
        threads: usize,
        progress: bool,
    ) -> Result<(), SourceError>;

    /// The entries it could not read itself (taken: a second call gives
    /// none). The walk hands its errors to the visitor instead.
    fn take_errors(&mut self) -> Vec<WalkError> {
        Vec::new()
    }

    /// What was compared with what, why this way, and what the source
    /// cannot see: for the report's notes.
    fn notes(&self) -> &[String];

    /// The changes since the blank state; `None` for the walk, which
    /// knows no blank state.
    fn changes(&self) -> Option<&ChangeTree>;

    /// The blank tree the source read, when it read one (content hidden
    /// under a mount point that the blank tree also holds comes back at
    /// rollback: `shadowed.rs` asks it).
    fn blank(&self) -> Option<&Root> {
        None
    }

    /// Whether the root is known to be erased at boot (a ZFS or btrfs root
    /// with its blank snapshot, a given baseline or diff, a tmpfs). A walk
    /// of a root that looks like none of these is not: what it finds is
    /// what erasing it *would* lose.
    fn ephemeral(&self) -> bool {
        true
    }
}

/// Which source to read (the command line's `--source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// From the root's filesystem: ZFS and btrfs compare with their blank
    /// snapshot, anything else is walked.
    #[default]
    Auto,
    /// The parallel one-filesystem walk.
    Walk,
    /// `zfs diff` of the dataset mounted at the root.
    Zfs,
    /// The btrfs root compared with its blank snapshot.
    Btrfs,
}

/// Where the list of state comes from, as the settings say it (see
/// `config.rs`, which makes these from the command line).
#[derive(Debug, Clone)]
pub struct Settings {
    pub kind: Kind,
    /// A blank tree to compare the root with (`--baseline`).
    pub baseline: Option<PathBuf>,
    /// A saved `zfs diff -FHt` output to read (`-`: stdin).
    pub zfs_diff: Option<PathBuf>,
    /// Where the saved diff's dataset was mounted when diffed.
    pub strip_prefix: Option<PathBuf>,
    /// The blank snapshot's name (ZFS).
    pub snapshot: String,
    /// The ZFS dataset mounted at the root (default: from the mount table).
    pub dataset: Option<OsString>,
}

/// Why a source could not be chosen or read. An error on one entry is not
/// one of these: it is a [`WalkError`], and the source goes on.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// `--source btrfs` on a root that is not a btrfs subvolume's mount point.
    #[error("--source btrfs: {0} is not the mount point of a btrfs subvolume; compare with --baseline DIR")]
    NotBtrfs(String),
    /// `--source btrfs`, and no blank snapshot in the conventional places.
    #[error("--source btrfs: no blank snapshot of {0} was found; name it with --baseline DIR")]
    NoBtrfsBlank(String),
    /// `--source zfs` on a root that is not a ZFS dataset's mount point.
    #[error(
        "--source zfs: {root} is not the mount point of a ZFS dataset (it is {fstype}); name one with --dataset"
    )]
    NotZfs { root: String, fstype: String },
    #[error(transparent)]
    Zfs(#[from] zfs::ZfsError),
    /// A tree could not be opened: `what` says what it was for.
    #[error("{what} {path}: {why}")]
    Open { what: &'static str, path: String, why: String },
    #[error("cannot start the walk's threads")]
    Threads(#[source] rayon::ThreadPoolBuildError),
    /// No live tree and no change list.
    #[error("nothing to audit")]
    Nothing,
}

/// A directory tree opened for reading: the audited root, or a blank tree
/// to compare it with.
pub struct Opened {
    pub root: Root,
    /// Its canonical path on this machine.
    pub canonical: PathBuf,
}

impl Opened {
    /// Opens the directory tree at `path`; an error starts with `what`
    /// (what the tree is for: "cannot audit").
    pub fn open(path: &Path, what: &'static str) -> Result<Opened, SourceError> {
        let failed = |why: String| SourceError::Open {
            what,
            path: crate::sanitize::escape(path.as_os_str().as_bytes()).into_owned(),
            why,
        };
        let canonical = std::fs::canonicalize(path).map_err(|e| failed(e.to_string()))?;
        if !canonical.is_dir() {
            return Err(failed("not a directory".into()));
        }
        let root = Root::open(&canonical).map_err(|e| failed(crate::sys::root::describe_errno(e.errno)))?;
        Ok(Opened { root, canonical })
    }
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
