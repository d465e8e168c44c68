//! The mount table: which mounts exist, where, from what (read from
//! `/proc/self/mountinfo`, renamed to the audited root's view).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

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
    /// A loop device's image file (as this machine names it), and where it
    /// lies when that erases it at boot: what is written on the mount
    /// lives in the image, and goes with it.
    pub image: Option<(Vec<u8>, Option<ImageOn>)>,
}

/// Where a loop device's image lies, when the boot erases it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageOn {
    /// A filesystem that does not survive a reboot (a tmpfs…).
    Volatile,
    /// The audited root's own filesystem, inside the root.
    Root,
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
        if let Some((file, _)) = &self.image {
            out.push_str(" of the image ");
            out.push_str(&String::from_utf8_lossy(file));
        }
        out
    }

    /// Whether nothing written on this mount survives a reboot: a memory
    /// filesystem (tmpfs, ramfs), a RAM block device (zram, brd) whatever
    /// its filesystem, or one of the kernel's own pseudo filesystems. Data
    /// that lands there is erased at boot like the ephemeral root itself,
    /// so no claim is realised there. (An overlay is judged by nothing but
    /// its type: its upper directory is not looked at.)
    pub fn is_volatile(&self) -> bool {
        const VOLATILE: &[&str] = &[
            "tmpfs",
            "ramfs",
            "devtmpfs",
            "proc",
            "sysfs",
            "devpts",
            "mqueue",
            "cgroup",
            "cgroup2",
            "debugfs",
            "tracefs",
            "securityfs",
            "configfs",
            "bpf",
            "hugetlbfs",
            "fusectl",
            "binfmt_misc",
            "nsfs",
            "rpc_pipefs",
        ];
        let ram_device = ["/dev/zram", "/dev/ram"].iter().any(|d| {
            self.source
                .strip_prefix(d.as_bytes())
                .is_some_and(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit))
        });
        VOLATILE.contains(&self.fstype.as_str())
            || ram_device
            || matches!(self.image, Some((_, Some(ImageOn::Volatile))))
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
            .filter(|m| super::path::is_ancestor_or_self(&m.mount_point, root))
            .max_by_key(|m| m.mount_point.len())
            .map(|m| {
                let rest = if m.mount_point == b"/" { root } else { &root[m.mount_point.len()..] };
                let base = if m.fs_root == b"/" { &b""[..] } else { &m.fs_root[..] };
                let path = [base, rest].concat();
                (m.dev.clone(), if path.is_empty() { b"/".to_vec() } else { path })
            });
        let images: Vec<_> = all.iter().map(|m| image_of(m, &all, root_fs.as_ref())).collect();
        let list = all
            .into_iter()
            .zip(images)
            .filter_map(|(mut m, image)| {
                m.image = image;
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
        matches!(m.image, Some((_, Some(ImageOn::Root))))
            || self.root_fs.as_ref().is_some_and(|(dev, path)| on_fs(dev, path, m))
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
            .filter(|m| super::path::is_ancestor_or_self(&m.mount_point, path))
            .max_by_key(|m| m.mount_point.len())
    }
}

/// Whether mount `m` shows part of the filesystem `dev` at or below `path`.
fn on_fs(dev: &str, path: &[u8], m: &Mount) -> bool {
    dev == m.dev && super::path::is_ancestor_or_self(path, &m.fs_root)
}

/// The image file of a loop device mount (`/sys/block/loopN/loop/backing_file`),
/// and whether it lies on a volatile filesystem or on the audited root's
/// own (`root_fs`, as [`Mounts::on_root_fs`] reads it), judged by the
/// mount of this machine that holds it.
fn image_of(
    m: &Mount,
    all: &[Mount],
    root_fs: Option<&(String, Vec<u8>)>,
) -> Option<(Vec<u8>, Option<ImageOn>)> {
    let name = m.source.strip_prefix(b"/dev/")?;
    if !name.starts_with(b"loop") || !name[4..].iter().all(u8::is_ascii_digit) || name.len() == 4 {
        return None;
    }
    let sys = [b"/sys/block/", name, b"/loop/backing_file"].concat();
    let mut file = std::fs::read(std::ffi::OsStr::from_bytes(&sys)).ok()?;
    if file.last() == Some(&b'\n') {
        file.pop();
    }
    let file = file.strip_suffix(b" (deleted)").map(<[u8]>::to_vec).unwrap_or(file);
    let holder = all
        .iter()
        .rev()
        .filter(|h| super::path::is_ancestor_or_self(&h.mount_point, &file))
        .max_by_key(|h| h.mount_point.len())?;
    let fate = if holder.is_volatile() {
        Some(ImageOn::Volatile)
    } else {
        // The image's path inside the filesystem that holds it.
        let rest = if holder.mount_point == b"/" { &file[..] } else { &file[holder.mount_point.len()..] };
        let base = if holder.fs_root == b"/" { &b""[..] } else { &holder.fs_root[..] };
        let inside = Mount { fs_root: [base, rest].concat(), ..holder.clone() };
        root_fs.filter(|(dev, path)| on_fs(dev, path, &inside)).map(|_| ImageOn::Root)
    };
    Some((file, fate))
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
                image: None,
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn memory_and_kernel_filesystems_are_volatile() {
        let all = parse_mountinfo(
            b"1 0 0:1 / /run rw - tmpfs tmpfs rw\n\
              2 0 0:2 / /persist rw - zfs rpool/safe/persist rw\n\
              3 0 252:0 / /var/cache rw - ext4 /dev/zram0 rw\n\
              4 0 0:3 / /dev/shm rw - tmpfs shm rw\n\
              5 0 8:1 / /data rw - ext4 /dev/ram-disk-label rw\n\
              6 0 0:4 / /sys rw - sysfs sysfs rw\n",
        );
        let volatile: Vec<bool> = all.iter().map(Mount::is_volatile).collect();
        assert_eq!(volatile, [true, false, true, true, false, true]);
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
