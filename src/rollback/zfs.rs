//! The ZFS backend. The root is a dataset (`--dataset rpool/local/root`)
//! with a blank snapshot (`--snapshot blank`). Before `zfs rollback -r`,
//! the current state is snapshotted (`@darlings-<stamp>`) and sent into
//! the archive dataset (`--archive-dataset rpool/safe/darlings`) as
//! `ARCHIVE/<stamp>`: `zfs send` (raw, `-w`, when the root is encrypted)
//! piped into `zfs receive -u`, never mounted on its own
//! (`canmount=noauto`, `mountpoint=none`).
//!
//! The ephemeral mark is the user property `darlings:ephemeral=on`, set on
//! the dataset itself (an inherited value does not count: a mark on
//! `rpool/local` must not mark `rpool/local/nix`). The last rollback's
//! outcome is the property `darlings:last-rollback`.
//!
//! Child datasets are not rolled back with their parent (and `zfs diff` of
//! the root does not list them): the plan names each, as kept.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::{Action, Archive, AuditPlace, Plan, Refusal, Step};
use crate::cli::{RollbackArgs, SourceKind, TargetArgs};
use crate::error::ExitCode;
use crate::sys::command::{Cmd, Pipe};

pub const MARK: &str = "darlings:ephemeral";
pub const OUTCOME: &str = "darlings:last-rollback";
/// Where an unmounted root is mounted read-only for its audit.
pub const AUDIT_DIR: &str = "/run/darlings/zfs-root";
/// Where an archive's snapshot is mounted read-only for `restore`.
pub const RESTORE_DIR: &str = "/run/darlings/zfs-archive";

pub struct Zfs {
    pub dataset: String,
    pub snapshot: String,
    pub archive: Option<String>,
}

struct Snapshot {
    name: String,
    creation: i64,
    clones: Vec<String>,
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
        bail!("{flag} {name:?} is not a ZFS dataset name (like rpool/local/root)");
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
fn plan_steps(way: &WayBack<'_>, blank: &str, ds: &str, encrypted: bool, clones: bool, plan: &mut Plan) {
    let (archive, target, keep) = (way.archive, &way.target, &way.keep);
    plan.steps.push(Step {
        action: Action::Run(zfs().arg("snapshot").arg(keep)),
        what: "snapshot the current state (the way back starts here)".into(),
        if_fails: "nothing was changed".into(),
    });
    if !way.archive_exists {
        plan.steps.push(Step {
            action: Action::Run(
                zfs().args(["create", "-p", "-o", "canmount=off", "-o", "mountpoint=none"]).arg(archive),
            ),
            what: "make the archive dataset".into(),
            if_fails: format!(
                "nothing was erased; remove the precautionary snapshot with `zfs destroy {keep}`"
            ),
        });
    }
    let mut send = zfs().arg("send");
    if encrypted {
        send = send.arg("-w");
    }
    plan.steps.push(Step {
        action: Action::Pipe(Pipe {
            first: send.arg(keep),
            second: zfs().args(["receive", "-u", "-o", "canmount=noauto", "-o", "mountpoint=none"]).arg(target),
        }),
        what: if encrypted {
            "copy it into the archive (raw: it stays encrypted with the root's key)".into()
        } else {
            "copy it into the archive".into()
        },
        if_fails: format!(
            "nothing was erased; remove what was made with `zfs destroy -r {target}` (if it exists) and `zfs destroy {keep}`"
        ),
    });
    let mut rollback = zfs().arg("rollback");
    rollback = rollback.arg(if clones { "-R" } else { "-r" });
    plan.steps.push(Step {
        action: Action::Run(rollback.arg(blank)),
        what: format!("erase: roll {ds} back to its blank snapshot (destroys the newer snapshots)"),
        if_fails: format!(
            "nothing was erased (a rollback is all or nothing); the erased-to-be state is archived as {target}; remove it and {keep} if you give up"
        ),
    });
    plan.archive = Some(format!("{target} (zfs send | zfs receive{})", if encrypted { ", raw" } else { "" }));
}

impl Zfs {
    pub fn new(args: &TargetArgs) -> Result<Zfs> {
        let dataset = args.dataset.clone().unwrap_or_default();
        valid_name("--dataset", &dataset)?;
        if dataset.contains('@') {
            bail!("--dataset {dataset}: a dataset, not a snapshot (the snapshot is --snapshot)");
        }
        if args.snapshot.is_empty() || args.snapshot.contains(['@', '/']) {
            bail!("--snapshot {:?}: the short name of the blank snapshot, like `blank`", args.snapshot);
        }
        if let Some(a) = &args.archive_dataset {
            valid_name("--archive-dataset", a)?;
            if a == &dataset || a.starts_with(&format!("{dataset}/")) {
                bail!("--archive-dataset {a} is inside the root dataset: it would be erased with it");
            }
        }
        Ok(Zfs { dataset, snapshot: args.snapshot.clone(), archive: args.archive_dataset.clone() })
    }

    /// Properties of a dataset: name → (value, source).
    fn props(&self, dataset: &str, names: &str) -> Result<Props> {
        let out = zfs()
            .args(["get", "-Hp", "-o", "property,value,source", names, dataset])
            .output()
            .map_err(|e| anyhow::anyhow!(crate::source::zfs::explain(e)))?;
        Ok(rows(&out)
            .into_iter()
            .filter(|r| r.len() >= 3)
            .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
            .collect())
    }

    fn exists(&self, dataset: &str) -> bool {
        zfs().args(["list", "-H", "-o", "name"]).arg(dataset).output().is_ok()
    }

    pub fn marked(&self) -> Result<Option<String>> {
        Ok(mark_of(&self.props(&self.dataset, MARK)?))
    }

    pub fn mark(&self, on: bool) -> Result<String> {
        let cmd = if on {
            zfs().arg("set").arg(format!("{MARK}=on")).arg(&self.dataset)
        } else {
            zfs().arg("inherit").arg(MARK).arg(&self.dataset)
        };
        cmd.output().map_err(|e| anyhow::anyhow!(crate::source::zfs::explain(e)))?;
        Ok(if on {
            format!("marked {} as ephemeral ({MARK}=on): `darlings rollback` may erase it", self.dataset)
        } else {
            format!("{} is no longer marked as ephemeral", self.dataset)
        })
    }

    pub fn record_outcome(&self, text: &str) -> Result<()> {
        zfs().arg("set").arg(format!("{OUTCOME}={text}")).arg(&self.dataset).output()?;
        Ok(())
    }

    pub fn last_outcome(&self) -> Option<String> {
        let props = self.props(&self.dataset, OUTCOME).ok()?;
        props.get(OUTCOME).map(|(v, _)| v.clone()).filter(|v| v != "-")
    }

    fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let out = zfs()
            .args([
                "list",
                "-Hp",
                "-t",
                "snapshot",
                "-o",
                "name,creation,clones",
                "-s",
                "createtxg",
                "-d",
                "1",
            ])
            .arg(&self.dataset)
            .output()
            .map_err(|e| anyhow::anyhow!(crate::source::zfs::explain(e)))?;
        Ok(rows(&out)
            .into_iter()
            .filter(|r| r.len() >= 3)
            .map(|r| Snapshot {
                name: r[0].split_once('@').map_or(r[0].clone(), |(_, s)| s.to_owned()),
                creation: r[1].parse().unwrap_or(0),
                clones: r[2].split(',').filter(|c| !c.is_empty() && *c != "-").map(str::to_owned).collect(),
            })
            .collect())
    }

    /// Where the dataset is mounted, from this process's mountinfo.
    fn mount_points(&self) -> Vec<Vec<u8>> {
        crate::sys::mounts::mount_table()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.fstype == "zfs" && m.source == self.dataset.as_bytes())
            .map(|m| m.mount_point)
            .collect()
    }

    /// The plan of a rollback: the guards (mark, blank snapshot, newer
    /// snapshots and clones, the running root, room for the way back),
    /// then the steps (snapshot, send into the archive, roll back), then
    /// retention.
    pub fn plan(&self, args: &RollbackArgs, now: i64) -> Result<Plan> {
        let ds = &self.dataset;
        let blank = format!("{ds}@{}", self.snapshot);
        let props = self.props(ds, &format!("type,referenced,encryption,{MARK}"))?;
        let mut plan = self.new_plan(&blank, &props)?;
        let Some(newer) = self.guard_snapshots(&blank, &mut plan)? else { return Ok(plan) };
        let clones: Vec<&String> = newer.iter().flat_map(|s| &s.clones).collect();
        for s in &newer {
            plan.destroyed
                .push(format!("snapshot {ds}@{} (newer than the blank one; zfs rollback -r)", s.name));
        }
        for c in &clones {
            plan.destroyed.push(format!("clone {c} (of a newer snapshot; zfs rollback -R)"));
        }
        for (n, what, flag) in [
            (newer.len(), format!("snapshots newer than {blank}"), "--destroy-newer"),
            (clones.len(), "clones of newer snapshots".to_owned(), "--destroy-clones"),
        ] {
            if n > 0 {
                plan.refusals.push(
                    Refusal::new(ExitCode::Incomplete, format!("{n} {what} would be destroyed")).unless(flag),
                );
            }
        }
        self.guard_children_and_live(&mut plan)?;

        // The way back.
        let name = super::stamp(now);
        let Some(archive) = &self.archive else {
            plan.refusals.push(Refusal::new(
                ExitCode::Incomplete,
                "no way back: name the dataset that keeps the erased state with --archive-dataset (e.g. rpool/safe/darlings)",
            ));
            return Ok(plan);
        };
        let mut way = WayBack {
            keep: format!("{ds}@darlings-{name}"),
            target: format!("{archive}/{name}"),
            archive,
            archive_exists: false,
        };
        way.archive_exists = self.guard_way_back(&way, &name, &newer, &props, &mut plan);
        let encrypted = props.get("encryption").is_some_and(|(v, _)| v != "off" && v != "-");
        plan_steps(&way, &blank, ds, encrypted, !clones.is_empty(), &mut plan);
        plan.archive_name = Some(name.clone());
        self.plan_retention(args, now, &way, &name, &mut plan)?;
        Ok(plan)
    }

    /// A plan with what it is about, refused when the dataset is not
    /// marked itself; an error when it is not a filesystem.
    fn new_plan(&self, blank: &str, props: &Props) -> Result<Plan> {
        let ds = &self.dataset;
        let mut plan = Plan {
            backend: "zfs",
            target: ds.clone(),
            confirm: ds.clone(),
            blank: blank.to_owned(),
            ..Plan::default()
        };
        if props.get("type").is_some_and(|(t, _)| t != "filesystem") {
            bail!("{ds} is not a filesystem dataset");
        }
        plan.marked = mark_of(props);
        if plan.marked.is_none() {
            let inherited = props.get(MARK).filter(|(v, s)| v == "on" && s.starts_with("inherited"));
            plan.refusals.push(Refusal::new(
                ExitCode::Incomplete,
                match inherited {
                    Some((_, s)) => format!("{ds} is not marked as ephemeral itself ({MARK} is {s}, which does not count); mark it with `darlings mark --dataset {ds}`"),
                    None => format!("{ds} is not marked as ephemeral; mark it once with `darlings mark --dataset {ds}`"),
                },
            ));
        }
        Ok(plan)
    }

    /// The blank snapshot must exist (`None`: the plan ends here) and be
    /// the oldest; returns the snapshots newer than it.
    fn guard_snapshots(&self, blank: &str, plan: &mut Plan) -> Result<Option<Vec<Snapshot>>> {
        let mut snapshots = self.snapshots()?;
        let Some(at) = snapshots.iter().position(|s| s.name == self.snapshot) else {
            let names: Vec<&str> = snapshots.iter().map(|s| s.name.as_str()).collect();
            plan.refusals.push(Refusal::new(
                ExitCode::Incomplete,
                format!(
                    "there is no snapshot {blank}; {}",
                    if names.is_empty() {
                        "the dataset has no snapshots".to_owned()
                    } else {
                        format!("the dataset has: {}", names.join(", "))
                    }
                ),
            ));
            return Ok(None);
        };
        plan.blank_created = Some(snapshots[at].creation);
        let older: Vec<&str> = snapshots[..at].iter().map(|s| s.name.as_str()).collect();
        if !older.is_empty() {
            plan.refusals.push(Refusal::new(
                ExitCode::Incomplete,
                format!(
                    "{blank} is not the oldest snapshot ({} older: {}): it may not be the blank state",
                    older.len(),
                    older.join(", ")
                ),
            ));
        }
        Ok(Some(snapshots.split_off(at + 1)))
    }

    /// Names the child datasets (not rolled back), and refuses (unless
    /// `--live`) when the dataset is the running root.
    fn guard_children_and_live(&self, plan: &mut Plan) -> Result<()> {
        let ds = &self.dataset;
        for (name, mountpoint) in crate::source::zfs::children(ds.as_bytes())? {
            plan.children.push(format!(
                "{name} (mountpoint {mountpoint}): a dataset of its own, not rolled back and not in this audit: it keeps its content"
            ));
        }
        let mounted = self.mount_points();
        if mounted.iter().any(|m| m.as_slice() == b"/") {
            plan.refusals.push(
                Refusal::new(
                    ExitCode::Incomplete,
                    format!("{ds} is the running root (/): zfs would erase it under running programs, silently; do it from the initrd"),
                )
                .unless("--live"),
            );
        }
        plan.mounted = mounted.iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect();
        Ok(())
    }

    /// Refuses when the way back cannot be made: its names are taken, or
    /// the archive has no room for the root. Returns whether the archive
    /// dataset exists already.
    fn guard_way_back(
        &self,
        way: &WayBack<'_>,
        name: &str,
        newer: &[Snapshot],
        props: &Props,
        plan: &mut Plan,
    ) -> bool {
        let (archive, target, keep) = (way.archive, &way.target, &way.keep);
        if self.exists(target) {
            plan.refusals.push(Refusal::new(
                ExitCode::Incomplete,
                format!("{target} exists already: try again in a second"),
            ));
        }
        if newer.iter().any(|s| s.name == format!("darlings-{name}")) {
            plan.refusals.push(Refusal::new(
                ExitCode::Incomplete,
                format!("{keep} exists already: try again in a second"),
            ));
        }
        let referenced: u64 = props.get("referenced").and_then(|(v, _)| v.parse().ok()).unwrap_or(0);
        let archive_exists = self.exists(archive);
        // The archive, or the nearest dataset above it that exists.
        let mut room_at = archive.to_owned();
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
            Some(a) if a < referenced => plan.refusals.push(Refusal::new(
                ExitCode::Incomplete,
                format!(
                    "the archive has no room: {room_at} has {} available, the root refers to {}",
                    crate::sys::fmt::human_size(a),
                    crate::sys::fmt::human_size(referenced)
                ),
            )),
            Some(_) => {}
            None => plan.refusals.push(Refusal::new(
                ExitCode::Incomplete,
                format!("cannot tell how much room {room_at} has (does its pool exist?)"),
            )),
        }
        archive_exists
    }

    /// Retention: destroys the archives `--retain` / `--retain-days` let go.
    fn plan_retention(
        &self,
        args: &RollbackArgs,
        now: i64,
        way: &WayBack<'_>,
        name: &str,
        plan: &mut Plan,
    ) -> Result<()> {
        let newest = Archive { name: name.to_owned(), created: Some(now), size: None, ours: true };
        let existing = if way.archive_exists { self.list_archives()? } else { Vec::new() };
        for gone in super::prune(&existing, &newest, args.retain, args.retain_days, now) {
            let full = format!("{}/{gone}", way.archive);
            plan.steps.push(Step {
                action: Action::Run(zfs().args(["destroy", "-r"]).arg(&full)),
                what: format!("retention: destroy archive {gone}"),
                if_fails: format!(
                    "the rollback is done; archive {gone} was not pruned: `zfs destroy -r {full}`"
                ),
            });
            plan.pruned.push(full);
        }
        Ok(())
    }

    /// Mounts the dataset (or a snapshot) read-only at `dir`.
    fn mount_ro(&self, what: &str, dir: &str) -> Result<TempMount> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))?;
        if crate::sys::mounts::mount_table()
            .unwrap_or_default()
            .iter()
            .any(|m| m.mount_point == dir.as_bytes())
        {
            bail!("{dir} is already a mount point: another darlings at work? (if not: umount {dir})");
        }
        let base = what.split('@').next().unwrap_or(what);
        let legacy = self.props(base, "mountpoint")?.get("mountpoint").is_some_and(|(v, _)| v == "legacy");
        // mount(8) takes a legacy dataset or a snapshot as they are; any
        // other dataset only with zfsutil.
        let options = if legacy || what.contains('@') { "ro" } else { "ro,zfsutil" };
        Cmd::new("mount").args(["-t", "zfs", "-o", options]).arg(what).arg(dir).output()?;
        Ok(TempMount { dir: PathBuf::from(dir) })
    }

    pub fn audit_place(&self) -> Result<Option<AuditPlace>> {
        let mounted = self.mount_points();
        let common = |root: PathBuf, verified: bool, guard: Option<TempMount>| AuditPlace {
            root,
            verified,
            source: SourceKind::Zfs,
            baseline: None,
            dataset: Some(self.dataset.clone()),
            snapshot: self.snapshot.clone(),
            _guard: guard.map(|g| Box::new(g) as Box<dyn std::any::Any>),
        };
        if let Some(m) = mounted.iter().find(|m| m.as_slice() == b"/").or_else(|| mounted.first()) {
            return Ok(Some(common(PathBuf::from(OsStr::from_bytes(m)), true, None)));
        }
        let guard = self.mount_ro(&self.dataset, AUDIT_DIR)?;
        Ok(Some(common(PathBuf::from(AUDIT_DIR), false, Some(guard))))
    }

    pub fn read_record(&self) -> Result<Option<super::Record>> {
        let mounted = self.mount_points();
        if let Some(m) = mounted.first() {
            return super::read_record(std::path::Path::new(OsStr::from_bytes(m)));
        }
        let _guard = self.mount_ro(&self.dataset, AUDIT_DIR)?;
        super::read_record(std::path::Path::new(AUDIT_DIR))
    }

    pub fn verify(&self, plan: &Plan) -> Vec<(String, bool)> {
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
        for p in &plan.pruned {
            checks.push((format!("{p} was pruned"), !self.exists(p)));
        }
        checks
    }

    fn list_archives(&self) -> Result<Vec<Archive>> {
        let Some(archive) = &self.archive else {
            bail!("name the archive dataset with --archive-dataset");
        };
        let out = zfs()
            .args(["list", "-Hp", "-o", "name,creation,used", "-t", "filesystem", "-d", "1"])
            .arg(archive)
            .output()
            .map_err(|e| anyhow::anyhow!(crate::source::zfs::explain(e)))?;
        Ok(rows(&out)
            .into_iter()
            .filter(|r| r.len() >= 3 && r[0] != *archive)
            .map(|r| {
                let name = r[0].rsplit('/').next().unwrap_or(&r[0]).to_owned();
                let parsed = super::parse_stamp(&name);
                Archive {
                    created: parsed.or_else(|| r[1].parse().ok()),
                    size: r[2].parse().ok(),
                    ours: parsed.is_some(),
                    name,
                }
            })
            .collect())
    }

    pub fn archives(&self) -> Result<Vec<Archive>> {
        self.list_archives()
    }

    /// Mounts an archive's snapshot read-only for `restore`.
    pub fn open_archive(&self, archive: &Archive) -> Result<(PathBuf, Option<Box<dyn std::any::Any>>)> {
        let Some(parent) = &self.archive else {
            bail!("name the archive dataset with --archive-dataset");
        };
        let snap = format!("{parent}/{}@darlings-{}", archive.name, archive.name);
        let guard = self.mount_ro(&snap, RESTORE_DIR)?;
        Ok((PathBuf::from(RESTORE_DIR), Some(Box::new(guard))))
    }
}
