//! Progress on stderr while a long walk runs: entries, bytes and the
//! directory being read, redrawn a few times a second. Only ever shown on a
//! terminal; never in pipes.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::sanitize::escape;
use crate::sys::fmt::human_size;

/// Counters the walk updates; read by the drawing thread.
#[derive(Default)]
pub struct Progress {
    entries: AtomicU64,
    bytes: AtomicU64,
    current: Mutex<Vec<u8>>,
    done: AtomicBool,
}

impl Progress {
    /// The walk has opened a directory. Never blocks the walk.
    pub fn directory(&self, path: &[u8]) {
        if let Ok(mut current) = self.current.try_lock() {
            current.clear();
            current.extend_from_slice(path);
        }
    }

    /// A directory listing is done.
    pub fn add(&self, entries: u64, bytes: u64) {
        self.entries.fetch_add(entries, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn line(&self) -> String {
        let dir = self.current.lock().map(|c| escape(&c).into_owned()).unwrap_or_default();
        let dir: String = if dir.chars().count() > 60 {
            let tail: Vec<char> = dir.chars().rev().take(59).collect();
            std::iter::once('…').chain(tail.into_iter().rev()).collect()
        } else {
            dir
        };
        format!(
            "\r\x1b[K{} entries, {}  {}",
            self.entries.load(Ordering::Relaxed),
            human_size(self.bytes.load(Ordering::Relaxed)),
            dir
        )
    }
}

/// Runs `work`, drawing progress on stderr meanwhile when `enabled`.
pub fn with_progress<T>(enabled: bool, work: impl FnOnce(Option<&Progress>) -> T) -> T {
    if !enabled {
        return work(None);
    }
    let progress = Progress::default();
    std::thread::scope(|s| {
        s.spawn(|| {
            // A short grace period: quick audits draw nothing at all.
            let mut waited = Duration::ZERO;
            let tick = Duration::from_millis(50);
            let mut drawn = false;
            while !progress.done.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                waited += tick;
                if waited >= Duration::from_millis(300) && waited.as_millis() % 200 < 50 {
                    let _ = std::io::stderr().write_all(progress.line().as_bytes());
                    drawn = true;
                }
            }
            if drawn {
                let _ = std::io::stderr().write_all(b"\r\x1b[K");
            }
        });
        let result = work(Some(&progress));
        progress.done.store(true, Ordering::Relaxed);
        result
    })
}
