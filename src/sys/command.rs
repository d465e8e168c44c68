//! The one way darlings runs an external program: argv as `OsString`s
//! (never a shell string), stdout streamed line by line or collected,
//! stderr always drained on its own thread (a chatty child can never block)
//! and kept for the error.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}){}", stderr_suffix(stderr))]
    Failed { command: String, status: String, stderr: String },
    #[error("reading the output of `{command}`: {message}")]
    Output { command: String, message: String },
}

impl CommandError {
    /// What the program wrote to stderr, when it failed.
    pub fn stderr(&self) -> &str {
        match self {
            CommandError::Failed { stderr, .. } => stderr,
            _ => "",
        }
    }
}

fn stderr_suffix(stderr: &str) -> String {
    let trimmed = stderr.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!(": {}", trimmed.lines().collect::<Vec<_>>().join(" / "))
    }
}

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    argv: Vec<OsString>,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd { argv: vec![program.as_ref().to_owned()] }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.argv.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Cmd {
        self.argv.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn argv(&self) -> &[OsString] {
        &self.argv
    }

    /// The command for people: arguments quoted where a shell would need it.
    pub fn display(&self) -> String {
        self.argv
            .iter()
            .map(|a| {
                let s = a.to_string_lossy();
                if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:@=+,%".contains(&b))
                {
                    s.into_owned()
                } else {
                    format!("'{}'", s.replace('\'', r"'\''"))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn spawn(&self) -> Result<Child, CommandError> {
        Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| CommandError::Spawn {
                program: self.argv[0].to_string_lossy().into_owned(),
                source,
            })
    }

    /// Runs the program and returns its stdout; a non-zero exit is an error
    /// carrying stderr.
    pub fn output(&self) -> Result<Vec<u8>, CommandError> {
        let mut out = Vec::new();
        self.stream(|line| {
            out.extend_from_slice(line);
            out.push(b'\n');
            Ok(())
        })?;
        Ok(out)
    }

    /// Runs the program, handing each line of stdout (without its newline)
    /// to `each` as it arrives. If `each` fails, the child is killed and
    /// its error returned.
    pub fn stream(&self, mut each: impl FnMut(&[u8]) -> Result<(), String>) -> Result<(), CommandError> {
        let mut child = self.spawn()?;
        let mut stderr = child.stderr.take();
        let collector = std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(err) = stderr.as_mut() {
                let _ = err.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        });
        let mut failure = None;
        if let Some(stdout) = child.stdout.take() {
            let mut reader = BufReader::with_capacity(1 << 16, stdout);
            let mut line = Vec::with_capacity(256);
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        failure = Some(e.to_string());
                        break;
                    }
                }
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if let Err(message) = each(&line) {
                    failure = Some(message);
                    break;
                }
            }
        }
        if failure.is_some() {
            let _ = child.kill();
        }
        let status = child.wait();
        let stderr = collector.join().unwrap_or_default();
        if let Some(message) = failure {
            return Err(CommandError::Output { command: self.display(), message });
        }
        match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(CommandError::Failed { command: self.display(), status: describe(s), stderr }),
            Err(e) => Err(CommandError::Failed { command: self.display(), status: e.to_string(), stderr }),
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => format!("{status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_stream_and_stderr_is_kept() {
        let mut lines = Vec::new();
        Cmd::new("sh")
            .arg("-c")
            .arg("printf 'a b\\nc\\n'; echo noise >&2")
            .stream(|l| {
                lines.push(l.to_vec());
                Ok(())
            })
            .expect("runs");
        assert_eq!(lines, vec![b"a b".to_vec(), b"c".to_vec()]);

        let err = Cmd::new("sh").arg("-c").arg("echo 'it broke' >&2; exit 3").output().expect_err("fails");
        assert_eq!(err.stderr().trim(), "it broke");
        assert_eq!(
            err.to_string(),
            "`sh -c 'echo '\\''it broke'\\'' >&2; exit 3'` failed (exit status 3): it broke"
        );
    }

    #[test]
    fn a_child_writing_much_to_stderr_does_not_block() {
        let out =
            Cmd::new("sh").arg("-c").arg("head -c 1000000 /dev/zero >&2; echo done").output().expect("runs");
        assert_eq!(out, b"done\n");
    }

    #[test]
    fn a_failing_consumer_stops_the_child() {
        let err = Cmd::new("sh").arg("-c").arg("yes").stream(|_| Err("enough".into())).expect_err("stopped");
        assert!(err.to_string().ends_with("enough"), "{err}");
    }

    #[test]
    fn a_missing_program_says_so() {
        let err = Cmd::new("/nonexistent/zfs").output().expect_err("missing");
        assert!(err.to_string().starts_with("cannot run /nonexistent/zfs:"), "{err}");
    }
}
