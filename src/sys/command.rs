//! The one way darlings runs an external program: argv as `OsString`s
//! (never a shell string), stdout streamed line by line or collected,
//! stderr always drained on its own thread (a chatty child can never block)
//! and kept for the error.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The cause is part of the message, not a `source`: a chain
    /// (`{:#}`) would print it twice.
    #[error("cannot run {program}: {error}")]
    Spawn { program: String, error: std::io::Error },
    #[error("`{command}` failed ({status}){}", stderr_suffix(stderr))]
    Failed { command: String, status: String, stderr: String },
    #[error("reading the output of `{command}`: {message}")]
    Output { command: String, message: String },
    /// A check made right before the command said it must not run.
    #[error("`{command}` was not run: {why}")]
    NotRun { command: String, why: String },
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

    /// The command for people, quoted by the project's one quoting
    /// ([`crate::sanitize::shell_quote`]): pasted into bash it runs this
    /// very argv, and no file name reaches a terminal raw.
    pub fn display(&self) -> String {
        let words: Vec<&[u8]> = self.argv.iter().map(|a| a.as_encoded_bytes()).collect();
        crate::sanitize::shell_words(&words)
    }

    fn spawn(&self) -> Result<Child, CommandError> {
        self.spawn_with(Stdio::null())
    }

    fn spawn_with(&self, stdin: Stdio) -> Result<Child, CommandError> {
        Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| CommandError::Spawn {
                program: self.argv[0].to_string_lossy().into_owned(),
                error,
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
        let collector = collect_stderr(&mut child);
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

/// Drains a child's stderr on a thread of its own.
fn collect_stderr(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut stderr = child.stderr.take();
    std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(err) = stderr.as_mut() {
            let _ = err.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// `first | second`: the stdout of one program is the stdin of the other
/// (`zfs send | zfs receive`). Both must succeed; the error names the one
/// that failed first in the pipe, with its stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipe {
    pub first: Cmd,
    pub second: Cmd,
}

impl Pipe {
    pub fn display(&self) -> String {
        format!("{} | {}", self.first.display(), self.second.display())
    }

    /// Runs both programs; returns what the second wrote to stdout.
    pub fn output(&self) -> Result<Vec<u8>, CommandError> {
        let mut first = self.first.spawn()?;
        let first_err = collect_stderr(&mut first);
        let Some(through) = first.stdout.take() else {
            let _ = first.kill();
            return Err(CommandError::Output { command: self.display(), message: "no pipe".into() });
        };
        let mut second = match self.second.spawn_with(Stdio::from(through)) {
            Ok(child) => child,
            Err(e) => {
                let _ = first.kill();
                let _ = first.wait();
                return Err(e);
            }
        };
        let second_err = collect_stderr(&mut second);
        let mut out = Vec::new();
        if let Some(mut stdout) = second.stdout.take() {
            let _ = stdout.read_to_end(&mut out);
        }
        let second_status = second.wait();
        // A receiver that died leaves the sender blocked on a full pipe.
        if !matches!(&second_status, Ok(s) if s.success()) {
            let _ = first.kill();
        }
        let first_status = first.wait();
        let (first_err, second_err) =
            (first_err.join().unwrap_or_default(), second_err.join().unwrap_or_default());
        let failed = |cmd: &Cmd, status: std::io::Result<ExitStatus>, stderr: String| match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(CommandError::Failed { command: cmd.display(), status: describe(s), stderr }),
            Err(e) => Err(CommandError::Failed { command: cmd.display(), status: e.to_string(), stderr }),
        };
        // The receiver's complaint explains a killed sender, not the other way round.
        match (&second_status, &first_status) {
            (Ok(s), _) if !s.success() => failed(&self.second, second_status, second_err)?,
            _ => {
                failed(&self.first, first_status, first_err)?;
                failed(&self.second, second_status, second_err)?;
            }
        }
        Ok(out)
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
    fn a_program_that_cannot_run_says_why_once() {
        let e = Cmd::new("/nonexistent/darlings-program").output().expect_err("cannot run");
        // As main prints it: the whole chain.
        let text = format!("{:#}", anyhow::Error::from(e));
        assert_eq!(text.matches("(os error 2)").count(), 1, "{text}");
        assert!(text.starts_with("cannot run /nonexistent/darlings-program: No such file"), "{text}");
    }

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
    fn a_pipe_carries_bytes_and_names_the_failing_side() {
        let pipe = Pipe {
            first: Cmd::new("sh").arg("-c").arg("head -c 300000 /dev/zero; echo tail"),
            second: Cmd::new("sh").arg("-c").arg("wc -c"),
        };
        assert_eq!(String::from_utf8_lossy(&pipe.output().expect("runs")).trim(), "300005");
        assert_eq!(pipe.display(), "sh -c 'head -c 300000 /dev/zero; echo tail' | sh -c 'wc -c'");

        // The receiver fails without reading: its error wins, the sender does not hang.
        let pipe = Pipe {
            first: Cmd::new("sh").arg("-c").arg("yes"),
            second: Cmd::new("sh").arg("-c").arg("echo 'no room' >&2; exit 1"),
        };
        let err = pipe.output().expect_err("receiver fails");
        assert_eq!(err.stderr().trim(), "no room");

        let pipe = Pipe {
            first: Cmd::new("sh").arg("-c").arg("echo 'send failed' >&2; exit 2"),
            second: Cmd::new("cat"),
        };
        let err = pipe.output().expect_err("sender fails");
        assert_eq!(err.stderr().trim(), "send failed");
    }

    #[test]
    fn names_with_control_characters_are_shown_escaped() {
        let cmd = Cmd::new("mv").arg("--").arg("/a/new\nline").arg("/b/\x1b[31mred").arg("it's");
        assert_eq!(cmd.display(), "mv -- $'/a/new\\nline' $'/b/\\x1B[31mred' 'it'\\''s'");
    }

    #[test]
    fn a_missing_program_says_so() {
        let err = Cmd::new("/nonexistent/zfs").output().expect_err("missing");
        assert!(err.to_string().starts_with("cannot run /nonexistent/zfs:"), "{err}");
    }
}
