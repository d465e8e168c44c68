//! Claims: everything that says "this path is kept, or fine to lose".
//!
//! Rules come from `--keep` / `--ignore`, from `--manifest` files, and from
//! the audited root's own `/etc/darlings/manifest.toml`; they compile into
//! one [`matcher::Matcher`]. Whether a keep rule is *realised* is a fact of
//! the live system ([`live`]), checked during the walk.

pub mod check;
pub mod live;
pub mod manifest;
pub mod matcher;
pub mod nixos;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use matcher::{
    is_glob_text, too_many_globs, Matcher, Origin, Pattern, PatternError, Rule, RuleKind, MAX_GLOBS,
    MAX_GLOB_BYTES,
};

use crate::sanitize::escape;
use crate::sys::root::Root;

/// The builtins-only `--apply` expression for `nix eval --json` of a NixOS
/// module's value (see `nix/clean.nix`).
pub const NIX_CLEAN: &str = include_str!("nix/clean.nix");

/// What `darlings nix expr MODULE` prints: [`NIX_CLEAN`], headed by the
/// command that reads `module`'s value (`impermanence` or `preservation`)
/// with it.
pub fn nix_expr(module: &str) -> String {
    let option = if module == "preservation" { "preservation.preserveAt" } else { "environment.persistence" };
    format!(
        "# The claims of {module}, for darlings:\n\
         #   nix eval --json .#nixosConfigurations.HOST.config.{option} \\\n\
         #     --apply \"$(darlings nix expr {module})\" > {module}.json\n\
         #   darlings audit --{module} {module}.json\n\
         #\n\
         {NIX_CLEAN}"
    )
}

/// How many globs, of how many bytes, `globs` holds, when that is more
/// than darlings compiles (see [`matcher::MAX_GLOBS`]).
fn globs_over(globs: &mut dyn Iterator<Item = &[u8]>) -> Option<(usize, usize)> {
    let (count, bytes) = globs.fold((0, 0), |(n, b), g| (n + 1, b + g.len()));
    (count > MAX_GLOBS || bytes > MAX_GLOB_BYTES).then_some((count, bytes))
}

/// The refusal of `found` globs, naming where they were read.
fn globs_refused(sources: &RuleSources, (count, bytes): (usize, usize), read: &[PathBuf]) -> RulesError {
    let mut places: Vec<String> =
        read.iter().map(|m| escape(m.as_os_str().as_bytes()).into_owned()).collect();
    if sources.keep.iter().chain(&sources.ignore).any(|r| is_glob_text(r.as_bytes())) {
        places.insert(0, "--keep/--ignore".into());
    }
    RulesError::Globs { count, bytes, where_: places.join(", ") }
}

/// The globs of the rules and catalogue entries read so far, together.
fn within_globs(
    sources: &RuleSources,
    rules: &[Rule],
    precious: &[crate::report::Precious],
    read: &[PathBuf],
) -> Result<(), RulesError> {
    let texts: Vec<std::borrow::Cow<'_, str>> =
        rules.iter().filter(|r| r.pattern.is_glob()).map(|r| r.pattern.text()).collect();
    let mut globs = texts
        .iter()
        .map(|t| t.as_bytes())
        .chain(precious.iter().map(|p| p.pattern.as_bytes()).filter(|p| is_glob_text(p)));
    globs_over(&mut globs).map_or(Ok(()), |found| Err(globs_refused(sources, found, read)))
}

/// Where the default manifest lives inside the audited root.
pub const DEFAULT_MANIFEST: &str = "/etc/darlings/manifest.toml";

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{flag} {pattern:?}: {error}")]
    Flag { flag: &'static str, pattern: String, error: PatternError },
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error(transparent)]
    Declared(#[from] nixos::DeclaredError),
    #[error("cannot read {}: {message}", crate::sanitize::escape(file.as_bytes()))]
    Json { file: String, message: String },
    /// More globs than darlings compiles (see [`matcher::MAX_GLOBS`]).
    #[error("{count} glob patterns ({bytes} bytes) in {where_}: {}", too_many_globs())]
    Globs { count: usize, bytes: usize, where_: String },
    /// One path declared from two storage roots.
    #[error(
        "{path}: claimed from two storage roots, {first} and {second}: only one of them can be mounted there; \
         keep one declaration"
    )]
    Conflict { path: String, first: String, second: String },
}

/// What to read rules from.
#[derive(Debug, Clone, Default)]
pub struct RuleSources {
    pub keep: Vec<OsString>,
    pub ignore: Vec<OsString>,
    pub manifests: Vec<PathBuf>,
    /// Read `ROOT/etc/darlings/manifest.toml` when it exists.
    pub default_manifest: bool,
    /// `config.environment.persistence` as JSON (`-`: stdin).
    pub impermanence: Option<PathBuf>,
    /// `config.preservation.preserveAt` as JSON (`-`: stdin).
    pub preservation: Option<PathBuf>,
    /// Claims declared at shutdown, kept in the record (the initrd's
    /// rollback), taken as they are.
    pub recorded: Vec<nixos::Declared>,
}

/// Where a claim file's JSON is read.
enum ClaimText {
    /// A path on this machine (`-`: stdin).
    Given(PathBuf),
    /// An absolute path inside the audited root.
    InRoot(PathBuf),
}

/// The rules, the manifests they were read from, and the catalogue
/// entries the manifests add.
pub struct Loaded {
    pub matcher: Matcher,
    pub manifests: Vec<PathBuf>,
    pub precious: Vec<crate::report::Precious>,
    /// Claims declared by NixOS modules (`--impermanence`).
    pub declared: Vec<nixos::Declared>,
}

/// Reads every rule; any error means no rules at all. Without a live root
/// (a saved diff audited offline) no default manifest is read: nothing of
/// this machine's own files is consulted.
pub fn load(sources: &RuleSources, root: Option<&Root>, root_path: &Path) -> Result<Loaded, RulesError> {
    // Globs are counted before the next source is compiled (a manifest
    // refuses its own past the limit as it is read).
    let flags = sources.keep.iter().chain(&sources.ignore).map(|r| r.as_bytes());
    if let Some(found) = globs_over(&mut flags.filter(|r| is_glob_text(r))) {
        return Err(globs_refused(sources, found, &[]));
    }
    let mut rules = Vec::new();
    for (kind, flag, list) in
        [(RuleKind::Keep, "--keep", &sources.keep), (RuleKind::Ignore, "--ignore", &sources.ignore)]
    {
        for raw in list {
            let pattern = Pattern::parse(raw.as_bytes()).map_err(|error| RulesError::Flag {
                flag,
                pattern: raw.to_string_lossy().into_owned(),
                error,
            })?;
            rules.push(Rule { kind, pattern, origin: Origin::Flag(flag), reason: None });
        }
    }
    let mut manifests = Vec::new();
    let mut precious = Vec::new();
    // Claim files: the flags', then those the manifests name.
    let mut claim_files: Vec<(&str, ClaimText)> = Vec::new();
    for (module, file) in [("impermanence", &sources.impermanence), ("preservation", &sources.preservation)] {
        if let Some(file) = file {
            claim_files.push((module, ClaimText::Given(file.clone())));
        }
    }
    for file in &sources.manifests {
        let m = manifest::load(file)?;
        rules.extend(m.rules);
        precious.extend(m.precious);
        claim_files.extend(m.claim_files.into_iter().map(|c| (c.module, ClaimText::Given(c.path))));
        manifests.push(file.clone());
        within_globs(sources, &rules, &precious, &manifests)?;
    }
    if let (true, Some(root)) = (sources.default_manifest, root) {
        let rel = DEFAULT_MANIFEST.trim_start_matches('/');
        let shown = root_path.join(rel);
        // Resolved inside the root (on NixOS it is a link into the store);
        // a regular file only, size-capped.
        match root.read_config(rel.as_bytes()) {
            Ok(text) => {
                let m = manifest::parse_bytes(&text, &shown)?;
                rules.extend(m.rules);
                precious.extend(m.precious);
                // Its claim files are inside the root too.
                claim_files.extend(m.claim_files.into_iter().map(|c| (c.module, ClaimText::InRoot(c.path))));
                manifests.push(shown);
            }
            // Absent is fine; a link that leads nowhere inside the root is
            // not: every rule and claim in it would vanish without a word,
            // as they would for a dangling claim file.
            Err(e) if e.is_not_found() => {
                if let Some((link, target)) = check::first_link(root, rel.as_bytes()) {
                    let target =
                        target.map_or_else(|e| format!("unreadable: {e}"), |t| escape(&t).into_owned());
                    let link = format!("/{}", escape(link));
                    return Err(manifest::ManifestError::Dangling { file: shown, link, target }.into());
                }
            }
            Err(e) => return Err(manifest::ManifestError::Read { file: shown, source: e.into() }.into()),
        }
    }
    let mut declared = Vec::new();
    // Where each declaration was read: `impermanence "/persist".files[0] in FILE`.
    let mut origins = Vec::new();
    for (module, file) in claim_files {
        let (shown, text) = match &file {
            ClaimText::Given(file) if file == Path::new("-") => (
                "<stdin>".to_owned(),
                crate::sys::root::read_capped(std::io::stdin().lock()).map_err(|e| e.to_string()),
            ),
            // Named on the command line: a FIFO is fine, a device is not; capped.
            ClaimText::Given(file) => {
                (file.display().to_string(), crate::sys::root::read_given(file).map_err(|e| e.to_string()))
            }
            ClaimText::InRoot(path) => {
                let rel = path.as_os_str().as_bytes().strip_prefix(b"/").unwrap_or_default();
                // Only the default manifest names these, read with a root.
                let text = match root {
                    Some(root) => root.read_config(rel).map_err(|e| e.to_string()),
                    None => Err("no audited root to read it in".to_owned()),
                };
                (root_path.join(OsStr::from_bytes(rel)).display().to_string(), text)
            }
        };
        let bad = |message: String| RulesError::Json { file: shown.clone(), message };
        let text = text.map_err(bad)?;
        let json: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let found = nixos::impermanence(&json, &shown)?;
        rules.extend(nixos::rules(&found, module, &shown)?);
        origins.extend(found.iter().map(|d| format!("{module} {} in {shown}", d.option)));
        declared.extend(found);
    }
    if !sources.recorded.is_empty() {
        let shown = "the record kept at shutdown";
        rules.extend(nixos::rules(&sources.recorded, "impermanence", shown)?);
        origins.extend(sources.recorded.iter().map(|d| format!("{} in {shown}", d.option)));
        declared.extend(sources.recorded.iter().cloned());
    }
    within_globs(sources, &rules, &precious, &manifests)?;
    if let Some((a, b)) = nixos::conflict(&declared) {
        let from = |i: usize| format!("{} ({})", declared[i].storage_root(), origins[i]);
        return Err(RulesError::Conflict {
            path: String::from_utf8_lossy(&declared[b].path).into_owned(),
            first: from(a),
            second: from(b),
        });
    }
    Ok(Loaded { matcher: Matcher::new(rules), manifests, precious, declared })
}
