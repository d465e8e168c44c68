//! The btrfs backend. The root is a subvolume of the filesystem's top-level
//! volume (`--subvolume root`), next to a read-only blank one
//! (`--blank root-blank`). A rollback moves the root aside into
//! `--old-roots` (`old_roots/<stamp>`: the old root *is* the archive, with
//! any nested subvolumes inside it) and makes a fresh writable snapshot of
//! the blank one in its place.
//!
//! The top-level volume is reached where `--mountpoint` says it is mounted,
//! or mounted from `--device` at `/run/darlings/btrfs-top` for as long as
//! darlings works (a fixed place, so that a dry run prints exactly the
//! commands a real run would; a mount already there means another darlings
//! is at work, and is refused).
//!
//! The ephemeral mark is the extended attribute `user.darlings.ephemeral`
//! on the top-level volume's root directory: the subvolume paths it lists,
//! one per line, are marked. It lives outside every subvolume a rollback
//! touches. The last rollback's outcome is kept beside it in
//! `user.darlings.last-rollback`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{Action, Archive, AuditPlace, Plan, Refusal, Step};
use crate::cli::{RollbackArgs, SourceKind, TargetArgs};
use crate::error::ExitCode;
use crate::sys::command::Cmd;

pub const HELPER_DIR: &str = "/run/darlings/btrfs-top";
pub const MARK_XATTR: &str = "user.darlings.ephemeral";
pub const OUTCOME_XATTR: &str = "user.darlings.last-rollback";

/// The inode number of every subvolume's root directory.
const SUBVOLUME_INO: u64 = 256;

/// The subvolumes of a filesystem: id, parent id, path (for people only:
/// the listing cannot carry every name exactly).
struct Subvolumes(Vec<(u64, u64, String)>);

impl Subvolumes {
    /// Parses `ID 258 gen 12 parent 256 top level 256 path root/var/lib/machines`
    /// lines; a line that does not start so (the rest of a name holding a
    /// newline) is skipped.
    fn parse(text: &str) -> Subvolumes {
        Subvolumes(
            text.lines()
                .filter_map(|l| {
                    let words: Vec<&str> = l.split(' ').collect();
                    let id = words.get(1).filter(|_| words.first() == Some(&"ID"))?.parse().ok()?;
                    let at = words.iter().position(|w| *w == "parent")?;
                    let parent = words.get(at + 1)?.parse().ok()?;
                    let path = l.split_once(" path ").map_or("", |(_, p)| p);
                    Some((id, parent, path.strip_prefix("<FS_TREE>/").unwrap_or(path).to_owned()))
                })
                .collect(),
        )
    }

    /// The subvolumes nested anywhere below subvolume `id`, deepest first:
    /// the order to delete them in.
    fn below(&self, id: u64) -> Vec<(u64, String)> {
        let mut found: Vec<(usize, u64, String)> = Vec::new();
        let mut queue = vec![(id, 0usize)];
        while let Some((at, depth)) = queue.pop() {
            for (child, parent, path) in &self.0 {
                if *parent == at {
                    queue.push((*child, depth + 1));
                    found.push((depth + 1, *child, path.clone()));
                }
            }
        }
        found.sort_by_key(|(depth, ..)| std::cmp::Reverse(*depth));
        found.into_iter().map(|(_, id, path)| (id, path)).collect()
    }
}

pub struct Btrfs {
    top: PathBuf,
    device: Option<PathBuf>,
    pub subvolume: String,
    pub blank: String,
    pub old_roots: String,
    _helper: Option<TopMount>,
}

/// Our mount of the top-level volume, undone on drop.
struct TopMount {
    dir: PathBuf,
}

impl Drop for TopMount {
    fn drop(&mut self) {
        if rustix::mount::unmount(&self.dir, rustix::mount::UnmountFlags::empty()).is_err() {
            let _ = rustix::mount::unmount(&self.dir, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// A path inside the top-level volume: relative, no `..`, not empty.
fn inside(flag: &str, rel: &str) -> Result<()> {
    let p = Path::new(rel);
    if rel.is_empty()
        || p.is_absolute()
        || p.components().any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        bail!("{flag} {rel:?}: give a path relative to the top-level volume, like `root`");
    }
    Ok(())
}

fn is_subvolume(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir() && m.ino() == SUBVOLUME_INO)
}

impl Btrfs {
    pub fn open(args: &TargetArgs, writable: bool) -> Result<Btrfs> {
        inside("--subvolume", &args.subvolume)?;
        inside("--blank", &args.blank)?;
        inside("--old-roots", &args.old_roots)?;
        let (top, helper) = match (&args.mountpoint, &args.device) {
            (Some(dir), _) => {
                let top =
                    std::fs::canonicalize(dir).with_context(|| format!("--mountpoint {}", dir.display()))?;
                let id = Cmd::new("btrfs").args(["inspect-internal", "rootid"]).arg(&top).output()?;
                if String::from_utf8_lossy(&id).trim() != "5" {
                    bail!(
                        "--mountpoint {}: not the top-level volume of a btrfs (mount it with -o subvolid=5)",
                        top.display()
                    );
                }
                (top, None)
            }
            (None, Some(device)) => {
                let dir = PathBuf::from(HELPER_DIR);
                std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {HELPER_DIR}"))?;
                let mounts = crate::sys::mounts::mount_table()?;
                if mounts.iter().any(|m| m.mount_point == HELPER_DIR.as_bytes()) {
                    bail!("{HELPER_DIR} is already a mount point: another darlings at work? (if not: umount {HELPER_DIR})");
                }
                let mut flags = rustix::mount::MountFlags::NOSUID
                    | rustix::mount::MountFlags::NODEV
                    | rustix::mount::MountFlags::NOEXEC;
                if !writable {
                    flags |= rustix::mount::MountFlags::RDONLY;
                }
                rustix::mount::mount(device, &dir, "btrfs", flags, c"subvolid=5").with_context(|| {
                    format!("cannot mount the top-level volume of {} at {HELPER_DIR}", device.display())
                })?;
                (dir.clone(), Some(TopMount { dir }))
            }
            (None, None) => bail!("btrfs: give --device or --mountpoint"),
        };
        Ok(Btrfs {
            top,
            device: args.device.clone(),
            subvolume: args.subvolume.clone(),
            blank: args.blank.clone(),
            old_roots: args.old_roots.clone(),
            _helper: helper,
        })
    }

    pub fn describe(&self) -> String {
        match &self.device {
            Some(d) => format!("btrfs subvolume {} of {}", self.subvolume, d.display()),
            None => format!("btrfs subvolume {} of the filesystem at {}", self.subvolume, self.top.display()),
        }
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.top.join(rel)
    }

    pub fn archive_path(&self, archive: &Archive) -> PathBuf {
        self.at(&self.old_roots).join(&archive.name)
    }

    fn marks(&self) -> Result<Vec<String>> {
        let mut buf = vec![0u8; 65536];
        match rustix::fs::getxattr(&self.top, MARK_XATTR, &mut buf[..]) {
            Ok(n) => Ok(String::from_utf8_lossy(&buf[..n]).lines().map(str::to_owned).collect()),
            Err(rustix::io::Errno::NODATA) => Ok(Vec::new()),
            Err(e) => Err(std::io::Error::from(e)).context(format!("cannot read {MARK_XATTR}")),
        }
    }

    pub fn marked(&self) -> Result<Option<String>> {
        Ok(self
            .marks()?
            .iter()
            .any(|m| m == &self.subvolume)
            .then(|| format!("yes ({MARK_XATTR} of the top-level volume lists {})", self.subvolume)))
    }

    pub fn mark(&self, on: bool) -> Result<String> {
        let mut marks = self.marks()?;
        marks.retain(|m| m != &self.subvolume);
        if on {
            if !is_subvolume(&self.at(&self.subvolume)) && !is_subvolume(&self.at(&self.blank)) {
                bail!("{} has neither a subvolume {} nor {}", self.describe(), self.subvolume, self.blank);
            }
            marks.push(self.subvolume.clone());
        }
        let value = marks.join("\n");
        let result = if marks.is_empty() {
            rustix::fs::removexattr(&self.top, MARK_XATTR).or_else(|e| match e {
                rustix::io::Errno::NODATA => Ok(()),
                e => Err(e),
            })
        } else {
            rustix::fs::setxattr(&self.top, MARK_XATTR, value.as_bytes(), rustix::fs::XattrFlags::empty())
        };
        result.map_err(std::io::Error::from).with_context(|| format!("cannot write {MARK_XATTR}"))?;
        Ok(if on {
            format!("marked {} as ephemeral: `darlings rollback` may erase it", self.describe())
        } else {
            format!("{} is no longer marked as ephemeral", self.describe())
        })
    }

    pub fn record_outcome(&self, text: &str) -> Result<()> {
        rustix::fs::setxattr(&self.top, OUTCOME_XATTR, text.as_bytes(), rustix::fs::XattrFlags::empty())
            .map_err(std::io::Error::from)
            .with_context(|| format!("cannot write {OUTCOME_XATTR}"))
    }

    pub fn last_outcome(&self) -> Option<String> {
        let mut buf = vec![0u8; 65536];
        let n = rustix::fs::getxattr(&self.top, OUTCOME_XATTR, &mut buf[..]).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    pub fn read_record(&self) -> Result<Option<super::Record>> {
        super::read_record(&self.at(&self.subvolume))
    }

    /// `btrfs subvolume show`: (creation time, read-only). The creation
    /// time is the subvolume's birth time (btrfs reports its otime there).
    fn show(&self, path: &Path) -> Result<(Option<i64>, bool)> {
        let out = Cmd::new("btrfs").args(["subvolume", "show"]).arg(path).output()?;
        let text = String::from_utf8_lossy(&out);
        let readonly = text
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("Flags:"))
            .is_some_and(|f| f.split_whitespace().any(|w| w == "readonly"));
        let created = std::fs::symlink_metadata(path)
            .and_then(|m| m.created())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok());
        Ok((created, readonly))
    }

    /// Every subvolume of the filesystem (`btrfs subvolume list -p`).
    fn subvolumes(&self) -> Result<Subvolumes> {
        let out = Cmd::new("btrfs").args(["subvolume", "list", "-p"]).arg(&self.top).output()?;
        Ok(Subvolumes::parse(&String::from_utf8_lossy(&out)))
    }

    /// The subvolume id of the subvolume at `rel`.
    fn id_of(&self, rel: &str) -> Result<u64> {
        let out = Cmd::new("btrfs").args(["inspect-internal", "rootid"]).arg(self.at(rel)).output()?;
        String::from_utf8_lossy(&out).trim().parse().with_context(|| format!("no subvolume id for {rel}"))
    }

    /// Where the root subvolume is mounted: mountinfo entries of the same
    /// filesystem (the device numbers of the top-level volume's mount)
    /// whose root is the subvolume or lies inside it.
    fn mounted_at(&self) -> Vec<Vec<u8>> {
        let Ok(mounts) = crate::sys::mounts::mount_table() else { return Vec::new() };
        let top = self.top.as_os_str().as_bytes();
        let Some(dev) =
            mounts.iter().rev().find(|m| m.mount_point == top && m.fstype == "btrfs").map(|m| m.dev.clone())
        else {
            return Vec::new();
        };
        let sub = format!("/{}", self.subvolume);
        mounts
            .into_iter()
            .filter(|m| {
                m.dev == dev
                    && (m.fs_root == sub.as_bytes()
                        || m.fs_root.strip_prefix(sub.as_bytes()).is_some_and(|r| r.starts_with(b"/")))
            })
            .map(|m| m.mount_point)
            .collect()
    }

    /// Checks the directory that keeps old roots (a plain directory of the
    /// top-level volume), or plans to make it.
    fn old_roots_dir(&self, old: &Path, plan: &mut Plan) -> Result<()> {
        match std::fs::symlink_metadata(old) {
            Ok(m) if m.is_dir() && m.dev() == std::fs::symlink_metadata(&self.top)?.dev() && m.ino() != SUBVOLUME_INO => {}
            Ok(m) if m.is_dir() => plan.refusals.push(Refusal::new(
                ExitCode::Incomplete,
                format!("{} is a subvolume of its own: moving the root into it would copy it; make it a plain directory", old.display()),
            )),
            Ok(_) => plan.refusals.push(Refusal::new(
                ExitCode::Incomplete,
                format!("{} exists and is not a directory", old.display()),
            )),
            Err(_) => plan.steps.push(Step {
                action: Action::Run(Cmd::new("mkdir").arg("--").arg(old)),
                what: "make the directory that keeps old roots".into(),
                if_fails: "nothing was changed".into(),
            }),
        }
        Ok(())
    }

    /// The plan of a rollback: the guards first (mark, blank subvolume,
    /// the running root), then the steps (move the root aside, snapshot
    /// the blank one in its place), then retention.
    pub fn plan(&self, args: &RollbackArgs, now: i64) -> Result<Plan> {
        let root = self.at(&self.subvolume);
        let blank = self.at(&self.blank);
        let old = self.at(&self.old_roots);
        let mut plan = self.new_plan(&blank)?;
        if !self.check_blank(&blank, &mut plan)? {
            return Ok(plan);
        }
        let snapshot = Step {
            action: Action::Run(Cmd::new("btrfs").args(["subvolume", "snapshot"]).arg(&blank).arg(&root)),
            what: "make the new root: a writable snapshot of the blank one".into(),
            if_fails: String::new(),
        };
        if !root.exists() {
            plan_recreate(&root, snapshot, &mut plan);
            return Ok(plan);
        }
        if !is_subvolume(&root) {
            bail!("{} is not a btrfs subvolume", root.display());
        }
        self.guard_running_root(&root, &mut plan)?;
        plan.mounted = self.mounted_at().iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect();
        // The archive: a rename within one subvolume (mv would copy across two).
        let name = archive_name(&old, now);
        let archive = old.join(&name);
        self.old_roots_dir(&old, &mut plan)?;
        let subvolumes = self.subvolumes()?;
        self.name_nested(&subvolumes, &archive, &mut plan)?;
        plan_move_aside(&root, &blank, &archive, snapshot, &mut plan);
        plan.archive_name = Some(name.clone());
        self.plan_retention(args, now, &name, &subvolumes, &mut plan)?;
        Ok(plan)
    }

    /// A plan with what it is about, refused when the root is not marked.
    fn new_plan(&self, blank: &Path) -> Result<Plan> {
        let mut plan = Plan {
            backend: "btrfs",
            target: self.describe(),
            confirm: self.subvolume.clone(),
            blank: blank.display().to_string(),
            marked: self.marked()?,
            ..Plan::default()
        };
        if plan.marked.is_none() {
            plan.refusals.push(Refusal::new(
                ExitCode::Incomplete,
                format!(
                    "{} is not marked as ephemeral; mark it once with `darlings mark {} --subvolume {}`",
                    self.subvolume,
                    match &self.device {
                        Some(d) => format!("--device {}", d.display()),
                        None => format!("--mountpoint {}", self.top.display()),
                    },
                    self.subvolume
                ),
            ));
        }
        Ok(plan)
    }

    /// The blank subvolume must exist (false: the plan ends here) and be
    /// read-only (else it may not be blank any more: refused).
    fn check_blank(&self, blank: &Path, plan: &mut Plan) -> Result<bool> {
        if !is_subvolume(blank) {
            plan.refusals.push(Refusal::new(
                ExitCode::Incomplete,
                format!("there is no blank subvolume {}", blank.display()),
            ));
            return Ok(false);
        }
        let (created, readonly) = self.show(blank)?;
        plan.blank_created = created;
        if !readonly {
            plan.refusals.push(Refusal::new(
                ExitCode::Incomplete,
                format!(
                    "the blank subvolume is writable, so it may not be blank any more; check it, then `btrfs property set -ts {} ro true`",
                    blank.display()
                ),
            ));
        }
        Ok(true)
    }

    /// Refuses (unless `--live`) when `/` is this very subvolume.
    fn guard_running_root(&self, root: &Path, plan: &mut Plan) -> Result<()> {
        let root_meta = std::fs::symlink_metadata(root)?;
        let slash = std::fs::symlink_metadata("/")?;
        if slash.dev() == root_meta.dev() && slash.ino() == root_meta.ino() {
            plan.refusals.push(
                Refusal::new(
                    ExitCode::Incomplete,
                    format!("{} is the running root (/): erasing it under running programs is dangerous; do it from the initrd", self.subvolume),
                )
                .unless("--live"),
            );
        }
        Ok(())
    }

    /// Names each subvolume nested in the root: it moves into the archive
    /// with the old root, and the new root does not have it.
    fn name_nested(&self, subvolumes: &Subvolumes, archive: &Path, plan: &mut Plan) -> Result<()> {
        for (_, n) in subvolumes.below(self.id_of(&self.subvolume)?) {
            let inner = n.strip_prefix(&format!("{}/", self.subvolume)).unwrap_or(&n);
            plan.children.push(format!(
                "/{inner} (nested subvolume): moves with the old root into {}; the new root does not have it",
                archive.display()
            ));
        }
        Ok(())
    }

    /// Retention: deletes the archives `--retain` / `--retain-days` let go,
    /// each one's nested subvolumes first (deepest first, by id).
    fn plan_retention(
        &self,
        args: &RollbackArgs,
        now: i64,
        name: &str,
        subvolumes: &Subvolumes,
        plan: &mut Plan,
    ) -> Result<()> {
        let old = self.at(&self.old_roots);
        let newest = Archive { name: name.to_owned(), created: Some(now), size: None, ours: true };
        let existing = self.list_archives(false)?;
        for gone in super::prune(&existing, &newest, args.retain, args.retain_days, now) {
            let path = old.join(&gone);
            let rel = format!("{}/{gone}", self.old_roots);
            for (id, n) in subvolumes.below(self.id_of(&rel)?) {
                plan.steps.push(Step {
                    // By id: a name from the listing may not survive it (a newline in it).
                    action: Action::Run(
                        Cmd::new("btrfs")
                            .args(["subvolume", "delete", "--subvolid"])
                            .arg(id.to_string())
                            .arg(&self.top),
                    ),
                    what: format!("retention: delete {n}, a subvolume nested in archive {gone}"),
                    if_fails: format!("the rollback is done; pruning {gone} stopped half way: delete what is left of {} by hand", path.display()),
                });
            }
            plan.steps.push(Step {
                action: Action::Run(Cmd::new("btrfs").args(["subvolume", "delete"]).arg(&path)),
                what: format!("retention: delete archive {gone}"),
                if_fails: format!(
                    "the rollback is done; archive {gone} was not pruned: `btrfs subvolume delete {}`",
                    path.display()
                ),
            });
            plan.pruned.push(path.display().to_string());
        }
        Ok(())
    }

    pub fn audit_place(&self) -> Result<Option<AuditPlace>> {
        let root = self.at(&self.subvolume);
        if !root.exists() {
            return Ok(None);
        }
        // Where the system runs it, claims can be checked; else they are assumed.
        let mounted = self.mounted_at();
        let place = mounted
            .iter()
            .find(|m| m.as_slice() == b"/")
            .or_else(|| mounted.first())
            .map(|m| PathBuf::from(OsStr::from_bytes(m)));
        Ok(Some(AuditPlace {
            verified: place.is_some(),
            root: place.unwrap_or(root),
            source: SourceKind::Walk,
            baseline: Some(self.at(&self.blank)),
            dataset: None,
            snapshot: String::new(),
            _guard: None,
        }))
    }

    pub fn verify(&self, plan: &Plan) -> Vec<(String, bool)> {
        let root = self.at(&self.subvolume);
        let blank = self.at(&self.blank);
        let mut checks = Vec::new();
        let same = match (crate::sys::root::Root::open(&root), crate::sys::root::Root::open(&blank)) {
            (Ok(r), Ok(b)) => {
                let mut tree = crate::source::tree::ChangeTree::new();
                let cmp = crate::source::baseline::compare(
                    &r,
                    &b,
                    crate::source::baseline::Blank::Snapshot,
                    &mut tree,
                    2,
                );
                tree.is_empty() && cmp.errors.is_empty()
            }
            _ => false,
        };
        checks.push((
            format!("{} is a subvolume equal to {}", root.display(), blank.display()),
            is_subvolume(&root) && same,
        ));
        if let Some(name) = &plan.archive_name {
            let archive = self.at(&self.old_roots).join(name);
            checks.push((format!("the old root is kept at {}", archive.display()), is_subvolume(&archive)));
        }
        for p in &plan.pruned {
            checks.push((format!("{p} was pruned"), !Path::new(p).exists()));
        }
        checks
    }

    fn list_archives(&self, sizes: bool) -> Result<Vec<Archive>> {
        let old = self.at(&self.old_roots);
        let entries = match std::fs::read_dir(&old) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", old.display())),
        };
        let mut list = Vec::new();
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            if !is_subvolume(&path) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            // A stamp, or a stamp and `-N` (two rollbacks in one second).
            let (stamp, n) = name.split_once('-').unwrap_or((&name, "1"));
            let parsed =
                super::parse_stamp(stamp).filter(|_| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            let size = if sizes {
                Cmd::new("du").args(["-s", "-x", "-B1", "--"]).arg(&path).output().ok().and_then(|o| {
                    String::from_utf8_lossy(&o).split_whitespace().next().and_then(|n| n.parse().ok())
                })
            } else {
                None
            };
            list.push(Archive {
                created: parsed.or_else(|| std::fs::symlink_metadata(&path).ok().map(|m| m.mtime())),
                ours: parsed.is_some(),
                name,
                size,
            });
        }
        Ok(list)
    }

    pub fn archives(&self) -> Result<Vec<Archive>> {
        self.list_archives(true)
    }
}

/// The root is gone (an interrupted rollback): the plan only makes it anew.
fn plan_recreate(root: &Path, snapshot: Step, plan: &mut Plan) {
    plan.notes.push(format!(
        "{} does not exist (an interrupted rollback?): it is made anew from the blank subvolume; nothing is erased",
        root.display()
    ));
    plan.steps.push(Step {
        if_fails: format!(
            "there is still no {}; the system cannot boot until it exists: run `darlings rollback` again",
            root.display()
        ),
        ..snapshot
    });
}

/// The erase: move the root aside into `archive` (it is the way back), then
/// `snapshot` the blank subvolume in its place.
fn plan_move_aside(root: &Path, blank: &Path, archive: &Path, snapshot: Step, plan: &mut Plan) {
    plan.steps.push(Step {
        action: Action::Run(Cmd::new("mv").arg("--").arg(root).arg(archive)),
        what: "move the current root aside: it is the archive, the way back".into(),
        if_fails: "nothing was changed (a rename is all or nothing)".into(),
    });
    plan.steps.push(Step {
        if_fails: format!(
            "the old root is safe at {a}, but there is no {r}, and the system cannot boot without it. \
             Finish with `btrfs subvolume snapshot {b} {r}` (or run `darlings rollback` again), \
             or undo with `mv -- {a} {r}`",
            a = archive.display(),
            r = root.display(),
            b = blank.display()
        ),
        ..snapshot
    });
    plan.archive = Some(format!("{} (the old root, moved aside)", archive.display()));
}

/// The archive's name in `old`: the time stamp, `-2`, `-3`… when taken.
fn archive_name(old: &Path, now: i64) -> String {
    let base = super::stamp(now);
    let mut name = base.clone();
    let mut n = 1;
    while std::fs::symlink_metadata(old.join(&name)).is_ok() {
        n += 1;
        name = format!("{base}-{n}");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::Subvolumes;

    #[test]
    fn nested_subvolumes_deepest_first_by_id() {
        let list = Subvolumes::parse(
            "ID 256 gen 9 parent 5 top level 5 path root\n\
             ID 257 gen 9 parent 5 top level 5 path root-blank\n\
             ID 258 gen 12 parent 256 top level 256 path root/var/lib/machines\n\
             ID 260 gen 13 parent 258 top level 258 path root/var/lib/machines/odd\n\
             name\n\
             ID 261 gen 14 parent 256 top level 256 path <FS_TREE>/root/srv\n",
        );
        let below: Vec<u64> = list.below(256).into_iter().map(|(id, _)| id).collect();
        assert_eq!(below[0], 260, "deepest first: {below:?}");
        assert_eq!(below.len(), 3);
        assert!(below.contains(&258) && below.contains(&261));
        assert!(list.below(257).is_empty());
        assert_eq!(list.below(258), vec![(260, "root/var/lib/machines/odd".to_owned())]);
    }
}
