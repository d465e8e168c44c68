//! A tree of changes, built from neutral [`ChangeRecord`]s (the lines of a
//! `zfs diff`, the differences a baseline comparison finds), walked with
//! the same [`Visitor`] as the live walk so that every source shares one
//! classification, grouping and report.
//!
//! Nodes are the paths the list names, plus the ancestors it implies. What
//! exists now (created, modified, renamed-to) is walked; what was removed is
//! not there any more and comes back at rollback: [`ChangeTree::removed`]
//! lists it, each removed subtree once. Metadata comes from the live tree
//! when the caller has one (`--root`), else from the list itself (type and
//! inode change time when the source has one, no sizes).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use rustix::io::Errno;

use super::walk::{fd_budget, walk_below, EntryRef, Visitor};
use super::ChangeRecord;
use crate::sys::meta::{Change, FileKind, Meta};
use crate::sys::root::open_dir_at;
use crate::sys::root::{list_names, Op, Root, WalkError};

const ROOT: u32 = 0;

/// The old name of a rename, built when first asked for.
type OldName = OnceLock<Box<[u8]>>;

#[derive(Debug)]
struct Node {
    parent: u32,
    /// The name, as a range of [`ChangeTree::names`].
    name: (u32, u32),
    kind: FileKind,
    change: Option<Change>,
    ctime: Option<i64>,
    /// The path exists now.
    present: bool,
    /// The old name of a rename: it comes back, but as the renamed
    /// finding's old name, not as a finding of its own.
    renamed_away: bool,
    /// A created directory whose whole live content is created too: the
    /// walk lists it from the live tree, not from this list (only what the
    /// list names below it, like a file renamed into it, comes from here).
    subtree: bool,
    /// The children, in the order the list named them: the first and the
    /// last, then each one's next sibling ([`NONE`] ends). Links, not a
    /// vector per directory: a million-line list makes no million small
    /// allocations.
    first_child: u32,
    last_child: u32,
    next_sibling: u32,
}

/// No node (the end of a sibling chain, a childless node).
const NONE: u32 = u32::MAX;

/// The paths a change list names, as a tree.
#[derive(Debug)]
pub struct ChangeTree {
    nodes: Vec<Node>,
    /// Every node's name, one after the other.
    names: Vec<u8>,
    /// Node ids by (parent, name), each with its hash (so growing the
    /// table never goes back to the nodes).
    index: hashbrown::HashTable<(u64, u32)>,
    hasher: hashbrown::DefaultHashBuilder,
    /// The last parent directory looked up: lines come clustered by
    /// directory, so most lookups start there.
    last_parent: (Vec<u8>, u32),
    /// Renames: the new name's node → the old name's node, and the old
    /// path once asked for (a copy per rename would make nested renames
    /// cost depth × path length).
    renames: hashbrown::HashMap<u32, (u32, OldName)>,
    /// Link-count changes seen: other names of those files are invisible.
    pub link_changes: u64,
    /// Lines about objects already unlinked but still open.
    pub delete_queue: u64,
    /// What the list names that the live tree does not show, found by
    /// [`ChangeTree::walk`].
    unseen: std::sync::Mutex<Unseen>,
}

/// Paths a change list names that the live tree no longer has as such:
/// the list is older than the tree (a saved diff), or the tree changed
/// while it was read. Their findings have no size and no modification
/// time, only the list's change time; the report says why.
#[derive(Debug, Default, Clone)]
pub struct Unseen {
    /// Named as existing, but not in the live tree (outermost only).
    pub missing: Vec<Vec<u8>>,
    /// Named below a path that is no directory in the live tree now (a
    /// symlink, never followed, or a file): that path, its type, and the
    /// first path named below it, with how many are.
    pub beneath: Vec<(Vec<u8>, FileKind, Vec<u8>, u64)>,
}

impl Node {
    /// The list names something below it.
    fn has_children(&self) -> bool {
        self.first_child != NONE
    }

    /// A node the list has not described yet (an implied directory).
    fn new(parent: u32, name: (u32, u32)) -> Node {
        Node {
            parent,
            name,
            kind: FileKind::Dir,
            change: None,
            ctime: None,
            present: true,
            renamed_away: false,
            subtree: false,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
        }
    }
}

impl Default for ChangeTree {
    fn default() -> Self {
        ChangeTree {
            nodes: vec![Node::new(ROOT, (0, 0))],
            names: Vec::new(),
            index: hashbrown::HashTable::new(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            last_parent: (b"/".to_vec(), ROOT),
            renames: hashbrown::HashMap::new(),
            link_changes: 0,
            delete_queue: 0,
            unseen: std::sync::Mutex::default(),
        }
    }
}

impl ChangeTree {
    pub fn new() -> ChangeTree {
        ChangeTree::default()
    }

    /// No change at all: the two trees are the same.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 1
    }

    /// The node for `path` (absolute, normalised), created with its ancestors.
    fn node(&mut self, path: &[u8]) -> u32 {
        if path.len() <= 1 {
            return ROOT;
        }
        let cut = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
        let (parent, name) = (&path[..cut.max(1)], &path[cut + 1..]);
        if name.is_empty() {
            return ROOT;
        }
        let (last, last_node) = (&self.last_parent.0, self.last_parent.1);
        if parent != last.as_slice() {
            // Below the last parent (a list going deeper): only the rest.
            let below = parent.len() > last.len()
                && parent.starts_with(last)
                && (last.as_slice() == b"/" || parent[last.len()] == b'/');
            let (mut at, rest) = if below { (last_node, &parent[last.len()..]) } else { (ROOT, parent) };
            for comp in rest.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
                at = self.child(at, comp);
            }
            if !below {
                self.last_parent.0.clear();
            }
            self.last_parent.0.extend_from_slice(if below { rest } else { parent });
            self.last_parent.1 = at;
        }
        let parent = self.last_parent.1;
        self.child(parent, name)
    }

    fn name(&self, n: u32) -> &[u8] {
        let (start, len) = self.nodes[n as usize].name;
        &self.names[start as usize..(start + len) as usize]
    }

    /// The child `name` of `at`, created when missing.
    fn child(&mut self, at: u32, name: &[u8]) -> u32 {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one((at, name));
        let (nodes, names) = (&self.nodes, &self.names);
        let same = |&(h, n): &(u64, u32)| {
            h == hash && {
                let node = &nodes[n as usize];
                let (start, len) = node.name;
                node.parent == at && &names[start as usize..(start + len) as usize] == name
            }
        };
        if let Some(&(_, n)) = self.index.find(hash, same) {
            return n;
        }
        let n = self.nodes.len() as u32;
        let start = self.names.len() as u32;
        self.names.extend_from_slice(name);
        self.nodes.push(Node::new(at, (start, name.len() as u32)));
        match self.nodes[at as usize].last_child {
            NONE => self.nodes[at as usize].first_child = n,
            last => self.nodes[last as usize].next_sibling = n,
        }
        self.nodes[at as usize].last_child = n;
        self.index.insert_unique(hash, (hash, n), |&(h, _)| h);
        n
    }

    /// The children of `n`, in the order the list named them.
    fn children(&self, n: u32) -> impl Iterator<Item = u32> + '_ {
        let mut next = self.nodes[n as usize].first_child;
        std::iter::from_fn(move || {
            let c = next;
            (c != NONE).then(|| {
                next = self.nodes[c as usize].next_sibling;
                c
            })
        })
    }

    /// Adds one change (paths already relative to the audited root).
    pub fn add(&mut self, record: ChangeRecord<'_>) {
        if record.links.is_some() {
            self.link_changes += 1;
        }
        let (kind, ctime) = (record.kind, record.ctime);
        let n = self.node(&record.path);
        match (record.change, record.renamed_to.as_deref()) {
            (Change::Renamed, Some(new)) => {
                self.rename_away(n, kind, ctime);
                let m = self.node(new);
                self.set(m, kind, Change::Renamed, ctime);
                self.renames.insert(m, (n, OnceLock::new()));
            }
            // Renamed from a name the record does not give: it is here, changed.
            (Change::Renamed, None) | (Change::Modified, _) => self.set(n, kind, Change::Modified, ctime),
            (Change::Present | Change::Created, _) => self.set(n, kind, Change::Created, ctime),
            (Change::Removed, _) => self.set(n, kind, Change::Removed, ctime),
        }
    }

    /// Adds a path that exists now and did not before (a name the list did
    /// not show).
    pub fn add_created(&mut self, path: &[u8], kind: FileKind) {
        let n = self.node(path);
        self.set(n, Some(kind), Change::Created, None);
    }

    /// The blank state's object at `n` moved away: nothing is there now,
    /// unless the list already said what is. Lines come in object order,
    /// so `R a b` may come before or after `R b a` (a swap) or `- b`.
    fn rename_away(&mut self, n: u32, kind: Option<FileKind>, ctime: Option<i64>) {
        self.nodes[n as usize].renamed_away = true;
        if matches!(self.nodes[n as usize].change, None | Some(Change::Removed)) {
            self.set(n, kind, Change::Removed, ctime);
        }
    }

    /// Records a change (`kind` `None`: keep the one known). `-` and `+` for
    /// one path (a replaced object, in either order: lines follow object
    /// numbers) mean it exists now, new; so do `-` and the new name of a
    /// rename.
    fn set(&mut self, n: u32, kind: Option<FileKind>, change: Change, ctime: Option<i64>) {
        let node = &mut self.nodes[n as usize];
        let kind = kind.unwrap_or(node.kind);
        let (merged, kind) = match (node.change, change) {
            (Some(Change::Created), Change::Removed) => (Change::Created, node.kind),
            (Some(Change::Renamed), Change::Removed) => (Change::Renamed, node.kind),
            (Some(Change::Removed), Change::Created) => (Change::Created, kind),
            (Some(Change::Created), Change::Modified) => (Change::Created, kind),
            (Some(Change::Renamed), Change::Modified) => (Change::Renamed, kind),
            _ => (change, kind),
        };
        node.change = Some(merged);
        node.present = merged != Change::Removed;
        node.kind = kind;
        node.ctime = ctime.max(node.ctime);
    }

    /// Says that everything below the created directory `path` in the live
    /// tree is created, without listing it (see [`ChangeTree::walk`]).
    pub fn mark_subtree(&mut self, path: &[u8]) {
        let n = self.node(path);
        self.nodes[n as usize].subtree = true;
    }

    /// The existing child `name` of `at`.
    fn find(&self, at: u32, name: &[u8]) -> Option<u32> {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one((at, name));
        self.index
            .find(hash, |&(h, n)| h == hash && self.nodes[n as usize].parent == at && self.name(n) == name)
            .map(|&(_, n)| n)
    }

    /// Whether the walk lists the children of `n` from the live tree: a
    /// marked subtree, or a directory inside one that the list does not
    /// describe as renamed or modified.
    fn lists_live(&self, n: u32, parent_live: bool) -> bool {
        let node = &self.nodes[n as usize];
        node.subtree || (parent_live && matches!(node.change, None | Some(Change::Created)))
    }

    /// Calls `each` with the path of every file the list names as existing
    /// now, and the length of its directory's part (0 in `/`). Paths come
    /// from one buffer, siblings one after the other.
    pub fn present_files(&self, mut each: impl FnMut(&[u8], usize)) {
        let mut path = Vec::new();
        // Depth first: whatever is visited between a directory and its next
        // child lies below that directory, so its path is still the prefix.
        let mut stack = vec![(ROOT, 0)];
        while let Some((n, len)) = stack.pop() {
            path.truncate(len);
            if n != ROOT {
                path.push(b'/');
                path.extend_from_slice(self.name(n));
            }
            let here = path.len();
            for c in self.children(n) {
                let node = &self.nodes[c as usize];
                if node.present && node.kind != FileKind::Dir && node.change.is_some() {
                    path.truncate(here);
                    path.push(b'/');
                    path.extend_from_slice(self.name(c));
                    each(&path, here);
                }
                if node.has_children() {
                    stack.push((c, here));
                }
            }
        }
    }

    /// Whether the list names `path` (as existing or removed).
    pub fn names(&self, path: &[u8]) -> bool {
        self.change_of(path).is_some()
    }

    /// How the list says `path` changed (`None`: not named by it).
    pub fn change_of(&self, path: &[u8]) -> Option<Change> {
        match self.locate(path) {
            Ok((n, live)) => match self.nodes[n as usize].change {
                None if live => Some(Change::Created),
                change => change,
            },
            // Below a created subtree, whatever the live tree holds is created.
            Err(live) => live.then_some(Change::Created),
        }
    }

    /// How `path`, which exists now, differs from the blank state: as the
    /// list names it; `Modified` for a directory the list names only as
    /// the parent of changes (what it holds changed); `Present` for a path
    /// the list does not name: unchanged since the blank state.
    pub fn change_now(&self, path: &[u8]) -> Change {
        match self.locate(path) {
            Ok((n, live)) => {
                let node = &self.nodes[n as usize];
                match node.change {
                    Some(change) => change,
                    None if live => Change::Created,
                    None if node.has_children() => Change::Modified,
                    None => Change::Present,
                }
            }
            Err(true) => Change::Created,
            Err(false) => Change::Present,
        }
    }

    /// The node of `path`, and whether the walk lists it from the live
    /// tree (it lies in a created subtree). `Err`: the list has no node
    /// for it; whether it lies in a created subtree.
    fn locate(&self, path: &[u8]) -> Result<(u32, bool), bool> {
        let mut at = ROOT;
        let mut live = self.nodes[ROOT as usize].subtree;
        for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            match self.find(at, comp) {
                Some(c) => {
                    at = c;
                    live = self.lists_live(c, live);
                }
                None => return Err(live),
            }
        }
        Ok((at, live))
    }

    /// The old name of a path renamed to `new`.
    pub fn renamed_from(&self, new: &[u8]) -> Option<&[u8]> {
        let mut at = ROOT;
        for comp in new.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            at = self.find(at, comp)?;
        }
        let (old, path) = self.renames.get(&at)?;
        Some(path.get_or_init(|| self.path(*old).into_boxed_slice()))
    }

    fn path(&self, mut n: u32) -> Vec<u8> {
        let mut parts = Vec::new();
        while n != ROOT {
            parts.push(self.name(n));
            n = self.nodes[n as usize].parent;
        }
        if parts.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        out
    }

    /// Removed paths, outermost only, each with its type, the number of
    /// paths removed in it (itself included) and its change time.
    pub fn removed(&self) -> Vec<(Vec<u8>, FileKind, u64, Option<i64>)> {
        let mut out = Vec::new();
        let mut stack = vec![ROOT];
        while let Some(n) = stack.pop() {
            let node = &self.nodes[n as usize];
            if n != ROOT && node.change == Some(Change::Removed) && !node.present {
                if !node.renamed_away {
                    out.push((self.path(n), node.kind, self.count(n), node.ctime));
                }
                continue;
            }
            stack.extend(self.children(n));
        }
        out
    }

    /// What the last [`ChangeTree::walk`] with a live tree found named by
    /// the list but not in the tree.
    pub fn unseen(&self) -> Unseen {
        self.unseen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The change time the list gives `path`.
    pub fn ctime_of(&self, path: &[u8]) -> Option<i64> {
        self.locate(path).ok().and_then(|(n, _)| self.nodes[n as usize].ctime)
    }

    /// Paths named below node `n`, present ones only, and the first of them.
    fn named_below(&self, n: u32, path: &[u8]) -> Option<(Vec<u8>, u64)> {
        let present = |c: &u32| self.nodes[*c as usize].present;
        let first = self.children(n).find(|c| present(c))?;
        let mut count = 0;
        let mut stack: Vec<u32> = self.children(n).filter(present).collect();
        while let Some(c) = stack.pop() {
            count += 1;
            stack.extend(self.children(c).filter(present));
        }
        Some(([path, b"/", self.name(first)].concat(), count))
    }

    fn count(&self, n: u32) -> u64 {
        let mut total = 0;
        let mut stack = vec![n];
        while let Some(n) = stack.pop() {
            total += 1;
            stack.extend(self.children(n));
        }
        total
    }

    /// Walks the present paths with `visitor`, the way the live walk does.
    /// `live` is the mounted tree, when there is one, for sizes, times and
    /// claim checks; without it, metadata comes from the list. Below a
    /// marked subtree the live tree is listed instead (and what cannot be
    /// read there is reported to the visitor).
    ///
    /// One depth-first pass over one path buffer: a directory on the stack
    /// holds its path's length, not a copy, and its open descriptor only
    /// while subdirectories still need it (and [`fd_budget`] allows; past
    /// it they are opened from the root by path, in pieces).
    ///
    /// A created directory the list names nothing below is handed whole to
    /// the parallel live walk ([`walk_below`]) on `threads` workers.
    pub fn walk<V: Visitor>(&self, top: V::Dir, visitor: &V, live: Option<&Root>, threads: usize) {
        let mut pool: Option<Option<rayon::ThreadPool>> = None;
        let mut walk = Walk { tree: self, visitor, live, path: b"/".to_vec(), held: 0, budget: fd_budget() };
        let root_live = live.is_some() && self.nodes[ROOT as usize].subtree;
        let fd = live.map(|root| root.open_dir(b"/"));
        let mut stack: Vec<Frame<V::Dir>> = Vec::new();
        stack.push(walk.frame(Some(ROOT), root_live, top, fd));
        while let Some(top) = stack.last_mut() {
            let Some(next) = top.todo.pop() else {
                let Some(done) = stack.pop() else { break };
                walk.path.truncate(done.len);
                walk.drop_fd(done.fd);
                visitor.finish(&done.dir, &walk.path, stack.last().map(|f| &f.dir));
                continue;
            };
            let name = match &next.name {
                Some(name) => name,
                None => next.node.map_or(&b""[..], |n| self.name(n)),
            };
            walk.enter_name(top.len, name);
            // Nothing the list says lies below it: the live walk takes it whole.
            let nothing_named = next.node.is_none_or(|n| !self.nodes[n as usize].has_children());
            if let (true, true, Some(root)) = (nothing_named, next.live, live) {
                let pool = pool.get_or_insert_with(|| super::walk::pool(threads).ok());
                if let Some(pool) = pool {
                    if top.todo.is_empty() {
                        walk.drop_fd(top.fd.take());
                    }
                    if let Some(dir) = walk_below(root, pool, walk.path.clone(), next.dir, visitor) {
                        visitor.finish(&dir, &walk.path, Some(&top.dir));
                    }
                    continue;
                }
                // No threads to be had: listed here, one directory at a time.
            }
            let fd = live.map(|root| match &top.fd {
                Some(parent) => open_dir_at(parent.as_fd(), name),
                None => root.open_dir(&walk.path),
            });
            // The last subdirectory is open: its parent's descriptor can go.
            if top.todo.is_empty() {
                walk.drop_fd(top.fd.take());
            }
            let frame = walk.frame(next.node, next.live, next.dir, fd);
            stack.push(frame);
        }
    }

    /// `implied`: the change of a directory the list only implies (an
    /// ancestor of what it names): modified, or created inside a subtree.
    /// `live`: its metadata from the live tree, when it could be read.
    /// `offline`: there is no live tree; the list's change time stands in
    /// for the modification time, and the audit reports it as such. With a
    /// live tree that lacks the path, no time stands in (the newest time of
    /// a group around it is the live tree's).
    fn meta(&self, node: &Node, live: Option<Meta>, implied: Change, offline: bool) -> Meta {
        let change = node.change.unwrap_or(implied);
        if let Some(mut meta) = live {
            meta.change = change;
            meta.ctime = node.ctime;
            return meta;
        }
        Meta {
            kind: node.kind,
            size: 0,
            disk: 0,
            mtime: if offline { node.ctime.unwrap_or(0) } else { i64::MIN },
            mtime_nsec: 0,
            mode: 0,
            uid: 0,
            gid: 0,
            nlink: 1,
            ino: 0,
            dev: 0,
            other_fs: false,
            subvolume: false,
            change,
            known: false,
            ctime: node.ctime,
        }
    }
}

/// A directory of [`ChangeTree::walk`] being visited. Its path is the
/// walk's one path buffer cut to `len`.
struct Frame<D> {
    /// Its node, when the list names it.
    node: Option<u32>,
    dir: D,
    len: usize,
    /// Open in the live tree while subdirectories still need it.
    fd: Option<OwnedFd>,
    /// Entered subdirectories still to visit.
    todo: Vec<Todo<D>>,
}

/// An entered subdirectory still to visit.
struct Todo<D> {
    node: Option<u32>,
    /// Listed from the live tree.
    live: bool,
    /// Its name, when no node holds it (an entry of the live tree).
    name: Option<Box<[u8]>>,
    dir: D,
}

/// The state of one [`ChangeTree::walk`].
struct Walk<'a, V: Visitor> {
    tree: &'a ChangeTree,
    visitor: &'a V,
    live: Option<&'a Root>,
    /// The path of the directory being listed, then of its entries.
    path: Vec<u8>,
    /// Descriptors kept open on the stack, and how many may be.
    held: usize,
    budget: usize,
}

impl<V: Visitor> Walk<'_, V> {
    /// Lists the directory at `self.path` (opened as `fd` in the live tree)
    /// into a new frame: entries go to the visitor, entered subdirectories
    /// to its `todo`.
    fn frame(
        &mut self,
        node: Option<u32>,
        live_listed: bool,
        dir: V::Dir,
        fd: Option<Result<OwnedFd, Errno>>,
    ) -> Frame<V::Dir> {
        let len = self.path.len();
        let mut frame = Frame { node, dir, len, fd: None, todo: Vec::new() };
        let fd = match (fd, self.live) {
            (Some(Ok(fd)), Some(root)) => {
                match live_listed {
                    true => self.list_live(&mut frame, root, fd.as_fd()),
                    false => self.list(&mut frame, Some((root, fd.as_fd()))),
                }
                Some(fd)
            }
            (Some(Err(errno)), Some(_)) if live_listed => {
                let error = WalkError { path: self.path.clone(), op: Op::Open, errno };
                self.visitor.error(&frame.dir, error);
                self.visitor.listed(&frame.dir);
                None
            }
            // Not in the live tree as a directory: what the list says.
            _ => {
                self.list(&mut frame, None);
                None
            }
        };
        self.path.truncate(len);
        if !frame.todo.is_empty() && self.held < self.budget {
            frame.fd = fd;
            self.held += usize::from(frame.fd.is_some());
        }
        frame
    }

    fn drop_fd(&mut self, fd: Option<OwnedFd>) {
        self.held -= usize::from(fd.is_some());
    }

    /// Puts `name` after the directory's path (`base` long) in `self.path`.
    fn enter_name(&mut self, base: usize, name: &[u8]) {
        self.path.truncate(base);
        if base > 1 {
            self.path.push(b'/');
        }
        self.path.extend_from_slice(name);
    }

    /// Records what the list names at `self.path` (node `c`) that the
    /// live tree, where its directory was open, does not show as such:
    /// `stat`, the live metadata, is `None` when it could not be read.
    fn unseen(&self, c: u32, stat: Option<&Meta>) {
        let tree = self.tree;
        let found = match stat {
            None => Err(self.path.clone()),
            Some(m) if m.kind != FileKind::Dir => match tree.named_below(c, &self.path) {
                Some((first, n)) => Ok((self.path.clone(), m.kind, first, n)),
                None => return,
            },
            Some(_) => return,
        };
        let mut unseen = tree.unseen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match found {
            Err(missing) => unseen.missing.push(missing),
            Ok(beneath) => unseen.beneath.push(beneath),
        }
    }

    /// A directory's children as the list names them; `live`: the live
    /// tree and the directory open in it, for their metadata.
    fn list(&mut self, frame: &mut Frame<V::Dir>, live: Option<(&Root, BorrowedFd<'_>)>) {
        let tree = self.tree;
        let Some(n) = frame.node else { return self.visitor.listed(&frame.dir) };
        for c in tree.children(n) {
            let node = &tree.nodes[c as usize];
            if !node.present {
                continue;
            }
            let name = tree.name(c);
            self.enter_name(frame.len, name);
            let entry = EntryRef { path: &self.path, name, hint: Some(node.kind) };
            let Some(plan) = self.visitor.plan(&frame.dir, &entry) else { continue };
            let stat = live.and_then(|(root, fd)| root.stat_at(fd, name).ok());
            if live.is_some() {
                self.unseen(c, stat.as_ref());
            }
            let meta = tree.meta(node, stat, Change::Modified, self.live.is_none());
            if meta.kind == FileKind::Dir && !meta.other_fs {
                if let Some(d) = self.visitor.enter(&frame.dir, &entry, plan, &meta) {
                    let listed_live = live.is_some() && node.subtree;
                    frame.todo.push(Todo { node: Some(c), live: listed_live, name: None, dir: d });
                }
            } else {
                self.visitor.leaf(&frame.dir, &entry, plan, &meta);
            }
        }
        self.visitor.listed(&frame.dir);
    }

    /// A directory of a created subtree: its live entries, each created
    /// unless the list names it.
    fn list_live(&mut self, frame: &mut Frame<V::Dir>, root: &Root, fd: BorrowedFd<'_>) {
        let tree = self.tree;
        let names = match list_names(fd) {
            Ok(names) => names,
            Err(errno) => {
                let error = WalkError { path: self.path.clone(), op: Op::Read, errno };
                self.visitor.error(&frame.dir, error);
                return self.visitor.listed(&frame.dir);
            }
        };
        for name in names {
            self.enter_name(frame.len, &name);
            let named =
                frame.node.and_then(|n| tree.find(n, &name)).filter(|&c| tree.nodes[c as usize].present);
            let hint = named.map(|c| tree.nodes[c as usize].kind);
            let entry = EntryRef { path: &self.path, name: &name, hint };
            let Some(plan) = self.visitor.plan(&frame.dir, &entry) else { continue };
            let (meta, listed_live) = match named {
                Some(c) => {
                    let stat = root.stat_at(fd, &name).ok();
                    let meta = tree.meta(&tree.nodes[c as usize], stat, Change::Created, false);
                    (meta, tree.lists_live(c, true))
                }
                None => match root.stat_at(fd, &name) {
                    Ok(mut meta) => {
                        meta.change = Change::Created;
                        (meta, true)
                    }
                    Err(errno) => {
                        let error = WalkError { path: self.path.clone(), op: Op::Stat, errno };
                        self.visitor.error(&frame.dir, error);
                        continue;
                    }
                },
            };
            if meta.kind == FileKind::Dir && !meta.other_fs {
                if let Some(d) = self.visitor.enter(&frame.dir, &entry, plan, &meta) {
                    let name = named.is_none().then(|| name.into_boxed_slice());
                    frame.todo.push(Todo { node: named, live: listed_live, name, dir: d });
                }
            } else {
                self.visitor.leaf(&frame.dir, &entry, plan, &meta);
            }
        }
        self.visitor.listed(&frame.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::zfs_diff::Parser;

    fn tree(lines: &[&str]) -> ChangeTree {
        let mut p = Parser::new();
        let mut t = ChangeTree::new();
        for l in lines {
            crate::source::zfs::add_line(&mut t, p.line(l.as_bytes()).expect("valid"));
        }
        t
    }

    #[test]
    fn removed_subtrees_are_listed_once() {
        let t = tree(&[
            "1.0\tM\t/\t/",
            "1.0\t-\t/\t/old",
            "1.0\t-\tF\t/old/a",
            "1.0\t-\tF\t/old/b",
            "1.0\t-\tF\t/etc/gone",
            "1.0\t+\tF\t/etc/new",
        ]);
        let removed: Vec<(String, u64)> = t
            .removed()
            .into_iter()
            .map(|(p, _, n, _)| (String::from_utf8_lossy(&p).into_owned(), n))
            .collect();
        assert!(removed.contains(&("/old".into(), 3)));
        assert!(removed.contains(&("/etc/gone".into(), 1)));
        assert_eq!(removed.len(), 2);
    }

    #[test]
    fn a_path_the_list_does_not_name_is_present_now() {
        // /var and /var/cache are named only as parents of a change.
        let mut t = tree(&["1.0\t+\tF\t/var/cache/new", "1.0\tM\tF\t/etc/changed"]);
        t.add_created(b"/srv", FileKind::Dir);
        t.mark_subtree(b"/srv");
        let now = |p: &[u8]| t.change_now(p);
        assert_eq!(now(b"/etc/changed"), Change::Modified);
        assert_eq!(now(b"/var/cache/new"), Change::Created);
        assert_eq!(now(b"/var/cache"), Change::Modified, "what it holds changed");
        assert_eq!(now(b"/etc/unchanged"), Change::Present);
        assert_eq!(now(b"/var/lib/app"), Change::Present);
        assert_eq!(now(b"/srv/inside/x"), Change::Created, "below a created subtree");
        assert_eq!(t.change_of(b"/var/cache"), None, "not named itself");
        assert_eq!(ChangeTree::new().change_now(b"/"), Change::Present, "nothing changed");
    }

    #[test]
    fn present_files_come_with_their_directory() {
        let t = tree(&[
            "1.0\t+\tF\t/top",
            "1.0\t+\tF\t/a/b/f",
            "1.0\t+\t/\t/a/b/d",
            "1.0\tM\tF\t/a/g",
            "1.0\t-\tF\t/a/gone",
            "1.0\t+\tF\t/a/b/d/h",
        ]);
        let mut seen = Vec::new();
        t.present_files(|path, cut| seen.push((String::from_utf8_lossy(path).into_owned(), cut)));
        seen.sort();
        let expected = [("/a/b/d/h", 6), ("/a/b/f", 4), ("/a/g", 2), ("/top", 0)];
        assert_eq!(seen, expected.map(|(p, c)| (p.to_owned(), c)));
    }

    #[test]
    fn swapped_names_are_both_present_in_either_order() {
        for lines in [["1.0\tR\tF\t/a\t/b", "2.0\tR\tF\t/b\t/a"], ["2.0\tR\tF\t/b\t/a", "1.0\tR\tF\t/a\t/b"]]
        {
            let t = tree(&lines);
            for (name, old) in [(&b"a"[..], &b"/b"[..]), (b"b", b"/a")] {
                let n = t.find(ROOT, name).expect("named");
                assert!(t.nodes[n as usize].present);
                assert_eq!(t.nodes[n as usize].change, Some(Change::Renamed));
                assert_eq!(t.renamed_from(&[b"/", name].concat()), Some(old));
            }
            assert!(t.removed().is_empty());
        }
    }

    #[test]
    fn replaced_objects_exist_and_renames_remember_the_old_name() {
        let mut t = tree(&[
            "1.0\t-\t@\t/link",
            "2.0\t+\t@\t/link",
            "3.0\tR\t/\t/srv/a\t/srv/b",
            "4.0\t+\tF\t/x/<xattrdir>/user.k",
            "5.0\t+\tF\t/<xattrdir>/user.darlings.audit",
            "5.0\tM\t/\t/<xattrdir>",
        ]);
        let link = t.child(ROOT, b"link");
        assert!(t.nodes[link as usize].present);
        assert_eq!(t.nodes[link as usize].change, Some(Change::Created));
        assert_eq!(t.renamed_from(b"/srv/b"), Some(&b"/srv/a"[..]));
        assert!(t.removed().is_empty(), "/srv/a comes back as the old name of /srv/b");
        let x = t.child(ROOT, b"x");
        assert_eq!(t.nodes[x as usize].change, Some(Change::Modified), "an xattr change modifies its file");
        assert_eq!(t.nodes[ROOT as usize].change, Some(Change::Modified), "and of the root, the root");
    }
}
