//! What `change` a finding gets from a source that compares with the blank
//! state, for rows decided before any metadata (kept and broken claims,
//! ignored trees): a path unchanged since the blank snapshot is `present`,
//! never `modified`; a directory whose content changed is `modified`.
//! On a real btrfs, through `auto` (the blank snapshot) and `--baseline`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use serde_json::Value;

const SCENARIO: &str = r#"
truncate -s 256M fs.img
mkfs.btrfs -q fs.img
mkdir m && mount -o loop fs.img m
btrfs -q subvolume create m/root
btrfs -q subvolume create m/persist
R=m/root
mkdir -p "$R/var/lib/app" "$R/var/cache" "$R/etc"
echo same > "$R/etc/unchanged"
echo old > "$R/var/cache/old"
btrfs -q subvolume snapshot -r m/root m/root-blank
mkdir -p m/persist/app
mkdir r && mount -o loop,subvol=root fs.img r
mount --bind m/persist/app r/var/lib/app
echo new > r/var/cache/new
echo new > r/new-file
"#;

const RULES: &str = "--root \"$PWD/r\" --keep /var/lib/app --keep /etc/unchanged --ignore /var/cache";

/// Runs the scenario, then each named audit, keyed by name.
fn audits(commands: &[(&str, &str)]) -> BTreeMap<String, Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut script = format!("cd '{}'\n{SCENARIO}", dir.path().display());
    for (name, args) in commands {
        script.push_str(&format!(
            "echo '=== {name}'\n\"$D\" audit --format json --flat {RULES} {args} || true\n"
        ));
    }
    common::sections(&common::in_mount_namespace(&script)).into_iter().collect()
}

/// (verdict, change) of `path` in `json`.
fn row(json: &Value, path: &str) -> (String, String) {
    let f = common::findings(json);
    let f = f.get(path.as_bytes()).unwrap_or_else(|| panic!("no finding for {path}: {json:#}"));
    (f["verdict"].as_str().unwrap().to_owned(), f["change"].as_str().unwrap().to_owned())
}

fn pair(verdict: &str, change: &str) -> (String, String) {
    (verdict.to_owned(), change.to_owned())
}

#[test]
fn claims_unchanged_since_the_blank_snapshot_are_present_not_modified() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let out =
        audits(&[("auto", ""), ("baseline", "--baseline \"$PWD/m/root-blank\""), ("walk", "--source walk")]);
    assert_eq!(out["auto"]["source"], "btrfs");
    assert_eq!(out["baseline"]["source"], "baseline");
    for name in ["auto", "baseline"] {
        let json = &out[name];
        // A realised claim on a directory the blank snapshot already had.
        assert_eq!(row(json, "/var/lib/app"), pair("kept", "present"), "{name}");
        // A broken claim on a file nothing changed since the snapshot.
        assert_eq!(row(json, "/etc/unchanged"), pair("broken", "present"), "{name}");
        // An ignored directory that holds a new file: its content changed.
        assert_eq!(row(json, "/var/cache"), pair("ignored", "modified"), "{name}");
        assert_eq!(row(json, "/new-file"), pair("unclaimed", "created"), "{name}");
    }
    // The walk knows no blank state: everything is present.
    for path in ["/var/lib/app", "/etc/unchanged", "/var/cache", "/new-file"] {
        assert_eq!(row(&out["walk"], path).1, "present", "{path}");
    }
}
