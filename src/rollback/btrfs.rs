//! The btrfs backend. The root is a subvolume of the filesystem's top-level
//! volume (`--subvolume root`), next to a read-only blank one
//! (`--blank root-blank`). A rollback moves the root aside into
//! `--old-roots` (`old_roots/<stamp>`: the old root *is* the archive, with
//! any nested subvolumes inside it), makes a fresh writable snapshot of the
//! blank one in its place, and makes the archive read-only (unless
//! `--writable-archive`), so the way back cannot change under you.
//!
//! The top-level volume is reached where `--mountpoint` says it is mounted,
//! or mounted from `--device` at `/run/darlings/btrfs-top` for as long as
//! darlings works (a fixed place, so that a dry run prints exactly the
//! commands a real run would; a mount already there means another darlings
//! is at work, and is refused).
//!
//! Kept in extended attributes of the top-level volume's root directory,
//! outside every subvolume a rollback touches: the ephemeral mark
//! (`user.darlings.ephemeral`, the marked subvolume paths one per line),
//! the last rollback (`user.darlings.last-rollback`) and, for each archive,
//! whether it holds data and when it was made (`user.darlings.archives`,
//! read by retention and `archives`).
//!
//! The mount table says where a subvolume is mounted: its root field is the
//! subvolume's path *now* (it follows a rename), so a root mounted for
//! maintenance shows up, after a rollback, as a mount of the archive.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{
    retain, shown, shown_path, Action, Archive, AuditPlace, Backend, Blank, Check, Error, Kept, LastRollback,
    Mark, Plan, Problem, Result, Retention, RootState, Step,
};
use crate::config::Rollback;
use crate::config::TargetNames;
use crate::sanitize::{escape, shell_words};
use crate::sys::command::Cmd;
use crate::sys::dir::{self as at, Ident};
use crate::sys::lock::{lock_name, Lock};

pub const HELPER_DIR: &str = "/run/darlings/btrfs-top";
pub const MARK_XATTR: &str = "user.darlings.ephemeral";
pub const OUTCOME_XATTR: &str = "user.darlings.last-rollback";
pub const ARCHIVES_XATTR: &str = "user.darlings.archives";
/// The directory of the top-level volume that keeps the records of
/// `darlings record`.
pub const RECORD_DIR: &str = ".darlings";
/// The archives a rollback moved aside and has not made read-only yet
/// (one name a line): written before the move, cleared once sealed, so
/// that a run killed in between leaves a note every later run acts on.
pub const UNSEALED_XATTR: &str = "user.darlings.unsealed";

/// The inode number of every subvolume's root directory.
const SUBVOLUME_INO: u64 = 256;
/// The top-level volume's subvolume id.
const TOP_ID: u64 = 5;

/// The subvolumes of a filesystem as `btrfs subvolume list -p` shows
/// them: id, parent id, path. Names are printed raw, so a name holding a
/// newline can forge lines: this proposes, [`Btrfs::nested_below`] checks
/// with the kernel before anything is deleted.
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

    /// The subvolumes right below the top-level volume, for messages that
    /// list what exists (escaped).
    fn top_names(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, parent, _)| *parent == TOP_ID)
            .map(|(_, _, p)| shown(p).into_owned())
            .collect()
    }
}

pub struct Btrfs {
    top: PathBuf,
    /// The top-level volume, held: the erase acts from it, not by path.
    /// Closed before the helper mount is undone (fields drop in order).
    top_fd: Arc<OwnedFd>,
    device: Option<PathBuf>,
    pub subvolume: String,
    pub blank: String,
    pub old_roots: String,
    _helper: Option<TopMount>,
    /// With `--device`: the lock on the helper mount's place, taken before
    /// it is mounted and let go after it is undone.
    _helper_lock: Option<Lock>,
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

/// How a command given to a person reaches the top-level volume. Where
/// darlings mounted it itself (`--device`), the mount is gone by the time
/// anyone reads the command (after a failed step, in `status` after a
/// reboot): the command then mounts it first, and unmounts it after.
struct Reach {
    mount: Option<(String, String)>,
}

impl Reach {
    /// `cmd` as a person runs it, from a shell, now or after a reboot.
    fn by_hand(&self, cmd: &Cmd) -> String {
        match &self.mount {
            None => cmd.display(),
            Some((mount, umount)) => format!("{mount} && {} && {umount}", cmd.display()),
        }
    }
}

/// The exact path (in the top-level volume `top`) of subvolume `id` when
/// it lies below `prefix` (which ends in `/`) and the subvolume there is
/// `id`: the kernel's answers, not the listing's text. Asked when the plan
/// is made and again right before a nested subvolume is deleted by id
/// (a user may have moved it out of the archive in between).
fn resolve_below(top: &Path, id: u64, prefix: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut out =
        btrfs().args(["inspect-internal", "subvolid-resolve"]).arg(id.to_string()).arg(top).output()?;
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    if !out.starts_with(prefix) || out.len() == prefix.len() {
        return Ok(None);
    }
    let at = top.join(OsStr::from_bytes(&out));
    let real = btrfs().args(["inspect-internal", "rootid"]).arg(&at).output();
    Ok(real.is_ok_and(|r| String::from_utf8_lossy(&r).trim() == id.to_string()).then_some(out))
}

/// A name as darlings keeps it: its components joined by one `/` (a
/// trailing or doubled `/` names the same directory).
fn normal(rel: &str) -> String {
    rel.split('/').filter(|c| !c.is_empty()).collect::<Vec<_>>().join("/")
}

/// A path inside the top-level volume: relative, no `..`, not empty, no
/// newline (the mark lists paths one per line).
fn inside(flag: &str, rel: &str) -> Result<()> {
    let p = Path::new(rel);
    if rel.is_empty()
        || rel.contains('\n')
        || p.is_absolute()
        || p.components().any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(Error::Target(format!(
            "{flag} {}: give a path relative to the top-level volume, like `root`",
            crate::sanitize::shell_quote(rel.as_bytes())
        )));
    }
    Ok(())
}

fn is_subvolume(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir() && m.ino() == SUBVOLUME_INO)
}

/// The subvolumes the mark lists, as the held top-level volume carries it.
fn marks_of(top: BorrowedFd<'_>) -> Result<Vec<String>> {
    Ok(at::get_xattr(top, MARK_XATTR)
        .map_err(|e| Error::io(format!("cannot read {MARK_XATTR}"), e))?
        .map(|v| String::from_utf8_lossy(&v).lines().map(str::to_owned).collect())
        .unwrap_or_default())
}

fn btrfs() -> Cmd {
    Cmd::new("btrfs")
}

/// `btrfs property set -ts PATH ro VALUE`.
fn set_ro(path: &Path, ro: bool) -> Cmd {
    btrfs().args(["property", "set", "-ts"]).arg(path).args(["ro", if ro { "true" } else { "false" }])
}

impl Btrfs {
    pub fn open(args: &TargetNames, writable: bool) -> Result<Btrfs> {
        inside("--subvolume", &args.subvolume)?;
        inside("--blank", &args.blank)?;
        inside("--old-roots", &args.old_roots)?;
        let mut helper_lock = None;
        let (top, helper) = match (&args.mountpoint, &args.device) {
            (Some(dir), _) => {
                let top = std::fs::canonicalize(dir)
                    .map_err(|e| Error::io(format!("--mountpoint {}", shown_path(dir)), e))?;
                let id = btrfs().args(["inspect-internal", "rootid"]).arg(&top).output()?;
                if String::from_utf8_lossy(&id).trim() != TOP_ID.to_string() {
                    return Err(Error::Target(format!(
                        "--mountpoint {}: not the top-level volume of a btrfs (mount it with -o subvolid=5)",
                        shown_path(&top)
                    )));
                }
                (top, None)
            }
            (None, Some(device)) => {
                helper_lock = Some(Lock::file("btrfs-top.lock", HELPER_DIR, args.wait)?);
                let dir = PathBuf::from(HELPER_DIR);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Error::io(format!("cannot create {HELPER_DIR}"), e))?;
                let mounts =
                    crate::sys::mounts::mount_table().map_err(|e| Error::io("cannot read mountinfo", e))?;
                // Under the lock no other darlings is at work: a mount there
                // was left by one that died (a kill, a power cut of the
                // namespace); it goes.
                if mounts.iter().any(|m| m.mount_point == HELPER_DIR.as_bytes())
                    && rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::DETACH).is_err()
                {
                    return Err(Error::Target(format!(
                        "{HELPER_DIR} is a mount point left by another darlings, and cannot be unmounted: umount {HELPER_DIR}"
                    )));
                }
                let mut flags = rustix::mount::MountFlags::NOSUID
                    | rustix::mount::MountFlags::NODEV
                    | rustix::mount::MountFlags::NOEXEC;
                if !writable {
                    flags |= rustix::mount::MountFlags::RDONLY;
                }
                rustix::mount::mount(device, &dir, "btrfs", flags, c"subvolid=5").map_err(|e| {
                    Error::io(
                        format!(
                            "cannot mount the top-level volume of {} at {HELPER_DIR}",
                            shown_path(device)
                        ),
                        e,
                    )
                })?;
                (dir.clone(), Some(TopMount { dir }))
            }
            (None, None) => return Err(Error::Target("btrfs: give --device or --mountpoint".into())),
        };
        let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
        let top_fd = rustix::fs::open(&top, flags, rustix::fs::Mode::empty())
            .map_err(|e| Error::io(format!("cannot open {}", shown_path(&top)), e))?;
        Ok(Btrfs {
            top_fd: Arc::new(top_fd),
            top,
            // Absolute (links kept: /dev/disk/by-label/… stays stable across
            // boots), so that recovery commands work from anywhere.
            device: args
                .device
                .as_deref()
                .map(std::path::absolute)
                .transpose()
                .map_err(|e| Error::io("--device", e))?,
            subvolume: normal(&args.subvolume),
            blank: normal(&args.blank),
            old_roots: normal(&args.old_roots),
            _helper: helper,
            _helper_lock: helper_lock,
        })
    }

    fn reach(&self) -> Reach {
        let mount = match (&self._helper, &self.device) {
            (Some(top), Some(device)) => {
                let dir = top.dir.as_os_str().as_bytes();
                let mount = format!(
                    "{} && {}",
                    shell_words(&[b"mkdir".as_slice(), b"-p", dir]),
                    shell_words(&[
                        b"mount".as_slice(),
                        b"-o",
                        b"subvolid=5",
                        device.as_os_str().as_bytes(),
                        dir
                    ])
                );
                Some((mount, shell_words(&[b"umount".as_slice(), dir])))
            }
            _ => None,
        };
        Reach { mount }
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.top.join(rel)
    }

    pub fn archive_path(&self, archive: &Archive) -> PathBuf {
        self.at(&self.old_roots).join(&archive.name)
    }

    /// The flags that name this filesystem, as a command line shows them.
    fn target_flags(&self) -> Vec<Vec<u8>> {
        let (flag, path) = match &self.device {
            Some(d) => ("--device", d),
            None => ("--mountpoint", &self.top),
        };
        vec![flag.into(), path.as_os_str().as_bytes().to_vec()]
    }

    fn marks(&self) -> Result<Vec<String>> {
        marks_of(self.top_fd.as_fd())
    }

    /// An attribute of the top-level volume (read through the held one).
    fn top_xattr(&self, name: &str) -> Result<Option<Vec<u8>>> {
        at::get_xattr(self.top_fd.as_fd(), name)
            .map_err(|e| Error::io(format!("cannot read {name} of {}", shown_path(&self.top)), e))
    }

    fn set_top_xattr(&self, name: &str, value: &[u8]) -> Result<()> {
        at::set_xattr(self.top_fd.as_fd(), name, value)
            .map_err(|e| Error::io(format!("cannot write {name} of {}", shown_path(&self.top)), e))
    }

    /// `btrfs subvolume show`: (creation time, read-only). The creation
    /// time is the subvolume's birth time (btrfs reports its otime there).
    fn show(&self, path: &Path) -> Result<(Option<i64>, bool)> {
        let readonly = read_only_and_generation(path)?.0;
        let created = std::fs::symlink_metadata(path)
            .and_then(|m| m.created())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok());
        Ok((created, readonly))
    }

    /// Every subvolume of the filesystem (`btrfs subvolume list -p`).
    fn subvolumes(&self) -> Result<Subvolumes> {
        let out = btrfs().args(["subvolume", "list", "-p"]).arg(&self.top).output()?;
        Ok(Subvolumes::parse(&String::from_utf8_lossy(&out)))
    }

    /// The subvolume id of the subvolume at `rel`.
    fn id_of(&self, rel: &str) -> Result<u64> {
        subvolume_id(&self.at(rel))?
            .ok_or_else(|| Error::Target(format!("no subvolume id for {}", shown(rel))))
    }

    /// Where `rel` (a path of the top-level volume) or anything below it is
    /// mounted: mountinfo entries of this filesystem (the device numbers of
    /// the top-level volume's mount) whose root field lies there.
    fn mounted_below(&self, rel: &str) -> Vec<Vec<u8>> {
        let Ok(mounts) = crate::sys::mounts::mount_table() else { return Vec::new() };
        let top = self.top.as_os_str().as_bytes();
        let Some(dev) =
            mounts.iter().rev().find(|m| m.mount_point == top && m.fstype == "btrfs").map(|m| m.dev.clone())
        else {
            return Vec::new();
        };
        let sub = format!("/{rel}");
        mounts
            .into_iter()
            .filter(|m| {
                m.dev == dev
                    && m.mount_point != top
                    && (m.fs_root == sub.as_bytes()
                        || m.fs_root.strip_prefix(sub.as_bytes()).is_some_and(|r| r.starts_with(b"/")))
            })
            .map(|m| m.mount_point)
            .collect()
    }

    /// The root subvolume's own directory, held (`None`: it does not exist).
    fn root_dir(&self) -> Result<Option<OwnedFd>> {
        match at::open_dir(self.top_fd.as_fd(), self.subvolume.as_bytes()) {
            Ok(fd) => Ok(Some(fd)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::io(format!("cannot open {}", shown_path(&self.at(&self.subvolume))), e)),
        }
    }

    /// Whether `/` is this very subvolume.
    fn is_running_root(root: &Path) -> Result<bool> {
        let root_meta = std::fs::symlink_metadata(root).map_err(|e| Error::io(shown_path(root), e))?;
        let slash = std::fs::symlink_metadata("/").map_err(|e| Error::io("/", e))?;
        Ok(slash.dev() == root_meta.dev() && slash.ino() == root_meta.ino())
    }

    /// The subvolumes nested below the subvolume at `rel`, deepest first
    /// (the order to delete them in), each with its exact path in the
    /// top-level volume. The listing is text in which a name may hold a
    /// newline and so forge a line (`…\nID 257 gen 1 parent 256 … path y`):
    /// it only proposes ids. Each is kept only if the kernel's own answers
    /// agree: `subvolid-resolve` gives its real path (the whole output is
    /// one path), which must lie below `rel`, and the subvolume at that
    /// path must have that id. A forged id names a subvolume elsewhere and
    /// is dropped; ids are never reused, so the one checked is the one
    /// deleted.
    fn nested_below(&self, subvolumes: &Subvolumes, rel: &str) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut prefix = rel.as_bytes().to_vec();
        prefix.push(b'/');
        let mut nested = Vec::new();
        for (id, _) in subvolumes.below(self.id_of(rel)?) {
            if let Some(path) = resolve_below(&self.top, id, &prefix)? {
                nested.push((id, path));
            }
        }
        nested.sort_by_key(|(_, path)| std::cmp::Reverse(path.iter().filter(|&&b| b == b'/').count()));
        Ok(nested)
    }

    /// Names each subvolume nested in the root: it moves into the archive
    /// with the old root, and the new root does not have it.
    fn name_nested(&self, subvolumes: &Subvolumes, archive: &Path, plan: &mut Plan) -> Result<()> {
        let skip = self.subvolume.len() + 1;
        for (_, path) in self.nested_below(subvolumes, &self.subvolume)? {
            plan.children.push(format!(
                "/{} (nested subvolume): moves with the old root into {}; the new root does not have it",
                escape(&path[skip..]),
                shown_path(archive)
            ));
        }
        Ok(())
    }

    /// What was noted of each archive when it was made.
    fn ledger(&self) -> BTreeMap<String, Noted> {
        self.top_xattr(ARCHIVES_XATTR)
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice::<BTreeMap<String, Entry>>(&v).ok())
            .map(|ledger| ledger.into_iter().map(|(name, entry)| (name, entry.into())).collect())
            .unwrap_or_default()
    }

    /// The steps that delete one archive: nested subvolumes first (by id,
    /// deepest first: a name with a newline cannot be given by path), after
    /// making it writable (nothing can be deleted inside a read-only one).
    fn prune_steps(&self, gone: &str, subvolumes: &Subvolumes, plan: &mut Plan) -> Result<()> {
        let path = self.at(&self.old_roots).join(gone);
        let rel = format!("{}/{gone}", self.old_roots);
        let nested = self.nested_below(subvolumes, &rel)?;
        // Ids are never reused: the archive the plan chose is the one acted on.
        let id = self.id_of(&rel)?;
        let same = || {
            let path = path.clone();
            Check::new(move || match subvolume_id(&path) {
                Ok(Some(now)) if now == id && is_subvolume(&path) => Ok(()),
                _ => Err(format!(
                    "{} is no longer the archive the plan chose (subvolume {id})",
                    shown_path(&path)
                )),
            })
        };
        let delete = btrfs().args(["subvolume", "delete"]).arg(&path);
        let reach = self.reach();
        let by_hand = format!(
            "the rollback is done; archive {} was not pruned: delete what is left of it with `{}` (after `{}`)",
            shown(gone),
            reach.by_hand(&delete),
            reach.by_hand(&set_ro(&path, false))
        );
        if !nested.is_empty() {
            plan.steps.push(Step {
                action: Action::Checked(set_ro(&path, false), same()),
                what: format!(
                    "retention: make archive {} writable to delete what is nested in it",
                    shown(gone)
                ),
                if_fails: by_hand.clone(),
            });
        }
        let mut prefix = rel.as_bytes().to_vec();
        prefix.push(b'/');
        for (id, n) in nested {
            let (top, prefix) = (self.top.clone(), prefix.clone());
            let still_there = Check::new(move || match resolve_below(&top, id, &prefix) {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(format!("subvolume {id} is no longer inside the archive")),
                Err(e) => Err(format!("cannot tell whether subvolume {id} is still inside the archive: {e}")),
            });
            plan.steps.push(Step {
                action: Action::Checked(
                    btrfs().args(["subvolume", "delete", "--subvolid"]).arg(id.to_string()).arg(&self.top),
                    still_there,
                ),
                what: format!(
                    "retention: delete {}, a subvolume nested in archive {}",
                    escape(&n),
                    shown(gone)
                ),
                if_fails: by_hand.clone(),
            });
        }
        plan.steps.push(Step {
            action: Action::Checked(delete, same()),
            what: format!("retention: delete archive {}", shown(gone)),
            if_fails: by_hand,
        });
        plan.pruned.push(shown_path(&path));
        plan.pruned_names.push(gone.to_owned());
        Ok(())
    }
}

impl Backend for Btrfs {
    fn name(&self) -> String {
        match &self.device {
            Some(d) => format!("btrfs subvolume {} of {}", shown(&self.subvolume), shown_path(d)),
            None => format!(
                "btrfs subvolume {} of the filesystem at {}",
                shown(&self.subvolume),
                shown_path(&self.top)
            ),
        }
    }

    fn marked(&self) -> Result<Option<String>> {
        Ok(self
            .marks()?
            .iter()
            .any(|m| m == &self.subvolume)
            .then(|| format!("yes ({MARK_XATTR} of the top-level volume lists {})", shown(&self.subvolume))))
    }

    fn mark(&self, on: bool) -> Result<String> {
        let mut marks = self.marks()?;
        let was = marks.iter().any(|m| m == &self.subvolume);
        let exists = is_subvolume(&self.at(&self.subvolume));
        if on && !exists {
            return Err(Error::Target(format!(
                "there is no subvolume {} in {}: mark the root subvolume (there are: {})",
                shown(&self.subvolume),
                shown_path(&self.top),
                super::list(&self.subvolumes()?.top_names())
            )));
        }
        if !on && !was {
            return Err(Error::Target(format!("{} is not marked as ephemeral", self.name())));
        }
        marks.retain(|m| m != &self.subvolume);
        if on {
            marks.push(self.subvolume.clone());
        }
        if marks.is_empty() {
            rustix::fs::removexattr(&self.top, MARK_XATTR)
                .or_else(|e| if e == rustix::io::Errno::NODATA { Ok(()) } else { Err(e) })
                .map_err(|e| Error::io(format!("cannot write {MARK_XATTR}"), e))?;
        } else {
            self.set_top_xattr(MARK_XATTR, marks.join("\n").as_bytes())?;
        }
        Ok(if on {
            format!("marked {} as ephemeral: `darlings rollback` may erase it", self.name())
        } else {
            format!("{} is no longer marked as ephemeral", self.name())
        })
    }

    /// The plan of a rollback: what the guards need to know (mark, blank
    /// subvolume, the running root, the old roots' directory, how the
    /// names lie), then the steps (seal what an interrupted run left
    /// writable, move the root aside, snapshot the blank one in its place,
    /// make the archive read-only), each acting on what the plan holds and
    /// checking right before that it is still what the plan found.
    fn plan(&self, args: &Rollback, now: i64) -> Result<Plan> {
        let root = self.at(&self.subvolume);
        let blank = self.at(&self.blank);
        let mut plan = Plan {
            backend: "btrfs",
            target: self.name(),
            confirm: self.subvolume.clone(),
            blank: shown_path(&blank),
            ..Plan::default()
        };
        plan.facts.target = shown(&self.subvolume).into_owned();
        let hint = [
            vec![b"darlings".to_vec(), b"mark".to_vec()],
            self.target_flags(),
            vec![b"--subvolume".to_vec(), self.subvolume.as_bytes().to_vec()],
        ]
        .concat();
        plan.facts.mark = match self.marked()? {
            Some(how) => Mark::Marked(how),
            None => Mark::Unmarked { hint: shell_words(&hint) },
        };
        if let Some(why) = placement(&self.subvolume, &self.blank, &self.old_roots) {
            plan.facts.problems.push(Problem::Placement(why));
            return Ok(plan);
        }
        let subvolumes = self.subvolumes()?;
        if !is_subvolume(&blank) {
            plan.facts.blank = Blank::Missing {
                what: format!("blank subvolume {}", shown(&self.blank)),
                existing: subvolumes.top_names(),
            };
            return Ok(plan);
        }
        let (created, readonly) = self.show(&blank)?;
        plan.blank_created = created;
        plan.facts.blank = Blank::Present {
            writable: (!readonly).then(|| self.reach().by_hand(&set_ro(&blank, true))),
            older: Vec::new(),
        };
        let held = Arc::new(self.hold()?);
        let old = self.old_roots_dir(&held, &mut plan)?;
        if !args.writable_archive {
            if let Some(old) = &old {
                self.plan_seal_unsealed(old, &mut plan)?;
            }
        }
        if held.root.is_none() {
            if matches!(plan.facts.mark, Mark::Marked(_)) {
                plan.facts.root = RootState::Missing;
                plan_recreate(&held, &root, &self.reach(), &mut plan);
            } else {
                plan.facts.root = RootState::NoSuch {
                    what: format!("subvolume {} in {}", shown(&self.subvolume), shown_path(&self.top)),
                    existing: subvolumes.top_names(),
                };
            }
            return Ok(plan);
        }
        if !is_subvolume(&root) {
            return Err(Error::Target(format!("{} is not a btrfs subvolume", shown_path(&root))));
        }
        plan.facts.running_root = Self::is_running_root(&root)?;
        plan.mounted = self.mounted_below(&self.subvolume).iter().map(|m| escape(m).into_owned()).collect();
        let Some(old) = old else { return Ok(plan) };
        let name = archive_name(&old, now);
        let archive = self.at(&self.old_roots).join(&name);
        self.name_nested(&subvolumes, &archive, &mut plan)?;
        plan.archive_id = self.id_of(&self.subvolume).ok();
        let read_only = !args.writable_archive;
        plan_move_aside(&held, &old, &name, &self.reach(), read_only, &mut plan);
        plan.archive_name = Some(name);
        Ok(plan)
    }

    /// Retention: deletes the archives `--retain` / `--retain-days` let go,
    /// never one that is mounted; says what it keeps and why.
    fn plan_retention(&self, args: &Rollback, now: i64, plan: &mut Plan) -> Result<()> {
        let rules = Retention { count: args.retain, days: args.retain_days };
        let Some(name) = plan.archive_name.clone().filter(|_| rules.asked()) else { return Ok(()) };
        let newest = Archive {
            name,
            created: Some(now),
            ours: true,
            holds: plan.facts.loss.as_ref().map(|l| !l.holds_nothing),
            ..Archive::default()
        };
        let existing = self.list_archives(false)?;
        let subvolumes = self.subvolumes()?;
        for (a, kept) in retain(&existing, &newest, rules, now) {
            match kept {
                Kept::Keep(why) => plan.retained.push(format!("{} ({why})", shown(&a.name))),
                Kept::Prune => self.prune_steps(&a.name, &subvolumes, plan)?,
            }
        }
        Ok(())
    }

    fn filesystem(&self) -> Option<std::os::fd::OwnedFd> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rustix::fs::open(&self.top, flags, Mode::empty()).ok()
    }

    fn audit_place(&self) -> Result<Option<AuditPlace>> {
        let root = self.at(&self.subvolume);
        if !root.exists() {
            return Ok(None);
        }
        // Where the system runs it, claims can be checked; else they are assumed.
        let mounted = self.mounted_below(&self.subvolume);
        let sub = format!("/{}", self.subvolume);
        let whole = crate::sys::mounts::mount_table().unwrap_or_default();
        let of_root =
            |m: &&Vec<u8>| whole.iter().any(|w| &w.mount_point == *m && w.fs_root == sub.as_bytes());
        let place = mounted
            .iter()
            .filter(of_root)
            .find(|m| m.as_slice() == b"/")
            .or_else(|| mounted.iter().find(of_root))
            .map(|m| PathBuf::from(OsStr::from_bytes(m)));
        Ok(Some(AuditPlace {
            verified: place.is_some(),
            root: place.unwrap_or(root),
            source: crate::source::Kind::Walk,
            baseline: Some(self.at(&self.blank)),
            dataset: None,
            snapshot: None,
            _guard: None,
        }))
    }

    /// The same subvolume root: btrfs gives each subvolume a device number
    /// of its own, the same wherever it is mounted.
    fn is_root_at(&self, path: &Path) -> Result<bool> {
        let Some(root) = self.root_dir()? else {
            return Err(Error::Target(format!(
                "there is no subvolume {} in {} (there are: {})",
                shown(&self.subvolume),
                shown_path(&self.top),
                super::list(&self.subvolumes()?.top_names())
            )));
        };
        let held = at::ident(root.as_fd()).map_err(|e| Error::io(shown(&self.subvolume), e))?;
        Ok(rustix::fs::stat(path).is_ok_and(|s| s.st_dev == held.dev && s.st_ino == held.ino))
    }

    /// The pointer lives on the root's own directory: an erase by any
    /// other means takes it along.
    fn record_pointer(&self) -> Result<Option<Vec<u8>>> {
        let Some(root) = self.root_dir()? else { return Ok(None) };
        at::get_xattr(root.as_fd(), super::record::RECORD_XATTR)
            .map_err(|e| Error::io(format!("cannot read {} of the root", super::record::RECORD_XATTR), e))
    }

    fn set_record_pointer(&self, value: Option<&[u8]>) -> Result<()> {
        let root = match self.root_dir()? {
            Some(root) => root,
            None if value.is_none() => return Ok(()),
            None => return Err(Error::Target(format!("there is no subvolume {}", shown(&self.subvolume)))),
        };
        at::set_xattr(root.as_fd(), super::record::RECORD_XATTR, value.unwrap_or_default())
            .map_err(|e| Error::io(format!("cannot write {} of the root", super::record::RECORD_XATTR), e))
    }

    /// `.darlings` in the top-level volume, beside every subvolume: one
    /// record per root subvolume.
    fn record_store(&self, access: super::record::Access) -> Result<Option<super::record::RecordStore>> {
        let top = self.top_fd.as_fd();
        let dir = match at::open_dir(top, RECORD_DIR.as_bytes()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) if access == super::record::Access::Create => {
                at::make_dir(top, RECORD_DIR.as_bytes())
                    .or_else(|e| if e == rustix::io::Errno::EXIST { Ok(()) } else { Err(e) })
                    .map_err(|e| Error::io(format!("cannot make {}", shown_path(&self.at(RECORD_DIR))), e))?;
                at::open_dir(top, RECORD_DIR.as_bytes())
                    .map_err(|e| Error::io(format!("cannot open {}", shown_path(&self.at(RECORD_DIR))), e))?
            }
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(Error::io(format!("cannot open {}", shown_path(&self.at(RECORD_DIR))), e)),
        };
        Ok(Some(super::record::RecordStore {
            dir,
            file: crate::sys::lock::file_name("record", self.subvolume.as_bytes(), "json"),
            shown: shown_path(&self.at(RECORD_DIR)),
            guard: None,
        }))
    }

    fn verify(&self, plan: &Plan) -> Vec<(String, bool)> {
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
            format!("{} is a subvolume equal to {}", shown_path(&root), shown_path(&blank)),
            is_subvolume(&root) && same,
        ));
        if let Some(name) = &plan.archive_name {
            let archive = self.at(&self.old_roots).join(name);
            checks
                .push((format!("the old root is kept at {}", shown_path(&archive)), is_subvolume(&archive)));
            if plan.archive_read_only {
                let ro = self.show(&archive).is_ok_and(|(_, ro)| ro);
                checks.push((format!("{} is read-only", shown_path(&archive)), ro));
            }
        }
        for name in &plan.pruned_names {
            let p = self.at(&self.old_roots).join(name);
            checks.push((format!("{} was pruned", shown_path(&p)), std::fs::symlink_metadata(&p).is_err()));
        }
        checks
    }

    fn mounts_after(&self, plan: &Plan) -> Vec<String> {
        let Some(name) = &plan.archive_name else { return Vec::new() };
        let rel = format!("{}/{name}", self.old_roots);
        self.mounted_below(&rel)
            .into_iter()
            .map(|m| {
                format!(
                    "{} still shows the old root: it is the archive {} now, not the new root; unmount it when done (`{}`)",
                    escape(&m),
                    shown(&rel),
                    shell_words(&[b"umount".as_slice(), &m])
                )
            })
            .collect()
    }

    fn note_archive(&self, plan: &Plan, made: i64) -> Result<()> {
        let Some(name) = &plan.archive_name else { return Ok(()) };
        let holds = plan.facts.loss.as_ref().map(|l| !l.holds_nothing);
        let old = self.at(&self.old_roots);
        let mut ledger = self.ledger();
        ledger.insert(name.clone(), Noted { holds, made: Some(made) });
        ledger.retain(|n, _| is_subvolume(&old.join(n)));
        let text = serde_json::to_string(&ledger).unwrap_or_default();
        self.set_top_xattr(ARCHIVES_XATTR, text.as_bytes())
    }

    fn record_outcome(&self, last: &LastRollback) -> Result<()> {
        self.set_top_xattr(OUTCOME_XATTR, last.encode().as_bytes())
    }

    fn last_outcome(&self) -> Option<Result<LastRollback, String>> {
        match self.top_xattr(OUTCOME_XATTR) {
            Ok(Some(v)) => Some(LastRollback::decode(&v)),
            Ok(None) => None,
            Err(e) => Some(Err(e.to_string())),
        }
    }

    /// The lock file (it names the holder) and the top-level volume
    /// itself, locked: a darlings reaching the same filesystem from another
    /// mount or mount namespace is kept out too.
    fn lock(&self, wait: std::time::Duration) -> Result<Lock> {
        let start = std::time::Instant::now();
        let fsid = rustix::fs::fstatvfs(self.top_fd.as_fd())
            .map_err(|e| Error::io(format!("cannot stat {}", shown_path(&self.top)), e))?
            .f_fsid;
        let name = lock_name("btrfs", format!("{fsid:016x}").as_bytes());
        let file = Lock::file(&name, &self.name(), wait)?;
        let dir = self.top_fd.try_clone().map_err(|e| Error::io("cannot duplicate a descriptor", e))?;
        let rest = wait.saturating_sub(start.elapsed());
        Ok(file.and(Lock::on_dir(dir, &self.name(), rest)?))
    }

    fn archive_holds_root(&self, last: &LastRollback) -> Option<bool> {
        let name = last.archive_name.as_ref()?;
        let rel = format!("{}/{name}", self.old_roots);
        if !is_subvolume(&self.at(&rel)) {
            return Some(false);
        }
        match last.archive_id {
            Some(id) => self.id_of(&rel).ok().map(|now| now == id),
            None => None,
        }
    }

    fn list_archives(&self, sizes: bool) -> Result<Vec<Archive>> {
        let old = self.at(&self.old_roots);
        let entries = match std::fs::read_dir(&old) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("cannot list {}", shown_path(&old)), e)),
        };
        let ledger = self.ledger();
        let mut list = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("cannot list {}", shown_path(&old)), e))?;
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
            let mounted = self
                .mounted_below(&format!("{}/{name}", self.old_roots))
                .into_iter()
                .map(|m| String::from_utf8_lossy(&m).into_owned())
                .collect();
            let noted = ledger.get(&name).copied().unwrap_or_default();
            list.push(Archive {
                read_only: if sizes { self.show(&path).ok().map(|(_, ro)| ro) } else { None },
                // When the root was moved aside; the name is when the
                // rollback started (an audit and a prompt earlier).
                created: noted
                    .made
                    .or(parsed)
                    .or_else(|| std::fs::symlink_metadata(&path).ok().map(|m| m.mtime())),
                ours: parsed.is_some(),
                holds: noted.holds,
                mounted,
                name,
                size,
            });
        }
        Ok(list)
    }
}

/// What the ledger (`user.darlings.archives`) keeps of one archive, noted
/// once it is made: whether it holds data (retention reads it; unknown
/// counts as holding), and when the root was moved aside (the archive's
/// name is when the rollback started: an audit and a prompt earlier).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Noted {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    holds: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    made: Option<i64>,
}

/// A ledger entry as written: a [`Noted`], or by earlier versions only
/// whether it holds data.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Entry {
    Holds(bool),
    Noted(Noted),
}

impl From<Entry> for Noted {
    fn from(entry: Entry) -> Noted {
        match entry {
            Entry::Holds(holds) => Noted { holds: Some(holds), made: None },
            Entry::Noted(noted) => noted,
        }
    }
}

/// Why the target's names cannot go together: the archives inside the
/// root (erased with it; the root cannot be renamed into itself) or inside
/// the read-only blank, the root inside the archives, the blank inside the
/// root or the root inside the blank. Compared by whole names.
fn placement(subvolume: &str, blank: &str, old_roots: &str) -> Option<String> {
    let (root, blank_p, old) = (Path::new(subvolume), Path::new(blank), Path::new(old_roots));
    let q = |s: &str| crate::sanitize::shell_quote(s.as_bytes());
    if old.starts_with(root) {
        return Some(format!(
            "--old-roots {} lies inside the root {}: the archive would be erased with it; keep old roots beside the root, e.g. --old-roots old_roots",
            q(old_roots),
            q(subvolume)
        ));
    }
    if root.starts_with(old) {
        return Some(format!(
            "the root {} lies inside --old-roots {}: give a directory beside it",
            q(subvolume),
            q(old_roots)
        ));
    }
    if old.starts_with(blank_p) {
        return Some(format!(
            "--old-roots {} lies inside the blank subvolume {}, which must stay blank",
            q(old_roots),
            q(blank)
        ));
    }
    if blank_p.starts_with(root) || root.starts_with(blank_p) {
        return Some(format!(
            "the root {} and the blank subvolume {} lie inside each other",
            q(subvolume),
            q(blank)
        ));
    }
    None
}

/// What the plan found, held for the steps: the top-level volume, the
/// directories of the root and the blank subvolume, and which inodes
/// their names led to.
struct Held {
    top: Arc<OwnedFd>,
    /// The directory that holds the root, its path, and the root's name.
    parent: OwnedFd,
    parent_path: PathBuf,
    root_name: Vec<u8>,
    /// The root (`None`: it does not exist), and the root and the blank
    /// subvolume themselves, held open: while they are, btrfs gives no
    /// other subvolume their device numbers, so an [`Ident`] names them.
    root: Option<Ident>,
    _root_fd: Option<OwnedFd>,
    blank_parent: OwnedFd,
    blank_name: Vec<u8>,
    blank: Ident,
    _blank_fd: OwnedFd,
    /// The blank subvolume's generation when the plan was made: it moves
    /// if anything is written in it (made writable for a while).
    blank_generation: Option<u64>,
    blank_path: PathBuf,
    /// The root's name in the mark.
    subvolume: String,
}

fn changed(what: &Path, how: impl std::fmt::Display) -> String {
    format!("{} changed since the plan was made: {how}", shown_path(what))
}

impl Held {
    fn root_path(&self) -> PathBuf {
        self.parent_path.join(OsStr::from_bytes(&self.root_name))
    }

    /// The root's name still leads to the subvolume the plan found.
    fn root_unchanged(&self) -> std::result::Result<Ident, String> {
        let now =
            at::ident_at(self.parent.as_fd(), &self.root_name).map_err(|e| changed(&self.root_path(), e))?;
        match self.root {
            Some(planned) if planned == now => Ok(now),
            _ => Err(changed(&self.root_path(), "it is another subvolume now")),
        }
    }

    fn blank_unchanged(&self) -> std::result::Result<(), String> {
        match at::ident_at(self.blank_parent.as_fd(), &self.blank_name) {
            Ok(now) if now == self.blank => Ok(()),
            Ok(_) => Err(changed(&self.blank_path, "it is another subvolume now")),
            Err(e) => Err(changed(&self.blank_path, e)),
        }
    }

    /// Right before the blank subvolume is copied: it is the planned one,
    /// its path leads there, it is read-only and nothing was written in it.
    fn blank_untouched(&self) -> std::result::Result<(), String> {
        self.blank_unchanged()?;
        if at::ident_of_path(&self.blank_path).ok() != Some(self.blank) {
            return Err(changed(&self.blank_path, "the path leads elsewhere now"));
        }
        let (readonly, generation) = read_only_and_generation(&self.blank_path).map_err(|e| e.to_string())?;
        if !readonly {
            return Err(changed(&self.blank_path, "it is not read-only"));
        }
        if generation.is_none() || generation != self.blank_generation {
            return Err(changed(&self.blank_path, "something was written in it"));
        }
        Ok(())
    }

    /// The mark, read from the held top-level volume, still lists the root.
    fn still_marked(&self) -> std::result::Result<(), String> {
        let marks = marks_of(self.top.as_fd()).map_err(|e| e.to_string())?;
        if marks.contains(&self.subvolume) {
            Ok(())
        } else {
            Err(format!("{} is no longer marked as ephemeral", shown(&self.subvolume)))
        }
    }

    /// The paths a command is given lead to what the plan holds: the
    /// root's directory and the blank subvolume.
    fn paths_lead_home(&self) -> std::result::Result<(), String> {
        let held = at::ident(self.parent.as_fd()).map_err(|e| e.to_string())?;
        if at::ident_of_path(&self.parent_path).ok() != Some(held) {
            return Err(changed(&self.parent_path, "the path leads elsewhere now"));
        }
        if at::ident_of_path(&self.blank_path).ok() != Some(self.blank) {
            return Err(changed(&self.blank_path, "the path leads elsewhere now"));
        }
        Ok(())
    }

    /// Right before the snapshot that makes the new root: its name is free
    /// and the blank one is the planned one.
    fn ready_for_new_root(&self) -> std::result::Result<(), String> {
        match at::ident_at(self.parent.as_fd(), &self.root_name) {
            Err(rustix::io::Errno::NOENT) => {}
            Ok(_) => {
                return Err(format!(
                    "{} exists: something made it after the plan; nothing is made over it",
                    shown_path(&self.root_path())
                ))
            }
            Err(e) => return Err(changed(&self.root_path(), e)),
        }
        self.blank_untouched()?;
        self.paths_lead_home()
    }
}

/// The directory that keeps old roots: held when it exists; else made by
/// the first step, which holds it then.
struct OldRoots {
    path: PathBuf,
    rel: Vec<u8>,
    parent: Arc<OwnedFd>,
    name: Vec<u8>,
    dir: Arc<Mutex<Option<OwnedFd>>>,
}

impl OldRoots {
    /// The held directory, if the name still leads to it.
    fn checked(&self, top: BorrowedFd<'_>) -> std::result::Result<OwnedFd, String> {
        let guard = self.dir.lock().map_err(|_| "a step panicked".to_owned())?;
        let held = guard.as_ref().ok_or_else(|| format!("{} was not made", shown_path(&self.path)))?;
        let now = at::open_dir(top, &self.rel).map_err(|e| changed(&self.path, e))?;
        if at::ident(now.as_fd()).ok() != at::ident(held.as_fd()).ok() {
            return Err(changed(&self.path, "it is not the directory the plan found (replaced meanwhile)"));
        }
        Ok(now)
    }
}

/// The names noted as moved aside and not sealed yet.
fn unsealed(top: BorrowedFd<'_>) -> Vec<Vec<u8>> {
    at::get_xattr(top, UNSEALED_XATTR)
        .ok()
        .flatten()
        .map(|v| v.split(|&b| b == b'\n').filter(|n| !n.is_empty()).map(<[u8]>::to_vec).collect())
        .unwrap_or_default()
}

/// Notes (or forgets) an archive as not sealed yet; names no longer in
/// `dir` (a run killed before its move) are forgotten on the way.
fn note_unsealed(
    top: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    name: &[u8],
    on: bool,
) -> std::result::Result<(), String> {
    let mut list = unsealed(top);
    list.retain(|n| n != name && at::ident_at(dir, n).is_ok());
    if on {
        list.push(name.to_vec());
    }
    at::set_xattr(top, UNSEALED_XATTR, &list.join(&b'\n'))
        .map_err(|e| format!("cannot write {UNSEALED_XATTR}: {e}"))
}

impl Btrfs {
    /// Opens what the plan acts on: the directories of the root and the
    /// blank subvolume, never through a symlink.
    fn hold(&self) -> Result<Held> {
        let open = |rel: &str| -> Result<(OwnedFd, PathBuf, Vec<u8>)> {
            let (dir, name) = at::split(rel.as_bytes());
            let fd = at::open_dir(self.top_fd.as_fd(), dir)
                .map_err(|e| Error::io(format!("cannot open the directory of {}", shown(rel)), e))?;
            Ok((fd, self.top.join(OsStr::from_bytes(dir)), name.to_vec()))
        };
        let (parent, parent_path, root_name) = open(&self.subvolume)?;
        let (blank_parent, _, blank_name) = open(&self.blank)?;
        let root = match at::ident_at(parent.as_fd(), &root_name) {
            Ok(i) => Some(i),
            Err(rustix::io::Errno::NOENT) => None,
            Err(e) => return Err(Error::io(shown(&self.subvolume), e)),
        };
        let blank =
            at::ident_at(blank_parent.as_fd(), &blank_name).map_err(|e| Error::io(shown(&self.blank), e))?;
        let hold = |dir: &OwnedFd, name: &[u8], what: &str| {
            at::open_dir(dir.as_fd(), name).map_err(|e| Error::io(format!("cannot open {}", shown(what)), e))
        };
        let root_fd = root.map(|_| hold(&parent, &root_name, &self.subvolume)).transpose()?;
        let blank_fd = hold(&blank_parent, &blank_name, &self.blank)?;
        if root_fd.as_ref().map(|fd| at::ident(fd.as_fd()).ok()).is_some_and(|i| i != root)
            || at::ident(blank_fd.as_fd()).ok() != Some(blank)
        {
            return Err(Error::Target(
                "the root or the blank subvolume changed while the plan was made".into(),
            ));
        }
        Ok(Held {
            top: Arc::clone(&self.top_fd),
            parent,
            parent_path,
            root_name,
            root,
            _root_fd: root_fd,
            blank_parent,
            blank_name,
            blank,
            _blank_fd: blank_fd,
            blank_generation: generation(&self.at(&self.blank)),
            blank_path: self.at(&self.blank),
            subvolume: self.subvolume.clone(),
        })
    }

    /// The directory that keeps old roots: a plain directory (not a
    /// subvolume, not a symlink) in the same subvolume as the root's own
    /// directory, so that one rename moves the root there. Held when it
    /// exists; else the first step makes it. `None`: a refusal says why.
    fn old_roots_dir(&self, held: &Held, plan: &mut Plan) -> Result<Option<OldRoots>> {
        let path = self.at(&self.old_roots);
        let (dir, name) = at::split(self.old_roots.as_bytes());
        let parent = match at::open_dir(self.top_fd.as_fd(), dir) {
            Ok(fd) => fd,
            Err(e) => {
                plan.facts.problems.push(Problem::Placement(format!(
                    "cannot open the directory of --old-roots {}: {e}",
                    shown_path(&path)
                )));
                return Ok(None);
            }
        };
        let root_dev =
            at::ident(held.parent.as_fd()).map_err(|e| Error::io(shown_path(&held.parent_path), e))?.dev;
        let old = OldRoots {
            path: path.clone(),
            rel: self.old_roots.as_bytes().to_vec(),
            name: name.to_vec(),
            parent: Arc::new(parent),
            dir: Arc::new(Mutex::new(None)),
        };
        match at::ident_at(old.parent.as_fd(), name) {
            Ok(i) if i.dir && i.dev == root_dev && i.ino != SUBVOLUME_INO => {
                let fd =
                    at::open_dir(old.parent.as_fd(), name).map_err(|e| Error::io(shown_path(&path), e))?;
                *old.dir.lock().map_err(|_| Error::Target("a lock was poisoned".into()))? = Some(fd);
            }
            Ok(i) if i.dir => {
                plan.facts.problems.push(Problem::OldRootsSubvolume(shown_path(&path)));
                return Ok(None);
            }
            Ok(_) => {
                plan.facts.problems.push(Problem::OldRootsNotDirectory(shown_path(&path)));
                return Ok(None);
            }
            Err(rustix::io::Errno::NOENT) => {
                if at::ident(old.parent.as_fd()).map(|i| i.dev).ok() != Some(root_dev) {
                    plan.facts.problems.push(Problem::OldRootsSubvolume(shown_path(&path)));
                    return Ok(None);
                }
                let (parent, name, cell) = (Arc::clone(&old.parent), old.name.clone(), Arc::clone(&old.dir));
                let shown_at = shown_path(&path);
                plan.steps.push(Step {
                    action: Action::Call(
                        vec![
                            "mkdir".into(),
                            "-m".into(),
                            "0700".into(),
                            "--".into(),
                            path.to_string_lossy().into_owned(),
                        ],
                        Check::new(move || {
                            at::make_dir(parent.as_fd(), &name)
                                .map_err(|e| format!("cannot make {shown_at}: {e}"))?;
                            let fd = at::open_dir(parent.as_fd(), &name)
                                .map_err(|e| changed(Path::new(&shown_at), e))?;
                            *cell.lock().map_err(|_| "a step panicked".to_owned())? = Some(fd);
                            Ok(())
                        }),
                    ),
                    what: "make the directory that keeps old roots".into(),
                    if_fails: "nothing was changed".into(),
                });
            }
            Err(e) => return Err(Error::io(shown_path(&path), e)),
        }
        Ok(Some(old))
    }

    /// Archives an interrupted rollback moved aside and never made
    /// read-only: this run seals each first (noted before the move, so a
    /// kill at any point leaves the note).
    fn plan_seal_unsealed(&self, old: &OldRoots, plan: &mut Plan) -> Result<()> {
        let Some(dir) = old.dir.lock().ok().and_then(|d| d.as_ref().and_then(|fd| fd.try_clone().ok()))
        else {
            return Ok(());
        };
        for name in unsealed(self.top_fd.as_fd()) {
            let path = old.path.join(OsStr::from_bytes(&name));
            let Ok(found) = at::ident_at(dir.as_fd(), &name) else { continue };
            if !found.dir || found.ino != SUBVOLUME_INO || self.show(&path)?.1 {
                continue;
            }
            let ro = set_ro(&path, true);
            plan.notes.push(format!(
                "archive {} was left writable by an interrupted rollback: this run makes it read-only first",
                escape(&name)
            ));
            let (dir, top, name_c, path_c, cmd) = (
                dir.try_clone().map_err(|e| Error::io("dup", e))?,
                Arc::clone(&self.top_fd),
                name.clone(),
                path.clone(),
                set_ro(&path, true),
            );
            plan.steps.push(Step {
                what: format!(
                    "make archive {} read-only: the rollback that made it was interrupted first",
                    escape(&name)
                ),
                if_fails: format!(
                    "nothing else was changed; the archive {} is still writable: `{}`",
                    shown_path(&path),
                    self.reach().by_hand(&ro)
                ),
                action: Action::Call(
                    argv_of(&ro),
                    Check::new(move || seal(&dir, &top, &name_c, &path_c, found, &cmd)),
                ),
            });
        }
        Ok(())
    }
}

/// Makes the archive `name` in `dir` read-only when it, and the path the
/// command is given, are still the subvolume `planned`; then forgets it
/// as unsealed.
fn seal(
    dir: &OwnedFd,
    top: &OwnedFd,
    name: &[u8],
    path: &Path,
    planned: Ident,
    cmd: &Cmd,
) -> std::result::Result<(), String> {
    if at::ident_at(dir.as_fd(), name).ok() != Some(planned) {
        return Err(changed(path, "it is not the root the plan moved there"));
    }
    if at::ident_of_path(path).ok() != Some(planned) {
        return Err(changed(path, "the path leads elsewhere now"));
    }
    cmd.output().map_err(|e| e.to_string())?;
    // Sealed: a note left behind only costs the next run a look.
    let _ = note_unsealed(top.as_fd(), dir.as_fd(), name, false);
    Ok(())
}

/// The id of the subvolume at `path` (`btrfs inspect-internal rootid`;
/// `None`: its answer is no id).
fn subvolume_id(path: &Path) -> Result<Option<u64>> {
    let out = btrfs().args(["inspect-internal", "rootid"]).arg(path).output()?;
    Ok(String::from_utf8_lossy(&out).trim().parse().ok())
}

/// Whether a subvolume is read-only, and its generation, as `btrfs
/// subvolume show` says (`None`: it does not say).
fn read_only_and_generation(path: &Path) -> Result<(bool, Option<u64>)> {
    let out = btrfs().args(["subvolume", "show"]).arg(path).output()?;
    let text = String::from_utf8_lossy(&out);
    let field = |name: &str| text.lines().find_map(|l| l.trim_start().strip_prefix(name).map(str::trim));
    let readonly = field("Flags:").is_some_and(|f| f.split_whitespace().any(|w| w == "readonly"));
    Ok((readonly, field("Generation:").and_then(|g| g.parse().ok())))
}

fn generation(path: &Path) -> Option<u64> {
    read_only_and_generation(path).ok()?.1
}

fn argv_of(cmd: &Cmd) -> Vec<String> {
    cmd.argv().iter().map(|a| a.to_string_lossy().into_owned()).collect()
}

/// The snapshot that makes the new root, run once its name is free and
/// the blank subvolume and the paths are what the plan found.
fn new_root_step(held: &Arc<Held>, root: &Path) -> Action {
    let cmd = btrfs().args(["subvolume", "snapshot"]).arg(&held.blank_path).arg(root);
    let words = argv_of(&cmd);
    let held = Arc::clone(held);
    Action::Call(
        words,
        Check::new(move || {
            held.ready_for_new_root()?;
            cmd.output().map(drop).map_err(|e| e.to_string())
        }),
    )
}

/// The root is gone (an interrupted rollback): the plan only makes it anew.
fn plan_recreate(held: &Arc<Held>, root: &Path, reach: &Reach, plan: &mut Plan) {
    plan.notes.push(format!(
        "{} does not exist (an interrupted rollback?): it is made anew from the blank subvolume; nothing is erased",
        shown_path(root)
    ));
    let by_hand = btrfs().args(["subvolume", "snapshot"]).arg(&held.blank_path).arg(root);
    plan.steps.push(Step {
        action: new_root_step(held, root),
        what: "make the new root: a writable snapshot of the blank one".into(),
        if_fails: format!(
            "there is still no {}; the system cannot boot until it exists: run `darlings rollback` again, or `{}`",
            shown_path(root),
            reach.by_hand(&by_hand)
        ),
    });
}

/// The erase: move the root aside into the archive `name` (it is the way
/// back: one rename on held directories), snapshot the blank subvolume
/// in its place, then make the archive read-only (unless
/// `--writable-archive`), noted as unsealed before the move.
fn plan_move_aside(
    held: &Arc<Held>,
    old: &OldRoots,
    name: &str,
    reach: &Reach,
    read_only: bool,
    plan: &mut Plan,
) {
    let root = held.root_path();
    let archive = old.path.join(name);
    let undo = Cmd::new("mv").arg("-T").arg("--").arg(&archive).arg(&root);
    let words = vec![
        "renameat2".into(),
        "RENAME_NOREPLACE".into(),
        root.to_string_lossy().into_owned(),
        archive.to_string_lossy().into_owned(),
    ];
    let (h, o, n) = (
        Arc::clone(held),
        OldRoots {
            path: old.path.clone(),
            rel: old.rel.clone(),
            parent: Arc::clone(&old.parent),
            name: old.name.clone(),
            dir: Arc::clone(&old.dir),
        },
        name.as_bytes().to_vec(),
    );
    let archive_text = shown_path(&archive);
    plan.archive_step = Some(plan.steps.len());
    plan.steps.push(Step {
        action: Action::Call(
            words,
            Check::new(move || {
                h.root_unchanged()?;
                h.blank_untouched()?;
                h.still_marked()?;
                // The steps after this one are commands given paths: they
                // must lead where this one acts, or it does not act at all.
                h.paths_lead_home()?;
                let dir = o.checked(h.top.as_fd())?;
                if at::ident_of_path(&o.path).ok() != at::ident(dir.as_fd()).ok() {
                    return Err(changed(&o.path, "the path leads elsewhere now"));
                }
                match at::ident_at(dir.as_fd(), &n) {
                    Err(rustix::io::Errno::NOENT) => {}
                    Ok(_) => {
                        return Err(format!(
                            "{archive_text} appeared after the plan: nothing is moved onto it"
                        ))
                    }
                    Err(e) => return Err(changed(Path::new(&archive_text), e)),
                }
                if read_only {
                    note_unsealed(h.top.as_fd(), dir.as_fd(), &n, true)?;
                }
                at::rename_noreplace(h.parent.as_fd(), &h.root_name, dir.as_fd(), &n).map_err(|e| {
                    if read_only {
                        let _ = note_unsealed(h.top.as_fd(), dir.as_fd(), &n, false);
                    }
                    format!("cannot move the root to {archive_text}: {e}")
                })
            }),
        ),
        what: "move the current root aside: it is the archive, the way back".into(),
        if_fails: "nothing was changed (a rename is all or nothing)".into(),
    });
    let finish = btrfs().args(["subvolume", "snapshot"]).arg(&held.blank_path).arg(&root);
    plan.steps.push(Step {
        action: new_root_step(held, &root),
        what: "make the new root: a writable snapshot of the blank one".into(),
        if_fails: format!(
            "the old root is safe at {a} (still writable), but there is no {r}, and the system cannot boot without it. \
             Finish with `{finish}` (or run `darlings rollback` again), or undo with `{undo}`",
            a = shown_path(&archive),
            r = shown_path(&root),
            finish = reach.by_hand(&finish),
            undo = reach.by_hand(&undo),
        ),
    });
    plan.archive_read_only = read_only;
    if read_only {
        let ro = set_ro(&archive, true);
        let (dir, top, n, path, planned, cmd) = (
            Arc::clone(&old.dir),
            Arc::clone(&held.top),
            name.as_bytes().to_vec(),
            archive.clone(),
            held.root,
            set_ro(&archive, true),
        );
        plan.steps.push(Step {
            if_fails: format!(
                "the rollback is done, but the archive {} is still writable (the next rollback makes it read-only first): `{}`",
                shown_path(&archive),
                reach.by_hand(&ro)
            ),
            action: Action::Call(
                argv_of(&ro),
                Check::new(move || {
                    let guard = dir.lock().map_err(|_| "a step panicked".to_owned())?;
                    let dir = guard.as_ref().ok_or("the directory that keeps old roots is not held")?;
                    let planned = planned.ok_or("the root was not found when the plan was made")?;
                    seal(dir, &top, &n, &path, planned, &cmd)
                }),
            ),
            what: "make the archive read-only: the way back cannot change under you (--writable-archive keeps it writable)"
                .into(),
        });
    }
    plan.archive = Some(format!("{} (the old root, moved aside)", shown_path(&archive)));
}

/// The archive's name in `old`: the time stamp, or with `-2`, `-3`… when
/// rollbacks come in the same second: always above every number taken, so
/// that names sort by age even after retention freed a lower one.
fn archive_name(old: &OldRoots, now: i64) -> String {
    let base = super::stamp(now);
    let listed = old
        .dir
        .lock()
        .ok()
        .and_then(|d| d.as_ref().and_then(|fd| at::names(fd.as_fd()).ok()))
        .unwrap_or_default();
    let taken = listed
        .iter()
        .filter_map(|name| {
            let name = String::from_utf8_lossy(name);
            (name == base).then_some(1).or_else(|| name.strip_prefix(&format!("{base}-"))?.parse().ok())
        })
        .max();
    match taken {
        None => base,
        Some(n) => format!("{base}-{}", n + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::{Entry, Noted, Subvolumes};

    #[test]
    fn the_ledger_reads_what_earlier_versions_wrote() {
        let read = |text: &str| -> std::collections::BTreeMap<String, Noted> {
            serde_json::from_str::<std::collections::BTreeMap<String, Entry>>(text)
                .unwrap()
                .into_iter()
                .map(|(n, e)| (n, e.into()))
                .collect()
        };
        let old = read(r#"{"20261126T140710Z":false}"#);
        assert_eq!(old["20261126T140710Z"], Noted { holds: Some(false), made: None });
        let now = Noted { holds: None, made: Some(1_795_702_100) };
        let text = serde_json::to_string(&std::collections::BTreeMap::from([("a", now)])).unwrap();
        assert_eq!(text, r#"{"a":{"made":1795702100}}"#);
        assert_eq!(read(&text)["a"], now);
    }

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
        assert_eq!(list.top_names(), ["root", "root-blank"]);
    }
}
