//! `darlings restore`: one path back from an archive of an old root.
//!
//! darlings runs as root, and the root it writes into belongs to the
//! restored system: any of its users may own a directory on the way
//! (`/home/alice`) and point it anywhere. So every read and write goes
//! through the confined primitives of [`crate::sys::root::write`], and
//! nothing is done by path:
//!
//! - **the archive** is opened read-only: its directories down to the
//!   path without following a symlink or entering a mount (a link on the
//!   way is refused: restore what it points to), then the entry itself;
//! - **the root** is walked from its directory descriptor the same way: a
//!   symlink, a file or a `..` on the way is refused with nothing changed;
//! - the entry, with the parents the root lacks (owner, mode, times and
//!   extended attributes from the archive's directories), is **built in a
//!   private directory** beside the destination, then **moved into place
//!   by one rename**: the root sees all of it or none. With `--force`,
//!   what is there (file, directory, symlink, FIFO) trades places with it
//!   as an entry, never followed or opened, and is removed afterwards;
//! - **however deep** the path or the entry (a user can nest directories
//!   far beyond `PATH_MAX` and the open-file limit), both sides are walked
//!   with a few descriptors open ([`Chain`]): a directory left on the way
//!   down is opened again by name when restore comes back up to it (to
//!   give a made parent its attributes), and must be the same one, or
//!   nothing is changed.
//!
//! The plan is printed first (`--dry-run` stops there). A closed stdout
//! never stops a restore half way: output fails quietly ([`Out`]; rollback
//! has no writer shared by every command yet).

use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use super::{shown, Archive, Target};
use crate::cli::RestoreArgs;
use crate::error::ExitCode;
use crate::sanitize::escape;
use crate::sys::fmt::human_size;
use crate::sys::output::Out;
use crate::sys::root::write::{
    self, Attrs, Chain, Copier, Placed, Side, Staging, Unsupported, Way, WriteError,
};
use crate::sys::root::{check_relative, kind_name, PathError};

/// `darlings restore`.
pub fn restore(args: &RestoreArgs) -> Result<ExitCode> {
    let comps = components(&args.path)?;
    let names = crate::config::TargetNames::new(&args.which, None, None, Some(&args.archive));
    let target = Target::open(&names, false)?;
    let list = target.archives()?;
    let archive = pick(&list, args.from.as_deref())?;
    let (tree, _guard) = match &target {
        Target::Zfs(z) => z.open_archive(archive)?,
        Target::Btrfs(b) => (b.archive_path(archive), None),
    };
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    // Declared after the guard: its descriptors close before the unmount.
    let source = Source::open(&tree, &comps, &archive.name).map_err(|e| {
        if e.is::<NotInArchive>() {
            anyhow!("{e}{}", older_hint(&list, archive, args.from.as_deref()))
        } else {
            e
        }
    })?;
    let dest = Dest::open(&root, &comps, args.force)?;
    let mut out = Out::stdout();
    show(&mut out, &source, &dest, &archive.name)?;
    if args.dry_run {
        line(&mut out, "Dry run: nothing was copied.");
        return finish(out);
    }
    let done = act(source, dest)?;
    let mut text = format!("restored {} from archive {}", dest_text(&root, &comps), shown(&archive.name));
    if done.placed == Placed::Replaced {
        text.push_str(", in place of what was there");
    }
    line(&mut out, &text);
    if !done.unsupported.is_empty() {
        let names: Vec<String> = done
            .unsupported
            .iter()
            .map(|(path, name)| format!("{} ({})", escape(path), escape(name)))
            .collect();
        line(
            &mut out,
            &format!(
                "note: the root's filesystem does not support these extended attributes; not restored: {}",
                super::list(&names)
            ),
        );
    }
    if let Err(e) = done.cleanup {
        bail!(
            "{text}, but the private directory {} beside it could not be removed entirely: {e}",
            done.staging
        );
    }
    finish(out)
}

/// The archive to copy from: the named one, or the newest darlings made
/// that holds data (an archive recorded as holding nothing its blank state
/// lacks — the second of two rollbacks in a row — has nothing to bring
/// back).
fn pick<'a>(list: &'a [Archive], from: Option<&str>) -> Result<&'a Archive> {
    match from {
        Some(name) => list.iter().find(|a| a.name == name).with_context(|| {
            let names: Vec<String> = list.iter().map(|a| shown(&a.name).into_owned()).collect();
            format!("no archive {}; there are: {}", shown(name), names.join(", "))
        }),
        // Only what darlings made: a subvolume or dataset someone else put
        // beside its archives (which a user may fill, and make the newest)
        // is never chosen for root by default.
        None => list.iter().find(|a| a.ours && a.holds_data()).with_context(|| {
            if !list.iter().any(|a| a.ours) {
                "there are no archives darlings made to restore from (give another with --from)".to_owned()
            } else {
                format!(
                    "every archive is recorded as holding nothing its blank state lacks ({}); give one with --from to look anyway",
                    list.iter().map(|a| shown(&a.name).into_owned()).collect::<Vec<_>>().join(", ")
                )
            }
        }),
    }
}

/// What to say when the path is not in the archive chosen by default: the
/// older archives it may be in.
fn older_hint(list: &[Archive], chosen: &Archive, from: Option<&str>) -> String {
    if from.is_some() {
        return String::new();
    }
    let older: Vec<String> = list
        .iter()
        .skip_while(|a| a.name != chosen.name)
        .skip(1)
        .filter(|a| a.ours)
        .map(|a| shown(&a.name).into_owned())
        .collect();
    if older.is_empty() {
        " (the newest archive holding data; there is no older one)".to_owned()
    } else {
        format!(
            " (the newest archive holding data); older archives: {} — give one with --from",
            older.join(", ")
        )
    }
}

/// The names of `path` below `/` (`/var/lib/app` is `var`, `lib`, `app`):
/// absolute, without `.`, `..` or empty names (trailing slashes are
/// dropped). Taken exactly as the root sees it, never interpreted.
fn components(path: &Path) -> Result<Vec<Vec<u8>>> {
    let raw = path.as_os_str().as_bytes();
    let text = escape(raw);
    if !raw.starts_with(b"/") {
        bail!("restore takes an absolute path, as the root sees it (like /etc/nixos), not {text}");
    }
    let end = raw.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    match check_relative(&raw[..end]) {
        Ok(b".") => bail!("restore brings back one path below /, not / itself"),
        Ok(rel) => Ok(rel.split(|&b| b == b'/').map(<[u8]>::to_vec).collect()),
        Err(PathError::Dot) => {
            bail!(
                "{text} has a `.` or `..` component: give the path as the root sees it; nothing was changed"
            )
        }
        Err(e) => bail!("{text} has {e}: give the path as the root sees it; nothing was changed"),
    }
}

/// `/a/b` for the first `n` names (the path as the root sees it).
fn inside(comps: &[Vec<u8>]) -> Vec<u8> {
    let mut path = Vec::new();
    for c in comps {
        path.push(b'/');
        path.extend_from_slice(c);
    }
    if path.is_empty() {
        path.push(b'/');
    }
    path
}

/// The path on this machine, escaped for a terminal: `ROOT/a/b`.
fn dest_text(root: &Path, comps: &[Vec<u8>]) -> String {
    let mut path = root.as_os_str().as_bytes().to_vec();
    while path.len() > 1 && path.ends_with(b"/") {
        path.pop();
    }
    if !comps.is_empty() {
        if path == b"/" {
            path.clear();
        }
        path.extend_from_slice(&inside(comps));
    }
    escape(&path).into_owned()
}

/// The path is not in the archive (other errors are refusals).
#[derive(Debug)]
struct NotInArchive(String);

impl std::fmt::Display for NotInArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotInArchive {}

/// The archive's side: its directories down to the entry's parent (a few
/// open at a time, each one's attributes recorded on the way down: see
/// [`Chain`]), and what the entry is.
struct Source {
    dirs: Chain<OwnedFd>,
    attrs: Attrs,
    entries: u64,
    bytes: u64,
}

impl Source {
    fn open(tree: &Path, comps: &[Vec<u8>], name: &str) -> Result<Source> {
        let path = escape(&inside(comps)).into_owned();
        let name = shown(name);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let top = rustix::fs::open(tree, flags, Mode::empty())
            .with_context(|| format!("cannot open archive {name} at {}", tree.display()))?;
        let mut dirs = Chain::new(top, Side::Archive, b"");
        let (last, parents) = comps.split_last().context("no path")?;
        for (i, comp) in parents.iter().enumerate() {
            let here = || escape(&inside(&comps[..=i])).into_owned();
            match dirs.open(comp) {
                Ok(fd) => dirs.push(comp, fd).map_err(|e| anyhow!("archive {name}: {e}"))?,
                Err(Errno::LOOP) => {
                    let to = dirs
                        .dir()
                        .ok()
                        .and_then(|from| rustix::fs::readlinkat(from, comp.as_slice(), Vec::new()).ok())
                        .map(|t| escape(t.as_bytes()).into_owned())
                        .unwrap_or_default();
                    bail!(
                        "{path} passes through a symlink in the archive ({} -> {to}); restore what it points to instead",
                        here()
                    )
                }
                Err(Errno::NOENT | Errno::NOTDIR) => {
                    return Err(NotInArchive(format!("{path} is not in archive {name}")).into())
                }
                Err(Errno::XDEV) => bail!("{path} lies under a mount point ({}) in archive {name}", here()),
                Err(e) => bail!("cannot open {} in archive {name}: {}", here(), io::Error::from(e)),
            }
        }
        let parent = dirs.dir().map_err(|e| anyhow!("archive {name}: {e}"))?;
        let attrs = match write::attrs_at(parent, last) {
            Ok(a) => a,
            Err(Errno::NOENT) => return Err(NotInArchive(format!("{path} is not in archive {name}")).into()),
            Err(e) => bail!("cannot read {path} in archive {name}: {}", io::Error::from(e)),
        };
        let (entries, bytes) = write::measure(parent, last).map_err(|e| anyhow!("archive {name}: {e}"))?;
        Ok(Source { dirs, attrs, entries, bytes })
    }
}

/// The root's side: the deepest directory of the path that exists, open;
/// the names from `missing` on do not exist; what is at the path now.
struct Dest {
    root: PathBuf,
    comps: Vec<Vec<u8>>,
    dir: OwnedFd,
    missing: usize,
    existing: Option<(Attrs, Option<Vec<u8>>)>,
}

impl Dest {
    /// Walks the root down to the path's parent without following a link;
    /// refuses a symlink or a non-directory on the way, and (without
    /// `force`) an existing entry.
    fn open(root: &Path, comps: &[Vec<u8>], force: bool) -> Result<Dest> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let top = rustix::fs::open(root, flags, Mode::empty())
            .with_context(|| format!("cannot open the root {}", root.display()))?;
        let (last, parents) = comps.split_last().context("no path")?;
        let names: Vec<&[u8]> = parents.iter().map(Vec::as_slice).collect();
        let way = write::walk_dirs(top.as_fd(), &names)
            .with_context(|| format!("cannot walk the root to {}", dest_text(root, comps)))?;
        let (dir, missing) = match way {
            Way::Open { dir, missing } => (dir, missing),
            Way::Blocked { at, kind: FileType::Symlink, target } => bail!(
                "{} is a symlink (-> {}): restore never writes through a link, so nothing was changed. \
                 Restore what it points to, or remove the link first",
                dest_text(root, &comps[..=at]),
                escape(&target.unwrap_or_default())
            ),
            Way::Blocked { at, kind, .. } => bail!(
                "{} is a {} on the root, not a directory; nothing was changed",
                dest_text(root, &comps[..=at]),
                kind_name(kind)
            ),
        };
        let existing = if missing == parents.len() {
            match write::attrs_at(dir.as_fd(), last) {
                Ok(a) => {
                    let target = (a.kind == FileType::Symlink)
                        .then(|| rustix::fs::readlinkat(&dir, last.as_slice(), Vec::new()).ok())
                        .flatten()
                        .map(|t| t.into_bytes());
                    Some((a, target))
                }
                Err(Errno::NOENT) => None,
                Err(e) => bail!("cannot look at {}: {}", dest_text(root, comps), io::Error::from(e)),
            }
        } else {
            None
        };
        if existing.is_some() && !force {
            bail!(
                "{} exists; nothing was copied (pass --force to replace it with the archive's version)",
                dest_text(root, comps)
            );
        }
        Ok(Dest { root: root.to_owned(), comps: comps.to_vec(), dir, missing, existing })
    }

    fn text(&self, n: usize) -> String {
        dest_text(&self.root, &self.comps[..n])
    }
}

/// `1000:100 0750`.
fn owner_mode(a: &Attrs) -> String {
    format!("{}:{} {:04o}", a.uid, a.gid, a.perm)
}

/// The plan, for people: what is made, copied and replaced, with the
/// owners and modes it gets.
fn show(out: &mut Out, source: &Source, dest: &Dest, archive: &str) -> Result<()> {
    let n = dest.comps.len();
    line(out, &format!("Restore {} from archive {}:", dest.text(n), shown(archive)));
    for i in dest.missing..n - 1 {
        let a = source.dirs.attrs(i).context("archive: no such level")?;
        line(out, &format!("  make directory  {}  ({}, as in the archive)", dest.text(i + 1), owner_mode(a)));
    }
    let a = &source.attrs;
    let what = match a.kind {
        FileType::Directory => format!(
            "directory {} ({} entries, {}; {})",
            dest.text(n),
            source.entries,
            human_size(source.bytes),
            owner_mode(a)
        ),
        FileType::RegularFile => format!("file {} ({}; {})", dest.text(n), human_size(a.size), owner_mode(a)),
        kind => format!("{} {} ({})", kind_name(kind), dest.text(n), owner_mode(a)),
    };
    line(out, &format!("  copy {what}"));
    if let Some((now, target)) = &dest.existing {
        line(
            out,
            &match (now.kind, target) {
                (FileType::Symlink, Some(t)) => format!(
                    "  replacing the symlink there (-> {}): the link itself; what it points to is left alone",
                    escape(t)
                ),
                (FileType::Directory, _) => {
                    "  replacing the directory there: removed once the archive's copy is in place".to_owned()
                }
                (kind, _) => format!("  replacing the {} there (never opened)", kind_name(kind)),
            },
        );
    }
    line(
        out,
        &format!(
            "  (made in a private directory in {}, then moved into place by one rename)",
            dest.text(dest.missing)
        ),
    );
    Ok(())
}

/// What a restore did.
struct Done {
    placed: Placed,
    unsupported: Unsupported,
    staging: String,
    cleanup: Result<(), WriteError>,
}

/// Builds the entry (and the missing parents) in a private directory and
/// moves it into place. Any failure before the move changes nothing.
fn act(source: Source, dest: Dest) -> Result<Done> {
    let Dest { root, comps, dir, missing, existing } = dest;
    let text = |n: usize| dest_text(&root, &comps[..n]);
    let parent = text(missing);
    let staging = Staging::create(dir).map_err(|e| anyhow!("cannot restore into {parent}: {e}"))?;
    let staging_text = format!("{}/{}", parent.trim_end_matches('/'), escape(staging.name()));
    let fail = |what: String, staging: Staging| {
        let left = match staging.remove() {
            Ok(()) => String::new(),
            Err(e) => format!(" (the private directory {staging_text} is left: {e})"),
        };
        anyhow!("{what}; nothing was changed{left}")
    };
    let unsupported = match build(&staging, source, &comps, missing) {
        Ok(u) => u,
        Err(e) => return Err(fail(format!("cannot restore {} ({e})", text(comps.len())), staging)),
    };
    let top = &comps[missing];
    let placed = match staging.place(top, top, existing.is_some()) {
        Ok(p) => p,
        Err(e) if e.errno() == Some(Errno::EXIST) => {
            return Err(fail(format!("{} appeared while darlings restored it", text(missing + 1)), staging));
        }
        Err(e) => return Err(fail(format!("cannot move it into {parent}: {e}"), staging)),
    };
    Ok(Done { placed, unsupported, staging: staging_text, cleanup: staging.remove() })
}

/// Makes the missing parents inside the staging directory, copies the
/// entry into the deepest, then gives the parents the archive's owner,
/// mode, extended attributes and times (after what they hold), bottom up.
/// Both sides are [`Chain`]s: a few descriptors open however deep the path
/// goes; a directory reopened on the way back up must be the one made (or
/// read) on the way down. Returns the extended attributes the root's
/// filesystem refused.
fn build(
    staging: &Staging,
    mut source: Source,
    comps: &[Vec<u8>],
    missing: usize,
) -> Result<Unsupported, WriteError> {
    let mut copier = Copier::new(staging);
    // `components` never gives an empty path.
    let (parents, last) = comps.split_at(comps.len() - 1);
    let last = &last[0];
    let mut made = Chain::new(staging.dir(), Side::Staging, b"");
    let mut rel = Vec::new();
    for comp in parents.iter().skip(missing) {
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(comp);
        let fd = copier.make_dir(made.dir()?, comp, &rel)?;
        made.push(comp, fd)?;
    }
    let parent_len = rel.len();
    if !rel.is_empty() {
        rel.push(b'/');
    }
    rel.extend_from_slice(last);
    copier.copy(source.dirs.dir()?, last, made.dir()?, &rel)?;
    rel.truncate(parent_len);
    // Level by level back up; the archive's chain is as deep as the
    // parents, the made one as deep as the missing ones.
    while made.depth() > 0 {
        copier.finish_dir(source.dirs.dir()?, made.dir()?, &rel)?;
        let name = made.pop()?;
        rel.truncate(rel.len().saturating_sub(name.len() + 1));
        if made.depth() > 0 {
            source.dirs.pop()?;
        }
    }
    Ok(copier.unsupported)
}

/// One line of restore's output; a reader that went away (`| head`) or any
/// other failure to print never stops a restore half way ([`Out`]).
fn line(out: &mut Out, text: &str) {
    let _ = writeln!(out, "{text}");
}

/// The restore's exit: done, or 2 when printing failed for another reason
/// than a closed pipe (the copy itself has finished either way).
fn finish(out: Out) -> Result<ExitCode> {
    out.finish().context("the restore finished, but its report could not be written to stdout")?;
    Ok(ExitCode::Clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_taken_as_the_root_sees_them() {
        let ok = |p: &str| components(Path::new(p)).expect(p);
        assert_eq!(ok("/var/lib/app"), [b"var".to_vec(), b"lib".to_vec(), b"app".to_vec()]);
        assert_eq!(ok("/etc/nixos/"), [b"etc".to_vec(), b"nixos".to_vec()]);
        for bad in ["var/lib", "/", "/var/../etc/shadow", "/var/./lib", "/var//lib", ""] {
            assert!(components(Path::new(bad)).is_err(), "{bad}");
        }
        let err = components(Path::new("/var/lib/../../etc")).expect_err("dots").to_string();
        assert!(err.contains("`..`") && err.contains("nothing was changed"), "{err}");
    }

    #[test]
    fn destinations_are_shown_below_the_root() {
        let c = |p: &str| components(Path::new(p)).expect(p);
        assert_eq!(dest_text(Path::new("/"), &c("/etc/x")), "/etc/x");
        assert_eq!(dest_text(Path::new("/mnt/root/"), &c("/etc/x")), "/mnt/root/etc/x");
        assert_eq!(dest_text(Path::new("/mnt/root"), &[]), "/mnt/root");
        assert_eq!(dest_text(Path::new("/"), &[]), "/");
        assert_eq!(dest_text(Path::new("/r"), &c("/a\nb")), "/r/a\\nb");
    }
}
