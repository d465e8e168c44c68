//! The zfs source: runs `zfs diff -FHt DATASET@SNAPSHOT` (never `-h`) and
//! streams its lines into a [`ChangeTree`], through the project's one
//! command runner. Known `zfs` failures become clear messages.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use super::tree::ChangeTree;
use super::zfs_diff::Parser;
use crate::sys::command::{Cmd, CommandError};

#[derive(Debug, thiserror::Error)]
pub enum ZfsError {
    #[error("no snapshot {dataset}@{snapshot}; {}", list_snapshots(.existing))]
    NoSnapshot { dataset: String, snapshot: String, existing: Vec<String> },
    #[error("{message} (`{command}`: {stderr})")]
    Known { message: &'static str, command: String, stderr: String },
    #[error(transparent)]
    Command(#[from] CommandError),
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
            let mut parsed = parser.line(line).map_err(|e| format!("line {number}: {e}"))?;
            let outside = || format!("line {number}: a path outside the mount point");
            parsed.path = strip(std::mem::take(&mut parsed.path), prefix).ok_or_else(outside)?;
            if let Some(new) = parsed.renamed_to.take() {
                parsed.renamed_to = Some(strip(new, prefix).ok_or_else(outside)?);
            }
            tree.add(parsed);
            Ok(())
        })
        .map_err(explain)
}

/// `path` as seen from inside `prefix` (`/` for the prefix itself; the
/// dataset's own root is printed with a trailing slash).
pub fn relative_to<'a>(path: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let prefix = prefix.strip_suffix(b"/").unwrap_or(prefix);
    let path = if path.len() > 1 { path.strip_suffix(b"/").unwrap_or(path) } else { path };
    match path.strip_prefix(prefix)? {
        b"" => Some(b"/"),
        rest if rest.starts_with(b"/") => Some(rest),
        _ => None,
    }
}

/// [`relative_to`] for a parsed path, borrowing where the path did.
pub fn strip<'a>(path: Cow<'a, [u8]>, prefix: &[u8]) -> Option<Cow<'a, [u8]>> {
    match path {
        Cow::Borrowed(p) => relative_to(p, prefix).map(Cow::Borrowed),
        Cow::Owned(p) => relative_to(&p, prefix).map(|r| Cow::Owned(r.to_vec())),
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
    }
}
