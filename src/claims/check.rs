//! The one claim checker: is a claimed path really persisted?
//!
//! A claim (a keep rule) is *realised* when its path is a mount point of
//! persistent storage or a symlink into it; otherwise whatever lies there is
//! on the ephemeral root and lost at the next boot: the claim is *broken*.
//! A claimed path that does not exist is *missing* (nothing to lose).
//! A declared claim whose storage root is reached through a symlink in the
//! audited root is broken, with the link named: no link to a storage root
//! is followed, and one on the ephemeral root is gone after rollback.
//!
//! Every command that needs the answer asks [`Checker::check`]: the audit's
//! classification whenever it meets a claimed path, [`Claims::check_all`]
//! for every literal claim before any source runs (so a claim on a path that
//! no change list names is still checked), `explain`, and through the audit
//! rollback's guards. There is no second implementation to drift.

use std::collections::BTreeMap;

use rustix::fs::{FileType, OFlags};
use rustix::io::Errno;

use super::live::{self, LinkTarget};
use super::matcher::{Matcher, Origin, RuleId, RuleKind};
use crate::sys::meta::{FileKind, Meta};
use crate::sys::mounts::{Mount, Mounts};
use crate::sys::path::depth_of;
use crate::sys::root::{open_beneath, Root};

/// What a claim is, on the live system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Realised: what it names is persisted (the detail says how).
    Kept(String),
    /// Declared persistent, but erased at the next boot. `enter`: plain
    /// content on the root, whose every entry is at risk and is counted.
    Broken { reason: String, enter: bool },
    /// Nothing there.
    Missing,
    /// Not checked: trusted by `--assume-claims`, or no live tree to look at.
    Unverified(&'static str),
}

/// Why an unchecked claim was trusted.
pub const ASSUMED: &str = "assumed (--assume-claims)";
/// A claim read from a change list with no live tree behind it.
pub const OFFLINE: &str = "not checked: no live tree (give --root where it is mounted)";
/// A nested btrfs subvolume: another filesystem, but not a mount.
pub const NESTED: &str = "a nested btrfs subvolume, not a mount: it belongs to the root and goes with it at \
                          rollback (its content is not walked)";

/// Checks claims against one live system.
pub struct Checker<'a> {
    root: Option<&'a Root>,
    mounts: &'a Mounts,
    assume: bool,
}

impl<'a> Checker<'a> {
    /// `root`: the live tree (`None` for a change list read offline);
    /// `assume`: `--assume-claims`.
    pub fn new(root: Option<&'a Root>, mounts: &'a Mounts, assume: bool) -> Checker<'a> {
        Checker { root, mounts, assume }
    }

    /// The live tree, when there is one.
    pub fn root(&self) -> Option<&'a Root> {
        self.root
    }

    pub fn mounts(&self) -> &'a Mounts {
        self.mounts
    }

    pub fn assumed(&self) -> bool {
        self.assume
    }

    /// The state of the claim on `path` that must be persisted in
    /// `storage` (a declared claim's storage root; `None` for a person's
    /// rule). `meta`: the path's metadata when the caller has it (a walk);
    /// otherwise it is read here, inside the root, following no symlink.
    pub fn check(&self, path: &[u8], meta: Option<&Meta>, storage: Option<&[u8]>) -> Result<State, Errno> {
        if self.assume {
            return Ok(State::Unverified(ASSUMED));
        }
        let Some(root) = self.root else { return Ok(State::Unverified(OFFLINE)) };
        let Some(meta) = meta else { return self.check_path(path, storage).map(|(_, state)| state) };
        if meta.subvolume {
            return Ok(State::Broken { reason: NESTED.into(), enter: false });
        }
        if let Some(reason) = storage.and_then(|st| linked_storage(root, st)) {
            // Plain content is at risk, and counted; a mount or a link is not entered.
            let enter = !meta.other_fs && meta.kind != FileKind::Symlink;
            return Ok(State::Broken { reason, enter });
        }
        if meta.other_fs {
            return Ok(self.mounted(path, meta, storage));
        }
        if meta.kind == FileKind::Symlink {
            return Ok(self.symlink(root, path, storage));
        }
        Ok(State::Broken { reason: self.plain_content(path, storage), enter: true })
    }

    /// [`Checker::check`] for a path the caller has not read: stats it
    /// (inside the root, following no symlink) and says its type too.
    pub fn check_path(&self, path: &[u8], storage: Option<&[u8]>) -> Result<(FileKind, State), Errno> {
        let meta = match self.root {
            Some(root) => match root.stat(path.strip_prefix(b"/").unwrap_or(path)) {
                Ok(m) => Some(m),
                Err(Errno::NOENT | Errno::NOTDIR) => return Ok((FileKind::Unknown, State::Missing)),
                Err(_) if self.assume => None,
                // A mount, or a symlink, on the way to it.
                Err(Errno::XDEV) => return Ok((FileKind::Unknown, self.inside_mount(path))),
                Err(Errno::LOOP) => {
                    return Ok((FileKind::Unknown, self.through_symlink(root, path, storage)))
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        let kind = meta.map_or(FileKind::Unknown, |m| m.kind);
        Ok((kind, self.check(path, meta.as_ref(), storage)?))
    }

    /// A claim below a mount point: on that mount's filesystem.
    fn inside_mount(&self, path: &[u8]) -> State {
        match self.mounts.holding(path) {
            Some(m) => self.inside(m).unwrap_or_else(|| {
                State::Kept(format!(
                    "on another filesystem: inside {} mounted at {}",
                    m.describe(),
                    esc(&m.mount_point)
                ))
            }),
            None => State::Kept("on another filesystem".into()),
        }
    }

    /// Why a claim inside the mount `m` is erased at boot, when it is: the
    /// mount shows the ephemeral root itself, or a filesystem that does not
    /// survive a reboot.
    fn inside(&self, m: &Mount) -> Option<State> {
        let reason = if self.mounts.on_root_fs(m) {
            format!(
                "inside {}, mounted at {} from the ephemeral root itself: erased with it",
                m.describe(),
                esc(&m.mount_point)
            )
        } else if m.is_volatile() {
            format!("inside {}", volatile(m))
        } else {
            return None;
        };
        Some(State::Broken { reason, enter: false })
    }

    /// A claim reached through a symlinked parent directory: where the
    /// link leads, resolved inside the root, decides, as for a claimed
    /// symlink: onto another filesystem that survives a reboot, and (for a
    /// declared claim) into its storage root.
    fn through_symlink(&self, root: &Root, path: &[u8], storage: Option<&[u8]>) -> State {
        let broken = |reason| State::Broken { reason, enter: false };
        let rel = path.strip_prefix(b"/").unwrap_or(path);
        let Ok(meta) = root.resolve_stat(rel) else { return State::Missing };
        let link = first_link(root, rel).and_then(|(at, target)| Some((at, target.ok()?)));
        let via = match &link {
            Some((at, target)) => {
                format!("a parent directory, /{}, is a symlink to {}", esc(at), esc(target))
            }
            None => "a parent directory is a symlink".to_owned(),
        };
        if !meta.other_fs {
            return broken(format!("{via}, which is on the ephemeral root"));
        }
        if self.bind_from_root(root, rel).is_some() {
            return broken(self.erased_with_root(&format!("{via}, into"), root, rel));
        }
        if let (Some(st), Some((at, target))) = (storage, &link) {
            // The path below the link, on from where the link leads.
            let lands = [&live::lexical(&[b"/", &at[..]].concat(), target)[..], &rel[at.len()..]].concat();
            if !crate::sys::path::is_ancestor_or_self(st, &lands) {
                return broken(format!("{via}, outside its storage root {}", esc(st)));
            }
        }
        if let Some(m) = self.resolved_volatile(root, rel) {
            return broken(format!("{via}, on {}", volatile(m)));
        }
        match storage {
            Some(st) => State::Kept(format!(
                "reached through a symlinked parent, on another filesystem (declared in {})",
                esc(st)
            )),
            None => State::Kept("reached through a symlinked parent, on another filesystem".into()),
        }
    }

    /// The mount what `rel` resolves to lies on, inside the root, when
    /// nothing written there survives a reboot.
    fn resolved_volatile(&self, root: &Root, rel: &[u8]) -> Option<&'a Mount> {
        let id = root.resolve_mount_id(rel).ok()??;
        self.mounts.by_id(id).filter(|m| m.is_volatile())
    }

    /// A claim on another filesystem than the root: a mount point, or a
    /// path inside one.
    fn mounted(&self, path: &[u8], meta: &Meta, storage: Option<&[u8]>) -> State {
        let broken = |reason| State::Broken { reason, enter: false };
        let Some(visible) = self.mounts.at(path) else {
            // Inside a mount (or the tree cannot show its mounts).
            let holding = self.mounts.holding(path);
            if let Some(state) = holding.and_then(|m| self.inside(m)) {
                return state;
            }
            return match holding {
                Some(m) if m.mount_point != path => State::Kept(format!(
                    "on another filesystem: inside {} mounted at {}",
                    m.describe(),
                    esc(&m.mount_point)
                )),
                _ if meta.kind == FileKind::Dir && !self.mounts.is_empty() => {
                    State::Kept("mount point (another filesystem)".into())
                }
                _ => State::Kept(what(meta).into()),
            };
        };
        if self.mounts.on_root_fs(visible) {
            return broken(format!(
                "{} from the ephemeral root itself ({}): erased with it",
                what(meta),
                visible.describe()
            ));
        }
        if let Some(storage) = storage {
            if !live::mount_is_from(visible, path, storage, self.mounts) {
                return broken(self.not_from(path, storage, visible));
            }
        }
        if visible.is_volatile() {
            return broken(format!(
                "{} ({}), a filesystem that does not survive a reboot",
                what(meta),
                visible.describe()
            ));
        }
        State::Kept(format!("{} ({})", what(meta), visible.describe()))
    }

    /// Why the mount at `path` is not the bind from `storage`.
    fn not_from(&self, path: &[u8], storage: &[u8], visible: &Mount) -> String {
        let all = self.mounts.all_at(path);
        let earlier = all[..all.len().saturating_sub(1)]
            .iter()
            .any(|m| live::mount_is_from(m, path, storage, self.mounts));
        if earlier {
            format!(
                "the bind mount from {} is shadowed by a later mount ({})",
                esc(storage),
                visible.describe()
            )
        } else if self.mounts.holding(storage).is_none() {
            format!("its storage root {} is not mounted: it is on the ephemeral root", esc(storage))
        } else {
            format!("mounted from {}, not from its storage root {}", visible.describe(), esc(storage))
        }
    }

    /// The mount holding what `rel` resolves to, when it is a bind mount
    /// from the ephemeral root itself (another mount, the same filesystem).
    fn bind_from_root(&self, root: &Root, rel: &[u8]) -> Option<&'a Mount> {
        let id = root.resolve_mount_id(rel).ok()??;
        self.mounts.by_id(id).filter(|m| self.mounts.on_root_fs(m))
    }

    /// "`lead` inside MOUNT, mounted at POINT from the ephemeral root itself".
    fn erased_with_root(&self, lead: &str, root: &Root, rel: &[u8]) -> String {
        match self.bind_from_root(root, rel) {
            Some(m) => format!(
                "{lead} {}, mounted at {} from the ephemeral root itself: erased with it",
                m.describe(),
                esc(&m.mount_point)
            ),
            None => format!("{lead} a mount from the ephemeral root itself: erased with it"),
        }
    }

    fn symlink(&self, root: &Root, path: &[u8], storage: Option<&[u8]>) -> State {
        let broken = |reason| State::Broken { reason, enter: false };
        let rel = path.strip_prefix(b"/").unwrap_or(path);
        match live::check_symlink(root, path) {
            LinkTarget::OtherFilesystem(t) if self.bind_from_root(root, rel).is_some() => {
                broken(self.erased_with_root(&format!("symlink to {} inside", esc(&t)), root, rel))
            }
            LinkTarget::OtherFilesystem(t) => match storage {
                Some(st) if !live::link_points_into(path, &t, st) => {
                    broken(format!("symlink to {}, outside its storage root {}", esc(&t), esc(st)))
                }
                _ => match self.resolved_volatile(root, rel) {
                    Some(m) => broken(format!("symlink to {}, on {}", esc(&t), volatile(m))),
                    None => State::Kept(format!("symlink to {}", esc(&t))),
                },
            },
            LinkTarget::SameFilesystem(t) => {
                broken(format!("symlink to {}, which is on the ephemeral root", esc(&t)))
            }
            LinkTarget::Missing(t) => broken(format!("symlink to {}, which does not exist", esc(&t))),
            LinkTarget::Unreadable(e) => broken(format!("symlink that cannot be read: {e}")),
        }
    }

    /// Why a claimed path holding plain content is broken.
    fn plain_content(&self, path: &[u8], storage: Option<&[u8]>) -> String {
        let plain = "plain content on the ephemeral root";
        let (Some(storage), Some(root)) = (storage, self.root) else { return plain.into() };
        let source = [storage, path].concat();
        match root.exists(source.strip_prefix(b"/").unwrap_or(&source)) {
            Ok(false) => format!(
                "{plain}; its persistent source {} is missing, so nothing is mounted there",
                esc(&source)
            ),
            _ => format!("{plain}; nothing is mounted from {} over it", esc(&source)),
        }
    }
}

/// Why a claim whose storage root is reached through a symlink in the
/// audited root (the storage root itself, or a parent of it) cannot be
/// kept: darlings follows no link to a storage root (every lookup here
/// follows none, and crosses mounts), and a link on the ephemeral root is
/// gone after rollback, so nothing can be mounted from it at the next boot.
/// `None`: no symlink on the way (or the storage root does not exist).
fn linked_storage(root: &Root, storage: &[u8]) -> Option<String> {
    let rel = storage.strip_prefix(b"/").unwrap_or(storage);
    let (link, target) = first_link(root, rel)?;
    let target = target.map_or_else(|e| format!("unreadable: {e}"), |t| esc(&t));
    let shown = format!("/{}", esc(link));
    // Where the link itself lies: on the root's own filesystem, or on a mount.
    let on_root = root.stat(link).is_ok_and(|m| !m.other_fs);
    Some(if on_root {
        format!(
            "its storage root {} is reached through the symlink {shown} (to {target}) on the ephemeral root: \
             the link is erased at rollback, so nothing is mounted from it at the next boot, and darlings \
             follows no link to a storage root; declare the storage root by its real path",
            esc(storage)
        )
    } else {
        format!(
            "its storage root {} is reached through the symlink {shown} (to {target}), which darlings does \
             not follow: it cannot tell where this is persisted; declare the storage root by its real path",
            esc(storage)
        )
    })
}

/// A symlink's path (relative to the root) and its target, as read.
pub type Link<'r> = (&'r [u8], Result<Vec<u8>, Errno>);

/// The first component of `rel` (itself included) that is a symlink, and
/// its target. `None`: no symlink on the way (or `rel` does not exist).
pub fn first_link<'r>(root: &Root, rel: &'r [u8]) -> Option<Link<'r>> {
    // Opened as it is (a final symlink is the link itself); ELOOP: a
    // symlink on the way.
    let is_link = |rel: &[u8]| -> Result<bool, Errno> {
        let fd = open_beneath(root.fd(), rel, OFlags::PATH | OFlags::NOFOLLOW, true)?;
        Ok(FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) == FileType::Symlink)
    };
    match is_link(rel) {
        Ok(true) | Err(Errno::LOOP) => {}
        Ok(false) | Err(_) => return None,
    }
    let link = (1..=rel.len())
        .filter(|&i| i == rel.len() || rel[i] == b'/')
        .map(|i| &rel[..i])
        .find(|prefix| is_link(prefix).unwrap_or(false))?;
    Some((link, root.read_link(link)))
}

/// "tmpfs run mounted at /run, which does not survive a reboot".
fn volatile(m: &Mount) -> String {
    format!("{} mounted at {}, which does not survive a reboot", m.describe(), esc(&m.mount_point))
}

/// "mount point" or "bind-mounted file".
fn what(meta: &Meta) -> &'static str {
    if meta.kind == FileKind::Dir {
        "mount point"
    } else {
        "bind-mounted file"
    }
}

fn esc(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The storage root a declared claim must be persisted in.
pub fn storage_of(matcher: &Matcher, rule: RuleId) -> Option<&[u8]> {
    match &matcher.rule(rule).origin {
        Origin::Declared { storage, .. } => Some(storage),
        _ => None,
    }
}

/// One literal claim, checked.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The rule deciding its path (a keep rule).
    pub rule: RuleId,
    pub kind: FileKind,
    pub state: State,
}

/// Every literal claim in effect, checked once, by path.
#[derive(Debug, Default)]
pub struct Claims {
    pub by_path: BTreeMap<Vec<u8>, Claim>,
    /// Claims that could not be checked, with the reason.
    pub errors: Vec<(Vec<u8>, &'static str, Errno)>,
}

impl Claims {
    /// Checks every literal keep rule's path whose deciding rule is a keep
    /// rule (a more specific ignore rule takes the path out of any claim),
    /// the rule deciding at the path itself.
    pub fn check_all(matcher: &Matcher, checker: &Checker<'_>) -> Claims {
        let mut claims = Claims::default();
        for rule in matcher.rules().iter().filter(|r| r.kind == RuleKind::Keep) {
            let Some(path) = rule.pattern.prefix() else { continue };
            if claims.by_path.contains_key(path) {
                continue;
            }
            // The walk's own way (one trie step a component), not
            // `explain`, which tries every rule: 100,000 claims would cost
            // 100,000 × 100,000 pattern tests.
            let Some(decider) = matcher.decide_incrementally(path) else { continue };
            if matcher.rule(decider.rule).kind != RuleKind::Keep || decider.depth != depth_of(path) {
                continue;
            }
            let storage = storage_of(matcher, decider.rule);
            match checker.check_path(path, storage) {
                Ok((kind, state)) => {
                    claims.by_path.insert(path.to_vec(), Claim { rule: decider.rule, kind, state });
                }
                Err(e) => claims.errors.push((path.to_vec(), "stat", e)),
            }
        }
        claims
    }

    pub fn get(&self, path: &[u8]) -> Option<&Claim> {
        self.by_path.get(path)
    }
}
