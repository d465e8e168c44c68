//! The live system: whether a claimed mount or symlink leads into
//! persistent storage.
//!
//! A claim is realised when its path is a mount point (found by the walk
//! from the statx mount id, which also tells apart bind mounts of the same
//! filesystem) or a symlink whose target, resolved inside the audited root,
//! lies on another filesystem than the root. `/proc/self/mountinfo` is read
//! to describe mount points (type and source) in the report.

use crate::sys::mounts::{Mount, Mounts};
use crate::sys::root::{describe_errno, Root};

/// Where a claimed symlink leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    /// Into another filesystem: the claim is realised.
    OtherFilesystem(Vec<u8>),
    /// Back onto the ephemeral root: whatever it holds is lost.
    SameFilesystem(Vec<u8>),
    /// Dangling.
    Missing(Vec<u8>),
    Unreadable(String),
}

/// Resolves the symlink at `path` inside the root (never out of it: an
/// absolute target means the audited system's root) and says where it
/// leads.
pub fn check_symlink(root: &Root, path: &[u8]) -> LinkTarget {
    let rel = path.strip_prefix(b"/").unwrap_or(path);
    let target = match root.read_link(rel) {
        Ok(t) => t,
        Err(e) => return LinkTarget::Unreadable(describe_errno(e)),
    };
    match root.resolve_stat(rel) {
        Ok(meta) if meta.other_fs => LinkTarget::OtherFilesystem(target),
        Ok(_) => LinkTarget::SameFilesystem(target),
        Err(rustix::io::Errno::NOENT) => LinkTarget::Missing(target),
        Err(rustix::io::Errno::NOSYS) => LinkTarget::Unreadable(crate::sys::root::NO_OPENAT2_MESSAGE.into()),
        Err(e) => LinkTarget::Unreadable(describe_errno(e)),
    }
}

/// Whether the mount `m` at `path` is a bind of `path` from the storage
/// root `storage` (both as the audited system sees them): same source as
/// the storage root's own mount, and the matching place inside it.
pub fn mount_is_from(m: &Mount, path: &[u8], storage: &[u8], mounts: &Mounts) -> bool {
    let Some(st) = mounts.holding(storage) else { return false };
    if st.source != m.source || st.fstype != m.fstype {
        return false;
    }
    // storage = st.mount_point + rest; the source path is st.fs_root + rest + path.
    let rest = &storage[st.mount_point.len()..];
    let base = if st.fs_root == b"/" { &b""[..] } else { &st.fs_root[..] };
    let expected = [base, rest, path].concat();
    m.fs_root == expected
}

/// Whether the symlink at `path` with target `target` points into `storage`
/// (resolved lexically inside the audited root).
pub fn link_points_into(path: &[u8], target: &[u8], storage: &[u8]) -> bool {
    crate::sys::path::is_ancestor_or_self(storage, &lexical(path, target))
}

/// Where the symlink at `path` with target `target` leads, resolved
/// lexically inside the audited root (`..` never above `/`; links in the
/// target itself are not followed).
pub fn lexical(path: &[u8], target: &[u8]) -> Vec<u8> {
    let dir = path.iter().rposition(|&b| b == b'/').map_or(&path[..0], |i| &path[..i]);
    let joined: Vec<u8> =
        if target.starts_with(b"/") { target.to_vec() } else { [dir, b"/", target].concat() };
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in joined.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return b"/".to_vec();
    }
    parts.iter().flat_map(|c| [&b"/"[..], c].concat()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::mounts::parse_mountinfo;

    #[test]
    fn symlinks_into_a_storage_root() {
        assert!(link_points_into(b"/etc/x", b"/persist/etc/x", b"/persist"));
        assert!(link_points_into(b"/etc/x", b"../persist/etc/x", b"/persist"));
        assert!(!link_points_into(b"/etc/x", b"/persistent/etc/x", b"/persist"));
        assert!(!link_points_into(b"/etc/x", b"/persist/../etc/y", b"/persist"));
        assert_eq!(lexical(b"/home/a/.config", b"../../run/x"), b"/run/x");
        assert_eq!(lexical(b"/x", b"../../.."), b"/");
    }

    #[test]
    fn binds_from_a_storage_root() {
        let all = parse_mountinfo(
            b"1 0 0:1 / / rw - tmpfs none rw\n\
              2 1 0:2 / /persist rw - zfs rpool/safe/persist rw\n\
              3 1 0:2 /var/lib/x /var/lib/x rw - zfs rpool/safe/persist rw\n\
              4 1 0:3 /var/lib/y /var/lib/y rw - zfs rpool/other rw\n\
              5 1 0:4 / /nix rw - zfs rpool/local/nix rw\n\
              6 1 0:4 /persist/etc/z /etc/z rw - zfs rpool/local/nix rw\n",
        );
        let m = Mounts::below(all, b"/");
        let at = |p: &[u8]| *m.all_at(p).last().expect("a mount");
        assert!(mount_is_from(at(b"/var/lib/x"), b"/var/lib/x", b"/persist", &m));
        assert!(!mount_is_from(at(b"/var/lib/y"), b"/var/lib/y", b"/persist", &m));
        // A storage root inside another mount: /nix/persist on rpool/local/nix.
        assert!(mount_is_from(at(b"/etc/z"), b"/etc/z", b"/nix/persist", &m));
        assert!(!mount_is_from(at(b"/etc/z"), b"/etc/z", b"/persist", &m));
    }

    #[test]
    fn binds_from_the_root_itself() {
        let all = parse_mountinfo(
            b"1 0 0:1 / / rw - ext4 /dev/vda rw\n\
              2 1 0:5 / /persist rw - tmpfs persist rw\n\
              3 1 0:1 /mnt/root/elsewhere /mnt/root/var/lib/x rw - ext4 /dev/vda rw\n\
              4 1 0:5 /var/lib/y /mnt/root/var/lib/y rw - tmpfs persist rw\n\
              5 1 0:1 /srv/data /mnt/root/var/lib/z rw - ext4 /dev/vda rw\n\
              6 1 0:9 /root /mnt/btrfs rw - btrfs /dev/vdb rw\n\
              7 1 0:9 /root/nested /mnt/btrfs/a rw - btrfs /dev/vdb rw\n\
              8 1 0:9 /persist/b /mnt/btrfs/b rw - btrfs /dev/vdb rw\n",
        );
        // --root /mnt/root, a directory of the machine's own ext4.
        let m = Mounts::below(all.clone(), b"/mnt/root");
        let at = |m: &Mounts, p: &[u8]| m.at(p).cloned().expect("a mount");
        assert!(m.on_root_fs(&at(&m, b"/var/lib/x")), "from inside the root");
        assert!(!m.on_root_fs(&at(&m, b"/var/lib/y")), "from a tmpfs");
        assert!(!m.on_root_fs(&at(&m, b"/var/lib/z")), "same filesystem, outside the audited root");
        // A btrfs root subvolume: a bind of its nested subvolume is erased with it.
        let b = Mounts::below(all, b"/mnt/btrfs");
        assert!(b.on_root_fs(&at(&b, b"/a")));
        assert!(!b.on_root_fs(&at(&b, b"/b")), "another subvolume");
    }
}
