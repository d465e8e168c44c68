//! darlings: what will the next boot erase?
//!
//! On a machine whose root filesystem is erased at every boot (a ZFS
//! rollback to a blank snapshot, a fresh btrfs subvolume, a tmpfs), only
//! the state its owner claimed survives. darlings finds the state on the
//! ephemeral root, checks every claim, and reports the rest.
//!
//! ```text
//!  source              classify                     report           render
//!  walk, zfs diff, ──▶ rules (manifest, --keep,  ──▶ findings,   ──▶  table
//!  a blank snapshot,   --ignore, declared claims)    errors,          json / ndjson
//!  a saved diff;       claims checked once           totals           prometheus
//!  shadowed content    (claims::check)                                explain
//! ```
//!
//! - [`audit`]: the pipeline as a library, called by every command that
//!   audits (`audit`, `explain`, `stray`, `record`, `rollback`).
//! - [`source`]: what exists or changed on the ephemeral root (the parallel
//!   walk, `zfs diff`, the comparison with a blank tree, the choice between
//!   them on ZFS, what lies hidden under mount points).
//! - [`claims`]: rules, manifests, declared claims, and the one claim checker.
//! - [`knowledge`]: what NixOS recreates, identities, the catalogue of
//!   precious state.
//! - [`classify`]: the walk's visitor; a verdict per entry, grouped rows.
//! - [`report`]: findings, totals (computed once), acceptance, exit codes.
//! - [`render`]: one module per output format.
//! - [`rollback`]: the erase itself (plan, guards, a way back), and its
//!   companions `mark`, `archives`, `restore`, `record`, `status`.
//! - [`sys`]: the only code that touches the system: root-confined reads,
//!   external programs.
//! - [`app`]: one function per subcommand, wiring the above.
//!
//! The layer order (`main → app → {rollback, render} → audit → {classify,
//! source} → {claims, knowledge} → report → sys`) is the target; a few
//! imports still go upward (types that belong in `sys` and `report` live in
//! `source` and `claims`) and are being moved.

pub mod app;
pub mod audit;
pub mod claims;
pub mod classify;
pub mod cli;
pub mod config;
pub mod error;
pub mod knowledge;
pub mod progress;
pub mod render;
pub mod report;
pub mod rollback;
pub mod sanitize;
pub mod source;
pub mod sys;
