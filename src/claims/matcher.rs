//! Rules and the compiled matcher that decides, per path, which rule applies.
//!
//! # Patterns
//!
//! A pattern a person writes (`--keep`, `--ignore`, manifests), and every
//! pattern of darlings' own knowledge (the catalogue, what NixOS recreates,
//! identities), is an absolute path. Without any of `* ? [ {` it is a
//! *prefix*: it names the path and everything under it. Otherwise it is a
//! *glob* (`*` and `?` never cross `/`, `**` does, `\` escapes) and it too
//! names every path it matches and everything under those. A path declared
//! by a NixOS module is always a prefix ([`Pattern::literal`]), whatever
//! bytes it holds. Patterns are normalised: repeated and trailing `/` are
//! dropped; `.` and `..` components and NUL bytes are refused.
//!
//! # Which rule wins
//!
//! Every rule that matches a path or one of its ancestors applies to it.
//! A rule's *match point* is the shallowest ancestor-or-self it matches.
//! Among the rules that apply, the decider is chosen by, in order:
//!
//! 1. the deepest match point (a rule about `/var/lib/x` beats one about `/var`);
//! 2. a prefix beats a glob at the same match point;
//! 3. between globs, more literal (non-wildcard) bytes win;
//! 4. keep beats ignore (a claim is checked, so nothing is hidden);
//! 5. the rule given first wins (command line before manifests, manifests
//!    in the order given, rules in file order).
//!
//! So `--ignore /var/cache --keep /var/cache/pkg` ignores the cache but
//! checks the claim on `pkg` (the walk descends into an ignored directory
//! only when a keep rule may match below it), and `--keep /var/lib
//! --ignore /var/lib/x/tmp` lets `tmp` go even when the claim on `/var/lib`
//! is broken.
//!
//! The walk decides incrementally with a [`Cursor`] per directory (a trie
//! node for prefix rules, the decision inherited from the parent);
//! [`Matcher::explain`] decides from scratch. They agree (tested).
//!
//! # One glob dialect
//!
//! Every glob darlings reads — rules, manifests, the catalogue, its
//! knowledge — is compiled once, by [`glob`], with the same options; a
//! [`Matcher`] reuses the compiled glob of each [`Pattern`].

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::{Candidate, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

use crate::report::RuleRef;
pub use crate::report::{Origin, RuleKind};
use crate::sys::path::{ancestors_or_self, depth_of, is_ancestor_or_self};

#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: RuleKind,
    pub pattern: Pattern,
    pub origin: Origin,
    pub reason: Option<String>,
}

impl Rule {
    /// The rule as a finding names it.
    pub fn to_ref(&self) -> RuleRef {
        RuleRef {
            kind: self.kind,
            pattern: self.pattern.text().into_owned(),
            origin: match &self.origin {
                Origin::Flag(f) => (*f).to_owned(),
                o => o.to_string(),
            },
            reason: self.reason.clone(),
        }
    }
}

/// A normalised pattern.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// A literal absolute path: itself and everything under it.
    Prefix(Vec<u8>),
    Glob(Box<Glob>),
}

#[derive(Debug, Clone)]
pub struct Glob {
    text: String,
    /// Compiled once, by [`glob`].
    glob: globset::Glob,
    /// The leading components without wildcards (`/home` for `/home/*/.cache`).
    literal_prefix: Vec<u8>,
    /// Bytes that are not wildcards: the glob's specificity.
    literal_len: usize,
    /// The depths a match can lie at: from the literal prefix's to the
    /// number of `/` in the text (`*`, `?` and classes never match `/`;
    /// only `**` does, and then there is no bound).
    depths: (u32, u32),
    matcher: GlobMatcher,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("pattern is empty")]
    Empty,
    #[error("pattern must be an absolute path (start with /)")]
    NotAbsolute,
    #[error("pattern must not contain `.` or `..` components")]
    DotComponent,
    #[error("pattern must not contain a NUL byte")]
    Nul,
    #[error("a glob pattern must be valid UTF-8")]
    NotUtf8,
    #[error("invalid glob: {0}")]
    Glob(String),
    #[error("a glob pattern may be at most {MAX_GLOB_LEN} bytes long")]
    TooLong,
}

const GLOB_META: &[u8] = b"*?[{";

/// How many glob patterns darlings compiles at most, rules and catalogue
/// entries together. Each glob is an automaton of its own (and one more
/// in the set that matches them all): some 20 KiB with `**`, so that
/// 10,000 rules like `/data/**/x*/**/y*` took 200 MiB and 100,000 took
/// 1.9 GiB. Past this many, the rules are refused before they are
/// compiled. Literal paths (every path a NixOS module declares) cost a
/// trie node each and have no such limit.
pub const MAX_GLOBS: usize = 4096;

/// The longest glob darlings compiles, in bytes: an automaton grows with
/// its pattern (a glob of 600 KB made the compiler give up), and no path
/// worth a rule is longer than `PATH_MAX`.
pub const MAX_GLOB_LEN: usize = 4096;

/// How many bytes of glob patterns darlings compiles at most, all
/// together: 4,000 globs of 400 bytes took 1 GB.
pub const MAX_GLOB_BYTES: usize = 128 * 1024;

/// Why more than [`MAX_GLOBS`] globs, or more than [`MAX_GLOB_BYTES`] of
/// them, are refused, in words.
pub fn too_many_globs() -> String {
    format!(
        "darlings compiles at most {MAX_GLOBS} glob patterns of {} KiB in all, rules and [[precious]] \
         entries together (each is an automaton of its own, which grows with the pattern): use fewer or \
         shorter globs, or literal paths, which have no limit",
        MAX_GLOB_BYTES / 1024
    )
}

/// Whether a pattern as written is a glob (see [`Pattern::parse`]).
pub fn is_glob_text(raw: &[u8]) -> bool {
    raw.iter().any(|b| GLOB_META.contains(b))
}

/// Compiles a glob in darlings' one dialect: `*` and `?` never cross `/`,
/// `**` does, `[...]` and `{a,b}` as usual, `\` escapes. Every glob of
/// every rule, manifest, catalogue entry and piece of knowledge is compiled
/// here (a path component of a pattern is a glob of this dialect too).
pub fn glob(text: &str) -> Result<globset::Glob, PatternError> {
    GlobBuilder::new(text)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| PatternError::Glob(e.kind().to_string()))
}

/// Whether one component of a pattern holds a wildcard (it is then a glob
/// of [`glob`]'s dialect; otherwise it names itself).
pub fn is_wild(component: &[u8]) -> bool {
    component.iter().any(|b| GLOB_META.contains(b) || *b == b'\\')
}

/// An absolute path with repeated and trailing `/` dropped; empty,
/// relative, NUL and `.` / `..` refused.
fn normalise(raw: &[u8]) -> Result<Vec<u8>, PatternError> {
    if raw.is_empty() {
        return Err(PatternError::Empty);
    }
    if raw[0] != b'/' {
        return Err(PatternError::NotAbsolute);
    }
    if raw.contains(&0) {
        return Err(PatternError::Nul);
    }
    let mut norm = Vec::with_capacity(raw.len());
    for comp in raw.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if comp == b"." || comp == b".." {
            return Err(PatternError::DotComponent);
        }
        norm.push(b'/');
        norm.extend_from_slice(comp);
    }
    if norm.is_empty() {
        norm.push(b'/');
    }
    Ok(norm)
}

impl Pattern {
    /// A pattern a person wrote (`--keep`, `--ignore`, manifests): a glob
    /// when it has any of `* ? [ {`, else a prefix.
    pub fn parse(raw: &[u8]) -> Result<Pattern, PatternError> {
        let norm = normalise(raw)?;
        if !norm.iter().any(|b| GLOB_META.contains(b)) {
            return Ok(Pattern::Prefix(norm));
        }
        if norm.len() > MAX_GLOB_LEN {
            return Err(PatternError::TooLong);
        }
        let text = String::from_utf8(norm).map_err(|_| PatternError::NotUtf8)?;
        let glob = glob(&text)?;
        let mut literal_prefix = Vec::new();
        for comp in text.split('/').filter(|c| !c.is_empty()) {
            if is_wild(comp.as_bytes()) {
                break;
            }
            literal_prefix.push(b'/');
            literal_prefix.extend_from_slice(comp.as_bytes());
        }
        if literal_prefix.is_empty() {
            literal_prefix.push(b'/');
        }
        let literal_len = text.bytes().filter(|b| !GLOB_META.contains(b) && !b"]}".contains(b)).count();
        let deepest =
            if text.contains("**") { u32::MAX } else { text.bytes().filter(|&b| b == b'/').count() as u32 };
        Ok(Pattern::Glob(Box::new(Glob {
            depths: (depth_of(&literal_prefix), deepest),
            matcher: glob.compile_matcher(),
            glob,
            text,
            literal_prefix,
            literal_len,
        })))
    }

    /// A literal path, whatever bytes it holds: a path declared by a NixOS
    /// module (`/var/lib/app[1]` names exactly that directory). Normalised
    /// like [`Pattern::parse`].
    pub fn literal(raw: &[u8]) -> Result<Pattern, PatternError> {
        normalise(raw).map(Pattern::Prefix)
    }

    /// The pattern as written (normalised), for people and JSON.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Pattern::Prefix(p) => String::from_utf8_lossy(p),
            Pattern::Glob(g) => std::borrow::Cow::Borrowed(&g.text),
        }
    }

    pub fn is_glob(&self) -> bool {
        matches!(self, Pattern::Glob(_))
    }

    /// The literal path of a prefix pattern.
    pub fn prefix(&self) -> Option<&[u8]> {
        match self {
            Pattern::Prefix(p) => Some(p),
            Pattern::Glob(_) => None,
        }
    }

    /// The leading components without wildcards (the whole path of a
    /// prefix): nothing outside it can match.
    pub fn literal_prefix(&self) -> &[u8] {
        match self {
            Pattern::Prefix(p) => p,
            Pattern::Glob(g) => &g.literal_prefix,
        }
    }

    /// The shallowest ancestor-or-self of `path` the pattern names (its
    /// match point), with its depth.
    pub fn match_point<'p>(&self, path: &'p [u8]) -> Option<(u32, &'p [u8])> {
        match self {
            Pattern::Prefix(p) => is_ancestor_or_self(p, path).then(|| (depth_of(p), &path[..p.len()])),
            // Only the ancestors at the depths it can match are tried: a
            // deep path costs its length, not its depth times its length.
            Pattern::Glob(g) => ancestors_or_self(path)
                .skip_while(|&(d, _)| d < g.depths.0)
                .take_while(|&(d, _)| d <= g.depths.1)
                .find(|(_, a)| g.matcher.is_match(Path::new(OsStr::from_bytes(a)))),
        }
    }

    fn literal_len(&self) -> usize {
        match self {
            Pattern::Prefix(p) => p.len(),
            Pattern::Glob(g) => g.literal_len,
        }
    }
}

pub type RuleId = u32;

/// A rule applying to a path, with the depth of its match point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub rule: RuleId,
    pub depth: u32,
}

/// The matcher's position at one directory of the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    node: Option<u32>,
    depth: u32,
    /// The rule deciding this path, if any.
    pub decided: Option<Decision>,
}

#[derive(Debug, Default)]
struct TrieNode {
    children: HashMap<Box<[u8]>, u32>,
    /// Prefix rules naming exactly this path.
    here: Vec<RuleId>,
    /// A keep prefix rule names this path or one below it.
    keep_below: bool,
}

/// One rule that applies to an explained path.
#[derive(Debug, Clone)]
pub struct Match {
    pub rule: RuleId,
    /// The match point: the shallowest ancestor-or-self the rule matches.
    pub at: Vec<u8>,
}

/// Every rule that applies to a path, best first; the first decides.
#[derive(Debug, Clone, Default)]
pub struct Explanation {
    pub matches: Vec<Match>,
}

impl Explanation {
    pub fn decider(&self) -> Option<&Match> {
        self.matches.first()
    }
}

/// The compiled rules.
#[derive(Debug)]
pub struct Matcher {
    rules: Vec<Rule>,
    trie: Vec<TrieNode>,
    globs: GlobSet,
    glob_rules: Vec<RuleId>,
    /// The literal prefix of every glob rule (nothing outside them matches).
    glob_prefixes: Vec<Vec<u8>>,
    keep_glob_prefixes: Vec<Vec<u8>>,
}

thread_local! {
    static GLOB_HITS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl Matcher {
    pub fn new(rules: Vec<Rule>) -> Matcher {
        let mut trie = vec![TrieNode::default()];
        let mut set = GlobSetBuilder::new();
        let mut glob_rules = Vec::new();
        let mut glob_prefixes = Vec::new();
        let mut keep_glob_prefixes = Vec::new();
        for (id, rule) in rules.iter().enumerate() {
            let id = id as RuleId;
            match &rule.pattern {
                Pattern::Prefix(path) => {
                    let mut node = 0usize;
                    if rule.kind == RuleKind::Keep {
                        trie[0].keep_below = true;
                    }
                    for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
                        let next = match trie[node].children.get(comp) {
                            Some(&n) => n as usize,
                            None => {
                                trie.push(TrieNode::default());
                                let n = trie.len() - 1;
                                trie[node].children.insert(comp.into(), n as u32);
                                n
                            }
                        };
                        node = next;
                        if rule.kind == RuleKind::Keep {
                            trie[node].keep_below = true;
                        }
                    }
                    trie[node].here.push(id);
                }
                Pattern::Glob(g) => {
                    set.add(g.glob.clone());
                    glob_rules.push(id);
                    glob_prefixes.push(g.literal_prefix.clone());
                    if rule.kind == RuleKind::Keep {
                        keep_glob_prefixes.push(g.literal_prefix.clone());
                    }
                }
            }
        }
        // Nothing to compile without globs (a set of literal paths).
        let globs = if glob_rules.is_empty() {
            GlobSet::empty()
        } else {
            set.build().unwrap_or_else(|_| GlobSet::empty())
        };
        Matcher { rules, trie, globs, glob_rules, glob_prefixes, keep_glob_prefixes }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, id: RuleId) -> &Rule {
        &self.rules[id as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The sort key of a decision: greater is more specific.
    fn rank(&self, d: Decision) -> (u32, bool, usize, bool, Reverse<RuleId>) {
        let rule = self.rule(d.rule);
        (
            d.depth,
            !rule.pattern.is_glob(),
            rule.pattern.literal_len(),
            rule.kind == RuleKind::Keep,
            Reverse(d.rule),
        )
    }

    fn better(&self, a: Option<Decision>, b: Decision) -> Option<Decision> {
        match a {
            Some(a) if self.rank(a) >= self.rank(b) => Some(a),
            _ => Some(b),
        }
    }

    /// The cursor of `/`.
    pub fn root(&self) -> Cursor {
        let mut decided = None;
        for &r in &self.trie[0].here {
            decided = self.better(decided, Decision { rule: r, depth: 0 });
        }
        if !self.glob_rules.is_empty() {
            for i in self.globs.matches(Path::new("/")) {
                decided = self.better(decided, Decision { rule: self.glob_rules[i], depth: 0 });
            }
        }
        Cursor { node: Some(0), depth: 0, decided }
    }

    /// The cursor of `path`, a child named `name` of the directory at `parent`.
    pub fn step(&self, parent: &Cursor, path: &[u8], name: &[u8]) -> Cursor {
        let depth = parent.depth + 1;
        let node = parent.node.and_then(|n| self.trie[n as usize].children.get(name).copied());
        let mut decided = parent.decided;
        if let Some(n) = node {
            for &r in &self.trie[n as usize].here {
                decided = self.better(decided, Decision { rule: r, depth });
            }
        }
        if !self.glob_rules.is_empty() {
            let candidate = Candidate::new(Path::new(OsStr::from_bytes(path)));
            GLOB_HITS.with_borrow_mut(|hits| {
                self.globs.matches_candidate_into(&candidate, hits);
                for &i in hits.iter() {
                    let rule = self.glob_rules[i];
                    if parent.decided.is_some_and(|d| d.rule == rule) {
                        continue;
                    }
                    // Already applied from a shallower match point (and lost there).
                    if self.first_match_depth(rule, path) < depth {
                        continue;
                    }
                    decided = self.better(decided, Decision { rule, depth });
                }
            });
        }
        Cursor { node, depth, decided }
    }

    /// Whether a keep rule may match `path` or something below it (the walk
    /// must then descend into an ignored directory to check that claim).
    pub fn keep_below(&self, cursor: &Cursor, path: &[u8]) -> bool {
        if cursor.node.is_some_and(|n| self.trie[n as usize].keep_below) {
            return true;
        }
        self.keep_glob_prefixes.iter().any(|p| is_ancestor_or_self(path, p) || is_ancestor_or_self(p, path))
    }

    /// The depth of the shallowest ancestor-or-self of `path` that the glob
    /// rule matches (`u32::MAX` when none does).
    fn first_match_depth(&self, rule: RuleId, path: &[u8]) -> u32 {
        self.rule(rule).pattern.match_point(path).map_or(u32::MAX, |(d, _)| d)
    }

    /// Every rule whose pattern names `path` itself — its match point is
    /// `path`, not an ancestor — in the order the rules were given. Costs
    /// a trie descent, and a glob match only when a glob's literal prefix
    /// holds `path`.
    pub fn named(&self, path: &[u8]) -> Vec<RuleId> {
        let mut found = Vec::new();
        let mut node = Some(0usize);
        for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            node = node.and_then(|n| self.trie[n].children.get(comp)).map(|&n| n as usize);
        }
        if let Some(n) = node {
            found.extend_from_slice(&self.trie[n].here);
        }
        if self.glob_prefixes.iter().any(|p| is_ancestor_or_self(p, path)) {
            let depth = depth_of(path);
            for i in self.globs.matches(Path::new(OsStr::from_bytes(path))) {
                let rule = self.glob_rules[i];
                if self.first_match_depth(rule, path) == depth {
                    found.push(rule);
                }
            }
            found.sort_unstable();
        }
        found
    }

    /// Every rule that applies to `path`, decided from scratch.
    pub fn explain(&self, path: &[u8]) -> Explanation {
        let mut found: Vec<(Decision, Vec<u8>)> = Vec::new();
        for (id, rule) in self.rules.iter().enumerate() {
            let id = id as RuleId;
            if let Some((depth, at)) = rule.pattern.match_point(path) {
                found.push((Decision { rule: id, depth }, at.to_vec()));
            }
        }
        found.sort_by_key(|(d, _)| Reverse(self.rank(*d)));
        Explanation { matches: found.into_iter().map(|(d, at)| Match { rule: d.rule, at }).collect() }
    }

    /// Why `winner` beats `other` (both from one [`Explanation`]), in words.
    pub fn why_wins(&self, winner: &Match, other: &Match) -> &'static str {
        let (a, b) = (self.rule(winner.rule), self.rule(other.rule));
        if depth_of(&winner.at) != depth_of(&other.at) {
            "it matches deeper"
        } else if a.pattern.is_glob() != b.pattern.is_glob() {
            "a path beats a glob at the same depth"
        } else if a.pattern.literal_len() != b.pattern.literal_len() {
            "it has more literal characters"
        } else if a.kind != b.kind {
            "keep beats ignore at equal specificity"
        } else {
            "it was given first"
        }
    }

    /// The decision for `path` computed the way the walk does, one
    /// component at a time (for tests and `explain`'s consistency check).
    pub fn decide_incrementally(&self, path: &[u8]) -> Option<Decision> {
        let mut cursor = self.root();
        for (_, prefix) in ancestors_or_self(path).skip(1) {
            let name = prefix.rsplit(|&b| b == b'/').next().unwrap_or(prefix);
            cursor = self.step(&cursor, prefix, name);
        }
        cursor.decided
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: RuleKind, pat: &str) -> Rule {
        Rule {
            kind,
            pattern: Pattern::parse(pat.as_bytes()).expect("valid pattern"),
            origin: Origin::Flag(if kind == RuleKind::Keep { "--keep" } else { "--ignore" }),
            reason: None,
        }
    }

    fn decide(m: &Matcher, path: &str) -> Option<String> {
        // The claim checker reads the incremental decision's depth where
        // explain gives the match point: both must agree on rule and place.
        let inc = m.decide_incrementally(path.as_bytes()).map(|d| (d.rule, d.depth));
        let scratch = m.explain(path.as_bytes()).decider().map(|x| (x.rule, depth_of(&x.at)));
        assert_eq!(inc, scratch, "incremental and explain disagree on {path}");
        inc.map(|(r, _)| format!("{} {}", m.rule(r).kind.name(), m.rule(r).pattern.text()))
    }

    #[test]
    fn patterns_are_normalised_and_checked() {
        assert_eq!(Pattern::parse(b"/var//lib/").expect("ok").prefix(), Some(&b"/var/lib"[..]));
        assert_eq!(Pattern::parse(b"///").expect("ok").prefix(), Some(&b"/"[..]));
        assert_eq!(Pattern::parse(b"var/lib").unwrap_err(), PatternError::NotAbsolute);
        assert_eq!(Pattern::parse(b"/var/../etc").unwrap_err(), PatternError::DotComponent);
        assert_eq!(Pattern::parse(b"").unwrap_err(), PatternError::Empty);
        assert_eq!(Pattern::parse(b"/x/\xff*").unwrap_err(), PatternError::NotUtf8);
        assert!(matches!(Pattern::parse(b"/x/[a").unwrap_err(), PatternError::Glob(_)));
        assert!(Pattern::parse(b"/home/*/.cache").expect("ok").is_glob());
        assert_eq!(Pattern::parse(b"/\xff/x").expect("bytes ok").prefix(), Some(&b"/\xff/x"[..]));
        assert_eq!(Pattern::parse(b"/a\0b").unwrap_err(), PatternError::Nul);
    }

    #[test]
    fn literal_patterns_never_glob() {
        let p = Pattern::literal(b"/var//lib/app[1]/").expect("ok");
        assert_eq!(p.prefix(), Some(&b"/var/lib/app[1]"[..]));
        assert!(!p.is_glob());
        let odd = Pattern::literal(b"/srv/{a,b}/*?\\x\xff").expect("ok");
        assert_eq!(odd.prefix(), Some(&b"/srv/{a,b}/*?\\x\xff"[..]));
        assert_eq!(Pattern::literal(b"/a\0b").unwrap_err(), PatternError::Nul);
        assert_eq!(Pattern::literal(b"/a/../b").unwrap_err(), PatternError::DotComponent);
        assert_eq!(Pattern::literal(b"a[1]").unwrap_err(), PatternError::NotAbsolute);
        assert_eq!(Pattern::literal(b"").unwrap_err(), PatternError::Empty);

        let m = Matcher::new(vec![Rule {
            kind: RuleKind::Keep,
            pattern: Pattern::literal(b"/var/lib/app[1]").expect("ok"),
            origin: Origin::Flag("--keep"),
            reason: None,
        }]);
        assert_eq!(decide(&m, "/var/lib/app[1]/db").as_deref(), Some("keep /var/lib/app[1]"));
        assert_eq!(decide(&m, "/var/lib/app1"), None, "not a character class");
    }

    #[test]
    fn ancestors_are_listed_with_depths() {
        let got: Vec<(u32, &[u8])> = ancestors_or_self(b"/a/b c/d").collect();
        assert_eq!(got, vec![(0, &b"/"[..]), (1, &b"/a"[..]), (2, &b"/a/b c"[..]), (3, &b"/a/b c/d"[..])]);
        let root: Vec<(u32, &[u8])> = ancestors_or_self(b"/").collect();
        assert_eq!(root, vec![(0, &b"/"[..])]);
        assert!(is_ancestor_or_self(b"/var", b"/var/lib"));
        assert!(!is_ancestor_or_self(b"/var", b"/variable"));
        assert!(is_ancestor_or_self(b"/", b"/x"));
    }

    #[test]
    fn prefix_rules_cover_their_subtree() {
        let m = Matcher::new(vec![rule(RuleKind::Keep, "/var/lib/bluetooth")]);
        assert_eq!(decide(&m, "/var/lib/bluetooth").as_deref(), Some("keep /var/lib/bluetooth"));
        assert_eq!(decide(&m, "/var/lib/bluetooth/aa:bb/info").as_deref(), Some("keep /var/lib/bluetooth"));
        assert_eq!(decide(&m, "/var/lib/bluetoothx"), None);
        assert_eq!(decide(&m, "/var/lib"), None);
    }

    #[test]
    fn deeper_rules_win_either_way() {
        let m = Matcher::new(vec![
            rule(RuleKind::Ignore, "/var/cache"),
            rule(RuleKind::Keep, "/var/cache/pkg"),
            rule(RuleKind::Keep, "/var/lib"),
            rule(RuleKind::Ignore, "/var/lib/x/tmp"),
        ]);
        assert_eq!(decide(&m, "/var/cache/a").as_deref(), Some("ignore /var/cache"));
        assert_eq!(decide(&m, "/var/cache/pkg/b").as_deref(), Some("keep /var/cache/pkg"));
        assert_eq!(decide(&m, "/var/lib/x/tmp/1").as_deref(), Some("ignore /var/lib/x/tmp"));
        assert_eq!(decide(&m, "/var/lib/x/data").as_deref(), Some("keep /var/lib"));
    }

    #[test]
    fn ties_go_to_prefix_then_literal_length_then_keep_then_order() {
        let m = Matcher::new(vec![
            rule(RuleKind::Ignore, "/home/*/.cache"),
            rule(RuleKind::Keep, "/home/u/.cache"),
        ]);
        assert_eq!(decide(&m, "/home/u/.cache/x").as_deref(), Some("keep /home/u/.cache"));
        assert_eq!(decide(&m, "/home/v/.cache/x").as_deref(), Some("ignore /home/*/.cache"));

        let m = Matcher::new(vec![rule(RuleKind::Ignore, "/srv/*/*"), rule(RuleKind::Keep, "/srv/*/data")]);
        assert_eq!(decide(&m, "/srv/a/data").as_deref(), Some("keep /srv/*/data"));
        assert_eq!(decide(&m, "/srv/a/other").as_deref(), Some("ignore /srv/*/*"));

        let m = Matcher::new(vec![rule(RuleKind::Ignore, "/opt"), rule(RuleKind::Keep, "/opt")]);
        assert_eq!(decide(&m, "/opt/x").as_deref(), Some("keep /opt"));

        let m = Matcher::new(vec![rule(RuleKind::Ignore, "/opt/*"), rule(RuleKind::Ignore, "/opt/?")]);
        assert_eq!(decide(&m, "/opt/x").as_deref(), Some("ignore /opt/*"));
    }

    #[test]
    fn globs_apply_from_their_shallowest_match() {
        // `**` matches every depth below .cache; it applies from the first
        // entry below .cache, so a prefix rule at that depth still wins.
        let m = Matcher::new(vec![
            rule(RuleKind::Ignore, "/home/*/.cache/**"),
            rule(RuleKind::Keep, "/home/u/.cache/keepme"),
        ]);
        assert_eq!(decide(&m, "/home/u/.cache"), None);
        assert_eq!(decide(&m, "/home/u/.cache/junk/deep/file").as_deref(), Some("ignore /home/*/.cache/**"));
        assert_eq!(decide(&m, "/home/u/.cache/keepme/deep").as_deref(), Some("keep /home/u/.cache/keepme"));
        // A glob that lost at its match point does not come back deeper.
        let m = Matcher::new(vec![rule(RuleKind::Ignore, "/a/**"), rule(RuleKind::Keep, "/a/b")]);
        assert_eq!(decide(&m, "/a/b/c/d").as_deref(), Some("keep /a/b"));
        assert_eq!(decide(&m, "/a/x/c").as_deref(), Some("ignore /a/**"));
    }

    #[test]
    fn star_does_not_cross_slash() {
        let m = Matcher::new(vec![rule(RuleKind::Ignore, "/home/*/junk")]);
        assert_eq!(decide(&m, "/home/u/junk/x").as_deref(), Some("ignore /home/*/junk"));
        assert_eq!(decide(&m, "/home/u/sub/junk"), None);
    }

    #[test]
    fn keep_below_finds_nested_claims() {
        let m = Matcher::new(vec![
            rule(RuleKind::Ignore, "/var"),
            rule(RuleKind::Keep, "/var/lib/x"),
            rule(RuleKind::Keep, "/srv/*/data"),
        ]);
        let root = m.root();
        let var = m.step(&root, b"/var", b"var");
        assert!(m.keep_below(&var, b"/var"));
        let cache = m.step(&var, b"/var/cache", b"cache");
        assert!(!m.keep_below(&cache, b"/var/cache"));
        let srv = m.step(&root, b"/srv", b"srv");
        assert!(m.keep_below(&srv, b"/srv"));
        let srv_a = m.step(&srv, b"/srv/a", b"a");
        assert!(m.keep_below(&srv_a, b"/srv/a"));
        let etc = m.step(&root, b"/etc", b"etc");
        assert!(!m.keep_below(&etc, b"/etc"));
    }

    #[test]
    fn explain_lists_every_applying_rule_best_first() {
        let m = Matcher::new(vec![
            rule(RuleKind::Keep, "/"),
            rule(RuleKind::Ignore, "/var/*"),
            rule(RuleKind::Keep, "/var/log"),
            rule(RuleKind::Ignore, "/etc"),
        ]);
        let e = m.explain(b"/var/log/x");
        let got: Vec<(u32, Vec<u8>)> = e.matches.iter().map(|x| (x.rule, x.at.clone())).collect();
        assert_eq!(got, vec![(2, b"/var/log".to_vec()), (1, b"/var/log".to_vec()), (0, b"/".to_vec())]);
    }

    #[test]
    fn named_lists_the_rules_naming_exactly_a_path_in_given_order() {
        let m = Matcher::new(vec![
            rule(RuleKind::Ignore, "/etc/ssh/ssh_host_*"),
            rule(RuleKind::Keep, "/etc/ssh/ssh_host_rsa_key"),
            rule(RuleKind::Ignore, "/etc"),
            rule(RuleKind::Keep, "/var/lib/nixos/*"),
            rule(RuleKind::Ignore, "/srv/**"),
        ]);
        assert_eq!(m.named(b"/etc/ssh/ssh_host_rsa_key"), vec![0, 1]);
        assert_eq!(m.named(b"/etc/ssh/ssh_host_ed25519_key"), vec![0]);
        assert_eq!(m.named(b"/etc/ssh/sshd_config"), Vec::<RuleId>::new());
        assert_eq!(m.named(b"/etc"), vec![2]);
        assert_eq!(m.named(b"/etc/hosts"), Vec::<RuleId>::new(), "covered by /etc, not named by it");
        assert_eq!(m.named(b"/var/lib/nixos/uid-map"), vec![3]);
        assert_eq!(m.named(b"/var/lib/nixos/a/b"), Vec::<RuleId>::new(), "`*` does not cross /");
        assert_eq!(m.named(b"/srv/a"), vec![4]);
        assert_eq!(m.named(b"/srv/a/b"), Vec::<RuleId>::new(), "named at /srv/a already");
        assert_eq!(m.named(b"/"), Vec::<RuleId>::new());
    }

    #[test]
    fn one_glob_dialect() {
        let g = |text: &str, path: &str| glob(text).expect("valid").compile_matcher().is_match(path);
        assert!(g("/a/*/c", "/a/b/c") && !g("/a/*", "/a/b/c"), "* stays in a component");
        assert!(g("/a/**", "/a/b/c"));
        assert!(g("/srv/{x,y}", "/srv/y") && !g("/srv/{x,y}", "/srv/z"));
        assert!(g("/opt/\\*lit", "/opt/*lit") && !g("/opt/\\*lit", "/opt/xlit"), "\\ escapes");
        assert!(matches!(glob("/x/[a"), Err(PatternError::Glob(_))));
        assert!(is_wild(b"{a,b}") && is_wild(b"x\\y") && is_wild(b"a*") && !is_wild(b"plain"));
    }

    #[test]
    fn incremental_and_scratch_agree_on_many_paths() {
        let m = Matcher::new(vec![
            rule(RuleKind::Ignore, "/a"),
            rule(RuleKind::Keep, "/a/b"),
            rule(RuleKind::Ignore, "/a/*/c"),
            rule(RuleKind::Keep, "/a/**/d"),
            rule(RuleKind::Ignore, "/*/b/c/d"),
            rule(RuleKind::Keep, "/b/{x,y}"),
            rule(RuleKind::Ignore, "/b/?/z"),
        ]);
        let names = ["a", "b", "c", "d", "x", "y", "z"];
        // Every path of up to 5 components over these names.
        let mut paths: Vec<String> = vec![String::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for p in &paths {
                for n in names {
                    next.push(format!("{p}/{n}"));
                }
            }
            for p in &next {
                decide(&m, p);
            }
            paths = next;
        }
    }
}
