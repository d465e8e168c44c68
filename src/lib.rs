//! darlings: what will the next boot erase?
//!
//! On a machine whose root filesystem is erased at every boot (a ZFS
//! rollback to a blank snapshot, a fresh btrfs subvolume, a tmpfs), only
//! the state its owner claimed survives. darlings finds the state on the
//! ephemeral root, checks every claim, and reports the rest.
//!
//! ```text
//!  source          classify                     report           render
//!  walk   ──▶  rules (manifest, --keep,   ──▶  findings,   ──▶  table
//!              --ignore), live claims          errors,          json / ndjson
//!              (mount points, symlinks)        totals           prometheus
//! ```
//!
//! - [`source`]: what exists on the ephemeral root (the parallel walk).
//! - [`claims`]: rules, manifests, and the live checks of claims.
//! - [`classify`]: the walk's visitor; a verdict per entry, grouped rows.
//! - [`report`]: findings, totals, acceptance, exit codes.
//! - [`render`]: one module per output format.
//! - [`rollback`]: the erase itself (plan, guards, a way back), and its
//!   companions `mark`, `archives`, `restore`, `record`, `status`.
//! - [`app`]: one function per subcommand, wiring the above.

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
