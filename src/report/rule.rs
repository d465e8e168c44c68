//! What decided a verdict: the kind of rule and where it was written.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// What a rule says about the paths it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleKind {
    /// A claim: the path is persisted (checked by the audit).
    Keep,
    /// Fine to lose.
    Ignore,
}

impl RuleKind {
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Keep => "keep",
            RuleKind::Ignore => "ignore",
        }
    }
}

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
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Manifest { file, line } => write!(f, "{}:{line}", file.display()),
            Origin::Declared { text, .. } => f.write_str(text),
        }
    }
}

/// What decided a finding's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub kind: RuleKind,
    pub pattern: String,
    /// `--keep`, `--ignore`, or `FILE:LINE`.
    pub origin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
