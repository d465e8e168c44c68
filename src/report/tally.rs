//! What the guards need of an audit, kept in bounded memory as rows
//! stream by: `record` and `rollback` judge every path by itself (a flat
//! audit) but never hold its rows.
//!
//! A [`Tally`] is what [`Report`](super::Report) would give the guards —
//! totals per verdict and severity, whether the exit code rises, the
//! critical paths, the new identities, the broken claims, whether the root
//! holds anything its blank state does not — summed a row at a time. Its
//! lists keep the [`Capped::KEPT`] first paths in path order and count the
//! rest, so a cap never hides a refusal: one critical path is enough to
//! refuse, and the count says how many there are. Tallies merge, so each
//! thread of the walk sums its own and hands it over once per directory.

use std::collections::{BTreeSet, HashSet};

use super::{exit_code, Finding, HardLinks, Severity, SeverityKey, Sums, Totals, Verdict};
use crate::error::ExitCode;
use crate::sys::meta::FileKind;

/// The first paths of a list in byte order, and how many there are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capped {
    kept: BTreeSet<Vec<u8>>,
    total: u64,
}

impl Capped {
    /// How many are kept: what a refusal names (five) and more, while a
    /// deep path of a hostile tree (tens of kilobytes) times this stays small.
    pub const KEPT: usize = 32;

    pub fn push(&mut self, item: &[u8]) {
        self.total += 1;
        if self.kept.len() < Self::KEPT {
            self.kept.insert(item.to_vec());
        } else if self.kept.last().is_some_and(|last| item < last.as_slice()) {
            self.kept.pop_last();
            self.kept.insert(item.to_vec());
        }
    }

    pub fn merge(&mut self, other: Capped) {
        self.total += other.total;
        self.kept.extend(other.kept);
        while self.kept.len() > Self::KEPT {
            self.kept.pop_last();
        }
    }

    /// The kept paths, in byte order.
    pub fn kept(&self) -> impl Iterator<Item = &[u8]> {
        self.kept.iter().map(Vec::as_slice)
    }

    /// How many were pushed, the kept ones included.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// The guards' digest of an audit's rows (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Rows summed.
    rows: u64,
    sums: Sums,
    /// The verdict and severity of every row not accepted, once each: all
    /// the exit code needs.
    open: HashSet<(Verdict, SeverityKey)>,
    /// Rows not accepted, not directories: loss rows of critical severity,
    /// `new-identity` rows.
    critical: Capped,
    new_identity: Capped,
    /// The patterns of the broken claims holding such rows (a row without a
    /// rule names itself). As many as the rules at most: not capped.
    broken: BTreeSet<Vec<u8>>,
    /// A row the blank state does not have (see [`Tally::holds_nothing`]).
    beyond_blank: bool,
}

impl Tally {
    /// Sums one row at `path` (its own path may be left empty), settled
    /// (severity, acceptance) as the report would have it.
    pub fn add(&mut self, f: &Finding, path: &[u8]) {
        self.rows += 1;
        self.sums.add(f);
        self.beyond_blank |= match f.verdict {
            Verdict::Recreated | Verdict::Structure | Verdict::Restored | Verdict::Ignored => false,
            Verdict::Kept => f.unverified,
            _ => true,
        };
        if f.accepted {
            return;
        }
        self.open.insert((f.verdict, f.severity()));
        if f.kind == FileKind::Dir {
            return;
        }
        if f.verdict.is_loss() && f.severity() == Some(Severity::Critical) {
            self.critical.push(path);
        }
        match f.verdict {
            Verdict::NewIdentity => self.new_identity.push(path),
            Verdict::Broken => {
                let named = f.rule.as_ref().map_or(path, |r| r.pattern.as_bytes());
                if !self.broken.contains(named) {
                    self.broken.insert(named.to_vec());
                }
            }
            _ => {}
        }
    }

    pub fn merge(&mut self, other: &mut Tally) {
        let other = std::mem::take(other);
        self.rows += other.rows;
        self.sums.merge(&other.sums);
        self.open.extend(other.open);
        self.critical.merge(other.critical);
        self.new_identity.merge(other.new_identity);
        self.broken.extend(other.broken);
        self.beyond_blank |= other.beyond_blank;
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// How many rows were summed.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn totals(&self, links: &HardLinks) -> Totals {
        self.sums.totals(links)
    }

    /// The exit code of the audit, as [`Report::exit_code`](super::Report::exit_code)
    /// would give it.
    pub fn exit_code(
        &self,
        complete: bool,
        fail_on: &HashSet<Verdict>,
        severity: Option<Severity>,
    ) -> ExitCode {
        exit_code(complete, self.open.iter().copied(), fail_on, severity)
    }

    /// Critical state, not accepted: the first paths and the count.
    pub fn critical(&self) -> &Capped {
        &self.critical
    }

    pub fn new_identity(&self) -> &Capped {
        &self.new_identity
    }

    /// The broken claims (their patterns), in byte order.
    pub fn broken(&self) -> impl Iterator<Item = &[u8]> {
        self.broken.iter().map(Vec::as_slice)
    }

    /// Every row is one the blank state has too, or brings back, or that
    /// is fine to lose: recreated, structure, restored, ignored, or a claim
    /// checked and kept. (Entries that could not be read are the caller's
    /// to weigh.)
    pub fn holds_nothing(&self) -> bool {
        !self.beyond_blank
    }
}
