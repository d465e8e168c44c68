//! Checks what tests/vm/zfs-restore.sh brought back from the ZFS guest:
//! `darlings restore` from an archive received by `zfs receive` on real
//! ZFS 2.1.11 (tests/vm/zfs-suite.sh sets DARLINGS_ZFS_RESULTS). Hostile
//! links, `..` and a FIFO on the root must change nothing outside it (the
//! scenario compares the root, a directory outside it and the pool before
//! and after each run); recreated parents and the restored entries must be
//! as in the archive, compared entry by entry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::GuestResults as Results;

fn results() -> Option<Results> {
    common::guest_results("restore")
}

impl Results {
    fn changed(&self, name: &str) -> bool {
        self.text(&format!("{name}.state")).trim() == "changed"
    }

    /// Exit 2, the message, and nothing changed: root, outside, pool.
    fn refused(&self, name: &str, says: &[&str]) {
        let out = self.out(name);
        assert_eq!(self.code(name), 2, "{name}: {out}");
        assert!(!self.changed(name), "{name} changed something: {out}");
        for s in says {
            assert!(out.contains(s), "{name} does not say {s:?}: {out}");
        }
    }

    fn restored(&self, name: &str) {
        let out = self.out(name);
        assert_eq!(self.code(name), 0, "{name}: {out}");
        assert!(self.changed(name), "{name}: {out}");
        assert!(out.contains("restored /mnt/rroot/"), "{name}: {out}");
    }

    /// A `dump` by path.
    fn dump(&self, name: &str) -> BTreeMap<String, String> {
        self.text(name)
            .lines()
            .map(|l| {
                let (path, rest) = l.split_once('|').expect("a dump line");
                (path.to_owned(), rest.to_owned())
            })
            .collect()
    }
}

#[test]
fn the_scenario_ran_to_its_end() {
    let Some(r) = results() else { return };
    assert_eq!(r.text("done").trim(), "done");
    assert!(r.text("rollback.out").contains("ok   the erased state is kept as rest/safe/darlings/"));
}

#[test]
fn links_dots_and_fifos_on_the_root_change_nothing_outside_it() {
    let Some(r) = results() else { return };
    r.refused(
        "parent-link",
        &["/mnt/rroot/home/alice/.config is a symlink (-> /mnt/outside)", "nothing was changed"],
    );
    r.refused("dest-link", &["/mnt/rroot/var/lib/app/f1 exists; nothing was copied", "--force"]);
    r.restored("dest-link-force");
    assert!(r.out("dest-link-force").contains("replacing the symlink there (-> /mnt/outside/target)"));
    assert_eq!(r.text("f1.after"), "state\n");
    r.refused("dots", &["has a `.` or `..` component", "nothing was changed"]);
    r.refused("fifo", &["exists; nothing was copied"]);
    r.restored("fifo-force");
    assert_eq!(r.text("fifo.type").trim(), "regular file");
    assert_eq!(r.text("outside.ls"), "target\n");
    assert_eq!(r.text("target.after"), "precious\n");
    assert_eq!(r.text("mounts-left").trim(), "0", "the archive's read-only mount is undone");
}

#[test]
fn recreated_parents_and_restored_entries_are_as_in_the_received_archive() {
    let Some(r) = results() else { return };
    r.restored("config");
    r.restored("gnupg");
    let out = r.out("config");
    assert!(
        out.contains("make directory  /mnt/rroot/home/alice/.config  (1000:100 0751, as in the archive)"),
        "{out}"
    );
    let (archive, root) = (r.dump("parents.archive"), r.dump("parents.root"));
    assert_eq!(archive.len(), 2, "{archive:?}");
    assert_eq!(root, archive);
    assert!(root["'.config'"].contains("|1000:100|0o751|"), "{root:?}");
    assert!(root["'.config'"].contains("user.darlings-test=on .config"), "{root:?}");
    let (archive, root) = (r.dump("entries.archive"), r.dump("entries.root"));
    assert_eq!(archive.len(), 7, "{archive:#?}");
    assert_eq!(root, archive);
    assert!(root["'.gnupg'"].contains("|1000:100|0o700|"), "{root:?}");
    assert!(root["'.gnupg/private'"].contains("|981173106123456789|1015218367500000000|"), "{root:?}");
    assert_eq!(
        r.text("ls"),
        "/mnt/rroot/home/alice:\n.config\n.gnupg\n\n/mnt/rroot/home/alice/.config/fish:\nconfig.fish\n"
    );
    assert_eq!(r.text("home.after"), r.text("home.before"));
}
