//! One function per subcommand: wires source → classify → report → render.

use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context, Result};
use clap::CommandFactory;

use crate::audit::{load_rules, open_root, Target};
use crate::claims;
use crate::claims::check::{Checker, Claims};
use crate::claims::matcher::{Matcher, RuleKind};
use crate::classify::Classifier;
use crate::cli::{AuditArgs, Cli, Command, ExplainArgs, ExplainFormat, Format, StrayArgs};
use crate::config;
use crate::error::ExitCode;
use crate::render;
use crate::report::Report;
use crate::sanitize::escape;
use crate::source::walk;
use crate::sys::mounts::Mounts;
use crate::sys::output::Out;

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        None => audit(&cli.audit),
        Some(Command::Audit(args)) => audit(&args),
        Some(Command::Stray(args)) => stray(&args),
        Some(Command::Explain(args)) => explain(&args),
        Some(Command::Rollback(args)) => Ok(crate::rollback::rollback(&config::Rollback::from_args(&args)?)?),
        Some(Command::Mark(args)) => Ok(crate::rollback::mark(&args)?),
        Some(Command::Archives(args)) => Ok(crate::rollback::archives(&args)?),
        Some(Command::Restore(args)) => crate::rollback::restore(&args),
        Some(Command::Record(args)) => Ok(crate::rollback::record(&args)?),
        Some(Command::Status(args)) => Ok(crate::rollback::status(&args)?),
        Some(Command::Completions { shell }) => {
            let mut cmd = Cli::command();
            write_stdout(|out| {
                clap_complete::generate(shell, &mut cmd, "darlings", out);
                Ok(())
            })?;
            Ok(ExitCode::Clean)
        }
        Some(Command::Nix { what: crate::cli::NixCommand::Expr { module } }) => {
            // One function serves both modules (it only drops what throws),
            // headed by how to use it for the one asked for.
            let module = match module {
                crate::cli::NixModule::Impermanence => "impermanence",
                crate::cli::NixModule::Preservation => "preservation",
            };
            write_stdout(|out| out.write_all(crate::claims::nix_expr(module).as_bytes()))?;
            Ok(ExitCode::Clean)
        }
        Some(Command::Man { names }) => man(&names),
    }
}

/// `darlings man [SUBCOMMAND…]`: one page as `clap_mangen::generate_to`
/// renders it (the help subcommand left out: it has no page), then SEE
/// ALSO naming the page above it. `doc/` holds every page (tests/generated.rs).
fn man(names: &[String]) -> Result<ExitCode> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut at = &cmd;
    let mut parent = None;
    for name in names {
        let sub = at.get_subcommands().find(|s| s.get_name() == name && !s.is_hide_set());
        let Some(sub) = sub else { bail!("no man page for {}", escape(names.join(" ").as_bytes())) };
        parent = Some(at.get_display_name().unwrap_or(at.get_name()).to_owned());
        at = sub;
    }
    // Every page says which darlings it documents, not only darlings(1).
    let source = format!("darlings {}", cmd.get_version().unwrap_or_default());
    let page = clap_mangen::Man::new(at.clone()).source(source);
    write_stdout(|out| {
        page.render(out)?;
        match &parent {
            Some(parent) => writeln!(out, ".SH \"SEE ALSO\"\n\\fB{}\\fR(1)", parent.replace('-', "\\-")),
            None => Ok(()),
        }
    })?;
    Ok(ExitCode::Clean)
}

/// Writes to stdout through the one writer ([`Out`]): a reader that went
/// away (`darlings | head`) is not an error, any other write failure is.
fn write_stdout(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let mut out = Out::new(BufWriter::new(io::stdout().lock()));
    // Out never fails a write: what failed is kept for `finish`.
    let _ = f(&mut out);
    out.finish().context("cannot write to stdout")
}

fn audit(args: &AuditArgs) -> Result<ExitCode> {
    let cfg = config::Audit::from_args(args)?;
    let report = crate::audit::run(&cfg)?;
    if let Some((module, all, storage)) = &cfg.suggest {
        let storage = storage.clone().unwrap_or_else(|| "/persist".into());
        write_stdout(|out| render::suggest::render(out, &report, *module, *all, &storage))?;
        // The snippet is the output: written, it is a success (`> claims.nix &&
        // …` goes on), unless the audit behind it was incomplete.
        return Ok(if report.complete() { ExitCode::Clean } else { ExitCode::Incomplete });
    }
    show(&cfg, &report)
}

/// Writes the report in the configured format; returns its exit code.
fn show(cfg: &config::Audit, report: &Report) -> Result<ExitCode> {
    let code = report.exit_code(&cfg.fail_on, cfg.fail_severity);
    write_stdout(|out| match cfg.format {
        Format::Table => render::table::render(out, report, &cfg.filter, cfg.style),
        Format::Json => render::json::render(out, report, &cfg.filter, code.code()),
        Format::Ndjson => render::json::render_ndjson(out, report, &cfg.filter, code.code()),
        Format::Prometheus => render::prometheus::render(out, report),
    })?;
    Ok(code)
}

/// `darlings stray`: walks each storage root of the declared claims and
/// reports what nothing declares any more, at its path on this machine.
fn stray(args: &StrayArgs) -> Result<ExitCode> {
    let cfg = config::Audit::for_stray(args)?;
    let live = open_root(&cfg.rules.root)?;
    let loaded = load_rules(&cfg.rules, Some(&live))?;
    if loaded.declared.is_empty() {
        bail!("stray lists what storage roots hold beyond the declared claims: give --impermanence or --preservation");
    }
    let mut roots: Vec<&[u8]> = loaded.declared.iter().map(|d| d.storage.as_bytes()).collect();
    roots.sort_unstable();
    roots.dedup();
    let started = SystemTime::now();
    let clock = Instant::now();
    let (mut findings, mut errors, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    let mut links = crate::report::HardLinks::default();
    for storage in roots {
        let shown = String::from_utf8_lossy(storage).into_owned();
        let target = match open_storage(&live, storage)? {
            Ok(target) => target,
            Err(rustix::io::Errno::NOENT) => {
                notes.push(format!("storage root {shown} does not exist"));
                continue;
            }
            Err(errno) => {
                errors.push(crate::report::EntryError {
                    path: storage.to_vec(),
                    operation: "open storage root",
                    message: crate::sys::root::describe_errno(errno),
                    errno: Some(errno.raw_os_error()),
                });
                continue;
            }
        };
        // Declared paths are where they belong: trusted claims, never
        // entered; their parents are structure.
        let rules = loaded
            .declared
            .iter()
            .filter(|d| d.storage.as_bytes() == storage)
            .filter_map(|d| {
                let pattern = claims::matcher::Pattern::literal(&d.path).ok()?;
                Some(claims::matcher::Rule {
                    kind: RuleKind::Keep,
                    pattern,
                    origin: claims::matcher::Origin::Declared {
                        text: d.option.clone(),
                        storage: storage.to_vec(),
                    },
                    reason: Some("declared".into()),
                })
            })
            .collect();
        let matcher = Matcher::new(rules);
        let mounts = Mounts::read(&target.canonical).unwrap_or_default();
        let checker = Checker::new(Some(&target.root), &mounts, true);
        let claims = Claims::default();
        let classifier = Classifier::new(&matcher, &checker, &claims, cfg.flat).without_identities();
        let top = classifier.top();
        walk::walk(&target.root, top, &classifier, cfg.threads, None)
            .context("cannot start the walk's threads")?;
        let collected = classifier.into_collected();
        let prefix = |p: &[u8]| if p == b"/" { storage.to_vec() } else { [storage, p].concat() };
        findings.extend(collected.findings.into_iter().filter(|f| f.verdict.is_loss()).map(|mut f| {
            f.path = prefix(&f.path);
            f.detail = Some(format!("in {shown}, declared by no claim"));
            f
        }));
        errors.extend(collected.errors.into_iter().map(|mut e| {
            e.path = prefix(&e.path);
            e
        }));
        links.merge(collected.links);
    }
    let mut report = Report {
        root: live.canonical.as_os_str().as_bytes().to_vec(),
        source: Report::STRAY,
        ephemeral: false,
        flat: cfg.flat,
        totals: Report::compute_totals(&findings, &links),
        findings,
        errors,
        missing_claims: Vec::new(),
        notes,
        started,
        duration: clock.elapsed(),
    };
    report.sort(cfg.sort);
    show(&cfg, &report)
}

/// Opens a declared storage root inside the audited root: its links are
/// resolved inside the root (`/persist` may be a link to `/nix/persist`
/// there), never out of it. A storage path with a `.` or `..` component is
/// an error; what cannot be opened is the inner `Err`.
fn open_storage(live: &Target, storage: &[u8]) -> Result<Result<Target, rustix::io::Errno>> {
    let trimmed = if storage.len() > 1 { storage.strip_suffix(b"/").unwrap_or(storage) } else { storage };
    let rel = match (trimmed.first(), crate::sys::root::check_relative(trimmed)) {
        (Some(b'/'), Ok(rel)) => rel,
        (Some(b'/'), Err(e)) => bail!("storage root {}: {e} (refused)", escape(storage)),
        _ => bail!("storage root {}: not an absolute path", escape(storage)),
    };
    let root = match live.root.open_within(rel) {
        Ok(root) => root,
        Err(e) => return Ok(Err(e)),
    };
    // Only to match the mount table: where the root was found on this machine.
    let canonical =
        root.host_path().unwrap_or_else(|_| live.canonical.join(Path::new(std::ffi::OsStr::from_bytes(rel))));
    Ok(Ok(Target { root, canonical }))
}

fn explain(args: &ExplainArgs) -> Result<ExitCode> {
    let cfg = config::Audit::for_explain(args)?;
    let raw = args.path.as_bytes();
    // A path, never a glob: `[1]` is part of the name.
    let path = match claims::matcher::Pattern::literal(raw) {
        Ok(literal) => literal.literal_prefix().to_vec(),
        Err(e) => bail!(
            "explain takes an absolute path as the audited system sees it (e.g. /var/lib/x), not {}: {}",
            escape(raw),
            e.to_string().trim_start_matches("pattern ")
        ),
    };
    let explained = crate::audit::explain(&cfg, &path)?;
    write_stdout(|out| match args.format {
        ExplainFormat::Text => render::explain::render_text(out, &explained),
        ExplainFormat::Json => render::explain::render_json(out, &explained),
    })?;
    Ok(ExitCode::Clean)
}
