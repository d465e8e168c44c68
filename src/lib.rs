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
//! - [`knowledge`]: what NixOS recreates, identities, tmpfiles objects,
//!   the catalogue of precious state: rules of the matcher, each with its
//!   origin, in the one glob dialect.
//! - [`classify`]: the walk's visitor: a pure judge (one entry → verdict,
//!   detail, rule) and a grouper (subtrees folded into rows).
//! - [`report`]: findings, totals (computed once), acceptance, exit codes,
//!   and the words they are made of (verdicts, rule kinds and origins,
//!   severities, what is shown).
//! - [`render`]: one module per output format.
//! - [`rollback`]: the erase itself (plan, guards, a way back), and its
//!   companions `mark`, `archives`, `restore`, `record`, `status`.
//! - [`config`]: the command line turned into documented settings; [`cli`]:
//!   the command line itself (clap).
//! - [`progress`]: the live counter on stderr.
//! - [`sys`]: the only code that touches the system: root-confined reads
//!   (the opened [`sys::root::Root`]), entry metadata, the mount table,
//!   external programs; sizes and times as printed.
//! - [`app`]: one function per subcommand, wiring the above.
//!
//! Layer order: `app → rollback → render → audit → config → cli → classify → source → knowledge → claims → report → progress → sys → {sanitize, error}`
//!
//! Each module uses only the modules after it in that line, never one
//! before it or beside it (`tests/layers.rs` checks every `crate::` path).
//! So sources never know about claims, claims never print, renderers read
//! reports and never the filesystem, nothing uses `app`, and `sys` — the
//! only code that touches the system — uses nothing above it.

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
