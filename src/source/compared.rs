//! The sources that compare the live tree with a blank one: a tree given
//! with `--baseline` (report `source`: `baseline`), the blank snapshot of a
//! btrfs root (`btrfs`, found by `btrfs.rs`), and the snapshot of a ZFS
//! dataset read as a tree under `.zfs/snapshot` (`zfs-snapshot`, when
//! `choose.rs` finds it cheaper than `zfs diff`).
//!
//! All three are one [`Compared`]: the comparison itself is `baseline.rs`;
//! they differ in where the blank tree is, whether it is a snapshot of the
//! live one (then a new inode under an old name is a new object) and what
//! the notes say.

use std::path::Path;

use super::baseline::{compare, Blank};
use super::btrfs;
use super::tree::ChangeTree;
use super::walk::Visitor;
use super::{zfs, Opened, Source, SourceError};
use crate::sys::root::{Root, WalkError};

/// The live tree compared with a blank one.
pub struct Compared<'a> {
    name: &'static str,
    live: &'a Opened,
    blank: Root,
    blank_is: Blank,
    notes: Vec<String>,
    tree: ChangeTree,
    errors: Vec<WalkError>,
}

impl<'a> Compared<'a> {
    fn new(name: &'static str, live: &'a Opened, blank: Root, blank_is: Blank, notes: Vec<String>) -> Self {
        Compared { name, live, blank, blank_is, notes, tree: ChangeTree::new(), errors: Vec::new() }
    }

    /// `--baseline DIR`: any blank tree, compared by what names hold.
    pub fn baseline(live: &'a Opened, dir: &Path) -> Result<Self, SourceError> {
        let blank = Opened::open(dir, "cannot read the blank tree (--baseline)")?;
        let note = format!("compared with the blank tree {}", blank.canonical.display());
        Ok(Compared::new("baseline", live, blank.root, Blank::Tree, vec![note]))
    }

    /// The btrfs root's blank snapshot, where `btrfs.rs` found it.
    pub fn btrfs(live: &'a Opened, found: &btrfs::Blank) -> Result<Self, SourceError> {
        let blank = Opened::open(&found.path, "cannot audit")?;
        let note = format!("compared with the blank snapshot {}", String::from_utf8_lossy(&found.subvolume));
        Ok(Compared::new("btrfs", live, blank.root, Blank::Snapshot, vec![note]))
    }

    /// The ZFS snapshot `dataset@snapshot`, opened under `.zfs/snapshot`;
    /// `why`: why reading both trees is cheaper than `zfs diff`.
    pub fn zfs_snapshot(live: &'a Opened, blank: Root, dataset: &[u8], snapshot: &str, why: &str) -> Self {
        let shown = format!("{}@{snapshot}", String::from_utf8_lossy(dataset));
        let mut notes = vec![format!("compared {shown} with the live dataset by reading both trees: {why}")];
        notes.extend(zfs::children_note(dataset));
        Compared::new("zfs-snapshot", live, blank, Blank::Snapshot, notes)
    }
}

impl Source for Compared<'_> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn feed<V: Visitor>(
        &mut self,
        top: V::Dir,
        visitor: &V,
        threads: usize,
        _progress: bool,
    ) -> Result<(), SourceError> {
        let found = compare(&self.live.root, &self.blank, self.blank_is, &mut self.tree, threads);
        self.errors = found.errors;
        self.tree.walk(top, visitor, Some(&self.live.root), threads);
        Ok(())
    }

    fn take_errors(&mut self) -> Vec<WalkError> {
        std::mem::take(&mut self.errors)
    }

    fn notes(&self) -> &[String] {
        &self.notes
    }

    fn changes(&self) -> Option<&ChangeTree> {
        Some(&self.tree)
    }

    fn blank(&self) -> Option<&Root> {
        Some(&self.blank)
    }
}
