//! The last word on a row: what only the whole audit's settings know of
//! it — the catalogue entry it is, lies in or holds (its severity),
//! whether `--accepted` lists it, and, read offline from a change list,
//! which of its times and sizes mean anything. A report settles its rows
//! once they are all made; the guards' tally settles each as it is made
//! (see `report::tally`). Both call [`Settle::row`]: one decision, one place.

use crate::knowledge::Catalogue;
use crate::report::{Accepted, Finding};
use crate::source::tree::ChangeTree;
use crate::sys::meta::FileKind;
use crate::sys::root::Root;

pub struct Settle {
    pub catalogue: Catalogue,
    pub accepted: Accepted,
    /// A saved diff read without a live tree.
    pub offline: bool,
}

impl Settle {
    /// Settles `f`. Whether a grouped directory holds a catalogue entry is
    /// asked of `root`, the tree it lies in (or, without one, of the
    /// change list `tree`).
    pub fn row(&self, f: &mut Finding, root: Option<&Root>, tree: Option<&ChangeTree>) {
        let path = std::mem::take(&mut f.path);
        self.row_at(f, &path, root, tree);
        f.path = path;
    }

    /// [`Settle::row`] for `f` at `path` (its own path may be left empty).
    pub fn row_at(&self, f: &mut Finding, path: &[u8], root: Option<&Root>, tree: Option<&ChangeTree>) {
        if self.offline {
            // Times from the list are inode change times; no sizes.
            f.ctime = f.mtime.take();
            f.size = None;
            f.disk = None;
        }
        if f.verdict.is_loss() {
            precious(&self.catalogue, f, path, root, tree);
        }
        f.accepted = f.verdict.is_loss() && self.accepted.matches_at(f, path);
    }
}

/// Gives a loss finding the catalogue entry it is, lies in, or holds.
fn precious(
    catalogue: &Catalogue,
    f: &mut Finding,
    path: &[u8],
    root: Option<&Root>,
    tree: Option<&ChangeTree>,
) {
    let group = f.kind == FileKind::Dir && f.entries.unwrap_or(0) > 1;
    let holds = |pattern: &str| match (root, tree) {
        (Some(root), _) => crate::knowledge::catalogue::find_in(root, pattern.as_bytes(), path),
        (None, Some(tree)) => {
            let literal = crate::claims::matcher::Pattern::parse(pattern.as_bytes()).ok()?;
            let path = literal.prefix()?;
            tree.names(path).then(|| path.to_vec())
        }
        (None, None) => None,
    };
    if let Some((precious, at)) = catalogue.lookup(path, group, &holds) {
        f.precious = Some(precious.clone());
        f.keep_path = Some(at);
    }
}
