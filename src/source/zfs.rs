//! The zfs sources: [`ZfsDiff`] runs `zfs diff -FHt DATASET@SNAPSHOT`
//! (never `-h`; report `source`: `zfs`), [`SavedDiff`] reads one saved to a
//! file (`zfs-diff-file`); both stream its lines into a [`ChangeTree`]
//! (the command through the project's one command runner) and walk that
//! with the classifier. Known `zfs` failures become clear messages; a line
//! that cannot be read stops the audit, naming where it is.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::io::{BufRead, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::choose::Way;
use super::tree::ChangeTree;
use super::walk::Visitor;
use super::zfs_diff::{DiffLine, Parser};
use super::{links, Opened, Settings, Source, SourceError};
use crate::sanitize::escape;
use crate::sys::command::{Cmd, CommandError};
use crate::sys::root::Root;

/// `zfs diff` of the dataset mounted at the audited root against its blank
/// snapshot.
pub struct ZfsDiff<'a> {
    live: &'a Opened,
    dataset: Vec<u8>,
    snapshot: String,
    /// Why `auto` chose `zfs diff` over reading both trees, when it weighed them.
    way: Option<Way>,
    tree: ChangeTree,
    notes: Vec<String>,
    /// The snapshot's tree under `.zfs/snapshot`, once fed, when ZFS shows it.
    blank: Option<Root>,
}

impl<'a> ZfsDiff<'a> {
    pub fn new(live: &'a Opened, dataset: Vec<u8>, snapshot: &str, way: Option<Way>) -> ZfsDiff<'a> {
        ZfsDiff {
            live,
            dataset,
            snapshot: snapshot.to_owned(),
            way,
            tree: ChangeTree::new(),
            notes: Vec::new(),
            blank: None,
        }
    }
}

impl Source for ZfsDiff<'_> {
    fn name(&self) -> &'static str {
        "zfs"
    }

    fn feed<V: Visitor>(
        &mut self,
        top: V::Dir,
        visitor: &V,
        threads: usize,
        _progress: bool,
    ) -> Result<(), SourceError> {
        // zfs prints paths below where the dataset is mounted: the root.
        let prefix = self.live.canonical.as_os_str().as_bytes();
        diff_into(&self.dataset, &self.snapshot, prefix, &mut self.tree)?;
        self.blank = Root::open(&snapshot_dir(self.live, &self.snapshot)).ok();
        let found = links::recover(&mut self.tree, &self.live.root, self.blank.as_ref(), threads);
        self.notes.extend(found.note());
        let shown = format!("{}@{}", String::from_utf8_lossy(&self.dataset), self.snapshot);
        self.notes.push(match &self.way {
            Some(Way::Diff(why)) => format!("compared {shown} with the live dataset (zfs diff): {why}"),
            _ => format!("compared {shown} with the live dataset (zfs diff)"),
        });
        self.notes.extend(children_note(&self.dataset));
        self.notes.extend(blind_spots(&self.tree));
        self.tree.walk(top, visitor, Some(&self.live.root), threads);
        Ok(())
    }

    fn notes(&self) -> &[String] {
        &self.notes
    }

    fn changes(&self) -> Option<&ChangeTree> {
        Some(&self.tree)
    }

    fn blank(&self) -> Option<&Root> {
        self.blank.as_ref()
    }
}

/// A saved `zfs diff -FHt`, with the live tree behind it where `--root`
/// says it is mounted (sizes, claims, other names of hard links), or
/// offline without.
pub struct SavedDiff<'a> {
    file: PathBuf,
    strip: Option<PathBuf>,
    live: Option<&'a Opened>,
    /// The blank snapshot's name: where the live tree shows it (under
    /// `.zfs/snapshot`), it tells which names of a hard link are old.
    snapshot: String,
    tree: ChangeTree,
    notes: Vec<String>,
}

impl<'a> SavedDiff<'a> {
    pub fn new(file: &Path, settings: &Settings, live: Option<&'a Opened>) -> SavedDiff<'a> {
        SavedDiff {
            file: file.to_owned(),
            strip: settings.strip_prefix.clone(),
            live,
            snapshot: settings.snapshot.clone(),
            tree: ChangeTree::new(),
            notes: Vec::new(),
        }
    }
}

impl Source for SavedDiff<'_> {
    fn name(&self) -> &'static str {
        "zfs-diff-file"
    }

    fn feed<V: Visitor>(
        &mut self,
        top: V::Dir,
        visitor: &V,
        threads: usize,
        _progress: bool,
    ) -> Result<(), SourceError> {
        self.tree = read_saved(&self.file, self.strip.as_deref())?;
        match self.live {
            Some(live) => {
                let blank = Root::open(&snapshot_dir(live, &self.snapshot)).ok();
                let found = links::recover(&mut self.tree, &live.root, blank.as_ref(), threads);
                self.notes.extend(found.note());
            }
            None => self.notes.push(
                "offline: the diff was read without its tree (no --root), so there are no sizes and claims \
                 are checked only against what the diff lists"
                    .into(),
            ),
        }
        self.notes.extend(blind_spots(&self.tree));
        self.tree.walk(top, visitor, self.live.map(|l| &l.root), threads);
        Ok(())
    }

    fn notes(&self) -> &[String] {
        &self.notes
    }

    fn changes(&self) -> Option<&ChangeTree> {
        Some(&self.tree)
    }
}

/// Where ZFS shows the snapshot `snapshot` of the dataset mounted at `live`.
fn snapshot_dir(live: &Opened, snapshot: &str) -> PathBuf {
    live.canonical.join(".zfs/snapshot").join(snapshot)
}

/// What a diff cannot show, in notes: other names of hard-linked files,
/// objects unlinked but still open.
fn blind_spots(tree: &ChangeTree) -> Vec<String> {
    let mut notes = Vec::new();
    if tree.link_changes > 0 {
        notes.push(format!(
            "zfs diff names a file with several hard links under one name only ({} link-count changes seen): \
             its other names are not in this list",
            tree.link_changes
        ));
    }
    if tree.delete_queue > 0 {
        notes.push(format!(
            "{} objects were unlinked but still open when diffed (on_delete_queue): not listed",
            tree.delete_queue
        ));
    }
    notes
}

/// Names the datasets below `dataset` in a note: not in its changes, and
/// kept by a rollback. `None` when there are none (or `zfs` cannot say).
pub fn children_note(dataset: &[u8]) -> Option<String> {
    let children = children(dataset).ok().filter(|c| !c.is_empty())?;
    let list: Vec<String> = children.iter().map(|(name, mp)| format!("{name} (mountpoint {mp})")).collect();
    Some(format!(
        "datasets below {} are not in its zfs diff and a rollback keeps them: {}",
        String::from_utf8_lossy(dataset),
        list.join(", ")
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum ZfsError {
    #[error("no snapshot {dataset}@{snapshot}; {}", list_snapshots(.existing))]
    NoSnapshot { dataset: String, snapshot: String, existing: Vec<String> },
    #[error("{message} (`{command}`: {stderr})")]
    Known { message: &'static str, command: String, stderr: String },
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The cause is part of the message (not a `source`: it would be
    /// printed twice in a chain).
    #[error("cannot read zfs diff {file}: {error}")]
    Read { file: String, error: std::io::Error },
    /// A saved diff's line: `FILE:LINE: what is wrong`.
    #[error("{file}:{line}: {message}")]
    Line { file: String, line: u64, message: String },
}

fn list_snapshots(existing: &[String]) -> String {
    if existing.is_empty() {
        "the dataset has no snapshots".to_owned()
    } else {
        format!("the dataset has: {}", existing.join(", "))
    }
}

/// Turns a failure of `zfs` with a known stderr text into a clear message.
pub fn explain(err: CommandError) -> ZfsError {
    let stderr = err.stderr().trim().to_owned();
    let message = if stderr.contains("dataset does not exist") {
        "no such dataset or snapshot"
    } else if stderr.contains("Cannot diff an unmounted snapshot") {
        "the dataset is not mounted (zfs diff needs it mounted)"
    } else if stderr.contains("Unable to obtain diffs") {
        "zfs could not compare with the snapshot (is it missing?)"
    } else if stderr.contains("Not an earlier snapshot") {
        "the snapshot is not older than what it is compared with"
    } else if stderr.contains("permission denied") || stderr.contains("Operation not permitted") {
        "zfs diff needs root, or `zfs allow USER diff DATASET`"
    } else if stderr.contains("Unable to determine path or stats for object") {
        "zfs diff gave up on an object (a known hard-link edge case); a walk (--source walk) still works"
    } else {
        return ZfsError::Command(err);
    };
    let command = match &err {
        CommandError::Failed { command, .. } => command.clone(),
        _ => String::new(),
    };
    ZfsError::Known { message, command, stderr }
}

/// The datasets below `dataset` (children and theirs), with their
/// mountpoint property: `zfs diff` of the dataset does not list them, and a
/// rollback of it does not touch them.
pub fn children(dataset: &[u8]) -> Result<Vec<(String, String)>, ZfsError> {
    let out = Cmd::new("zfs")
        .args(["list", "-H", "-o", "name,mountpoint", "-t", "filesystem,volume", "-r"])
        .arg(OsStr::from_bytes(dataset))
        .output()
        .map_err(explain)?;
    let own = String::from_utf8_lossy(dataset);
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(name, _)| *name != own)
        .map(|(name, mp)| (name.to_owned(), mp.to_owned()))
        .collect())
}

/// The snapshots of `dataset` (short names, oldest first).
pub fn snapshots(dataset: &[u8]) -> Result<Vec<String>, ZfsError> {
    let out = Cmd::new("zfs")
        .args(["list", "-H", "-p", "-o", "name", "-s", "createtxg", "-t", "snapshot", "-d", "1"])
        .arg(OsStr::from_bytes(dataset))
        .output()
        .map_err(explain)?;
    let text = String::from_utf8_lossy(&out);
    Ok(text.lines().filter_map(|l| l.split_once('@').map(|(_, snap)| snap.to_owned())).collect())
}

/// Checks the snapshot exists, then streams `zfs diff -FHt` of the live
/// dataset against it into `tree`. `prefix` is where the dataset is mounted
/// (its paths are reported below it); paths are made relative to it.
pub fn diff_into(
    dataset: &[u8],
    snapshot: &str,
    prefix: &[u8],
    tree: &mut ChangeTree,
) -> Result<(), ZfsError> {
    let existing = snapshots(dataset)?;
    if !existing.iter().any(|s| s == snapshot) {
        return Err(ZfsError::NoSnapshot {
            dataset: String::from_utf8_lossy(dataset).into_owned(),
            snapshot: snapshot.to_owned(),
            existing,
        });
    }
    let mut target = dataset.to_vec();
    target.push(b'@');
    target.extend_from_slice(snapshot.as_bytes());
    let mut parser = Parser::new();
    let mut number = 0u64;
    Cmd::new("zfs")
        .args(["diff", "-FHt"])
        .arg(OsStr::from_bytes(&target))
        .stream(|line| {
            number += 1;
            let parsed = parser.line(line).map_err(|e| format!("line {number}: {e}"))?;
            add_below(tree, parsed, prefix).map_err(|p| {
                format!("line {number}: {} is outside the mount point {}", escape(&p), escape(prefix))
            })
        })
        .map_err(explain)
}

/// Reads a saved `zfs diff -FHt` (`-` is stdin) into a change tree. Paths
/// are taken below `strip` (default `/`); a malformed line is an error
/// naming the file and line, and nothing is audited.
pub fn read_saved(file: &Path, strip: Option<&Path>) -> Result<ChangeTree, ZfsError> {
    let stdin = file == Path::new("-");
    let shown = if stdin { "<stdin>".to_owned() } else { crate::sanitize::escape_path(file).into_owned() };
    let read_err = |error| ZfsError::Read { file: shown.clone(), error };
    let mut reader: Box<dyn BufRead> = if stdin {
        Box::new(std::io::stdin().lock())
    } else {
        // A regular file or a FIFO (`<(zfs diff ...)`), never a device.
        let opened = crate::sys::root::open_given(file).map_err(|e| read_err(e.into()))?;
        Box::new(std::io::BufReader::with_capacity(1 << 16, opened))
    };
    let prefix = strip.map_or(&b"/"[..], |p| p.as_os_str().as_bytes());
    let mut parser = Parser::new();
    let mut tree = ChangeTree::new();
    let mut line = Vec::with_capacity(256);
    let mut number = 0u64;
    loop {
        line.clear();
        let read = read_line(&mut reader, &mut line).map_err(read_err)?;
        if matches!(read, Line::End) {
            break;
        }
        number += 1;
        let at = |message: String| ZfsError::Line { file: shown.clone(), line: number, message };
        if matches!(read, Line::TooLong) {
            return Err(at(format!(
                "longer than {MAX_LINE} bytes, more than zfs diff ever writes (is this `zfs diff -FHt` output?)"
            )));
        }
        let parsed = parser.line(&line).map_err(|e| at(e.message))?;
        let outside = |path: &[u8]| {
            let hint = if path.len() > 1 && path.ends_with(b"/") {
                " (only the dataset's root is printed with a trailing /)"
            } else {
                ""
            };
            at(match strip {
                Some(p) => {
                    format!("{} is not below --strip-prefix {}{hint}", escape(path), crate::sanitize::escape_path(p))
                }
                // Without --strip-prefix, the dataset is read as mounted at `/`.
                None => format!(
                    "{} is not a path of a dataset mounted at / (give --strip-prefix DIR for one diffed while \
                     mounted at DIR){hint}",
                    escape(path)
                ),
            })
        };
        add_below(&mut tree, parsed, prefix).map_err(|p| outside(&p))?;
    }
    Ok(tree)
}

/// The longest line `zfs diff -FHt` writes. Each path is at most two
/// `PATH_MAX` (the mount point, then the name zfs finds for the object in
/// a `PATH_MAX` buffer), every byte escaped in at most five (`\0040`);
/// a rename has two paths; the time, change, type, link count and tabs
/// take well under 256 bytes.
pub const MAX_LINE: usize = 2 * (2 * 4096 * 5) + 256;

/// What [`read_line`] found.
enum Line {
    /// A line (its newline dropped).
    Read,
    /// More than [`MAX_LINE`] bytes without a newline.
    TooLong,
    End,
}

/// Reads one line of a saved diff into `line`, keeping at most
/// [`MAX_LINE`] bytes of it: a file of one endless line costs no more.
fn read_line(reader: &mut dyn BufRead, line: &mut Vec<u8>) -> std::io::Result<Line> {
    let n = reader.take(MAX_LINE as u64 + 1).read_until(b'\n', line)?;
    if n == 0 {
        return Ok(Line::End);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(Line::Read);
    }
    Ok(if line.len() > MAX_LINE { Line::TooLong } else { Line::Read })
}

/// Adds a parsed line to `tree`, its paths made relative to `prefix`;
/// `Err` holds a path that is not below it.
fn add_below(tree: &mut ChangeTree, mut line: DiffLine<'_>, prefix: &[u8]) -> Result<(), Vec<u8>> {
    line.path = strip(std::mem::take(&mut line.path), prefix)?;
    if let Some(new) = line.renamed_to.take() {
        line.renamed_to = Some(strip(new, prefix)?);
    }
    add_line(tree, line);
    Ok(())
}

/// Adds one line to `tree`: its neutral record, or a count of the objects
/// zfs lists as unlinked but still open.
pub fn add_line(tree: &mut ChangeTree, line: DiffLine<'_>) {
    match line.record() {
        Some(record) => tree.add(record),
        None => tree.delete_queue += 1,
    }
}

/// `path` as seen from inside `prefix` (`/` for the prefix itself). Only
/// the dataset's own root is printed with a trailing slash: any other path
/// ending in one is not below the prefix as zfs writes it.
pub fn relative_to<'a>(path: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let prefix = prefix.strip_suffix(b"/").unwrap_or(prefix);
    match path.strip_prefix(prefix)? {
        b"" | b"/" => Some(b"/"),
        rest if rest.starts_with(b"/") && !rest.ends_with(b"/") => Some(rest),
        _ => None,
    }
}

/// [`relative_to`] for a parsed path, borrowing where the path did; `Err`
/// gives the path back.
fn strip<'a>(path: Cow<'a, [u8]>, prefix: &[u8]) -> Result<Cow<'a, [u8]>, Vec<u8>> {
    match path {
        Cow::Borrowed(p) => relative_to(p, prefix).map(Cow::Borrowed).ok_or_else(|| p.to_vec()),
        Cow::Owned(p) => match relative_to(&p, prefix) {
            Some(r) => Ok(Cow::Owned(r.to_vec())),
            None => Err(p),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::relative_to;

    #[test]
    fn paths_below_the_mount_point() {
        assert_eq!(relative_to(b"/mnt/root/", b"/mnt/root"), Some(&b"/"[..]));
        assert_eq!(relative_to(b"/mnt/root/etc/x", b"/mnt/root/"), Some(&b"/etc/x"[..]));
        assert_eq!(relative_to(b"/mnt/rootx/etc", b"/mnt/root"), None);
        // A dataset mounted at / has an empty prefix.
        assert_eq!(relative_to(b"/etc/x", b"/"), Some(&b"/etc/x"[..]));
        assert_eq!(relative_to(b"/", b"/"), Some(&b"/"[..]));
        // A trailing slash marks the dataset's root only.
        assert_eq!(relative_to(b"/mnt/root/etc/", b"/mnt/root"), None);
        assert_eq!(relative_to(b"/etc/", b"/"), None);
    }
}
