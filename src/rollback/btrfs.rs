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
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{
    retain, shown, shown_path, Action, Archive, AuditPlace, Backend, Blank, Check, Error, Kept, LastRollback,
    Mark, Plan, Problem, Result, Retention, RootState, Step,
};
use crate::cli::{RollbackArgs, SourceKind};
use crate::config::TargetNames;
use crate::sanitize::{escape, shell_words};
use crate::sys::command::Cmd;

pub const HELPER_DIR: &str = "/run/darlings/btrfs-top";
pub const MARK_XATTR: &str = "user.darlings.ephemeral";
pub const OUTCOME_XATTR: &str = "user.darlings.last-rollback";
pub const ARCHIVES_XATTR: &str = "user.darlings.archives";

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

fn get_xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 65536];
    match rustix::fs::getxattr(path, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Ok(Some(buf))
        }
        Err(rustix::io::Errno::NODATA) => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {name} of {}", shown_path(path)), e)),
    }
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    rustix::fs::setxattr(path, name, value, rustix::fs::XattrFlags::empty())
        .map_err(|e| Error::io(format!("cannot write {name} of {}", shown_path(path)), e))
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
                let dir = PathBuf::from(HELPER_DIR);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Error::io(format!("cannot create {HELPER_DIR}"), e))?;
                let mounts =
                    crate::sys::mounts::mount_table().map_err(|e| Error::io("cannot read mountinfo", e))?;
                if mounts.iter().any(|m| m.mount_point == HELPER_DIR.as_bytes()) {
                    return Err(Error::Target(format!(
                        "{HELPER_DIR} is already a mount point: another darlings at work? (if not: umount {HELPER_DIR})"
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
        Ok(Btrfs {
            top,
            // Absolute (links kept: /dev/disk/by-label/… stays stable across
            // boots), so that recovery commands work from anywhere.
            device: args
                .device
                .as_deref()
                .map(std::path::absolute)
                .transpose()
                .map_err(|e| Error::io("--device", e))?,
            subvolume: args.subvolume.clone(),
            blank: args.blank.clone(),
            old_roots: args.old_roots.clone(),
            _helper: helper,
        })
    }

    /// After an interrupted rollback: its archive (the newest darlings made)
    /// never reached the step that makes it read-only; that step is
    /// planned now.
    fn plan_seal_newest(&self, plan: &mut Plan) -> Result<()> {
        let mut list = self.list_archives(false)?;
        super::newest_first(&mut list);
        let Some(newest) = list.iter().find(|a| a.ours) else {
            return Ok(());
        };
        let path = self.at(&self.old_roots).join(&newest.name);
        if self.show(&path)?.1 {
            return Ok(());
        }
        let ro = set_ro(&path, true);
        plan.steps.push(Step {
            if_fails: format!(
                "the root is back, but the archive {} is still writable: `{}`",
                shown_path(&path),
                self.reach().by_hand(&ro)
            ),
            action: Action::Run(ro),
            what: format!(
                "make archive {} read-only: the interrupted rollback that made it did not get that far",
                shown(&newest.name)
            ),
        });
        Ok(())
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
        Ok(get_xattr(&self.top, MARK_XATTR)?
            .map(|v| String::from_utf8_lossy(&v).lines().map(str::to_owned).collect())
            .unwrap_or_default())
    }

    /// `btrfs subvolume show`: (creation time, read-only). The creation
    /// time is the subvolume's birth time (btrfs reports its otime there).
    fn show(&self, path: &Path) -> Result<(Option<i64>, bool)> {
        let out = btrfs().args(["subvolume", "show"]).arg(path).output()?;
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
        let out = btrfs().args(["subvolume", "list", "-p"]).arg(&self.top).output()?;
        Ok(Subvolumes::parse(&String::from_utf8_lossy(&out)))
    }

    /// The subvolume id of the subvolume at `rel`.
    fn id_of(&self, rel: &str) -> Result<u64> {
        let out = btrfs().args(["inspect-internal", "rootid"]).arg(self.at(rel)).output()?;
        String::from_utf8_lossy(&out)
            .trim()
            .parse()
            .map_err(|_| Error::Target(format!("no subvolume id for {}", shown(rel))))
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

    /// Checks the directory that keeps old roots (a plain directory of the
    /// top-level volume), or plans to make it.
    fn old_roots_dir(&self, old: &Path, plan: &mut Plan) -> Result<()> {
        let top_dev =
            std::fs::symlink_metadata(&self.top).map_err(|e| Error::io(shown_path(&self.top), e))?.dev();
        match std::fs::symlink_metadata(old) {
            Ok(m) if m.is_dir() && m.dev() == top_dev && m.ino() != SUBVOLUME_INO => {}
            Ok(m) if m.is_dir() => plan.facts.problems.push(Problem::OldRootsSubvolume(shown_path(old))),
            Ok(_) => plan.facts.problems.push(Problem::OldRootsNotDirectory(shown_path(old))),
            Err(_) => plan.steps.push(Step {
                action: Action::Run(Cmd::new("mkdir").arg("--").arg(old)),
                what: "make the directory that keeps old roots".into(),
                if_fails: "nothing was changed".into(),
            }),
        }
        Ok(())
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
        get_xattr(&self.top, ARCHIVES_XATTR)
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
                action: Action::Run(set_ro(&path, false)),
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
            action: Action::Run(delete),
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
            set_xattr(&self.top, MARK_XATTR, marks.join("\n").as_bytes())?;
        }
        Ok(if on {
            format!("marked {} as ephemeral: `darlings rollback` may erase it", self.name())
        } else {
            format!("{} is no longer marked as ephemeral", self.name())
        })
    }

    /// The plan of a rollback: what the guards need to know (mark, blank
    /// subvolume, the running root, the old roots' directory), then the
    /// steps (move the root aside, snapshot the blank one in its place,
    /// make the archive read-only).
    fn plan(&self, args: &RollbackArgs, now: i64) -> Result<Plan> {
        let root = self.at(&self.subvolume);
        let blank = self.at(&self.blank);
        let old = self.at(&self.old_roots);
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
        let snapshot = Step {
            action: Action::Run(btrfs().args(["subvolume", "snapshot"]).arg(&blank).arg(&root)),
            what: "make the new root: a writable snapshot of the blank one".into(),
            if_fails: String::new(),
        };
        if std::fs::symlink_metadata(&root).is_err() {
            if matches!(plan.facts.mark, Mark::Marked(_)) {
                plan.facts.root = RootState::Missing;
                plan_recreate(&root, snapshot, &self.reach(), &mut plan);
                if !args.writable_archive {
                    self.plan_seal_newest(&mut plan)?;
                }
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
        // The archive: a rename within one subvolume (mv would copy across two).
        let name = archive_name(&old, now);
        let archive = old.join(&name);
        self.old_roots_dir(&old, &mut plan)?;
        self.name_nested(&subvolumes, &archive, &mut plan)?;
        let erase =
            Erase { root: &root, blank: &blank, archive: &archive, read_only: !args.writable_archive };
        plan_move_aside(&erase, &self.reach(), &mut plan, snapshot);
        plan.archive_name = Some(name);
        Ok(plan)
    }

    /// Retention: deletes the archives `--retain` / `--retain-days` let go,
    /// never one that is mounted; says what it keeps and why.
    fn plan_retention(&self, args: &RollbackArgs, now: i64, plan: &mut Plan) -> Result<()> {
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
            source: SourceKind::Walk,
            baseline: Some(self.at(&self.blank)),
            dataset: None,
            snapshot: None,
            _guard: None,
        }))
    }

    fn read_record(&self) -> Result<Option<super::Record>> {
        super::read_record(&self.at(&self.subvolume))
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
        set_xattr(&self.top, ARCHIVES_XATTR, text.as_bytes())
    }

    fn record_outcome(&self, last: &LastRollback) -> Result<()> {
        set_xattr(&self.top, OUTCOME_XATTR, last.encode().as_bytes())
    }

    fn last_outcome(&self) -> Option<Result<LastRollback, String>> {
        match get_xattr(&self.top, OUTCOME_XATTR) {
            Ok(Some(v)) => Some(LastRollback::decode(&v)),
            Ok(None) => None,
            Err(e) => Some(Err(e.to_string())),
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

/// The root is gone (an interrupted rollback): the plan only makes it anew.
fn plan_recreate(root: &Path, snapshot: Step, reach: &Reach, plan: &mut Plan) {
    plan.notes.push(format!(
        "{} does not exist (an interrupted rollback?): it is made anew from the blank subvolume; nothing is erased",
        shown_path(root)
    ));
    plan.steps.push(Step {
        if_fails: format!(
            "there is still no {}; the system cannot boot until it exists: run `darlings rollback` again, or `{}`",
            shown_path(root),
            match &snapshot.action {
                Action::Run(cmd) => reach.by_hand(cmd),
                other => other.display(),
            }
        ),
        ..snapshot
    });
}

/// The paths of an erase, and whether the archive ends read-only.
struct Erase<'a> {
    root: &'a Path,
    blank: &'a Path,
    archive: &'a Path,
    read_only: bool,
}

/// The erase: move the root aside into the archive (it is the way back),
/// `snapshot` the blank subvolume in its place, then make the archive
/// read-only (unless `--writable-archive`).
fn plan_move_aside(e: &Erase<'_>, reach: &Reach, plan: &mut Plan, snapshot: Step) {
    let undo = Cmd::new("mv").arg("--").arg(e.archive).arg(e.root);
    plan.steps.push(Step {
        action: Action::Run(Cmd::new("mv").arg("--").arg(e.root).arg(e.archive)),
        what: "move the current root aside: it is the archive, the way back".into(),
        if_fails: "nothing was changed (a rename is all or nothing)".into(),
    });
    let ro = set_ro(e.archive, true);
    plan.steps.push(Step {
        if_fails: format!(
            "the old root is safe at {a} (still writable), but there is no {r}, and the system cannot boot without it. \
             Finish with `{finish}` (or run `darlings rollback` again), or undo with `{undo}`",
            a = shown_path(e.archive),
            r = shown_path(e.root),
            finish = reach.by_hand(&btrfs().args(["subvolume", "snapshot"]).arg(e.blank).arg(e.root)),
            undo = reach.by_hand(&undo),
        ),
        ..snapshot
    });
    plan.archive_read_only = e.read_only;
    if e.read_only {
        plan.archive_until_sealed = Some((
            plan.steps.len(),
            format!("{} (the old root, moved aside, still writable)", shown_path(e.archive)),
        ));
        plan.steps.push(Step {
            if_fails: format!(
                "the rollback is done, but the archive {} is still writable: `{}`",
                shown_path(e.archive),
                reach.by_hand(&ro)
            ),
            action: Action::Run(ro),
            what: "make the archive read-only: the way back cannot change under you (--writable-archive keeps it writable)"
                .into(),
        });
    }
    plan.archive = Some(format!(
        "{} (the old root, moved aside{})",
        shown_path(e.archive),
        if e.read_only { ", read-only" } else { "" }
    ));
}

/// The archive's name in `old`: the time stamp, or with `-2`, `-3`… when
/// rollbacks come in the same second: always above every number taken, so
/// that names sort by age even after retention freed a lower one.
fn archive_name(old: &Path, now: i64) -> String {
    let base = super::stamp(now);
    let taken = std::fs::read_dir(old)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name == base)
                        .then_some(1)
                        .or_else(|| name.strip_prefix(&format!("{base}-"))?.parse().ok())
                })
                .max()
        })
        .ok()
        .flatten();
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
