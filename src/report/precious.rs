//! How much losing a path hurts, and the catalogue entries that say so.

use serde::Serialize;

/// How much losing a path hurts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Info,
    Important,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Important => "important",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "important" => Some(Severity::Important),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// One catalogued path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Precious {
    /// A path, or a glob as `--keep` reads it (`/home/*/.ssh`).
    pub pattern: String,
    pub severity: Severity,
    pub reason: String,
    /// Kept as a directory or as a file (how a claim would name it).
    pub directory: bool,
    /// `built-in`, or the manifest line that added it.
    pub origin: String,
}
