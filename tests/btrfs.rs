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
    run_scenario_then("", commands)
}

/// [`run_scenario`], with `then` run after the changes (more mounts, say);
/// commands name their own `--root`. `$PWD/m` is the top-level volume.
fn run_scenario_then(then: &str, commands: &[(&str, &str)]) -> Vec<(String, Value)> {
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
H="$R/home/u/hostile"; mkdir -p "$H"
for name in 'with space' "$(printf 'tab\there')" "$(printf 'new\nline')" 'back\slash' '\0040 looks escaped' \
            "$(printf 'caf\351 latin1')" "$(printf '\377\376')" "$(printf '\033[31mred\033[0m')" \
            "$(printf 'n%.0s' $(seq 1 255))" 'résumé 日本語' '*star?[x]'; do
  printf '%s' "$name" > "$H/$name"
done
btrfs -q subvolume create "$R/var/lib/machines"
echo inside > "$R/var/lib/machines/nested"
"#,
        dir = dir.path().display()
    );
    script.push_str(then);
    script.push('\n');
    for (name, args) in commands {
        let args = if args.contains("--root") {
            (*args).to_owned()
        } else {
            format!("--root \"$PWD/m/root\" {args}")
        };
        script.push_str(&format!("echo '=== {name}'\n\"$D\" audit --format json --flat {args} || true\n"));
    }
    // Mounts of darlings' own still there afterwards (there must be none).
    script.push_str("echo '=== helper-mounts'\necho \"{\\\"n\\\": $(grep -c darlings-btrfs-top /proc/self/mountinfo || true)}\"\n");
    common::sections(&common::in_mount_namespace(&script))
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
    require_tool!("mkfs.btrfs", "btrfs-progs");
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
        "/var/lib/machines",
        "/var/log",
        "/var/log/l1",
        "/var/log/l2",
        "/var/log/l3",
        "/var/log/l4",
        "/var/log/l5",
        "/var/null",
    ]);
    let mut expected = expected;
    expected.insert("/home/u/hostile".to_owned());
    expected.extend(common::guest_hostile_paths().iter().map(|p| String::from_utf8_lossy(p).into_owned()));
    assert_eq!(losses(baseline), expected);
    // Exact bytes, not only their lossy text.
    let exact = common::findings(baseline);
    for p in common::guest_hostile_paths() {
        assert_eq!(exact[&p]["change"], "created", "{}", String::from_utf8_lossy(&p));
    }
    let f = common::findings(baseline);
    assert_eq!(f[&b"/srv"[..]]["change"], "renamed");
    assert_eq!(f[&b"/srv"[..]]["renamed_from"], "/srv-old");
    assert_eq!(f[&b"/home/u/docs/moved-here"[..]]["renamed_from"], "/etc/moved-away");
    assert_eq!(f[&b"/etc/orig.conf"[..]]["change"], "modified");
    assert_eq!(f[&b"/etc/meta-only"[..]]["change"], "modified");
    // `ln -sfn` makes a new symlink under the old name: any blank tree
    // (--baseline) sees its target changed.
    assert_eq!(f[&b"/etc/link"[..]]["change"], "modified");
    assert_eq!(f[&b"/blank-dir"[..]]["verdict"], "restored");
    assert_eq!(f[&b"/blank-dir"[..]]["entries"], 3);
    assert_eq!(f[&b"/blank-file"[..]]["verdict"], "restored");
    assert_eq!(f[&b"/var/lib/bluetooth"[..]]["verdict"], "broken");
    // A nested subvolume is another filesystem, but no mount: it goes with the root.
    assert_eq!(f[&b"/var/lib/machines"[..]]["verdict"], "unclaimed");
    assert!(f[&b"/var/lib/machines"[..]]["detail"].as_str().unwrap().starts_with("a nested btrfs subvolume"));
    assert!(!f.contains_key(&b"/var/lib/machines/nested"[..]));
    assert!(!f.contains_key(&b"/etc/unchanged"[..]), "unchanged since the snapshot: comes back");

    // The walk sees everything present; the baseline only what changed.
    // They differ exactly by what is unchanged since the blank snapshot.
    let walk_only: BTreeSet<String> = losses(walk).difference(&losses(baseline)).cloned().collect();
    assert_eq!(walk_only, set(&["/etc", "/etc/unchanged", "/srv/sub", "/srv/sub/x"]));
    assert!(losses(baseline).is_subset(&losses(walk)));
}

#[test]
fn auto_finds_the_blank_snapshot_next_to_the_root_subvolume() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    // The root subvolume mounted on its own, as an initrd would: once with
    // the top-level volume mounted too, once without (darlings then mounts
    // it read-only itself, and unmounts it before it ends).
    let reports = run_scenario_then(
        r#"mkdir r && mount -o loop,subvol=root fs.img r"#,
        &[
            ("with-top", "--root \"$PWD/r\" --keep /var/lib/bluetooth"),
            ("forced", "--root \"$PWD/r\" --source btrfs --keep /var/lib/bluetooth"),
            ("baseline", "--root \"$PWD/r\" --baseline \"$PWD/m/root-blank\" --keep /var/lib/bluetooth"),
        ],
    );
    let by_name = |n: &str| &reports.iter().find(|(name, _)| name == n).expect(n).1;
    let auto = by_name("with-top");
    assert_eq!(auto["source"], "btrfs");
    // The root's own snapshot: a new inode under the old name is a new
    // object, as zfs diff says (`ln -sfn`).
    assert_eq!(common::findings(auto)[&b"/etc/link"[..]]["change"], "created");
    assert_eq!(common::findings(by_name("baseline"))[&b"/etc/link"[..]]["change"], "modified");
    assert_eq!(losses(auto), losses(by_name("baseline")));
    assert!(auto["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .any(|n| n == "compared with the blank snapshot /root-blank"));

    let reports = run_scenario_then(
        r#"umount m; mkdir r && mount -o loop,subvol=root fs.img r"#,
        &[("helper", "--root \"$PWD/r\" --keep /var/lib/bluetooth")],
    );
    let helper = &reports[0].1;
    assert_eq!(helper["source"], "btrfs");
    assert_eq!(losses(helper), losses(auto));
    assert_eq!(reports[1].0, "helper-mounts");
    assert_eq!(reports[1].1["n"], 0, "the read-only helper mount is gone");
}

#[test]
fn a_claimed_nested_subvolume_is_broken_a_mounted_one_kept() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let reports = run_scenario_then(
        r#"btrfs -q subvolume create m/vm; mkdir -p m/root/srv/vm; mount -o loop,subvol=vm fs.img m/root/srv/vm"#,
        &[("claimed", "--source walk --keep /var/lib/machines --keep /srv/vm")],
    );
    let f = common::findings(&reports[0].1);
    assert_eq!(f[&b"/var/lib/machines"[..]]["verdict"], "broken", "the claim lives on the root");
    assert!(f[&b"/var/lib/machines"[..]]["detail"].as_str().unwrap().contains("goes with it at rollback"));
    assert_eq!(f[&b"/srv/vm"[..]]["verdict"], "kept", "a mounted subvolume is another filesystem");
    assert!(!f.contains_key(&b"/var/lib/machines/nested"[..]), "never entered");
}

#[test]
fn auto_walks_a_btrfs_root_without_a_blank_snapshot() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let reports = run_scenario_then(
        r#"btrfs -q subvolume delete m/root-blank; mkdir r && mount -o loop,subvol=root fs.img r"#,
        &[("auto", "--root \"$PWD/r\"")],
    );
    let json = &reports[0].1;
    assert_eq!(json["source"], "walk");
    let notes = json["notes"].as_array().expect("notes");
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap_or("").contains("no blank snapshot was found at /root-blank, /blank")),
        "{notes:?}"
    );
}

#[test]
fn source_btrfs_on_another_filesystem_refuses() {
    let t = common::Tree::new();
    let out = common::run([
        std::ffi::OsStr::new("audit"),
        "--source".as_ref(),
        "btrfs".as_ref(),
        "--root".as_ref(),
        t.root().as_os_str(),
    ]);
    assert_eq!(common::code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not the mount point of a btrfs subvolume"));
}
