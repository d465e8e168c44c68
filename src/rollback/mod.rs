//! `darlings rollback` and its companions (`mark`, `archives`, `restore`,
//! `record`, `status`): the erase itself, behind guards, with a way back.
//!
//! A rollback goes plan → show → guard → confirm → act → verify:
//!
//! - the **plan** is built from read-only questions (`zfs list/get`,
//!   `btrfs subvolume show/list`, and an audit of the root) and holds every
//!   command as exact argv, what it destroys, where the way back is kept,
//!   and every refusal; `--dry-run` prints it and stops;
//! - **guards** are refusals in the plan: nothing runs while there is one
//!   (`--force`, `--live`, `--destroy-newer`, `--destroy-clones` lift only
//!   the ones they name; the ephemeral mark is never lifted);
//! - **confirmation**: `--yes`, or the target's name typed on a terminal;
//! - **acting** runs the plan's commands in order, through the one command
//!   runner; each step says what a failure leaves behind and the command
//!   that recovers;
//! - **verifying** checks that the root equals its blank state and that
//!   the archive exists.
//!
//! The backends ([`zfs`], [`btrfs`]) build plans and answer questions; this
//! module owns the flow, the output and the prompt, so both behave alike.

pub mod btrfs;
mod restore;
mod status;
pub mod zfs;

pub use restore::restore;
pub use status::{archives, mark, read_record, record, status};

use std::io::{self, BufRead, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::cli::{
    AuditArgs, Format, PlanFormat, RollbackArgs, RuleArgs, SourceArgs, SourceKind, TargetArgs, When,
};
use crate::error::ExitCode;
use crate::report::Severity;
use crate::report::{Report, Verdict};
use crate::sanitize::escape;
use crate::sys::command::{Cmd, CommandError, Pipe};
use crate::sys::fmt::human_size;

/// The extended attribute, on the root directory of the root, that holds
/// the audit recorded at shutdown (`darlings record`).
pub const RECORD_XATTR: &str = "user.darlings.audit";

/// One command of a plan.
#[derive(Debug)]
pub struct Step {
    pub action: Action,
    /// What it does, for people.
    pub what: String,
    /// The state a failure of this step leaves, and how to recover.
    pub if_fails: String,
}

#[derive(Debug)]
pub enum Action {
    Run(Cmd),
    Pipe(Pipe),
}

impl Action {
    pub fn display(&self) -> String {
        match self {
            Action::Run(cmd) => cmd.display(),
            Action::Pipe(pipe) => pipe.display(),
        }
    }

    fn argv(&self) -> Vec<Vec<String>> {
        let text = |c: &Cmd| c.argv().iter().map(|a| a.to_string_lossy().into_owned()).collect();
        match self {
            Action::Run(cmd) => vec![text(cmd)],
            Action::Pipe(pipe) => vec![text(&pipe.first), text(&pipe.second)],
        }
    }

    fn run(&self) -> Result<(), CommandError> {
        match self {
            Action::Run(cmd) => cmd.output().map(drop),
            Action::Pipe(pipe) => pipe.output().map(drop),
        }
    }
}

/// Why the plan may not go ahead.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub reason: String,
    pub code: ExitCode,
    /// The flag that lifts it, if any.
    pub unless: Option<&'static str>,
}

impl Refusal {
    pub fn new(code: ExitCode, reason: impl Into<String>) -> Refusal {
        Refusal { reason: reason.into(), code, unless: None }
    }

    pub fn unless(mut self, flag: &'static str) -> Refusal {
        self.unless = Some(flag);
        self
    }
}

/// What the audit of the root says the rollback erases.
#[derive(Debug, Default, Serialize)]
pub struct Loss {
    pub source: String,
    /// Claims were checked on the live tree (not assumed).
    pub claims_verified: bool,
    pub unclaimed_entries: u64,
    pub unclaimed_bytes: u64,
    pub broken: Vec<String>,
    pub new_identity: Vec<String>,
    pub critical: Vec<String>,
    pub errors: usize,
}

impl Loss {
    fn from_report(report: &Report, verified: bool) -> Loss {
        let total = report.totals.get(&Verdict::Unclaimed);
        let paths = |v: Verdict| {
            report
                .findings
                .iter()
                .filter(|f| f.verdict == v && !f.accepted)
                .map(|f| escape(&f.path).into_owned())
                .collect::<Vec<_>>()
        };
        Loss {
            source: report.source.to_owned(),
            claims_verified: verified,
            unclaimed_entries: total.map_or(0, |t| t.entries),
            unclaimed_bytes: total.map_or(0, |t| t.bytes),
            broken: paths(Verdict::Broken),
            new_identity: paths(Verdict::NewIdentity),
            critical: report
                .findings
                .iter()
                .filter(|f| f.verdict.is_loss() && !f.accepted && f.severity() == Some(Severity::Critical))
                .map(|f| escape(&f.path).into_owned())
                .collect(),
            errors: report.errors.len(),
        }
    }
}

/// Everything a rollback will do, decided before anything is done.
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
    /// How the target is marked ephemeral (`None`: it is not).
    pub marked: Option<String>,
    /// Where the target is mounted now.
    pub mounted: Vec<String>,
    /// Snapshots and clones the rollback destroys.
    pub destroyed: Vec<String>,
    /// Child datasets or nested subvolumes, with what becomes of them.
    pub children: Vec<String>,
    /// Where the erased state is kept, and the new archive's name.
    pub archive: Option<String>,
    pub archive_name: Option<String>,
    /// Old archives the retention removes.
    pub pruned: Vec<String>,
    pub loss: Option<Loss>,
    pub steps: Vec<Step>,
    pub refusals: Vec<Refusal>,
    pub notes: Vec<String>,
}

impl Plan {
    /// Refuses with `reason` when `n` is not zero; `--force` lifts it.
    fn refuse_unless_forced(&mut self, n: usize, code: ExitCode, reason: impl FnOnce() -> String) {
        if n > 0 {
            self.refusals.push(Refusal::new(code, reason()).unless("--force"));
        }
    }

    /// The exit code of the refusals that stand (2 before 3 before 1).
    fn refused(&self) -> Option<ExitCode> {
        let rank = |c: ExitCode| match c {
            ExitCode::Incomplete => 3,
            ExitCode::Broken => 2,
            ExitCode::Loss => 1,
            ExitCode::Clean => 0,
        };
        self.refusals.iter().map(|r| r.code).max_by_key(|c| rank(*c))
    }
}

/// The audit recorded at shutdown, for the initrd's rollback.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// When it was recorded (seconds since the epoch).
    pub time: i64,
    pub unclaimed_entries: u64,
    pub unclaimed_bytes: u64,
    pub broken: u64,
    pub critical: u64,
    pub errors: u64,
}

/// A kept erased root.
#[derive(Debug, Clone, Serialize)]
pub struct Archive {
    pub name: String,
    /// When it was made (from its name, else from the filesystem).
    pub created: Option<i64>,
    pub size: Option<u64>,
    /// Made by darlings (its name is a darlings stamp): retention may prune it.
    pub ours: bool,
}

/// The target of a rollback, by backend.
pub enum Target {
    Zfs(zfs::Zfs),
    Btrfs(btrfs::Btrfs),
}

/// Where the root's audit runs.
pub struct AuditPlace {
    pub root: PathBuf,
    pub source: SourceKind,
    pub baseline: Option<PathBuf>,
    pub dataset: Option<String>,
    pub snapshot: String,
    /// Claims can be checked there (the root is mounted as the system runs it).
    pub verified: bool,
    /// Undoes a temporary mount when dropped.
    pub _guard: Option<Box<dyn std::any::Any>>,
}

impl Target {
    /// The target the flags name; without any, the root mounted at `/`.
    pub fn open(args: &TargetArgs, writable: bool) -> Result<Target> {
        if args.dataset.is_some() {
            return Ok(Target::Zfs(zfs::Zfs::new(args)?));
        }
        if args.device.is_some() || args.mountpoint.is_some() {
            return Ok(Target::Btrfs(btrfs::Btrfs::open(args, writable)?));
        }
        let mounts = crate::sys::mounts::Mounts::read(Path::new("/")).context("cannot read mountinfo")?;
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
            Some(m) => bail!(
                "/ is {} ({}): name the root with --dataset (ZFS) or --device/--mountpoint (btrfs)",
                m.fstype,
                String::from_utf8_lossy(&m.source)
            ),
            None => {
                bail!("/ is not a mount point here: name the root with --dataset or --device/--mountpoint")
            }
        }
    }

    fn plan(&self, args: &RollbackArgs, now: i64) -> Result<Plan> {
        match self {
            Target::Zfs(z) => z.plan(args, now),
            Target::Btrfs(b) => b.plan(args, now),
        }
    }

    fn audit_place(&self) -> Result<Option<AuditPlace>> {
        match self {
            Target::Zfs(z) => z.audit_place(),
            Target::Btrfs(b) => b.audit_place(),
        }
    }

    fn verify(&self, plan: &Plan) -> Vec<(String, bool)> {
        match self {
            Target::Zfs(z) => z.verify(plan),
            Target::Btrfs(b) => b.verify(plan),
        }
    }

    /// Keeps a one-line account of the last rollback where `status` finds it.
    fn record_outcome(&self, text: &str) -> Result<()> {
        match self {
            Target::Zfs(z) => z.record_outcome(text),
            Target::Btrfs(b) => b.record_outcome(text),
        }
    }

    fn last_outcome(&self) -> Option<String> {
        match self {
            Target::Zfs(z) => z.last_outcome(),
            Target::Btrfs(b) => b.last_outcome(),
        }
    }

    pub fn archives(&self) -> Result<Vec<Archive>> {
        let mut list = match self {
            Target::Zfs(z) => z.archives()?,
            Target::Btrfs(b) => b.archives()?,
        };
        list.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.name.cmp(&a.name)));
        Ok(list)
    }

    fn read_record(&self) -> Result<Option<Record>> {
        match self {
            Target::Zfs(z) => z.read_record(),
            Target::Btrfs(b) => b.read_record(),
        }
    }

    fn marked(&self) -> Result<Option<String>> {
        match self {
            Target::Zfs(z) => z.marked(),
            Target::Btrfs(b) => b.marked(),
        }
    }

    fn name(&self) -> String {
        match self {
            Target::Zfs(z) => z.dataset.clone(),
            Target::Btrfs(b) => b.describe(),
        }
    }
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

/// The archives retention removes once `newest` exists: an archive darlings
/// made is kept when it is among the newest `retain`, or younger than
/// `retain_days`; without either, all are kept. The newest is never pruned,
/// nor anything darlings did not make.
pub fn prune(
    archives: &[Archive],
    newest: &Archive,
    retain: Option<u32>,
    retain_days: Option<u32>,
    now: i64,
) -> Vec<String> {
    if retain.is_none() && retain_days.is_none() {
        return Vec::new();
    }
    let mut ours: Vec<&Archive> =
        archives.iter().filter(|a| a.ours && a.name != newest.name).chain(std::iter::once(newest)).collect();
    ours.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.name.cmp(&a.name)));
    ours.iter()
        .enumerate()
        .filter(|&(i, a)| {
            let by_count = retain.is_some_and(|n| (i as u64) < u64::from(n));
            let by_age = retain_days
                .is_some_and(|d| a.created.is_some_and(|c| now.saturating_sub(c) < i64::from(d) * 86_400));
            i > 0 && a.name != newest.name && !by_count && !by_age
        })
        .map(|(_, a)| a.name.clone())
        .collect()
}

/// Asks for the target's name on a terminal; true only when it is typed exactly.
pub fn confirm(input: &mut dyn BufRead, prompt: &mut dyn Write, name: &str) -> io::Result<bool> {
    write!(prompt, "Type the name of the target ({name}) to erase it, anything else to stop: ")?;
    prompt.flush()?;
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        writeln!(prompt)?;
        return Ok(false);
    }
    Ok(line.trim_end_matches(['\n', '\r']) == name)
}

/// Writes a line to the kernel log (seen by `journalctl -b` and on the
/// console), for messages of the initrd. Best effort.
fn kernel_log(text: &str) {
    if let Ok(mut kmsg) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        let _ = writeln!(kmsg, "<4>darlings: {text}");
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `darlings rollback`.
pub fn rollback(args: &RollbackArgs) -> Result<ExitCode> {
    let now = now();
    let (target, mut plan) = match prepare(args, now) {
        Ok(x) => x,
        // In the initrd, a rollback that cannot even be planned leaves the root alone.
        Err(e) if args.initrd => {
            let text = format!("rollback refused, the root is left as it is: {e:#}");
            eprintln!("darlings: {}", escape(text.as_bytes()));
            kernel_log(&text);
            return Ok(ExitCode::Clean);
        }
        Err(e) => return Err(e),
    };
    // Lifted refusals are gone; those that stand are shown with their flag.
    plan.refusals.retain(|r| match r.unless {
        Some("--force") => !args.force,
        Some("--live") => !args.live,
        Some("--destroy-newer") => !args.destroy_newer,
        Some("--destroy-clones") => !args.destroy_clones,
        _ => true,
    });
    let json = args.format == PlanFormat::Json;
    // Text goes to stdout as it happens; JSON is one object at the end.
    let mut stdout = io::stdout().lock();
    let mut sink = io::sink();
    let out: &mut dyn Write = if json { &mut sink } else { &mut stdout };
    show_plan(out, &plan)?;
    let mut outcome = Outcome::default();
    let code = act(&target, &plan, args, now, &mut outcome, out)?;
    if json {
        let value = plan_json(&plan, &outcome, args.dry_run, code);
        serde_json::to_writer_pretty(&mut stdout, &value)?;
        writeln!(stdout)?;
    }
    Ok(code)
}

/// Opens the target and builds its plan: the backend's questions, then the
/// audit (unless a guard no flag lifts already refuses), then, in the
/// initrd, the record of the last shutdown.
fn prepare(args: &RollbackArgs, now: i64) -> Result<(Target, Plan)> {
    let target = Target::open(&args.target, !args.dry_run)?;
    let mut plan = target.plan(args, now)?;
    if !plan.steps.is_empty() && plan.loss.is_none() && !plan.refusals.iter().any(|r| r.unless.is_none()) {
        audit_into(&target, args, &mut plan)?;
    }
    if args.initrd {
        recorded_into(&target, args, &mut plan);
    }
    Ok((target, plan))
}

/// Everything after the plan is shown: refuse, stop (dry run), confirm,
/// run the commands, verify. Returns the exit code.
fn act(
    target: &Target,
    plan: &Plan,
    args: &RollbackArgs,
    now: i64,
    outcome: &mut Outcome,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    if let Some(code) = plan.refused() {
        writeln!(out, "\nRefused, nothing was changed:")?;
        for r in &plan.refusals {
            let lift = r.unless.map_or(String::new(), |f| format!(" (pass {f} to go ahead anyway)"));
            writeln!(out, "  - {}{lift}", r.reason)?;
        }
        if !args.initrd {
            return Ok(code);
        }
        let reasons = plan.refusals.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>().join("; ");
        let text = format!("refused, the root was left as it is: {reasons}");
        kernel_log(&text);
        eprintln!("darlings: rollback {text}");
        if let Err(e) = target.record_outcome(&format!("{} {text}", crate::render::rfc3339(now))) {
            eprintln!("darlings: cannot record the refusal for `darlings status`: {e:#}");
        }
        return Ok(ExitCode::Clean);
    }
    if plan.steps.is_empty() {
        writeln!(out, "\nNothing to do.")?;
        return Ok(ExitCode::Clean);
    }
    if args.dry_run {
        writeln!(
            out,
            "\nDry run: nothing was changed. Without --dry-run, the commands above run in this order."
        )?;
        return Ok(ExitCode::Clean);
    }
    // In the initrd nobody is there to ask: the mark and the record decide.
    if !args.yes && !args.initrd {
        let stdin = io::stdin();
        let refused = if !stdin.is_terminal() {
            Some("stdin is not a terminal; pass --yes to erase without asking")
        } else {
            out.flush()?;
            (!confirm(&mut stdin.lock(), &mut io::stderr(), &plan.confirm)?)
                .then_some("the name was not typed")
        };
        if let Some(why) = refused {
            writeln!(out, "\nRefused, nothing was changed: {why}")?;
            outcome.refused = Some(why.into());
            return Ok(ExitCode::Incomplete);
        }
    }
    for (i, step) in plan.steps.iter().enumerate() {
        writeln!(out, "[{}/{}] {}", i + 1, plan.steps.len(), step.action.display())?;
        out.flush()?;
        if let Err(e) = step.action.run() {
            let text = format!("failed at step {} of {}: {e}", i + 1, plan.steps.len());
            let state = capitalized(&step.if_fails);
            writeln!(out, "\nThe rollback {text}\n{state}")?;
            eprintln!("darlings: the rollback {}", escape(text.as_bytes()));
            if args.format == PlanFormat::Json {
                eprintln!("{}", escape(state.as_bytes()));
            }
            if args.initrd {
                kernel_log(&format!("rollback {text}. {state}"));
            }
            let _ =
                target.record_outcome(&format!("{} rollback {text}. {state}", crate::render::rfc3339(now)));
            outcome.failed = Some(format!("{text}. {state}"));
            return Ok(ExitCode::Incomplete);
        }
        outcome.done += 1;
    }
    outcome.verified = target.verify(plan);
    let ok = outcome.verified.iter().all(|(_, ok)| *ok);
    writeln!(out, "\nVerified:")?;
    for (what, ok) in &outcome.verified {
        writeln!(out, "  {} {what}", if *ok { "ok  " } else { "FAIL" })?;
    }
    let summary = format!(
        "{} rolled back {} to {}{}{}",
        crate::render::rfc3339(now),
        plan.target,
        plan.blank,
        plan.archive.as_ref().map_or(String::new(), |a| format!("; erased state kept in {a}")),
        if ok { "" } else { "; VERIFICATION FAILED" }
    );
    if let Err(e) = target.record_outcome(&summary) {
        eprintln!("darlings: cannot record the outcome for `darlings status`: {e:#}");
    }
    if !ok {
        eprintln!("darlings: the rollback ran but its result is not as planned (see above)");
        return Ok(ExitCode::Incomplete);
    }
    Ok(ExitCode::Clean)
}

#[derive(Debug, Default)]
struct Outcome {
    refused: Option<String>,
    done: usize,
    failed: Option<String>,
    verified: Vec<(String, bool)>,
}

/// Runs the root's audit and turns what it finds into the plan's loss and refusals.
fn audit_into(target: &Target, args: &RollbackArgs, plan: &mut Plan) -> Result<()> {
    let Some(place) = target.audit_place()? else {
        return Ok(());
    };
    let verified = place.verified && !args.initrd;
    let mut sources = args.rules.clone();
    sources.assume_claims |= !verified;
    let audit_args = AuditArgs {
        rules: RuleArgs { root: Some(place.root.clone()), sources },
        source: SourceArgs {
            kind: place.source,
            baseline: place.baseline.clone(),
            dataset: place.dataset.clone().map(Into::into),
            snapshot: place.snapshot.clone(),
            ..SourceArgs::default()
        },
        format: Some(Format::Json),
        threads: args.threads,
        progress: When::Never,
        color: When::Never,
        ..AuditArgs::default()
    };
    let cfg = crate::config::Audit::from_args(&audit_args)?;
    let report = crate::audit::run(&cfg).context("the audit before the rollback failed")?;
    drop(place);
    let loss = Loss::from_report(&report, verified);
    if !verified {
        plan.notes.push(if args.initrd {
            "claims are assumed (in the initrd nothing persistent is mounted); the audit recorded at shutdown decides about broken claims".into()
        } else {
            "the root is not mounted, so its claims cannot be checked: they are assumed".into()
        });
    }
    plan.refuse_unless_forced(loss.errors, ExitCode::Incomplete, || {
        format!(
            "the audit is incomplete ({} entries could not be read): what would be lost is not fully known",
            loss.errors
        )
    });
    plan.refuse_unless_forced(loss.broken.len(), ExitCode::Broken, || {
        format!(
            "{} declared claims are broken (their content is on the root): {}",
            loss.broken.len(),
            list(&loss.broken)
        )
    });
    plan.refuse_unless_forced(loss.critical.len(), ExitCode::Loss, || {
        format!("critical state is unclaimed: {}", list(&loss.critical))
    });
    plan.loss = Some(loss);
    Ok(())
}

/// In the initrd: what the audit recorded at shutdown says.
fn recorded_into(target: &Target, args: &RollbackArgs, plan: &mut Plan) {
    // Only a plan that erases something needs the record (finishing an
    // interrupted rollback erases nothing, and the boot needs its root).
    if plan.archive_name.is_none() || args.force {
        return;
    }
    match target.read_record() {
        Ok(Some(r)) => {
            plan.notes.push(format!(
                "audit recorded at shutdown ({}): {} unclaimed entries ({}), {} broken claims, {} critical",
                crate::render::rfc3339(r.time),
                r.unclaimed_entries,
                human_size(r.unclaimed_bytes),
                r.broken,
                r.critical
            ));
            for (n, code, what) in [
                (r.broken, ExitCode::Broken, "broken claims"),
                (r.critical, ExitCode::Loss, "critical losses"),
                (r.errors, ExitCode::Incomplete, "entries it could not read"),
            ] {
                plan.refuse_unless_forced(usize::try_from(n).unwrap_or(usize::MAX), code, || {
                    format!("the audit recorded at shutdown found {n} {what}")
                });
            }
        }
        Ok(None) => plan.refusals.push(
            Refusal::new(
                ExitCode::Incomplete,
                "no audit was recorded at shutdown (`darlings record`): broken claims cannot be ruled out",
            )
            .unless("--force"),
        ),
        Err(e) => plan.refusals.push(
            Refusal::new(
                ExitCode::Incomplete,
                format!("the audit recorded at shutdown cannot be read: {e:#}"),
            )
            .unless("--force"),
        ),
    }
}

/// Text holding names from the filesystem (subvolumes, archives, mount
/// points), escaped for a terminal.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    escape(text.as_bytes())
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

fn list(paths: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = paths.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if paths.len() > SHOWN {
        text.push_str(&format!(" and {} more", paths.len() - SHOWN));
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

fn show_plan(out: &mut dyn Write, plan: &Plan) -> io::Result<()> {
    let now = now();
    writeln!(out, "Rollback plan ({})", plan.backend)?;
    writeln!(out, "  target:     {}", shown(&plan.target))?;
    let made = plan
        .blank_created
        .map_or(String::new(), |t| format!(", made {} ({})", crate::render::rfc3339(t), age(t, now)));
    writeln!(out, "  blank:      {}{made}", shown(&plan.blank))?;
    writeln!(out, "  marked:     {}", plan.marked.as_deref().unwrap_or("NO"))?;
    for m in &plan.mounted {
        writeln!(out, "  mounted:    {}", shown(m))?;
    }
    match &plan.loss {
        Some(loss) => {
            writeln!(
                out,
                "  erases:     {} unclaimed entries ({}), {} broken claims, {} new identities, {} critical{}",
                loss.unclaimed_entries,
                human_size(loss.unclaimed_bytes),
                loss.broken.len(),
                loss.new_identity.len(),
                loss.critical.len(),
                if loss.claims_verified { "" } else { " (claims assumed, not checked)" }
            )?;
            for c in &loss.critical {
                writeln!(out, "              critical: {c}")?;
            }
            if loss.errors > 0 {
                writeln!(out, "              {} entries could not be read", loss.errors)?;
            }
        }
        None if !plan.steps.is_empty() => writeln!(out, "  erases:     not audited")?,
        None => {}
    }
    for d in &plan.destroyed {
        writeln!(out, "  destroys:   {}", shown(d))?;
    }
    for c in &plan.children {
        writeln!(out, "  child:      {}", shown(c))?;
    }
    writeln!(out, "  way back:   {}", shown(plan.archive.as_deref().unwrap_or("none")))?;
    for p in &plan.pruned {
        writeln!(out, "  prunes:     {} (retention)", shown(p))?;
    }
    for n in &plan.notes {
        writeln!(out, "  note:       {}", shown(n))?;
    }
    if !plan.steps.is_empty() {
        writeln!(out, "Commands:")?;
        for (i, s) in plan.steps.iter().enumerate() {
            writeln!(out, "  {}. {}", i + 1, s.action.display())?;
            writeln!(out, "       {}", s.what)?;
        }
    }
    Ok(())
}

fn plan_json(plan: &Plan, outcome: &Outcome, dry_run: bool, code: ExitCode) -> serde_json::Value {
    serde_json::json!({
        "backend": plan.backend,
        "target": plan.target,
        "blank": plan.blank,
        "blank_created": plan.blank_created.map(crate::render::rfc3339),
        "marked": plan.marked,
        "mounted": plan.mounted,
        "loss": plan.loss,
        "destroys": plan.destroyed,
        "children": plan.children,
        "archive": plan.archive,
        "prunes": plan.pruned,
        "notes": plan.notes,
        "commands": plan.steps.iter().map(|s| serde_json::json!({
            "argv": s.action.argv(),
            "shell": s.action.display(),
            "what": s.what,
            "if_fails": s.if_fails,
        })).collect::<Vec<_>>(),
        "refusals": plan.refusals.iter().map(|r| serde_json::json!({
            "reason": r.reason,
            "unless": r.unless,
            "exit_code": r.code.code(),
        })).collect::<Vec<_>>(),
        "dry_run": dry_run,
        "not_confirmed": outcome.refused,
        "commands_done": outcome.done,
        "failed": outcome.failed,
        "verified": outcome.verified.iter().map(|(what, ok)| serde_json::json!({"check": what, "ok": ok})).collect::<Vec<_>>(),
        "exit_code": code.code(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(name: &str) -> Archive {
        Archive {
            name: name.into(),
            created: parse_stamp(name),
            size: None,
            ours: parse_stamp(name).is_some(),
        }
    }

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
    fn retention_keeps_the_newest_and_what_either_rule_keeps() {
        let day = 86_400;
        let now = 1_795_702_030;
        let names: Vec<String> = (1..=5).map(|d| stamp(now - d * day - 60)).collect();
        let mut list: Vec<Archive> = names.iter().map(|n| archive(n)).collect();
        list.push(Archive { name: "2025-01-01_00:00:00".into(), created: Some(0), size: None, ours: false });
        let newest = archive(&stamp(now));
        // Nothing asked: nothing pruned.
        assert!(prune(&list, &newest, None, None, now).is_empty());
        // The newest 2 (the new one and yesterday's) stay.
        assert_eq!(prune(&list, &newest, Some(2), None, now), names[1..].to_vec());
        // Younger than 3 days: 1 and 2 days old stay.
        assert_eq!(prune(&list, &newest, None, Some(3), now), names[2..].to_vec());
        // Either rule keeps: 3 newest (new, 1, 2 days) or younger than 4 days (1..3).
        assert_eq!(prune(&list, &newest, Some(3), Some(4), now), names[3..].to_vec());
        // The newest is never pruned, whatever its age says.
        let old_newest = archive(&stamp(now - 100 * day));
        assert!(!prune(&[], &old_newest, None, Some(1), now).contains(&old_newest.name));
        // Archives darlings did not make are never pruned.
        assert!(!prune(&list, &newest, Some(1), None, now).iter().any(|n| n.contains('_')));
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

    #[test]
    fn the_worst_refusal_decides_the_exit_code() {
        let mut plan = Plan::default();
        assert_eq!(plan.refused(), None);
        plan.refusals.push(Refusal::new(ExitCode::Loss, "critical"));
        assert_eq!(plan.refused(), Some(ExitCode::Loss));
        plan.refusals.push(Refusal::new(ExitCode::Broken, "broken"));
        assert_eq!(plan.refused(), Some(ExitCode::Broken));
        plan.refusals.push(Refusal::new(ExitCode::Incomplete, "unmarked"));
        assert_eq!(plan.refused(), Some(ExitCode::Incomplete));
    }
}
