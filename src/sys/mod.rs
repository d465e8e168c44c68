//! The only code that touches the system: reads confined to the audited
//! root, the mount table, external programs, the terminal's width, the
//! locks that keep rollbacks apart; and the plain facts they return (entry
//! metadata, paths as bytes).

pub mod command;
pub mod dir;
pub mod fmt;
pub mod lock;
pub mod meta;
pub mod mounts;
pub mod output;
pub mod path;
pub mod root;
pub mod terminal;
