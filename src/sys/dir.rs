//! Directories a destructive step acts on, held as descriptors: what is
//! planned on a name is done on the inode the plan found, and a step
//! first checks that the name still leads there ([`Ident`]).
//!
//! Every lookup here follows no symlink and enters no other mount; a
//! rename is one `renameat2(RENAME_NOREPLACE)` between two held
//! directories: all or nothing, never onto something that appeared
//! meanwhile, never a copy (it fails with `EXDEV` across filesystems or
//! btrfs subvolumes instead).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

/// Which inode a name leads to: device and inode numbers (on btrfs every
/// subvolume has a device number of its own), and whether it is a
/// directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ident {
    pub dev: u64,
    pub ino: u64,
    pub dir: bool,
}

impl Ident {
    fn of(stat: &rustix::fs::Stat) -> Ident {
        Ident {
            dev: stat.st_dev,
            ino: stat.st_ino,
            dir: FileType::from_raw_mode(stat.st_mode) == FileType::Directory,
        }
    }
}

/// What `name` in `dir` is, not following a symlink.
pub fn ident_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<Ident, Errno> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map(|s| Ident::of(&s))
}

/// What a held descriptor is.
pub fn ident(fd: BorrowedFd<'_>) -> Result<Ident, Errno> {
    rustix::fs::fstat(fd).map(|s| Ident::of(&s))
}

/// What a path leads to as a program given it would see it (symlinks on
/// the way followed, the last one not): to check that a command given a
/// path acts on the inode the plan holds.
pub fn ident_of_path(path: &std::path::Path) -> Result<Ident, Errno> {
    rustix::fs::lstat(path).map(|s| Ident::of(&s))
}

/// Opens the directory `rel` (relative, one or more names; empty: `dir`
/// itself, reopened) below `dir`, following no symlink and entering no
/// other mount.
pub fn open_dir(dir: BorrowedFd<'_>, rel: &[u8]) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if rel.is_empty() {
        return rustix::fs::openat(dir, c".", flags, Mode::empty());
    }
    crate::sys::root::open_beneath(dir, rel, flags, false)
}

/// Splits a relative path into its directory (maybe empty) and last name.
pub fn split(rel: &[u8]) -> (&[u8], &[u8]) {
    let rel = rel.strip_suffix(b"/").unwrap_or(rel);
    match memchr::memrchr(b'/', rel) {
        Some(at) => (&rel[..at], &rel[at + 1..]),
        None => (&[], rel),
    }
}

/// Moves `from` in `from_dir` to `to` in `to_dir`, unless `to` exists.
pub fn rename_noreplace(
    from_dir: BorrowedFd<'_>,
    from: &[u8],
    to_dir: BorrowedFd<'_>,
    to: &[u8],
) -> Result<(), Errno> {
    rustix::fs::renameat_with(from_dir, from, to_dir, to, RenameFlags::NOREPLACE)
}

/// Makes directory `name` in `dir` (mode 0700: only root looks at what
/// is kept there).
pub fn make_dir(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
}

/// The names in a held directory (`.` and `..` left out).
pub fn names(dir: BorrowedFd<'_>) -> Result<Vec<Vec<u8>>, Errno> {
    let fd = open_dir(dir, b"")?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(fd.as_fd())? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

/// The most a file read here may hold.
pub const FILE_CAP: usize = 256 << 20;

/// The content of the regular file `name` in `dir` (`None`: there is
/// none), never through a symlink, never more than [`FILE_CAP`].
pub fn read_file_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<Option<Vec<u8>>, Errno> {
    use std::io::Read;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::RegularFile {
        return Err(Errno::INVAL);
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(FILE_CAP as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.raw_os_error().map_or(Errno::IO, Errno::from_raw_os_error))?;
    if bytes.len() > FILE_CAP {
        return Err(Errno::FBIG);
    }
    Ok(Some(bytes))
}

/// Writes `bytes` as the file `name` in `dir`, all or nothing: into a new
/// file beside it (mode 0600), synced, renamed over `name`, the directory
/// synced. A reader sees the old content or the new, never a part.
pub fn write_file_atomic(dir: BorrowedFd<'_>, name: &[u8], bytes: &[u8]) -> Result<(), Errno> {
    use std::io::Write;
    let mut tmp = b".".to_vec();
    tmp.extend_from_slice(name);
    tmp.extend_from_slice(format!(".{}.tmp", std::process::id()).as_bytes());
    let _ = rustix::fs::unlinkat(dir, tmp.as_slice(), AtFlags::empty());
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, tmp.as_slice(), flags, Mode::from_raw_mode(0o600))?;
    let written = (|| {
        let mut file = std::fs::File::from(fd);
        file.write_all(bytes).map_err(|e| e.raw_os_error().map_or(Errno::IO, Errno::from_raw_os_error))?;
        rustix::fs::fsync(&file)?;
        rustix::fs::renameat(dir, tmp.as_slice(), dir, name)?;
        rustix::fs::fsync(dir)
    })();
    if written.is_err() {
        let _ = rustix::fs::unlinkat(dir, tmp.as_slice(), AtFlags::empty());
    }
    written
}

/// Removes the file `name` from `dir` (there being none is fine), then
/// syncs the directory.
pub fn remove_file_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => rustix::fs::fsync(dir),
        Err(e) => Err(e),
    }
}

/// An extended attribute of a held file (`None`: it has none by that name).
pub fn get_xattr(fd: BorrowedFd<'_>, name: &str) -> Result<Option<Vec<u8>>, Errno> {
    let mut buf = vec![0u8; 65536];
    match rustix::fs::fgetxattr(fd, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Ok(Some(buf))
        }
        Err(Errno::NODATA) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets an extended attribute of a held file; an empty `value` removes it.
pub fn set_xattr(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> Result<(), Errno> {
    if value.is_empty() {
        return match rustix::fs::fremovexattr(fd, name) {
            Err(Errno::NODATA) => Ok(()),
            other => other,
        };
    }
    rustix::fs::fsetxattr(fd, name, value, rustix::fs::XattrFlags::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_written_whole_read_back_and_removed() {
        let t = tempfile::tempdir().unwrap();
        let dir = rustix::fs::open(t.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        assert_eq!(read_file_at(dir.as_fd(), b"r").unwrap(), None);
        write_file_atomic(dir.as_fd(), b"r", b"one").unwrap();
        write_file_atomic(dir.as_fd(), b"r", b"two").unwrap();
        assert_eq!(read_file_at(dir.as_fd(), b"r").unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(names(dir.as_fd()).unwrap(), [b"r".to_vec()], "no temporary file is left");
        std::os::unix::fs::symlink("r", t.path().join("link")).unwrap();
        assert!(read_file_at(dir.as_fd(), b"link").is_err(), "a symlink is never followed");
        remove_file_at(dir.as_fd(), b"r").unwrap();
        remove_file_at(dir.as_fd(), b"r").unwrap();
        assert_eq!(read_file_at(dir.as_fd(), b"r").unwrap(), None);
    }

    #[test]
    fn paths_split_at_their_last_name() {
        assert_eq!(split(b"root"), (&b""[..], &b"root"[..]));
        assert_eq!(split(b"a/b/root"), (&b"a/b"[..], &b"root"[..]));
        assert_eq!(split(b"a/root/"), (&b"a"[..], &b"root"[..]));
    }

    #[test]
    fn a_rename_never_replaces_and_a_symlink_is_no_directory() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("old")).unwrap();
        std::fs::create_dir(t.path().join("old/taken")).unwrap();
        std::fs::write(t.path().join("root"), "r").unwrap();
        std::os::unix::fs::symlink("old", t.path().join("link")).unwrap();
        let top = rustix::fs::open(t.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let link = open_dir(top.as_fd(), b"link").unwrap_err();
        assert!(link == Errno::LOOP || link == Errno::NOTDIR, "{link:?}");
        let old = open_dir(top.as_fd(), b"old").unwrap();
        assert_eq!(ident(old.as_fd()).unwrap(), ident_at(top.as_fd(), b"old").unwrap());
        assert_eq!(rename_noreplace(top.as_fd(), b"root", old.as_fd(), b"taken"), Err(Errno::EXIST));
        rename_noreplace(top.as_fd(), b"root", old.as_fd(), b"new").unwrap();
        assert_eq!(std::fs::read_to_string(t.path().join("old/new")).unwrap(), "r");
        let mut listed = names(old.as_fd()).unwrap();
        listed.sort();
        assert_eq!(listed, [b"new".to_vec(), b"taken".to_vec()]);
    }
}
