//! A saved `zfs diff` read with `--root` may be older than the tree: what
//! it names may be gone, or lie below what is a symlink now. Neither is
//! dropped without a word, and no size or time is made up for it. Without
//! `--root` no size is known at all, and the report says so instead of
//! "0 B".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::Value;

/// Change times of the diff's lines: 2023-11-14T22:13:20Z.
const DIFF: &[u8] = b"1700000000.000000001\t+\tF\t/home/alice/new\\0040file\n\
1700000000.000000002\t+\tF\t/home/alice/link/shadow\n\
1700000000.000000003\tM\t/\t/home/alice\n\
1700000000.000000004\t+\tF\t/home/alice/real/x\n\
1700000000.000000005\t+\t/\t/home/alice/gone\n\
1700000000.000000006\t+\tF\t/home/alice/gone/inside\n";

fn audit(
    diff: &std::path::Path,
    root: Option<&std::path::Path>,
    format: &str,
    flat: bool,
) -> std::process::Output {
    let mut args = vec!["audit".as_ref(), "--zfs-diff".as_ref(), diff.as_os_str(), "--format".as_ref()];
    args.push(format.as_ref());
    args.push("--no-default-manifest".as_ref());
    if flat {
        args.push("--flat".as_ref());
    }
    if let Some(root) = root {
        args.extend(["--root".as_ref(), root.as_os_str()]);
    }
    common::run(args)
}

/// `/home/alice/new file` and `/home/alice/gone` (with what the diff names
/// in it) are not in the tree: their rows keep the diff's change time, with
/// no size and no modification time, and a note names them; the totals'
/// bytes are unknown too. `/home/alice/link` is a symlink to `/etc` now:
/// `link/shadow` is not `/etc/shadow`, and a note says why it is not
/// reported.
#[test]
fn paths_the_tree_no_longer_has_keep_the_diffs_time_and_no_size() {
    let t = common::Tree::new();
    t.file(b"/home/alice/real/x", b"abc")
        .file(b"/etc/shadow", b"root:x")
        .symlink(b"/home/alice/link", b"/etc");
    let dir = tempfile::tempdir().expect("tempdir");
    let diff = dir.path().join("saved.zfsdiff");
    std::fs::write(&diff, DIFF).expect("write");
    for flat in [true, false] {
        let out = audit(&diff, Some(t.root()), "json", flat);
        let json = common::parse_json(&out);
        let f = common::findings(&json);
        let new = &f[&b"/home/alice/new file"[..]];
        assert_eq!(new["ctime"], "2023-11-14T22:13:20Z", "{new}");
        assert_eq!(new["mtime"], Value::Null, "{new}");
        assert_eq!(new["size"], Value::Null, "unknown, not zero: {new}");
        assert_eq!(new["disk"], Value::Null, "{new}");
        let gone = &f[&b"/home/alice/gone"[..]];
        assert_eq!((&gone["size"], &gone["mtime"]), (&Value::Null, &Value::Null), "{gone}");
        assert_eq!(gone["ctime"], "2023-11-14T22:13:20Z", "{gone}");
        assert_eq!(f[&b"/home/alice/real/x"[..]]["size"], 3);
        assert!(f.keys().all(|p| !p.starts_with(b"/home/alice/link/")), "{f:?}");
        assert!(!f.contains_key(&b"/etc/shadow"[..]), "the link is not followed");
        let totals = &json["totals"]["unclaimed"];
        assert_eq!(totals["bytes"], Value::Null, "{totals}");
        // The new file, and the gone directory (with its file, under --flat).
        assert_eq!(totals["size_unknown"], if flat { 3 } else { 2 }, "{totals}");
        let notes: Vec<&str> =
            json["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
        assert!(
            notes.iter().any(|n| n.contains("2 paths the diff names are not in the tree under --root")
                && n.contains("/home/alice/new file")
                && n.contains("/home/alice/gone")),
            "{notes:#?}"
        );
        assert!(
            notes.iter().any(|n| n.contains("below /home/alice/link (/home/alice/link/shadow)")
                && n.contains("a symlink, never followed")),
            "{notes:#?}"
        );
        assert_eq!(json["errors"], Value::Array(vec![]));
    }
}

/// Offline, no size is known: the totals say "unknown" (JSON `null`, no
/// Prometheus sample), never "0 B".
#[test]
fn offline_totals_say_the_size_is_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let diff = dir.path().join("saved.zfsdiff");
    std::fs::write(&diff, DIFF).expect("write");
    let table = String::from_utf8(audit(&diff, None, "table", false).stdout).expect("utf-8");
    assert!(table.contains("The next boot erases 5 entries (size unknown) in 4 findings."), "{table}");
    assert!(!table.contains("0 B"), "{table}");
    let unclaimed =
        table.lines().find(|l| l.starts_with("unclaimed ") && l.contains("unknown")).unwrap_or_default();
    assert!(unclaimed.ends_with("unknown  unknown"), "the totals row: {table}");

    let json = common::parse_json(&audit(&diff, None, "json", false));
    assert_eq!(json["totals"]["unclaimed"]["bytes"], Value::Null);
    assert_eq!(json["totals"]["unclaimed"]["disk"], Value::Null);
    assert_eq!(json["totals"]["unclaimed"]["size_unknown"], json["totals"]["unclaimed"]["findings"]);
    assert_eq!(json["totals"]["kept"]["bytes"], 0, "nothing unknown there");

    let prom = String::from_utf8(audit(&diff, None, "prometheus", false).stdout).expect("utf-8");
    assert!(
        !prom.lines().any(|l| l.starts_with("darlings_bytes{") && l.contains("verdict=\"unclaimed\"")),
        "{prom}"
    );
    assert!(
        prom.lines().any(|l| l.starts_with("darlings_entries{") && l.contains("verdict=\"unclaimed\"")),
        "{prom}"
    );
}
