//! The rollback from start to end: prepare the plan (the backend's
//! questions, the record in the initrd, the audit, retention, the
//! guards), show it, refuse or confirm, run the steps, verify, and record
//! the outcome where `status` finds it.
//!
//! Output never decides what is done. Before the plan is accepted a closed
//! stdout only matters for the prompt (nobody confirms a plan they could
//! not see); after, the steps run to their end whatever happens to stdout,
//! the outcome is recorded (with what could not be printed), and the exit
//! code says whether everything was done.

use std::io::{self, IsTerminal, Write};

use super::outcome::kernel_log;
use super::show::{plan_json, plan_text, refusals_text};
use super::{
    capitalized, confirm, guard, now, Backend, Error, LastRollback, Loss, Outcome, Overrides, Plan, Recorded,
    Refusal, Result, RootState, Target,
};
use crate::config::Rollback;
use crate::error::ExitCode;
use crate::sanitize::terminal_safe;
use crate::sys::output::{warn, Out};

/// What happened after the plan was shown.
#[derive(Debug, Default)]
pub struct Done {
    pub not_confirmed: Option<String>,
    pub steps_done: usize,
    pub failed: Option<String>,
    pub verified: Vec<(String, bool)>,
    pub warnings: Vec<String>,
    /// What to record for `status` (`None`: nothing is recorded).
    pub last: Option<LastRollback>,
}

/// Stdout for the plan's text (nothing of it in JSON mode).
struct Screen {
    out: Out,
    text: bool,
}

impl Screen {
    fn say(&mut self, text: &str) {
        if self.text {
            let _ = self.out.write_all(text.as_bytes());
        }
    }

    fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

/// `darlings rollback`.
pub fn rollback(args: &Rollback) -> Result<ExitCode> {
    let now = now();
    let names = &args.target;
    let target = match Target::open(names, !args.dry_run) {
        Ok(t) => t,
        Err(e) if args.initrd => return Ok(initrd_gives_up(None, &e, now)),
        Err(e) => return Err(e),
    };
    let backend = target.backend();
    // One rollback (or mark, or record) at a time: held from before the
    // plan until the outcome is recorded.
    let _lock = match backend.lock(names.wait) {
        Ok(l) => l,
        Err(e) if args.initrd => return Ok(initrd_gives_up(None, &e, now)),
        Err(e) => return Err(e),
    };
    let mut flushing = None;
    let prepared = prepare(backend, args, now, &mut flushing);
    // Whatever the plan came to, the commit it started is over before
    // anything is said or done.
    if let Some(Err(e)) = flushing.map(|t| t.join().unwrap_or(Ok(()))) {
        warn(&terminal_safe(&format!("cannot flush the filesystem before the rollback: {e}")));
    }
    let plan = match prepared {
        Ok(p) => p,
        Err(e) if args.initrd => return Ok(initrd_gives_up(Some(backend), &e, now)),
        Err(e) => return Err(e),
    };
    let mut screen = Screen { out: Out::stdout(), text: !args.json };
    screen.say(&plan_text(&plan, now));
    let mut done = Done::default();
    let code = act(backend, &plan, args, now, &mut screen, &mut done);
    if !screen.text {
        let value = plan_json(&plan, &done, args.dry_run, code);
        let _ = serde_json::to_writer_pretty(&mut screen.out, &value);
        let _ = writeln!(screen.out);
    }
    screen.flush();
    let lost = screen.out.describe_loss();
    let recorded = done.last.is_some();
    if let Some(mut last) = done.last.take() {
        last.output_lost.clone_from(&lost);
        if let Err(e) = backend.record_outcome(&last) {
            warn(&terminal_safe(&format!("cannot record the outcome for `darlings status`: {e}")));
        }
    }
    if let Some(lost) = lost {
        let rest = if recorded { "; `darlings status` has the outcome" } else { "" };
        warn(&format!("{lost}: the rest of the output was not printed{rest}"));
    }
    // In the initrd a refusal or a failure leaves the root as it is and the
    // boot goes on.
    Ok(if args.initrd { ExitCode::Clean } else { code })
}

/// The commit [`flush`] started.
type Flush = std::thread::JoinHandle<rustix::io::Result<()>>;

/// Starts committing what the filesystem holds unwritten, unless this is a
/// dry run; called once the plan could go ahead but for the audit. A bare
/// `mv` + `btrfs subvolume snapshot` spends nearly all its time there (the
/// snapshot commits the whole filesystem); started now, it runs while the
/// audit reads the root, and the erase itself then commits little. It
/// writes only what others wrote and the kernel would commit within
/// seconds anyway (no file, name or attribute changes, even if the audit
/// then refuses); a failure is only said.
fn flush(backend: &dyn Backend, args: &Rollback) -> Option<Flush> {
    if args.dry_run {
        return None;
    }
    let fd = backend.filesystem()?;
    std::thread::Builder::new().name("darlings-flush".into()).spawn(move || rustix::fs::syncfs(&fd)).ok()
}

/// In the initrd, a rollback that cannot even be planned leaves the root
/// alone, says why (stderr, kernel log, `status` when the target opened)
/// and lets the boot go on.
fn initrd_gives_up(backend: Option<&dyn Backend>, e: &Error, now: i64) -> ExitCode {
    let why = e.to_string();
    let text = format!("rollback refused, the root is left as it is: {why}");
    warn(&terminal_safe(&text));
    kernel_log(&text);
    if let Some(b) = backend {
        let last = LastRollback { initrd: true, ..LastRollback::new(now, Outcome::Refused, vec![why]) };
        if let Err(e) = b.record_outcome(&last) {
            warn(&terminal_safe(&format!("cannot record the refusal for `darlings status`: {e}")));
        }
    }
    ExitCode::Clean
}

/// Builds the plan: the backend's questions, then (unless a guard no flag
/// lifts already refuses) in the initrd the record of the last shutdown,
/// the audit (with the record's claims) and retention; then the guards.
fn prepare(backend: &dyn Backend, args: &Rollback, now: i64, flushing: &mut Option<Flush>) -> Result<Plan> {
    let mut plan = backend.plan(args, now)?;
    let everything = Overrides { force: true, live: true, destroy_newer: true, destroy_clones: true };
    let hopeless = !guard(&plan.facts, everything).is_empty();
    let erases = plan.archive_name.is_some();
    if !hopeless && erases {
        *flushing = flush(backend, args);
        let mut claims = Vec::new();
        if args.initrd {
            // Used at most once: taken away as it is read (not by a dry run).
            let mut recorded = super::record::take(backend, args.dry_run);
            if let Recorded::Found(r) = &recorded {
                note_record(r, &mut plan);
                match r.declared() {
                    Ok(c) => claims = c,
                    Err(why) => recorded = Recorded::Unreadable(why),
                }
            }
            plan.facts.recorded = Some(recorded);
        }
        audit_into(backend, args, &mut plan, claims)?;
        backend.plan_retention(args, now, &mut plan)?;
    }
    plan.refusals = guard(&plan.facts, Overrides::of(args));
    Ok(plan)
}

fn note_record(r: &super::Record, plan: &mut Plan) {
    plan.notes.push(format!(
        "audit recorded at shutdown ({}): {} unclaimed entries ({}), {} broken claims, {} critical{}; it {}",
        crate::sys::fmt::time_text(r.time),
        r.counts.unclaimed_entries,
        crate::sys::fmt::human_size(r.counts.unclaimed_bytes),
        r.counts.broken,
        r.counts.critical,
        if r.claims_verified { "" } else { " (its claims were assumed)" },
        if r.decision.erase { "allows the rollback" } else { "refuses the rollback" }
    ));
}

/// Runs the root's audit (flat: every path judged by itself) and keeps
/// what it finds in the plan's facts. In the initrd the claims declared
/// at shutdown (`claims`, from the record) are the audit's claims, assumed.
fn audit_into(
    backend: &dyn Backend,
    args: &Rollback,
    plan: &mut Plan,
    claims: Vec<crate::claims::nixos::Declared>,
) -> Result<()> {
    let Some(place) = backend.audit_place()? else {
        return Ok(());
    };
    let verified = place.verified && !args.initrd;
    let mut recorded = Vec::new();
    if !claims.is_empty() {
        if !args.claims_given {
            plan.notes.push(format!(
                "the claims are the {} declared at shutdown (kept in the record)",
                claims.len()
            ));
            recorded = claims;
        } else {
            plan.notes.push("--impermanence is given: the claims kept in the record are not used".into());
        }
    }
    let source = crate::source::Settings {
        kind: place.source,
        baseline: place.baseline.clone(),
        zfs_diff: None,
        strip_prefix: None,
        snapshot: place.snapshot.clone().unwrap_or_else(|| crate::cli::DEFAULT_ZFS_BLANK.to_owned()),
        dataset: place.dataset.clone().map(Into::into),
    };
    let what = "the audit before the rollback failed";
    let assume = args.rules.assume_claims || !verified;
    let cfg = crate::config::Audit::for_rollback(args, place.root.clone(), source, assume, recorded);
    let audited = crate::audit::guard(&cfg).map_err(|e| Error::audit(what, &e))?;
    drop(place);
    let loss = Loss::from_guarded(&audited, verified);
    if !verified {
        plan.notes.push(if args.initrd {
            "claims are assumed (in the initrd nothing persistent is mounted); the audit recorded at shutdown decides about broken claims".into()
        } else {
            "the root is not mounted, so its claims cannot be checked: they are assumed".into()
        });
    }
    if loss.holds_nothing {
        plan.notes.push("the root holds nothing its blank state does not: the archive holds no data".into());
    }
    plan.facts.loss = Some(loss);
    Ok(())
}

/// Everything after the plan is shown: refuse, stop (dry run, nothing to
/// do), confirm, run. Returns the exit code (the initrd's is made 0 later).
fn act(
    backend: &dyn Backend,
    plan: &Plan,
    args: &Rollback,
    now: i64,
    screen: &mut Screen,
    done: &mut Done,
) -> ExitCode {
    if let Some(code) = Refusal::worst(&plan.refusals) {
        screen.say(&refusals_text(plan));
        if args.initrd {
            let reasons: Vec<String> = plan.refusals.iter().map(|r| r.reason.clone()).collect();
            let text = format!("refused, the root was left as it is: {}", reasons.join("; "));
            kernel_log(&text);
            warn(&terminal_safe(&format!("rollback {text}")));
            done.last =
                Some(LastRollback { initrd: true, ..LastRollback::new(now, Outcome::Refused, reasons) });
        }
        return code;
    }
    if plan.steps.is_empty() {
        screen.say("\nNothing to do.\n");
        return ExitCode::Clean;
    }
    if args.dry_run {
        screen.say(
            "\nDry run: nothing was changed. Without --dry-run, the commands above run in this order.\n",
        );
        return ExitCode::Clean;
    }
    // In the initrd nobody is there to ask: the mark and the record decide.
    if !args.yes && !args.initrd {
        if let Some(why) = not_confirmed(plan, screen) {
            screen.say(&format!("\nRefused, nothing was changed: {why}\n"));
            if screen.out.lost().is_some() {
                warn(&format!("refused, nothing was changed: {why}"));
            }
            done.not_confirmed = Some(why);
            return ExitCode::Incomplete;
        }
    }
    run_steps(backend, plan, args, now, screen, done)
}

/// Asks on a terminal; why the plan is not confirmed, if it is not.
fn not_confirmed(plan: &Plan, screen: &mut Screen) -> Option<String> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        return Some("stdin is not a terminal; pass --yes to erase without asking".into());
    }
    screen.flush();
    if let Some(lost) = screen.out.describe_loss() {
        return Some(format!("the plan could not be shown in full ({lost}); pass --yes to erase unseen"));
    }
    match confirm(&mut stdin.lock(), &mut io::stderr(), &plan.confirm) {
        Ok(true) => None,
        Ok(false) => Some("the name was not typed".into()),
        Err(e) => Some(format!("the name could not be read: {e}")),
    }
}

/// The plan is accepted: from here on nothing the output does stops a
/// step. Records the run as interrupted first, so that a run that dies
/// half way says so; the caller records how it ended.
fn run_steps(
    backend: &dyn Backend,
    plan: &Plan,
    args: &Rollback,
    now: i64,
    screen: &mut Screen,
    done: &mut Done,
) -> ExitCode {
    let n = plan.steps.len();
    let mut last = LastRollback {
        initrd: args.initrd,
        steps: n,
        ..LastRollback::new(
            now,
            Outcome::Interrupted,
            vec!["the run started and recorded no end: it was interrupted; `darlings rollback` shows what is left to do".into()],
        )
    };
    if let Err(e) = backend.record_outcome(&last) {
        warn(&terminal_safe(&format!("cannot record the start for `darlings status`: {e}")));
    }
    for (i, step) in plan.steps.iter().enumerate() {
        screen.say(&format!("[{}/{n}] {}\n", i + 1, step.action.display()));
        screen.flush();
        if plan.archive_step == Some(i) {
            // Named before the step that fills it: a run killed right after
            // it still says where the old root went (`status` checks that it
            // is there before it says it is kept).
            last.archive.clone_from(&plan.archive);
            last.archive_name.clone_from(&plan.archive_name);
            last.archive_id = plan.archive_id;
            if let Err(e) = backend.record_outcome(&last) {
                warn(&terminal_safe(&format!("cannot record step {} for `darlings status`: {e}", i + 1)));
            }
        }
        if let Err(e) = step.action.run() {
            let text = format!("failed at step {} of {n}: {e}", i + 1);
            let state = capitalized(&step.if_fails);
            screen.say(&format!("\nThe rollback {}\n{}\n", terminal_safe(&text), terminal_safe(&state)));
            warn(&terminal_safe(&format!("the rollback {text}")));
            if !screen.text {
                warn(&terminal_safe(&state));
            }
            if args.initrd {
                kernel_log(&format!("rollback {text}. {state}"));
            }
            done.failed = Some(format!("{text}. {state}"));
            if plan.archive_step == Some(i) {
                // A step is all or nothing: it made no archive.
                (last.archive, last.archive_name, last.archive_id) = (None, None, None);
            }
            last.outcome = Outcome::Failed;
            last.reasons = vec![text, state];
            done.last = Some(last);
            return ExitCode::Incomplete;
        }
        done.steps_done += 1;
        last.steps_done = i + 1;
        last.last_step = Some(step.what.clone());
        // How far it got, for `status` if the run dies now.
        if i + 1 < n {
            if let Err(e) = backend.record_outcome(&last) {
                warn(&terminal_safe(&format!("cannot record step {} for `darlings status`: {e}", i + 1)));
            }
        }
    }
    let made = super::now();
    done.verified = backend.verify(plan);
    let ok = done.verified.iter().all(|(_, ok)| *ok);
    let mut text = String::from("\nVerified:\n");
    for (what, ok) in &done.verified {
        text.push_str(&format!("  {} {what}\n", if *ok { "ok  " } else { "FAIL" }));
    }
    done.warnings = backend.mounts_after(plan);
    for w in &done.warnings {
        text.push_str(&format!("warning: {w}\n"));
        // Said once: on stdout with the run's text, else (JSON) on stderr.
        if !screen.text {
            warn(&terminal_safe(w));
        }
    }
    screen.say(&terminal_safe(&text));
    if let Err(e) = backend.note_archive(plan, made) {
        warn(&terminal_safe(&format!(
            "cannot note whether the archive holds data and when it was made (retention counts it as holding data, `darlings archives` dates it from its name): {e}"
        )));
    }
    last.warnings.clone_from(&done.warnings);
    last.reasons =
        if matches!(plan.facts.root, RootState::Missing) { plan.notes.clone() } else { Vec::new() };
    if ok {
        last.outcome = Outcome::Erased;
    } else {
        last.outcome = Outcome::Failed;
        last.reasons.extend(
            done.verified
                .iter()
                .filter(|(_, ok)| !ok)
                .map(|(what, _)| format!("verification failed: {what}")),
        );
        warn("the rollback ran but its result is not as planned (see above)");
    }
    done.last = Some(last);
    if ok {
        ExitCode::Clean
    } else {
        ExitCode::Incomplete
    }
}
