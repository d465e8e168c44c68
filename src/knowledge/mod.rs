//! Knowledge of well-known state, as rules of the one matcher.
//!
//! - the catalogue of precious paths ([`catalogue`]): every loss finding
//!   (unclaimed, broken, new-identity) that is, lies inside, or contains a
//!   catalogued path carries that entry's severity and reason in every
//!   format, so `/var/lib/bluetooth` is not just 12 files but "pairings
//!   with every Bluetooth device". The built-in entries can be extended
//!   from the manifest (`[[precious]]`);
//! - what comes back identically at boot ([`recreated`], [`tmpfiles`]):
//!   rules of kind `recreated`;
//! - what comes back with a new value ([`identity`]): rules of kind
//!   `identity`.
//!
//! Every pattern of it is a [`Pattern`] — the glob dialect of `--keep` —
//! and every rule has an origin (`built-in: …`, `/etc/.clean:3`,
//! `/etc/tmpfiles.d/foo.conf:12`), so a finding names what decided it.
//!
//! [`Knowledge`] compiles the rules that apply to paths into a [`Matcher`]
//! and the rules on symlink targets into another. It is consulted only
//! where it can apply: the entries of the few directories that hold a path
//! one of its rules names ([`Knowledge::holds`], learnt once per directory),
//! and the targets of symlinks in [`recreated::area`]. What each rule means
//! for an entry (a tmpfiles file comes back empty, an identity is a file)
//! is the classifier's judge's to say.

pub mod catalogue;
pub mod identity;
pub mod recreated;
pub mod tmpfiles;

use std::collections::HashSet;
use std::sync::OnceLock;

pub use catalogue::{Catalogue, Precious, Severity};

use crate::claims::matcher::{Matcher, Pattern, Rule, RuleId};
use crate::sys::root::Root;

/// Places no system keeps across a boot, whatever its root: runtime and
/// temporary directories (`/tmp`, `/run` and its old names `/var/run`,
/// `/var/lock`) and the kernel's pseudo filesystems (`/dev`, `/proc`,
/// `/sys`). Persisting them would be a mistake, so `--suggest` never
/// proposes a claim in them. `/var/tmp` is not one of them: it is meant
/// to survive reboots.
pub const VOLATILE: [&str; 7] = ["/dev", "/proc", "/run", "/sys", "/tmp", "/var/lock", "/var/run"];

/// Whether `path` is, or lies inside, a [`VOLATILE`] place.
pub fn volatile(path: &[u8]) -> bool {
    VOLATILE.iter().any(|v| crate::sys::path::is_ancestor_or_self(v.as_bytes(), path))
}

/// Files systemd reads before the initrd hands over to the system
/// (`/etc/machine-id`): preservation must set them up in the initrd
/// (`inInitrd = true`), see its option `files.*.inInitrd`.
pub const READ_IN_INITRD: [&str; 1] = ["/etc/machine-id"];

/// What one rule of the knowledge says of the path it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Says {
    /// Recreated at boot with a new value: what changes.
    Identity(&'static str),
    /// Recreated identically at boot: why.
    Recreated(&'static str),
    /// systemd-tmpfiles creates this object at every boot.
    Tmpfiles(tmpfiles::Object),
}

/// A rule of the knowledge (an index into [`Knowledge`]'s rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownId(pub u32);

/// A rule of the knowledge that names a path, and what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub rule: KnownId,
    pub says: Says,
}

/// The rules naming one path, in the order they are consulted: at most
/// [`Hits::MAX`], one for each source that can name a path (an identity, a
/// tmpfiles line, a built-in file, an `/etc/.clean` line; a second line of
/// `.clean` naming the same path says the same as the first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hits([Option<Known>; Hits::MAX]);

impl Hits {
    pub const MAX: usize = 4;
    pub const NONE: Hits = Hits([None; Hits::MAX]);

    pub fn new(known: &[Known]) -> Hits {
        let mut hits = Hits::NONE;
        for (slot, k) in hits.0.iter_mut().zip(known) {
            *slot = Some(*k);
        }
        hits
    }

    pub fn iter(&self) -> impl Iterator<Item = Known> + '_ {
        self.0.iter().flatten().copied()
    }
}

/// A file of the knowledge that could not be read: (path, operation, why).
pub type Problem = (Vec<u8>, &'static str, String);

/// Rules compiled into a matcher, with what each says.
#[derive(Debug)]
struct Compiled {
    matcher: Matcher,
    says: Vec<Says>,
}

impl Compiled {
    fn new(rules: Vec<(Rule, Says)>) -> Compiled {
        let (rules, says) = rules.into_iter().unzip();
        Compiled { matcher: Matcher::new(rules), says }
    }

    fn len(&self) -> RuleId {
        self.says.len() as RuleId
    }
}

/// The built-in rules: identities and the files NixOS recreates, in that
/// order, and the rules on link targets. Compiled once per process.
#[derive(Debug)]
struct BuiltIn {
    paths: Compiled,
    targets: Compiled,
    /// Directories holding a path a rule of `paths` names.
    dirs: HashSet<Vec<u8>>,
}

fn built_in_rules() -> &'static BuiltIn {
    static BUILT_IN: OnceLock<BuiltIn> = OnceLock::new();
    BUILT_IN.get_or_init(|| {
        let mut paths = identity::rules();
        paths.extend(recreated::rules());
        let dirs = paths.iter().map(|(r, _)| holder(&r.pattern)).collect();
        BuiltIn { paths: Compiled::new(paths), targets: Compiled::new(recreated::link_rules()), dirs }
    })
}

/// The compiled knowledge of one audited root.
///
/// A [`KnownId`] numbers the built-in path rules, then the built-in
/// target rules, then the rules read from the root.
#[derive(Debug)]
pub struct Knowledge {
    built_in: &'static BuiltIn,
    /// Read from the root: tmpfiles objects, then `/etc/.clean` lines (all
    /// literal paths).
    read: Compiled,
    /// Directories holding a path a rule names.
    dirs: HashSet<Vec<u8>>,
    /// The longest of them: a longer path is none of them, and is never
    /// hashed (a directory deep in a chain costs nothing here).
    longest: usize,
    problems: Vec<Problem>,
}

impl Knowledge {
    /// The built-in knowledge alone (no root to read `/etc/.clean` or
    /// `tmpfiles.d` from).
    pub fn built_in() -> Knowledge {
        Knowledge::compile(Vec::new(), Vec::new(), Vec::new())
    }

    /// The built-in knowledge, and what the root's `/etc/.clean` and
    /// `tmpfiles.d` say. A file that cannot be read is a problem, and
    /// nothing is taken as recreated from it.
    pub fn read(root: &Root) -> Knowledge {
        let mut problems = Vec::new();
        let clean = recreated::read_etc_clean(root).unwrap_or_else(|e| {
            problems.push((b"/etc/.clean".to_vec(), "read", e.to_string()));
            Vec::new()
        });
        let tmpfiles = tmpfiles::Tmpfiles::read(root);
        problems.extend(
            tmpfiles.problems().iter().map(|(path, why)| (path.clone(), "read tmpfiles.d", why.clone())),
        );
        Knowledge::compile(tmpfiles.rules(), clean, problems)
    }

    fn compile(tmpfiles: Vec<(Rule, Says)>, clean: Vec<(Rule, Says)>, problems: Vec<Problem>) -> Knowledge {
        let built_in = built_in_rules();
        let mut read = tmpfiles;
        read.extend(clean);
        let mut dirs = built_in.dirs.clone();
        dirs.extend(read.iter().map(|(r, _)| holder(&r.pattern)));
        let longest = dirs.iter().map(Vec::len).max().unwrap_or(0);
        Knowledge { built_in, read: Compiled::new(read), dirs, longest, problems }
    }

    /// The files that could not be read, for the report.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Whether entries of the directory `dir` may be named by a rule:
    /// asked once per directory; only their entries are looked up.
    pub fn holds(&self, dir: &[u8]) -> bool {
        dir.len() <= self.longest && self.dirs.contains(dir)
    }

    /// The first id of the rules read from the root.
    fn read_base(&self) -> RuleId {
        self.built_in.paths.len() + self.built_in.targets.len()
    }

    /// The rules naming `path` exactly, in the order they are consulted:
    /// identities, tmpfiles objects, the files NixOS recreates, then
    /// `/etc/.clean` (each source in its own order).
    pub fn of_path(&self, path: &[u8]) -> Hits {
        let built_in = &self.built_in.paths;
        let base = self.read_base();
        let mut known: Vec<(u8, Known)> = built_in
            .matcher
            .named(path)
            .into_iter()
            .map(|id| {
                let says = built_in.says[id as usize];
                (if matches!(says, Says::Identity(_)) { 0 } else { 2 }, Known { rule: KnownId(id), says })
            })
            .chain(self.read.matcher.named(path).into_iter().map(|id| {
                let says = self.read.says[id as usize];
                (
                    if matches!(says, Says::Tmpfiles(_)) { 1 } else { 3 },
                    Known { rule: KnownId(base + id), says },
                )
            }))
            .collect();
        known.sort_by_key(|(order, _)| *order);
        let known: Vec<Known> = known.into_iter().map(|(_, k)| k).collect();
        Hits::new(&known)
    }

    /// The rule a symlink's target matches (a link recreated from the
    /// configuration), through the same matcher's decision.
    pub fn of_target(&self, target: &[u8]) -> Option<Known> {
        let targets = &self.built_in.targets;
        let decider = targets.matcher.explain(target).decider()?.rule;
        let says = targets.says[decider as usize];
        Some(Known { rule: KnownId(self.built_in.paths.len() + decider), says })
    }

    /// The rule `id` names.
    pub fn rule(&self, id: KnownId) -> &Rule {
        let paths = self.built_in.paths.len();
        let base = self.read_base();
        if id.0 < paths {
            self.built_in.paths.matcher.rule(id.0)
        } else if id.0 < base {
            self.built_in.targets.matcher.rule(id.0 - paths)
        } else {
            self.read.matcher.rule(id.0 - base)
        }
    }
}

/// The directory whose entries a pattern can name: the parent of a path,
/// or the literal prefix of a glob (knowledge globs have wildcards in
/// their last component only: tested).
fn holder(pattern: &Pattern) -> Vec<u8> {
    match pattern.prefix() {
        Some(path) => match path.iter().rposition(|&b| b == b'/') {
            Some(0) | None => b"/".to_vec(),
            Some(cut) => path[..cut].to_vec(),
        },
        None => pattern.literal_prefix().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::matcher::RuleKind;

    fn tmpfiles_rule(path: &str, object: tmpfiles::Object, line: usize) -> (Rule, Says) {
        let rule = Rule {
            kind: RuleKind::Recreated,
            pattern: Pattern::literal(path.as_bytes()).expect("path"),
            origin: crate::claims::matcher::Origin::RootFile {
                path: b"/etc/tmpfiles.d/t.conf".to_vec(),
                line,
            },
            reason: None,
        };
        (rule, Says::Tmpfiles(object))
    }

    fn origins(k: &Knowledge, path: &str) -> Vec<String> {
        k.of_path(path.as_bytes()).iter().map(|h| k.rule(h.rule).to_ref().origin).collect()
    }

    #[test]
    fn rules_are_consulted_identity_first_then_tmpfiles_then_built_in_then_clean() {
        let clean = recreated::clean_rules(b"resolv.conf\nmachine-id\n");
        let tmp = vec![
            tmpfiles_rule("/etc/resolv.conf", tmpfiles::Object::File, 7),
            tmpfiles_rule("/etc/machine-id", tmpfiles::Object::File, 8),
            tmpfiles_rule("/tmp", tmpfiles::Object::Directory, 9),
        ];
        let k = Knowledge::compile(tmp, clean, Vec::new());
        assert_eq!(
            origins(&k, "/etc/resolv.conf"),
            ["/etc/tmpfiles.d/t.conf:7", "built-in: written at boot by its service", "/etc/.clean:1"]
        );
        assert_eq!(
            origins(&k, "/etc/machine-id"),
            [
                "built-in: identities systemd and NixOS recreate at boot",
                "/etc/tmpfiles.d/t.conf:8",
                "/etc/.clean:2"
            ]
        );
        assert_eq!(origins(&k, "/etc/hosts"), Vec::<String>::new());
        for dir in ["/", "/etc", "/etc/ssh", "/var/lib/nixos", "/var", "/bin", "/var/lib/systemd/catalog"] {
            assert!(k.holds(dir.as_bytes()), "{dir}");
        }
        assert!(!k.holds(b"/var/lib") && !k.holds(b"/home"));
    }

    #[test]
    fn identities_match_names_in_their_directory_only() {
        let k = Knowledge::built_in();
        let says = |p: &[u8]| k.of_path(p).iter().map(|h| h.says).collect::<Vec<_>>();
        assert!(matches!(says(b"/etc/ssh/ssh_host_ed25519_key")[..], [Says::Identity(_)]));
        assert!(says(b"/etc/ssh/sshd_config").is_empty());
        assert!(matches!(says(b"/var/lib/nixos/uid-map")[..], [Says::Identity(_)]));
        assert!(matches!(says(b"/var/lib/nixos/\xff\n")[..], [Says::Identity(_)]), "`*` takes any name");
        assert!(says(b"/var/lib/nixos/d/uid-map").is_empty());
        assert!(says(b"/etc/nixos").is_empty());
    }

    #[test]
    fn link_targets_by_the_same_patterns() {
        let k = Knowledge::built_in();
        let why = |t: &[u8]| k.of_target(t).map(|h| (h.says, k.rule(h.rule).to_ref()));
        let (says, rule) = why(b"/nix/store/abc-home-manager-files/.bashrc").expect("store link");
        assert_eq!(says, Says::Recreated("a link into the Nix store, recreated from the configuration"));
        assert_eq!((rule.kind, rule.pattern.as_str()), (RuleKind::Recreated, "/nix/store/*"));
        assert_eq!(rule.origin, "built-in: links NixOS recreates from its configuration");
        assert!(why(b"/etc/static").is_some() && why(b"/etc/static/systemd/x").is_some());
        assert!(why(b"/etc/staticx").is_none() && why(b"/nix/store").is_none());
        assert!(why(b"/persist/etc/x").is_none() && why(b"relative/nix/store/x").is_none());
    }

    #[test]
    fn every_knowledge_glob_has_wildcards_in_its_last_component_only() {
        let k = Knowledge::built_in();
        for rule in k.built_in.paths.matcher.rules().iter().filter(|r| r.pattern.is_glob()) {
            let text = rule.pattern.text();
            let parent = &text[..text.rfind('/').expect("absolute")];
            assert_eq!(parent.as_bytes(), rule.pattern.literal_prefix(), "{text}");
        }
    }
}
