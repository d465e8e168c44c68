//! Writing inside a root, for `restore`: the way back from an archive must
//! never become a way out of the root.
//!
//! The destination belongs to the restored system, and any of its users may
//! own a directory on the way (`/home/alice`) and race darlings, which runs
//! as root. So nothing is written by path:
//!
//! - the destination's existing directories are opened from the root's
//!   descriptor one component at a time ([`walk_dirs`], `openat2` with
//!   `RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH`): a symlink on the way is
//!   reported, never followed (mounts are crossed: `/home` may be a dataset
//!   of its own);
//! - nothing is built in place. [`Staging`] makes a private directory
//!   (mode 0700, root's, ACLs removed, checked to be the one just made)
//!   beside the destination, and every new entry is made inside it by
//!   descriptor (`mkdirat`, `O_CREAT | O_EXCL`, `symlinkat`, `mknodat`).
//!   No other user can reach into it, so owner, mode, extended attributes
//!   and times are set on exactly what was made;
//! - one `renameat2` moves the finished entry into place: `RENAME_NOREPLACE`,
//!   or `RENAME_EXCHANGE` to replace what is there. Either moves a name: a
//!   symlink at the destination is replaced as a link, never followed, and
//!   a FIFO is never opened;
//! - what was replaced, and whatever is left after a failure, is removed
//!   inside the private directory, crossing no mount and no other
//!   filesystem, following no symlink.
//!
//! Trees are walked down by descriptor, never by a path longer than
//! needed, and a user can nest directories far deeper than the files a
//! process may hold open: every walk here ([`Chain`]: the way down, a
//! copy, a measure, a removal) keeps a few descriptors open whatever the
//! depth, opening a directory again by name (and checking it is the same
//! one, `st_dev` and `st_ino`) when it comes back up to it.
//!
//! The archive side is opened read-only ([`Copier`], [`measure`]): no
//! symlink followed, no mount entered, and `O_NOATIME`, so that not even an
//! access time is written into the archive (`readlink` may still touch a
//! symlink's, where the archive is writable and mounted without `noatime`).
//!
//! Not copied: extended attributes of symlinks and device nodes (Linux
//! reaches them only by path), sparseness (holes are written as zeros).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{
    AtFlags, FileType, Mode, OFlags, RenameFlags, Statx, StatxFlags, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

use super::{errno_message, kind_name, list_names, open_beneath};
use crate::sanitize::escape;

/// How restore opens a directory of the archive or the destination.
const DIR: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::NOCTTY);

/// The prefix of a staging directory's name.
pub const STAGING_PREFIX: &str = ".darlings-restore-";

const ATTR_MASK: StatxFlags = StatxFlags::TYPE
    .union(StatxFlags::MODE)
    .union(StatxFlags::UID)
    .union(StatxFlags::GID)
    .union(StatxFlags::NLINK)
    .union(StatxFlags::INO)
    .union(StatxFlags::SIZE)
    .union(StatxFlags::ATIME)
    .union(StatxFlags::MTIME);

/// Why a write inside the root failed: the operation, the entry (its path
/// below the restored entry's parent) and the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("{op} {}: {}", escape(path), errno_message(*errno))]
    Sys { op: &'static str, path: Vec<u8>, errno: Errno },
    #[error("{} was replaced by someone else while darlings made it", escape(.0))]
    Raced(Vec<u8>),
    #[error("{} is a {} in the archive: not restored", escape(.0), kind_name(FileType::Unknown))]
    Unknown(Vec<u8>),
    #[error(
        "{}{} is no longer the directory darlings opened on its way down: it was moved or replaced meanwhile",
        escape(path),
        side.shown()
    )]
    Changed { path: Vec<u8>, side: Side },
}

impl WriteError {
    /// The errno behind it, when a system call failed.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            WriteError::Sys { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// `map_err` for a system call on `path`.
fn on<'p>(op: &'static str, path: &'p [u8]) -> impl FnOnce(Errno) -> WriteError + 'p {
    move |errno| WriteError::Sys { op, path: path.to_vec(), errno }
}

/// What the archive says of one entry: everything restore puts back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attrs {
    pub kind: FileType,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits, setuid, setgid and sticky included (`mode & 0o7777`).
    pub perm: u32,
    pub size: u64,
    pub nlink: u32,
    pub atime: (i64, u32),
    pub mtime: (i64, u32),
    rdev: (u32, u32),
    dev: u64,
    ino: u64,
}

impl Attrs {
    fn from_statx(st: &Statx) -> Attrs {
        Attrs {
            kind: FileType::from_raw_mode(u32::from(st.stx_mode)),
            uid: st.stx_uid,
            gid: st.stx_gid,
            perm: u32::from(st.stx_mode) & 0o7777,
            size: st.stx_size,
            nlink: st.stx_nlink,
            atime: (st.stx_atime.tv_sec, st.stx_atime.tv_nsec),
            mtime: (st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec),
            rdev: (st.stx_rdev_major, st.stx_rdev_minor),
            dev: (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor),
            ino: st.stx_ino,
        }
    }

    fn times(&self) -> Timestamps {
        let ts = |(sec, nsec): (i64, u32)| Timespec { tv_sec: sec, tv_nsec: nsec.into() };
        Timestamps { last_access: ts(self.atime), last_modification: ts(self.mtime) }
    }

    fn owner(&self) -> (Option<Uid>, Option<Gid>) {
        (Some(Uid::from_raw_unchecked(self.uid)), Some(Gid::from_raw_unchecked(self.gid)))
    }
}

/// The attributes of `name` in `dir`; a symlink is not followed.
pub fn attrs_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<Attrs, Errno> {
    let flags = AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT;
    rustix::fs::statx(dir, name, flags, ATTR_MASK).map(|st| Attrs::from_statx(&st))
}

/// The attributes of an open file.
pub fn attrs_of(fd: BorrowedFd<'_>) -> Result<Attrs, Errno> {
    rustix::fs::statx(fd, c"", AtFlags::EMPTY_PATH, ATTR_MASK).map(|st| Attrs::from_statx(&st))
}

/// What lies on the way to a destination, looked at without following
/// anything.
#[derive(Debug)]
pub enum Way {
    /// Directories all the way down to `dir`, the deepest that exists; the
    /// components from index `missing` on do not exist.
    Open { dir: OwnedFd, missing: usize },
    /// Component `at` is not a directory (for a symlink, its target).
    Blocked { at: usize, kind: FileType, target: Option<Vec<u8>> },
}

/// Walks the directories `comps` (names, no `/`) down from `root`, never
/// through a symlink (crossing mounts).
pub fn walk_dirs(root: BorrowedFd<'_>, comps: &[&[u8]]) -> Result<Way, Errno> {
    let mut dir = open_beneath(root, b"", DIR, true)?;
    for (at, comp) in comps.iter().enumerate() {
        let kind = match attrs_at(dir.as_fd(), comp) {
            Ok(a) => a.kind,
            Err(Errno::NOENT) => return Ok(Way::Open { dir, missing: at }),
            Err(e) => return Err(e),
        };
        match kind {
            FileType::Directory => dir = open_beneath(dir.as_fd(), comp, DIR, true)?,
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&dir, *comp, Vec::new()).ok().map(|t| t.into_bytes());
                return Ok(Way::Blocked { at, kind, target });
            }
            kind => return Ok(Way::Blocked { at, kind, target: None }),
        }
    }
    Ok(Way::Open { dir, missing: comps.len() })
}

/// Opens `name` of an archive directory read-only: no symlink, no mount,
/// no access time written (as every read of [`open_beneath`]).
fn open_src(dir: BorrowedFd<'_>, name: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
    open_beneath(dir, name, flags, false)
}

/// Opens the archive directory `name` in `dir` read-only (see [`Copier`]).
pub fn open_archive_dir(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    open_src(dir, name, DIR)
}

/// How many directories of a [`Chain`] stay open at once: enough that an
/// ordinary tree is walked without opening one twice, few enough that a
/// restore holds a few dozen descriptors however deep its path goes.
const OPEN_LEVELS: usize = 4;

/// Which tree a [`Chain`] walks, for its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// An archive of an old root (read-only).
    Archive,
    /// Inside a staging directory.
    Staging,
}

impl Side {
    fn shown(self) -> &'static str {
        match self {
            Side::Archive => " (archive)",
            Side::Staging => "",
        }
    }

    fn reopen(self) -> &'static str {
        match self {
            Side::Archive => "reopen (archive)",
            Side::Staging => "reopen",
        }
    }
}

/// Directories walked down from a base directory one name at a time,
/// never through a symlink or into a mount, with at most [`OPEN_LEVELS`]
/// of them open however deep the walk goes: a user can nest directories
/// far deeper than the open files a process may hold.
///
/// Each level's attributes are recorded as it is entered. Coming back up
/// to a level whose descriptor was closed, the chain opens it again from
/// the base by name ([`open_beneath`], no symlink, no mount) and checks
/// that it is the same directory (`st_dev`, `st_ino`): one moved or
/// replaced meanwhile is [`WriteError::Changed`], never used.
#[derive(Debug)]
pub struct Chain<B: AsFd> {
    base: B,
    side: Side,
    /// The base's path, for messages (below the staging directory).
    shown: Vec<u8>,
    names: Vec<Vec<u8>>,
    attrs: Vec<Attrs>,
    /// The descriptors of the deepest levels, the deepest last.
    open: VecDeque<OwnedFd>,
}

impl<B: AsFd> Chain<B> {
    /// A chain at `base` itself (depth 0); `shown` is its path in messages.
    pub fn new(base: B, side: Side, shown: &[u8]) -> Chain<B> {
        Chain {
            base,
            side,
            shown: shown.to_vec(),
            names: Vec::new(),
            attrs: Vec::new(),
            open: VecDeque::new(),
        }
    }

    /// How many levels below the base the chain is.
    pub fn depth(&self) -> usize {
        self.names.len()
    }

    /// The attributes of level `i` (0 is the first below the base), as
    /// recorded when it was entered.
    pub fn attrs(&self, i: usize) -> Option<&Attrs> {
        self.attrs.get(i)
    }

    /// The deepest level's directory (the base at depth 0).
    pub fn dir(&self) -> Result<BorrowedFd<'_>, WriteError> {
        self.fd().ok_or_else(|| WriteError::Sys {
            op: self.side.reopen(),
            path: self.path(self.depth()),
            errno: Errno::BADF,
        })
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self.open.back() {
            Some(fd) => Some(fd.as_fd()),
            None if self.names.is_empty() => Some(self.base.as_fd()),
            // A failed reopen left the deepest level closed.
            None => None,
        }
    }

    /// Opens the directory `name` of the deepest level, to [`Chain::push`]
    /// it: `ELOOP` for a symlink, `EXDEV` for a mount point.
    pub fn open(&self, name: &[u8]) -> Result<OwnedFd, Errno> {
        open_beneath(self.fd().ok_or(Errno::BADF)?, name, DIR, false)
    }

    /// Goes down into `name`, open as `fd` (by [`Chain::open`], or made by
    /// the caller in the deepest level), recording its attributes; closes
    /// the shallowest open level beyond [`OPEN_LEVELS`].
    pub fn push(&mut self, name: &[u8], fd: OwnedFd) -> Result<(), WriteError> {
        let a = attrs_of(fd.as_fd()).map_err(|e| WriteError::Sys {
            op: "stat",
            path: self.below(name),
            errno: e,
        })?;
        self.names.push(name.to_vec());
        self.attrs.push(a);
        self.open.push_back(fd);
        if self.open.len() > OPEN_LEVELS {
            self.open.pop_front();
        }
        Ok(())
    }

    /// Goes down into the directory `name` of the deepest level, and lists
    /// it: its names, last first (popped, they come in sorted order).
    pub fn enter(&mut self, name: &[u8]) -> Result<Vec<Vec<u8>>, WriteError> {
        let path = || self.below(name);
        let (open, list) = match self.side {
            Side::Archive => ("open (archive)", "read directory (archive)"),
            Side::Staging => ("open", "read directory"),
        };
        let fd = self.open(name).map_err(|errno| WriteError::Sys { op: open, path: path(), errno })?;
        let mut names =
            list_names(fd.as_fd()).map_err(|errno| WriteError::Sys { op: list, path: path(), errno })?;
        names.reverse();
        self.push(name, fd)?;
        Ok(names)
    }

    /// Goes back up one level, returning its name; the level above is
    /// reopened (and checked) when its descriptor was closed.
    pub fn pop(&mut self) -> Result<Vec<u8>, WriteError> {
        let name = self.names.pop().unwrap_or_default();
        self.attrs.pop();
        self.open.pop_back();
        if self.open.is_empty() && !self.names.is_empty() {
            self.reopen()?;
        }
        Ok(name)
    }

    /// Opens the deepest [`OPEN_LEVELS`] levels again: the shallowest of
    /// them from the base by its path, each next one by name from the one
    /// above, each checked against what was recorded.
    fn reopen(&mut self) -> Result<(), WriteError> {
        let end = self.depth();
        let start = end.saturating_sub(OPEN_LEVELS);
        for i in start..end {
            let fd = match self.open.back() {
                None => open_beneath(self.base.as_fd(), &self.names[..=start].join(&b'/'), DIR, false),
                Some(above) => open_beneath(above.as_fd(), &self.names[i], DIR, false),
            };
            let path = || self.path(i + 1);
            let fd = fd.map_err(|errno| WriteError::Sys { op: self.side.reopen(), path: path(), errno })?;
            let now = attrs_of(fd.as_fd()).map_err(|errno| WriteError::Sys {
                op: self.side.reopen(),
                path: path(),
                errno,
            })?;
            let was = &self.attrs[i];
            if (now.kind, now.dev, now.ino) != (was.kind, was.dev, was.ino) {
                return Err(WriteError::Changed { path: path(), side: self.side });
            }
            self.open.push_back(fd);
        }
        Ok(())
    }

    /// The path of the first `n` levels, for messages.
    fn path(&self, n: usize) -> Vec<u8> {
        let mut path = self.shown.clone();
        for name in &self.names[..n.min(self.depth())] {
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name);
        }
        path
    }

    /// The path of `name` in the deepest level, for messages.
    fn below(&self, name: &[u8]) -> Vec<u8> {
        let mut path = self.path(self.depth());
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        path
    }
}

/// Entries and bytes (of regular files; hard links once) in `name` of the
/// archive directory `dir`, itself included: what a copy would make.
pub fn measure(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(u64, u64), WriteError> {
    let mut total = (0, 0);
    let mut linked = HashSet::new();
    let a = attrs_at(dir, name).map_err(on("stat", name))?;
    add_up(&a, &mut total, &mut linked);
    if a.kind != FileType::Directory {
        return Ok(total);
    }
    // Down the tree a few descriptors at a time (it may be deeper than
    // the open files allowed), the names left at each level kept.
    let mut chain = Chain::new(dir, Side::Archive, b"");
    let mut todo = vec![chain.enter(name)?];
    while let Some(names) = todo.last_mut() {
        let Some(child) = names.pop() else {
            todo.pop();
            chain.pop()?;
            continue;
        };
        let a = attrs_at(chain.dir()?, &child).map_err(on("stat", &child))?;
        add_up(&a, &mut total, &mut linked);
        if a.kind == FileType::Directory {
            todo.push(chain.enter(&child)?);
        }
    }
    Ok(total)
}

fn add_up(a: &Attrs, total: &mut (u64, u64), linked: &mut HashSet<(u64, u64)>) {
    total.0 += 1;
    if a.kind == FileType::RegularFile && (a.nlink < 2 || linked.insert((a.dev, a.ino))) {
        total.1 += a.size;
    }
}

/// Reads a buffer whose size `query` says, retried if it grew in between.
fn sized(
    query: impl Fn() -> Result<usize, Errno>,
    read: impl Fn(&mut [u8]) -> Result<usize, Errno>,
) -> Result<Vec<u8>, Errno> {
    for _ in 0..8 {
        let mut buf = vec![0; query()?];
        match read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::RANGE) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Errno::RANGE)
}

/// Extended attributes: names with values.
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Extended attributes the destination does not support: each entry (its
/// path in the staging directory) with the attribute's name.
pub type Unsupported = Vec<(Vec<u8>, Vec<u8>)>;

/// The extended attributes of an open file; none where the filesystem has
/// none.
fn read_xattrs(fd: BorrowedFd<'_>) -> Result<Xattrs, Errno> {
    let names = match sized(|| rustix::fs::flistxattr_query(fd), |buf| rustix::fs::flistxattr(fd, buf)) {
        Err(Errno::OPNOTSUPP) => return Ok(Vec::new()),
        other => other?,
    };
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        match sized(|| rustix::fs::fgetxattr_query(fd, name), |buf| rustix::fs::fgetxattr(fd, name, buf)) {
            Ok(value) => out.push((name.to_vec(), value)),
            Err(Errno::NODATA) => {} // removed meanwhile
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Removes `name` from `dir` and, for a directory, all below it: never
/// through a symlink, never into a mount point or another filesystem than
/// `dev` (a btrfs subvolume), a few descriptors open however deep it goes
/// ([`Chain`]; a directory moved meanwhile is `ESTALE`); the first failure
/// is returned after trying the rest.
fn remove_tree(dir: BorrowedFd<'_>, name: &[u8], dev: u64) -> Result<(), Errno> {
    let errno = |e: WriteError| e.errno().unwrap_or(Errno::STALE);
    let mut chain = Chain::new(dir, Side::Staging, b"");
    let Some(names) = remove_or_enter(&mut chain, name, dev)? else {
        return Ok(());
    };
    // Per level entered: the names left, and the first failure below it.
    let mut todo: Vec<(Vec<Vec<u8>>, Option<Errno>)> = vec![(names, None)];
    while let Some((names, failed)) = todo.last_mut() {
        if let Some(child) = names.pop() {
            match remove_or_enter(&mut chain, &child, dev) {
                Ok(Some(names)) => todo.push((names, None)),
                Ok(None) => {}
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
            continue;
        }
        let failed = failed.take();
        todo.pop();
        let name = chain.pop().map_err(errno)?;
        let result = match failed {
            Some(e) => Err(e),
            None => rustix::fs::unlinkat(chain.dir().map_err(errno)?, name.as_slice(), AtFlags::REMOVEDIR),
        };
        match (result, todo.last_mut()) {
            (Err(e), Some((_, above))) => {
                above.get_or_insert(e);
            }
            (result, None) => return result,
            (Ok(()), Some(_)) => {}
        }
    }
    Ok(())
}

/// Removes `name` from the chain's deepest directory unless it is a
/// directory; a directory (of `dev`) is entered and its names returned.
fn remove_or_enter<B: AsFd>(
    chain: &mut Chain<B>,
    name: &[u8],
    dev: u64,
) -> Result<Option<Vec<Vec<u8>>>, Errno> {
    let errno = |e: WriteError| e.errno().unwrap_or(Errno::STALE);
    let dir = chain.dir().map_err(errno)?;
    let a = attrs_at(dir, name)?;
    if a.kind != FileType::Directory {
        return rustix::fs::unlinkat(dir, name, AtFlags::empty()).map(|()| None);
    }
    if a.dev != dev {
        return Err(Errno::XDEV);
    }
    chain.enter(name).map(Some).map_err(errno)
}

/// How a finished entry went into place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Nothing was there.
    New,
    /// It took the place of what was there (now in the staging directory).
    Replaced,
}

/// A private directory beside the destination where restored entries are
/// built, then moved into place; removed with all in it when done (and on
/// drop).
#[derive(Debug)]
pub struct Staging {
    parent: OwnedFd,
    name: Vec<u8>,
    dir: OwnedFd,
    dev: u64,
    removed: bool,
    /// Use no `renameat2` flags, as on a filesystem without them (tests).
    plain_renames: bool,
}

/// The name under which [`Staging::place`] keeps what it replaces while the
/// filesystem cannot exchange two names.
const REPLACED: &[u8] = b".replaced";

impl Staging {
    /// Makes `.darlings-restore-PID` (or `-PID-N`) in `parent`: mode 0700,
    /// owned by this process's user, without ACLs.
    pub fn create(parent: OwnedFd) -> Result<Staging, WriteError> {
        let pid = std::process::id();
        for n in 0..100 {
            let name = match n {
                0 => format!("{STAGING_PREFIX}{pid}"),
                n => format!("{STAGING_PREFIX}{pid}-{n}"),
            }
            .into_bytes();
            match rustix::fs::mkdirat(&parent, name.as_slice(), Mode::from_raw_mode(0o700)) {
                Ok(()) => return Staging::claim(parent, name),
                Err(Errno::EXIST) => {}
                Err(e) => return Err(on("make directory", &name)(e)),
            }
        }
        Err(on("make directory", STAGING_PREFIX.as_bytes())(Errno::EXIST))
    }

    /// Opens the directory just made and checks that it is the one made:
    /// a user owning `parent` could have renamed it and put a directory of
    /// their own there in between. That one is not ours, or not 0700, or
    /// not empty; then nothing is done in it.
    fn claim(parent: OwnedFd, name: Vec<u8>) -> Result<Staging, WriteError> {
        let dir = open_beneath(parent.as_fd(), &name, DIR, false).map_err(on("open", &name))?;
        let a = attrs_of(dir.as_fd()).map_err(on("stat", &name))?;
        let empty = list_names(dir.as_fd()).map_err(on("read directory", &name))?.is_empty();
        if a.uid != rustix::process::geteuid().as_raw() || a.perm & 0o777 != 0o700 || !empty {
            return Err(WriteError::Raced(name));
        }
        // A default ACL of the parent would be inherited by all made inside.
        for acl in ["system.posix_acl_default", "system.posix_acl_access"] {
            match rustix::fs::fremovexattr(&dir, acl) {
                Ok(()) | Err(Errno::NODATA | Errno::OPNOTSUPP) => {}
                Err(e) => return Err(on("remove ACL of", &name)(e)),
            }
        }
        Ok(Staging { parent, name, dir, dev: a.dev, removed: false, plain_renames: false })
    }

    pub fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// Its name in the parent directory.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// Moves `entry` (made in the staging directory) to `dest` in the
    /// parent. Never over an existing entry (`EEXIST`), unless `replace`:
    /// then what is there, whatever it is, trades places with it (and is
    /// removed with the staging directory). Names are moved, never
    /// followed or opened.
    pub fn place(&self, entry: &[u8], dest: &[u8], replace: bool) -> Result<Placed, WriteError> {
        let err = on("move into place", dest);
        if replace {
            match self.rename2(entry, dest, RenameFlags::EXCHANGE) {
                Ok(()) => return Ok(Placed::Replaced),
                Err(Errno::NOENT) => {} // gone meanwhile: a plain move
                // No RENAME_EXCHANGE here (OpenZFS 2.1 takes no renameat2
                // flag): the old one first moves aside into the staging
                // directory.
                Err(Errno::INVAL) => {
                    match rustix::fs::renameat(&self.parent, dest, &self.dir, REPLACED) {
                        Ok(()) => {}
                        Err(Errno::NOENT) => return self.place_new(entry, dest).map(|()| Placed::New),
                        Err(e) => return Err(err(e)),
                    }
                    return match self.place_new(entry, dest) {
                        Ok(()) => Ok(Placed::Replaced),
                        Err(e) => {
                            let _ = rustix::fs::renameat(&self.dir, REPLACED, &self.parent, dest);
                            Err(e)
                        }
                    };
                }
                Err(e) => return Err(err(e)),
            }
        }
        self.place_new(entry, dest).map(|()| Placed::New)
    }

    fn place_new(&self, entry: &[u8], dest: &[u8]) -> Result<(), WriteError> {
        let err = on("move into place", dest);
        match self.rename2(entry, dest, RenameFlags::NOREPLACE) {
            // No RENAME_NOREPLACE here: look, then move. Something made in
            // between would be replaced as an entry (rename follows nothing).
            Err(Errno::INVAL) => match attrs_at(self.parent.as_fd(), dest) {
                Err(Errno::NOENT) => rustix::fs::renameat(&self.dir, entry, &self.parent, dest).map_err(err),
                Ok(_) => Err(err(Errno::EXIST)),
                Err(e) => Err(err(e)),
            },
            other => other.map_err(err),
        }
    }

    /// `renameat2` of `entry` here to `dest` in the parent.
    fn rename2(&self, entry: &[u8], dest: &[u8], flags: RenameFlags) -> Result<(), Errno> {
        if self.plain_renames {
            return Err(Errno::INVAL);
        }
        rustix::fs::renameat_with(&self.dir, entry, &self.parent, dest, flags)
    }

    /// Removes the staging directory and all in it. What cannot be removed
    /// (a mount point, a btrfs subvolume) stays, and the error says why.
    pub fn remove(mut self) -> Result<(), WriteError> {
        self.removed = true;
        self.clear()
    }

    fn clear(&self) -> Result<(), WriteError> {
        let err = on("remove", &self.name);
        // A descriptor of its own: listing reads from the file offset.
        let dir = open_beneath(self.dir.as_fd(), b"", DIR, false).map_err(on("open", &self.name))?;
        let mut first = None;
        for child in list_names(dir.as_fd()).map_err(on("read directory", &self.name))? {
            if let Err(e) = remove_tree(dir.as_fd(), &child, self.dev) {
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(err(e)),
            None => rustix::fs::unlinkat(&self.parent, self.name.as_slice(), AtFlags::REMOVEDIR).map_err(err),
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.clear();
        }
    }
}

/// Copies entries of an archive into a staging directory, each as it is in
/// the archive: regular files with their bytes, directories with their
/// contents, symlinks as links, FIFOs, sockets and devices as nodes; with
/// owner, permission bits (setuid, setgid and sticky included), access and
/// modification times, and for files and directories their extended
/// attributes (ACLs and file capabilities among them). Hard links among
/// the copied files stay hard links.
///
/// Paths (`rel`) are relative to the staging directory. Order per entry:
/// contents, owner (which clears setuid bits and capabilities), extended
/// attributes, mode, times — a directory's after all it holds.
pub struct Copier<'a> {
    base: BorrowedFd<'a>,
    links: HashMap<(u64, u64), Vec<u8>>,
    /// Entries made, and bytes copied.
    pub entries: u64,
    pub bytes: u64,
    /// Extended attributes the destination does not support (`EOPNOTSUPP`).
    pub unsupported: Unsupported,
}

impl<'a> Copier<'a> {
    pub fn new(staging: &'a Staging) -> Copier<'a> {
        Copier { base: staging.dir(), links: HashMap::new(), entries: 0, bytes: 0, unsupported: Vec::new() }
    }

    /// Copies `name` of the archive directory `src` into `dst` (a directory
    /// inside the staging directory; `rel` is the copy's path there).
    pub fn copy(
        &mut self,
        src: BorrowedFd<'_>,
        name: &[u8],
        dst: BorrowedFd<'_>,
        rel: &[u8],
    ) -> Result<(), WriteError> {
        let a = attrs_at(src, name).map_err(on("stat (archive)", rel))?;
        if a.kind != FileType::Directory {
            return self.copy_entry(src, name, dst, rel, &a);
        }
        // A tree may be deeper than the open files allowed: both sides are
        // walked a few descriptors at a time ([`Chain`]), each directory
        // finished after all it holds.
        let above = rel.strip_suffix(name).unwrap_or_default();
        let above = above.strip_suffix(b"/").unwrap_or(above);
        let mut from = Chain::new(src, Side::Archive, above);
        let mut to = Chain::new(dst, Side::Staging, above);
        let mut rel = rel.to_vec();
        // Per directory entered: its attributes, its path's length, the names left.
        let mut todo = vec![(a.clone(), rel.len(), self.enter(&mut from, &mut to, name, &a, &rel)?)];
        while let Some((_, len, names)) = todo.last_mut() {
            rel.truncate(*len);
            let Some(child) = names.pop() else {
                if let Some((a, _, _)) = todo.pop() {
                    self.finish(from.dir()?, to.dir()?, &a, &rel)?;
                }
                from.pop()?;
                to.pop()?;
                continue;
            };
            rel.push(b'/');
            rel.extend_from_slice(&child);
            let a = attrs_at(from.dir()?, &child).map_err(on("stat (archive)", &rel))?;
            if a.kind == FileType::Directory {
                let names = self.enter(&mut from, &mut to, &child, &a, &rel)?;
                todo.push((a, rel.len(), names));
            } else {
                self.copy_entry(from.dir()?, &child, to.dir()?, &rel, &a)?;
            }
        }
        Ok(())
    }

    /// Opens the archive's directory `name` (stat'ed as `a`) and makes its
    /// copy, both sides one level down; returns its names, last first.
    fn enter(
        &mut self,
        from: &mut Chain<BorrowedFd<'_>>,
        to: &mut Chain<BorrowedFd<'_>>,
        name: &[u8],
        a: &Attrs,
        rel: &[u8],
    ) -> Result<Vec<Vec<u8>>, WriteError> {
        let dir = from.open(name).map_err(on("open (archive)", rel))?;
        same(dir.as_fd(), a, rel)?;
        let mut names = list_names(dir.as_fd()).map_err(on("read directory (archive)", rel))?;
        names.reverse();
        let made = self.make_dir(to.dir()?, name, rel)?;
        from.push(name, dir)?;
        to.push(name, made)?;
        Ok(names)
    }

    /// Copies `name` (stat'ed as `a`), anything but a directory.
    fn copy_entry(
        &mut self,
        src: BorrowedFd<'_>,
        name: &[u8],
        dst: BorrowedFd<'_>,
        rel: &[u8],
        a: &Attrs,
    ) -> Result<(), WriteError> {
        match a.kind {
            FileType::RegularFile => self.copy_file(src, name, dst, rel, a),
            FileType::Symlink => {
                let target =
                    rustix::fs::readlinkat(src, name, Vec::new()).map_err(on("read link (archive)", rel))?;
                rustix::fs::symlinkat(target.as_bytes(), dst, name).map_err(on("make symlink", rel))?;
                self.entries += 1;
                self.finish_at(dst, name, a, rel, false)
            }
            FileType::Unknown => Err(WriteError::Unknown(rel.to_vec())),
            kind => {
                let dev = rustix::fs::makedev(a.rdev.0, a.rdev.1);
                rustix::fs::mknodat(dst, name, kind, Mode::from_raw_mode(0o600), dev)
                    .map_err(on("make node", rel))?;
                self.entries += 1;
                self.finish_at(dst, name, a, rel, true)
            }
        }
    }

    fn copy_file(
        &mut self,
        src: BorrowedFd<'_>,
        name: &[u8],
        dst: BorrowedFd<'_>,
        rel: &[u8],
        a: &Attrs,
    ) -> Result<(), WriteError> {
        if a.nlink > 1 {
            if let Some(first) = self.links.get(&(a.dev, a.ino)) {
                let (dir, last) = match first.iter().rposition(|&b| b == b'/') {
                    Some(i) => (open_beneath(self.base, &first[..i], DIR, false), &first[i + 1..]),
                    None => (open_beneath(self.base, b"", DIR, false), &first[..]),
                };
                let dir = dir.map_err(on("open", first))?;
                rustix::fs::linkat(&dir, last, dst, name, AtFlags::empty()).map_err(on("link", rel))?;
                self.entries += 1;
                return Ok(());
            }
        }
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
        let from = File::from(open_src(src, name, flags).map_err(on("open (archive)", rel))?);
        same(from.as_fd(), a, rel)?;
        let create = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let to =
            rustix::fs::openat(dst, name, create, Mode::from_raw_mode(0o600)).map_err(on("create", rel))?;
        let mut to = File::from(to);
        self.entries += 1;
        let io = |e: std::io::Error| on("copy", rel)(Errno::from_io_error(&e).unwrap_or(Errno::IO));
        self.bytes += std::io::copy(&mut &from, &mut to).map_err(io)?;
        self.finish(from.as_fd(), to.as_fd(), a, rel)?;
        if a.nlink > 1 {
            self.links.insert((a.dev, a.ino), rel.to_vec());
        }
        Ok(())
    }

    /// Makes the directory `name` in `dst` (inside the staging directory),
    /// mode 0700 until [`Copier::finish_dir`] gives it the archive's.
    pub fn make_dir(&mut self, dst: BorrowedFd<'_>, name: &[u8], rel: &[u8]) -> Result<OwnedFd, WriteError> {
        rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o700)).map_err(on("make directory", rel))?;
        self.entries += 1;
        open_beneath(dst, name, DIR, false).map_err(on("open", rel))
    }

    /// Gives the directory `to` (made by [`Copier::make_dir`]) the owner,
    /// extended attributes, mode and times of the archive's directory
    /// `from`; after all that goes inside it.
    pub fn finish_dir(
        &mut self,
        from: BorrowedFd<'_>,
        to: BorrowedFd<'_>,
        rel: &[u8],
    ) -> Result<(), WriteError> {
        let a = attrs_of(from).map_err(on("stat (archive)", rel))?;
        self.finish(from, to, &a, rel)
    }

    /// Owner, extended attributes, mode and times, on an open file.
    fn finish(
        &mut self,
        from: BorrowedFd<'_>,
        to: BorrowedFd<'_>,
        a: &Attrs,
        rel: &[u8],
    ) -> Result<(), WriteError> {
        let (uid, gid) = a.owner();
        rustix::fs::fchown(to, uid, gid).map_err(on("set owner of", rel))?;
        for (name, value) in read_xattrs(from).map_err(on("read extended attributes (archive)", rel))? {
            match rustix::fs::fsetxattr(to, name.as_slice(), &value, XattrFlags::empty()) {
                Ok(()) => {}
                Err(Errno::OPNOTSUPP) => self.unsupported.push((rel.to_vec(), name)),
                Err(e) => return Err(on("set extended attribute of", rel)(e)),
            }
        }
        rustix::fs::fchmod(to, Mode::from_raw_mode(a.perm)).map_err(on("set mode of", rel))?;
        rustix::fs::futimens(to, &a.times()).map_err(on("set times of", rel))
    }

    /// Owner, mode (`chmod`: not for symlinks) and times of `name` in
    /// `dst`, by name. Safe here only: `dst` is inside the staging
    /// directory, where nobody else can swap an entry.
    fn finish_at(
        &mut self,
        dst: BorrowedFd<'_>,
        name: &[u8],
        a: &Attrs,
        rel: &[u8],
        chmod: bool,
    ) -> Result<(), WriteError> {
        let (uid, gid) = a.owner();
        rustix::fs::chownat(dst, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(on("set owner of", rel))?;
        if chmod {
            rustix::fs::chmodat(dst, name, Mode::from_raw_mode(a.perm), AtFlags::empty())
                .map_err(on("set mode of", rel))?;
        }
        rustix::fs::utimensat(dst, name, &a.times(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(on("set times of", rel))
    }
}

/// Whether the archive's entry opened as `fd` is the one stat'ed as `a`
/// (an archive that changes while it is copied is an error).
fn same(fd: BorrowedFd<'_>, a: &Attrs, rel: &[u8]) -> Result<(), WriteError> {
    let now = attrs_of(fd).map_err(on("stat (archive)", rel))?;
    if (now.dev, now.ino, now.kind) == (a.dev, a.ino, a.kind) {
        Ok(())
    } else {
        Err(on("open (archive)", rel)(Errno::AGAIN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    use std::path::Path;

    fn open(path: &Path) -> OwnedFd {
        rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).expect("open")
    }

    #[test]
    fn the_way_down_stops_at_a_symlink_and_names_its_target() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(t.path().join("a/b")).expect("mkdir");
        std::os::unix::fs::symlink("/etc", t.path().join("a/link")).expect("symlink");
        std::fs::write(t.path().join("a/file"), b"").expect("write");
        let root = open(t.path());
        match walk_dirs(root.as_fd(), &[b"a", b"b", b"c", b"d"]).expect("walk") {
            Way::Open { missing, .. } => assert_eq!(missing, 2),
            other => panic!("{other:?}"),
        }
        match walk_dirs(root.as_fd(), &[b"a", b"link", b"x"]).expect("walk") {
            Way::Blocked { at, kind, target } => {
                assert_eq!((at, kind, target.as_deref()), (1, FileType::Symlink, Some(&b"/etc"[..])));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            walk_dirs(root.as_fd(), &[b"a", b"file", b"x"]).expect("walk"),
            Way::Blocked { at: 1, kind: FileType::RegularFile, .. }
        ));
        assert_eq!(walk_dirs(root.as_fd(), &[b".."]).err(), Some(Errno::INVAL));
    }

    /// An archive with every kind of entry and nasty names; copied, it is
    /// the same entry by entry, and hard links stay linked.
    #[test]
    fn a_copy_keeps_contents_owner_mode_times_links_and_xattrs() {
        let t = tempfile::tempdir().expect("tempdir");
        let src = t.path().join("archive/d");
        let odd = "sub dir\n\x1b[31m";
        std::fs::create_dir_all(src.join(odd)).expect("mkdir");
        std::fs::write(src.join(odd).join("f"), b"content").expect("write");
        std::fs::hard_link(src.join(odd).join("f"), src.join("hard")).expect("link");
        std::os::unix::fs::symlink("/outside", src.join("link")).expect("symlink");
        rustix::fs::mkfifoat(open(&src), "fifo", Mode::from_raw_mode(0o640)).expect("mkfifo");
        std::fs::set_permissions(src.join(odd), std::fs::Permissions::from_mode(0o2750)).expect("chmod");
        let xattrs =
            rustix::fs::setxattr(src.join("hard").as_path(), "user.k", b"v", XattrFlags::empty()).is_ok();
        let old = Timestamps {
            last_access: Timespec { tv_sec: 1_000_000, tv_nsec: 5 },
            last_modification: Timespec { tv_sec: 2_000_000, tv_nsec: 7 },
        };
        for p in [src.join(odd), src.join("link"), src.clone()] {
            rustix::fs::utimensat(rustix::fs::CWD, p.as_path(), &old, AtFlags::SYMLINK_NOFOLLOW)
                .expect("utimensat");
        }

        let dest = t.path().join("root");
        std::fs::create_dir(&dest).expect("mkdir");
        let staging = Staging::create(open(&dest)).expect("staging");
        let mut copier = Copier::new(&staging);
        let archive = open(&t.path().join("archive"));
        copier.copy(archive.as_fd(), b"d", staging.dir(), b"d").expect("copy");
        assert_eq!((copier.entries, copier.bytes), (6, 7));
        assert_eq!(measure(archive.as_fd(), b"d").expect("measure"), (6, 7));
        assert_eq!(staging.place(b"d", b"d", false).expect("place"), Placed::New);
        staging.remove().expect("remove");

        let got = dest.join("d");
        assert_eq!(std::fs::read(got.join(odd).join("f")).expect("read"), b"content");
        let meta = |p: &Path| std::fs::symlink_metadata(p).expect("lstat");
        assert_eq!(meta(&got.join("hard")).ino(), meta(&got.join(odd).join("f")).ino());
        assert_eq!(meta(&got.join(odd)).mode() & 0o7777, 0o2750);
        assert_eq!(meta(&got.join("fifo")).mode() & 0o7777, 0o640);
        assert!(meta(&got.join("fifo")).file_type().is_fifo());
        for p in [got.join(odd), got.join("link"), got.clone()] {
            assert_eq!((meta(&p).mtime(), meta(&p).mtime_nsec()), (2_000_000, 7), "{p:?}");
            assert_eq!((meta(&p).atime(), meta(&p).atime_nsec()), (1_000_000, 5), "{p:?}");
        }
        assert_eq!(std::fs::read_link(got.join("link")).expect("readlink"), Path::new("/outside"));
        if xattrs {
            let mut buf = [0u8; 8];
            let n =
                rustix::fs::getxattr(got.join("hard").as_path(), "user.k", &mut buf[..]).expect("getxattr");
            assert_eq!(&buf[..n], b"v");
        }
        // Nothing is left beside it.
        let names: Vec<_> =
            std::fs::read_dir(&dest).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, ["d"]);
    }

    /// What is at the destination is moved as a name: a symlink's target and
    /// a FIFO are never touched or opened; without `replace`, nothing is.
    /// The same without `renameat2` flags (OpenZFS 2.1).
    #[test]
    fn placing_replaces_entries_never_what_they_point_to() {
        let t = tempfile::tempdir().expect("tempdir");
        let (dest, outside) = (t.path().join("root"), t.path().join("outside"));
        std::fs::create_dir_all(&dest).expect("mkdir");
        std::fs::write(&outside, b"outside").expect("write");
        std::os::unix::fs::symlink(&outside, dest.join("link")).expect("symlink");
        rustix::fs::mkfifoat(open(&dest), "fifo", Mode::from_raw_mode(0o600)).expect("mkfifo");
        std::fs::create_dir_all(dest.join("dir/full")).expect("mkdir");
        for (name, plain) in [("link", false), ("fifo", false), ("dir", false), ("link", true), ("dir", true)]
        {
            let mut staging = Staging::create(open(&dest)).expect("staging");
            staging.plain_renames = plain;
            let made = rustix::fs::openat(
                staging.dir(),
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
                Mode::from_raw_mode(0o644),
            )
            .expect("create");
            rustix::io::write(&made, b"restored").expect("write");
            let refused = staging.place(name.as_bytes(), name.as_bytes(), false).expect_err("exists");
            assert_eq!(refused.errno(), Some(Errno::EXIST));
            assert_eq!(
                staging.place(name.as_bytes(), name.as_bytes(), true).expect("place"),
                Placed::Replaced
            );
            staging.remove().expect("the replaced entry is removed");
            assert_eq!(std::fs::read(dest.join(name)).expect("read"), b"restored");
            if name != "fifo" {
                // Back to what the next round replaces.
                std::fs::remove_file(dest.join(name)).expect("rm");
                match name {
                    "link" => std::os::unix::fs::symlink(&outside, dest.join(name)).expect("symlink"),
                    _ => std::fs::create_dir_all(dest.join("dir/full")).expect("mkdir"),
                }
            }
        }
        assert_eq!(std::fs::read(&outside).expect("read"), b"outside");
        let names: Vec<_> =
            std::fs::read_dir(&dest).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn a_staging_directory_someone_else_made_is_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = t.path().join(".darlings-restore-x");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let err = Staging::claim(open(t.path()), b".darlings-restore-x".to_vec()).expect_err("not private");
        assert!(matches!(err, WriteError::Raced(_)), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::fs::write(dir.join("planted"), b"").expect("write");
        let err = Staging::claim(open(t.path()), b".darlings-restore-x".to_vec()).expect_err("not empty");
        assert!(matches!(err, WriteError::Raced(_)), "{err}");
    }

    /// Back up past the descriptors it kept, a chain opens each level again
    /// by name and checks it is the one it entered: a directory swapped in
    /// meanwhile is refused, with its path.
    #[test]
    fn a_chain_reopens_what_it_closed_and_refuses_a_swapped_directory() {
        let t = tempfile::tempdir().expect("tempdir");
        let names: Vec<String> = (0..10).map(|i| format!("l{i}")).collect();
        std::fs::create_dir_all(t.path().join(names.join("/"))).expect("mkdir");
        let base = open(t.path());
        let mut chain = Chain::new(base.as_fd(), Side::Staging, b"top");
        for name in &names {
            let fd = chain.open(name.as_bytes()).expect("open");
            chain.push(name.as_bytes(), fd).expect("push");
        }
        assert_eq!((chain.depth(), chain.open.len()), (10, OPEN_LEVELS));
        for _ in 0..4 {
            chain.pop().expect("pop");
        }
        let six = std::fs::metadata(t.path().join(names[..6].join("/"))).expect("stat");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(attrs_of(chain.dir().expect("dir")).expect("stat").ino, six.ino());
        assert_eq!(chain.attrs(5).map(|a| a.ino), Some(six.ino()));
        // l0/l1 is replaced by another directory of that name.
        std::fs::rename(t.path().join("l0/l1"), t.path().join("l0/moved")).expect("rename");
        std::fs::create_dir_all(t.path().join("l0/l1/l2/l3")).expect("mkdir");
        let mut err = None;
        while chain.depth() > 0 && err.is_none() {
            err = chain.pop().err();
        }
        let err = err.expect("the swap is seen");
        assert_eq!(err, WriteError::Changed { path: b"top/l0/l1".to_vec(), side: Side::Staging });
        assert!(err.to_string().starts_with("top/l0/l1 is no longer the directory"), "{err}");
    }

    /// A chain deeper than the descriptors a chain keeps: copied level by
    /// level with each one's mode and times, measured, and removed.
    #[test]
    fn deep_trees_are_copied_measured_and_removed_level_by_level() {
        const DEPTH: u32 = 200;
        let t = tempfile::tempdir().expect("tempdir");
        let archive = t.path().join("archive");
        let mut dir = archive.join("top");
        for level in 0..DEPTH {
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(dir.join("f"), level.to_string()).expect("write");
            dir = dir.join("d");
        }
        // Modes and times bottom up (a directory's mtime moves as entries are made in it).
        let mut dir = archive.join("top");
        let mut dirs = Vec::new();
        for _ in 0..DEPTH {
            dirs.push(dir.clone());
            dir = dir.join("d");
        }
        for (level, dir) in dirs.iter().enumerate().rev() {
            let level = u32::try_from(level).expect("level");
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700 + level % 64))
                .expect("chmod");
            let when = Timestamps {
                last_access: Timespec { tv_sec: 1_000_000, tv_nsec: 0 },
                last_modification: Timespec { tv_sec: 2_000_000 + i64::from(level), tv_nsec: 3 },
            };
            rustix::fs::utimensat(rustix::fs::CWD, dir.as_path(), &when, AtFlags::empty())
                .expect("utimensat");
        }
        let from = open(&archive);
        assert_eq!(measure(from.as_fd(), b"top").expect("measure"), (2 * u64::from(DEPTH), 490));
        let dest = t.path().join("root");
        std::fs::create_dir(&dest).expect("mkdir");
        let staging = Staging::create(open(&dest)).expect("staging");
        let mut copier = Copier::new(&staging);
        copier.copy(from.as_fd(), b"top", staging.dir(), b"top").expect("copy");
        assert_eq!((copier.entries, copier.bytes), (2 * u64::from(DEPTH), 490));
        assert_eq!(staging.place(b"top", b"top", false).expect("place"), Placed::New);
        staging.remove().expect("remove");
        use std::os::unix::fs::MetadataExt;
        for (level, dir) in dirs.iter().enumerate() {
            let got = dest.join(dir.strip_prefix(&archive).expect("below"));
            let (want, meta) =
                (std::fs::metadata(dir).expect("stat"), std::fs::metadata(&got).expect("stat"));
            assert_eq!(
                (meta.mode(), meta.mtime(), meta.mtime_nsec()),
                (want.mode(), want.mtime(), 3),
                "{level}"
            );
            assert_eq!(std::fs::read_to_string(got.join("f")).expect("read"), level.to_string());
        }
        // Removed the same way, whole.
        let root = open(&dest);
        let dev = attrs_of(root.as_fd()).expect("stat").dev;
        remove_tree(root.as_fd(), b"top", dev).expect("remove");
        assert!(!dest.join("top").exists());
    }

    /// Removal follows no symlink: what a link inside points to stays.
    #[test]
    fn removing_a_tree_never_follows_a_link_out_of_it() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(t.path().join("keep")).expect("mkdir");
        std::fs::write(t.path().join("keep/precious"), b"x").expect("write");
        std::fs::create_dir_all(t.path().join("gone/sub")).expect("mkdir");
        std::os::unix::fs::symlink(t.path().join("keep"), t.path().join("gone/sub/link")).expect("symlink");
        let dir = open(t.path());
        let dev = attrs_of(dir.as_fd()).expect("stat").dev;
        remove_tree(dir.as_fd(), b"gone", dev).expect("remove");
        assert!(!t.path().join("gone").exists());
        assert!(t.path().join("keep/precious").exists());
        assert_eq!(remove_tree(dir.as_fd(), b"keep", dev + 1), Err(Errno::XDEV));
        assert!(t.path().join("keep/precious").exists());
    }
}
