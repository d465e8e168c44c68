//! Finding the blank snapshot of a btrfs root, for `--source auto`.
//!
//! The erase-your-darlings layouts keep a read-only snapshot of the empty
//! root next to the root subvolume. For a root mounted from subvolume
//! `PARENT/NAME` (as `/proc/self/mountinfo` shows it), darlings looks, in
//! this order, for `PARENT/NAME-blank`, `PARENT/blank`,
//! `PARENT/snapshots/NAME-blank` and `PARENT/snapshots/blank`. It reaches
//! them through a mount of the same filesystem that shows them; when none
//! does, it mounts the top-level volume read-only on a private temporary
//! directory, and undoes that mount when the audit ends.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::sys::mounts::{mount_table, Mount};

/// Where the blank snapshot was found.
pub struct Blank {
    pub path: PathBuf,
    /// The subvolume path inside the filesystem (`/root-blank`).
    pub subvolume: Vec<u8>,
    _helper: Option<HelperMount>,
}

/// A read-only mount of the top-level volume, undone on drop.
struct HelperMount {
    dir: tempfile::TempDir,
}

impl Drop for HelperMount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(self.dir.path(), rustix::mount::UnmountFlags::DETACH);
    }
}

/// The candidate paths, inside the filesystem, for a root subvolume.
pub fn candidates(subvolume: &[u8]) -> Vec<Vec<u8>> {
    let subvolume = subvolume.strip_suffix(b"/").filter(|s| !s.is_empty()).unwrap_or(subvolume);
    let cut = subvolume.iter().rposition(|&b| b == b'/').unwrap_or(0);
    let (parent, name) = (&subvolume[..cut], &subvolume[(cut + 1).min(subvolume.len())..]);
    let join = |rest: &[u8]| [parent, b"/", rest].concat();
    vec![
        join(&[name, b"-blank"].concat()),
        join(b"blank"),
        join(&[&b"snapshots/"[..], name, b"-blank"].concat()),
        join(b"snapshots/blank"),
    ]
}

/// Finds the blank snapshot of the btrfs filesystem mounted at the root.
/// `Ok(None)`: none of the conventional places holds one.
pub fn find_blank(root: &Mount) -> std::io::Result<Option<Blank>> {
    let mounts = mount_table()?;
    let same_fs: Vec<&Mount> =
        mounts.iter().filter(|m| m.fstype == "btrfs" && m.source == root.source).collect();
    let is_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    let wanted = candidates(&root.fs_root);
    // Through a mount that already shows the candidate.
    for c in &wanted {
        for m in &same_fs {
            let inside = if m.fs_root == b"/" {
                Some(&c[..])
            } else {
                c.strip_prefix(&m.fs_root[..]).filter(|r| r.starts_with(b"/"))
            };
            if let Some(rest) = inside {
                let path = Path::new(OsStr::from_bytes(&m.mount_point)).join(OsStr::from_bytes(&rest[1..]));
                if is_dir(&path) {
                    return Ok(Some(Blank { path, subvolume: c.clone(), _helper: None }));
                }
            }
        }
    }
    // Through a read-only mount of the top-level volume of our own.
    let dir = tempfile::Builder::new().prefix("darlings-btrfs-top").tempdir()?;
    rustix::mount::mount(
        OsStr::from_bytes(&root.source),
        dir.path(),
        "btrfs",
        rustix::mount::MountFlags::RDONLY
            | rustix::mount::MountFlags::NOSUID
            | rustix::mount::MountFlags::NODEV
            | rustix::mount::MountFlags::NOEXEC,
        c"subvolid=5",
    )?;
    let helper = HelperMount { dir };
    for c in wanted {
        let path = helper.dir.path().join(OsStr::from_bytes(&c[1..]));
        if is_dir(&path) {
            return Ok(Some(Blank { path, subvolume: c, _helper: Some(helper) }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::candidates;

    #[test]
    fn conventional_places_next_to_the_root_subvolume() {
        let got: Vec<String> =
            candidates(b"/root").iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        assert_eq!(got, ["/root-blank", "/blank", "/snapshots/root-blank", "/snapshots/blank"]);
        let got: Vec<String> =
            candidates(b"/nixos/@").iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        assert_eq!(
            got,
            ["/nixos/@-blank", "/nixos/blank", "/nixos/snapshots/@-blank", "/nixos/snapshots/blank"]
        );
    }
}
