//! The judge: one entry → its verdict, the detail that says why, and the
//! rule that decided it.
//!
//! Pure: it reads what the walk already knows of the entry — the mode of
//! its directory, the rule the matcher found on its path, the knowledge
//! rules naming it, its metadata, the state the claim checker gave its
//! claim, what a symlink's target matched — and touches nothing: no
//! filesystem, no locks, no counters. The classifier ([`super`]) gathers
//! those facts (lazily: only where they can matter) and hands the
//! judgement to the grouper ([`super::group`]).
//!
//! Three moments: [`before_stat`] decides on the path alone (an ignored
//! path, a trusted claim: never stat'ed); [`leaf`] judges an entry that is
//! not entered; [`enter`] the mode of a directory that is.

use std::borrow::Cow;

use crate::claims::check::{self, State};
use crate::claims::matcher::{RuleId, RuleKind};
use crate::knowledge::tmpfiles::{self, Object};
use crate::knowledge::{Hits, Known, KnownId, Says};
use crate::report::Verdict;
use crate::sys::meta::{is_zfs_control_dir, FileKind, Meta};

/// How the entries of a directory are judged unless a rule says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Unclaimed,
    /// Inside a broken claim: content at risk.
    Broken(RuleId),
    /// Inside an ignored directory entered only to check claims below it.
    Ignored(RuleId),
}

/// What decided a verdict: a rule of the person's matcher (keep, ignore),
/// or of the knowledge (recreated, identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Rule(RuleId),
    Knowledge(KnownId),
}

/// What an entry is stat'ed as: decided on its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planned {
    /// The root of a claim, to check against the live tree.
    Claim(RuleId),
    /// In its directory's mode, with the knowledge rules naming its path.
    Inherit(Mode, Hits),
}

/// A row decided on the path alone: the entry is never stat'ed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Early {
    pub verdict: Verdict,
    pub rule: RuleId,
    pub detail: Option<&'static str>,
    pub unverified: bool,
}

/// The judgement before the stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Before {
    /// A row now (ignored, or a claim trusted by `--assume-claims`).
    pub row: Option<Early>,
    /// Stat it, and judge it as this; `None`: settled, never stat'ed.
    pub then: Option<Planned>,
}

/// The mode of the root directory, and the claim it is the root of.
pub fn root(decided: Option<(RuleId, RuleKind)>) -> (Mode, Option<String>) {
    match decided {
        // A claim on `/` itself can never be realised on the root.
        Some((rule, RuleKind::Keep)) => {
            (Mode::Broken(rule), Some("plain content on the ephemeral root".to_owned()))
        }
        Some((rule, RuleKind::Ignore)) => (Mode::Ignored(rule), None),
        Some((_, RuleKind::Recreated | RuleKind::Identity)) | None => (Mode::Unclaimed, None),
    }
}

/// Judges an entry on its path: `fresh` is the rule the matcher found that
/// applies from this entry on (not its parent's). `claims_below` (may a
/// keep rule match inside it?) and `known` (the knowledge rules naming it)
/// are asked only when they matter.
pub fn before_stat(
    parent: Mode,
    fresh: Option<(RuleId, RuleKind)>,
    assumed: bool,
    claims_below: impl FnOnce() -> bool,
    known: impl FnOnce() -> Hits,
) -> Before {
    let row = |verdict, rule, detail, unverified| Some(Early { verdict, rule, detail, unverified });
    match fresh {
        Some((rule, RuleKind::Keep)) if assumed => {
            Before { row: row(Verdict::Kept, rule, Some(check::ASSUMED), true), then: None }
        }
        Some((rule, RuleKind::Keep)) => Before { row: None, then: Some(Planned::Claim(rule)) },
        Some((rule, RuleKind::Ignore)) => Before {
            row: row(Verdict::Ignored, rule, None, false),
            then: claims_below().then_some(Planned::Inherit(Mode::Ignored(rule), Hits::NONE)),
        },
        // The person's matcher holds keep and ignore rules only.
        Some((_, RuleKind::Recreated | RuleKind::Identity)) | None => {
            let then = match parent {
                Mode::Ignored(_) if !claims_below() => None,
                Mode::Unclaimed => Some(Planned::Inherit(Mode::Unclaimed, known())),
                mode => Some(Planned::Inherit(mode, Hits::NONE)),
            };
            Before { row: None, then }
        }
    }
}

/// What is known of an entry that is not entered, after its stat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf<'e> {
    pub name: &'e [u8],
    pub meta: &'e Meta,
    pub planned: Planned,
    /// The state of its claim ([`Planned::Claim`]), from the claim checker.
    pub claim: Option<State>,
    /// The knowledge rule its target matched, for a symlink where
    /// [`wants_target`] asked for it.
    pub target: Option<Known>,
}

/// The judgement of an entry that is not entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// Nothing to report (ignored; ZFS's control directory).
    Nothing,
    /// A row of its own.
    Row(Row),
    /// Content of its directory: counted into its group, and folded or
    /// listed by the grouper.
    Content(Content),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub verdict: Verdict,
    pub rule: Option<By>,
    pub detail: Option<Cow<'static, str>>,
    pub shape: Shape,
    pub unverified: bool,
    /// The entry counts as one name of a hard-linked file of this verdict.
    pub link: bool,
}

/// What a row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The path and its type only (a realised claim: nothing of it is on the root).
    Bare,
    /// One entry, with its size, allocation, time and change: a loss.
    Loss,
    /// A mount point or a bind-mounted file: one entry, its detail from the mount table.
    MountPoint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Content {
    /// `unclaimed`, `recreated`, or `broken` (inside a broken claim).
    pub verdict: Verdict,
    pub detail: Option<&'static str>,
    pub rule: Option<By>,
}

/// Whether the knowledge rule `known` decides for an entry with `meta`:
/// an identity is a file; systemd-tmpfiles recreates a file empty, so a
/// file with content is not its.
fn applies(known: Known, meta: &Meta) -> bool {
    match known.says {
        Says::Identity(_) => meta.kind != FileKind::Dir,
        Says::Tmpfiles(Object::File) => meta.size == 0,
        Says::Tmpfiles(_) | Says::Recreated(_) => true,
    }
}

/// Whether the judge needs a symlink's target: an unclaimed link on this
/// filesystem that no rule on its path decides (the caller also asks
/// only where such links live).
pub fn wants_target(planned: &Planned, meta: &Meta) -> bool {
    match planned {
        Planned::Inherit(Mode::Unclaimed, hits) => {
            meta.kind == FileKind::Symlink && !meta.other_fs && !hits.iter().any(|k| applies(k, meta))
        }
        _ => false,
    }
}

/// Judges an entry that is not entered: a non-directory, or a directory
/// on another filesystem.
pub fn leaf(e: Leaf<'_>) -> Judged {
    if is_zfs_control_dir(e.name, e.meta) {
        return Judged::Nothing;
    }
    let (mode, hits) = match e.planned {
        Planned::Claim(rule) => return claimed(rule, e.claim),
        Planned::Inherit(mode, hits) => (mode, hits),
    };
    if e.meta.other_fs {
        return elsewhere(mode, e.meta);
    }
    let content = |verdict, detail, rule| Judged::Content(Content { verdict, detail, rule });
    match mode {
        Mode::Ignored(_) => Judged::Nothing,
        Mode::Broken(rule) => content(Verdict::Broken, None, Some(By::Rule(rule))),
        Mode::Unclaimed => match hits.iter().find(|k| applies(*k, e.meta)).or(e.target) {
            Some(Known { rule, says: Says::Identity(why) }) => Judged::Row(Row {
                verdict: Verdict::NewIdentity,
                rule: Some(By::Knowledge(rule)),
                detail: Some(format!("recreated at boot with {why}").into()),
                shape: Shape::Loss,
                unverified: false,
                link: true,
            }),
            Some(Known { rule, says: Says::Recreated(why) }) => {
                content(Verdict::Recreated, Some(why), Some(By::Knowledge(rule)))
            }
            Some(Known { rule, says: Says::Tmpfiles(_) }) => {
                content(Verdict::Recreated, Some(tmpfiles::CREATED), Some(By::Knowledge(rule)))
            }
            None => content(Verdict::Unclaimed, None, None),
        },
    }
}

/// The row of a claimed path that is not a directory on this filesystem.
fn claimed(rule: RuleId, state: Option<State>) -> Judged {
    let row = |verdict, detail: Cow<'static, str>, shape, unverified, link| {
        Judged::Row(Row {
            verdict,
            rule: Some(By::Rule(rule)),
            detail: Some(detail),
            shape,
            unverified,
            link,
        })
    };
    match state {
        Some(State::Kept(detail)) => row(Verdict::Kept, detail.into(), Shape::Bare, false, false),
        Some(State::Unverified(why)) => row(Verdict::Kept, why.into(), Shape::Bare, true, false),
        Some(State::Broken { reason, enter }) => {
            row(Verdict::Broken, reason.into(), Shape::Loss, false, enter)
        }
        // It was just found: it exists. (No state: the check failed, an error.)
        Some(State::Missing) | None => Judged::Nothing,
    }
}

/// An entry on another filesystem, not claimed itself.
fn elsewhere(mode: Mode, meta: &Meta) -> Judged {
    let rule = match mode {
        Mode::Ignored(_) => return Judged::Nothing,
        Mode::Broken(rule) => Some(rule),
        Mode::Unclaimed => None,
    };
    if meta.subvolume {
        return Judged::Row(Row {
            verdict: if rule.is_some() { Verdict::Broken } else { Verdict::Unclaimed },
            rule: rule.map(By::Rule),
            detail: Some(check::NESTED.into()),
            shape: Shape::Loss,
            unverified: false,
            link: false,
        });
    }
    Judged::Row(Row {
        verdict: Verdict::Structure,
        rule: None,
        detail: None,
        shape: Shape::MountPoint,
        unverified: false,
        link: false,
    })
}

/// The state of an entered directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entered {
    pub mode: Mode,
    /// It is a claimed path itself (broken, since entered): why, in words.
    pub claim_root: Option<String>,
    /// systemd-tmpfiles creates it (empty, it is recreated): the rule.
    pub tmpfiles: Option<Known>,
}

/// Judges a directory of this filesystem that is entered.
pub fn enter(planned: Planned, claim: Option<State>) -> Entered {
    match planned {
        // A claimed directory holding ordinary content: broken.
        Planned::Claim(rule) => {
            let why = match claim {
                Some(State::Broken { reason, .. }) => reason,
                _ => "plain content on the ephemeral root".to_owned(),
            };
            Entered { mode: Mode::Broken(rule), claim_root: Some(why), tmpfiles: None }
        }
        Planned::Inherit(mode, hits) => {
            let dir = |k: &Known| k.says == Says::Tmpfiles(Object::Directory);
            let tmpfiles = hits.iter().find(dir).filter(|_| mode == Mode::Unclaimed);
            Entered { mode, claim_root: None, tmpfiles }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::meta::{Change, ZFS_CONTROL_INO};

    /// (what, name, metadata, plan, target's rule, judgement in short).
    type LeafCase<'a> = (&'a str, &'a [u8], &'a Meta, Planned, Option<Known>, &'a str);
    /// (what, parent's mode, fresh rule, assumed, claims below, judgement).
    type BeforeCase = (&'static str, Mode, Option<(RuleId, RuleKind)>, bool, bool, Before);

    const KEEP: RuleId = 4;
    const IGNORE: RuleId = 5;

    fn meta(kind: FileKind, size: u64) -> Meta {
        Meta {
            kind,
            size,
            disk: size.div_ceil(4096) * 4096,
            mtime: 1_700_000_000,
            mtime_nsec: 0,
            mode: 0o644,
            uid: 0,
            gid: 0,
            nlink: 1,
            ino: 42,
            dev: 1,
            other_fs: false,
            subvolume: false,
            change: Change::Present,
            known: true,
            ctime: None,
        }
    }

    fn other_fs(kind: FileKind, subvolume: bool) -> Meta {
        Meta { other_fs: true, subvolume, ..meta(kind, 0) }
    }

    fn known(id: u32, says: Says) -> Known {
        Known { rule: KnownId(id), says }
    }

    const ID: Says = Says::Identity("a new machine id");
    const CLEAN: Says = Says::Recreated("copied");
    const TMP_FILE: Says = Says::Tmpfiles(Object::File);
    const TMP_DIR: Says = Says::Tmpfiles(Object::Directory);
    const TMP_LINK: Says = Says::Tmpfiles(Object::Symlink);
    const STORE: Says = Says::Recreated("a link into the Nix store");

    /// A compact picture of a judgement: verdict, rule, detail, shape.
    fn short(j: &Judged) -> String {
        let by = |b: &Option<By>| match b {
            Some(By::Rule(r)) => format!("rule {r}"),
            Some(By::Knowledge(k)) => format!("known {}", k.0),
            None => "-".into(),
        };
        match j {
            Judged::Nothing => "nothing".into(),
            Judged::Row(r) => format!(
                "row {} {} {:?} {:?}{}{}",
                r.verdict.name(),
                by(&r.rule),
                r.detail.as_deref().unwrap_or("-"),
                r.shape,
                if r.unverified { " unverified" } else { "" },
                if r.link { " link" } else { "" },
            ),
            Judged::Content(c) => {
                format!("content {} {} {:?}", c.verdict.name(), by(&c.rule), c.detail.unwrap_or("-"))
            }
        }
    }

    #[test]
    fn leaves_by_mode_knowledge_and_metadata() {
        let file = meta(FileKind::File, 10);
        let empty = meta(FileKind::File, 0);
        let link = meta(FileKind::Symlink, 20);
        let unclaimed = |hits: &[Known]| Planned::Inherit(Mode::Unclaimed, Hits::new(hits));
        let zfs = Meta { ino: ZFS_CONTROL_INO, ..meta(FileKind::Dir, 0) };
        #[rustfmt::skip]
        let table: &[LeafCase<'_>] = &[
            ("plain file", b"f", &file, unclaimed(&[]), None, "content unclaimed - \"-\""),
            ("inside a broken claim", b"f", &file, Planned::Inherit(Mode::Broken(KEEP), Hits::NONE), None,
                "content broken rule 4 \"-\""),
            ("inside an ignored tree", b"f", &file, Planned::Inherit(Mode::Ignored(IGNORE), Hits::NONE), None, "nothing"),
            ("an identity", b"machine-id", &file, unclaimed(&[known(0, ID)]), None,
                "row new-identity known 0 \"recreated at boot with a new machine id\" Loss link"),
            ("an identity on another filesystem is a bind-mounted file", b"machine-id", &other_fs(FileKind::File, false),
                unclaimed(&[known(0, ID)]), None, "row structure - \"-\" MountPoint"),
            ("a file .clean lists", b"passwd", &file, unclaimed(&[known(9, CLEAN)]), None,
                "content recreated known 9 \"copied\""),
            ("an empty tmpfiles file", b"state", &empty, unclaimed(&[known(3, TMP_FILE)]), None,
                "content recreated known 3 \"created by systemd-tmpfiles at every boot\""),
            ("a tmpfiles file with content is lost", b"state", &file, unclaimed(&[known(3, TMP_FILE)]), None,
                "content unclaimed - \"-\""),
            ("…unless a later rule recreates it", b"state", &file, unclaimed(&[known(3, TMP_FILE), known(9, CLEAN)]), None,
                "content recreated known 9 \"copied\""),
            ("a tmpfiles link", b"l", &link, unclaimed(&[known(3, TMP_LINK)]), None,
                "content recreated known 3 \"created by systemd-tmpfiles at every boot\""),
            ("the first rule that applies decides", b"machine-id", &file, unclaimed(&[known(0, ID), known(9, CLEAN)]), None,
                "row new-identity known 0 \"recreated at boot with a new machine id\" Loss link"),
            ("a link into the store", b"l", &link, unclaimed(&[]), Some(known(40, STORE)),
                "content recreated known 40 \"a link into the Nix store\""),
            ("a rule on the path beats the target", b"l", &link, unclaimed(&[known(3, TMP_LINK)]), Some(known(40, STORE)),
                "content recreated known 3 \"created by systemd-tmpfiles at every boot\""),
            ("knowledge is not asked inside a broken claim", b"f", &file, Planned::Inherit(Mode::Broken(KEEP), Hits::NONE),
                None, "content broken rule 4 \"-\""),
            ("a mount point", b"m", &other_fs(FileKind::Dir, false), unclaimed(&[]), None, "row structure - \"-\" MountPoint"),
            ("a mount point in an ignored tree", b"m", &other_fs(FileKind::Dir, false),
                Planned::Inherit(Mode::Ignored(IGNORE), Hits::NONE), None, "nothing"),
            ("a nested subvolume", b"s", &other_fs(FileKind::Dir, true), unclaimed(&[]), None,
                &format!("row unclaimed - {:?} Loss", check::NESTED)),
            ("a nested subvolume in a broken claim", b"s", &other_fs(FileKind::Dir, true),
                Planned::Inherit(Mode::Broken(KEEP), Hits::NONE), None,
                &format!("row broken rule 4 {:?} Loss", check::NESTED)),
            ("ZFS's control directory", b".zfs", &zfs, unclaimed(&[]), None, "nothing"),
            ("a .zfs that is not it", b".zfs", &other_fs(FileKind::Dir, false), unclaimed(&[]), None,
                "row structure - \"-\" MountPoint"),
        ];
        for (what, name, meta, planned, target, want) in table {
            let got = leaf(Leaf { name, meta, planned: *planned, claim: None, target: *target });
            assert_eq!(short(&got), *want, "{what}");
        }
    }

    #[test]
    fn claimed_leaves_take_the_checkers_state() {
        let file = meta(FileKind::File, 10);
        let broken = |enter| State::Broken { reason: "plain content on the ephemeral root".into(), enter };
        #[rustfmt::skip]
        let table: &[(Option<State>, &str)] = &[
            (Some(State::Kept("a mount point (tmpfs)".into())), "row kept rule 4 \"a mount point (tmpfs)\" Bare"),
            (Some(State::Unverified(check::ASSUMED)), "row kept rule 4 \"assumed (--assume-claims)\" Bare unverified"),
            (Some(broken(true)), "row broken rule 4 \"plain content on the ephemeral root\" Loss link"),
            (Some(broken(false)), "row broken rule 4 \"plain content on the ephemeral root\" Loss"),
            (Some(State::Missing), "nothing"),
            (None, "nothing"),
        ];
        for (state, want) in table {
            let e = Leaf {
                name: b"c",
                meta: &file,
                planned: Planned::Claim(KEEP),
                claim: state.clone(),
                target: None,
            };
            assert_eq!(short(&leaf(e)), *want, "{state:?}");
        }
    }

    #[test]
    fn targets_are_wanted_only_for_undecided_unclaimed_links() {
        let link = meta(FileKind::Symlink, 20);
        let unclaimed = |hits: &[Known]| Planned::Inherit(Mode::Unclaimed, Hits::new(hits));
        assert!(wants_target(&unclaimed(&[]), &link));
        assert!(
            wants_target(&unclaimed(&[known(3, TMP_FILE)]), &link),
            "a tmpfiles file rule does not decide a link"
        );
        assert!(!wants_target(&unclaimed(&[known(3, TMP_LINK)]), &link));
        assert!(!wants_target(&unclaimed(&[]), &meta(FileKind::File, 1)));
        assert!(!wants_target(&unclaimed(&[]), &other_fs(FileKind::Symlink, false)));
        assert!(!wants_target(&Planned::Inherit(Mode::Broken(KEEP), Hits::NONE), &link));
        assert!(!wants_target(&Planned::Claim(KEEP), &link));
    }

    #[test]
    fn before_the_stat() {
        let hits = Hits::new(&[known(0, ID)]);
        #[rustfmt::skip]
        let table: &[BeforeCase] = &[
            ("nothing applies", Mode::Unclaimed, None, false, false,
                Before { row: None, then: Some(Planned::Inherit(Mode::Unclaimed, hits)) }),
            ("a claim to check", Mode::Unclaimed, Some((KEEP, RuleKind::Keep)), false, false,
                Before { row: None, then: Some(Planned::Claim(KEEP)) }),
            ("a claim trusted", Mode::Unclaimed, Some((KEEP, RuleKind::Keep)), true, false, Before {
                row: Some(Early { verdict: Verdict::Kept, rule: KEEP, detail: Some(check::ASSUMED), unverified: true }),
                then: None }),
            ("an ignored path", Mode::Unclaimed, Some((IGNORE, RuleKind::Ignore)), false, false, Before {
                row: Some(Early { verdict: Verdict::Ignored, rule: IGNORE, detail: None, unverified: false }),
                then: None }),
            ("an ignored directory with a claim below", Mode::Broken(KEEP), Some((IGNORE, RuleKind::Ignore)), false, true,
                Before {
                    row: Some(Early { verdict: Verdict::Ignored, rule: IGNORE, detail: None, unverified: false }),
                    then: Some(Planned::Inherit(Mode::Ignored(IGNORE), Hits::NONE)) }),
            ("inside an ignored tree", Mode::Ignored(IGNORE), None, false, false, Before { row: None, then: None }),
            ("inside an ignored tree, towards a claim", Mode::Ignored(IGNORE), None, false, true,
                Before { row: None, then: Some(Planned::Inherit(Mode::Ignored(IGNORE), Hits::NONE)) }),
            ("inside a broken claim: no knowledge", Mode::Broken(KEEP), None, false, false,
                Before { row: None, then: Some(Planned::Inherit(Mode::Broken(KEEP), Hits::NONE)) }),
        ];
        for (what, parent, fresh, assumed, below, want) in table {
            let got = before_stat(*parent, *fresh, *assumed, || *below, || hits);
            assert_eq!(got, *want, "{what}");
        }
    }

    #[test]
    fn knowledge_is_looked_up_only_for_unclaimed_entries() {
        for (parent, fresh) in [
            (Mode::Broken(KEEP), None),
            (Mode::Ignored(IGNORE), None),
            (Mode::Unclaimed, Some((KEEP, RuleKind::Keep))),
            (Mode::Unclaimed, Some((IGNORE, RuleKind::Ignore))),
        ] {
            before_stat(parent, fresh, false, || true, || panic!("looked up under {parent:?} {fresh:?}"));
        }
    }

    #[test]
    fn entered_directories() {
        let broken = State::Broken { reason: "its persistent source is missing".into(), enter: true };
        let got = enter(Planned::Claim(KEEP), Some(broken));
        assert_eq!(got.mode, Mode::Broken(KEEP));
        assert_eq!(got.claim_root.as_deref(), Some("its persistent source is missing"));
        let unchecked = enter(Planned::Claim(KEEP), None);
        assert_eq!(unchecked.claim_root.as_deref(), Some("plain content on the ephemeral root"));
        let tmp = known(3, TMP_DIR);
        let dir = enter(Planned::Inherit(Mode::Unclaimed, Hits::new(&[known(0, ID), tmp])), None);
        assert_eq!((dir.mode, dir.claim_root, dir.tmpfiles), (Mode::Unclaimed, None, Some(tmp)));
        let file_rule = enter(Planned::Inherit(Mode::Unclaimed, Hits::new(&[known(3, TMP_FILE)])), None);
        assert_eq!(file_rule.tmpfiles, None, "tmpfiles makes a file there, not this directory");
        let ignored = enter(Planned::Inherit(Mode::Ignored(IGNORE), Hits::new(&[tmp])), None);
        assert_eq!((ignored.mode, ignored.tmpfiles), (Mode::Ignored(IGNORE), None));
    }

    #[test]
    fn the_root_directory() {
        assert_eq!(root(None), (Mode::Unclaimed, None));
        assert_eq!(root(Some((KEEP, RuleKind::Keep))).0, Mode::Broken(KEEP));
        assert_eq!(root(Some((IGNORE, RuleKind::Ignore))), (Mode::Ignored(IGNORE), None));
    }
}
