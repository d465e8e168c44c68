//! Renames in a `zfs diff` come in object order, not path order: a name can
//! be the old name of one rename and the new name of another, and every
//! order of the lines must give the same findings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

/// Audits `lines` (paths below `/mnt/root`) as a saved diff, offline, flat:
/// (verdict, change, renamed_from) by path.
fn audit(lines: &[&str]) -> BTreeMap<String, (String, String, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("renames.zfsdiff");
    let mut text = String::from("1700000000.000000000\tM\t/\t/mnt/root/\n");
    for l in lines {
        text.push_str(&l.replace("\\t", "\t").replace(" /", "\t/"));
        text.push('\n');
    }
    std::fs::write(&file, text).expect("write");
    let out = common::run([
        "audit".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        "--flat".as_ref(),
        "--zfs-diff".as_ref(),
        file.as_os_str(),
        "--strip-prefix".as_ref(),
        "/mnt/root".as_ref(),
    ]);
    let json = common::parse_json(&out);
    common::findings(&json)
        .into_iter()
        .map(|(path, f)| {
            let text = |k: &str| f[k].as_str().unwrap_or("-").to_owned();
            (
                String::from_utf8_lossy(&path).into_owned(),
                (text("verdict"), text("change"), text("renamed_from")),
            )
        })
        .collect()
}

fn renamed(from: &str) -> (String, String, String) {
    ("unclaimed".into(), "renamed".into(), from.into())
}

/// Every order of `lines` gives `expected`.
fn in_every_order(lines: &[&str], expected: &[(&str, (String, String, String))]) {
    let expected: BTreeMap<String, (String, String, String)> =
        expected.iter().map(|(p, v)| ((*p).to_owned(), v.clone())).collect();
    let mut order: Vec<usize> = (0..lines.len()).collect();
    // Heap's algorithm, iteratively: every permutation once.
    let mut c = vec![0; order.len()];
    let check = |order: &[usize]| {
        let shuffled: Vec<&str> = order.iter().map(|&i| lines[i]).collect();
        assert_eq!(audit(&shuffled), expected, "lines in the order {shuffled:#?}");
    };
    check(&order);
    let mut i = 0;
    while i < order.len() {
        if c[i] < i {
            order.swap(if i % 2 == 0 { 0 } else { c[i] }, i);
            check(&order);
            c[i] += 1;
            i = 0;
        } else {
            c[i] = 0;
            i += 1;
        }
    }
}

#[test]
fn two_swapped_names_are_both_renamed() {
    // mv a t; mv b a; mv t b
    in_every_order(
        &["1700000001.0\tR\tF\t/mnt/root/a /mnt/root/b", "1700000002.0\tR\tF\t/mnt/root/b /mnt/root/a"],
        &[("/a", renamed("/b")), ("/b", renamed("/a"))],
    );
}

#[test]
fn swapped_directories_keep_what_changed_inside() {
    in_every_order(
        &[
            "1700000001.0\tR\t/\t/mnt/root/srv/a /mnt/root/srv/b",
            "1700000002.0\tR\t/\t/mnt/root/srv/b /mnt/root/srv/a",
            "1700000003.0\t+\tF\t/mnt/root/srv/a/new",
        ],
        &[
            ("/srv/a", renamed("/srv/b")),
            ("/srv/a/new", ("unclaimed".into(), "created".into(), "-".into())),
            ("/srv/b", renamed("/srv/a")),
        ],
    );
}

#[test]
fn three_names_in_a_ring_are_all_renamed() {
    // mv a t; mv c a; mv b c; mv t b
    in_every_order(
        &[
            "1700000001.0\tR\tF\t/mnt/root/a /mnt/root/b",
            "1700000002.0\tR\tF\t/mnt/root/b /mnt/root/c",
            "1700000003.0\tR\tF\t/mnt/root/c /mnt/root/a",
        ],
        &[("/a", renamed("/c")), ("/b", renamed("/a")), ("/c", renamed("/b"))],
    );
}

#[test]
fn a_name_renamed_over_a_removed_one_exists() {
    // rm b; mv a b: the old b is removed, the old a is at b.
    in_every_order(
        &["1700000001.0\t-\tF\t/mnt/root/b", "1700000002.0\tR\tF\t/mnt/root/a /mnt/root/b"],
        &[("/b", renamed("/a"))],
    );
}

#[test]
fn a_plain_rename_leaves_nothing_at_its_old_name() {
    assert_eq!(
        audit(&["1700000001.0\tR\tF\t/mnt/root/old /mnt/root/new"]),
        [("/new".to_owned(), renamed("/old"))].into_iter().collect()
    );
}
