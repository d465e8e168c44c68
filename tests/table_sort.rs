//! `--sort size` is what `--help` says: largest first whatever the verdict,
//! equal sizes by path, rows without a size (kept, ignored, structure: not
//! walked) last; the table is then one list, in the report's order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::Value;

fn tree() -> common::Tree {
    let t = common::Tree::new();
    t.file(b"/big", &[b'b'; 5000])
        .file(b"/etc/ssh/ssh_host_ed25519_key", &[b'k'; 300])
        .file(b"/etc/machine-id", b"0123456789abcdef0123456789abcdef\n")
        .file(b"/same size b", b"12345")
        .file(b"/same size a", b"12345")
        .file(b"/zero", b"")
        .file(b"/cache/x", &[b'c'; 9000]);
    t
}

const RULES: [&str; 6] = ["--keep", "/etc/ssh", "--ignore", "/cache", "--sort", "size"];

fn paths(json: &Value) -> Vec<String> {
    json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["path"].as_str().expect("path").to_owned())
        .collect()
}

#[test]
fn sort_size_is_largest_first_across_verdicts_then_unsized_rows() {
    let t = tree();
    let (json, _) = common::audit_json(t.root(), &RULES);
    // Worked out by hand: sizes 5000, 300 (broken), 33 (new-identity),
    // 5, 5 (by path), 0; then /cache (ignored) and /etc (structure), which
    // have no size, by path. The ignored cache holds the most bytes, but
    // they were never counted: it is not "largest".
    assert_eq!(
        paths(&json),
        ["/big", "/etc/ssh", "/etc/machine-id", "/same size a", "/same size b", "/zero", "/cache", "/etc"]
    );
    let verdicts: Vec<&str> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["verdict"].as_str().expect("v"))
        .collect();
    assert_eq!(verdicts[..3], ["unclaimed", "broken", "new-identity"], "not sectioned by verdict");
}

#[test]
fn the_sorted_table_is_one_list_in_the_same_order() {
    let t = tree();
    let (json, _) = common::audit_json(t.root(), &RULES);
    let mut args = vec!["audit", "--root", t.root().to_str().expect("utf-8"), "--format", "table"];
    args.extend(RULES);
    let table = String::from_utf8(common::run(&args).stdout).expect("utf-8");
    let rows: Vec<&str> = table.lines().skip(1).take_while(|l| !l.is_empty()).collect();
    let want = paths(&json);
    assert_eq!(rows.len(), want.len(), "{table}");
    for (row, path) in rows.iter().zip(&want) {
        assert!(row.contains(&format!("  {path}  ")), "{path} expected in {row:?}\n{table}");
    }
}

#[test]
fn the_help_says_what_sort_size_does() {
    let out = common::run(["audit", "--help"]);
    let help = String::from_utf8(out.stdout).expect("utf-8").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("size: Largest first, whatever the verdict"), "{help}");
    assert!(help.contains("then rows without a size"), "{help}");
}
