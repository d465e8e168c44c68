//! One function per subcommand: wires source → classify → report → render.

use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context, Result};
use clap::CommandFactory;

use crate::claims::live::{self, LinkTarget, Mounts};
use crate::claims::matcher::{Matcher, RuleKind};
use crate::claims::{self, Loaded};
use crate::classify::Classifier;
use crate::cli::{AuditArgs, Cli, Command, ExplainArgs, Format, SourceKind};
use crate::config;
use crate::error::ExitCode;
use crate::knowledge::Catalogue;
use crate::render;
use crate::report::{Accepted, Finding, MissingClaim, Report, RuleRef, Verdict};
use crate::sanitize::escape;
use crate::source::tree::ChangeTree;
use crate::source::walk::{self, Root};
use crate::source::zfs;
use crate::source::{Change, FileKind};

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        None => audit(&cli.audit),
        Some(Command::Audit(args)) => audit(&args),
        Some(Command::Stray(args)) => stray(&args),
        Some(Command::Explain(args)) => explain(&args),
        Some(Command::Rollback(args)) => crate::rollback::rollback(&args),
        Some(Command::Mark(args)) => crate::rollback::mark(&args),
        Some(Command::Archives(args)) => crate::rollback::archives(&args),
        Some(Command::Restore(args)) => crate::rollback::restore(&args),
        Some(Command::Record(args)) => crate::rollback::record(&args),
        Some(Command::Status(args)) => crate::rollback::status(&args),
        Some(Command::Completions { shell }) => {
            let mut cmd = Cli::command();
            write_stdout(|out| {
                clap_complete::generate(shell, &mut cmd, "darlings", out);
                Ok(())
            })?;
            Ok(ExitCode::Clean)
        }
        Some(Command::Nix { what: crate::cli::NixCommand::Expr { module: _ } }) => {
            // One expression serves both modules: it only drops what throws.
            write_stdout(|out| out.write_all(crate::claims::NIX_CLEAN.as_bytes()))?;
            Ok(ExitCode::Clean)
        }
        Some(Command::Man) => {
            write_stdout(|out| clap_mangen::Man::new(Cli::command()).render(out))?;
            Ok(ExitCode::Clean)
        }
    }
}

/// Writes to stdout; a reader that went away (`darlings | head`) is not an error.
fn write_stdout(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match f(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// The audited root, opened, with its canonical path.
struct Target {
    root: Root,
    canonical: PathBuf,
}

fn open_root(path: &Path) -> Result<Target> {
    let canonical = std::fs::canonicalize(path)
        .with_context(|| format!("cannot audit {}", escape(path.as_os_str().as_bytes())))?;
    if !canonical.is_dir() {
        bail!("cannot audit {}: not a directory", escape(path.as_os_str().as_bytes()));
    }
    let root = Root::open(&canonical).map_err(|e| anyhow::anyhow!("cannot audit: {e}"))?;
    Ok(Target { root, canonical })
}

fn load_rules(rules: &config::Rules, target: Option<&Target>) -> Result<Loaded> {
    claims::load(&rules.sources, target.map(|t| &t.root), &rules.root).map_err(anyhow::Error::from)
}

fn audit(args: &AuditArgs) -> Result<ExitCode> {
    let cfg = config::Audit::from_args(args);
    let report = run_audit(&cfg)?;
    if let Some((module, all, storage)) = &cfg.suggest {
        let code = report.exit_code(&cfg.fail_on, cfg.fail_severity);
        let storage = storage.clone().unwrap_or_else(|| "/persist".into());
        write_stdout(|out| render::suggest::render(out, &report, *module, *all, &storage))?;
        return Ok(code);
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

/// Runs an audit as configured and returns its sorted report.
pub fn run_audit(cfg: &config::Audit) -> Result<Report> {
    // A saved diff is audited offline unless --root says where its tree is.
    let live = match (&cfg.zfs_diff, cfg.rules.root_given) {
        (Some(_), false) => None,
        _ => Some(open_root(&cfg.rules.root)?),
    };
    let loaded = load_rules(&cfg.rules, live.as_ref())?;
    let accepted = match &cfg.accepted {
        Some(file) => read_accepted(file)?,
        None => Accepted::default(),
    };
    let mut notes = Vec::new();
    let mounts = match &live {
        Some(target) => Mounts::read(&target.canonical).unwrap_or_else(|e| {
            notes.push(format!("cannot read /proc/self/mountinfo ({e}): mount points are not described"));
            Mounts::default()
        }),
        None => Mounts::default(),
    };
    let started = SystemTime::now();
    let clock = Instant::now();
    let mut source_errors = Vec::new();
    let (diff, diff_source) = match (&cfg.zfs_diff, &cfg.baseline, &live) {
        (Some(file), _, _) => {
            let mut tree = read_diff(file, cfg.strip_prefix.as_deref())?;
            if let Some(target) = &live {
                recover_links(&mut tree, target, cfg, &mut notes);
            }
            (Some(tree), "zfs-diff-file")
        }
        (None, Some(blank), Some(target)) => {
            let blank = open_root(blank)?;
            let mut tree = ChangeTree::new();
            source_errors =
                crate::source::baseline::compare(&target.root, &blank.root, &mut tree, cfg.threads).errors;
            notes.push(format!("compared with the blank tree {}", blank.canonical.display()));
            (Some(tree), "baseline")
        }
        (None, None, Some(target)) => match snapshot_source(cfg, target, &mounts, &mut notes)? {
            Some((tree, source, errors)) => {
                source_errors = errors;
                (Some(tree), source)
            }
            None => (None, "walk"),
        },
        (None, _, None) => (None, "walk"),
    };

    let root = live.as_ref().map(|t| &t.root);
    let classifier = Classifier::new(&loaded.matcher, root, &mounts, cfg.rules.assume_claims, cfg.flat);
    let top = classifier.top();
    let source = match (&diff, &live) {
        (Some(tree), _) => {
            tree.walk(top, &classifier, root, cfg.threads);
            diff_source
        }
        (None, Some(target)) => {
            crate::progress::with_progress(cfg.progress, |progress| {
                walk::walk(&target.root, top, &classifier, cfg.threads, progress)
            })
            .context("cannot start the walk's threads")?;
            "walk"
        }
        (None, None) => bail!("nothing to audit"),
    };
    let missing = match root {
        Some(root) => missing_claims(&classifier, &loaded.matcher, root),
        None => Vec::new(),
    };
    let mut collected = classifier.into_collected();
    collected.errors.extend(source_errors.into_iter().map(|e| crate::report::EntryError {
        message: walk::describe_errno(e.errno),
        errno: Some(e.errno.raw_os_error()),
        operation: e.op.name(),
        path: e.path,
    }));
    let duration = clock.elapsed();

    if let Some(tree) = &diff {
        diff_findings(tree, &mut collected.findings, live.is_none(), &mut notes);
    }
    let catalogue = Catalogue::new(loaded.precious.clone());
    mark_precious(&catalogue, &mut collected.findings, live.as_ref().map(|t| &t.root), diff.as_ref());
    if live.as_ref().is_some_and(|t| t.canonical == Path::new("/")) && diff.is_none() {
        let pseudo: Vec<String> = ["/dev", "/proc", "/run", "/sys"]
            .iter()
            .filter_map(|p| mounts.at(p.as_bytes()).map(|m| format!("{p} ({})", m.fstype)))
            .collect();
        if !pseudo.is_empty() {
            notes.push(format!(
                "{} are separate pseudo or runtime filesystems: never walked, nothing on them survives a reboot anyway",
                pseudo.join(", ")
            ));
        }
    }
    for m in &loaded.manifests {
        notes.push(format!("rules read from {}", m.display()));
    }

    let mut report = Report {
        root: cfg.rules.root.as_os_str().as_bytes().to_vec(),
        source,
        flat: cfg.flat,
        totals: Report::compute_totals(&collected.findings, &collected.links),
        findings: collected.findings,
        errors: collected.errors,
        missing_claims: missing,
        notes,
        started,
        duration,
    };
    report.errors.sort_by(|a, b| a.path.cmp(&b.path));
    report.missing_claims.sort_by(|a, b| a.path.cmp(&b.path));
    accepted.apply(&mut report.findings);
    report.sort(cfg.sort);
    Ok(report)
}

/// `--source zfs`, or `auto` on a ZFS or btrfs root: the changes since the
/// blank snapshot (`zfs diff`, or a comparison with the btrfs snapshot).
/// `None`: walk instead (with a note saying why).
fn snapshot_source(
    cfg: &config::Audit,
    target: &Target,
    mounts: &Mounts,
    notes: &mut Vec<String>,
) -> Result<Option<(ChangeTree, &'static str, Vec<walk::WalkError>)>> {
    if cfg.source == SourceKind::Walk {
        return Ok(None);
    }
    let shown = target.canonical.display();
    if cfg.source == SourceKind::Btrfs {
        let Some(m) = mounts.root().filter(|m| m.fstype == "btrfs") else {
            bail!("--source btrfs: {shown} is not the mount point of a btrfs subvolume; compare with --baseline DIR");
        };
        return match btrfs_source(target, cfg.threads, m, notes)? {
            Some(found) => Ok(Some(found)),
            None => {
                bail!("--source btrfs: no blank snapshot of {shown} was found; name it with --baseline DIR")
            }
        };
    }
    let on_zfs = mounts.root().filter(|m| m.fstype == "zfs");
    let dataset = match (&cfg.dataset, on_zfs) {
        (Some(d), _) => d.as_bytes().to_vec(),
        (None, Some(m)) => m.source.clone(),
        (None, None) => {
            let fstype =
                mounts.root().map_or("a directory of a larger filesystem".to_owned(), |m| m.fstype.clone());
            if cfg.source == SourceKind::Zfs {
                bail!("--source zfs: {shown} is not the mount point of a ZFS dataset (it is {fstype}); name one with --dataset");
            }
            if let Some(m) = mounts.root().filter(|m| m.fstype == "btrfs") {
                return btrfs_source(target, cfg.threads, m, notes);
            }
            notes.push(match fstype.as_str() {
                "tmpfs" | "ramfs" => {
                    format!("{shown} is a {fstype}: everything on it is erased, so it was walked")
                }
                other => format!("{shown} ({other}) does not look like an ephemeral root: walked"),
            });
            return Ok(None);
        }
    };
    // zfs prints paths below where the dataset is mounted: the root.
    let prefix = target.canonical.as_os_str().as_bytes();
    let mut tree = ChangeTree::new();
    crate::source::zfs::diff_into(&dataset, &cfg.snapshot, prefix, &mut tree)?;
    recover_links(&mut tree, target, cfg, notes);
    notes.push(format!(
        "compared {}@{} with the live dataset (zfs diff)",
        String::from_utf8_lossy(&dataset),
        cfg.snapshot
    ));
    if let Ok(children) = crate::source::zfs::children(&dataset) {
        if !children.is_empty() {
            let list: Vec<String> =
                children.iter().map(|(name, mp)| format!("{name} (mountpoint {mp})")).collect();
            notes.push(format!(
                "datasets below {} are not in its zfs diff and a rollback keeps them: {}",
                String::from_utf8_lossy(&dataset),
                list.join(", ")
            ));
        }
    }
    Ok(Some((tree, "zfs", Vec::new())))
}

/// The other names of hard-linked files a diff lists, from the live tree
/// (the blank snapshot, where ZFS shows it under `.zfs`, tells which names
/// are old).
fn recover_links(tree: &mut ChangeTree, target: &Target, cfg: &config::Audit, notes: &mut Vec<String>) {
    let snapdir = target.canonical.join(".zfs/snapshot").join(&cfg.snapshot);
    let blank = Root::open(&snapdir).ok();
    let found = crate::source::links::recover(tree, &target.root, blank.as_ref(), cfg.threads);
    if found.files > 0 {
        notes.push(format!(
            "zfs diff names a file with several hard links under one name only: {} such files, {} other names found in the live tree",
            found.files, found.names
        ));
    }
}

/// `auto` on a btrfs root: compare with its blank snapshot, found by the
/// conventional layouts (see `source/btrfs.rs`); walk when there is none.
fn btrfs_source(
    target: &Target,
    threads: usize,
    mount: &crate::claims::live::Mount,
    notes: &mut Vec<String>,
) -> Result<Option<(ChangeTree, &'static str, Vec<walk::WalkError>)>> {
    let shown = target.canonical.display();
    let places = crate::source::btrfs::candidates(&mount.fs_root)
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let blank = match crate::source::btrfs::find_blank(mount) {
        Ok(Some(blank)) => blank,
        Ok(None) => {
            notes.push(format!(
                "{shown} is btrfs but no blank snapshot was found at {places}: walked; pass --baseline"
            ));
            return Ok(None);
        }
        Err(e) => {
            notes.push(format!(
                "{shown} is btrfs but its snapshots could not be looked at ({e}): walked; pass --baseline"
            ));
            return Ok(None);
        }
    };
    let base = open_root(&blank.path)?;
    let mut tree = ChangeTree::new();
    let errors = crate::source::baseline::compare(&target.root, &base.root, &mut tree, threads).errors;
    notes.push(format!("compared with the blank snapshot {}", String::from_utf8_lossy(&blank.subvolume)));
    Ok(Some((tree, "btrfs", errors)))
}

/// Reads a saved `zfs diff -FHt` into a change tree; a malformed line is
/// an error naming the file and line, and nothing is audited.
fn read_diff(file: &Path, strip: Option<&Path>) -> Result<ChangeTree> {
    Ok(zfs::read_saved(file, strip)?)
}

/// Adds what only a change list knows: removed paths (they come back),
/// the old names of renamed ones, and what an offline audit cannot say.
fn diff_findings(tree: &ChangeTree, findings: &mut Vec<Finding>, offline: bool, notes: &mut Vec<String>) {
    for f in findings.iter_mut() {
        // Rows decided before any metadata (kept, ignored) learn their change here.
        if f.change == Change::Present {
            f.change = tree.change_of(&f.path).unwrap_or(Change::Modified);
        }
        if f.change == Change::Renamed {
            f.renamed_from = tree.renamed_from(&f.path).map(<[u8]>::to_vec);
        }
        if offline {
            // Times from the list are inode change times; no sizes.
            f.ctime = f.mtime.take();
            f.size = None;
            f.disk = None;
        }
    }
    for (path, kind, entries, ctime) in tree.removed() {
        let mut f = Finding::new(path, Verdict::Restored, kind);
        f.change = Change::Removed;
        f.entries = Some(entries);
        f.ctime = ctime;
        f.detail = Some("removed since the blank snapshot: comes back at rollback".into());
        findings.push(f);
    }
    if offline {
        notes.push(
            "offline: the diff was read without its tree (no --root), so there are no sizes and claims are \
             checked only against what the diff lists"
                .into(),
        );
    }
    if tree.link_changes > 0 {
        notes.push(format!(
            "zfs diff names a file with several hard links under one name only ({} link-count changes seen): \
             its other names are not in this list",
            tree.link_changes
        ));
    }
    if tree.delete_queue > 0 {
        notes.push(format!(
            "{} objects were unlinked but still open when diffed (on_delete_queue): not listed",
            tree.delete_queue
        ));
    }
}

/// `darlings stray`: walks each storage root of the declared claims and
/// reports what nothing declares any more, at its path on this machine.
fn stray(args: &AuditArgs) -> Result<ExitCode> {
    let cfg = config::Audit::from_args(args);
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
        let dir = live.canonical.join(shown.trim_start_matches('/'));
        let Ok(target) = open_root(&dir) else {
            notes.push(format!("storage root {shown} does not exist"));
            continue;
        };
        // Declared paths are where they belong: trusted claims, never
        // entered; their parents are structure.
        let rules = loaded
            .declared
            .iter()
            .filter(|d| d.storage.as_bytes() == storage)
            .filter_map(|d| {
                let pattern = claims::matcher::Pattern::parse(&d.path).ok().filter(|p| !p.is_glob())?;
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
        let classifier =
            Classifier::new(&matcher, Some(&target.root), &mounts, true, cfg.flat).without_identities();
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
        root: cfg.rules.root.as_os_str().as_bytes().to_vec(),
        source: "stray",
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

/// Gives every loss finding the catalogue entry it is, lies in, or holds.
/// Whether a grouped directory holds an entry is asked of the live tree
/// (or, without one, of the change list).
fn mark_precious(
    catalogue: &Catalogue,
    findings: &mut [Finding],
    root: Option<&Root>,
    tree: Option<&ChangeTree>,
) {
    for f in findings.iter_mut().filter(|f| f.verdict.is_loss()) {
        let group = f.kind == FileKind::Dir && f.entries.unwrap_or(0) > 1;
        let holds = |pattern: &str| match (root, tree) {
            (Some(root), _) => crate::knowledge::catalogue::find_in(root, pattern.as_bytes(), &f.path),
            (None, Some(tree)) => (!pattern.contains(['*', '?', '[']) && tree.names(pattern.as_bytes()))
                .then(|| pattern.as_bytes().to_vec()),
            (None, None) => None,
        };
        if let Some((precious, at)) = catalogue.lookup(&f.path, group, &holds) {
            f.precious = Some(precious.clone());
            f.keep_path = Some(at);
        }
    }
}

/// Keep rules naming a literal path that the walk never met and that does
/// not exist.
fn missing_claims(classifier: &Classifier<'_>, matcher: &Matcher, root: &Root) -> Vec<MissingClaim> {
    classifier
        .unseen_keep_prefixes()
        .into_iter()
        .filter_map(|id| {
            let rule = matcher.rule(id);
            let path = rule.pattern.prefix()?;
            let rel = path.strip_prefix(b"/").unwrap_or(path);
            match root.exists(rel) {
                Ok(false) => Some(MissingClaim { path: path.to_vec(), rule: RuleRef::new(rule) }),
                _ => None,
            }
        })
        .collect()
}

/// An `--accepted` file: a previous JSON report, or one path per line.
fn read_accepted(file: &Path) -> Result<Accepted> {
    let shown = file.display();
    let bytes = std::fs::read(file).with_context(|| format!("cannot read accepted list {shown}"))?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).with_context(|| format!("{shown}: not valid JSON"))?;
        let entries = render::json::read_findings(&value).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
        return Ok(Accepted::new(entries));
    }
    let mut entries = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() || trimmed.starts_with(b"#") {
            continue;
        }
        if !line.starts_with(b"/") {
            bail!("{shown}:{}: not an absolute path: {}", i + 1, escape(line));
        }
        let path = if line.len() > 1 { line.strip_suffix(b"/").unwrap_or(line) } else { line };
        entries.push((path.to_vec(), None));
    }
    Ok(Accepted::new(entries))
}

fn explain(args: &ExplainArgs) -> Result<ExitCode> {
    let rules = config::Rules::from_args(&args.rules);
    let target = open_root(&rules.root)?;
    let loaded = load_rules(&rules, Some(&target))?;
    let matcher = &loaded.matcher;
    let raw = args.path.as_bytes();
    let path = match claims::matcher::Pattern::parse(raw) {
        Ok(claims::matcher::Pattern::Prefix(p)) => p,
        Ok(_) => bail!("explain takes a path, not a glob: {}", escape(raw)),
        Err(e) => bail!("{}: {e}", escape(raw)),
    };
    let explanation = matcher.explain(&path);
    let mut text = String::new();
    let shown = escape(&path);
    text.push_str(&format!("{shown}\n"));
    if explanation.matches.is_empty() {
        text.push_str(
            "  no rule applies: unclaimed, erased at the next boot unless a mount or symlink keeps it\n",
        );
    } else {
        text.push_str("  rules that apply, most specific first:\n");
        for (i, m) in explanation.matches.iter().enumerate() {
            let rule = matcher.rule(m.rule);
            let mut line = format!(
                "  {} {} {}  ({}), matches at {}",
                if i == 0 { "*" } else { " " },
                rule.kind.name(),
                rule.pattern.text(),
                rule.origin,
                escape(&m.at)
            );
            if let Some(reason) = &rule.reason {
                line.push_str(&format!(": {reason}"));
            }
            text.push_str(&escape(line.as_bytes()));
            text.push('\n');
        }
        let decider = &explanation.matches[0];
        let rule = matcher.rule(decider.rule);
        let why = match explanation.matches.get(1) {
            Some(next) => format!(", because {}", matcher.why_wins(decider, next)),
            None => String::new(),
        };
        text.push_str(&format!(
            "  decided by: {} {}{why}\n",
            rule.kind.name(),
            escape(rule.pattern.text().as_bytes())
        ));
        match rule.kind {
            RuleKind::Ignore => text.push_str("  verdict: ignored (fine to lose; not walked)\n"),
            RuleKind::Keep if rules.assume_claims => {
                text.push_str("  verdict: kept, unverified (--assume-claims)\n");
            }
            RuleKind::Keep => {
                text.push_str(&format!(
                    "  claim on {}: {}\n",
                    escape(&decider.at),
                    check_claim(&target.root, &decider.at)
                ));
            }
        }
    }
    write_stdout(|out| out.write_all(text.as_bytes()))?;
    Ok(ExitCode::Clean)
}

/// The live state of a claimed path, in words (for `explain`).
fn check_claim(root: &Root, path: &[u8]) -> String {
    let rel = path.strip_prefix(b"/").unwrap_or(path);
    match root.stat(rel) {
        Err(rustix::io::Errno::NOENT) => "the path does not exist (a missing claim, nothing to lose)".into(),
        Err(e) => format!("cannot check: {}", walk::describe_errno(e)),
        Ok(meta) if meta.other_fs => "realised: a mount point (kept, not walked)".into(),
        Ok(meta) if meta.kind == FileKind::Symlink => match live::check_symlink(root, path) {
            LinkTarget::OtherFilesystem(t) => {
                format!("realised: a symlink to {} on another filesystem (kept)", escape(&t))
            }
            LinkTarget::SameFilesystem(t) => {
                format!("BROKEN: a symlink to {}, which is on the ephemeral root", escape(&t))
            }
            LinkTarget::Missing(t) => format!("BROKEN: a symlink to {}, which does not exist", escape(&t)),
            LinkTarget::Unreadable(e) => format!("BROKEN: the symlink cannot be read: {e}"),
        },
        Ok(_) => "BROKEN: plain content on the ephemeral root (lost at the next boot)".into(),
    }
}
