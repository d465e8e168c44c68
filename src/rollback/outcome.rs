//! What the last rollback did, kept where `darlings status` finds it (ZFS:
//! the property `darlings:last-rollback` of the dataset; btrfs: the
//! attribute `user.darlings.last-rollback` of the top-level volume), and
//! the kernel log the initrd writes to.
//!
//! A run that goes ahead first records itself as `interrupted` and then
//! overwrites that with how it ended: if the process dies half way (power,
//! `kill -9`), `status` says so.

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::sanitize::terminal_safe;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The root was rolled back (and verified).
    Erased,
    /// A guard refused; the root was left as it was.
    Refused,
    /// A step or the verification failed; `reasons` say what state it left.
    Failed,
    /// The run started and never recorded an end.
    Interrupted,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [Outcome::Erased, Outcome::Refused, Outcome::Failed, Outcome::Interrupted];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Erased => "erased",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// The record of the last rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRollback {
    /// When it ran (seconds since the epoch).
    pub time: i64,
    pub outcome: Outcome,
    /// Why it was refused, what failed and how to recover.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Where the erased state is kept.
    #[serde(default)]
    pub archive: Option<String>,
    #[serde(default)]
    pub initrd: bool,
    /// Output that could not be printed (stdout closed or failing).
    #[serde(default)]
    pub output_lost: Option<String>,
    /// What people should know afterwards (mounts that show the archive).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The plan's steps, and how many of them were done (recorded after
    /// each one, so that an interrupted run says how far it got).
    #[serde(default)]
    pub steps: usize,
    #[serde(default)]
    pub steps_done: usize,
    /// What the last step done did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_step: Option<String>,
    /// The archive's name, once it holds the old root, and (btrfs) the id
    /// of the subvolume moved there: `status` checks both before it says
    /// the erased state is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_id: Option<u64>,
}

/// ZFS keeps at most 8 KiB in a user property; stay well below.
const MAX_ENCODED: usize = 7000;

impl LastRollback {
    pub fn new(time: i64, outcome: Outcome, reasons: Vec<String>) -> LastRollback {
        LastRollback {
            time,
            outcome,
            reasons,
            archive: None,
            initrd: false,
            output_lost: None,
            warnings: Vec::new(),
            steps: 0,
            steps_done: 0,
            last_step: None,
            archive_name: None,
            archive_id: None,
        }
    }

    /// One line of JSON, shortened to fit where it is kept.
    pub fn encode(&self) -> String {
        let mut short = self.clone();
        let mut limit = 1000;
        loop {
            let text = serde_json::to_string(&short).unwrap_or_default();
            if text.len() <= MAX_ENCODED || limit < 16 {
                return text;
            }
            for r in short.reasons.iter_mut().chain(short.warnings.iter_mut()) {
                if r.len() > limit {
                    let mut cut = limit;
                    while !r.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    r.truncate(cut);
                    r.push('…');
                }
            }
            short.reasons.truncate(8);
            short.warnings.truncate(8);
            limit /= 2;
        }
    }

    pub fn decode(raw: &[u8]) -> Result<LastRollback, String> {
        serde_json::from_slice(raw).map_err(|e| {
            format!("not a darlings record ({e}): {}", crate::sanitize::escape(&raw[..raw.len().min(200)]))
        })
    }

    /// For people, one paragraph, safe for a terminal. `kept`: whether
    /// its archive exists and holds the old root, as checked now (`None`:
    /// it could not be checked).
    pub fn summary(&self, kept: Option<bool>) -> String {
        let mut text = format!("{} {}", crate::sys::fmt::time_text(self.time), self.outcome.name());
        if self.initrd {
            text.push_str(" (initrd)");
        }
        if self.outcome == Outcome::Interrupted {
            text.push_str(&match &self.last_step {
                None => " before its first step finished".to_owned(),
                Some(what) => format!(" after step {} of {} ({what})", self.steps_done, self.steps),
            });
        }
        if let Some(a) = &self.archive {
            text.push_str(&match kept {
                Some(true) => format!("; erased state kept in {a}"),
                Some(false) => format!("; its archive {a} is not there, or holds something else, now"),
                None => format!("; erased state kept in {a} (as recorded; not checked now)"),
            });
        }
        for r in &self.reasons {
            text.push_str(&format!("\n                {r}"));
        }
        for w in &self.warnings {
            text.push_str(&format!("\n                warning: {w}"));
        }
        if let Some(lost) = &self.output_lost {
            text.push_str(&format!("\n                output not printed: {lost}"));
        }
        terminal_safe(&text).into_owned()
    }
}

/// The most the kernel takes in one `/dev/kmsg` record.
const KMSG_MAX: usize = 976;

/// One kernel-log record: `<4>darlings: TEXT\n`, on one line (controls
/// escaped, newlines too), cut to what the kernel accepts in one write.
pub(crate) fn kmsg_record(text: &str) -> Vec<u8> {
    let mut record = format!("<4>darlings: {}", crate::sanitize::one_line(text));
    if record.len() > KMSG_MAX {
        let mut cut = KMSG_MAX - 3;
        while !record.is_char_boundary(cut) {
            cut -= 1;
        }
        record.truncate(cut);
        record.push('…');
    }
    record.push('\n');
    record.into_bytes()
}

/// Writes a message to the kernel log (seen by `journalctl -b` and on the
/// console) as one record: one `write`, or the kernel splits it. Best effort.
pub fn kernel_log(text: &str) {
    write_record(std::fs::OpenOptions::new().write(true).open("/dev/kmsg").ok(), text);
}

fn write_record(kmsg: Option<impl Write>, text: &str) {
    if let Some(mut kmsg) = kmsg {
        let _ = kmsg.write(&kmsg_record(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_run_says_how_far_it_got_and_a_gone_archive_is_not_kept() {
        let mut last = LastRollback::new(0, Outcome::Interrupted, vec![]);
        last.steps = 3;
        assert!(last.summary(None).contains("interrupted before its first step finished"));
        last.steps_done = 1;
        last.last_step = Some("move the current root aside".into());
        last.archive = Some("old_roots/X".into());
        let text = last.summary(Some(false));
        assert!(text.contains("after step 1 of 3 (move the current root aside)"), "{text}");
        assert!(!text.contains("erased state kept"), "{text}");
        assert!(last.summary(Some(true)).contains("erased state kept in old_roots/X"));
    }

    #[test]
    fn the_record_round_trips_and_fits_a_zfs_property() {
        let mut last =
            LastRollback::new(1_795_702_030, Outcome::Failed, vec!["x".repeat(20_000), "y".into()]);
        last.archive = Some("old_roots/20261126T140710Z".into());
        let text = last.encode();
        assert!(text.len() <= MAX_ENCODED, "{}", text.len());
        let back = LastRollback::decode(text.as_bytes()).unwrap();
        assert_eq!(back.outcome, Outcome::Failed);
        assert_eq!(back.reasons[1], "y");
        assert_eq!(back.archive, last.archive);
        let small = LastRollback::new(1, Outcome::Erased, vec![]);
        assert_eq!(LastRollback::decode(small.encode().as_bytes()).unwrap(), small);
        assert!(LastRollback::decode(b"rolled back \x1b[31m").unwrap_err().contains("\\x1B[31m"));
    }

    #[test]
    fn a_summary_never_carries_controls() {
        let last = LastRollback::new(0, Outcome::Refused, vec!["evil\x1b]0;title\x07 name".into()]);
        let s = last.summary(None);
        assert!(!s.contains('\x1b') && !s.contains('\x07'), "{s}");
        assert!(s.starts_with("1970-01-01T00:00:00Z refused"), "{s}");
    }

    /// Counts the writes it is given.
    struct Writes(Vec<Vec<u8>>);

    impl Write for &mut Writes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_kernel_log_message_is_one_write_of_one_line() {
        let mut writes = Writes(Vec::new());
        write_record(Some(&mut writes), "refused, the root was left as it is:\nno audit; path \\ back");
        assert_eq!(writes.0.len(), 1);
        let text = String::from_utf8(writes.0.remove(0)).unwrap();
        assert_eq!(text, "<4>darlings: refused, the root was left as it is:\\nno audit; path \\\\ back\n");
        let long = kmsg_record(&"é".repeat(2000));
        assert!(long.len() <= KMSG_MAX + 1 && long.ends_with(b"\n"), "{}", long.len());
        assert_eq!(long.iter().filter(|b| **b == b'\n').count(), 1);
    }
}
