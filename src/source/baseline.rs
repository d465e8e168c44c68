//! Comparison with a blank tree: a read-only btrfs snapshot of the blank
//! root, `/.zfs/snapshot/blank`, a mounted pristine image.
//!
//! Both trees are walked once each, directory by directory, one filesystem
//! each, never following a symlink: names in both are compared (type, size,
//! mode, owner, mtime, symlink target), names only in the live tree are
//! created, names only in the blank tree removed, with whole subtrees below
//! them. Renames are recognised afterwards by inode number, which btrfs and
//! ZFS snapshots preserve: a created path with the inode of a removed one
//! is that path renamed. A renamed directory is one change, like `zfs diff`
//! reports it: what is unchanged below it comes back under its old name and
//! is not listed. The result is the same change list a `zfs diff` gives,
//! fed into the same [`ChangeTree`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};

use rustix::io::Errno;

use super::tree::ChangeTree;
use super::walk::{list_names, Op, Root, WalkError};
use super::zfs_diff::{DiffChange, DiffLine};
use super::{FileKind, Meta};

/// One side of a change: where it is and what it was.
#[derive(Debug, Clone)]
struct Seen {
    path: Vec<u8>,
    meta: Meta,
    target: Option<Vec<u8>>,
}

/// What differs; errors on single entries are kept and the rest goes on.
#[derive(Debug, Default)]
pub struct Comparison {
    pub errors: Vec<WalkError>,
}

fn child(path: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = path.to_vec();
    if out != b"/" {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

fn rel(path: &[u8]) -> &[u8] {
    path.strip_prefix(b"/").unwrap_or(path)
}

struct Side<'a> {
    root: &'a Root,
}

impl Side<'_> {
    fn open(&self, path: &[u8]) -> Result<OwnedFd, Errno> {
        self.root.open_dir(path)
    }

    fn seen(&self, dir: &OwnedFd, path: Vec<u8>, name: &[u8]) -> Result<Seen, Errno> {
        let meta = self.root.stat_at(dir.as_fd(), name)?;
        let target = if meta.kind == FileKind::Symlink { self.root.read_link(rel(&path)).ok() } else { None };
        Ok(Seen { path, meta, target })
    }
}

/// The same object, unchanged: nothing about it is lost at rollback.
fn same(a: &Seen, b: &Seen) -> bool {
    let (x, y) = (&a.meta, &b.meta);
    x.kind == y.kind
        && x.mode == y.mode
        && x.uid == y.uid
        && x.gid == y.gid
        && (x.kind == FileKind::Dir
            || (x.size == y.size && x.mtime == y.mtime && x.mtime_nsec == y.mtime_nsec))
        && a.target == b.target
}

fn line(change: DiffChange, seen: &Seen, renamed_to: Option<&[u8]>) -> DiffLine<'static> {
    DiffLine {
        ctime: (seen.meta.mtime, seen.meta.mtime_nsec),
        change,
        kind: seen.meta.kind,
        path: Cow::Owned(seen.path.clone()),
        renamed_to: renamed_to.map(|p| Cow::Owned(p.to_vec())),
        links: None,
    }
}

/// Compares the live tree with the blank one and adds every difference to
/// `tree`.
pub fn compare(live: &Root, blank: &Root, tree: &mut ChangeTree) -> Comparison {
    let (l, b) = (Side { root: live }, Side { root: blank });
    let mut out = Comparison::default();
    let mut created: Vec<Seen> = Vec::new();
    let mut removed: Vec<Seen> = Vec::new();
    let mut modified: Vec<Seen> = Vec::new();
    // Directories present on both sides, to compare; and one-sided subtrees.
    let mut pairs = vec![b"/".to_vec()];
    let mut only_live: Vec<Vec<u8>> = Vec::new();
    let mut only_blank: Vec<Vec<u8>> = Vec::new();

    let mut error = |path: &[u8], op, errno| out.errors.push(WalkError { path: path.to_vec(), op, errno });
    while let Some(path) = pairs.pop() {
        let (ld, bd) = match (l.open(&path), b.open(&path)) {
            (Ok(ld), Ok(bd)) => (ld, bd),
            (Err(e), _) => {
                error(&path, Op::Open, e);
                continue;
            }
            (_, Err(e)) => {
                error(&path, Op::Open, e);
                continue;
            }
        };
        let (ln, bn) = match (list_names(ld.as_fd()), list_names(bd.as_fd())) {
            (Ok(x), Ok(y)) => (x, y),
            (Err(e), _) | (_, Err(e)) => {
                error(&path, Op::Read, e);
                continue;
            }
        };
        let (mut i, mut j) = (0, 0);
        while i < ln.len() || j < bn.len() {
            let order = match (ln.get(i), bn.get(j)) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            let name = if order == std::cmp::Ordering::Greater { &bn[j] } else { &ln[i] };
            let p = child(&path, name);
            let lseen = (order != std::cmp::Ordering::Greater).then(|| l.seen(&ld, p.clone(), name));
            let bseen = (order != std::cmp::Ordering::Less).then(|| b.seen(&bd, p.clone(), name));
            match order {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    i += 1;
                    j += 1;
                }
            }
            let lseen = match lseen.transpose() {
                Ok(s) => s,
                Err(e) => {
                    error(&p, Op::Stat, e);
                    continue;
                }
            };
            let bseen = match bseen.transpose() {
                Ok(s) => s.filter(|s| !s.meta.other_fs),
                Err(e) => {
                    error(&p, Op::Stat, e);
                    continue;
                }
            };
            // Another filesystem mounted in the live tree: not its content.
            let lseen =
                lseen.filter(|s| !(s.meta.other_fs && s.meta.kind == FileKind::Dir && bseen.is_some()));
            match (lseen, bseen) {
                (Some(ls), Some(bs)) if ls.meta.kind == bs.meta.kind => {
                    if ls.meta.kind == FileKind::Dir && !ls.meta.other_fs {
                        pairs.push(p);
                    }
                    if !same(&ls, &bs) {
                        modified.push(ls);
                    }
                }
                (ls, bs) => {
                    if let Some(bs) = bs {
                        if bs.meta.kind == FileKind::Dir {
                            only_blank.push(p.clone());
                        }
                        removed.push(bs);
                    }
                    if let Some(ls) = ls {
                        if ls.meta.kind == FileKind::Dir && !ls.meta.other_fs {
                            only_live.push(p);
                        }
                        created.push(ls);
                    }
                }
            }
        }
    }
    // Everything below a created directory is created; below a removed one, removed.
    for (side, roots, into) in [(&l, only_live, &mut created), (&b, only_blank, &mut removed)] {
        let mut stack = roots;
        while let Some(path) = stack.pop() {
            let dir = match side.open(&path) {
                Ok(d) => d,
                Err(e) => {
                    error(&path, Op::Open, e);
                    continue;
                }
            };
            let names = match list_names(dir.as_fd()) {
                Ok(n) => n,
                Err(e) => {
                    error(&path, Op::Read, e);
                    continue;
                }
            };
            for name in names {
                let p = child(&path, &name);
                match side.seen(&dir, p.clone(), &name) {
                    Ok(s) => {
                        if s.meta.kind == FileKind::Dir && !s.meta.other_fs {
                            stack.push(p);
                        }
                        into.push(s);
                    }
                    Err(e) => error(&p, Op::Stat, e),
                }
            }
        }
    }
    renames(created, removed, modified, tree);
    out
}

/// Pairs created and removed paths by inode into renames, folds what is
/// unchanged below a renamed directory, and feeds the changes to `tree`.
fn renames(created: Vec<Seen>, removed: Vec<Seen>, modified: Vec<Seen>, tree: &mut ChangeTree) {
    let by_ino: HashMap<(u64, FileKind), usize> =
        removed.iter().enumerate().map(|(i, s)| ((s.meta.ino, s.meta.kind), i)).collect();
    let mut renamed_from: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut gone = vec![false; removed.len()];
    for s in &created {
        if let Some(&i) = by_ino.get(&(s.meta.ino, s.meta.kind)) {
            renamed_from.insert(s.path.clone(), i);
            gone[i] = true;
        }
    }
    // Renamed directories, new path → old path, to find what moved with them.
    let dirs: Vec<(Vec<u8>, Vec<u8>)> = created
        .iter()
        .filter(|s| s.meta.kind == FileKind::Dir)
        .filter_map(|s| renamed_from.get(&s.path).map(|&i| (s.path.clone(), removed[i].path.clone())))
        .collect();
    // The old path a path would have had if only its renamed ancestor moved.
    let moved_with = |path: &[u8]| -> Option<Vec<u8>> {
        dirs.iter()
            .filter(|(new, _)| path.starts_with(new) && path.get(new.len()) == Some(&b'/'))
            .max_by_key(|(new, _)| new.len())
            .map(|(new, old)| [old.as_slice(), &path[new.len()..]].concat())
    };
    for s in &created {
        match renamed_from.get(&s.path) {
            Some(&i) => {
                let old = &removed[i];
                if moved_with(&s.path).as_deref() == Some(old.path.as_slice()) {
                    // Carried along by its directory's rename.
                    if !same(s, old) {
                        tree.add(line(DiffChange::Modified, s, None));
                    }
                } else {
                    tree.add(line(DiffChange::Renamed, old, Some(&s.path)));
                    if !same(s, old) {
                        tree.add(line(DiffChange::Modified, s, None));
                    }
                }
            }
            None => tree.add(line(DiffChange::Created, s, None)),
        }
    }
    for (i, s) in removed.iter().enumerate() {
        if !gone[i] {
            tree.add(line(DiffChange::Removed, s, None));
        }
    }
    for s in &modified {
        tree.add(line(DiffChange::Modified, s, None));
    }
}
