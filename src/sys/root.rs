//! Reading inside an audited root: the one way darlings opens, stats or
//! reads a path of the tree it audits.
//!
//! darlings runs as root, and every path that reaches this module came from
//! the audited system (a diff line, a JSON document, a configuration file,
//! a symlink): each one is hostile. So every access starts from the root's
//! directory descriptor and lets the kernel enforce the confinement:
//!
//! - [`open_in_root`] resolves like a chroot would (`openat2` with
//!   `RESOLVE_IN_ROOT`): symlinks are followed, but an absolute target or a
//!   `..` lands inside the root. NixOS `/etc` is links into `/nix/store`;
//!   they must mean `ROOT/nix/store`, never this machine's store.
//! - [`open_beneath`], [`stat_beneath`] and [`read_link_beneath`] follow no
//!   symlink in any component (`RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH`) and,
//!   unless asked, cross no mount (`RESOLVE_NO_XDEV`): a path named by a diff
//!   must name exactly that object of the root filesystem. A symlink on the
//!   way fails with `ELOOP`, a mount point on the way with `EXDEV`, so
//!   callers can say "under a symlink" or "under a mount point".
//! - [`read_config`] reads a configuration file of the root: a regular file
//!   only, checked on an `O_PATH` descriptor before it is opened for reading
//!   (a FIFO would block the audit forever, a device could stream forever
//!   or act on being opened), at most [`MAX_CONFIG`] bytes. [`read_given`]
//!   does the same for a file named on the command line, where a FIFO is
//!   fine (`--impermanence <(nix eval ...)`); [`open_given`] is its check
//!   alone, for a file read as a stream (a saved diff).
//!
//! Reading leaves the tree as it was, access times included: every open
//! for reading asks for `O_NOATIME` ([`no_atime`]), so an audit does not
//! touch the atime of each directory it lists and file it reads on a
//! filesystem mounted `strictatime` (or `relatime`, once a day). The kernel
//! grants it to the owner and to `CAP_FOWNER` (root); anyone else reads as
//! before.
//!
//! Writing inside a root (`restore`) is [`write`]'s: by descriptor, in a
//! private directory, moved into place by one rename.
//!
//! Untrusted relative paths are checked first ([`check_relative`]): a `.`,
//! `..` or empty component, or a NUL byte, is refused, never interpreted.
//!
//! Kernels without `openat2` (before Linux 5.6): no-symlink opens walk the
//! path one component at a time with `O_NOFOLLOW` and compare mounts (as
//! safe, only slower); resolution inside the root is refused with `ENOSYS`
//! (a plain `openat` would resolve an absolute link on this machine).

use std::fmt;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, ResolveFlags, Statx, StatxFlags, CWD};

use super::meta::{Change, FileKind, Meta, ZFS_CONTROL_INO};
use rustix::io::Errno;

pub mod write;

/// The most a configuration file may hold: 8 MiB. Manifests, tmpfiles.d
/// files, `/etc/.clean` and the JSON of a large configuration are a few
/// hundred KiB at most; anything larger is not what it claims to be.
pub const MAX_CONFIG: u64 = 8 << 20;

/// Longest relative path handed to one lookup (`PATH_MAX` is 4096 with its
/// NUL); longer no-symlink paths are opened in chunks.
const CHUNK: usize = 4000;

/// How often a lookup that raced a rename (`EAGAIN`) is retried.
const RETRIES: usize = 8;

/// What `ENOSYS` from [`open_in_root`] means, for messages.
pub const NO_OPENAT2_MESSAGE: &str =
    "this kernel has no openat2 (Linux 5.6): links inside the audited root cannot be resolved safely";

/// Whether the kernel lacks `openat2`; probed once.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Why an untrusted path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("a `.` or `..` component")]
    Dot,
    #[error("an empty component")]
    Empty,
    #[error("a NUL byte")]
    Nul,
}

/// Checks a path relative to the root (leading `/`s are dropped: `/etc` and
/// `etc` name the same entry). The root itself is `.`.
pub fn check_relative(path: &[u8]) -> Result<&[u8], PathError> {
    let rel = trim_slashes(path);
    if rel.is_empty() {
        return Ok(b".");
    }
    if rel.contains(&0) {
        return Err(PathError::Nul);
    }
    for comp in rel.split(|&b| b == b'/') {
        match comp {
            b"" => return Err(PathError::Empty),
            b"." | b".." => return Err(PathError::Dot),
            _ => {}
        }
    }
    Ok(rel)
}

fn trim_slashes(path: &[u8]) -> &[u8] {
    let start = path.iter().position(|&b| b != b'/').unwrap_or(path.len());
    &path[start..]
}

fn checked(path: &[u8]) -> Result<&[u8], Errno> {
    check_relative(path).map_err(|_| Errno::INVAL)
}

/// Opens `rel` below `root` as if `root` were `/`: symlinks are followed,
/// absolute targets and `..` stay inside `root`; magic links (`/proc`) are
/// refused. `ENOSYS` on kernels without `openat2`.
pub fn open_in_root(root: BorrowedFd<'_>, rel: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
    let rel = checked(rel)?;
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    no_atime(flags | OFlags::CLOEXEC, |flags| match openat2(root, rel, flags, resolve) {
        Some(result) => result,
        None => Err(Errno::NOSYS),
    })
}

/// Opens with `open(flags)`, and `O_NOATIME` added when `flags` read
/// (not `O_PATH`, which reads nothing and refuses it): what darlings reads
/// keeps its access time. `O_NOATIME` is the owner's or `CAP_FOWNER`'s
/// (`EPERM` for anyone else): then the open is made without it.
pub(crate) fn no_atime(
    flags: OFlags,
    open: impl Fn(OFlags) -> Result<OwnedFd, Errno>,
) -> Result<OwnedFd, Errno> {
    if flags.contains(OFlags::PATH) {
        return open(flags);
    }
    match open(flags | OFlags::NOATIME) {
        Err(Errno::PERM) => open(flags),
        other => other,
    }
}

/// Opens the directory `rel` below `dir` the way the walks do: never
/// through a symlink, never onto another mount, keeping its access time
/// ([`no_atime`]). `rel` is a name read from a directory, or several
/// (never `.` or `..`). Without `openat2`, or when lookups keep racing
/// renames, a plain `openat` with `O_NOFOLLOW`: the walks have stat'ed
/// every component as a directory of this filesystem.
pub fn open_dir_at(dir: BorrowedFd<'_>, rel: &[u8]) -> Result<OwnedFd, Errno> {
    let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV | ResolveFlags::BENEATH;
    no_atime(DIR_FLAGS, |flags| match openat2(dir, rel, flags, resolve) {
        Some(Err(Errno::AGAIN)) | None => rustix::fs::openat(dir, rel, flags, Mode::empty()),
        Some(result) => result,
    })
}

/// Opens `rel` below `root` following no symlink in any component (a final
/// symlink gives `ELOOP`, unless `flags` has `O_PATH | O_NOFOLLOW`: then it
/// is the link itself) and, unless `cross_mounts`, entering no mount
/// (`EXDEV`). Paths longer than `PATH_MAX` are fine.
pub fn open_beneath(
    root: BorrowedFd<'_>,
    rel: &[u8],
    flags: OFlags,
    cross_mounts: bool,
) -> Result<OwnedFd, Errno> {
    let rel = checked(rel)?;
    no_atime(flags | OFlags::CLOEXEC, |flags| open_beneath_as(root, rel, flags, cross_mounts))
}

/// [`open_beneath`] of a checked path, with exactly `flags`.
fn open_beneath_as(
    root: BorrowedFd<'_>,
    rel: &[u8],
    flags: OFlags,
    cross_mounts: bool,
) -> Result<OwnedFd, Errno> {
    let mut resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    if !cross_mounts {
        resolve |= ResolveFlags::NO_XDEV;
    }
    let mut rest = rel;
    let mut current: Option<OwnedFd> = None;
    loop {
        let (head, tail) = split_chunk(rest);
        let from = current.as_ref().map_or(root, |fd| fd.as_fd());
        let step = if tail.is_empty() { flags } else { OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC };
        let fd = match openat2(from, head, step, resolve) {
            Some(result) => result?,
            None => open_stepwise(from, head, step, cross_mounts)?,
        };
        if tail.is_empty() {
            return Ok(fd);
        }
        current = Some(fd);
        rest = tail;
    }
}

/// Splits a checked path into a head shorter than [`CHUNK`] and the rest.
fn split_chunk(rel: &[u8]) -> (&[u8], &[u8]) {
    if rel.len() <= CHUNK {
        return (rel, b"");
    }
    // Names are at most 255 bytes, so a `/` always lies in reach.
    match rel[..=CHUNK].iter().rposition(|&b| b == b'/') {
        Some(cut) => (&rel[..cut], &rel[cut + 1..]),
        None => (rel, b""),
    }
}

/// `openat2`, retried when it raced a rename; `None` when the kernel has
/// no `openat2`.
fn openat2(
    dir: BorrowedFd<'_>,
    rel: &[u8],
    flags: OFlags,
    resolve: ResolveFlags,
) -> Option<Result<OwnedFd, Errno>> {
    if NO_OPENAT2.load(Ordering::Relaxed) {
        return None;
    }
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(dir, rel, flags, Mode::empty(), resolve) {
            Err(Errno::NOSYS) => {
                NO_OPENAT2.store(true, Ordering::Relaxed);
                return None;
            }
            Err(Errno::AGAIN) if tries < RETRIES => tries += 1,
            other => return Some(other),
        }
    }
}

/// [`open_beneath`] without `openat2`: one component at a time, each
/// opened with `O_NOFOLLOW` and its mount compared with its parent's.
fn open_stepwise(
    dir: BorrowedFd<'_>,
    rel: &[u8],
    flags: OFlags,
    cross_mounts: bool,
) -> Result<OwnedFd, Errno> {
    if rel == b"." {
        return rustix::fs::openat(dir, c".", flags, Mode::empty());
    }
    let step = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut current = rustix::fs::openat(dir, c".", step, Mode::empty())?;
    let mut mount = mount_of(current.as_fd())?;
    let comps: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let how = if last { flags | OFlags::NOFOLLOW } else { step };
        let next = match rustix::fs::openat(&current, *comp, how, Mode::empty()) {
            Ok(fd) => fd,
            // O_NOFOLLOW with O_DIRECTORY says ENOTDIR for a symlink.
            Err(Errno::NOTDIR | Errno::LOOP) if is_symlink(current.as_fd(), comp) => return Err(Errno::LOOP),
            Err(e) => return Err(e),
        };
        let here = mount_of(next.as_fd())?;
        if !cross_mounts && here != mount {
            return Err(Errno::XDEV);
        }
        mount = here;
        current = next;
    }
    Ok(current)
}

fn is_symlink(dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE)
        .is_ok_and(|st| FileType::from_raw_mode(u32::from(st.stx_mode)) == FileType::Symlink)
}

/// The device and (when the kernel says) mount id of an open file.
fn mount_of(fd: BorrowedFd<'_>) -> Result<(u64, Option<u64>), Errno> {
    let st = rustix::fs::statx(fd, c"", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)?;
    let dev = (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor);
    Ok((dev, (st.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id)))
}

/// Splits a checked path into its parent and last component.
fn parent_and_name(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (b".", rel),
    }
}

/// Stats `rel` below `root` following no symlink anywhere (the last
/// component is not followed either) and entering no mount on the way:
/// `ELOOP` when a parent is a symlink, `EXDEV` when it lies under a mount
/// point. A last component that is itself a mount point is stat'ed (the
/// mounted root: its mount id tells the caller).
pub fn stat_beneath(root: BorrowedFd<'_>, rel: &[u8], mask: StatxFlags) -> Result<Statx, Errno> {
    let rel = checked(rel)?;
    let flags = AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT;
    if rel == b"." {
        return rustix::fs::statx(root, c"", AtFlags::EMPTY_PATH, mask);
    }
    let (parent, name) = parent_and_name(rel);
    if parent == b"." {
        return rustix::fs::statx(root, name, flags, mask);
    }
    let dir = open_beneath(root, parent, OFlags::PATH | OFlags::DIRECTORY, false)?;
    rustix::fs::statx(&dir, name, flags, mask)
}

/// The target of the symlink at `rel`, reached like [`stat_beneath`].
pub fn read_link_beneath(root: BorrowedFd<'_>, rel: &[u8]) -> Result<Vec<u8>, Errno> {
    let rel = checked(rel)?;
    let (parent, name) = parent_and_name(rel);
    let target = if parent == b"." {
        rustix::fs::readlinkat(root, name, Vec::new())?
    } else {
        let dir = open_beneath(root, parent, OFlags::PATH | OFlags::DIRECTORY, false)?;
        rustix::fs::readlinkat(&dir, name, Vec::new())?
    };
    Ok(target.into_bytes())
}

/// Why a configuration file could not be read. Says nothing of the path:
/// the caller names the file the way its user knows it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}", errno_message(*.0))]
    Open(Errno),
    #[error("not a regular file (a {0})")]
    NotRegular(&'static str),
    #[error("larger than {} MiB (the most a configuration file may hold)", MAX_CONFIG >> 20)]
    TooLarge,
    #[error("replaced while being opened")]
    Replaced,
    #[error("{NO_OPENAT2_MESSAGE}")]
    NoOpenat2,
    #[error(transparent)]
    Read(std::io::Error),
}

impl ReadError {
    fn from_errno(e: Errno) -> ReadError {
        if e == Errno::NOSYS {
            ReadError::NoOpenat2
        } else {
            ReadError::Open(e)
        }
    }

    /// Whether the file does not exist (or a directory on its way).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Open(Errno::NOENT | Errno::NOTDIR))
    }
}

impl From<ReadError> for std::io::Error {
    fn from(e: ReadError) -> std::io::Error {
        match e {
            ReadError::Open(errno) => std::io::Error::from_raw_os_error(errno.raw_os_error()),
            ReadError::Read(io) => io,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

fn errno_message(e: Errno) -> String {
    std::io::Error::from_raw_os_error(e.raw_os_error()).to_string()
}

/// A file type in words, for errors.
pub fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "file of unknown type",
    }
}

/// Reads the configuration file `rel` of the root, resolved inside it
/// ([`open_in_root`]): a regular file of at most [`MAX_CONFIG`] bytes. A
/// FIFO, device, socket or directory is an error at once, without ever
/// being opened for reading.
pub fn read_config(root: BorrowedFd<'_>, rel: &[u8]) -> Result<Vec<u8>, ReadError> {
    let probe = open_in_root(root, rel, OFlags::PATH).map_err(ReadError::from_errno)?;
    let seen = regular(probe.as_fd())?;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = open_in_root(root, rel, flags).map_err(ReadError::from_errno)?;
    if regular(fd.as_fd())? != seen {
        return Err(ReadError::Replaced);
    }
    read_capped(std::fs::File::from(fd))
}

/// (device, inode) of a regular file; any other type is an error.
fn regular(fd: BorrowedFd<'_>) -> Result<(u64, u64), ReadError> {
    let st = rustix::fs::fstat(fd).map_err(ReadError::Open)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile if st.st_size < 0 || st.st_size as u64 > MAX_CONFIG => Err(ReadError::TooLarge),
        FileType::RegularFile => Ok((st.st_dev, st.st_ino)),
        other => Err(ReadError::NotRegular(kind_name(other))),
    }
}

/// Reads a file named on the command line (its symlinks are the user's
/// own: followed). A regular file or a FIFO (`<(...)`), at most
/// [`MAX_CONFIG`] bytes; a directory or device is an error.
pub fn read_given(path: &Path) -> Result<Vec<u8>, ReadError> {
    read_capped(open_given(path)?)
}

/// Opens a file named on the command line for reading, as [`read_given`]
/// decides: a regular file or a FIFO, never a device (`/dev/zero` streams
/// forever), a socket or a directory. For a file read as a stream, with
/// its own bound on what it keeps (a saved diff, line by line).
pub fn open_given(path: &Path) -> Result<std::fs::File, ReadError> {
    let probe = rustix::fs::openat(CWD, path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .map_err(ReadError::Open)?;
    let st = rustix::fs::fstat(&probe).map_err(ReadError::Open)?;
    let fifo = match FileType::from_raw_mode(st.st_mode) {
        FileType::Fifo => true,
        FileType::RegularFile => false,
        other => return Err(ReadError::NotRegular(kind_name(other))),
    };
    // Regular files of /proc and /sys are the kernel's: reading one may
    // take from it (/proc/kmsg hands each message to one reader) or never end.
    if is_kernel_interface(&rustix::fs::fstatfs(&probe).map_err(ReadError::Open)?) {
        return Err(ReadError::NotRegular("kernel interface file, of /proc or /sys"));
    }
    // A FIFO is opened blocking: its writer may not have opened it yet.
    let flags = OFlags::RDONLY | OFlags::NOCTTY | OFlags::CLOEXEC;
    let flags = if fifo { flags } else { flags | OFlags::NONBLOCK };
    let fd = rustix::fs::openat(CWD, path, flags, Mode::empty()).map_err(ReadError::Open)?;
    let now = rustix::fs::fstat(&fd).map_err(ReadError::Open)?;
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
        return Err(ReadError::Replaced);
    }
    Ok(std::fs::File::from(fd))
}

/// A file of procfs, sysfs, debugfs, tracefs, securityfs or configfs.
fn is_kernel_interface(fs: &rustix::fs::StatFs) -> bool {
    const KERNEL: [i64; 6] = [0x9fa0, 0x6265_6572, 0x6462_6720, 0x7472_6163, 0x7363_6673, 0x6265_6570];
    KERNEL.contains(&{ fs.f_type })
}

/// Reads at most [`MAX_CONFIG`] bytes; more is [`ReadError::TooLarge`].
pub fn read_capped(reader: impl Read) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    reader.take(MAX_CONFIG + 1).read_to_end(&mut out).map_err(ReadError::Read)?;
    if out.len() as u64 > MAX_CONFIG {
        return Err(ReadError::TooLarge);
    }
    Ok(out)
}

/// Where an open directory is on this machine (`/proc/self/fd`), to match
/// it against the mount table.
pub fn fd_path(fd: BorrowedFd<'_>) -> std::io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)))
}

/// An opened audited root (or blank tree, or storage root), the handle
/// every confined read starts from. Every read inside it
/// goes through [`crate::sys::root`]: confined to the root, whatever the
/// links and paths of the audited system say.
pub struct Root {
    fd: OwnedFd,
    dev: u64,
    mnt_id: Option<u64>,
}

impl Root {
    /// Opens `path` (symlinks in `path` itself are followed: it names the
    /// tree, it is not part of it).
    pub fn open(path: &Path) -> Result<Root, WalkError> {
        let err = |op, errno| WalkError { path: path.as_os_str().as_encoded_bytes().to_vec(), op, errno };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = no_atime(flags, |flags| rustix::fs::openat(CWD, path, flags, Mode::empty()))
            .map_err(|e| err(Op::Open, e))?;
        Root::from_fd(fd).map_err(|e| err(Op::Stat, e))
    }

    /// A root from a directory descriptor already open (a storage root, a
    /// detached clone of a mount).
    pub fn from_fd(fd: OwnedFd) -> Result<Root, Errno> {
        let st = rustix::fs::statx(&fd, c"", AtFlags::EMPTY_PATH, STATX_MASK)?;
        Ok(Root {
            dev: dev_of(&st),
            mnt_id: (st.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id),
            fd,
        })
    }

    /// Opens the directory `rel`, resolved inside this root (links followed,
    /// never out of it), as a root of its own: a storage root to walk.
    pub fn open_within(&self, rel: &[u8]) -> Result<Root, Errno> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOCTTY | OFlags::NONBLOCK;
        Root::from_fd(open_in_root(self.fd(), rel, flags)?)
    }

    /// Where this root is on this machine, to match the mount table.
    pub fn host_path(&self) -> std::io::Result<std::path::PathBuf> {
        fd_path(self.fd())
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Stats `rel` (a path relative to the root) following no symlink in
    /// any component and crossing no mount on the way (`ELOOP`, `EXDEV`;
    /// `EINVAL` for a `.` or `..` component), telling whether it lies on
    /// another filesystem than the root (a mount point itself).
    pub fn stat(&self, rel: &[u8]) -> Result<Meta, Errno> {
        stat_beneath(self.fd(), rel, STATX_MASK).map(|st| self.meta(&st))
    }

    /// Resolves `rel` inside the root as a chroot would (absolute symlink
    /// targets and `..` stay inside it), following symlinks, and stats what
    /// it names.
    pub fn resolve_stat(&self, rel: &[u8]) -> Result<Meta, Errno> {
        open_in_root(self.fd(), rel, OFlags::PATH)
            .and_then(|fd| rustix::fs::statx(&fd, c"", AtFlags::EMPTY_PATH, STATX_MASK))
            .map(|st| self.meta(&st))
    }

    /// The mount id of what `rel` names, resolved like [`Root::resolve_stat`]
    /// (`None` when the kernel does not say).
    pub fn resolve_mount_id(&self, rel: &[u8]) -> Result<Option<u64>, Errno> {
        let fd = open_in_root(self.fd(), rel, OFlags::PATH)?;
        let st = rustix::fs::statx(&fd, c"", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)?;
        Ok((st.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id))
    }

    /// Whether `rel` exists inside the root (resolved inside it; a final
    /// symlink is not followed).
    pub fn exists(&self, rel: &[u8]) -> Result<bool, Errno> {
        match open_in_root(self.fd(), rel, OFlags::PATH | OFlags::NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The target of the symlink at `rel` (no symlink followed on the way).
    pub fn read_link(&self, rel: &[u8]) -> Result<Vec<u8>, Errno> {
        read_link_beneath(self.fd(), rel)
    }

    /// Reads the configuration file at `rel`, resolved inside the root: a
    /// regular file of at most [`MAX_CONFIG`] bytes.
    pub fn read_file(&self, rel: &[u8]) -> std::io::Result<Vec<u8>> {
        Ok(self.read_config(rel)?)
    }

    /// [`Root::read_file`], with the reason for a refusal kept apart.
    pub fn read_config(&self, rel: &[u8]) -> Result<Vec<u8>, ReadError> {
        read_config(self.fd(), rel)
    }

    /// Opens the directory at `path` (as the audited system sees it)
    /// without following symlinks or crossing mounts.
    pub fn open_dir(&self, path: &[u8]) -> Result<OwnedFd, Errno> {
        open_beneath(self.fd(), path, DIR_FLAGS, false)
    }

    /// Opens the directory at `path`, resolved inside the root (a NixOS
    /// `/etc/tmpfiles.d` is a link into the Nix store).
    pub fn open_dir_in_root(&self, path: &[u8]) -> Result<OwnedFd, Errno> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOCTTY | OFlags::NONBLOCK;
        open_in_root(self.fd(), path, flags)
    }

    /// Stats `name` in the directory `dir` (opened from this root).
    pub fn stat_at(&self, dir: BorrowedFd<'_>, name: &[u8]) -> Result<Meta, Errno> {
        let st = rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT, STATX_MASK)?;
        Ok(self.meta(&st))
    }

    /// The metadata of a `statx` result, placed relative to this root.
    pub(crate) fn meta(&self, st: &rustix::fs::Statx) -> Meta {
        let dev = dev_of(st);
        let mount_known = self.mnt_id.is_some() && st.stx_mask & StatxFlags::MNT_ID.bits() != 0;
        let other_mount = match self.mnt_id {
            Some(root_mnt) if mount_known => st.stx_mnt_id != root_mnt,
            _ => false,
        };
        Meta {
            kind: FileKind::from_mode(u32::from(st.stx_mode)),
            size: st.stx_size,
            disk: st.stx_blocks.saturating_mul(512),
            mtime: st.stx_mtime.tv_sec,
            mtime_nsec: st.stx_mtime.tv_nsec,
            uid: st.stx_uid,
            gid: st.stx_gid,
            mode: u32::from(st.stx_mode),
            nlink: st.stx_nlink,
            ino: st.stx_ino,
            dev,
            // ZFS's `.zfs` control directory is not the dataset's content.
            other_fs: dev != self.dev || other_mount || (st.stx_ino == ZFS_CONTROL_INO && kind_is_dir(st)),
            // A btrfs subvolume's root directory is always inode 256.
            subvolume: dev != self.dev
                && mount_known
                && !other_mount
                && st.stx_ino == 256
                && FileKind::from_mode(u32::from(st.stx_mode)) == FileKind::Dir,
            change: Change::Present,
            known: true,
            ctime: None,
        }
    }
}

/// How directories of the audited tree are opened: never through a
/// symlink, never as a controlling terminal.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY);

pub(crate) const STATX_MASK: StatxFlags = StatxFlags::TYPE
    .union(StatxFlags::MODE)
    .union(StatxFlags::UID)
    .union(StatxFlags::GID)
    .union(StatxFlags::NLINK)
    .union(StatxFlags::INO)
    .union(StatxFlags::SIZE)
    .union(StatxFlags::BLOCKS)
    .union(StatxFlags::MTIME)
    .union(StatxFlags::MNT_ID);

fn kind_is_dir(st: &rustix::fs::Statx) -> bool {
    FileKind::from_mode(u32::from(st.stx_mode)) == FileKind::Dir
}

fn dev_of(st: &rustix::fs::Statx) -> u64 {
    (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor)
}

/// The operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Open,
    Read,
    Stat,
    ReadLink,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Open => "open directory",
            Op::Read => "read directory",
            Op::Stat => "stat",
            Op::ReadLink => "read link",
        }
    }
}

/// An error on one entry: a value, never an abort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkError {
    pub path: Vec<u8>,
    pub op: Op,
    pub errno: Errno,
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.op.name(),
            crate::sanitize::escape(&self.path),
            describe_errno(self.errno)
        )
    }
}

impl std::error::Error for WalkError {}

/// The message of an errno, with "entry vanished" for ENOENT mid-walk.
pub fn describe_errno(errno: Errno) -> String {
    if errno == Errno::NOENT {
        return "vanished during the walk (No such file or directory)".into();
    }
    std::io::Error::from_raw_os_error(errno.raw_os_error()).to_string()
}

/// The names in an open directory (`.` and `..` left out), sorted.
pub fn list_names(dir: BorrowedFd<'_>) -> Result<Vec<Vec<u8>>, Errno> {
    let mut names = Vec::new();
    NAMES_BUF.with_borrow_mut(|buf| {
        let mut entries = RawDir::new(dir, buf.spare_capacity_mut());
        while let Some(next) = entries.next() {
            let entry = next?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        Ok::<(), Errno>(())
    })?;
    names.sort_unstable();
    Ok(names)
}

thread_local! {
    static NAMES_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(64 * 1024));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn dir() -> (tempfile::TempDir, OwnedFd) {
        let t = tempfile::tempdir().expect("tempdir");
        let fd = rustix::fs::open(t.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).expect("open");
        (t, fd)
    }

    #[test]
    fn untrusted_paths_are_names_only() {
        assert_eq!(check_relative(b"/etc/x"), Ok(&b"etc/x"[..]));
        assert_eq!(check_relative(b"/"), Ok(&b"."[..]));
        assert_eq!(check_relative(b""), Ok(&b"."[..]));
        assert_eq!(check_relative(b"a\xff b"), Ok(&b"a\xff b"[..]));
        assert_eq!(check_relative(b"/../etc/shadow"), Err(PathError::Dot));
        assert_eq!(check_relative(b"a/./b"), Err(PathError::Dot));
        assert_eq!(check_relative(b"a/.."), Err(PathError::Dot));
        assert_eq!(check_relative(b"a//b"), Err(PathError::Empty));
        assert_eq!(check_relative(b"a/"), Err(PathError::Empty));
        assert_eq!(check_relative(b"a\0b"), Err(PathError::Nul));
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let (t, root) = dir();
        std::fs::create_dir_all(t.path().join("nix/store/x")).expect("mkdir");
        std::fs::write(t.path().join("nix/store/x/f"), b"inside").expect("write");
        std::fs::create_dir(t.path().join("etc")).expect("mkdir");
        symlink("/nix/store/x", t.path().join("etc/d")).expect("symlink");
        symlink("../../../../../../nix/store/x/f", t.path().join("etc/up")).expect("symlink");
        assert_eq!(read_config(root.as_fd(), b"etc/d/f").expect("read"), b"inside");
        assert_eq!(read_config(root.as_fd(), b"/etc/up").expect("read"), b"inside");
        assert!(matches!(read_config(root.as_fd(), b"etc/../etc/up"), Err(ReadError::Open(Errno::INVAL))));
    }

    #[test]
    fn no_symlink_anywhere_and_errors_say_which() {
        let (t, root) = dir();
        std::fs::create_dir_all(t.path().join("a/b")).expect("mkdir");
        std::fs::write(t.path().join("a/b/f"), b"12345").expect("write");
        symlink("/", t.path().join("a/up")).expect("symlink");
        symlink("b", t.path().join("a/l")).expect("symlink");
        let mask = StatxFlags::SIZE | StatxFlags::TYPE;
        assert_eq!(stat_beneath(root.as_fd(), b"a/b/f", mask).expect("stat").stx_size, 5);
        assert_eq!(stat_beneath(root.as_fd(), b"a/l/f", mask).err(), Some(Errno::LOOP));
        assert_eq!(stat_beneath(root.as_fd(), b"a/up/etc/passwd", mask).err(), Some(Errno::LOOP));
        assert_eq!(stat_beneath(root.as_fd(), b"a/b/../../..", mask).err(), Some(Errno::INVAL));
        let last = stat_beneath(root.as_fd(), b"a/l", mask).expect("a final link is stat'ed, not followed");
        assert_eq!(FileType::from_raw_mode(u32::from(last.stx_mode)), FileType::Symlink);
        assert_eq!(read_link_beneath(root.as_fd(), b"a/l").expect("readlink"), b"b");
        assert_eq!(read_link_beneath(root.as_fd(), b"a/up/proc/self/exe").err(), Some(Errno::LOOP));
        // The same without openat2.
        let step = OFlags::PATH | OFlags::DIRECTORY;
        assert!(open_stepwise(root.as_fd(), b"a/b", step, false).is_ok());
        assert_eq!(open_stepwise(root.as_fd(), b"a/l", step, false).err(), Some(Errno::LOOP));
        assert_eq!(open_stepwise(root.as_fd(), b"a/up/etc", step, false).err(), Some(Errno::LOOP));
    }

    #[test]
    fn long_paths_are_opened_in_chunks() {
        let (_t, root) = dir();
        let name = "d".repeat(200);
        let mut at = rustix::fs::openat(&root, c".", OFlags::PATH, Mode::empty()).expect("open");
        for _ in 0..25 {
            rustix::fs::mkdirat(&at, name.as_str(), Mode::from_raw_mode(0o755)).expect("mkdir");
            at = rustix::fs::openat(&at, name.as_str(), OFlags::PATH, Mode::empty()).expect("open");
        }
        let rel = vec![name.as_str(); 25].join("/");
        assert!(rel.len() > 4096);
        assert!(open_beneath(root.as_fd(), rel.as_bytes(), OFlags::PATH | OFlags::DIRECTORY, false).is_ok());
        let mask = StatxFlags::TYPE;
        assert!(stat_beneath(root.as_fd(), rel.as_bytes(), mask).is_ok());
    }

    #[test]
    fn config_files_are_regular_and_capped() {
        let (t, root) = dir();
        std::fs::create_dir(t.path().join("d")).expect("mkdir");
        rustix::fs::mkfifoat(&root, "fifo", Mode::from_raw_mode(0o600)).expect("mkfifo");
        assert!(matches!(read_config(root.as_fd(), b"fifo"), Err(ReadError::NotRegular("FIFO"))));
        assert!(matches!(read_config(root.as_fd(), b"d"), Err(ReadError::NotRegular("directory"))));
        assert!(read_config(root.as_fd(), b"missing").is_err_and(|e| e.is_not_found()));
        let big = std::fs::File::create(t.path().join("big")).expect("create");
        big.set_len(MAX_CONFIG + 1).expect("truncate");
        assert!(matches!(read_config(root.as_fd(), b"big"), Err(ReadError::TooLarge)));
        assert!(matches!(read_given(&t.path().join("d")), Err(ReadError::NotRegular("directory"))));
        assert!(matches!(read_given(Path::new("/dev/null")), Err(ReadError::NotRegular("character device"))));
        assert!(matches!(read_capped(std::io::repeat(0)), Err(ReadError::TooLarge)));
    }
}
