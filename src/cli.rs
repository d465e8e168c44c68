//! The command line, as clap sees it: derive structs and value enums only.
//!
//! Nothing here has behaviour; `config.rs` turns a parsed [`Cli`] into the
//! resolved settings the rest of the program reads.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::{SortKey, Verdict};

const EXIT_CODES: &str = "\
Exit codes (the highest that applies wins):
  0  nothing to report (or every loss is accepted)
  1  loss found: a finding whose verdict is chosen by --fail-on
  3  a declared claim is broken: its content lives on the ephemeral root
  2  the audit is incomplete or failed (unreadable entries, bad manifest)";

/// What will the next boot erase? Audits an ephemeral root ("erase your
/// darlings") against the state its owner declared persistent.
#[derive(Debug, Parser)]
#[command(
    name = "darlings",
    version,
    about,
    after_help = EXIT_CODES,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Options of `audit`, the default command.
    #[command(flatten)]
    pub audit: AuditArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Walk the root and report the state the next boot will erase (the default)
    #[command(after_help = EXIT_CODES)]
    Audit(AuditArgs),
    /// Show every rule that matches PATH, which one decides, and why
    #[command(mut_arg("flat", |a| a.help("Explain the path as a --flat audit lists it (not as part of a group)")))]
    Explain(ExplainArgs),
    /// List what lies in the persistent storage roots of --impermanence /
    /// --preservation but is no longer declared by any claim (read-only)
    #[command(after_help = EXIT_CODES)]
    Stray(StrayArgs),
    /// Erase the ephemeral root now: roll it back to its blank snapshot, after
    /// showing the plan, behind guards, keeping a way back
    #[command(after_help = ROLLBACK_HELP)]
    Rollback(RollbackArgs),
    /// Mark a root dataset or subvolume as ephemeral (rollback refuses
    /// unmarked targets)
    Mark(MarkArgs),
    /// List the archives rollback kept (the way back), newest first
    Archives(ArchivesArgs),
    /// Copy a path back from an archive into the root (never overwriting
    /// without --force)
    Restore(RestoreArgs),
    /// Record the audit of the running root for the next boot's rollback
    /// (run it at shutdown: the initrd cannot check claims)
    #[command(after_help = EXIT_CODES)]
    Record(RecordArgs),
    /// Show a root's mark, the last rollback (or why it was refused), the
    /// recorded audit and the archives
    Status(StatusArgs),
    /// Nix helpers: `darlings nix expr impermanence|preservation` prints the
    /// `--apply` expression that makes `nix eval --json` of the module's
    /// value work on every revision
    Nix {
        #[command(subcommand)]
        what: NixCommand,
    },
    /// Print shell completions for SHELL to stdout
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff) to stdout: the command's, or a subcommand's
    /// (`man nix expr`)
    #[command(hide = true)]
    Man {
        #[arg(value_name = "SUBCOMMAND")]
        names: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum NixCommand {
    /// Print the builtins-only `--apply` expression for a module's value
    Expr {
        #[arg(value_enum)]
        module: NixModule,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NixModule {
    /// config.environment.persistence
    Impermanence,
    /// config.preservation.preserveAt
    Preservation,
}

const ROLLBACK_HELP: &str = "\
Guards (each refusal changes nothing and exits non-zero):
  the target must be marked ephemeral (`darlings mark`), even with --yes;
  the blank snapshot must exist: on ZFS the oldest snapshot, on btrfs read-only;
  newer snapshots are destroyed only with --destroy-newer, clones only with --destroy-clones;
  the running root is refused unless --live;
  without a terminal --yes is required; on a terminal, type the target's name;
  broken claims or critical unclaimed state refuse unless --force
  (a directory by itself holds nothing to lose: only what is in it counts);
  retention never prunes an archive that is mounted, nor counts one that holds no data.

Exit codes:
  0  rolled back (or, with --dry-run, the plan would be allowed)
  1  refused: the audit found critical unclaimed state
  3  refused: a declared claim is broken
  2  refused by another guard, or failed (the message says how to recover)
  With --initrd every outcome exits 0: the root is left as it is and the boot goes on;
  `darlings status` (also --format prometheus) shows the refusal.
  Once the plan is accepted a closed stdout never stops a step: the run ends,
  its outcome goes to `darlings status`, and the exit code says whether all was done.";

/// The defaults of the target's names, for the commands that do not take
/// the flag as well (`config::Target`).
pub const DEFAULT_ZFS_BLANK: &str = "blank";
pub const DEFAULT_SUBVOLUME: &str = "root";
pub const DEFAULT_BTRFS_BLANK: &str = "root-blank";
pub const DEFAULT_OLD_ROOTS: &str = "old_roots";

/// Which ephemeral root: a ZFS dataset, or the btrfs filesystem that holds
/// the root subvolume. Without --dataset, --device or --mountpoint, the
/// dataset or subvolume mounted at / is meant.
#[derive(Debug, Args, Clone, Default)]
pub struct WhichArgs {
    /// ZFS: the root dataset (e.g. rpool/local/root); without --dataset,
    /// --device or --mountpoint, the dataset or subvolume mounted at / is meant
    #[arg(long, value_name = "DATASET", conflicts_with_all = ["device", "mountpoint"])]
    pub dataset: Option<String>,

    /// btrfs: the filesystem's device; its top-level volume is mounted at
    /// /run/darlings/btrfs-top while darlings works
    #[arg(long, value_name = "DEVICE", conflicts_with = "mountpoint")]
    pub device: Option<PathBuf>,

    /// btrfs: where the top-level volume (subvolid=5) is already mounted
    #[arg(long, value_name = "DIR")]
    pub mountpoint: Option<PathBuf>,
}

/// The root subvolume (btrfs), for the commands that read or change the root itself.
#[derive(Debug, Args, Clone)]
pub struct SubvolumeArg {
    /// btrfs: the root subvolume, relative to the top-level volume
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SUBVOLUME, conflicts_with = "dataset")]
    pub subvolume: String,
}

impl Default for SubvolumeArg {
    fn default() -> SubvolumeArg {
        SubvolumeArg { subvolume: DEFAULT_SUBVOLUME.to_owned() }
    }
}

/// The blank state a rollback returns to.
#[derive(Debug, Args, Clone)]
pub struct BlankArgs {
    /// ZFS: the blank snapshot of the dataset
    #[arg(long, value_name = "NAME", default_value = DEFAULT_ZFS_BLANK, conflicts_with_all = ["device", "mountpoint"])]
    pub snapshot: String,

    /// btrfs: the read-only blank subvolume the root is recreated from
    #[arg(long, value_name = "PATH", default_value = DEFAULT_BTRFS_BLANK, conflicts_with = "dataset")]
    pub blank: String,
}

/// Where the archives (the way back) are kept.
#[derive(Debug, Args, Clone)]
pub struct ArchiveArgs {
    /// ZFS: the dataset that keeps the archives of this root, one per root
    /// (e.g. rpool/safe/darlings/root)
    #[arg(long, value_name = "DATASET", conflicts_with_all = ["device", "mountpoint"])]
    pub archive_dataset: Option<String>,

    /// btrfs: the directory of the top-level volume that keeps old roots
    #[arg(long, value_name = "PATH", default_value = DEFAULT_OLD_ROOTS, conflicts_with = "dataset")]
    pub old_roots: String,
}

#[derive(Debug, Args, Clone)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub which: WhichArgs,

    #[command(flatten)]
    pub subvolume: SubvolumeArg,

    #[command(flatten)]
    pub blank: BlankArgs,

    #[command(flatten)]
    pub archive: ArchiveArgs,

    #[command(flatten)]
    pub wait: WaitArg,

    #[command(flatten)]
    pub rules: RuleSourceArgs,

    /// Show the plan and stop (exit 0 only when it would be allowed)
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask (required when stdin is not a terminal)
    #[arg(long)]
    pub yes: bool,

    /// Erase even though the audit finds broken claims or critical
    /// unclaimed state (or, with --initrd, no recorded audit)
    #[arg(long)]
    pub force: bool,

    /// Allow erasing the running root (dangerous: its programs keep running
    /// on files that vanish; normally the initrd does this before mounting)
    #[arg(long)]
    pub live: bool,

    /// ZFS: consent to destroying snapshots newer than the blank one (zfs rollback -r)
    #[arg(long, conflicts_with_all = ["device", "mountpoint"])]
    pub destroy_newer: bool,

    /// ZFS: consent to destroying clones of those snapshots (zfs rollback -R)
    #[arg(long, conflicts_with_all = ["device", "mountpoint"])]
    pub destroy_clones: bool,

    /// Keep the newest N archives (with --retain-days: keep what either keeps)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub retain: Option<u32>,

    /// Keep archives younger than D days (the newest is always kept)
    #[arg(long, value_name = "D")]
    pub retain_days: Option<u32>,

    /// btrfs: leave the old root (the archive) writable instead of making
    /// it read-only
    #[arg(long, conflicts_with = "dataset")]
    pub writable_archive: bool,

    /// Run from the initrd: claims are assumed (nothing persistent is
    /// mounted), the audit recorded at shutdown (`darlings record`) decides,
    /// and a refusal leaves the root as it is, logs why and exits 0; no
    /// --yes needed
    #[arg(long)]
    pub initrd: bool,

    /// Output format of the plan and the result
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,

    #[command(flatten)]
    pub threads: ThreadsArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum PlanFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct MarkArgs {
    #[command(flatten)]
    pub which: WhichArgs,

    #[command(flatten)]
    pub subvolume: SubvolumeArg,

    #[command(flatten)]
    pub wait: WaitArg,

    /// Remove the mark instead
    #[arg(long)]
    pub off: bool,
}

#[derive(Debug, Args, Clone)]
pub struct ArchivesArgs {
    #[command(flatten)]
    pub which: WhichArgs,

    #[command(flatten)]
    pub archive: ArchiveArgs,

    /// Output format
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

#[derive(Debug, Args, Clone)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub which: WhichArgs,

    #[command(flatten)]
    pub archive: ArchiveArgs,

    /// The path to bring back, as the root sees it (e.g. /etc/nixos)
    #[arg(value_name = "PATH")]
    pub path: PathBuf,

    /// The archive to copy from (a name from `darlings archives`) [default: the newest that holds data]
    #[arg(long, value_name = "ARCHIVE")]
    pub from: Option<String>,

    /// Where the root is mounted [default: /]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Replace what exists at PATH (as an entry: a symlink itself, never
    /// what it points to)
    #[arg(long)]
    pub force: bool,

    /// Show what would be made, copied and replaced, and stop
    #[arg(long)]
    pub dry_run: bool,
}

/// What `record` reads: the audit's rules and source, and what decides its
/// exit code (the record itself is JSON, every path judged by itself).
#[derive(Debug, Args, Clone, Default)]
pub struct RecordArgs {
    /// btrfs: the filesystem's device (the record is kept in its top-level
    /// volume); ZFS: --dataset (also the audit's) and --archive-dataset
    #[arg(long, value_name = "DEVICE", conflicts_with_all = ["mountpoint", "dataset"])]
    pub device: Option<PathBuf>,

    /// btrfs: where the top-level volume (subvolid=5) is already mounted
    #[arg(long, value_name = "DIR", conflicts_with = "dataset")]
    pub mountpoint: Option<PathBuf>,

    #[command(flatten)]
    pub subvolume: SubvolumeArg,

    /// ZFS: the dataset that keeps the archives; the record is kept in its
    /// child `darlings-record`
    #[arg(long, value_name = "DATASET", conflicts_with_all = ["device", "mountpoint"])]
    pub archive_dataset: Option<String>,

    #[command(flatten)]
    pub wait: WaitArg,

    /// Only remove the recorded audit (at boot: a record is used at most once)
    #[arg(long, conflicts_with = "dry_run")]
    pub invalidate: bool,

    /// Audit and print the record, keep nothing (no target needed)
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub rules: RuleArgs,

    #[command(flatten)]
    pub path: BarePathArg,

    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub accepted: AcceptedArg,

    #[command(flatten)]
    pub fail_on: FailOnArg,

    #[command(flatten)]
    pub threads: ThreadsArg,

    #[command(flatten)]
    pub progress: ProgressArg,
}

#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    #[command(flatten)]
    pub which: WhichArgs,

    #[command(flatten)]
    pub subvolume: SubvolumeArg,

    #[command(flatten)]
    pub archive: ArchiveArgs,

    /// Output format
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
}

/// How `status` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum StatusFormat {
    /// Lines for people
    #[default]
    Text,
    /// One JSON object: the mark, the last rollback, the record, the archives
    Json,
    /// node_exporter textfile metrics (`darlings_rollback_*`, `darlings_archives*`)
    Prometheus,
}

/// The tree the rules apply to.
#[derive(Debug, Args, Clone, Default)]
pub struct RootArg {
    /// Audit DIR as if it were `/`: rules, symlink targets and reported paths
    /// are read relative to it [default: /]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// Where the rules come from and which tree they apply to.
#[derive(Debug, Args, Clone, Default)]
pub struct RuleArgs {
    #[command(flatten)]
    pub at: RootArg,

    #[command(flatten)]
    pub sources: RuleSourceArgs,
}

/// Manifests: rules a person wrote, and the claim files they name.
#[derive(Debug, Args, Clone, Default)]
pub struct ManifestArgs {
    /// Read rules from this manifest (repeatable); ROOT/etc/darlings/manifest.toml
    /// is read too when present
    #[arg(long, value_name = "FILE")]
    pub manifest: Vec<PathBuf>,

    /// Do not read ROOT/etc/darlings/manifest.toml
    #[arg(long)]
    pub no_default_manifest: bool,
}

/// Rules given on the command line.
#[derive(Debug, Args, Clone, Default)]
pub struct PatternArgs {
    /// Claim PATTERN as persisted (repeatable): an absolute path (the path and
    /// everything under it) or a glob (`*` does not cross `/`)
    #[arg(long, value_name = "PATTERN")]
    pub keep: Vec<OsString>,

    /// Declare PATTERN fine to lose (repeatable)
    #[arg(long, value_name = "PATTERN")]
    pub ignore: Vec<OsString>,
}

/// Claims declared by NixOS modules.
#[derive(Debug, Args, Clone, Default)]
pub struct DeclaredArgs {
    /// Read the claims of NixOS's impermanence module: the JSON of
    /// `config.environment.persistence` (`-` for stdin; see `darlings` README
    /// for the `nix eval` command)
    #[arg(long, value_name = "FILE")]
    pub impermanence: Option<PathBuf>,

    /// Read the claims of NixOS's preservation module: the JSON of
    /// `config.preservation.preserveAt` (`-` for stdin)
    #[arg(long, value_name = "FILE")]
    pub preservation: Option<PathBuf>,
}

/// Where the rules come from.
#[derive(Debug, Args, Clone, Default)]
pub struct RuleSourceArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,

    #[command(flatten)]
    pub patterns: PatternArgs,

    #[command(flatten)]
    pub declared: DeclaredArgs,

    /// Trust claims without checking them (for trees that cannot show their
    /// mounts, like an unbooted image); such claims are marked unverified
    #[arg(long)]
    pub assume_claims: bool,
}

/// A bare path where a command audits a root: refused with a hint.
#[derive(Debug, Args, Clone, Default)]
pub struct BarePathArg {
    /// A tree to audit is given with --root: a bare path is refused with that hint
    #[arg(value_name = "PATH", hide = true)]
    pub path: Option<OsString>,
}

/// How the report is shown (`audit`, `stray`).
#[derive(Debug, Args, Clone, Default)]
pub struct ReportArgs {
    /// Output format [default: table on a terminal, json otherwise]
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    #[command(flatten)]
    pub flat: FlatArg,

    /// Show only findings with these verdicts (comma-separated); totals still
    /// count everything (not with --format prometheus: it has only totals)
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    pub verdict: Vec<Verdict>,

    /// Show only findings of at least SIZE bytes (suffixes K, M, G, T, P: powers
    /// of 1024; not with --format prometheus)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub min_size: Option<u64>,

    /// Order of findings [default: path] (not with --format prometheus)
    #[arg(long, value_enum)]
    pub sort: Option<SortKey>,

    /// Colour in the table [default: auto, off when NO_COLOR is set or not a
    /// terminal] (only with --format table)
    #[arg(long, value_enum)]
    pub color: Option<When>,
}

/// Grouping.
#[derive(Debug, Args, Clone, Default)]
pub struct FlatArg {
    /// List every path of every loss verdict instead of grouping whole subtrees
    #[arg(long)]
    pub flat: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct AcceptedArg {
    /// A previous JSON report, or a list of paths (one per line, `#` comments):
    /// matching findings are accepted and never raise the exit code
    #[arg(long, value_name = "FILE")]
    pub accepted: Option<PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct FailOnArg {
    /// Verdicts or severities that make the exit code 1 (comma-separated)
    /// [default: every loss verdict]
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    pub fail_on: Vec<FailOn>,
}

/// How long to wait for another darlings at work on the same target.
#[derive(Debug, Args, Clone, Default)]
pub struct WaitArg {
    /// Wait up to SECONDS for another darlings that holds the target's lock
    /// (a rollback, mark or record); 0 refuses at once, naming its pid
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub wait: u32,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ThreadsArg {
    /// CPU threads for the audit [default: number of cores]; the walk
    /// keeps at least 16 directory reads and stats in flight whatever N is
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ProgressArg {
    /// Show progress on stderr [default: auto, only when stderr is a terminal]
    #[arg(long, value_enum, default_value_t = When::Auto)]
    pub progress: When,
}

/// `--suggest`: a NixOS block instead of the report (what only the report
/// reads cannot go with it).
#[derive(Debug, Args, Clone, Default)]
pub struct SuggestArgs {
    /// Print a NixOS block that claims the important and critical unclaimed
    /// state (instead of the report; exits 0 unless the audit is incomplete)
    #[arg(
        long,
        value_enum,
        value_name = "MODULE",
        conflicts_with_all = ["format", "verdict", "min_size", "sort", "color", "accepted", "fail_on"]
    )]
    pub suggest: Option<SuggestModule>,

    /// With --suggest: every unclaimed subtree, not only catalogued state
    #[arg(long, requires = "suggest")]
    pub suggest_all: bool,

    /// With --suggest: the storage root to persist in [default: /persist]
    #[arg(long, value_name = "PATH", requires = "suggest")]
    pub suggest_storage: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct AuditArgs {
    #[command(flatten)]
    pub rules: RuleArgs,

    #[command(flatten)]
    pub path: BarePathArg,

    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub report: ReportArgs,

    #[command(flatten)]
    pub accepted: AcceptedArg,

    #[command(flatten)]
    pub fail_on: FailOnArg,

    #[command(flatten)]
    pub suggest: SuggestArgs,

    #[command(flatten)]
    pub threads: ThreadsArg,

    #[command(flatten)]
    pub progress: ProgressArg,
}

/// What `stray` reads: the declared claims (given, or named by manifests)
/// and how to show what their storage roots hold beyond them.
#[derive(Debug, Args, Clone, Default)]
pub struct StrayArgs {
    #[command(flatten)]
    pub at: RootArg,

    #[command(flatten)]
    pub manifests: ManifestArgs,

    #[command(flatten)]
    pub declared: DeclaredArgs,

    #[command(flatten)]
    pub path: BarePathArg,

    #[command(flatten)]
    pub report: ReportArgs,

    #[command(flatten)]
    pub fail_on: FailOnArg,

    #[command(flatten)]
    pub threads: ThreadsArg,
}

/// Where the list of state on the ephemeral root comes from.
#[derive(Debug, Args, Clone, Default)]
pub struct SourceArgs {
    /// Where the list of state comes from
    #[arg(long = "source", value_enum, default_value_t = SourceKind::Auto)]
    pub kind: SourceKind,

    /// The blank snapshot to compare with (zfs source, and a saved diff's
    /// hard links) [default: blank]
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,

    /// The ZFS dataset mounted at the root (zfs source) [default: from
    /// /proc/self/mountinfo]
    #[arg(long, value_name = "DATASET")]
    pub dataset: Option<OsString>,

    /// Compare with this blank tree (a btrfs blank snapshot, /.zfs/snapshot/blank,
    /// a mounted pristine image): the source, instead of what --source chooses
    #[arg(long, value_name = "DIR", conflicts_with_all = ["kind", "dataset", "snapshot", "zfs_diff"])]
    pub baseline: Option<PathBuf>,

    /// Read a saved `zfs diff -FHt` output (`-` for stdin) instead of walking;
    /// the live tree is consulted only where --root says it is mounted
    #[arg(long, value_name = "FILE", conflicts_with_all = ["kind", "dataset"])]
    pub zfs_diff: Option<PathBuf>,

    /// The paths in the diff are below DIR (where the dataset was mounted
    /// when diffed): audit them as if DIR were `/`
    #[arg(long, value_name = "DIR", requires = "zfs_diff")]
    pub strip_prefix: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub rules: RuleArgs,

    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub flat: FlatArg,

    /// Output format
    #[arg(long, value_enum, default_value_t = ExplainFormat::Text)]
    pub format: ExplainFormat,

    #[command(flatten)]
    pub threads: ThreadsArg,

    /// The path to explain, as the audited system sees it (e.g. /var/lib/x)
    #[arg(value_name = "PATH")]
    pub path: OsString,
}

/// How `explain` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ExplainFormat {
    /// Sentences for people
    #[default]
    Text,
    /// One JSON object: the audit's finding for the path, and every rule that applies
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SourceKind {
    /// From the root's filesystem: ZFS and btrfs compare with their blank
    /// snapshot, anything else is walked
    #[default]
    Auto,
    /// A parallel one-filesystem walk of the root
    Walk,
    /// `zfs diff -FHt DATASET@SNAPSHOT` of the dataset mounted at the root
    Zfs,
    /// Compare a btrfs root with its blank snapshot, found next to the root
    /// subvolume (--baseline compares with any blank tree instead)
    Btrfs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Ndjson,
    Prometheus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum When {
    #[default]
    Auto,
    Always,
    Never,
}

/// The module `--suggest` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SuggestModule {
    /// environment.persistence (impermanence)
    Nix,
    /// preservation.preserveAt
    Preservation,
}

/// What `--fail-on` accepts: loss verdicts, severities, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Unclaimed,
    Broken,
    NewIdentity,
    Shadowed,
    /// Any loss of catalogued state that is critical
    Critical,
    /// Any loss of catalogued state that is important or critical
    Important,
    /// Never exit 1 for a loss (errors and broken claims still count)
    None,
}

/// Parses `123`, `10K`, `1.5M`, `2G`, `1T` (powers of 1024; an optional
/// trailing `B` or `iB` is accepted).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                'P' => 1 << 50,
                _ => return Err(format!("unknown size suffix in {s:?} (use K, M, G, T or P)")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let value: f64 =
        num.trim().parse().map_err(|_| format!("not a size: {s:?} (examples: 4096, 10K, 1.5M, 2G)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("not a size: {s:?}"));
    }
    Ok((value * mult as f64).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("10K"), Ok(10 * 1024));
        assert_eq!(parse_size("1.5M"), Ok(1536 * 1024));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("3kB"), Ok(3 * 1024));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5X").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
