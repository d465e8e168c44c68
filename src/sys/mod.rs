//! Talking to the rest of the system.

pub mod command;
