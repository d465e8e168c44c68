//! Recovering what `zfs diff` cannot show: the other names of a file with
//! several hard links (it lists one name only, and which one varies between
//! runs). With the live tree at hand, the files it lists are stat'ed (from
//! their directory, opened without following a symlink, however deep); when
//! any has more than one link, one walk of the live tree finds every name
//! of those inodes. A name the blank snapshot also has (looked up under
//! `ROOT/.zfs/snapshot/SNAP` when ZFS shows it) existed before and is left
//! out; the others are new.

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use super::tree::ChangeTree;
use super::walk::{self, EntryRef, Visitor};
use crate::sys::meta::{FileKind, Meta};
use crate::sys::root::{Root, WalkError};

/// Collects the paths of the wanted inodes.
struct Finder<'a> {
    wanted: &'a HashSet<(u64, u64)>,
    found: Mutex<Vec<(Vec<u8>, FileKind)>>,
}

impl Visitor for Finder<'_> {
    type Dir = ();
    type Plan = ();

    fn plan(&self, _: &(), _: &EntryRef<'_>) -> Option<()> {
        Some(())
    }

    fn leaf(&self, _: &(), entry: &EntryRef<'_>, _: (), meta: &Meta) {
        if meta.nlink > 1 && self.wanted.contains(&(meta.dev, meta.ino)) {
            let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
            found.push((entry.path.to_vec(), meta.kind));
        }
    }

    fn enter(&self, _: &(), _: &EntryRef<'_>, _: (), _: &Meta) -> Option<()> {
        Some(())
    }

    fn listed(&self, _: &()) {}

    fn finish(&self, _: &(), _: &[u8], _: Option<&()>) {}

    fn error(&self, _: &(), _: WalkError) {}
}

/// What [`recover`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Recovered {
    /// Listed files with more than one name.
    pub files: usize,
    /// Their other names, added to the tree.
    pub names: usize,
}

impl Recovered {
    /// What was found, for the report's notes (`None`: no such file).
    pub fn note(&self) -> Option<String> {
        (self.files > 0).then(|| {
            format!(
                "zfs diff names a file with several hard links under one name only: {} such files, {} other \
                 names found in the live tree",
                self.files, self.names
            )
        })
    }
}

/// Adds to `tree` the other names of the multiply-linked files it lists.
/// `blank` is the blank snapshot's directory, when reachable.
pub fn recover(tree: &mut ChangeTree, live: &Root, blank: Option<&Root>, threads: usize) -> Recovered {
    let mut wanted = HashSet::new();
    // The directory of the files at hand, opened once for them all.
    let mut dir: Option<(Vec<u8>, OwnedFd)> = None;
    tree.present_files(|path, cut| {
        let parent = if cut == 0 { &b"/"[..] } else { &path[..cut] };
        if dir.as_ref().is_none_or(|(p, _)| p.as_slice() != parent) {
            let mut key = dir.take().map(|(p, _)| p).unwrap_or_default();
            key.clear();
            key.extend_from_slice(parent);
            dir = live.open_dir(parent).ok().map(|fd| (key, fd));
        }
        let Some((_, fd)) = &dir else { return };
        if let Ok(meta) = live.stat_at(fd.as_fd(), &path[cut + 1..]) {
            if meta.nlink > 1 && !meta.other_fs {
                wanted.insert((meta.dev, meta.ino));
            }
        }
    });
    if wanted.is_empty() {
        return Recovered::default();
    }
    let finder = Finder { wanted: &wanted, found: Mutex::new(Vec::new()) };
    let files = wanted.len();
    if walk::walk(live, (), &finder, threads, None).is_err() {
        return Recovered { files, names: 0 };
    }
    let mut added = 0;
    for (path, kind) in finder.found.into_inner().unwrap_or_else(|e| e.into_inner()) {
        if tree.names(&path) {
            continue;
        }
        let rel = path.strip_prefix(b"/").unwrap_or(&path);
        if blank.is_some_and(|b| b.exists(rel).unwrap_or(false)) {
            continue;
        }
        tree.add_created(&path, kind);
        added += 1;
    }
    Recovered { files, names: added }
}
