//! The built-in catalogue of precious paths, and matching findings against
//! it. Its patterns (built-in and `[[precious]]`) are the matcher's
//! [`Pattern`]s: a path, or a glob with exactly the semantics of `--keep`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::claims::matcher::{glob, is_wild, Pattern};
use crate::sys::path::is_ancestor_or_self;

pub use crate::report::{Precious, Severity};

/// (pattern, severity, is a directory, reason)
const BUILT_IN: &[(&str, Severity, bool, &str)] = &[
    (
        "/etc/machine-id",
        Severity::Critical,
        false,
        "machine identity: journal directory name, DHCP client id",
    ),
    (
        "/etc/ssh/ssh_host_*",
        Severity::Critical,
        false,
        "SSH host keys: clients see a new host; also the sops-nix/agenix decryption key",
    ),
    ("/etc/nixos", Severity::Critical, true, "the system's configuration"),
    (
        "/var/lib/nixos",
        Severity::Critical,
        true,
        "uid and gid maps: files on persistent storage get other owners",
    ),
    ("/var/lib/sbctl", Severity::Critical, true, "Secure Boot keys"),
    ("/var/lib/sops-nix", Severity::Critical, true, "sops-nix keys"),
    ("/etc/wireguard", Severity::Critical, true, "WireGuard private keys"),
    ("/var/lib/postgresql", Severity::Critical, true, "PostgreSQL databases"),
    ("/var/lib/mysql", Severity::Critical, true, "MySQL/MariaDB databases"),
    ("/var/lib/redis-*", Severity::Critical, true, "Redis data"),
    ("/root/.ssh", Severity::Critical, true, "root's SSH keys and known hosts"),
    ("/home/*/.ssh", Severity::Critical, true, "SSH keys and known hosts"),
    ("/home/*/.gnupg", Severity::Critical, true, "GnuPG keys"),
    (
        "/var/lib/acme",
        Severity::Important,
        true,
        "TLS certificates and ACME accounts (rate limits on reissue)",
    ),
    ("/var/lib/systemd", Severity::Important, true, "timers' last runs, random seed, coredumps, backlight"),
    ("/var/lib/systemd/random-seed", Severity::Important, false, "the random seed carried across boots"),
    ("/var/log", Severity::Important, true, "logs, including the journal"),
    ("/etc/zfs/zpool.cache", Severity::Important, false, "which pools to import at boot"),
    (
        "/etc/NetworkManager/system-connections",
        Severity::Important,
        true,
        "network connections and Wi-Fi passwords",
    ),
    ("/var/lib/NetworkManager", Severity::Important, true, "NetworkManager state, leases, secret_key"),
    ("/var/lib/iwd", Severity::Important, true, "iwd Wi-Fi networks and passwords"),
    ("/var/db/dhcpcd", Severity::Info, true, "DHCP leases and DUID"),
    ("/var/lib/bluetooth", Severity::Important, true, "pairings with Bluetooth devices"),
    ("/var/lib/tailscale", Severity::Important, true, "Tailscale node identity"),
    ("/var/lib/docker", Severity::Important, true, "Docker images, containers and volumes"),
    ("/var/lib/containers", Severity::Important, true, "Podman images, containers and volumes"),
    ("/var/lib/libvirt", Severity::Important, true, "virtual machines and their disks"),
    ("/var/lib/cups", Severity::Info, true, "printer setup"),
    ("/var/lib/fprint", Severity::Important, true, "enrolled fingerprints"),
    ("/var/lib/colord", Severity::Info, true, "colour profiles"),
    ("/var/lib/private", Severity::Important, true, "state of DynamicUser services"),
    ("/var/spool", Severity::Info, true, "queued mail, print and cron jobs"),
    ("/var/tmp", Severity::Info, true, "temporary files meant to survive reboots"),
    ("/etc/adjtime", Severity::Info, false, "hardware clock drift"),
    ("/home/*/.local/share/keyrings", Severity::Important, true, "keyrings: saved passwords"),
    ("/home/*/.mozilla", Severity::Important, true, "Firefox profiles"),
    ("/home/*/.config/chromium", Severity::Important, true, "Chromium profiles"),
    ("/.rw-etc/upper", Severity::Important, true, "local edits to /etc (its mutable overlay)"),
    ("/etc/passwd", Severity::Important, false, "imperative users (unless users.mutableUsers = false)"),
    (
        "/etc/shadow",
        Severity::Important,
        false,
        "passwords set with passwd (unless users.mutableUsers = false)",
    ),
];

struct Entry {
    precious: Precious,
    /// The entry's pattern, with the matcher's own semantics: a path or a
    /// glob exactly as `--keep` reads it.
    pattern: Pattern,
}

/// The compiled catalogue, indexed by the literal prefix of its entries
/// (the leading components without wildcards: nothing outside it can
/// match), so that a path is tried only against the entries whose prefix
/// it lies in, or (a directory) that lie in it: the cost of a lookup
/// grows with the depth of the entries' prefixes, not with their number.
pub struct Catalogue {
    entries: Vec<Entry>,
    /// A trie of literal prefixes; node 0 is `/`.
    nodes: Vec<Node>,
}

#[derive(Default)]
struct Node {
    children: std::collections::HashMap<Box<[u8]>, usize>,
    /// The entries whose literal prefix is this path.
    here: Vec<usize>,
}

impl Catalogue {
    /// The built-in entries, then `extra` (from manifests).
    pub fn new(extra: Vec<Precious>) -> Catalogue {
        let built_in = BUILT_IN.iter().map(|&(pattern, severity, directory, reason)| Precious {
            pattern: pattern.to_owned(),
            severity,
            reason: reason.to_owned(),
            directory,
            origin: "built-in".to_owned(),
        });
        let entries = built_in
            .chain(extra)
            // Manifests check their entries with this same parser, and
            // every built-in one parses (tested): nothing is dropped here.
            .filter_map(|precious| {
                let pattern = Pattern::parse(precious.pattern.as_bytes()).ok()?;
                Some(Entry { precious, pattern })
            })
            .collect::<Vec<Entry>>();
        let mut nodes = vec![Node::default()];
        for (i, e) in entries.iter().enumerate() {
            let mut at = 0;
            for comp in components(e.pattern.literal_prefix()) {
                at = match nodes[at].children.get(comp) {
                    Some(&next) => next,
                    None => {
                        nodes.push(Node::default());
                        let next = nodes.len() - 1;
                        nodes[at].children.insert(comp.into(), next);
                        next
                    }
                };
            }
            nodes[at].here.push(i);
        }
        Catalogue { entries, nodes }
    }

    /// The entries whose literal prefix is `path` or an ancestor of it, and
    /// the trie node of `path` itself when some prefix reaches that far.
    fn along(&self, path: &[u8]) -> (Vec<usize>, Option<usize>) {
        let mut found = self.nodes[0].here.clone();
        let mut at = Some(0);
        for comp in components(path) {
            at = at.and_then(|n| self.nodes[n].children.get(comp).copied());
            match at {
                Some(n) => found.extend_from_slice(&self.nodes[n].here),
                None => break,
            }
        }
        (found, at)
    }

    /// The entries whose literal prefix lies strictly below trie node `n`.
    fn below(&self, n: usize) -> Vec<usize> {
        let mut found = Vec::new();
        let mut stack: Vec<usize> = self.nodes[n].children.values().copied().collect();
        while let Some(n) = stack.pop() {
            found.extend_from_slice(&self.nodes[n].here);
            stack.extend(self.nodes[n].children.values().copied());
        }
        found
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry's path that `path` is or lies inside, if any.
    fn covers(e: &Entry, path: &[u8]) -> Option<Vec<u8>> {
        e.pattern.match_point(path).map(|(_, at)| at.to_vec())
    }

    /// The entry that applies to a finding at `path`: the most severe (and
    /// then the most specific) entry that `path` is or lies in; else the
    /// most severe one inside `path` for which `contains` says the finding
    /// really holds it (`contains` gets the entry's pattern).
    ///
    /// Also returns the concrete path of the entry (a claim would name it).
    pub fn lookup(
        &self,
        path: &[u8],
        directory: bool,
        contains: &dyn Fn(&str) -> Option<Vec<u8>>,
    ) -> Option<(&Precious, Vec<u8>)> {
        let (mut candidates, node) = self.along(path);
        candidates.sort_unstable();
        let around = |mut around: Vec<usize>| {
            // Entries around it or inside it.
            if let Some(n) = node {
                around.extend(self.below(n));
                around.sort_unstable();
            }
            around
        };
        self.choose(path, directory, contains, &candidates, || around(candidates.clone()))
    }

    /// [`Catalogue::lookup`] among the entries `inside` (those whose
    /// literal prefix holds `path`) and, for a directory, `around` (those
    /// around it or inside it), both in the catalogue's order: ties go to
    /// the entry given last, as `max_by_key` has it.
    fn choose(
        &self,
        path: &[u8],
        directory: bool,
        contains: &dyn Fn(&str) -> Option<Vec<u8>>,
        inside: &[usize],
        around: impl FnOnce() -> Vec<usize>,
    ) -> Option<(&Precious, Vec<u8>)> {
        let key = |(e, _): &(&Entry, Vec<u8>)| (e.precious.severity, e.precious.pattern.len());
        let within = inside
            .iter()
            .map(|&i| &self.entries[i])
            .filter_map(|e| Self::covers(e, path).map(|p| (e, p)))
            .max_by_key(key);
        if let Some((e, p)) = within {
            return Some((&e.precious, p));
        }
        if !directory {
            return None;
        }
        around()
            .iter()
            .map(|&i| &self.entries[i])
            .filter(|e| {
                let literal = e.pattern.literal_prefix();
                is_ancestor_or_self(path, literal) || is_ancestor_or_self(literal, path)
            })
            .filter_map(|e| contains(&e.precious.pattern).map(|p| (e, p)))
            .max_by_key(key)
            .map(|(e, p)| (&e.precious, p))
    }
}

fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// A path matching `pattern` (a catalogue pattern, in the glob dialect of
/// `--keep`) that exists inside `within`, in the live tree. Down to
/// `within`'s depth the only candidate is `within`'s own component (a
/// folded `/home/u1` is not answered by listing all of `/home`); below it,
/// each wild component is matched, as a glob of that same dialect, against
/// the names of the directories reached so far. A candidate counts only
/// when the whole pattern names it.
pub fn find_in(root: &crate::sys::root::Root, pattern: &[u8], within: &[u8]) -> Option<Vec<u8>> {
    // Normalised; a `.` or `..` component (never a way out of the root) is refused.
    let pattern = Pattern::parse(pattern).ok()?;
    let text = pattern.text().into_owned().into_bytes();
    let mut inside = within.split(|&b| b == b'/').filter(|c| !c.is_empty());
    let mut frontier: Vec<Vec<u8>> = vec![Vec::new()];
    for comp in text.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        if let Some(own) = inside.next() {
            let matches = if is_wild(comp) {
                glob(&String::from_utf8_lossy(comp))
                    .ok()?
                    .compile_matcher()
                    .is_match(std::path::Path::new(OsStr::from_bytes(own)))
            } else {
                comp == own
            };
            if !matches {
                return None;
            }
            next.extend(frontier.iter().map(|base| [base.as_slice(), b"/", own].concat()));
        } else if !is_wild(comp) {
            next.extend(frontier.iter().map(|base| [base.as_slice(), b"/", comp].concat()));
        } else {
            let glob = glob(&String::from_utf8_lossy(comp)).ok()?.compile_matcher();
            for base in &frontier {
                let dir = if base.is_empty() { b"/".to_vec() } else { base.clone() };
                let Ok(fd) = root.open_dir(&dir) else { continue };
                let Ok(names) = crate::sys::root::list_names(std::os::fd::AsFd::as_fd(&fd)) else { continue };
                for name in names.iter().filter(|n| glob.is_match(std::path::Path::new(OsStr::from_bytes(n))))
                {
                    next.push([base.as_slice(), b"/", name].concat());
                }
            }
        }
        // Bounded: a pattern is a handful of components over small directories.
        next.truncate(100_000);
        frontier = next;
    }
    frontier.into_iter().find(|p| {
        pattern.match_point(p).is_some_and(|(_, at)| at == p.as_slice())
            && is_ancestor_or_self(within, p)
            // Reached following no symlink: a link `/home/alice -> /srv/alice`
            // does not make `/home` hold `/home/alice/.ssh`.
            && root.stat(p.strip_prefix(b"/").unwrap_or(p)).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(c: &Catalogue, path: &str) -> Option<(Severity, String)> {
        c.lookup(path.as_bytes(), true, &|_| None).map(|(p, _)| (p.severity, p.pattern.clone()))
    }

    /// Only the depths a glob can match are tried: its match point is
    /// still found deep below it, through `{a,b/c}` and `**` too.
    #[test]
    fn globs_match_at_their_own_depths_below_deep_paths() {
        let extra = |pattern: &str| Precious {
            pattern: pattern.into(),
            severity: Severity::Info,
            reason: "r".into(),
            directory: true,
            origin: "test".into(),
        };
        let c = Catalogue::new(vec![extra("/srv/{a,b/c}/data"), extra("/opt/**/keys")]);
        let deep = |top: &str| format!("{top}{}", "/d".repeat(5000));
        let at = |path: &str| c.lookup(path.as_bytes(), false, &|_| None).map(|(_, at)| at);
        assert_eq!(at(&deep("/home/u/.ssh")), Some(b"/home/u/.ssh".to_vec()));
        assert_eq!(at(&deep("/srv/b/c/data")), Some(b"/srv/b/c/data".to_vec()));
        assert_eq!(at(&deep("/srv/a/data")), Some(b"/srv/a/data".to_vec()));
        assert_eq!(at(&deep("/opt/x/y/keys")), Some(b"/opt/x/y/keys".to_vec()));
        assert_eq!(at(&deep("/home/u/.sshx")), None);
        assert_eq!(at(&deep("/d")), None);
    }

    /// The old way: every entry tried.
    fn every_entry<'c>(
        c: &'c Catalogue,
        path: &[u8],
        directory: bool,
        contains: &dyn Fn(&str) -> Option<Vec<u8>>,
    ) -> Option<(&'c Precious, Vec<u8>)> {
        let all: Vec<usize> = (0..c.entries.len()).collect();
        c.choose(path, directory, contains, &all, || all.clone())
    }

    #[test]
    fn the_index_finds_what_trying_every_entry_finds() {
        let entry = |pattern: &str, severity| Precious {
            pattern: pattern.into(),
            severity,
            reason: "r".into(),
            directory: true,
            origin: "test".into(),
        };
        // Ties (same severity, same length) included: the later one wins both ways.
        let c = Catalogue::new(vec![
            entry("/", Severity::Info),
            entry("/srv/**/keys", Severity::Critical),
            entry("/srv/app", Severity::Info),
            entry("/srv/apq", Severity::Info),
            entry("/srv/*/db", Severity::Important),
            entry("/**/x", Severity::Important),
            entry("/home/*/.ssh", Severity::Important),
        ]);
        let paths = [
            "/",
            "/srv",
            "/srv/app",
            "/srv/app/keys",
            "/srv/app/db/x",
            "/srv/apq",
            "/home",
            "/home/a/.ssh/id",
            "/etc/ssh/ssh_host_rsa_key",
            "/var",
            "/var/lib/nixos/x",
            "/x",
            "/a/b/x/c",
            "/home/a",
        ];
        let holds = |p: &str| p.len().is_multiple_of(2).then(|| p.as_bytes().to_vec());
        for path in paths {
            for directory in [false, true] {
                let got = c.lookup(path.as_bytes(), directory, &holds).map(|(p, at)| (p.pattern.clone(), at));
                let want = every_entry(&c, path.as_bytes(), directory, &holds)
                    .map(|(p, at)| (p.pattern.clone(), at));
                assert_eq!(got, want, "{path} (directory: {directory})");
            }
        }
    }

    #[test]
    fn at_least_thirty_entries_with_reasons() {
        let c = Catalogue::new(Vec::new());
        assert_eq!(c.len(), BUILT_IN.len(), "every built-in pattern parses");
        assert!(c.len() >= 30);
        assert!(BUILT_IN.iter().all(|(p, _, _, r)| p.starts_with('/') && !r.is_empty()));
    }

    #[test]
    fn paths_inside_an_entry_take_it() {
        let c = Catalogue::new(Vec::new());
        assert_eq!(
            find(&c, "/var/lib/bluetooth/aa:bb/info"),
            Some((Severity::Important, "/var/lib/bluetooth".into()))
        );
        assert_eq!(
            find(&c, "/etc/ssh/ssh_host_ed25519_key"),
            Some((Severity::Critical, "/etc/ssh/ssh_host_*".into()))
        );
        assert_eq!(
            find(&c, "/home/alice/.ssh/id_ed25519"),
            Some((Severity::Critical, "/home/*/.ssh".into()))
        );
        assert_eq!(find(&c, "/home/alice/.sshx"), None);
        assert_eq!(
            find(&c, "/var/lib/systemd/random-seed"),
            Some((Severity::Important, "/var/lib/systemd/random-seed".into()))
        );
        assert_eq!(find(&c, "/srv/www"), None);
    }

    #[test]
    fn a_group_containing_an_entry_takes_it_only_when_it_holds_it() {
        let c = Catalogue::new(Vec::new());
        let holds = |p: &str| (p == "/var/lib/postgresql").then(|| p.as_bytes().to_vec());
        let got = c.lookup(b"/var/lib", true, &holds).map(|(p, at)| (p.pattern.clone(), at));
        assert_eq!(got, Some(("/var/lib/postgresql".into(), b"/var/lib/postgresql".to_vec())));
        assert!(c.lookup(b"/var/lib", true, &|_| None).is_none());
        assert!(c.lookup(b"/var/lib", false, &holds).is_none(), "a file holds nothing");
        let inside = c.lookup(b"/home/alice/.ssh/id", false, &|_| None).map(|(_, at)| at);
        assert_eq!(inside, Some(b"/home/alice/.ssh".to_vec()), "the concrete path a claim would name");
    }

    #[test]
    fn manifest_entries_extend_it() {
        let extra = Precious {
            pattern: "/srv/app/data".into(),
            severity: Severity::Critical,
            reason: "customer uploads".into(),
            directory: true,
            origin: "m.toml:3".into(),
        };
        let c = Catalogue::new(vec![extra]);
        assert_eq!(find(&c, "/srv/app/data/x"), Some((Severity::Critical, "/srv/app/data".into())));
    }
    #[test]
    fn manifest_globs_match_as_keep_rules_do() {
        let entry = |pattern: &str| Precious {
            pattern: pattern.into(),
            severity: Severity::Critical,
            reason: "r".into(),
            directory: true,
            origin: "m.toml:1".into(),
        };
        let c = Catalogue::new(vec![entry("/srv/{a,b}"), entry("/data/[xy]z"), entry("/opt/\\*lit")]);
        let at =
            |path: &str| c.lookup(path.as_bytes(), false, &|_| None).map(|(p, at)| (p.pattern.clone(), at));
        assert_eq!(at("/srv/a/upload"), Some(("/srv/{a,b}".into(), b"/srv/a".to_vec())));
        assert_eq!(at("/srv/b"), Some(("/srv/{a,b}".into(), b"/srv/b".to_vec())));
        assert_eq!(at("/srv/c/upload"), None);
        assert_eq!(at("/data/yz/f"), Some(("/data/[xy]z".into(), b"/data/yz".to_vec())));
        assert_eq!(at("/opt/*lit"), Some(("/opt/\\*lit".into(), b"/opt/*lit".to_vec())));
        assert_eq!(at("/opt/xlit"), None, "an escaped star is literal");
        // A group holding an entry is found by the entry's literal prefix.
        let holds = |p: &str| (p == "/srv/{a,b}").then(|| b"/srv/a".to_vec());
        let got = c.lookup(b"/srv", true, &holds).map(|(p, at)| (p.pattern.clone(), at));
        assert_eq!(got, Some(("/srv/{a,b}".into(), b"/srv/a".to_vec())));
    }

    #[test]
    fn find_in_reads_globs_in_the_keep_dialect() {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["srv/b/upload", "home/alice/.ssh", "opt/*lit", "opt/xlit", "data/yz"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        let root = crate::sys::root::Root::open(dir.path()).expect("open");
        let find = |pattern: &str, within: &str| {
            find_in(&root, pattern.as_bytes(), within.as_bytes())
                .map(|p| String::from_utf8_lossy(&p).into_owned())
        };
        assert_eq!(find("/srv/{a,b}", "/srv").as_deref(), Some("/srv/b"), "braces as --keep reads them");
        assert_eq!(find("/home/*/.ssh", "/home").as_deref(), Some("/home/alice/.ssh"));
        assert_eq!(find("/home/*/.ssh", "/srv"), None, "only inside `within`");
        assert_eq!(find("/opt/\\*lit", "/opt").as_deref(), Some("/opt/*lit"), "an escaped star is literal");
        assert_eq!(find("/data/[xy]z", "/").as_deref(), Some("/data/yz"));
        assert_eq!(find("/srv/c", "/"), None);
        assert_eq!(find("/srv/../home/*/.ssh", "/"), None, "never a way out of the root");
        assert_eq!(find("/home/*/.ssh", "/home/alice").as_deref(), Some("/home/alice/.ssh"));
        assert_eq!(find("/home/*/.ssh", "/home/alice/.ssh").as_deref(), Some("/home/alice/.ssh"));
        assert_eq!(find("/home/*/.ssh", "/home/bob"), None);
        assert_eq!(find("/srv/{a,b}", "/srv/b/upload"), None, "inside it, not holding it");
        assert_eq!(
            find("/opt/\\*lit", "/opt/*lit").as_deref(),
            Some("/opt/*lit"),
            "escaped, at its own depth"
        );
        assert_eq!(find("/opt/\\*lit", "/opt/xlit"), None, "an escaped star is literal at its own depth too");
    }

    #[test]
    fn find_in_follows_no_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("srv/alice/.ssh")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("home")).expect("mkdir");
        std::os::unix::fs::symlink("/srv/alice", dir.path().join("home/alice")).expect("symlink");
        let root = crate::sys::root::Root::open(dir.path()).expect("open");
        assert_eq!(find_in(&root, b"/home/*/.ssh", b"/home"), None);
        assert_eq!(find_in(&root, b"/srv/*/.ssh", b"/srv"), Some(b"/srv/alice/.ssh".to_vec()));
    }

    /// A folded row deep in a wide directory is answered from its own
    /// path: the names listed at most per step (100,000) are never all of
    /// `/home`'s names.
    #[test]
    fn find_in_below_a_wide_directory_looks_only_at_its_own_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..10_050 {
            std::fs::create_dir_all(dir.path().join(format!("home/u{i:05}"))).expect("mkdir");
        }
        std::fs::create_dir_all(dir.path().join("home/zed/.ssh")).expect("mkdir");
        let root = crate::sys::root::Root::open(dir.path()).expect("open");
        assert_eq!(find_in(&root, b"/home/*/.ssh", b"/home/zed"), Some(b"/home/zed/.ssh".to_vec()));
    }
}
