//! The parsed command line turned into resolved settings: terminal
//! detection, `NO_COLOR`, thread count, defaults. Nothing downstream reads
//! raw flags.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;

use crate::claims::RuleSources;
use crate::cli::{AuditArgs, ExplainArgs, FailOn, Format, RuleArgs, SourceArgs, SourceKind, When};
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
        Rules {
            root: args.root.clone().unwrap_or_else(|| PathBuf::from("/")),
            root_given: args.root.is_some(),
            sources: RuleSources {
                keep: args.sources.keep.clone(),
                ignore: args.sources.ignore.clone(),
                manifests: args.sources.manifest.clone(),
                default_manifest: !args.sources.no_default_manifest,
                impermanence: args.sources.impermanence.clone(),
                preservation: args.sources.preservation.clone(),
            },
            assume_claims: args.sources.assume_claims,
        }
    }
}

/// Where the list of state comes from: the source layer's own settings
/// (the source never reads the command line).
pub type Source = crate::source::Settings;

fn source_from_args(args: &SourceArgs) -> Source {
    Source {
        kind: match args.kind {
            SourceKind::Auto => crate::source::Kind::Auto,
            SourceKind::Walk => crate::source::Kind::Walk,
            SourceKind::Zfs => crate::source::Kind::Zfs,
            SourceKind::Btrfs => crate::source::Kind::Btrfs,
        },
        zfs_diff: args.zfs_diff.clone(),
        baseline: args.baseline.clone(),
        strip_prefix: args.strip_prefix.clone(),
        snapshot: args.snapshot.clone(),
        dataset: args.dataset.clone(),
    }
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
}

/// The flags that read standard input when given `-`.
fn stdin_readers(rules: &RuleArgs, source: &SourceArgs) -> Result<(), ConfigError> {
    let dash = |p: &Option<PathBuf>| p.as_deref() == Some(std::path::Path::new("-"));
    let readers: Vec<&'static str> = [
        ("--zfs-diff", dash(&source.zfs_diff)),
        ("--impermanence", dash(&rules.sources.impermanence)),
        ("--preservation", dash(&rules.sources.preservation)),
    ]
    .into_iter()
    .filter_map(|(flag, reads)| reads.then_some(flag))
    .collect();
    match readers[..] {
        [a, b, ..] => Err(ConfigError::TwoStdinReaders(a, b)),
        _ => Ok(()),
    }
}

fn default_threads(threads: Option<u16>) -> usize {
    threads.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), usize::from)
}

impl Audit {
    /// The audit `explain` runs: the same rules and source as an audit
    /// with those flags, nothing filtered, no output settings.
    pub fn for_explain(args: &ExplainArgs) -> Result<Audit, ConfigError> {
        stdin_readers(&args.rules, &args.source)?;
        Ok(Audit {
            rules: Rules::from_args(&args.rules),
            source: source_from_args(&args.source),
            format: Format::Json,
            flat: args.flat,
            filter: Filter::default(),
            sort: SortKey::Path,
            accepted: None,
            fail_on: HashSet::new(),
            fail_severity: None,
            threads: default_threads(args.threads),
            suggest: None,
            progress: false,
            style: Style { color: false, width: None, by_verdict: true },
        })
    }

    pub fn from_args(args: &AuditArgs) -> Result<Audit, ConfigError> {
        stdin_readers(&args.rules, &args.source)?;
        if let Some(path) = &args.path {
            let shown = crate::sanitize::escape(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
                .into_owned();
            return Err(ConfigError::BarePath(shown));
        }
        let stdout_tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
            || std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        let color = match args.color {
            When::Always => true,
            When::Never => false,
            When::Auto => stdout_tty && !no_color,
        };
        let progress = match args.progress {
            When::Always => true,
            When::Never => false,
            When::Auto => std::io::stderr().is_terminal(),
        };
        let fail_on = if args.fail_on.is_empty() {
            Verdict::ALL.into_iter().filter(|v| v.is_loss()).collect()
        } else {
            args.fail_on
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
        let fail_severity = if args.fail_on.contains(&FailOn::Important) {
            Some(crate::report::Severity::Important)
        } else if args.fail_on.contains(&FailOn::Critical) {
            Some(crate::report::Severity::Critical)
        } else {
            None
        };
        let threads = default_threads(args.threads);
        Ok(Audit {
            rules: Rules::from_args(&args.rules),
            source: source_from_args(&args.source),
            format: args.format.unwrap_or(if stdout_tty { Format::Table } else { Format::Json }),
            // `--suggest-all` names every unclaimed path: a grouped row
            // (`/var`) may hold a place no system keeps (`/var/run`) beside
            // what must be suggested, which only the flat rows tell apart.
            flat: args.flat || (args.suggest.is_some() && args.suggest_all),
            filter: Filter {
                verdicts: (!args.verdict.is_empty()).then(|| args.verdict.iter().copied().collect()),
                min_size: args.min_size,
            },
            sort: args.sort,
            accepted: args.accepted.clone(),
            fail_on,
            fail_severity,
            threads,
            suggest: args.suggest.map(|m| {
                let module = match m {
                    crate::cli::SuggestModule::Nix => Module::Impermanence,
                    crate::cli::SuggestModule::Preservation => Module::Preservation,
                };
                (module, args.suggest_all, args.suggest_storage.clone())
            }),
            progress,
            style: Style {
                color,
                width: stdout_tty.then(terminal_width),
                by_verdict: args.sort == SortKey::Path,
            },
        })
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
