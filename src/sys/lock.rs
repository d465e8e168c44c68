//! One darlings at a time on a rollback target: an exclusive `flock(2)`.
//!
//! The lock is a file in `/run/darlings`, named after the target, that
//! its holder writes its pid into (so that the one refused can name it).
//! `/run` is a tmpfs: a lock file never outlives a boot, and `flock` is
//! released by the kernel when its holder dies, so neither the initrd nor
//! anyone after a crash ever waits on a dead holder. A target may also be
//! reached another way (a btrfs top-level volume mounted twice, from
//! another mount namespace): such targets are locked on their own
//! directory as well, with [`Lock::on_dir`].

use std::io::{Read, Seek};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;

/// Where lock files live.
pub const LOCK_DIR: &str = "/run/darlings";

/// How often a waiting run tries again.
const RETRY: Duration = Duration::from_millis(50);

/// A lock held until dropped (or until the process dies).
#[derive(Debug)]
pub struct Lock {
    _fds: Vec<OwnedFd>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it, still after `waited`.
    #[error("{what} is locked by another darlings{} (waited {}s; --wait SECONDS waits longer)", holder_text(*.holder), .waited.as_secs())]
    Held { what: String, holder: Option<u32>, waited: Duration },
    #[error("cannot lock {what}: {cause}")]
    Io { what: String, cause: std::io::Error },
}

fn holder_text(pid: Option<u32>) -> String {
    pid.map_or_else(|| " (its pid is not known: another mount namespace?)".into(), |p| format!(", pid {p}"))
}

impl Lock {
    /// Locks the file `name` in [`LOCK_DIR`] (made if missing, mode 0600,
    /// never through a symlink) and writes this process's pid into it.
    /// `what` names the target in messages.
    pub fn file(name: &str, what: &str, wait: Duration) -> Result<Lock, LockError> {
        let io = |cause: std::io::Error| LockError::Io { what: what.to_owned(), cause };
        let dir = Path::new(LOCK_DIR);
        std::fs::create_dir_all(dir).map_err(io)?;
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd =
            rustix::fs::open(lock_path(name), flags, Mode::from_raw_mode(0o600)).map_err(|e| io(e.into()))?;
        let meta = rustix::fs::fstat(&fd).map_err(|e| io(e.into()))?;
        if rustix::fs::FileType::from_raw_mode(meta.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(io(std::io::Error::other(format!(
                "{} is not a regular file",
                lock_path(name).display()
            ))));
        }
        let file = std::fs::File::from(fd);
        take(file.as_fd(), what, wait, || {
            holder(file.as_fd()).or_else(|| read_pid(&mut file.try_clone().ok()?))
        })?;
        // Held: say who holds it, for people who look (`cat`). One write
        // of a fixed width, so that nobody reads half of it.
        let _ = rustix::io::pwrite(&file, format!("{:>10}\n", std::process::id()).as_bytes(), 0);
        Ok(Lock { _fds: vec![file.into()] })
    }

    /// Both locks, held together; `other` (taken second) is let go first,
    /// so that no one ever takes this one and then finds `other` held.
    #[must_use]
    pub fn and(mut self, mut other: Lock) -> Lock {
        other._fds.append(&mut self._fds);
        other
    }

    /// Locks a directory itself (opened `O_DIRECTORY|O_NOFOLLOW`); its
    /// holder is named when `/proc/locks` shows it (never this process,
    /// which holds the lock file of the same target by then).
    pub fn on_dir(dir: OwnedFd, what: &str, wait: Duration) -> Result<Lock, LockError> {
        take(dir.as_fd(), what, wait, || holder(dir.as_fd()).filter(|&p| p != std::process::id()))?;
        Ok(Lock { _fds: vec![dir] })
    }
}

/// The path of lock file `name`.
pub fn lock_path(name: &str) -> PathBuf {
    Path::new(LOCK_DIR).join(name)
}

/// A lock file's name for a target's name ([`file_name`]).
pub fn lock_name(kind: &str, target: &[u8]) -> String {
    file_name(kind, target, "lock")
}

/// A file name `KIND-TARGET.EXT` for a target's name: every byte of it but
/// `[A-Za-z0-9._-]` written as `%XX`, so that two names never share a file.
pub fn file_name(kind: &str, target: &[u8], ext: &str) -> String {
    let mut name = format!("{kind}-");
    for &b in target {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name.push('.');
    name.push_str(ext);
    name
}

/// The process holding a `flock` on the file of `fd`, as `/proc/locks`
/// lists it (device numbers in hex, then the inode). Lines of waiters
/// (`->`) are not holders.
fn holder(fd: std::os::fd::BorrowedFd<'_>) -> Option<u32> {
    let stat = rustix::fs::fstat(fd).ok()?;
    let dev = rustix::fs::Dev::from(stat.st_dev);
    let id = format!("{:02x}:{:02x}:{}", rustix::fs::major(dev), rustix::fs::minor(dev), stat.st_ino);
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    holder_in(&text, &id)
}

fn holder_in(locks: &str, id: &str) -> Option<u32> {
    locks.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let ok = words.get(1) == Some(&"FLOCK") && words.get(5) == Some(&id);
        ok.then(|| words.get(4)?.parse().ok()).flatten().filter(|&pid| pid > 0)
    })
}

fn read_pid(f: &mut std::fs::File) -> Option<u32> {
    let mut text = String::new();
    f.rewind().ok()?;
    f.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// `flock(LOCK_EX)` on `fd`, trying again until `wait` is over.
fn take(
    fd: std::os::fd::BorrowedFd<'_>,
    what: &str,
    wait: Duration,
    holder: impl Fn() -> Option<u32>,
) -> Result<(), LockError> {
    let start = Instant::now();
    loop {
        match rustix::fs::flock(fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(Errno::WOULDBLOCK) => {
                if start.elapsed() >= wait {
                    return Err(LockError::Held { what: what.to_owned(), holder: holder(), waited: wait });
                }
                std::thread::sleep(
                    RETRY.min(wait.saturating_sub(start.elapsed())).max(Duration::from_millis(1)),
                );
            }
            Err(e) => return Err(LockError::Io { what: what.to_owned(), cause: e.into() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_file_names_its_holder_and_is_free_once_dropped() {
        if !rustix::process::geteuid().is_root() {
            return; // /run/darlings is root's
        }
        let name = format!("test-{}.lock", std::process::id());
        let first = Lock::file(&name, "x", Duration::ZERO).unwrap();
        let text = std::fs::read_to_string(lock_path(&name)).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
        match Lock::file(&name, "x", Duration::from_millis(60)) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(first);
        drop(Lock::file(&name, "x", Duration::ZERO).unwrap());
        let _ = std::fs::remove_file(lock_path(&name));
    }

    #[test]
    fn the_holder_is_read_from_proc_locks() {
        let locks = "1: FLOCK  ADVISORY  WRITE 4242 00:1a:77 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 999 00:1a:77 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 17 00:1a:78 0 EOF\n";
        assert_eq!(holder_in(locks, "00:1a:77"), Some(4242));
        assert_eq!(holder_in(locks, "00:1a:78"), None, "not a flock");
        assert_eq!(holder_in(locks, "00:1b:77"), None);
    }

    #[test]
    fn lock_names_are_one_to_one() {
        assert_eq!(lock_name("zfs", b"rpool/local/root"), "zfs-rpool%2Flocal%2Froot.lock");
        assert_ne!(lock_name("zfs", b"a/b"), lock_name("zfs", b"a%2Fb"));
        assert_eq!(lock_name("btrfs", b"../x\n"), "btrfs-..%2Fx%0A.lock");
    }

    #[test]
    fn a_second_lock_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        std::fs::write(&path, "4242\n").unwrap();
        let open = || -> OwnedFd {
            rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).unwrap()
        };
        let first = open();
        take(first.as_fd(), "t", Duration::ZERO, || None).unwrap();
        let second = open();
        let held = take(second.as_fd(), "target x", Duration::from_millis(120), || {
            read_pid(&mut std::fs::File::open(&path).ok()?)
        })
        .unwrap_err();
        let text = held.to_string();
        assert!(text.contains("target x is locked by another darlings, pid 4242"), "{text}");
        drop(first);
        take(second.as_fd(), "t", Duration::ZERO, || None).unwrap();
    }
}
