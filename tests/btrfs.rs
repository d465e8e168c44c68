//! The baseline comparison on a real btrfs: a loop-mounted filesystem with
//! a `root` subvolume and its read-only `root-blank` snapshot, changed in
//! known ways. Expectations come from the operations below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

/// Builds the filesystem in a private mount namespace (so the mount and its
/// loop device go away with it, even when a check fails), then runs each
/// darlings command, printing `=== NAME` before each JSON report.
fn run_scenario(commands: &[(&str, &str)]) -> Vec<(String, Value)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut script = format!(
        r#"
cd '{dir}'
truncate -s 256M fs.img
mkfs.btrfs -q fs.img
mkdir m && mount -o loop fs.img m
btrfs -q subvolume create m/root
R=m/root
mkdir -p "$R/blank-dir" "$R/srv-old/sub" "$R/etc"
echo keep > "$R/blank-file"; echo a > "$R/blank-dir/a"; echo b > "$R/blank-dir/b"
echo x > "$R/srv-old/sub/x"; echo orig > "$R/etc/orig.conf"; echo meta > "$R/etc/meta-only"
ln -s old "$R/etc/link"; echo moved > "$R/etc/moved-away"; echo same > "$R/etc/unchanged"
btrfs -q subvolume snapshot -r m/root m/root-blank
rm "$R/blank-file"; rm -r "$R/blank-dir"
mv "$R/srv-old" "$R/srv"
echo changed >> "$R/etc/orig.conf"
chmod 600 "$R/etc/meta-only"
ln -sfn new "$R/etc/link"
mkdir -p "$R/var/lib/bluetooth" "$R/var/log" "$R/home/u/docs"
mv "$R/etc/moved-away" "$R/home/u/docs/moved-here"
echo pair > "$R/var/lib/bluetooth/info"
for i in 1 2 3 4 5; do echo "line $i" > "$R/var/log/l$i"; done
mkfifo "$R/var/fifo"; mknod "$R/var/null" c 1 3
echo linked > "$R/var/hard-1"; ln "$R/var/hard-1" "$R/home/u/hard-2"
printf x > "$R/home/u/$(printf 'new\nline')"; printf x > "$R/home/u/$(printf 'caf\351')"
btrfs -q subvolume create "$R/var/lib/machines"
echo inside > "$R/var/lib/machines/nested"
"#,
        dir = dir.path().display()
    );
    for (name, args) in commands {
        script.push_str(&format!(
            "echo '=== {name}'\n\"$D\" audit --root \"$PWD/m/root\" --format json --flat {args} || true\n"
        ));
    }
    let out = common::in_mount_namespace(&script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "scenario failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
        .split("=== ")
        .skip(1)
        .map(|part| {
            let (name, json) = part.split_once('\n').expect("a name line");
            (name.to_owned(), serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}: {e}\n{json}")))
        })
        .collect()
}

fn losses(json: &Value) -> BTreeSet<String> {
    common::findings(json)
        .into_iter()
        .filter(|(_, f)| matches!(f["verdict"].as_str(), Some("unclaimed" | "broken")))
        .map(|(p, _)| String::from_utf8_lossy(&p).into_owned())
        .collect()
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| (*p).to_owned()).collect()
}

#[test]
fn baseline_on_real_btrfs_finds_exactly_what_changed() {
    require_root!();
    let rules = "--keep /var/lib/bluetooth";
    let reports = run_scenario(&[
        ("baseline", &format!("--baseline \"$PWD/m/root-blank\" {rules}")),
        ("walk", &format!("--source walk {rules}")),
    ]);
    let (baseline, walk) = (&reports[0].1, &reports[1].1);
    assert_eq!(baseline["source"], "baseline");
    assert_eq!(baseline["errors"], Value::Array(vec![]));
    let expected = set(&[
        "/etc/link",
        "/etc/meta-only",
        "/etc/orig.conf",
        "/home",
        "/home/u",
        "/home/u/caf\u{fffd}",
        "/home/u/docs",
        "/home/u/docs/moved-here",
        "/home/u/hard-2",
        "/home/u/new\nline",
        "/srv",
        "/var/fifo",
        "/var/hard-1",
        "/var/lib/bluetooth",
        "/var/lib/bluetooth/info",
        "/var/log",
        "/var/log/l1",
        "/var/log/l2",
        "/var/log/l3",
        "/var/log/l4",
        "/var/log/l5",
        "/var/null",
    ]);
    assert_eq!(losses(baseline), expected);
    let f = common::findings(baseline);
    assert_eq!(f[&b"/srv"[..]]["change"], "renamed");
    assert_eq!(f[&b"/srv"[..]]["renamed_from"], "/srv-old");
    assert_eq!(f[&b"/home/u/docs/moved-here"[..]]["renamed_from"], "/etc/moved-away");
    assert_eq!(f[&b"/etc/orig.conf"[..]]["change"], "modified");
    assert_eq!(f[&b"/etc/meta-only"[..]]["change"], "modified");
    assert_eq!(f[&b"/blank-dir"[..]]["verdict"], "restored");
    assert_eq!(f[&b"/blank-dir"[..]]["entries"], 3);
    assert_eq!(f[&b"/blank-file"[..]]["verdict"], "restored");
    assert_eq!(f[&b"/var/lib/bluetooth"[..]]["verdict"], "broken");
    assert_eq!(
        f[&b"/var/lib/machines"[..]]["verdict"],
        "structure",
        "a nested subvolume is another filesystem"
    );
    assert!(!f.contains_key(&b"/var/lib/machines/nested"[..]));
    assert!(!f.contains_key(&b"/etc/unchanged"[..]), "unchanged since the snapshot: comes back");

    // The walk sees everything present; the baseline only what changed.
    // They differ exactly by what is unchanged since the blank snapshot.
    let walk_only: BTreeSet<String> = losses(walk).difference(&losses(baseline)).cloned().collect();
    assert_eq!(walk_only, set(&["/etc", "/etc/unchanged", "/srv/sub", "/srv/sub/x"]));
    assert!(losses(baseline).is_subset(&losses(walk)));
}
