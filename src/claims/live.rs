//! The live system: which mounts exist, and whether a claimed symlink
//! points to persistent storage.
//!
//! A claim is realised when its path is a mount point (found by the walk
//! from the statx mount id, which also tells apart bind mounts of the same
//! filesystem) or a symlink whose target, resolved inside the audited root,
//! lies on another filesystem than the root. `/proc/self/mountinfo` is read
//! to describe mount points (type and source) in the report.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::source::walk::{describe_errno, Root};

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u64,
    pub parent: u64,
    /// The path inside the source filesystem that is mounted here.
    pub fs_root: Vec<u8>,
    /// Where it is mounted, as the audited system sees it.
    pub mount_point: Vec<u8>,
    pub fstype: String,
    pub source: Vec<u8>,
    /// The `major:minor` of the mounted filesystem (for btrfs, of the
    /// subvolume: what `st_dev` of its files says).
    pub dev: String,
}

impl Mount {
    /// `tmpfs`, `zfs rpool/safe/persist`, `ext4 /dev/vda1[/persist/x]`.
    pub fn describe(&self) -> String {
        let source = String::from_utf8_lossy(&self.source);
        let mut out = self.fstype.clone();
        if !source.is_empty() && source != self.fstype && source != "none" {
            out.push(' ');
            out.push_str(&source);
        }
        if self.fs_root != b"/" {
            out.push('[');
            out.push_str(&String::from_utf8_lossy(&self.fs_root));
            out.push(']');
        }
        out
    }
}

/// The mounts below an audited root, with the root prefix stripped, and
/// the mount the root itself is on.
#[derive(Debug, Default, Clone)]
pub struct Mounts {
    list: Vec<Mount>,
    /// The mount whose mount point is the root (none when the root is a
    /// plain directory of a larger filesystem).
    root: Option<Mount>,
    /// The filesystem the root is on (`major:minor`) and the root's path
    /// inside it: what a bind mount from the ephemeral root itself shows.
    root_fs: Option<(String, Vec<u8>)>,
}

impl Mounts {
    /// Reads this process's mount table and keeps the mounts strictly below
    /// `root` (a canonical path), renamed as seen from inside it.
    pub fn read(root: &Path) -> std::io::Result<Mounts> {
        Ok(Mounts::below(mount_table()?, root.as_os_str().as_bytes()))
    }

    pub fn below(all: Vec<Mount>, root: &[u8]) -> Mounts {
        let root = if root.len() > 1 { root.strip_suffix(b"/").unwrap_or(root) } else { root };
        let at_root = all.iter().rev().find(|m| m.mount_point == root).cloned();
        let root_fs = all
            .iter()
            .rev()
            .filter(|m| crate::claims::matcher::is_ancestor_or_self(&m.mount_point, root))
            .max_by_key(|m| m.mount_point.len())
            .map(|m| {
                let rest = if m.mount_point == b"/" { root } else { &root[m.mount_point.len()..] };
                let base = if m.fs_root == b"/" { &b""[..] } else { &m.fs_root[..] };
                let path = [base, rest].concat();
                (m.dev.clone(), if path.is_empty() { b"/".to_vec() } else { path })
            });
        let list = all
            .into_iter()
            .filter_map(|mut m| {
                let rel = if root == b"/" {
                    m.mount_point.clone()
                } else {
                    let rest = m.mount_point.strip_prefix(root)?;
                    if !rest.starts_with(b"/") {
                        return None;
                    }
                    rest.to_vec()
                };
                if rel == b"/" || rel.is_empty() {
                    return None;
                }
                m.mount_point = rel;
                Some(m)
            })
            .collect();
        Mounts { list, root: at_root, root_fs }
    }

    /// Mount points whose directory (or file) lies on the root's own
    /// filesystem, each once, with the lowest mount there (the one that
    /// hides what the root holds at that path).
    pub fn on_root(&self) -> Vec<&Mount> {
        let mut seen = std::collections::HashSet::new();
        self.list
            .iter()
            .filter(|m| {
                let parent = m.mount_point.iter().rposition(|&b| b == b'/').map_or(&b"/"[..], |i| {
                    if i == 0 {
                        &b"/"[..]
                    } else {
                        &m.mount_point[..i]
                    }
                });
                self.holding(parent).is_none() && seen.insert(m.mount_point.clone())
            })
            .collect()
    }

    /// Whether `m` shows part of the audited root's own filesystem, inside
    /// the root (a bind mount from the ephemeral root: erased with it).
    pub fn on_root_fs(&self, m: &Mount) -> bool {
        self.root_fs.as_ref().is_some_and(|(dev, path)| {
            *dev == m.dev && crate::claims::matcher::is_ancestor_or_self(path, &m.fs_root)
        })
    }

    /// The mount the audited root is the mount point of.
    pub fn root(&self) -> Option<&Mount> {
        self.root.as_ref()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The mount visible at `path` (the last one mounted there).
    pub fn at(&self, path: &[u8]) -> Option<&Mount> {
        self.list.iter().rev().find(|m| m.mount_point == path)
    }

    /// The mount below the root with this mount id (`statx`'s `stx_mnt_id`).
    pub fn by_id(&self, id: u64) -> Option<&Mount> {
        self.list.iter().find(|m| m.id == id)
    }

    /// Every mount at `path`, oldest first (the last one is visible).
    pub fn all_at(&self, path: &[u8]) -> Vec<&Mount> {
        self.list.iter().filter(|m| m.mount_point == path).collect()
    }

    /// The visible mount that holds `path` (the deepest mount point above
    /// or at it); `None`: it is on the root's own filesystem.
    pub fn holding(&self, path: &[u8]) -> Option<&Mount> {
        self.list
            .iter()
            .rev()
            .filter(|m| crate::claims::matcher::is_ancestor_or_self(&m.mount_point, path))
            .max_by_key(|m| m.mount_point.len())
    }
}

/// This process's mount table, as `/proc/self/mountinfo` has it.
pub fn mount_table() -> std::io::Result<Vec<Mount>> {
    Ok(parse_mountinfo(&std::fs::read("/proc/self/mountinfo")?))
}

/// Parses mountinfo text; malformed lines are skipped (the kernel writes it).
pub fn parse_mountinfo(text: &[u8]) -> Vec<Mount> {
    text.split(|&b| b == b'\n')
        .filter_map(|line| {
            let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            let sep = fields.iter().position(|f| *f == b"-")?;
            if sep < 6 || fields.len() < sep + 3 {
                return None;
            }
            Some(Mount {
                id: std::str::from_utf8(fields[0]).ok()?.parse().ok()?,
                parent: std::str::from_utf8(fields[1]).ok()?.parse().ok()?,
                dev: String::from_utf8_lossy(fields[2]).into_owned(),
                fs_root: unescape(fields[3]),
                mount_point: unescape(fields[4]),
                fstype: String::from_utf8_lossy(&unescape(fields[sep + 1])).into_owned(),
                source: unescape(fields[sep + 2]),
            })
        })
        .collect()
}

/// Undoes the kernel's `\ooo` escapes (space, tab, newline, backslash).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && i + 4 <= field.len()
            && field[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let v = field[i + 1..i + 4].iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(v as u8);
            i += 4;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    out
}

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
    let resolved: Vec<u8> = parts.iter().flat_map(|c| [&b"/"[..], c].concat()).collect();
    crate::claims::matcher::is_ancestor_or_self(storage, &resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_into_a_storage_root() {
        assert!(link_points_into(b"/etc/x", b"/persist/etc/x", b"/persist"));
        assert!(link_points_into(b"/etc/x", b"../persist/etc/x", b"/persist"));
        assert!(!link_points_into(b"/etc/x", b"/persistent/etc/x", b"/persist"));
        assert!(!link_points_into(b"/etc/x", b"/persist/../etc/y", b"/persist"));
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

    const SAMPLE: &[u8] = b"\
22 1 0:21 / / rw,relatime shared:1 - tmpfs none rw
23 22 0:22 / /proc rw,nosuid - proc proc rw
30 22 0:40 / /persist rw - zfs rpool/safe/persist rw,xattr
31 22 0:40 /etc/ssh /etc/ssh rw - zfs rpool/safe/persist rw
32 22 0:41 / /mnt/with\\040space rw - ext4 /dev/vdb rw
33 32 0:42 / /mnt/with\\040space/inner rw - tmpfs tmpfs rw
";

    #[test]
    fn mountinfo_fields_and_escapes() {
        let all = parse_mountinfo(SAMPLE);
        assert_eq!(all.len(), 6);
        assert_eq!(all[3].fs_root, b"/etc/ssh");
        assert_eq!(all[3].mount_point, b"/etc/ssh");
        assert_eq!(all[3].fstype, "zfs");
        assert_eq!(all[3].source, b"rpool/safe/persist");
        assert_eq!(all[4].mount_point, b"/mnt/with space");
        assert_eq!(all[3].describe(), "zfs rpool/safe/persist[/etc/ssh]");
        assert_eq!(all[0].describe(), "tmpfs");
    }

    #[test]
    fn mounts_below_a_root_are_renamed() {
        let m = Mounts::below(parse_mountinfo(SAMPLE), b"/mnt/with space");
        assert_eq!(m.list.len(), 1);
        assert_eq!(m.root().map(|r| r.fstype.as_str()), Some("ext4"));
        assert_eq!(m.at(b"/inner").map(|m| m.fstype.as_str()), Some("tmpfs"));
        let top = Mounts::below(parse_mountinfo(SAMPLE), b"/");
        assert_eq!(top.all_at(b"/persist").len(), 1);
        assert_eq!(top.holding(b"/mnt/with space/inner/x").map(|m| m.fstype.as_str()), Some("tmpfs"));
        assert_eq!(top.holding(b"/etc/hostname"), None, "on the root itself");
    }
}
