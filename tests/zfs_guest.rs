//! Checks what the ZFS guest brought back (tests/vm/zfs-suite.sh runs the
//! guest, then this test with DARLINGS_ZFS_RESULTS set). The expectations
//! come from the operations tests/vm/zfs-guest.sh performed on
//! rpool/local/root@blank; without the variable there is nothing to check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

fn results() -> Option<PathBuf> {
    let dir = std::env::var_os("DARLINGS_ZFS_RESULTS").map(PathBuf::from);
    if dir.is_none() {
        common::unavailable("the ZFS guest's results: run tests/vm/zfs-suite.sh (it boots the guest and sets DARLINGS_ZFS_RESULTS)");
    }
    dir
}

fn report(dir: &std::path::Path, name: &str) -> Value {
    let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

fn losses(json: &Value) -> BTreeSet<Vec<u8>> {
    common::findings(json)
        .into_iter()
        .filter(|(_, f)| matches!(f["verdict"].as_str(), Some("unclaimed" | "broken")))
        .map(|(p, _)| p)
        .collect()
}

fn show(set: &BTreeSet<Vec<u8>>) -> Vec<String> {
    set.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect()
}

/// What zfs-guest.sh created, modified or renamed: every path the next
/// rollback erases (in --flat), the hard link's second name aside.
fn expected_losses() -> BTreeSet<Vec<u8>> {
    let mut set: BTreeSet<Vec<u8>> = [
        "/etc/link",
        "/etc/orig.conf",
        "/etc/meta-only",
        "/srv",
        "/home",
        "/home/u",
        "/home/u/docs",
        "/home/u/docs/moved-here",
        "/home/u/hostile",
        "/var/log",
        "/var/log/journal",
        "/var/log/big",
        "/var/fifo",
        "/var/null",
        "/var/loop9",
        "/var/sock",
        "/var/lib/bluetooth",
        "/var/lib/bluetooth/info",
    ]
    .iter()
    .map(|p| p.as_bytes().to_vec())
    .collect();
    for i in 1..=40 {
        set.insert(format!("/var/log/journal/j{i}").into_bytes());
    }
    set.extend(common::guest_hostile_paths());
    set
}

#[test]
fn zfs_diff_finds_exactly_what_was_changed() {
    let Some(dir) = results() else { return };
    let codes = std::fs::read_to_string(dir.join("codes")).expect("codes");
    assert_eq!(codes.lines().filter(|l| l.ends_with(" 3")).count(), 7, "a broken claim everywhere:\n{codes}");

    let live = report(&dir, "zfs-diff-live.json");
    // zfs diff names the hard-linked file once; the live tree gives the other name.
    let mut expected = expected_losses();
    expected.insert(b"/var/hard-1".to_vec());
    expected.insert(b"/home/u/hard-2".to_vec());
    assert_eq!(show(&losses(&live)), show(&expected));

    let f = common::findings(&live);
    assert_eq!(f[&b"/blank-dir"[..]]["verdict"], "restored");
    assert_eq!(f[&b"/blank-dir"[..]]["entries"], 3);
    assert_eq!(f[&b"/blank-file"[..]]["verdict"], "restored");
    assert_eq!(f[&b"/var/lib/nixos"[..]]["verdict"], "kept", "the bind mount from rpool/safe/persist");
    assert_eq!(f[&b"/home/u/.cache"[..]]["verdict"], "ignored");
    assert_eq!(f[&b"/var/log/big"[..]]["size"], 100_000, "sizes from the live tree");
    assert_eq!(f[&b"/srv"[..]]["renamed_from"], "/srv-old");
    assert!(live["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .any(|n| n.as_str().unwrap_or("").contains("hard links")));
}

#[test]
fn zfs_diff_and_walk_agree_except_where_zfs_diff_is_blind() {
    let Some(dir) = results() else { return };
    let walk = losses(&report(&dir, "walk.json"));
    let zfs = losses(&report(&dir, "zfs-diff-live.json"));
    assert!(
        zfs.is_subset(&walk),
        "zfs diff found what the walk did not: {:?}",
        show(&zfs.difference(&walk).cloned().collect())
    );
    let only_walk: BTreeSet<Vec<u8>> = walk.difference(&zfs).cloned().collect();
    let blind: BTreeSet<Vec<u8>> = [
        // In the blank snapshot: it comes back (modified, not created).
        &b"/etc"[..],
        // Unchanged content of a renamed directory: comes back under the old name.
        b"/srv/sub",
        b"/srv/sub/x",
    ]
    .iter()
    .map(|p| p.to_vec())
    .collect();
    assert_eq!(show(&only_walk), show(&blind));
}

#[test]
fn offline_and_live_diffs_agree_on_paths() {
    let Some(dir) = results() else { return };
    let offline = report(&dir, "zfs-diff-offline.json");
    // Offline, only the name zfs diff listed; live, the other one too.
    let live = losses(&report(&dir, "zfs-diff-live.json"));
    let missing: Vec<Vec<u8>> = live.difference(&losses(&offline)).cloned().collect();
    assert_eq!(missing.len(), 1);
    assert!(missing[0] == b"/var/hard-1" || missing[0] == b"/home/u/hard-2");
    assert!(common::findings(&offline).values().all(|f| f["size"].is_null()), "offline has no sizes");
}

#[test]
fn grouped_zfs_report_folds_created_trees() {
    let Some(dir) = results() else { return };
    let grouped = report(&dir, "zfs-diff-grouped.json");
    let f = common::findings(&grouped);
    // /var/log, journal, 40 files and big.
    assert_eq!(f[&b"/var/log"[..]]["entries"], 43);
    assert_eq!(f[&b"/var/log"[..]]["verdict"], "unclaimed");
    assert_eq!(f[&b"/var/lib/bluetooth"[..]]["verdict"], "broken");
    assert_eq!(f[&b"/var"[..]]["verdict"], "structure");
}

#[test]
fn both_recorded_diffs_parse() {
    let Some(dir) = results() else { return };
    for name in ["diff.txt", "diff-again.txt"] {
        let path = dir.join(name);
        let out = common::run([
            std::ffi::OsStr::new("audit"),
            std::ffi::OsStr::new("--format"),
            std::ffi::OsStr::new("json"),
            std::ffi::OsStr::new("--zfs-diff"),
            path.as_os_str(),
            std::ffi::OsStr::new("--strip-prefix"),
            std::ffi::OsStr::new("/mnt/root"),
        ]);
        assert_ne!(common::code(&out), 2, "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn source_zfs_runs_zfs_diff_itself() {
    let Some(dir) = results() else { return };
    let saved = losses(&report(&dir, "zfs-diff-live.json"));
    let json = report(&dir, "zfs-live.json");
    assert_eq!(json["source"], "zfs");
    assert_eq!(show(&losses(&json)), show(&saved));
    assert!(notes(&json).iter().any(|n| n.contains("rpool/local/root@blank")));
}

fn notes(json: &Value) -> Vec<String> {
    json["notes"].as_array().expect("notes").iter().map(|n| n.as_str().unwrap_or("").to_owned()).collect()
}

/// Each finding's path with what must agree between sources: verdict,
/// change, old name, entries, size (times differ: a diff has ctimes).
fn rows(json: &Value) -> Vec<String> {
    common::findings(json)
        .into_iter()
        .map(|(p, f)| {
            format!(
                "{} {} {} from={} entries={} size={}",
                String::from_utf8_lossy(&p),
                f["verdict"],
                f["change"],
                f["renamed_from"],
                f["entries"],
                f["size"]
            )
        })
        .collect()
}

#[test]
fn auto_compares_an_ephemeral_root_with_its_snapshot_and_agrees_with_zfs_diff() {
    let Some(dir) = results() else { return };
    let auto = report(&dir, "auto.json");
    let zfs = report(&dir, "zfs-live.json");
    // Nearly everything is new since @blank: reading both trees is cheaper.
    assert_eq!(auto["source"], "zfs-snapshot", "{:?}", notes(&auto));
    assert!(
        notes(&auto).iter().any(|n| n.contains("rpool/local/root@blank") && n.contains("reading both trees")),
        "{:?}",
        notes(&auto)
    );
    assert_eq!(auto["errors"], Value::Array(vec![]));
    assert_eq!(rows(&auto), rows(&zfs), "path for path, renames and both hard-link names included");
}

#[test]
fn auto_on_a_full_snapshot_agrees_with_zfs_diff_and_the_snapshot_tree() {
    let Some(dir) = results() else { return };
    let codes = std::fs::read_to_string(dir.join("codes")).expect("codes");
    for run in ["full-auto 1", "full-zfs 1", "full-baseline 1"] {
        assert!(codes.lines().any(|l| l == run), "{run}:\n{codes}");
    }
    let auto = report(&dir, "full-auto.json");
    let zfs = report(&dir, "full-zfs.json");
    let base = report(&dir, "full-baseline.json");
    assert_eq!(zfs["source"], "zfs");
    // Whichever way auto took, it says which and why, and finds the same.
    let why = notes(&auto);
    assert!(
        why.iter().any(|n| n.contains("rpool/local/full@blank") && n.contains("objects changed")),
        "{why:?}"
    );
    assert_eq!(rows(&auto), rows(&zfs));
    assert_eq!(rows(&base), rows(&zfs));
    let expected: BTreeSet<Vec<u8>> = [
        "/etc/a.conf",
        "/etc/two",
        "/usr/share/d7-renamed",
        "/var",
        "/var/lib",
        "/var/lib/app",
        "/var/lib/app/db",
        "/var/lib/app/one",
    ]
    .iter()
    .map(|p| p.as_bytes().to_vec())
    .collect();
    for json in [&auto, &zfs] {
        assert_eq!(show(&losses(json)), show(&expected), "{}", json["source"]);
        let f = common::findings(json);
        assert_eq!(f[&b"/etc/b.conf"[..]]["verdict"], "restored");
        assert_eq!(f[&b"/usr/share/d7-renamed"[..]]["renamed_from"], "/usr/share/d7");
        assert!(!f.keys().any(|p| p.starts_with(b"/.zfs")), "snapdir=visible: .zfs is not content");
    }
}

#[test]
fn content_hidden_under_the_bind_mount_is_shadowed_for_every_live_source() {
    let Some(dir) = results() else { return };
    for name in ["walk.json", "zfs-diff-live.json", "zfs-live.json", "auto.json", "baseline.json"] {
        let json = report(&dir, name);
        let f = common::findings(&json);
        let early = &f[&b"/var/lib/nixos/early"[..]];
        assert_eq!(early["verdict"], "shadowed", "{name}");
        assert_eq!(early["size"], 6, "{name}");
        let shadowed = f.values().filter(|f| f["verdict"] == "shadowed").count();
        assert_eq!(shadowed, 1, "{name}");
    }
    // Offline, nothing can be looked under.
    let offline = report(&dir, "zfs-diff-offline.json");
    assert!(common::findings(&offline).values().all(|f| f["verdict"] != "shadowed"));
}

#[test]
fn real_zfs_refusals_are_clear() {
    let Some(dir) = results() else { return };
    let codes = std::fs::read_to_string(dir.join("codes")).expect("codes");
    assert!(codes.lines().any(|l| l == "no-snapshot 2"), "{codes}");
    assert!(codes.lines().any(|l| l == "unmounted 2"), "{codes}");
    let err = std::fs::read_to_string(dir.join("no-snapshot.err")).expect("stderr");
    assert!(err.contains("no snapshot rpool/local/root@nope; the dataset has: blank"), "{err}");
    let err = std::fs::read_to_string(dir.join("unmounted.err")).expect("stderr");
    assert!(err.contains("the dataset is not mounted"), "{err}");
}

#[test]
fn the_blank_snapshot_as_a_baseline_agrees_with_zfs_diff() {
    let Some(dir) = results() else { return };
    let baseline = report(&dir, "baseline.json");
    assert_eq!(baseline["source"], "baseline");
    assert_eq!(baseline["errors"], Value::Array(vec![]));
    let zfs = losses(&report(&dir, "zfs-diff-live.json"));
    let base = losses(&baseline);
    // Both names of the hard-linked file, in both.
    assert!(base.contains(&b"/var/hard-1"[..]) && base.contains(&b"/home/u/hard-2"[..]));
    assert_eq!(show(&base), show(&zfs));
    let f = common::findings(&baseline);
    assert_eq!(f[&b"/srv"[..]]["renamed_from"], "/srv-old");
    assert_eq!(f[&b"/blank-dir"[..]]["entries"], 3);
}
