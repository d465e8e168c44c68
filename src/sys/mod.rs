//! Talking to the rest of the system.

pub mod command;
pub mod root;
