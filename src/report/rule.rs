//! What decided a verdict: the kind of rule and where it was written.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// What a rule says about the paths it matches.
///
/// `keep` and `ignore` rules are a person's (`--keep`, `--ignore`,
/// manifests, declared claims); `recreated` and `identity` rules are
/// darlings' knowledge of the system (built in, or read from the audited
/// root's `/etc/.clean` and `tmpfiles.d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleKind {
    /// A claim: the path is persisted (checked by the audit).
    Keep,
    /// Fine to lose.
    Ignore,
    /// Recreated identically at boot (NixOS activation, a service,
    /// systemd-tmpfiles): not a loss.
    Recreated,
    /// Recreated at boot with a new value (machine id, host keys): a loss.
    Identity,
}

impl RuleKind {
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Keep => "keep",
            RuleKind::Ignore => "ignore",
            RuleKind::Recreated => "recreated",
            RuleKind::Identity => "identity",
        }
    }
}

/// How a built-in origin starts: `built-in: NixOS activation`.
const BUILT_IN: &str = "built-in: ";

/// Where a rule was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `--keep` / `--ignore` on the command line.
    Flag(&'static str),
    /// A manifest file, 1-based line.
    Manifest { file: PathBuf, line: usize },
    /// A NixOS module's declaration: `impermanence "/persist".directories[3]`,
    /// with the storage root the path must be persisted in.
    Declared { text: String, storage: Vec<u8> },
    /// darlings' own knowledge, named by what it knows:
    /// `built-in: NixOS activation`.
    BuiltIn(&'static str),
    /// A line of a file read inside the audited root, named as the audited
    /// system sees it: `/etc/tmpfiles.d/foo.conf:12`, `/etc/.clean:3`.
    RootFile { path: Vec<u8>, line: usize },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Manifest { file, line } => write!(f, "{}:{line}", file.display()),
            Origin::Declared { text, .. } => f.write_str(text),
            Origin::BuiltIn(what) => write!(f, "{BUILT_IN}{what}"),
            Origin::RootFile { path, line } => write!(f, "{}:{line}", String::from_utf8_lossy(path)),
        }
    }
}

/// What decided a finding's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub kind: RuleKind,
    pub pattern: String,
    /// `--keep`, `--ignore`, `FILE:LINE`, a declaration, or `built-in: …`.
    pub origin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl RuleRef {
    /// darlings' own knowledge (`recreated`, `identity`), not a person's rule.
    pub fn is_knowledge(&self) -> bool {
        matches!(self.kind, RuleKind::Recreated | RuleKind::Identity)
    }

    /// Written into darlings itself, not read from a file.
    pub fn is_built_in(&self) -> bool {
        self.origin.starts_with(BUILT_IN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_read_as_people_write_them() {
        assert_eq!(Origin::Flag("--keep").to_string(), "--keep");
        assert_eq!(Origin::Manifest { file: "/etc/m.toml".into(), line: 3 }.to_string(), "/etc/m.toml:3");
        assert_eq!(Origin::BuiltIn("NixOS activation").to_string(), "built-in: NixOS activation");
        let file = Origin::RootFile { path: b"/etc/tmpfiles.d/a b\xff.conf".to_vec(), line: 12 };
        assert_eq!(file.to_string(), "/etc/tmpfiles.d/a b\u{fffd}.conf:12");
    }

    #[test]
    fn kinds_are_named_alike_in_words_and_json() {
        for kind in [RuleKind::Keep, RuleKind::Ignore, RuleKind::Recreated, RuleKind::Identity] {
            let json = serde_json::to_value(kind).expect("serialises");
            assert_eq!(json, serde_json::Value::from(kind.name()));
        }
    }
}
