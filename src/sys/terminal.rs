//! The terminal's width, as the kernel reports it for a file descriptor.

use std::os::fd::AsFd;

/// The columns of the terminal `fd` is, when it is one and says so: `None`
/// off a terminal, and for a terminal that reports width 0 (a pty nobody
/// sized, a serial console).
pub fn columns(fd: impl AsFd) -> Option<usize> {
    let size = rustix::termios::tcgetwinsize(fd).ok()?;
    (size.ws_col > 0).then_some(usize::from(size.ws_col))
}
