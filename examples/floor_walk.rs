//! The syscall floor for `bench/compare.py`: the least a parallel
//! one-filesystem walk can do. One rayon task per directory, `getdents64`,
//! `fstatat` relative to the open directory, a sum of sizes. No rules, no
//! report, no error handling beyond skipping. darlings is measured against it.
//!
//! Usage: floor_walk DIR [THREADS]

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir};

static ENTRIES: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

fn visit<'s>(scope: &rayon::Scope<'s>, dir: Arc<OwnedFd>, dev: u64) {
    let mut buf = Vec::with_capacity(32 * 1024);
    let mut iter = RawDir::new(dir.as_fd(), buf.spare_capacity_mut());
    let (mut entries, mut bytes) = (0, 0);
    while let Some(Ok(entry)) = iter.next() {
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        entries += 1;
        let Ok(st) = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) else { continue };
        bytes += st.st_size as u64;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory && st.st_dev == dev {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            if let Ok(child) = rustix::fs::openat(&dir, name, flags, Mode::empty()) {
                let child = Arc::new(child);
                scope.spawn(move |s| visit(s, child, dev));
            }
        }
    }
    ENTRIES.fetch_add(entries, Ordering::Relaxed);
    BYTES.fetch_add(bytes, Ordering::Relaxed);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let root = args.next().expect("usage: floor_walk DIR [THREADS]");
    let threads: usize = args.next().map_or(2, |t| t.parse().expect("threads"));
    let fd = rustix::fs::open(root.as_str(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
        .expect("open root");
    let dev = rustix::fs::fstat(&fd).expect("stat root").st_dev;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
    let fd = Arc::new(fd);
    pool.scope(|s| s.spawn(move |s| visit(s, fd, dev)));
    println!("{} entries, {} bytes", ENTRIES.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed));
}
