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

use std::os::fd::AsFd;

use super::walk::{list_names, walk_below, EntryRef, Op, Root, Visitor, WalkError};
use super::{Change, ChangeRecord, FileKind, Meta};

const ROOT: u32 = 0;

/// A directory of [`ChangeTree::walk`] being visited.
struct Frame<D> {
    /// Its node, when the list names it.
    node: Option<u32>,
    /// Its children come from the live tree (a created subtree).
    live: bool,
    dir: D,
    path: Vec<u8>,
    /// Entered subdirectories still to visit: node, listed live, path, state.
    todo: Vec<(Option<u32>, bool, Vec<u8>, D)>,
}

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
    children: Vec<u32>,
}

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
    /// New name → old name, for renames.
    renames: hashbrown::HashMap<Vec<u8>, Vec<u8>>,
    /// Link-count changes seen: other names of those files are invisible.
    pub link_changes: u64,
    /// Lines about objects already unlinked but still open.
    pub delete_queue: u64,
}

impl Node {
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
            children: Vec::new(),
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
        let parent = if parent == self.last_parent.0.as_slice() {
            self.last_parent.1
        } else {
            let mut at = ROOT;
            for comp in parent.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
                at = self.child(at, comp);
            }
            self.last_parent.0.clear();
            self.last_parent.0.extend_from_slice(parent);
            self.last_parent.1 = at;
            at
        };
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
        self.nodes[at as usize].children.push(n);
        self.index.insert_unique(hash, (hash, n), |&(h, _)| h);
        n
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
                self.renames.insert(new.to_vec(), record.path.to_vec());
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

    /// The files the list names that exist now, with their change.
    pub fn present_files(&self) -> Vec<(Vec<u8>, Change)> {
        (1..self.nodes.len() as u32)
            .filter(|&n| {
                let node = &self.nodes[n as usize];
                node.present && node.kind != FileKind::Dir && node.change.is_some()
            })
            .map(|n| (self.path(n), self.nodes[n as usize].change.unwrap_or(Change::Modified)))
            .collect()
    }

    /// Whether the list names `path` (as existing or removed).
    pub fn names(&self, path: &[u8]) -> bool {
        self.change_of(path).is_some()
    }

    /// How the list says `path` changed (`None`: not named by it).
    pub fn change_of(&self, path: &[u8]) -> Option<Change> {
        let mut at = ROOT;
        let mut live = self.nodes[ROOT as usize].subtree;
        for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            match self.find(at, comp) {
                Some(c) => {
                    at = c;
                    live = self.lists_live(c, live);
                }
                // Below a created subtree, whatever the live tree holds is created.
                None => return live.then_some(Change::Created),
            }
        }
        match self.nodes[at as usize].change {
            None if live => Some(Change::Created),
            change => change,
        }
    }

    /// The old name of a path renamed to `new`.
    pub fn renamed_from(&self, new: &[u8]) -> Option<&[u8]> {
        self.renames.get(new).map(Vec::as_slice)
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
            stack.extend(node.children.iter().copied());
        }
        out
    }

    fn count(&self, n: u32) -> u64 {
        let mut total = 0;
        let mut stack = vec![n];
        while let Some(n) = stack.pop() {
            total += 1;
            stack.extend(self.nodes[n as usize].children.iter().copied());
        }
        total
    }

    /// Walks the present paths with `visitor`, the way the live walk does.
    /// `live` is the mounted tree, when there is one, for sizes, times and
    /// claim checks; without it, metadata comes from the list. Below a
    /// marked subtree the live tree is listed instead (and what cannot be
    /// read there is reported to the visitor).
    ///
    /// A created directory the list names nothing below is handed whole to
    /// the parallel live walk ([`walk_below`]) on `threads` workers.
    pub fn walk<V: Visitor>(&self, top: V::Dir, visitor: &V, live: Option<&Root>, threads: usize) {
        let mut pool: Option<Option<rayon::ThreadPool>> = None;
        let mut stack: Vec<Frame<V::Dir>> = Vec::new();
        let root_live = live.is_some() && self.nodes[ROOT as usize].subtree;
        let mut frame =
            Frame { node: Some(ROOT), live: root_live, dir: top, path: b"/".to_vec(), todo: Vec::new() };
        self.list(&mut frame, visitor, live);
        stack.push(frame);
        while let Some(top) = stack.last_mut() {
            let Some((node, live_listed, path, dir)) = top.todo.pop() else {
                let Some(done) = stack.pop() else { break };
                visitor.finish(&done.dir, &done.path, stack.last().map(|f| &f.dir));
                continue;
            };
            // Nothing the list says lies below it: the live walk takes it whole.
            let nothing_named = node.is_none_or(|n| self.nodes[n as usize].children.is_empty());
            if let (true, true, Some(root)) = (nothing_named, live_listed, live) {
                let pool = pool.get_or_insert_with(|| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(threads.max(1))
                        .thread_name(|i| format!("darlings-walk-{i}"))
                        .build()
                        .ok()
                });
                if let Some(pool) = pool {
                    if let Some(dir) = walk_below(root, pool, path.clone(), dir, visitor) {
                        visitor.finish(&dir, &path, stack.last().map(|f| &f.dir));
                    }
                    continue;
                }
                // No threads to be had: listed here, one directory at a time.
            }
            let mut frame = Frame { node, live: live_listed, dir, path, todo: Vec::new() };
            self.list(&mut frame, visitor, live);
            stack.push(frame);
        }
    }

    /// Hands the entries of one directory to the visitor; entered
    /// subdirectories go to `frame.todo`.
    fn list<V: Visitor>(&self, frame: &mut Frame<V::Dir>, visitor: &V, live: Option<&Root>) {
        let mut child_path = frame.path.clone();
        if frame.path != b"/" {
            child_path.push(b'/');
        }
        let base = child_path.len();
        match (live, frame.live) {
            (Some(root), true) => self.list_live(frame, visitor, root, child_path, base),
            _ => {
                let Some(n) = frame.node else { return visitor.listed(&frame.dir) };
                for &c in &self.nodes[n as usize].children {
                    let node = &self.nodes[c as usize];
                    if !node.present {
                        continue;
                    }
                    child_path.truncate(base);
                    child_path.extend_from_slice(self.name(c));
                    let entry = EntryRef { path: &child_path, name: self.name(c), hint: Some(node.kind) };
                    let Some(plan) = visitor.plan(&frame.dir, &entry) else { continue };
                    let meta = self.meta(node, &child_path, live, Change::Modified);
                    if meta.kind == FileKind::Dir && !meta.other_fs {
                        if let Some(d) = visitor.enter(&frame.dir, &entry, plan, &meta) {
                            let listed_live = live.is_some() && node.subtree;
                            frame.todo.push((Some(c), listed_live, child_path.clone(), d));
                        }
                    } else {
                        visitor.leaf(&frame.dir, &entry, plan, &meta);
                    }
                }
                visitor.listed(&frame.dir);
            }
        }
    }

    /// A directory of a created subtree: its live entries, each created
    /// unless the list names it.
    fn list_live<V: Visitor>(
        &self,
        frame: &mut Frame<V::Dir>,
        visitor: &V,
        root: &Root,
        mut child_path: Vec<u8>,
        base: usize,
    ) {
        let listing = root
            .open_dir(&frame.path)
            .map_err(|e| (Op::Open, e))
            .and_then(|fd| list_names(fd.as_fd()).map(|names| (fd, names)).map_err(|e| (Op::Read, e)));
        let (fd, names) = match listing {
            Ok(x) => x,
            Err((op, errno)) => {
                visitor.error(&frame.dir, WalkError { path: frame.path.clone(), op, errno });
                return visitor.listed(&frame.dir);
            }
        };
        for name in names {
            child_path.truncate(base);
            child_path.extend_from_slice(&name);
            let named =
                frame.node.and_then(|n| self.find(n, &name)).filter(|&c| self.nodes[c as usize].present);
            let entry =
                EntryRef { path: &child_path, name: &name, hint: named.map(|c| self.nodes[c as usize].kind) };
            let Some(plan) = visitor.plan(&frame.dir, &entry) else { continue };
            let (meta, listed_live) = match named {
                Some(c) => (
                    self.meta(&self.nodes[c as usize], &child_path, Some(root), Change::Created),
                    self.lists_live(c, true),
                ),
                None => match root.stat_at(fd.as_fd(), &name) {
                    Ok(mut meta) => {
                        meta.change = Change::Created;
                        (meta, true)
                    }
                    Err(errno) => {
                        visitor
                            .error(&frame.dir, WalkError { path: child_path.clone(), op: Op::Stat, errno });
                        continue;
                    }
                },
            };
            if meta.kind == FileKind::Dir && !meta.other_fs {
                if let Some(d) = visitor.enter(&frame.dir, &entry, plan, &meta) {
                    frame.todo.push((named, listed_live, child_path.clone(), d));
                }
            } else {
                visitor.leaf(&frame.dir, &entry, plan, &meta);
            }
        }
        visitor.listed(&frame.dir);
    }

    /// `implied`: the change of a directory the list only implies (an
    /// ancestor of what it names): modified, or created inside a subtree.
    fn meta(&self, node: &Node, path: &[u8], live: Option<&Root>, implied: Change) -> Meta {
        let change = node.change.unwrap_or(implied);
        if let Some(root) = live {
            if let Ok(mut meta) = root.stat(path.strip_prefix(b"/").unwrap_or(path)) {
                meta.change = change;
                meta.ctime = node.ctime;
                return meta;
            }
        }
        Meta {
            kind: node.kind,
            size: 0,
            disk: 0,
            mtime: node.ctime.unwrap_or(0),
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
