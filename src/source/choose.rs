//! The choice of source, in one place: [`open`] reads the settings and the
//! root's filesystem and returns the [`Source`] to read.
//!
//! - `--zfs-diff FILE`: that saved diff (with the live tree behind it when
//!   `--root` says where it is);
//! - `--baseline DIR`: the live tree compared with DIR;
//! - `--source walk`: the walk;
//! - `--source btrfs`, or `auto` on a btrfs root: the comparison with the
//!   blank snapshot next to the root subvolume (`btrfs.rs`); `auto` walks,
//!   with a note, where there is none;
//! - `--source zfs`, or `auto` on a ZFS dataset's mount point: `zfs diff`,
//!   or for `auto` the comparison with the snapshot's own tree when that is
//!   cheaper (below);
//! - `auto` on anything else (a tmpfs, a plain directory): the walk, with a
//!   note saying why.
//!
//! How `--source auto` reads a ZFS root: `zfs diff` against the blank
//! snapshot, or a comparison of the live tree with the snapshot's own tree
//! (`ROOT/.zfs/snapshot/BLANK`, reachable even with `snapdir=hidden` and
//! mounted by ZFS on first access).
//!
//! Both give the same changes (the guest tests check it path by path), at
//! very different costs:
//!
//! - `zfs diff` finds changed objects cheaply, but then looks up each one's
//!   path through its parent directories, scanning each parent for the
//!   object's number (OpenZFS #6920): per changed object it costs far more
//!   than reading one entry, and in a large directory it grows with the
//!   directory. On an ephemeral root *everything* is new since `@blank`:
//!   40,000 new entries took over 400 s in the test guest.
//! - The comparison reads every entry of both trees once, in parallel, at
//!   the speed of the walk: the same 40,000 entries took about 1 s.
//!
//! So the choice is: how many objects changed, against how many both trees
//! hold. ZFS says both cheaply. Each tree's object count is what `statfs`
//! reports as used inodes (ZFS counts allocated objects there), and
//! `written@BLANK` is the space written since the snapshot. The number of
//! changed objects is at least the difference of the two counts, and about
//! `written` divided by the snapshot's average bytes per object; `zfs diff`
//! is used only when that estimate, weighted by its cost per object, is
//! below the size of both trees. The weight ([`DIFF_COST`]) comes from the
//! guest benchmark (`bench/zfs-guest.sh`).

use std::ffi::OsStr;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;

use super::compared::Compared;
use super::tree::ChangeTree;
use super::walk::{Visitor, Walk};
use super::zfs::{SavedDiff, ZfsDiff};
use super::{Kind, Opened, Settings, Source, SourceError};
use crate::sys::command::Cmd;
use crate::sys::mounts::{Mount, Mounts};
use crate::sys::root::{Root, WalkError};

/// The source an audit reads, as [`open`] chose it.
pub enum Chosen<'a> {
    Walk(Walk<'a>),
    Zfs(ZfsDiff<'a>),
    Saved(SavedDiff<'a>),
    Compared(Compared<'a>),
}

/// Calls `$call` on whichever source `$chosen` holds.
macro_rules! each {
    ($chosen:expr, $s:ident => $call:expr) => {
        match $chosen {
            Chosen::Walk($s) => $call,
            Chosen::Zfs($s) => $call,
            Chosen::Saved($s) => $call,
            Chosen::Compared($s) => $call,
        }
    };
}

impl Source for Chosen<'_> {
    fn name(&self) -> &'static str {
        each!(self, s => s.name())
    }

    fn feed<V: Visitor>(
        &mut self,
        top: V::Dir,
        visitor: &V,
        threads: usize,
        progress: bool,
    ) -> Result<(), SourceError> {
        each!(self, s => s.feed(top, visitor, threads, progress))
    }

    fn take_errors(&mut self) -> Vec<WalkError> {
        each!(self, s => s.take_errors())
    }

    fn notes(&self) -> &[String] {
        each!(self, s => s.notes())
    }

    fn changes(&self) -> Option<&ChangeTree> {
        each!(self, s => s.changes())
    }

    fn blank(&self) -> Option<&Root> {
        each!(self, s => s.blank())
    }

    fn ephemeral(&self) -> bool {
        each!(self, s => s.ephemeral())
    }
}

/// Chooses the source `settings` ask for. `live`: the audited tree (`None`
/// only for a saved diff read offline); `mounts`: the mount table, which
/// tells the root's filesystem. Choosing reads only what the choice needs
/// (on ZFS `statfs` and `zfs get`; on btrfs where the blank snapshot is,
/// which may mount the top-level volume read-only, undone before this
/// returns); the reading itself is [`Source::feed`].
pub fn open<'a>(
    settings: &Settings,
    live: Option<&'a Opened>,
    mounts: &Mounts,
) -> Result<Chosen<'a>, SourceError> {
    match (&settings.zfs_diff, &settings.baseline, live) {
        (Some(file), _, live) => Ok(Chosen::Saved(SavedDiff::new(file, settings, live))),
        (None, Some(blank), Some(live)) => Ok(Chosen::Compared(Compared::baseline(live, blank)?)),
        (None, None, Some(live)) => from_filesystem(settings, live, mounts),
        (None, _, None) => Err(SourceError::Nothing),
    }
}

/// `--source walk`, `zfs`, `btrfs` or `auto`, from the root's filesystem.
fn from_filesystem<'a>(
    settings: &Settings,
    live: &'a Opened,
    mounts: &Mounts,
) -> Result<Chosen<'a>, SourceError> {
    let shown = || live.canonical.display().to_string();
    let btrfs = mounts.root().filter(|m| m.fstype == "btrfs");
    let on_zfs = mounts.root().filter(|m| m.fstype == "zfs");
    match settings.kind {
        Kind::Walk => return Ok(Chosen::Walk(Walk::new(live, Vec::new()))),
        Kind::Btrfs => {
            let Some(m) = btrfs else { return Err(SourceError::NotBtrfs(shown())) };
            return match btrfs_snapshot(live, m)? {
                Chosen::Walk(_) => Err(SourceError::NoBtrfsBlank(shown())),
                found => Ok(found),
            };
        }
        Kind::Auto | Kind::Zfs => {}
    }
    let dataset = match (&settings.dataset, on_zfs) {
        (Some(d), _) => d.as_bytes().to_vec(),
        (None, Some(m)) => m.source.clone(),
        (None, None) => {
            let fstype =
                mounts.root().map_or("a directory of a larger filesystem".to_owned(), |m| m.fstype.clone());
            if settings.kind == Kind::Zfs {
                return Err(SourceError::NotZfs { root: shown(), fstype });
            }
            if let Some(m) = btrfs {
                return btrfs_snapshot(live, m);
            }
            return Ok(Chosen::Walk(match fstype.as_str() {
                "tmpfs" | "ramfs" => Walk::new(
                    live,
                    vec![format!("{} is a {fstype}: everything on it is erased, so it was walked", shown())],
                ),
                other => Walk::new(
                    live,
                    vec![format!("{} ({other}) does not look like an ephemeral root: walked", shown())],
                )
                .not_ephemeral(),
            }));
        }
    };
    // auto, at the dataset's mount point: the snapshot's own tree may be
    // far cheaper to compare with than zfs diff (see below).
    let snapdir = live.canonical.join(".zfs/snapshot").join(&settings.snapshot);
    let blank = match (settings.kind, on_zfs) {
        (Kind::Auto, Some(m)) if m.source == dataset => Root::open(&snapdir).ok(),
        _ => None,
    };
    let way = blank.as_ref().and_then(|blank| {
        facts(live.root.fd(), blank.fd(), &dataset, &settings.snapshot).map(|f| f.choose())
    });
    match (blank, way) {
        (Some(blank), Some(Way::Compare(why))) => {
            Ok(Chosen::Compared(Compared::zfs_snapshot(live, blank, &dataset, &settings.snapshot, &why)))
        }
        (_, way) => Ok(Chosen::Zfs(ZfsDiff::new(live, dataset, &settings.snapshot, way))),
    }
}

/// A btrfs root: the comparison with its blank snapshot, found in the
/// conventional places (see `btrfs.rs`); the walk, with a note saying
/// where it looked, when there is none.
fn btrfs_snapshot<'a>(live: &'a Opened, mount: &Mount) -> Result<Chosen<'a>, SourceError> {
    let shown = live.canonical.display();
    let places = super::btrfs::candidates(&mount.fs_root)
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let note = match super::btrfs::find_blank(mount) {
        Ok(Some(blank)) => return Ok(Chosen::Compared(Compared::btrfs(live, &blank)?)),
        Ok(None) => {
            format!("{shown} is btrfs but no blank snapshot was found at {places}: walked; pass --baseline")
        }
        Err(e) => format!(
            "{shown} is btrfs but its snapshots could not be looked at ({e}): walked; pass --baseline"
        ),
    };
    Ok(Chosen::Walk(Walk::new(live, vec![note])))
}

/// What `zfs diff` costs per (estimated) changed object, in entries the
/// comparison reads in the same time. Measured by `bench/zfs-guest.sh`
/// (OpenZFS 2.1.11, one boot):
///
/// - an ephemeral root, 40,017 entries all new: `zfs diff -FHt` 834.6 s,
///   20.9 ms per object, against 0.044 ms per entry compared (1.75 s for
///   both trees): 478 entries' worth;
/// - a full `@blank` of 60,001 objects, about 100 changes (estimated 702):
///   `zfs diff -FHt` 272.9 s, the comparison 17.5 s for 120,043 entries:
///   2,670 entries' worth per estimated object. Finding each changed
///   object's name scans its parent directory (OpenZFS #6920), so a change
///   in a large directory costs that whole directory.
///
/// Rounded up from the larger: `zfs diff` runs only where changes are rare
/// against the size of the trees (a million-object root with a few hundred
/// changes), where it may still win; everywhere measured, comparing did.
pub const DIFF_COST: u64 = 3000;

/// What ZFS tells cheaply about the live dataset and its blank snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// Objects allocated in the live dataset.
    pub live_objects: u64,
    /// Objects allocated in the blank snapshot.
    pub blank_objects: u64,
    /// Bytes the blank snapshot references.
    pub blank_bytes: u64,
    /// `written@BLANK`: bytes written since the snapshot (unknown when `zfs
    /// get` failed, or was not asked because the counts decided).
    pub written: Option<u64>,
}

/// The way chosen, with the reason in words for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Way {
    /// Run `zfs diff`.
    Diff(String),
    /// Compare with the snapshot's tree.
    Compare(String),
}

impl Facts {
    /// The estimated number of objects changed since the snapshot.
    pub fn changed(&self) -> u64 {
        let counted = self.live_objects.abs_diff(self.blank_objects);
        let per_object = (self.blank_bytes / self.blank_objects.max(1)).max(512);
        let written = self.written.map_or(0, |w| w / per_object);
        counted.max(written)
    }

    /// `zfs diff` when its estimated cost is below the comparison's.
    pub fn choose(&self) -> Way {
        let changed = self.changed();
        let both = self.live_objects.saturating_add(self.blank_objects);
        let facts = format!(
            "about {changed} objects changed since the snapshot; {} objects live, {} in the snapshot",
            self.live_objects, self.blank_objects
        );
        if changed.saturating_mul(DIFF_COST) < both {
            Way::Diff(format!("{facts}: few changes, so zfs diff is cheaper than reading both trees"))
        } else {
            Way::Compare(format!(
                "{facts}: zfs diff looks up every changed object's path one by one (OpenZFS #6920), \
                 reading both trees is cheaper"
            ))
        }
    }
}

/// Objects and bytes in use on the filesystem of `fd`, from `statfs`.
fn usage(fd: BorrowedFd<'_>) -> Option<(u64, u64)> {
    let st = rustix::fs::fstatfs(fd).ok()?;
    let objects = (st.f_files as u64).checked_sub(st.f_ffree as u64)?;
    let bytes = (st.f_blocks as u64).saturating_sub(st.f_bfree as u64).saturating_mul(st.f_bsize as u64);
    Some((objects, bytes))
}

/// Gathers the facts: `live` is the dataset's mount point, `blank` its
/// snapshot's directory (both opened). `None` when the counts cannot be
/// had; the caller then runs `zfs diff`, the way that needs no counts.
///
/// `written` can only raise the estimate of changed objects, so when the
/// counts alone already choose the comparison (an ephemeral root: the
/// snapshot is nearly empty) `zfs get` is not run: it costs a process and
/// a walk of the pool's datasets, more than a small comparison.
pub fn facts(live: BorrowedFd<'_>, blank: BorrowedFd<'_>, dataset: &[u8], snapshot: &str) -> Option<Facts> {
    let (live_objects, _) = usage(live)?;
    let (blank_objects, blank_bytes) = usage(blank)?;
    let counted = Facts { live_objects, blank_objects, blank_bytes, written: None };
    if matches!(counted.choose(), Way::Compare(_)) {
        return Some(counted);
    }
    Some(Facts { written: written(dataset, snapshot), ..counted })
}

/// `zfs get -Hp -o value written@SNAPSHOT DATASET`.
fn written(dataset: &[u8], snapshot: &str) -> Option<u64> {
    let out = Cmd::new("zfs")
        .args(["get", "-Hp", "-o", "value"])
        .arg(format!("written@{snapshot}"))
        .arg(OsStr::from_bytes(dataset))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out).trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(kind: Kind) -> Settings {
        Settings {
            kind,
            baseline: None,
            zfs_diff: None,
            strip_prefix: None,
            snapshot: "blank".into(),
            dataset: None,
        }
    }

    /// The choice on a plain directory (no mount of its own), by settings.
    #[test]
    fn the_choice_by_settings_on_a_plain_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = Opened::open(dir.path(), "cannot audit").expect("open");
        let mounts = Mounts::default();
        let name = |s: &Settings, live| open(s, live, &mounts).map(|c| c.name());
        assert_eq!(name(&settings(Kind::Walk), Some(&live)).ok(), Some("walk"));
        let auto = open(&settings(Kind::Auto), Some(&live), &mounts).expect("auto");
        assert_eq!(auto.name(), "walk");
        assert!(auto.notes()[0]
            .ends_with("(a directory of a larger filesystem) does not look like an ephemeral root: walked"));
        assert!(matches!(name(&settings(Kind::Zfs), Some(&live)), Err(SourceError::NotZfs { .. })));
        assert!(matches!(name(&settings(Kind::Btrfs), Some(&live)), Err(SourceError::NotBtrfs(_))));
        let baseline = Settings { baseline: Some(dir.path().to_owned()), ..settings(Kind::Zfs) };
        assert_eq!(name(&baseline, Some(&live)).ok(), Some("baseline"), "--baseline wins over --source");
        let saved = Settings { zfs_diff: Some("-".into()), ..settings(Kind::Walk) };
        assert_eq!(name(&saved, None).ok(), Some("zfs-diff-file"), "offline");
        assert_eq!(name(&saved, Some(&live)).ok(), Some("zfs-diff-file"));
        assert!(matches!(name(&settings(Kind::Auto), None), Err(SourceError::Nothing)));
    }

    fn facts(live: u64, blank: u64, blank_bytes: u64, written: Option<u64>) -> Facts {
        Facts { live_objects: live, blank_objects: blank, blank_bytes, written }
    }

    #[test]
    fn an_ephemeral_root_is_compared() {
        // An empty @blank (a handful of objects), 40,000 new entries.
        let f = facts(40_012, 7, 24 * 1024, Some(180 << 20));
        assert!(f.changed() >= 40_005);
        assert!(matches!(f.choose(), Way::Compare(_)));
    }

    #[test]
    fn a_huge_blank_with_few_changes_is_diffed() {
        // 6,000,000 objects in @blank (150 GiB), 40 new files, 3 MiB written.
        let f = facts(6_000_040, 6_000_000, 150 << 30, Some(3 << 20));
        // 150 GiB / 6,000,000 = 26,843 bytes per object; 3 MiB / 26,843 = 117.
        assert_eq!(f.changed(), 117);
        // 117 × 3,000 = 351,000 entries' worth, against 12,000,040 to compare.
        assert!(matches!(f.choose(), Way::Diff(_)));
    }

    #[test]
    fn the_measured_full_blank_is_compared() {
        // bench/zfs-guest.sh's full root: zfs diff took 272.9 s, the
        // comparison 17.5 s. The facts auto saw there:
        let f = facts(60_042, 60_001, 512_976_384, Some(6_004_736));
        assert_eq!(f.changed(), 702);
        assert!(matches!(f.choose(), Way::Compare(_)));
    }

    #[test]
    fn many_rewrites_without_new_objects_are_compared() {
        // Same object count, but a tenth of the snapshot's bytes rewritten.
        let f = facts(60_000, 60_000, 1536 << 20, Some(600 << 20));
        assert_eq!(f.changed(), (600u64 << 20) / ((1536u64 << 20) / 60_000));
        assert!(matches!(f.choose(), Way::Compare(_)));
    }

    #[test]
    fn unknown_written_falls_back_to_counts() {
        assert_eq!(facts(10, 10, 0, None).changed(), 0);
        assert!(matches!(facts(10, 10, 0, None).choose(), Way::Diff(_)));
        assert!(matches!(facts(u64::MAX, 0, 0, None).choose(), Way::Compare(_)), "no overflow");
    }
}
