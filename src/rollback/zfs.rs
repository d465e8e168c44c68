//! The ZFS backend. The root is a dataset (`--dataset rpool/local/root`)
//! with a blank snapshot (`--snapshot blank`). Before `zfs rollback -r`,
//! the current state is snapshotted (`@darlings-<stamp>`) and sent into
//! the archive dataset (`--archive-dataset rpool/safe/darlings`) as
//! `ARCHIVE/<stamp>`: `zfs send` (raw, `-w`, when the root is encrypted)
//! piped into `zfs receive -u`, never mounted on its own
//! (`canmount=noauto`, `mountpoint=none`). A received snapshot cannot be
//! changed, so the way back is read-only as it is.
//!
//! User properties keep what darlings needs to know: the ephemeral mark
//! `darlings:ephemeral=on`, set on the dataset itself (an inherited value
//! does not count: a mark on `rpool/local` must not mark
//! `rpool/local/nix`); the last rollback, `darlings:last-rollback`; and on
//! each archive whether it holds data, `darlings:holds` (read by
//! retention).
//!
//! Child datasets are not rolled back with their parent (and `zfs diff` of
//! the root does not list them): the plan names each, as kept.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{
    retain, Action, Archive, AuditPlace, Backend, Blank, Check, Error, Kept, LastRollback, Mark, Plan,
    Problem, Result, Retention, Step,
};
use crate::config::Rollback;
use crate::config::TargetNames;
use crate::sanitize::{escape, shell_words};
use crate::sys::command::{Cmd, Pipe};

pub const MARK: &str = "darlings:ephemeral";
pub const OUTCOME: &str = "darlings:last-rollback";
pub const HOLDS: &str = "darlings:holds";
/// Where an unmounted root is mounted read-only for its audit.
pub const AUDIT_DIR: &str = "/run/darlings/zfs-root";
/// Where the record's dataset is mounted while darlings reads or writes it.
pub const RECORD_MOUNT: &str = "/run/darlings/zfs-record";
/// The child of the archive dataset that keeps the recorded audit.
pub const RECORD_DATASET: &str = "darlings-record";
/// Where an archive's snapshot is mounted read-only for `restore`.
pub const RESTORE_DIR: &str = "/run/darlings/zfs-archive";

pub struct Zfs {
    pub dataset: String,
    pub snapshot: String,
    pub archive: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    name: String,
    creation: i64,
    clones: Vec<String>,
    guid: String,
}

/// The snapshots of `dataset` (oldest first), with their guids and clones.
fn list_snapshots(dataset: &str) -> Result<Vec<Snapshot>> {
    let out = zfs()
        .args([
            "list",
            "-Hp",
            "-t",
            "snapshot",
            "-o",
            "name,creation,clones,guid",
            "-s",
            "createtxg",
            "-d",
            "1",
        ])
        .arg(dataset)
        .output()
        .map_err(crate::source::zfs::explain)?;
    Ok(rows(&out)
        .into_iter()
        .filter(|r| r.len() >= 4)
        .map(|r| Snapshot {
            name: r[0].split_once('@').map_or(r[0].clone(), |(_, s)| s.to_owned()),
            creation: r[1].parse().unwrap_or(0),
            clones: r[2].split(',').filter(|c| !c.is_empty() && *c != "-").map(str::to_owned).collect(),
            guid: r[3].clone(),
        })
        .collect())
}

/// What the erase depends on, as the plan found it: the blank snapshot and
/// every snapshot after it (`zfs rollback -r` destroys those, and only
/// those were consented to), and the mark. Checked right before the
/// precautionary snapshot and right before the rollback.
#[derive(Clone)]
struct Planned {
    dataset: String,
    /// The blank snapshot and the ones after it, with guids and clones.
    from_blank: Vec<Snapshot>,
}

impl Planned {
    /// `keep`: the precautionary snapshot the run made since (the one
    /// snapshot allowed to be new).
    fn check(&self, keep: Option<&str>) -> std::result::Result<(), String> {
        let props = props_of(&self.dataset, MARK).map_err(|e| e.to_string())?;
        if mark_of(&props).is_none() {
            return Err(format!("{} is no longer marked as ephemeral", self.dataset));
        }
        let now = list_snapshots(&self.dataset).map_err(|e| e.to_string())?;
        let blank = &self.from_blank[0];
        let Some(at) = now.iter().position(|s| s.name == blank.name && s.guid == blank.guid) else {
            return Err(format!("{}@{} is not the blank snapshot the plan found", self.dataset, blank.name));
        };
        let mut after: Vec<&Snapshot> = now[at..].iter().collect();
        if let Some(keep) = keep {
            if after.last().is_some_and(|s| s.name == keep) {
                after.pop();
            }
        }
        let same = after.len() == self.from_blank.len()
            && after
                .iter()
                .zip(&self.from_blank)
                .all(|(a, b)| a.name == b.name && a.guid == b.guid && a.clones == b.clones);
        if !same {
            return Err(format!(
                "the snapshots of {} changed since the plan was made (the rollback would destroy what nobody agreed to)",
                self.dataset
            ));
        }
        Ok(())
    }
}

/// A read-only mount of our own, undone on drop.
struct TempMount {
    dir: PathBuf,
}

impl Drop for TempMount {
    fn drop(&mut self) {
        if Cmd::new("umount").arg(&self.dir).output().is_err() {
            let _ = Cmd::new("umount").arg("-l").arg(&self.dir).output();
        }
    }
}

fn zfs() -> Cmd {
    Cmd::new("zfs")
}

fn valid_name(flag: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.contains("//")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b));
    if !ok {
        return Err(Error::Target(format!(
            "{flag} {} is not a ZFS dataset name (like rpool/local/root)",
            crate::sanitize::shell_quote(name.as_bytes())
        )));
    }
    Ok(())
}

/// The lines of a `zfs ... -H` listing, split at tabs.
fn rows(out: &[u8]) -> Vec<Vec<String>> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

type Props = std::collections::HashMap<String, (String, String)>;

/// Properties of a dataset: name → (value, source).
fn props_of(dataset: &str, names: &str) -> Result<Props> {
    let out = zfs()
        .args(["get", "-Hp", "-o", "property,value,source", names, dataset])
        .output()
        .map_err(crate::source::zfs::explain)?;
    Ok(rows(&out)
        .into_iter()
        .filter(|r| r.len() >= 3)
        .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
        .collect())
}

/// The ephemeral mark, as the properties show it: set on the dataset
/// itself (an inherited value does not count).
fn mark_of(props: &Props) -> Option<String> {
    match props.get(MARK) {
        Some((v, source)) if v == "on" && source == "local" => Some(format!("yes ({MARK}=on)")),
        _ => None,
    }
}

/// Where a rollback keeps the erased state: the precautionary snapshot
/// `keep`, received into the archive dataset as `target`.
struct WayBack<'a> {
    keep: String,
    target: String,
    archive: &'a str,
    /// The archive dataset exists already (else a step makes it).
    archive_exists: bool,
}

/// The steps of the erase: snapshot the current state, make the archive
/// dataset when it is missing, send the snapshot into it (raw when
/// `encrypted`), roll back to `blank` (`-R` when newer snapshots have
/// clones).
fn plan_steps(
    way: &WayBack<'_>,
    planned: &Planned,
    blank: &str,
    encrypted: bool,
    clones: bool,
    plan: &mut Plan,
) {
    let ds = planned.dataset.as_str();
    let (archive, target, keep) = (way.archive, &way.target, &way.keep);
    let destroy_keep = zfs().arg("destroy").arg(keep).display();
    let before_snapshot = planned.clone();
    plan.steps.push(Step {
        action: Action::Checked(
            zfs().arg("snapshot").arg(keep),
            Check::new(move || before_snapshot.check(None)),
        ),
        what: "snapshot the current state (the way back starts here)".into(),
        if_fails: "nothing was changed".into(),
    });
    if !way.archive_exists {
        plan.steps.push(Step {
            action: Action::Run(
                zfs().args(["create", "-p", "-o", "canmount=off", "-o", "mountpoint=none"]).arg(archive),
            ),
            what: "make the archive dataset".into(),
            if_fails: format!("nothing was erased; remove the precautionary snapshot with `{destroy_keep}`"),
        });
    }
    let mut send = zfs().arg("send");
    if encrypted {
        send = send.arg("-w");
    }
    plan.archive_step = Some(plan.steps.len());
    plan.steps.push(Step {
        action: Action::Pipe(Pipe {
            first: send.arg(keep),
            second: zfs()
                .args(["receive", "-u", "-o", "canmount=noauto", "-o", "mountpoint=none"])
                .arg(target),
        }),
        what: if encrypted {
            "copy it into the archive (raw: it stays encrypted with the root's key)".into()
        } else {
            "copy it into the archive".into()
        },
        if_fails: format!(
            "nothing was erased; remove what was made with `{}` (if it exists) and `{destroy_keep}`",
            zfs().args(["destroy", "-r"]).arg(target).display()
        ),
    });
    let rollback = zfs().arg("rollback").arg(if clones { "-R" } else { "-r" });
    let (before_rollback, kept) =
        (planned.clone(), keep.split_once('@').map_or(keep.clone(), |(_, k)| k.to_owned()));
    plan.steps.push(Step {
        action: Action::Checked(rollback.arg(blank), Check::new(move || before_rollback.check(Some(&kept)))),
        what: format!("erase: roll {ds} back to its blank snapshot (destroys the newer snapshots)"),
        if_fails: format!(
            "nothing was erased (a rollback is all or nothing); the erased-to-be state is archived as {target}; remove it with `{}` and `{destroy_keep}` if you give up",
            zfs().args(["destroy", "-r"]).arg(target).display()
        ),
    });
    plan.archive = Some(format!("{target} (zfs send | zfs receive{})", if encrypted { ", raw" } else { "" }));
}

impl Zfs {
    pub fn new(args: &TargetNames) -> Result<Zfs> {
        let dataset = args.dataset.clone().unwrap_or_default();
        valid_name("--dataset", &dataset)?;
        if dataset.contains('@') {
            return Err(Error::Target(format!(
                "--dataset {dataset}: a dataset, not a snapshot (the snapshot is --snapshot)"
            )));
        }
        if args.snapshot.is_empty() || args.snapshot.contains(['@', '/']) {
            return Err(Error::Target(format!(
                "--snapshot {}: the short name of the blank snapshot, like `blank`",
                crate::sanitize::shell_quote(args.snapshot.as_bytes())
            )));
        }
        if let Some(a) = &args.archive_dataset {
            valid_name("--archive-dataset", a)?;
            if a == &dataset || a.starts_with(&format!("{dataset}/")) {
                return Err(Error::Target(format!(
                    "--archive-dataset {a} is inside the root dataset: it would be erased with it"
                )));
            }
        }
        Ok(Zfs { dataset, snapshot: args.snapshot.clone(), archive: args.archive_dataset.clone() })
    }

    /// [`props_of`] the dataset.
    fn props(&self, dataset: &str, names: &str) -> Result<Props> {
        props_of(dataset, names)
    }

    fn exists(&self, dataset: &str) -> bool {
        zfs().args(["list", "-H", "-o", "name"]).arg(dataset).output().is_ok()
    }

    fn snapshots(&self) -> Result<Vec<Snapshot>> {
        list_snapshots(&self.dataset)
    }

    /// Where `dataset`, a snapshot of it or a dataset below it is mounted,
    /// from this process's mountinfo.
    fn mounted_below(dataset: &str) -> Vec<Vec<u8>> {
        let d = dataset.as_bytes();
        crate::sys::mounts::mount_table()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| {
                m.fstype == "zfs"
                    && (m.source == d
                        || m.source
                            .strip_prefix(d)
                            .is_some_and(|r| r.starts_with(b"/") || r.starts_with(b"@")))
            })
            .map(|m| m.mount_point)
            .collect()
    }

    /// Where the dataset itself is mounted.
    fn mount_points(&self) -> Vec<Vec<u8>> {
        crate::sys::mounts::mount_table()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.fstype == "zfs" && m.source == self.dataset.as_bytes())
            .map(|m| m.mount_point)
            .collect()
    }

    /// A plan with what it is about and how the dataset is marked; an
    /// error when it is not a filesystem.
    fn new_plan(&self, blank: &str, props: &Props) -> Result<Plan> {
        let ds = &self.dataset;
        if props.get("type").is_some_and(|(t, _)| t != "filesystem") {
            return Err(Error::Target(format!("{ds} is not a filesystem dataset")));
        }
        let mut plan = Plan {
            backend: "zfs",
            target: ds.clone(),
            confirm: ds.clone(),
            blank: blank.to_owned(),
            ..Plan::default()
        };
        plan.facts.target = ds.clone();
        let hint = shell_words(&["darlings", "mark", "--dataset", ds]);
        plan.facts.mark = match (mark_of(props), props.get(MARK)) {
            (Some(how), _) => Mark::Marked(how),
            (None, Some((v, s))) if v == "on" && s.starts_with("inherited") => {
                Mark::Inherited { source: s.clone(), hint }
            }
            (None, _) => Mark::Unmarked { hint },
        };
        Ok(plan)
    }

    /// The blank snapshot must exist (`None`: the plan ends here) and be
    /// the oldest; returns it and the snapshots newer than it.
    fn blank_and_newer(&self, blank: &str, plan: &mut Plan) -> Result<Option<Vec<Snapshot>>> {
        let mut snapshots = self.snapshots()?;
        let Some(at) = snapshots.iter().position(|s| s.name == self.snapshot) else {
            plan.facts.blank = Blank::Missing {
                what: format!("snapshot {blank}"),
                existing: snapshots.iter().map(|s| s.name.clone()).collect(),
            };
            return Ok(None);
        };
        plan.blank_created = Some(snapshots[at].creation);
        plan.facts.blank = Blank::Present {
            writable: None,
            older: snapshots[..at].iter().map(|s| s.name.clone()).collect(),
        };
        Ok(Some(snapshots.split_off(at)))
    }

    /// Names the child datasets (not rolled back), and whether the dataset
    /// is the running root.
    fn children_and_live(&self, plan: &mut Plan) -> Result<()> {
        for (name, mountpoint) in crate::source::zfs::children(self.dataset.as_bytes())? {
            plan.children.push(format!(
                "{} (mountpoint {}): a dataset of its own, not rolled back and not in this audit: it keeps its content",
                escape(name.as_bytes()),
                escape(mountpoint.as_bytes())
            ));
        }
        let mounted = self.mount_points();
        plan.facts.running_root = mounted.iter().any(|m| m.as_slice() == b"/");
        plan.mounted = mounted.iter().map(|m| escape(m).into_owned()).collect();
        Ok(())
    }

    /// What stands in the way of keeping the erased state: its names are
    /// taken, or the archive has no room for the root. Returns whether the
    /// archive dataset exists already.
    fn way_back_problems(
        &self,
        way: &WayBack<'_>,
        name: &str,
        newer: &[Snapshot],
        props: &Props,
        plan: &mut Plan,
    ) -> bool {
        if self.exists(&way.target) {
            plan.facts.problems.push(Problem::Taken(way.target.clone()));
        }
        if newer.iter().any(|s| s.name == format!("darlings-{name}")) {
            plan.facts.problems.push(Problem::Taken(way.keep.clone()));
        }
        let referenced: u64 = props.get("referenced").and_then(|(v, _)| v.parse().ok()).unwrap_or(0);
        let archive_exists = self.exists(way.archive);
        // The archive, or the nearest dataset above it that exists.
        let mut room_at = way.archive.to_owned();
        while !self.exists(&room_at) {
            match room_at.rsplit_once('/') {
                Some((up, _)) => room_at = up.to_owned(),
                None => break,
            }
        }
        let available: Option<u64> = self
            .props(&room_at, "available")
            .ok()
            .and_then(|p| p.get("available").and_then(|(v, _)| v.parse().ok()));
        match available {
            Some(a) if a < referenced => {
                plan.facts.problems.push(Problem::NoRoom { at: room_at, available: a, needed: referenced });
            }
            Some(_) => {}
            None => plan.facts.problems.push(Problem::RoomUnknown(room_at)),
        }
        archive_exists
    }

    /// Mounts the dataset (or a snapshot) read-only at `dir`.
    fn mount_ro(&self, what: &str, dir: &str) -> Result<TempMount> {
        self.mount_at(what, dir, false)
    }

    /// Mounts the dataset (or a snapshot) at `dir`, read-only unless `rw`.
    fn mount_at(&self, what: &str, dir: &str, rw: bool) -> Result<TempMount> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {dir}"), e))?;
        if crate::sys::mounts::mount_table()
            .unwrap_or_default()
            .iter()
            .any(|m| m.mount_point == dir.as_bytes())
        {
            return Err(Error::Target(format!(
                "{dir} is already a mount point: another darlings at work? (if not: umount {dir})"
            )));
        }
        let base = what.split('@').next().unwrap_or(what);
        let legacy = self.props(base, "mountpoint")?.get("mountpoint").is_some_and(|(v, _)| v == "legacy");
        // mount(8) takes a legacy dataset or a snapshot as they are; any
        // other dataset only with zfsutil.
        let mode = if rw { "rw" } else { "ro" };
        let options = if legacy || what.contains('@') { mode.to_owned() } else { format!("{mode},zfsutil") };
        Cmd::new("mount").args(["-t", "zfs", "-o"]).arg(&options).arg(what).arg(dir).output()?;
        Ok(TempMount { dir: PathBuf::from(dir) })
    }

    /// Mounts an archive's snapshot read-only for `restore`.
    pub fn open_archive(&self, archive: &Archive) -> Result<(PathBuf, Option<Box<dyn std::any::Any>>)> {
        let Some(parent) = &self.archive else {
            return Err(Error::Target("name the archive dataset with --archive-dataset".into()));
        };
        let snap = format!("{parent}/{}@darlings-{}", archive.name, archive.name);
        let guard = self.mount_ro(&snap, RESTORE_DIR)?;
        Ok((PathBuf::from(RESTORE_DIR), Some(Box::new(guard))))
    }
}

impl Backend for Zfs {
    fn name(&self) -> String {
        self.dataset.clone()
    }

    fn marked(&self) -> Result<Option<String>> {
        Ok(mark_of(&self.props(&self.dataset, MARK)?))
    }

    fn mark(&self, on: bool) -> Result<String> {
        let cmd = if on {
            zfs().arg("set").arg(format!("{MARK}=on")).arg(&self.dataset)
        } else {
            zfs().arg("inherit").arg(MARK).arg(&self.dataset)
        };
        cmd.output().map_err(crate::source::zfs::explain)?;
        Ok(if on {
            format!("marked {} as ephemeral ({MARK}=on): `darlings rollback` may erase it", self.dataset)
        } else {
            format!("{} is no longer marked as ephemeral", self.dataset)
        })
    }

    /// The plan of a rollback: what the guards need to know (mark, blank
    /// snapshot, newer snapshots and clones, the running root, room for
    /// the way back), then the steps (snapshot, send into the archive,
    /// roll back).
    fn plan(&self, _args: &Rollback, now: i64) -> Result<Plan> {
        let ds = &self.dataset;
        let blank = format!("{ds}@{}", self.snapshot);
        let props = self.props(ds, &format!("type,referenced,encryption,{MARK}"))?;
        let mut plan = self.new_plan(&blank, &props)?;
        let Some(from_blank) = self.blank_and_newer(&blank, &mut plan)? else { return Ok(plan) };
        let newer = &from_blank[1..];
        let clones: Vec<String> = newer.iter().flat_map(|s| s.clones.clone()).collect();
        for s in newer {
            plan.destroyed
                .push(format!("snapshot {ds}@{} (newer than the blank one; zfs rollback -r)", s.name));
            plan.facts.newer.push(format!("{ds}@{}", s.name));
        }
        for c in &clones {
            plan.destroyed.push(format!("clone {c} (of a newer snapshot; zfs rollback -R)"));
        }
        plan.facts.clones.clone_from(&clones);
        self.children_and_live(&mut plan)?;

        // The way back.
        let name = super::stamp(now);
        let Some(archive) = &self.archive else {
            plan.facts.problems.push(Problem::NoArchiveDataset);
            return Ok(plan);
        };
        let mut way = WayBack {
            keep: format!("{ds}@darlings-{name}"),
            target: format!("{archive}/{name}"),
            archive,
            archive_exists: false,
        };
        way.archive_exists = self.way_back_problems(&way, &name, newer, &props, &mut plan);
        let encrypted = props.get("encryption").is_some_and(|(v, _)| v != "off" && v != "-");
        let planned = Planned { dataset: ds.clone(), from_blank: from_blank.clone() };
        plan_steps(&way, &planned, &blank, encrypted, !clones.is_empty(), &mut plan);
        plan.archive_name = Some(name);
        Ok(plan)
    }

    /// Retention: destroys the archives `--retain` / `--retain-days` let
    /// go, never one that is mounted; says what it keeps and why.
    fn plan_retention(&self, args: &Rollback, now: i64, plan: &mut Plan) -> Result<()> {
        let rules = Retention { count: args.retain, days: args.retain_days };
        let (Some(name), Some(archive)) =
            (plan.archive_name.clone().filter(|_| rules.asked()), &self.archive)
        else {
            return Ok(());
        };
        let newest = Archive {
            name,
            created: Some(now),
            ours: true,
            holds: plan.facts.loss.as_ref().map(|l| !l.holds_nothing),
            ..Archive::default()
        };
        let existing = if self.exists(archive) { self.list_archives(false)? } else { Vec::new() };
        for (a, kept) in retain(&existing, &newest, rules, now) {
            match kept {
                Kept::Keep(why) => plan.retained.push(format!("{} ({why})", escape(a.name.as_bytes()))),
                Kept::Prune => {
                    let full = format!("{archive}/{}", a.name);
                    let cmd = zfs().args(["destroy", "-r"]).arg(&full);
                    plan.steps.push(Step {
                        what: format!("retention: destroy archive {}", escape(a.name.as_bytes())),
                        if_fails: format!(
                            "the rollback is done; archive {} was not pruned: `{}`",
                            escape(a.name.as_bytes()),
                            cmd.display()
                        ),
                        action: Action::Run(cmd),
                    });
                    plan.pruned.push(full);
                    plan.pruned_names.push(a.name.clone());
                }
            }
        }
        Ok(())
    }

    fn audit_place(&self) -> Result<Option<AuditPlace>> {
        let mounted = self.mount_points();
        let common = |root: PathBuf, verified: bool, guard: Option<TempMount>| AuditPlace {
            root,
            verified,
            source: crate::source::Kind::Zfs,
            baseline: None,
            dataset: Some(self.dataset.clone()),
            snapshot: Some(self.snapshot.clone()),
            _guard: guard.map(|g| Box::new(g) as Box<dyn std::any::Any>),
        };
        if let Some(m) = mounted.iter().find(|m| m.as_slice() == b"/").or_else(|| mounted.first()) {
            return Ok(Some(common(PathBuf::from(OsStr::from_bytes(m)), true, None)));
        }
        let guard = self.mount_ro(&self.dataset, AUDIT_DIR)?;
        Ok(Some(common(PathBuf::from(AUDIT_DIR), false, Some(guard))))
    }

    /// The dataset itself is mounted there.
    fn is_root_at(&self, path: &Path) -> Result<bool> {
        let Ok(real) = std::fs::canonicalize(path) else { return Ok(false) };
        Ok(self.mount_points().iter().any(|m| m.as_slice() == real.as_os_str().as_bytes()))
    }

    fn record_pointer(&self) -> Result<Option<Vec<u8>>> {
        let props = self.props(&self.dataset, super::record::RECORD_PROPERTY)?;
        Ok(props
            .get(super::record::RECORD_PROPERTY)
            .filter(|(v, source)| v != "-" && source == "local")
            .map(|(v, _)| v.clone().into_bytes()))
    }

    fn set_record_pointer(&self, value: Option<&[u8]>) -> Result<()> {
        let prop = super::record::RECORD_PROPERTY;
        let cmd = match value {
            Some(v) => zfs().arg("set").arg(format!("{prop}={}", String::from_utf8_lossy(v))),
            None => zfs().arg("inherit").arg(prop),
        };
        cmd.arg(&self.dataset).output().map_err(crate::source::zfs::explain)?;
        Ok(())
    }

    /// The dataset `ARCHIVE/darlings-record` (`mountpoint=legacy`, never
    /// mounted by itself), mounted at [`RECORD_MOUNT`] while it is used.
    fn record_store(&self, access: super::record::Access) -> Result<Option<super::record::RecordStore>> {
        use super::record::Access;
        let Some(archive) = &self.archive else {
            return Err(Error::Target(
                "name the archive dataset with --archive-dataset: the recorded audit is kept there".into(),
            ));
        };
        let ds = format!("{archive}/{RECORD_DATASET}");
        if !self.exists(&ds) {
            if access != Access::Create {
                return Ok(None);
            }
            if !self.exists(archive) {
                zfs()
                    .args(["create", "-p", "-o", "canmount=off", "-o", "mountpoint=none"])
                    .arg(archive)
                    .output()?;
            }
            zfs().args(["create", "-o", "canmount=noauto", "-o", "mountpoint=legacy"]).arg(&ds).output()?;
        }
        let guard = self.mount_at(&ds, RECORD_MOUNT, access != Access::Read)?;
        let flags = rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::DIRECTORY
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::CLOEXEC;
        let dir = rustix::fs::open(RECORD_MOUNT, flags, rustix::fs::Mode::empty())
            .map_err(|e| Error::io(format!("cannot open {RECORD_MOUNT}"), e))?;
        Ok(Some(super::record::RecordStore {
            dir,
            file: "record.json".into(),
            shown: ds,
            guard: Some(Box::new(guard)),
        }))
    }

    fn verify(&self, plan: &Plan) -> Vec<(String, bool)> {
        let blank = format!("{}@{}", self.dataset, self.snapshot);
        let written = self
            .props(&self.dataset, &format!("written@{}", self.snapshot))
            .ok()
            .and_then(|p| p.values().next().map(|(v, _)| v.clone()));
        let newest = self.snapshots().ok().and_then(|s| s.last().map(|s| s.name.clone()));
        let mut checks = vec![(
            format!("{} equals {blank} (nothing written since, no newer snapshot)", self.dataset),
            written.as_deref() == Some("0") && newest.as_deref() == Some(self.snapshot.as_str()),
        )];
        if let (Some(archive), Some(name)) = (&self.archive, &plan.archive_name) {
            let kept = format!("{archive}/{name}@darlings-{name}");
            checks.push((format!("the erased state is kept as {kept}"), self.exists(&kept)));
        }
        for (p, name) in plan.pruned.iter().zip(&plan.pruned_names) {
            let full = self.archive.as_ref().map(|a| format!("{a}/{name}")).unwrap_or_default();
            checks.push((format!("{p} was pruned"), !self.exists(&full)));
        }
        checks
    }

    fn mounts_after(&self, plan: &Plan) -> Vec<String> {
        if plan.archive_name.is_none() {
            return Vec::new();
        }
        self.mount_points()
            .into_iter()
            .map(|m| {
                format!(
                    "{} is still mounted at {}: it shows the blank root now; programs that had files open there keep the erased ones until they close them",
                    self.dataset,
                    escape(&m)
                )
            })
            .collect()
    }

    /// ZFS knows when the archive was made: its `creation` (the receive).
    fn note_archive(&self, plan: &Plan, _made: i64) -> Result<()> {
        let (Some(name), Some(archive)) = (&plan.archive_name, &self.archive) else { return Ok(()) };
        let Some(holds) = plan.facts.loss.as_ref().map(|l| !l.holds_nothing) else { return Ok(()) };
        zfs()
            .arg("set")
            .arg(format!("{HOLDS}={}", if holds { "yes" } else { "no" }))
            .arg(format!("{archive}/{name}"))
            .output()?;
        Ok(())
    }

    fn record_outcome(&self, last: &LastRollback) -> Result<()> {
        zfs().arg("set").arg(format!("{OUTCOME}={}", last.encode())).arg(&self.dataset).output()?;
        Ok(())
    }

    fn last_outcome(&self) -> Option<Result<LastRollback, String>> {
        let props = match self.props(&self.dataset, OUTCOME) {
            Ok(p) => p,
            Err(e) => return Some(Err(e.to_string())),
        };
        let (v, _) = props.get(OUTCOME).filter(|(v, _)| v != "-")?;
        Some(LastRollback::decode(v.as_bytes()))
    }

    fn lock(&self, wait: std::time::Duration) -> Result<crate::sys::lock::Lock> {
        let name = crate::sys::lock::lock_name("zfs", self.dataset.as_bytes());
        Ok(crate::sys::lock::Lock::file(&name, &self.dataset, wait)?)
    }

    /// The archive holds the root once its snapshot is received (a
    /// receive is all or nothing).
    fn archive_holds_root(&self, last: &LastRollback) -> Option<bool> {
        let (archive, name) = (self.archive.as_ref()?, last.archive_name.as_ref()?);
        Some(self.exists(&format!("{archive}/{name}@darlings-{name}")))
    }

    fn list_archives(&self, _sizes: bool) -> Result<Vec<Archive>> {
        let Some(archive) = &self.archive else {
            return Err(Error::Target("name the archive dataset with --archive-dataset".into()));
        };
        let out = zfs()
            .args([
                "list",
                "-Hp",
                "-o",
                &format!("name,creation,used,{HOLDS}"),
                "-t",
                "filesystem",
                "-d",
                "1",
            ])
            .arg(archive)
            .output()
            .map_err(crate::source::zfs::explain)?;
        // The way back is the received snapshot, read-only by nature.
        let snapshots = zfs()
            .args(["list", "-H", "-o", "name", "-t", "snapshot", "-d", "2"])
            .arg(archive)
            .output()
            .map(|o| String::from_utf8_lossy(&o).lines().map(str::to_owned).collect::<Vec<_>>())
            .ok();
        Ok(rows(&out)
            .into_iter()
            .filter(|r| r.len() >= 4 && r[0] != *archive && r[0] != format!("{archive}/{RECORD_DATASET}"))
            .map(|r| {
                let name = r[0].rsplit('/').next().unwrap_or(&r[0]).to_owned();
                let parsed = super::parse_stamp(&name);
                let snapshot = format!("{}@darlings-{name}", r[0]);
                Archive {
                    read_only: snapshots.as_ref().map(|s| s.contains(&snapshot)),
                    // When it was received; the name is when the rollback
                    // started (an audit and a prompt earlier).
                    created: r[1].parse().ok().or(parsed),
                    size: r[2].parse().ok(),
                    ours: parsed.is_some(),
                    holds: match r[3].as_str() {
                        "yes" => Some(true),
                        "no" => Some(false),
                        _ => None,
                    },
                    mounted: Self::mounted_below(&r[0])
                        .into_iter()
                        .map(|m| String::from_utf8_lossy(&m).into_owned())
                        .collect(),
                    name,
                }
            })
            .collect())
    }
}
