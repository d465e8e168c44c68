//! `darlings rollback` and its companions (`mark`, `archives`, `restore`,
//! `record`, `status`): the erase itself, behind guards, with a way back.
//!
//! A rollback goes plan → show → guard → confirm → act → verify:
//!
//! - the **plan** is built from read-only questions, by a [`Backend`]
//!   ([`zfs`], [`btrfs`]): `zfs list/get`, `btrfs subvolume show/list`,
//!   the mount table, and an audit of the root. What the questions find
//!   goes into [`Facts`]; the plan also holds every command as exact argv,
//!   what it destroys, where the way back is kept and what retention keeps
//!   and prunes (and why); `--dry-run` prints it and stops;
//! - **guards** are one pure function, [`guard`], from the facts and the
//!   overriding flags ([`Overrides`]) to the refusals that stand: nothing
//!   runs while there is one. `--force`, `--live`, `--destroy-newer`,
//!   `--destroy-clones` lift only the refusals of their [`Override`]; the
//!   ephemeral mark is never lifted;
//! - **confirmation**: `--yes`, or the target's name typed on a terminal;
//! - **acting** runs the plan's commands in order, through the one command
//!   runner; each step says what a failure leaves behind and the command
//!   that recovers. Once the plan is accepted, nothing the output does
//!   stops a step ([`crate::sys::output::Out`] swallows a closed stdout):
//!   the run finishes, records its outcome where `status` finds it, and
//!   the exit code says whether everything was done;
//! - **verifying** checks that the root equals its blank state and that
//!   the archive exists (read-only, on btrfs).
//!
//! The flow lives in `flow`, the plan's text and JSON in `show`, the rules
//! of retention in `retention` (pure), the guards in `guard` (pure),
//! the last rollback's record in `outcome`.

pub mod btrfs;
mod flow;
mod guard;
mod outcome;
pub mod record;
mod restore;
mod retention;
mod show;
mod status;
pub mod zfs;

pub use flow::rollback;
pub use guard::{
    guard, loss_refusals, Blank, Facts, Mark, Override, Overrides, Problem, Recorded, Refusal, RootState,
};
pub use outcome::{LastRollback, Outcome};
pub use record::{record, Counts, Decision, Record, RecordedClaim};
pub use restore::restore;
pub use retention::{retain, Kept, Retention};
pub use status::{archives, mark, status};

use std::io::{self, BufRead, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::TargetNames;
use crate::report::Verdict;
use crate::sanitize::escape;
use crate::sys::command::{Cmd, CommandError, Pipe};

/// Why a rollback command could not do its work (a refusal is not an
/// error: it is part of the plan).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An external program failed; it carries the command and its stderr.
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Zfs(#[from] crate::source::zfs::ZfsError),
    /// Another darlings is at work on the target.
    #[error(transparent)]
    Lock(#[from] crate::sys::lock::LockError),
    /// The cause is said in the message, once (not also as a `source`,
    /// which `{:#}` would print again).
    #[error("{what}: {cause}")]
    Io { what: String, cause: io::Error },
    /// The flags name something that cannot be a target, or not this way.
    #[error("{0}")]
    Target(String),
    /// The audit of the root (or its rules) failed.
    #[error("{what}: {message}")]
    Audit { what: String, message: String },
}

impl Error {
    fn io(what: impl Into<String>, source: impl Into<io::Error>) -> Error {
        Error::Io { what: what.into(), cause: source.into() }
    }

    fn audit(what: impl Into<String>, e: &anyhow::Error) -> Error {
        Error::Audit { what: what.into(), message: format!("{e:#}") }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One command of a plan.
#[derive(Debug)]
pub struct Step {
    pub action: Action,
    /// What it does, for people.
    pub what: String,
    /// The state a failure of this step leaves, and how to recover (the
    /// commands in it quoted by [`crate::sanitize::shell_quote`]).
    pub if_fails: String,
}

#[derive(Debug)]
pub enum Action {
    Run(Cmd),
    Pipe(Pipe),
    /// A command that runs only if its check, made right before, still
    /// holds (what was true when the plan was made may not be any more).
    Checked(Cmd, Check),
    /// What darlings does itself, on descriptors it holds (a rename, a new
    /// directory), or a command between what it checks right before and
    /// notes right after. `words` say it for people and for JSON.
    Call(Vec<String>, Check),
}

/// A test made right before a step runs, or a step darlings makes itself:
/// `Err` says why it must not run, or why it failed.
pub struct Check(Box<dyn Fn() -> std::result::Result<(), String> + Send + Sync>);

impl Check {
    pub fn new(test: impl Fn() -> std::result::Result<(), String> + Send + Sync + 'static) -> Check {
        Check(Box::new(test))
    }
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Check")
    }
}

impl Action {
    pub fn display(&self) -> String {
        match self {
            Action::Run(cmd) | Action::Checked(cmd, _) => cmd.display(),
            Action::Pipe(pipe) => pipe.display(),
            Action::Call(words, _) => crate::sanitize::shell_words(words),
        }
    }

    fn argv(&self) -> Vec<Vec<String>> {
        let text = |c: &Cmd| c.argv().iter().map(|a| a.to_string_lossy().into_owned()).collect();
        match self {
            Action::Run(cmd) | Action::Checked(cmd, _) => vec![text(cmd)],
            Action::Pipe(pipe) => vec![text(&pipe.first), text(&pipe.second)],
            Action::Call(words, _) => vec![words.clone()],
        }
    }

    fn run(&self) -> Result<(), CommandError> {
        match self {
            Action::Run(cmd) => cmd.output().map(drop),
            Action::Pipe(pipe) => pipe.output().map(drop),
            Action::Checked(cmd, Check(test)) => match test() {
                Ok(()) => cmd.output().map(drop),
                Err(why) => Err(CommandError::NotRun { command: cmd.display(), why }),
            },
            Action::Call(_, Check(call)) => {
                call().map_err(|why| CommandError::NotRun { command: self.display(), why })
            }
        }
    }
}

/// What the audit of the root says the rollback erases. Built from a flat
/// audit (every path judged by itself, see [`audit::guard`]), so that a
/// directory is judged by itself: a directory holds nothing to lose by
/// itself (its content is counted on its own), so only what is not a
/// directory counts as critical, as a new identity, or makes a claim
/// broken. Lists of paths hold the first [`Capped::KEPT`] in byte order;
/// their `_total` says how many there are.
///
/// [`audit::guard`]: crate::audit::guard
/// [`Capped::KEPT`]: crate::report::Capped::KEPT
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Loss {
    pub source: String,
    /// Claims were checked on the live tree (not assumed).
    pub claims_verified: bool,
    pub unclaimed_entries: u64,
    pub unclaimed_bytes: u64,
    /// Declared claims whose content lies on the root (the claims' patterns).
    pub broken: Vec<String>,
    pub new_identity: Vec<String>,
    pub new_identity_total: u64,
    pub critical: Vec<String>,
    pub critical_total: u64,
    pub errors: u64,
    /// The root holds nothing its blank state does not: every finding is
    /// recreated, structure, restored, ignored or a realised claim. An
    /// archive of it holds nothing worth keeping.
    pub holds_nothing: bool,
}

impl Loss {
    /// Reads the guards' audit.
    pub fn from_guarded(audit: &crate::audit::Guarded, verified: bool) -> Loss {
        let total = audit.totals.get(&Verdict::Unclaimed);
        let paths = |c: &crate::report::Capped| c.kept().map(|p| escape(p).into_owned()).collect();
        let tally = &audit.tally;
        Loss {
            source: audit.source.to_owned(),
            claims_verified: verified,
            unclaimed_entries: total.map_or(0, |t| t.entries),
            unclaimed_bytes: total.map_or(0, |t| t.bytes),
            broken: tally.broken().map(|p| escape(p).into_owned()).collect(),
            new_identity: paths(tally.new_identity()),
            new_identity_total: tally.new_identity().total(),
            critical: paths(tally.critical()),
            critical_total: tally.critical().total(),
            errors: audit.error_count,
            holds_nothing: audit.error_count == 0 && tally.holds_nothing(),
        }
    }
}

/// Everything a rollback will do, decided before anything is done. Text
/// fields are for people and already safe for a terminal (names escaped,
/// commands quoted).
#[derive(Debug, Default)]
pub struct Plan {
    pub backend: &'static str,
    /// The dataset, or the subvolume and its filesystem.
    pub target: String,
    /// What the user types to confirm.
    pub confirm: String,
    /// The blank snapshot, and when it was made.
    pub blank: String,
    pub blank_created: Option<i64>,
    /// Where the target is mounted now.
    pub mounted: Vec<String>,
    /// Snapshots and clones the rollback destroys.
    pub destroyed: Vec<String>,
    /// Child datasets or nested subvolumes, with what becomes of them.
    pub children: Vec<String>,
    /// Where the erased state is kept, and the new archive's name.
    pub archive: Option<String>,
    pub archive_name: Option<String>,
    /// Old archives the retention removes (for people), and those it
    /// keeps (with why).
    pub pruned: Vec<String>,
    pub retained: Vec<String>,
    /// The names of the archives the retention removes, as they are.
    pub pruned_names: Vec<String>,
    /// The new archive is made read-only by a step of the plan.
    pub archive_read_only: bool,
    /// The step after which the archive exists and holds the old root:
    /// only then does the outcome say the erased state is kept there.
    pub archive_step: Option<usize>,
    /// btrfs: the id of the root subvolume the plan moves aside.
    pub archive_id: Option<u64>,
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
    /// What the questions found; [`guard`] turns it into `refusals`.
    pub facts: Facts,
    pub refusals: Vec<Refusal>,
}

/// A kept erased root.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Archive {
    pub name: String,
    /// When it was made (from its name, else from the filesystem).
    pub created: Option<i64>,
    pub size: Option<u64>,
    /// Made by darlings (its name is a darlings stamp): retention may prune it.
    pub ours: bool,
    /// Whether it holds anything its blank state does not, as recorded
    /// when it was made (`None`: not known, and counted as holding data).
    pub holds: Option<bool>,
    /// Where it, or something in it, is mounted: never pruned then.
    pub mounted: Vec<String>,
    /// Whether it is read-only, as the filesystem says (`None`: not asked,
    /// or it cannot tell).
    pub read_only: Option<bool>,
}

impl Archive {
    /// Whether it holds data: recorded so, or not known (an archive whose
    /// note was lost counts as holding data, never as empty). Retention
    /// and restore's default choice read this one answer.
    pub fn holds_data(&self) -> bool {
        self.holds != Some(false)
    }
}

/// One way to erase a root: ZFS or btrfs. Each answers read-only questions
/// and builds the plan's steps; the flow, the guards and the output are
/// shared, so both behave alike.
pub trait Backend {
    /// What the target is, for people.
    fn name(&self) -> String;
    /// How the target carries the ephemeral mark (`None`: it does not).
    fn marked(&self) -> Result<Option<String>>;
    /// Sets or removes the mark; says what was done.
    fn mark(&self, on: bool) -> Result<String>;
    /// The plan without retention: the facts and the steps of the erase.
    fn plan(&self, cfg: &crate::config::Rollback, now: i64) -> Result<Plan>;
    /// Retention, once the audit says whether the new archive holds data.
    fn plan_retention(&self, cfg: &crate::config::Rollback, now: i64, plan: &mut Plan) -> Result<()>;
    /// Where the root's audit runs (`None`: there is no root to audit).
    fn audit_place(&self) -> Result<Option<AuditPlace>>;
    /// Whether the tree at `path` is the target's root itself (mounted
    /// there): what `record` audits must be what the rollback erases.
    fn is_root_at(&self, path: &Path) -> Result<bool>;
    /// The pointer to the record ([`record`]), as the root carries it.
    fn record_pointer(&self) -> Result<Option<Vec<u8>>>;
    /// Sets the pointer, or (`None`) removes it.
    fn set_record_pointer(&self, value: Option<&[u8]>) -> Result<()>;
    /// The directory that holds the record (`None`: there is none, and
    /// `access` does not make it).
    fn record_store(&self, access: record::Access) -> Result<Option<record::RecordStore>>;
    fn verify(&self, plan: &Plan) -> Vec<(String, bool)>;
    /// After the steps: what mounts show now that people may not expect.
    fn mounts_after(&self, plan: &Plan) -> Vec<String>;
    /// Keeps what is known of the new archive once it is made: whether it
    /// holds data (retention reads it) and, where the filesystem does not
    /// know, `made`: when the steps ran (the name is when the run started).
    fn note_archive(&self, plan: &Plan, made: i64) -> Result<()>;
    fn record_outcome(&self, last: &LastRollback) -> Result<()>;
    /// The last rollback's record: `Err` holds what could not be read.
    fn last_outcome(&self) -> Option<Result<LastRollback, String>>;
    /// The archives (sizes and seals only when asked: they take time).
    fn list_archives(&self, sizes: bool) -> Result<Vec<Archive>>;
    /// Takes the target's lock (one rollback, mark or record at a time),
    /// waiting up to `wait` for another darlings to let it go.
    fn lock(&self, wait: std::time::Duration) -> Result<crate::sys::lock::Lock>;
    /// Whether the archive a rollback recorded exists and holds the root
    /// it moved aside, as the filesystem says now (`None`: cannot tell).
    fn archive_holds_root(&self, last: &LastRollback) -> Option<bool>;
    /// A descriptor on the filesystem whose pending writes the erase must
    /// commit first (btrfs: a snapshot commits the whole filesystem), so
    /// that commit can run while the plan is made (`None`: nothing to
    /// gain).
    fn filesystem(&self) -> Option<std::os::fd::OwnedFd> {
        None
    }
}

/// The target of a rollback, by backend.
pub enum Target {
    Zfs(zfs::Zfs),
    Btrfs(btrfs::Btrfs),
}

/// Where the root's audit runs.
pub struct AuditPlace {
    pub root: PathBuf,
    pub source: crate::source::Kind,
    pub baseline: Option<PathBuf>,
    pub dataset: Option<String>,
    /// The blank snapshot (ZFS).
    pub snapshot: Option<String>,
    /// Claims can be checked there (the root is mounted as the system runs it).
    pub verified: bool,
    /// Undoes a temporary mount when dropped.
    pub _guard: Option<Box<dyn std::any::Any>>,
}

impl Target {
    /// The target the flags name; without any, the root mounted at `/`.
    pub fn open(args: &TargetNames, writable: bool) -> Result<Target> {
        if args.dataset.is_some() {
            return Ok(Target::Zfs(zfs::Zfs::new(args)?));
        }
        if args.device.is_some() || args.mountpoint.is_some() {
            return Ok(Target::Btrfs(btrfs::Btrfs::open(args, writable)?));
        }
        let mounts = crate::sys::mounts::Mounts::read(Path::new("/"))
            .map_err(|e| Error::io("cannot read mountinfo", e))?;
        match mounts.root() {
            Some(m) if m.fstype == "zfs" => {
                let mut args = args.clone();
                args.dataset = Some(String::from_utf8_lossy(&m.source).into_owned());
                Ok(Target::Zfs(zfs::Zfs::new(&args)?))
            }
            Some(m) if m.fstype == "btrfs" => {
                let mut args = args.clone();
                args.device = Some(PathBuf::from(std::ffi::OsStr::from_bytes(&m.source)));
                if args.subvolume == "root" {
                    let sub = String::from_utf8_lossy(&m.fs_root).trim_start_matches('/').to_owned();
                    if !sub.is_empty() {
                        args.subvolume = sub;
                    }
                }
                Ok(Target::Btrfs(btrfs::Btrfs::open(&args, writable)?))
            }
            Some(m) => Err(Error::Target(format!(
                "/ is {} ({}): name the root with --dataset (ZFS) or --device/--mountpoint (btrfs)",
                escape(m.fstype.as_bytes()),
                escape(&m.source)
            ))),
            None => Err(Error::Target(
                "/ is not a mount point here: name the root with --dataset or --device/--mountpoint".into(),
            )),
        }
    }

    pub fn backend(&self) -> &dyn Backend {
        match self {
            Target::Zfs(z) => z,
            Target::Btrfs(b) => b,
        }
    }

    /// The archives with their sizes, newest first.
    pub fn archives(&self) -> Result<Vec<Archive>> {
        let mut list = self.backend().list_archives(true)?;
        newest_first(&mut list);
        Ok(list)
    }

    pub fn name(&self) -> String {
        self.backend().name()
    }
}

/// Sorts archives newest first, in the order their rollbacks ran: by the
/// time in a darlings name (when its run started; others by when they
/// were made), then by the `-N` that tells apart rollbacks of the same
/// second (`-10` after `-9`), then by name. Not by when each was made: a
/// root moved aside late in its run can share the second in which the next
/// run starts, and would pass for the newer one.
pub fn newest_first(list: &mut [Archive]) {
    let ran = |a: &Archive| a.name.get(..16).and_then(parse_stamp).filter(|_| a.ours).or(a.created);
    let n = |a: &Archive| -> u64 {
        a.name.rsplit_once('-').and_then(|(_, n)| n.parse().ok()).filter(|_| a.ours).unwrap_or(1)
    };
    list.sort_by(|a, b| ran(b).cmp(&ran(a)).then_with(|| n(b).cmp(&n(a))).then_with(|| b.name.cmp(&a.name)));
}

/// A stamp for archive names: `20261126T164900Z` (UTC, sorts by time).
pub fn stamp(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => secs.to_string(),
    }
}

/// The time of a [`stamp`]; `None` for any other name.
pub fn parse_stamp(name: &str) -> Option<i64> {
    let b = name.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = name.get(r)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(num(0..4)?).ok()?,
        month,
        u8::try_from(num(6..8)?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, clock).assume_utc().unix_timestamp())
}

/// Asks for the target's name on a terminal; true only when it is typed exactly.
pub fn confirm(input: &mut dyn BufRead, prompt: &mut dyn Write, name: &str) -> io::Result<bool> {
    write!(
        prompt,
        "Type the name of the target ({}) to erase it, anything else to stop: ",
        escape(name.as_bytes())
    )?;
    prompt.flush()?;
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        writeln!(prompt)?;
        return Ok(false);
    }
    Ok(line.trim_end_matches(['\n', '\r']) == name)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A name from the filesystem (subvolume, archive, mount point), escaped
/// for a terminal.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    escape(text.as_bytes())
}

/// A path, escaped for a terminal (for prose; commands quote theirs).
fn shown_path(path: &Path) -> String {
    escape(path.as_os_str().as_bytes()).into_owned()
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// The first few of a list, then how many more.
fn list(items: &[String]) -> String {
    list_of(items, items.len() as u64)
}

/// The first of `items` (of `total` in all), and how many more there are.
fn list_of(items: &[String], total: u64) -> String {
    const SHOWN: usize = 5;
    let mut text = items.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    let shown = items.len().min(SHOWN) as u64;
    if total > shown {
        text.push_str(&format!(" and {} more", total - shown));
    }
    text
}

fn age(created: i64, now: i64) -> String {
    let secs = now.saturating_sub(created).max(0);
    let (n, unit) = match secs {
        0..=119 => (secs, "seconds"),
        120..=7199 => (secs / 60, "minutes"),
        7200..=172_799 => (secs / 3600, "hours"),
        _ => (secs / 86_400, "days"),
    };
    format!("{n} {unit} ago")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Severity;
    use crate::sys::meta::FileKind;

    #[test]
    fn stamps_round_trip_and_sort_by_time() {
        assert_eq!(stamp(1_795_702_030), "20261126T140710Z");
        assert_eq!(parse_stamp("20261126T140710Z"), Some(1_795_702_030));
        assert_eq!(parse_stamp("2026-11-26_14:07:10"), None);
        assert_eq!(parse_stamp("20261326T140710Z"), None);
        assert_eq!(parse_stamp("2026112xT140710Z"), None);
        assert!(stamp(1_700_000_000) < stamp(1_795_702_030));
    }

    #[test]
    fn archives_of_one_second_sort_by_their_number() {
        let a = |name: &str| Archive {
            name: name.into(),
            created: parse_stamp(&name[..16]),
            ours: true,
            ..Archive::default()
        };
        let mut list = vec![
            a("20261126T140710Z-9"),
            a("20261126T140710Z"),
            a("20261126T140710Z-10"),
            a("20261126T140711Z"),
        ];
        newest_first(&mut list);
        let names: Vec<&str> = list.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            ["20261126T140711Z", "20261126T140710Z-10", "20261126T140710Z-9", "20261126T140710Z"]
        );
    }

    #[test]
    fn archives_sort_by_when_their_rollback_ran_not_when_they_were_made() {
        // The run of -5 started at :10 and moved the root aside at :11, the
        // second in which the next run started.
        let earlier = Archive {
            name: "20261126T140710Z-5".into(),
            created: parse_stamp("20261126T140711Z"),
            ours: true,
            ..Archive::default()
        };
        let later = Archive {
            name: "20261126T140711Z".into(),
            created: parse_stamp("20261126T140711Z"),
            ours: true,
            ..Archive::default()
        };
        let mut list = vec![earlier, later];
        newest_first(&mut list);
        assert_eq!(list[0].name, "20261126T140711Z");
    }

    #[test]
    fn the_prompt_wants_the_exact_name() {
        let mut prompt = Vec::new();
        assert!(confirm(&mut &b"rpool/local/root\n"[..], &mut prompt, "rpool/local/root").unwrap());
        assert!(String::from_utf8_lossy(&prompt).contains("(rpool/local/root)"));
        assert!(!confirm(&mut &b"yes\n"[..], &mut Vec::new(), "rpool/local/root").unwrap());
        assert!(!confirm(&mut &b"\n"[..], &mut Vec::new(), "rpool/local/root").unwrap());
        assert!(!confirm(&mut &b""[..], &mut Vec::new(), "rpool/local/root").unwrap());
        assert!(!confirm(&mut &b" rpool/local/root\n"[..], &mut Vec::new(), "rpool/local/root").unwrap());
    }

    fn finding(path: &str, verdict: Verdict, kind: FileKind) -> crate::report::Finding {
        crate::report::Finding::new(path.as_bytes().to_vec(), verdict, kind)
    }

    fn guarded(findings: Vec<crate::report::Finding>) -> crate::audit::Guarded {
        let mut tally = crate::report::Tally::default();
        findings.iter().for_each(|f| tally.add(f, &f.path));
        crate::audit::Guarded {
            totals: tally.totals(&crate::report::HardLinks::default()),
            tally,
            error_count: 0,
            errors: Vec::new(),
            source: "walk",
            notes: Vec::new(),
            declared: Vec::new(),
        }
    }

    #[test]
    fn a_directory_by_itself_holds_nothing_to_lose() {
        let precious = |f: &mut crate::report::Finding| {
            f.precious = Some(crate::report::Precious {
                pattern: "x".into(),
                severity: Severity::Critical,
                reason: "x".into(),
                directory: true,
                origin: "built-in".into(),
            });
        };
        let mut ssh = finding("/home/alice/.ssh", Verdict::Unclaimed, FileKind::Dir);
        precious(&mut ssh);
        let mut key = finding("/root/.ssh/id_ed25519", Verdict::Unclaimed, FileKind::File);
        precious(&mut key);
        let loss = Loss::from_guarded(&guarded(vec![ssh.clone()]), false);
        assert!(loss.critical.is_empty(), "{loss:?}");
        assert!(!loss.holds_nothing, "an unclaimed directory is something the blank does not have");
        assert_eq!(Loss::from_guarded(&guarded(vec![ssh, key]), false).critical, ["/root/.ssh/id_ed25519"]);
        let recreated = finding("/etc/static", Verdict::Recreated, FileKind::Symlink);
        assert!(Loss::from_guarded(&guarded(vec![recreated]), true).holds_nothing);
    }
}
