//! Knowledge of well-known state: the catalogue of precious paths.
//!
//! Every loss finding (unclaimed, broken, new-identity) that is, lies
//! inside, or contains a catalogued path carries that entry's severity and
//! reason in every format, so `/var/lib/bluetooth` is not just 12 files but
//! "pairings with every Bluetooth device". The built-in entries can be
//! extended from the manifest (`[[precious]]`).

pub mod catalogue;
pub mod identity;
pub mod recreated;
pub mod tmpfiles;

pub use catalogue::{Catalogue, Precious, Severity};
