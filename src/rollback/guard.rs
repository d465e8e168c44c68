//! The guards: one pure function from what the backend and the audit found
//! ([`Facts`]) and the flags that lift refusals ([`Overrides`]) to the
//! refusals that stand. No filesystem, no zfs, no btrfs: table-tested
//! below, and the same function decides for both backends, for the
//! initrd, and (through [`loss_refusals`]) for the record kept at shutdown.

use super::{list, list_of, Loss, Record};
use crate::error::ExitCode;

/// A flag that lifts a kind of refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Override {
    /// `--force`: broken claims, critical state, an incomplete audit, no
    /// usable record in the initrd.
    Force,
    /// `--live`: the running root.
    Live,
    /// `--destroy-newer`: snapshots newer than the blank one.
    DestroyNewer,
    /// `--destroy-clones`: clones of those snapshots.
    DestroyClones,
}

impl Override {
    pub fn flag(self) -> &'static str {
        match self {
            Override::Force => "--force",
            Override::Live => "--live",
            Override::DestroyNewer => "--destroy-newer",
            Override::DestroyClones => "--destroy-clones",
        }
    }
}

/// The overriding flags given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    pub force: bool,
    pub live: bool,
    pub destroy_newer: bool,
    pub destroy_clones: bool,
}

impl Overrides {
    pub fn of(cfg: &crate::config::Rollback) -> Overrides {
        Overrides {
            force: cfg.force,
            live: cfg.live,
            destroy_newer: cfg.destroy_newer,
            destroy_clones: cfg.destroy_clones,
        }
    }

    pub fn lifts(self, o: Override) -> bool {
        match o {
            Override::Force => self.force,
            Override::Live => self.live,
            Override::DestroyNewer => self.destroy_newer,
            Override::DestroyClones => self.destroy_clones,
        }
    }
}

/// Why the plan may not go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub code: ExitCode,
    /// The flag that lifts it, if any.
    pub unless: Option<Override>,
}

impl Refusal {
    fn new(code: ExitCode, reason: impl Into<String>) -> Refusal {
        Refusal { reason: reason.into(), code, unless: None }
    }

    fn unless(mut self, o: Override) -> Refusal {
        self.unless = Some(o);
        self
    }

    /// The exit code of the refusals that stand (2 before 3 before 1).
    pub fn worst(refusals: &[Refusal]) -> Option<ExitCode> {
        let rank = |c: ExitCode| match c {
            ExitCode::Incomplete => 3,
            ExitCode::Broken => 2,
            ExitCode::Loss => 1,
            ExitCode::Clean => 0,
        };
        refusals.iter().map(|r| r.code).max_by_key(|c| rank(*c))
    }
}

/// How the target carries the ephemeral mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// Marked; how, in words.
    Marked(String),
    /// Not marked; `hint` is the command that marks it.
    Unmarked { hint: String },
    /// ZFS: the property is inherited from `source`, which does not count.
    Inherited { source: String, hint: String },
}

impl Default for Mark {
    fn default() -> Mark {
        Mark::Unmarked { hint: "darlings mark".into() }
    }
}

/// The blank snapshot or subvolume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blank {
    /// It does not exist; `what` names it, `existing` lists what does.
    Missing { what: String, existing: Vec<String> },
    Present {
        /// btrfs: writable, so maybe not blank any more; the command that
        /// makes it read-only once checked.
        writable: Option<String>,
        /// ZFS: snapshots older than it (it should be the oldest).
        older: Vec<String>,
    },
}

impl Default for Blank {
    fn default() -> Blank {
        Blank::Present { writable: None, older: Vec::new() }
    }
}

/// The root itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RootState {
    #[default]
    Present,
    /// Gone while marked: an interrupted rollback; the plan makes it anew.
    Missing,
    /// Gone and never marked: the flags name something that is not there.
    NoSuch { what: String, existing: Vec<String> },
}

/// What stands in the way of keeping the erased state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// ZFS: no `--archive-dataset`.
    NoArchiveDataset,
    /// A name the plan makes exists already.
    Taken(String),
    NoRoom {
        at: String,
        available: u64,
        needed: u64,
    },
    RoomUnknown(String),
    /// btrfs: the old roots' directory is a subvolume, or lies in another
    /// subvolume than the root (a rename cannot move the root there).
    OldRootsSubvolume(String),
    OldRootsNotDirectory(String),
    /// The target's names overlap (an archive inside the root, the root
    /// named twice), or one lies elsewhere than the plan can act on.
    Placement(String),
}

/// The audit recorded at shutdown, as the initrd finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    None,
    Unreadable(String),
    Found(Record),
}

/// Everything the guards look at, gathered by the backend (read-only
/// questions), the audit and, in the initrd, the record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The target, for messages.
    pub target: String,
    pub mark: Mark,
    pub root: RootState,
    pub blank: Blank,
    /// Snapshots newer than the blank one, and their clones (ZFS).
    pub newer: Vec<String>,
    pub clones: Vec<String>,
    /// `/` is the target.
    pub running_root: bool,
    pub problems: Vec<Problem>,
    /// The audit of the root (`None`: not audited).
    pub loss: Option<Loss>,
    /// In the initrd, when the plan erases: the record of the last shutdown.
    pub recorded: Option<Recorded>,
}

/// The refusals that stand: every one the facts call for, less those a
/// given flag lifts.
pub fn guard(f: &Facts, given: Overrides) -> Vec<Refusal> {
    use ExitCode::Incomplete;
    let mut all = Vec::new();
    let has = |existing: &[String]| {
        if existing.is_empty() {
            "there are none".to_owned()
        } else {
            format!("there are: {}", list(existing))
        }
    };
    match &f.root {
        RootState::NoSuch { what, existing } => {
            all.push(Refusal::new(Incomplete, format!("there is no {what}; {}", has(existing))));
        }
        RootState::Present | RootState::Missing => match &f.mark {
            Mark::Marked(_) => {}
            Mark::Unmarked { hint } => all.push(Refusal::new(
                Incomplete,
                format!("{} is not marked as ephemeral; mark it once with `{hint}`", f.target),
            )),
            Mark::Inherited { source, hint } => all.push(Refusal::new(
                Incomplete,
                format!(
                    "{} is not marked as ephemeral itself (the mark is {source}, which does not count); mark it with `{hint}`",
                    f.target
                ),
            )),
        },
    }
    match &f.blank {
        Blank::Missing { what, existing } => {
            all.push(Refusal::new(Incomplete, format!("there is no {what}; {}", has(existing))));
        }
        Blank::Present { writable, older } => {
            if let Some(fix) = writable {
                all.push(Refusal::new(
                    Incomplete,
                    format!("the blank subvolume is writable, so it may not be blank any more; check it, then `{fix}`"),
                ));
            }
            if !older.is_empty() {
                all.push(Refusal::new(
                    Incomplete,
                    format!(
                        "the blank snapshot is not the oldest ({} older: {}): it may not be the blank state",
                        older.len(),
                        list(older)
                    ),
                ));
            }
        }
    }
    for (items, what, o) in [
        (&f.newer, "snapshots newer than the blank one", Override::DestroyNewer),
        (&f.clones, "clones of newer snapshots", Override::DestroyClones),
    ] {
        if !items.is_empty() {
            all.push(
                Refusal::new(
                    Incomplete,
                    format!("{} {what} would be destroyed: {}", items.len(), list(items)),
                )
                .unless(o),
            );
        }
    }
    if f.running_root {
        all.push(
            Refusal::new(
                Incomplete,
                format!("{} is the running root (/): erasing it under running programs is dangerous; do it from the initrd", f.target),
            )
            .unless(Override::Live),
        );
    }
    all.extend(f.problems.iter().map(|p| Refusal::new(Incomplete, problem(p))));
    if let Some(loss) = &f.loss {
        all.extend(loss_refusals(loss));
    }
    match &f.recorded {
        None => {}
        Some(Recorded::None) => all.push(
            Refusal::new(
                Incomplete,
                "no audit was recorded at shutdown (`darlings record`): broken claims cannot be ruled out",
            )
            .unless(Override::Force),
        ),
        Some(Recorded::Unreadable(why)) => all.push(
            Refusal::new(Incomplete, format!("the audit recorded at shutdown cannot be read: {why}"))
                .unless(Override::Force),
        ),
        Some(Recorded::Found(r)) if !r.decision.erase => {
            let code = if r.counts.errors > 0 {
                Incomplete
            } else if r.counts.broken > 0 {
                ExitCode::Broken
            } else {
                ExitCode::Loss
            };
            all.push(
                Refusal::new(
                    code,
                    format!(
                        "the audit recorded at shutdown ({}) refuses: {}",
                        crate::sys::fmt::time_text(r.time),
                        r.decision.reasons.join("; ")
                    ),
                )
                .unless(Override::Force),
            );
        }
        Some(Recorded::Found(_)) => {}
    }
    all.retain(|r| !r.unless.is_some_and(|o| given.lifts(o)));
    all
}

/// The refusals an audit calls for, all lifted by `--force`: an incomplete
/// audit, broken claims, critical state.
pub fn loss_refusals(loss: &Loss) -> Vec<Refusal> {
    let mut all = Vec::new();
    if loss.errors > 0 {
        all.push(Refusal::new(
            ExitCode::Incomplete,
            format!(
                "the audit is incomplete ({} entries could not be read): what would be lost is not fully known",
                loss.errors
            ),
        ));
    }
    if !loss.broken.is_empty() {
        all.push(Refusal::new(
            ExitCode::Broken,
            format!(
                "{} declared claims are broken (their content is on the root): {}",
                loss.broken.len(),
                list(&loss.broken)
            ),
        ));
    }
    if !loss.critical.is_empty() {
        all.push(Refusal::new(
            ExitCode::Loss,
            format!("critical state is unclaimed: {}", list_of(&loss.critical, loss.critical_total)),
        ));
    }
    all.into_iter().map(|r| r.unless(Override::Force)).collect()
}

fn problem(p: &Problem) -> String {
    use crate::sys::fmt::human_size;
    match p {
        Problem::NoArchiveDataset => {
            "no way back: name the dataset that keeps the erased state with --archive-dataset (e.g. rpool/safe/darlings)".into()
        }
        Problem::Taken(name) => format!("{name} exists already: try again in a second"),
        Problem::NoRoom { at, available, needed } => format!(
            "the archive has no room: {at} has {} available, the root refers to {}",
            human_size(*available),
            human_size(*needed)
        ),
        Problem::RoomUnknown(at) => format!("cannot tell how much room {at} has (does its pool exist?)"),
        Problem::OldRootsSubvolume(dir) => format!(
            "{dir} is not a plain directory beside the root (a subvolume of its own, or inside another one): the root cannot be renamed into it; make it a plain directory of the top-level volume"
        ),
        Problem::OldRootsNotDirectory(dir) => {
            format!("{dir} exists and is not a directory (a symlink is never followed)")
        }
        Problem::Placement(why) => why.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Counts, Decision};
    use super::*;
    use ExitCode::{Broken, Incomplete, Loss as Lost};

    fn marked() -> Facts {
        Facts { target: "root".into(), mark: Mark::Marked("yes".into()), ..Facts::default() }
    }

    fn record(erase: bool, reasons: &[&str], counts: Counts) -> Recorded {
        Recorded::Found(Record {
            version: super::super::record::RECORD_VERSION,
            time: 0,
            counts,
            claims_verified: true,
            decision: Decision { erase, reasons: reasons.iter().map(|r| (*r).to_owned()).collect() },
            claims: Default::default(),
        })
    }

    type Row = (&'static str, Facts, Overrides, Vec<(ExitCode, &'static str, Option<Override>)>);

    const NONE: Overrides =
        Overrides { force: false, live: false, destroy_newer: false, destroy_clones: false };
    const FORCE: Overrides = Overrides { force: true, ..NONE };
    const ALL_FLAGS: Overrides =
        Overrides { force: true, live: true, destroy_newer: true, destroy_clones: true };

    /// Rows about the target itself: mark, root, blank, snapshots, the running root.
    fn target_rows() -> Vec<Row> {
        vec![
            ("a marked root with nothing against it", marked(), NONE, vec![]),
            (
                "unmarked: no flag lifts it",
                Facts { mark: Mark::Unmarked { hint: "darlings mark --dataset 'a b'".into() }, ..marked() },
                ALL_FLAGS,
                vec![(Incomplete, "root is not marked as ephemeral; mark it once with `darlings mark --dataset 'a b'`", None)],
            ),
            (
                "an inherited mark does not count",
                Facts { mark: Mark::Inherited { source: "inherited from tank/local".into(), hint: "darlings mark --dataset x".into() }, ..marked() },
                NONE,
                vec![(Incomplete, "inherited from tank/local, which does not count", None)],
            ),
            (
                "no such root: said, without asking to mark it",
                Facts {
                    mark: Mark::Unmarked { hint: "darlings mark".into() },
                    root: RootState::NoSuch { what: "subvolume nope".into(), existing: vec!["root".into(), "root-blank".into()] },
                    ..marked()
                },
                NONE,
                vec![(Incomplete, "there is no subvolume nope; there are: root, root-blank", None)],
            ),
            (
                "no blank: what exists is listed",
                Facts { blank: Blank::Missing { what: "snapshot t/r@nope".into(), existing: vec!["blank".into()] }, ..marked() },
                ALL_FLAGS,
                vec![(Incomplete, "there is no snapshot t/r@nope; there are: blank", None)],
            ),
            (
                "a blank with nothing beside it",
                Facts { blank: Blank::Missing { what: "blank subvolume x".into(), existing: vec![] }, ..marked() },
                NONE,
                vec![(Incomplete, "there is no blank subvolume x; there are none", None)],
            ),
            (
                "a writable blank, and one not the oldest",
                Facts { blank: Blank::Present { writable: Some("btrfs property set -ts b ro true".into()), older: vec!["first".into()] }, ..marked() },
                ALL_FLAGS,
                vec![
                    (Incomplete, "writable, so it may not be blank any more; check it, then `btrfs property set -ts b ro true`", None),
                    (Incomplete, "not the oldest (1 older: first)", None),
                ],
            ),
            (
                "newer snapshots and clones, each lifted by its own flag",
                Facts { newer: vec!["later".into()], clones: vec!["tank/clone".into()], ..marked() },
                Overrides { destroy_newer: true, ..NONE },
                vec![(Incomplete, "1 clones of newer snapshots would be destroyed: tank/clone", Some(Override::DestroyClones))],
            ),
            (
                "--force does not lift the running root",
                Facts { running_root: true, ..marked() },
                FORCE,
                vec![(Incomplete, "is the running root (/)", Some(Override::Live))],
            ),
            ("--live does", Facts { running_root: true, ..marked() }, Overrides { live: true, ..NONE }, vec![]),
            (
                "problems of the way back are never lifted",
                Facts { problems: vec![Problem::NoArchiveDataset, Problem::NoRoom { at: "tank/small".into(), available: 1024, needed: 2048 }], ..marked() },
                ALL_FLAGS,
                vec![(Incomplete, "no way back", None), (Incomplete, "tank/small has 1.0 KiB available", None)],
            ),
            (
                "an interrupted rollback needs its mark only",
                Facts { root: RootState::Missing, ..marked() },
                NONE,
                vec![],
            ),
        ]
    }

    /// Rows about what would be lost: the audit, and in the initrd the record.
    fn loss_rows() -> Vec<Row> {
        let loss = |broken: &[&str], critical: &[&str], errors| super::super::Loss {
            broken: broken.iter().map(|s| (*s).to_owned()).collect(),
            critical: critical.iter().map(|s| (*s).to_owned()).collect(),
            critical_total: critical.len() as u64,
            errors,
            ..super::super::Loss::default()
        };
        vec![
            (
                "the audit: errors, broken claims, critical state",
                Facts { loss: Some(loss(&["/var/lib/app"], &["/etc/ssh/ssh_host_ed25519_key"], 2)), ..marked() },
                NONE,
                vec![
                    (Incomplete, "the audit is incomplete (2 entries", Some(Override::Force)),
                    (Broken, "1 declared claims are broken (their content is on the root): /var/lib/app", Some(Override::Force)),
                    (Lost, "critical state is unclaimed: /etc/ssh/ssh_host_ed25519_key", Some(Override::Force)),
                ],
            ),
            ("--force lifts what the audit says", Facts { loss: Some(loss(&["/a"], &["/b"], 1)), ..marked() }, FORCE, vec![]),
            (
                "the initrd without a record",
                Facts { recorded: Some(Recorded::None), ..marked() },
                NONE,
                vec![(Incomplete, "no audit was recorded at shutdown", Some(Override::Force))],
            ),
            (
                "the initrd with a record it cannot read",
                Facts { recorded: Some(Recorded::Unreadable("not JSON".into())), ..marked() },
                NONE,
                vec![(Incomplete, "cannot be read: not JSON", Some(Override::Force))],
            ),
            (
                "the record refused: its reasons, its code",
                Facts {
                    recorded: Some(record(false, &["critical state is unclaimed: /root/.ssh/id"], Counts { critical: 1, ..Counts::default() })),
                    ..marked()
                },
                NONE,
                vec![(Lost, "the audit recorded at shutdown (1970-01-01T00:00:00Z) refuses: critical state is unclaimed: /root/.ssh/id", Some(Override::Force))],
            ),
            (
                "a record that allows erasing",
                Facts { recorded: Some(record(true, &[], Counts::default())), ..marked() },
                NONE,
                vec![],
            ),
        ]
    }

    /// Each row: the facts, the flags, and the refusals that stand (exit
    /// code, a piece of the reason, the flag that would lift it).
    #[test]
    fn the_guards_as_a_table() {
        for (name, facts, given, want) in target_rows().into_iter().chain(loss_rows()) {
            let got = guard(&facts, given);
            assert_eq!(got.len(), want.len(), "{name}: {got:#?}");
            for (r, (code, says, unless)) in got.iter().zip(&want) {
                assert_eq!(r.code, *code, "{name}: {r:?}");
                assert!(r.reason.contains(says), "{name}: {:?} does not say {says:?}", r.reason);
                assert_eq!(r.unless, *unless, "{name}: {r:?}");
            }
        }
    }

    #[test]
    fn the_worst_refusal_decides_the_exit_code() {
        let r = |code| Refusal::new(code, "x");
        assert_eq!(Refusal::worst(&[]), None);
        assert_eq!(Refusal::worst(&[r(Lost)]), Some(Lost));
        assert_eq!(Refusal::worst(&[r(Lost), r(Broken)]), Some(Broken));
        assert_eq!(Refusal::worst(&[r(Lost), r(Incomplete), r(Broken)]), Some(Incomplete));
    }

    #[test]
    fn every_flag_lifts_only_its_own_kind() {
        let kinds = [Override::Force, Override::Live, Override::DestroyNewer, Override::DestroyClones];
        let given = [
            Overrides { force: true, ..Overrides::default() },
            Overrides { live: true, ..Overrides::default() },
            Overrides { destroy_newer: true, ..Overrides::default() },
            Overrides { destroy_clones: true, ..Overrides::default() },
        ];
        for (i, g) in given.iter().enumerate() {
            for (j, k) in kinds.iter().enumerate() {
                assert_eq!(g.lifts(*k), i == j, "{} lifts {:?}", kinds[i].flag(), k);
            }
        }
    }
}
