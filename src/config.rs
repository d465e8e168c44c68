//! The parsed command line turned into resolved settings: terminal
//! detection, `NO_COLOR`, thread count, defaults. Nothing downstream reads
//! raw flags.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;

use crate::claims::RuleSources;
use crate::cli::{
    ArchiveArgs, AuditArgs, BarePathArg, BlankArgs, DeclaredArgs, ExplainArgs, FailOn, FailOnArg, Format,
    ManifestArgs, PatternArgs, RecordArgs, ReportArgs, RootArg, RuleArgs, SourceArgs, SourceKind, StrayArgs,
    SubvolumeArg, ThreadsArg, When, WhichArgs,
};
use crate::report::{Filter, SortKey, Verdict};

/// Settings shared by every command that reads rules.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The audited root (`/` unless given).
    pub root: PathBuf,
    /// `--root` was given: the tree there is the live one.
    pub root_given: bool,
    pub sources: RuleSources,
    pub assume_claims: bool,
}

impl Rules {
    pub fn from_args(args: &RuleArgs) -> Rules {
        let s = &args.sources;
        Rules::new(&args.at, &s.manifests, Some(&s.patterns), &s.declared, s.assume_claims)
    }

    /// `patterns`: `None` where a command takes no `--keep` / `--ignore`.
    fn new(
        at: &RootArg,
        manifests: &ManifestArgs,
        patterns: Option<&PatternArgs>,
        declared: &DeclaredArgs,
        assume_claims: bool,
    ) -> Rules {
        Rules {
            root: at.root.clone().unwrap_or_else(|| PathBuf::from("/")),
            root_given: at.root.is_some(),
            sources: RuleSources {
                keep: patterns.map(|p| p.keep.clone()).unwrap_or_default(),
                ignore: patterns.map(|p| p.ignore.clone()).unwrap_or_default(),
                manifests: manifests.manifest.clone(),
                default_manifest: !manifests.no_default_manifest,
                impermanence: declared.impermanence.clone(),
                preservation: declared.preservation.clone(),
                recorded: Vec::new(),
            },
            assume_claims,
        }
    }
}

/// Where the list of state comes from: the source layer's own settings
/// (the source never reads the command line).
pub type Source = crate::source::Settings;

/// The source settings; `--snapshot` and `--dataset` name ZFS things, which
/// `--source walk` and `--source btrfs` would ignore. (Flags that exclude
/// each other whatever their values are refused by clap, in `cli.rs`.)
fn source_from_args(args: &SourceArgs) -> Result<Source, ConfigError> {
    let kind = match args.kind {
        SourceKind::Auto => crate::source::Kind::Auto,
        SourceKind::Walk => crate::source::Kind::Walk,
        SourceKind::Zfs => crate::source::Kind::Zfs,
        SourceKind::Btrfs => crate::source::Kind::Btrfs,
    };
    let not_zfs = match args.kind {
        SourceKind::Walk => Some("--source walk"),
        SourceKind::Btrfs => Some("--source btrfs"),
        SourceKind::Auto | SourceKind::Zfs => None,
    };
    if let Some(with) = not_zfs {
        if args.snapshot.is_some() {
            return Err(ConfigError::conflict("--snapshot", with, "it names a ZFS snapshot"));
        }
        if args.dataset.is_some() {
            return Err(ConfigError::conflict("--dataset", with, "it names a ZFS dataset"));
        }
    }
    Ok(Source {
        kind,
        zfs_diff: args.zfs_diff.clone(),
        baseline: args.baseline.clone(),
        strip_prefix: args.strip_prefix.clone(),
        snapshot: args.snapshot.clone().unwrap_or_else(|| crate::cli::DEFAULT_ZFS_BLANK.to_owned()),
        dataset: args.dataset.clone(),
    })
}

#[derive(Debug, Clone)]
pub struct Audit {
    pub rules: Rules,
    pub source: Source,
    pub format: Format,
    pub flat: bool,
    pub filter: Filter,
    pub sort: SortKey,
    pub accepted: Option<PathBuf>,
    /// Verdicts that make the exit code 1.
    pub fail_on: HashSet<Verdict>,
    /// A loss this severe (or worse) makes the exit code 1.
    pub fail_severity: Option<crate::report::Severity>,
    pub threads: usize,
    /// `--suggest`: (module, every unclaimed subtree, storage root).
    pub suggest: Option<(Module, bool, Option<String>)>,
    pub progress: bool,
    pub style: Style,
}

/// Settings that contradict each other.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} and {1} both read standard input (`-`): give one of them a file")]
    TwoStdinReaders(&'static str, &'static str),
    #[error("no path is taken here; to audit the tree at {0}, give it as the root: --root {0}")]
    BarePath(String),
    /// Two flags (or values) of which one would be ignored.
    #[error("{flag} cannot be used with {with}: {why}")]
    Conflict { flag: String, with: String, why: &'static str },
}

impl ConfigError {
    fn conflict(flag: impl Into<String>, with: impl Into<String>, why: &'static str) -> ConfigError {
        ConfigError::Conflict { flag: flag.into(), with: with.into(), why }
    }
}

/// The flags that read standard input when given `-`.
fn stdin_readers(declared: &DeclaredArgs, source: Option<&SourceArgs>) -> Result<(), ConfigError> {
    let dash = |p: Option<&PathBuf>| p.map(PathBuf::as_path) == Some(std::path::Path::new("-"));
    let readers: Vec<&'static str> = [
        ("--zfs-diff", dash(source.and_then(|s| s.zfs_diff.as_ref()))),
        ("--impermanence", dash(declared.impermanence.as_ref())),
        ("--preservation", dash(declared.preservation.as_ref())),
    ]
    .into_iter()
    .filter_map(|(flag, reads)| reads.then_some(flag))
    .collect();
    match readers[..] {
        [a, b, ..] => Err(ConfigError::TwoStdinReaders(a, b)),
        _ => Ok(()),
    }
}

fn bare_path(arg: &BarePathArg) -> Result<(), ConfigError> {
    match &arg.path {
        Some(path) => Err(ConfigError::BarePath(
            crate::sanitize::escape(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())).into_owned(),
        )),
        None => Ok(()),
    }
}

fn default_threads(threads: &ThreadsArg) -> usize {
    threads.threads.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), usize::from)
}

fn when(w: When, auto: bool) -> bool {
    match w {
        When::Always => true,
        When::Never => false,
        When::Auto => auto,
    }
}

/// `--fail-on`: (verdicts, severity) that make the exit code 1.
fn fail_on(args: &FailOnArg) -> Result<(HashSet<Verdict>, Option<crate::report::Severity>), ConfigError> {
    let given = &args.fail_on;
    if let Some(other) = given.iter().find(|f| **f != FailOn::None).filter(|_| given.contains(&FailOn::None))
    {
        let other = clap::ValueEnum::to_possible_value(other).map(|v| v.get_name().to_owned());
        return Err(ConfigError::conflict(
            "--fail-on none",
            format!("--fail-on {}", other.unwrap_or_default()),
            "none means that no loss makes the exit code 1",
        ));
    }
    let verdicts = if given.is_empty() {
        Verdict::ALL.into_iter().filter(|v| v.is_loss()).collect()
    } else {
        given
            .iter()
            .filter_map(|f| match f {
                FailOn::Unclaimed => Some(Verdict::Unclaimed),
                FailOn::Broken => Some(Verdict::Broken),
                FailOn::NewIdentity => Some(Verdict::NewIdentity),
                FailOn::Shadowed => Some(Verdict::Shadowed),
                FailOn::Critical | FailOn::Important | FailOn::None => None,
            })
            .collect()
    };
    let severity = if given.contains(&FailOn::Important) {
        Some(crate::report::Severity::Important)
    } else if given.contains(&FailOn::Critical) {
        Some(crate::report::Severity::Critical)
    } else {
        None
    };
    Ok((verdicts, severity))
}

/// The flags of [`ReportArgs`] that a format does not read: the metrics
/// are totals (no findings to filter or order), only the table has colour.
/// Flags given without `--format` go with the format chosen.
fn unread_by_format(args: &ReportArgs) -> Result<(), ConfigError> {
    let Some(format) = args.format else { return Ok(()) };
    let name = |f: Format| clap::ValueEnum::to_possible_value(&f).map(|v| v.get_name().to_owned());
    let with = format!("--format {}", name(format).unwrap_or_default());
    if format == Format::Prometheus {
        let totals = "the metrics are totals of every finding";
        if !args.verdict.is_empty() {
            return Err(ConfigError::conflict("--verdict", with, totals));
        }
        if args.min_size.is_some() {
            return Err(ConfigError::conflict("--min-size", with, totals));
        }
        if args.sort.is_some() {
            return Err(ConfigError::conflict("--sort", with, totals));
        }
    }
    if format != Format::Table && args.color.is_some() {
        return Err(ConfigError::conflict("--color", with, "only the table has colour"));
    }
    Ok(())
}

impl Audit {
    /// An audit with `rules` and `source` and nothing else asked: JSON,
    /// grouped, unfiltered, every loss verdict fails, no progress.
    fn new(rules: Rules, source: Source, threads: &ThreadsArg) -> Audit {
        Audit {
            rules,
            source,
            format: Format::Json,
            flat: false,
            filter: Filter::default(),
            sort: SortKey::Path,
            accepted: None,
            fail_on: Verdict::ALL.into_iter().filter(|v| v.is_loss()).collect(),
            fail_severity: None,
            threads: default_threads(threads),
            suggest: None,
            progress: false,
            style: Style { color: false, width: None, by_verdict: true },
        }
    }

    /// How the report is shown: format, grouping, filter, order, style.
    fn show(&mut self, args: &ReportArgs) -> Result<(), ConfigError> {
        unread_by_format(args)?;
        let stdout_tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
            || std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        self.format = args.format.unwrap_or(if stdout_tty { Format::Table } else { Format::Json });
        self.flat = args.flat.flat;
        self.filter = Filter {
            verdicts: (!args.verdict.is_empty()).then(|| args.verdict.iter().copied().collect()),
            min_size: args.min_size,
        };
        self.sort = args.sort.unwrap_or(SortKey::Path);
        self.style = Style {
            color: when(args.color.unwrap_or_default(), stdout_tty && !no_color),
            width: stdout_tty.then(terminal_width),
            by_verdict: self.sort == SortKey::Path,
        };
        Ok(())
    }

    /// The audit `explain` runs: the same rules and source as an audit
    /// with those flags, nothing filtered, no output settings.
    pub fn for_explain(args: &ExplainArgs) -> Result<Audit, ConfigError> {
        stdin_readers(&args.rules.sources.declared, Some(&args.source))?;
        let mut cfg =
            Audit::new(Rules::from_args(&args.rules), source_from_args(&args.source)?, &args.threads);
        cfg.flat = args.flat.flat;
        Ok(cfg)
    }

    /// The audit `record` keeps: every path judged by itself, as the
    /// rollback's own audit does.
    pub fn for_record(args: &RecordArgs) -> Result<Audit, ConfigError> {
        stdin_readers(&args.rules.sources.declared, Some(&args.source))?;
        bare_path(&args.path)?;
        let mut cfg =
            Audit::new(Rules::from_args(&args.rules), source_from_args(&args.source)?, &args.threads);
        cfg.flat = true;
        (cfg.fail_on, cfg.fail_severity) = fail_on(&args.fail_on)?;
        cfg.accepted.clone_from(&args.accepted.accepted);
        cfg.progress = when(args.progress.progress, std::io::stderr().is_terminal());
        Ok(cfg)
    }

    /// The audit behind a rollback, as its guards read it: flat (every
    /// path judged by itself), of the root at `root`, from `source`, with
    /// the rollback's own rules and, in the initrd, the claims declared at
    /// shutdown, taken from the record as they are (`recorded`): no file
    /// and no parser between the record and the guards.
    pub fn for_rollback(
        cfg: &Rollback,
        root: PathBuf,
        source: Source,
        assume_claims: bool,
        recorded: Vec<crate::claims::nixos::Declared>,
    ) -> Audit {
        let mut rules = cfg.rules.clone();
        rules.root = root;
        rules.root_given = true;
        rules.assume_claims = assume_claims;
        rules.sources.recorded = recorded;
        let mut audit = Audit::new(rules, source, &ThreadsArg::default());
        audit.threads = cfg.threads;
        audit.flat = true;
        audit
    }

    /// `stray`: the declared claims and how to show what lies beside them
    /// (no source: the storage roots are walked).
    pub fn for_stray(args: &StrayArgs) -> Result<Audit, ConfigError> {
        stdin_readers(&args.declared, None)?;
        bare_path(&args.path)?;
        let rules = Rules::new(&args.at, &args.manifests, None, &args.declared, false);
        let mut cfg = Audit::new(rules, source_from_args(&SourceArgs::default())?, &args.threads);
        cfg.show(&args.report)?;
        (cfg.fail_on, cfg.fail_severity) = fail_on(&args.fail_on)?;
        Ok(cfg)
    }

    pub fn from_args(args: &AuditArgs) -> Result<Audit, ConfigError> {
        stdin_readers(&args.rules.sources.declared, Some(&args.source))?;
        bare_path(&args.path)?;
        let mut cfg =
            Audit::new(Rules::from_args(&args.rules), source_from_args(&args.source)?, &args.threads);
        cfg.show(&args.report)?;
        (cfg.fail_on, cfg.fail_severity) = fail_on(&args.fail_on)?;
        cfg.accepted.clone_from(&args.accepted.accepted);
        cfg.progress = when(args.progress.progress, std::io::stderr().is_terminal());
        let s = &args.suggest;
        cfg.suggest = s.suggest.map(|m| {
            let module = match m {
                crate::cli::SuggestModule::Nix => Module::Impermanence,
                crate::cli::SuggestModule::Preservation => Module::Preservation,
            };
            (module, s.suggest_all, s.suggest_storage.clone())
        });
        // `--suggest-all` names every unclaimed path: a grouped row (`/var`)
        // may hold a place no system keeps (`/var/run`) beside what must be
        // suggested, which only the flat rows tell apart.
        if s.suggest.is_some() && s.suggest_all {
            cfg.flat = true;
        }
        Ok(cfg)
    }
}

/// `darlings rollback`, resolved: the target, what the run may do, and the
/// rules of the audit behind it ([`Audit::for_rollback`]). The flow and the
/// backends read this, never the flags.
#[derive(Debug, Clone)]
pub struct Rollback {
    pub target: TargetNames,
    /// Show the plan and stop.
    pub dry_run: bool,
    /// Erase without asking.
    pub yes: bool,
    /// In the initrd: claims assumed, the record decides, a refusal exits 0.
    pub initrd: bool,
    /// The plan and the outcome as JSON (else text).
    pub json: bool,
    /// The flags that lift refusals.
    pub force: bool,
    pub live: bool,
    pub destroy_newer: bool,
    pub destroy_clones: bool,
    /// Retention: keep the newest N archives, those younger than D days.
    pub retain: Option<u32>,
    pub retain_days: Option<u32>,
    /// btrfs: leave the archive writable.
    pub writable_archive: bool,
    /// The audit's rules (its root is set when the audit runs) and threads.
    pub rules: Rules,
    /// `--impermanence` was given: it, not the record, names the claims.
    pub claims_given: bool,
    pub threads: usize,
}

impl Rollback {
    pub fn from_args(args: &crate::cli::RollbackArgs) -> Result<Rollback, ConfigError> {
        let r = &args.rules;
        stdin_readers(&r.declared, None)?;
        let names =
            TargetNames::new(&args.which, Some(&args.subvolume), Some(&args.blank), Some(&args.archive))
                .waiting(&args.wait);
        Ok(Rollback {
            target: names,
            dry_run: args.dry_run,
            yes: args.yes,
            initrd: args.initrd,
            json: args.format == crate::cli::PlanFormat::Json,
            force: args.force,
            live: args.live,
            destroy_newer: args.destroy_newer,
            destroy_clones: args.destroy_clones,
            retain: args.retain,
            retain_days: args.retain_days,
            writable_archive: args.writable_archive,
            rules: Rules::new(
                &RootArg::default(),
                &r.manifests,
                Some(&r.patterns),
                &r.declared,
                r.assume_claims,
            ),
            claims_given: r.declared.impermanence.is_some(),
            threads: default_threads(&args.threads),
        })
    }
}

/// What names the root the rollback commands work on: the flags a command
/// takes, the defaults of those it does not (its backend still needs a
/// value; it never reads it).
#[derive(Debug, Clone)]
pub struct TargetNames {
    pub dataset: Option<String>,
    pub snapshot: String,
    pub archive_dataset: Option<String>,
    pub device: Option<PathBuf>,
    pub mountpoint: Option<PathBuf>,
    pub subvolume: String,
    pub blank: String,
    pub old_roots: String,
    /// How long to wait for another darlings that holds the target's lock
    /// (`--wait`; zero: refuse at once).
    pub wait: std::time::Duration,
}

impl TargetNames {
    pub fn new(
        which: &WhichArgs,
        subvolume: Option<&SubvolumeArg>,
        blank: Option<&BlankArgs>,
        archive: Option<&ArchiveArgs>,
    ) -> TargetNames {
        use crate::cli::{DEFAULT_BTRFS_BLANK, DEFAULT_OLD_ROOTS, DEFAULT_SUBVOLUME, DEFAULT_ZFS_BLANK};
        TargetNames {
            dataset: which.dataset.clone(),
            device: which.device.clone(),
            mountpoint: which.mountpoint.clone(),
            subvolume: subvolume.map_or(DEFAULT_SUBVOLUME, |s| &s.subvolume).to_owned(),
            snapshot: blank.map_or(DEFAULT_ZFS_BLANK, |b| &b.snapshot).to_owned(),
            blank: blank.map_or(DEFAULT_BTRFS_BLANK, |b| &b.blank).to_owned(),
            archive_dataset: archive.and_then(|a| a.archive_dataset.clone()),
            old_roots: archive.map_or(DEFAULT_OLD_ROOTS, |a| &a.old_roots).to_owned(),
            wait: std::time::Duration::ZERO,
        }
    }

    /// The target `record` keeps its record for: `--dataset` is the one the
    /// audit's source reads too.
    pub fn for_record(args: &RecordArgs) -> TargetNames {
        let which = WhichArgs {
            dataset: args.source.dataset.as_ref().map(|d| d.to_string_lossy().into_owned()),
            device: args.device.clone(),
            mountpoint: args.mountpoint.clone(),
        };
        let archive = ArchiveArgs {
            archive_dataset: args.archive_dataset.clone(),
            old_roots: crate::cli::DEFAULT_OLD_ROOTS.to_owned(),
        };
        TargetNames::new(&which, Some(&args.subvolume), None, Some(&archive)).waiting(&args.wait)
    }

    /// The same names, waiting up to `wait` for the target's lock.
    pub fn waiting(mut self, wait: &crate::cli::WaitArg) -> TargetNames {
        self.wait = std::time::Duration::from_secs(u64::from(wait.wait));
        self
    }
}

/// How the table looks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
    /// The width to fit on a terminal (`terminal_width`); `None` off a
    /// terminal, where lines are as long as their content.
    pub width: Option<usize>,
    /// Sections by verdict, losses first (`--sort path`); otherwise the
    /// report's own order, whatever the verdict (`--sort size`: largest first).
    pub by_verdict: bool,
}

/// The width of the terminal on stdout: what it reports, else `COLUMNS`,
/// else 80 (a pty nobody sized reports 0).
fn terminal_width() -> usize {
    crate::sys::terminal::columns(std::io::stdout())
        .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok().filter(|&c: &usize| c > 0))
        .unwrap_or(80)
}

/// Which module the block is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    Impermanence,
    Preservation,
}
