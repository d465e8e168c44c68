//! The one writer of a command's output: stdout that never fails.
//!
//! A reader may go away at any time (`darlings rollback --yes | head`), and
//! a redirected stdout may fill its disk. For a report that only ends the
//! output early; for `rollback` it must never stop a step half way. So
//! [`Out`] swallows every write error: the first one is kept ([`Out::lost`])
//! and everything after it is dropped. The command decides, once, what that
//! means: [`Out::finish`] treats a closed pipe (`BrokenPipe`) as no error
//! and any other failure as one; `rollback` records it where `status` shows
//! it instead. `println!` is never used: it panics on a closed stdout.

use std::io::{self, Write};

/// A writer that never fails; see the module doc.
pub struct Out<W: Write = io::Stdout> {
    inner: W,
    lost: Option<io::Error>,
    /// Bytes written before the first failure.
    written: u64,
}

impl Out<io::Stdout> {
    /// The process's stdout.
    pub fn stdout() -> Out<io::Stdout> {
        Out::new(io::stdout())
    }
}

impl<W: Write> Out<W> {
    pub fn new(inner: W) -> Out<W> {
        Out { inner, lost: None, written: 0 }
    }

    /// The first write error, if output was lost.
    pub fn lost(&self) -> Option<&io::Error> {
        self.lost.as_ref()
    }

    /// Bytes that reached the writer before output was lost.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// What was lost, in words (`None` when nothing was).
    pub fn describe_loss(&self) -> Option<String> {
        let bytes = match self.written {
            1 => "1 byte".to_owned(),
            n => format!("{n} bytes"),
        };
        self.lost.as_ref().map(|e| {
            if e.kind() == io::ErrorKind::BrokenPipe {
                format!("stdout was closed after {bytes} (the reader went away)")
            } else {
                format!("writing stdout failed after {bytes}: {e}")
            }
        })
    }

    /// Flushes; a reader that went away is not an error, any other failure is.
    pub fn finish(mut self) -> io::Result<()> {
        let _ = self.flush();
        match self.lost.take() {
            Some(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e),
            _ => Ok(()),
        }
    }

    fn failed(&mut self, e: io::Error) {
        if self.lost.is_none() {
            self.lost = Some(e);
        }
    }
}

impl<W: Write> Write for Out<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.lost.is_some() {
            return Ok(buf.len());
        }
        match self.inner.write_all(buf) {
            Ok(()) => self.written += buf.len() as u64,
            Err(e) => self.failed(e),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.lost.is_none() {
            if let Err(e) = self.inner.flush() {
                self.failed(e);
            }
        }
        Ok(())
    }
}

/// A line on stderr that cannot panic (`eprintln!` does when stderr is
/// closed); stderr is where a command says what stdout could not.
pub fn warn(text: &str) {
    // One write: a console shared with other programs keeps the line whole.
    let _ = io::stderr().lock().write_all(format!("darlings: {text}\n").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `room` bytes, then fails with `kind`.
    struct Closing {
        room: usize,
        kind: io::ErrorKind,
        got: Vec<u8>,
    }

    impl Write for Closing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from(self.kind));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_reader_is_noticed_once_and_never_fails_a_write() {
        let mut out = Out::new(Closing { room: 8, kind: io::ErrorKind::BrokenPipe, got: Vec::new() });
        for _ in 0..5 {
            writeln!(out, "line").expect("never fails");
        }
        assert_eq!(out.inner.got, b"line\nlin");
        assert_eq!(out.written(), 5);
        assert!(out.describe_loss().expect("lost").contains("stdout was closed after 5 bytes"));
        let mut one = Out::new(Closing { room: 1, kind: io::ErrorKind::BrokenPipe, got: Vec::new() });
        write!(one, "x").expect("never fails");
        write!(one, "y").expect("never fails");
        let said = one.describe_loss().expect("lost");
        assert!(said.contains("stdout was closed after 1 byte "), "{said}");
        assert!(out.finish().is_ok(), "a closed pipe is not an error");
    }

    #[test]
    fn other_failures_are_errors_at_the_end() {
        let mut out = Out::new(Closing { room: 0, kind: io::ErrorKind::StorageFull, got: Vec::new() });
        writeln!(out, "x").expect("never fails");
        assert!(out.describe_loss().expect("lost").contains("writing stdout failed"));
        assert!(out.finish().is_err());
        let out = Out::new(Vec::new());
        assert!(out.lost().is_none() && out.finish().is_ok());
    }
}
