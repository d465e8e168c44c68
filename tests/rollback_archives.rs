//! The way back on real btrfs: retention never prunes an archive that is
//! mounted (the mount table names its subvolume), never prunes the only
//! archive that holds data because the newest is an empty blank, and says
//! in the plan what it keeps and why; after a rollback, a mount of the old
//! root is named (it shows the archive now); the archive is read-only
//! unless `--writable-archive`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod rollback_common;

use rollback_common::run;

#[test]
fn a_mounted_archive_is_never_pruned_and_its_mount_is_named() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
# The root mounted for maintenance, with a mount inside it.
mkdir r && mount -o subvol=root "$LOOP" r
mkdir -p r/srv/sub && mount -t tmpfs tmpfs r/srv/sub && echo inside > r/srv/sub/f
mountinfo() { awk -v p="$WORK/r" '$5 == p { print $4 }' /proc/self/mountinfo; }
check first $D rollback --mountpoint m --yes --retain 1
ls m/old_roots > "$OUT/after-first"
mountinfo > "$OUT/r-after-first"
# The mount shows the archive now, and it is read-only.
{ echo x > r/etc/written-after; } 2> "$OUT/write-after.err"; echo $? > "$OUT/write-after.code"
echo more > m/root/etc/more
check second $D rollback --mountpoint m --yes --retain 1
ls m/old_roots > "$OUT/after-second"
mountinfo > "$OUT/r-after-second"
cat r/etc/blank.conf r/srv/sub/f > "$OUT/still-there" 2>&1
$D archives --mountpoint m --format json > "$OUT/archives.json"
umount r/srv/sub && umount r
echo again > m/root/etc/again
check third $D rollback --mountpoint m --yes --retain 1
ls m/old_roots > "$OUT/after-third"
"#);
    let first = r.text("first.out");
    assert_eq!(r.code("first"), 0, "{first}");
    let a1 = r.lines("after-first").remove(0);
    let work = r.path("").parent().unwrap().to_owned();
    let mp = work.join("r").display().to_string();
    assert!(first.contains(&format!("  mounted:    {mp}\n")), "the plan names the mount: {first}");
    assert!(
        first.contains(&format!(
            "warning: {mp} still shows the old root: it is the archive old_roots/{a1} now, not the new root; unmount it when done (`umount {mp}`)"
        )),
        "{first}"
    );
    assert_eq!(
        first.matches("still shows the old root").count(),
        1,
        "said once, stdout and stderr together: {first}"
    );
    assert_eq!(r.text("r-after-first").trim(), format!("/old_roots/{a1}"), "the mount follows the archive");
    assert_ne!(r.code("write-after"), 0, "the archive is read-only, even through the old mount");
    assert!(r.text("write-after.err").contains("Read-only file system"), "{}", r.text("write-after.err"));

    // Mounted: kept, and the plan says why; the mount and its submount live on.
    let second = r.text("second.out");
    assert_eq!(r.code("second"), 0, "{second}");
    assert!(
        second.contains(&format!("  keeps:      {a1} (mounted at {mp}: never pruned while mounted)")),
        "{second}"
    );
    assert!(!second.contains("prunes:"), "{second}");
    let after = r.lines("after-second");
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.contains(&a1), "{after:?}");
    assert_eq!(r.text("r-after-second").trim(), format!("/old_roots/{a1}"), "not //deleted");
    assert_eq!(r.text("still-there"), "orig\nchanged\ninside\n");
    let listed = r.json("archives.json");
    let mounted = listed.as_array().unwrap().iter().find(|a| a["name"] == a1.as_str()).unwrap();
    assert_eq!(mounted["mounted"][0], mp.as_str(), "{listed}");

    // Unmounted, it goes.
    let third = r.text("third.out");
    assert_eq!(r.code("third"), 0, "{third}");
    assert!(
        third.contains(&format!("  prunes:     {}/m/old_roots/{a1} (retention)", work.display())),
        "{third}"
    );
    let after = r.lines("after-third");
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(!after.contains(&a1));
}

#[test]
fn an_empty_archive_never_pushes_out_the_one_with_data() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
check one $D rollback --mountpoint m --yes --retain 1
A1=$(ls m/old_roots)
# Right away again: the root is its blank state, the archive holds nothing.
check two $D rollback --mountpoint m --yes --retain 1
ls m/old_roots > "$OUT/after-two"
check three $D rollback --mountpoint m --yes --retain 1
ls m/old_roots > "$OUT/after-three"
cat "m/old_roots/$A1/var/lib/app/db" > "$OUT/data" 2>&1
$D archives --mountpoint m --format json > "$OUT/archives.json"
# restore's default archive is the newest holding data, not the empty newest,
# and one darlings made, not a subvolume someone put beside them (the newest).
btrfs -q subvolume create m/old_roots/planted
mkdir -p m/old_roots/planted/var/lib/app && echo planted > m/old_roots/planted/var/lib/app/db
mkdir into
check restore $D restore --mountpoint m --root into /var/lib/app/db
cat into/var/lib/app/db > "$OUT/restored" 2>&1
check restore-none $D restore --mountpoint m --root into /var/lib/nothing-here
btrfs -q subvolume delete m/old_roots/planted
btrfs property get -ts "m/old_roots/$A1" ro > "$OUT/ro"
echo x > m/root/etc/x
check writable $D rollback --mountpoint m --yes --writable-archive
A=$(ls m/old_roots | sort -V | tail -1)
btrfs property get -ts "m/old_roots/$A" ro > "$OUT/writable-ro"
"#);
    for name in ["one", "two", "three"] {
        assert_eq!(r.code(name), 0, "{name}: {}", r.text(&format!("{name}.out")));
    }
    assert_eq!(r.lines("after-three").len(), 2, "the data and the newest: {:?}", r.lines("after-three"));
    assert_eq!(r.text("data"), "state\n", "the archive with data is kept");
    let two = r.text("two.out");
    assert!(two.contains("the root holds nothing its blank state does not"), "{two}");
    assert!(two.contains("(one of the newest 1 that hold data (--retain 1))"), "the plan says why: {two}");
    assert_eq!(r.lines("after-two").len(), 2, "both stay: {:?}", r.lines("after-two"));
    let after = r.lines("after-three");
    assert_eq!(after.len(), 2, "the data and the newest: {after:?}");
    assert_eq!(r.text("data"), "state\n", "the archive with data is kept");
    let three = r.text("three.out");
    assert_eq!(three.matches("  prunes:     ").count(), 1, "only the empty one: {three}");
    let listed = r.json("archives.json");
    let holds: Vec<bool> =
        listed.as_array().unwrap().iter().map(|a| a["holds_data"].as_bool().unwrap()).collect();
    assert_eq!(holds, [false, true], "newest first: {listed}");
    assert_eq!(r.code("restore"), 0, "{}", r.text("restore.out"));
    assert_eq!(r.text("restored"), "state\n", "from the archive with data: {}", r.text("restore.out"));
    let none = r.text("restore-none.out");
    assert_eq!(r.code("restore-none"), 2, "{none}");
    assert!(none.contains("is not in archive") && none.contains("the newest archive holding data"), "{none}");
    assert_eq!(r.text("ro").trim(), "ro=true");
    assert_eq!(r.code("writable"), 0, "{}", r.text("writable.out"));
    assert_eq!(r.text("writable-ro").trim(), "ro=false", "--writable-archive: {}", r.text("writable.out"));
    assert!(!r.text("writable.out").contains("property set"), "{}", r.text("writable.out"));
}

/// A user who may make a subvolume on the root names it so that the
/// listing shows a forged line naming another subvolume as nested in the
/// root (`x\nID <persist> gen 1 parent <root> … path y`). Neither the plan
/// nor retention may take it at its word: `persist` survives every prune.
#[test]
fn a_forged_subvolume_listing_never_deletes_a_subvolume_outside_the_archive() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
btrfs -q subvolume create m/persist
echo precious > m/persist/keep
P=$(btrfs inspect-internal rootid m/persist)
R=$(btrfs inspect-internal rootid m/root)
chown 1000 m/root/home/u
setpriv --reuid=1000 --regid=1000 --clear-groups \
  btrfs -q subvolume create "m/root/home/u/x
ID $P gen 1 parent $R top level $R path y"
btrfs subvolume list -p m > "$OUT/listing"
$D mark --mountpoint m > /dev/null
check first $D rollback --mountpoint m --yes --force
echo one > m/root/etc/one
check second $D rollback --mountpoint m --yes --force
echo two > m/root/etc/two
check third $D rollback --mountpoint m --yes --force --retain 1
ls m/old_roots > "$OUT/archives"
cat m/persist/keep > "$OUT/keep" 2>&1
btrfs subvolume list m | grep -c 'path persist$' > "$OUT/persist"
"#);
    assert!(
        r.text("listing").lines().any(|l| l.ends_with(" path y")),
        "the forged line: {}",
        r.text("listing")
    );
    for name in ["first", "second", "third"] {
        assert_eq!(r.code(name), 0, "{name}: {}", r.text(&format!("{name}.out")));
    }
    let first = r.text("first.out");
    assert!(!first.contains("/y (nested subvolume)"), "no forged child in the plan: {first}");
    assert!(first.contains("/home/u/x\\nID "), "the real child, escaped whole: {first}");
    let third = r.text("third.out");
    assert!(third.contains("retention: delete archive"), "the first archive is pruned: {third}");
    assert!(
        third.contains("retention: delete home/u/x\\nID ") || third.contains("/home/u/x\\nID "),
        "{third}"
    );
    assert_eq!(r.text("persist").trim(), "1", "persist is still a subvolume: {third}");
    assert_eq!(r.text("keep"), "precious\n", "{third}");
}

/// An archive is as old as the erase that made it, not as the plan: an
/// operator who read the plan for a while before typing the name was told
/// that an archive made seconds earlier was minutes old (its name is the
/// time the rollback started).
#[test]
fn an_archive_is_dated_from_the_erase_not_from_the_plan() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
date +%s > "$OUT/started"
# The operator reads the plan for a few seconds, then types the name.
{ sleep 5; date +%s > "$OUT/typed"; printf 'root\n'; } |
  script -q -e -c "$D rollback --mountpoint m" /dev/null > "$OUT/asked.out" 2>&1
echo $? > "$OUT/asked.code"
$D archives --mountpoint m --format json > "$OUT/archives.json"
$D archives --mountpoint m > "$OUT/archives.txt"
$D status --mountpoint m > "$OUT/status.txt"
date +%s > "$OUT/listed"
"#);
    assert_eq!(r.code("asked"), 0, "{}", r.text("asked.out"));
    let secs = |name: &str| -> i64 { r.text(name).trim().parse().unwrap() };
    let (started, typed, listed) = (secs("started"), secs("typed"), secs("listed"));
    assert!(typed >= started + 5, "the scenario waited: {started} {typed}");
    let listed_json = r.json("archives.json");
    let archive = &listed_json.as_array().unwrap()[0];
    let created = archive["created"].as_str().unwrap();
    // Same width and zone: the texts sort as the times do.
    let rfc = |t| darlings::sys::fmt::rfc3339(t).unwrap();
    let (after, before) = (rfc(typed), rfc(listed));
    assert!(
        after.as_str() <= created && created <= before.as_str(),
        "made between the typed name ({after}) and the listing ({before}), not when the rollback started ({}): {listed_json}",
        rfc(started)
    );
    // The text says so: at most the seconds since the name was typed.
    let most = listed - typed;
    let name = archive["name"].as_str().unwrap();
    let text = r.text("archives.txt");
    let row = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}: {text}"));
    let age: i64 = row[name.len()..].trim_start().split(' ').next().unwrap().parse().unwrap();
    assert!(row.contains(&format!("{age} seconds ago")), "{row}");
    assert!(age <= most, "at most {most} seconds: {row}");
    let status = r.text("status.txt");
    let newest = status.lines().find(|l| l.starts_with("archives:")).unwrap();
    let (_, shown) = newest.rsplit_once('(').unwrap();
    let age: i64 = shown.split(' ').next().unwrap().parse().unwrap();
    assert!(
        age <= most && shown.starts_with(&format!("{age} seconds ago")),
        "at most {most} seconds: {newest}"
    );
}

/// Retention deletes nested subvolumes by id; one moved out of the archive
/// between the plan and its deletion (here, by a stand-in `btrfs` right as
/// the archive is made writable) is checked again and left alone.
#[test]
fn a_nested_subvolume_moved_out_of_the_archive_is_not_deleted() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
btrfs -q subvolume create m/persist
btrfs -q subvolume create m/root/var/lib/machines/racer
echo mine > m/root/var/lib/machines/racer/f
$D mark --mountpoint m > /dev/null
check first $D rollback --mountpoint m --yes --force
A1=$(ls m/old_roots)
echo more > m/root/etc/more
REAL=$(command -v btrfs)
mkdir fake
cat > fake/btrfs <<EOF
#!/bin/sh
"$REAL" "\$@" || exit \$?
# Right after the archive is made writable: the nested subvolume leaves it.
if [ "\$1 \$2 \$5 \$6" = "property set ro false" ]; then
  mv "$WORK/m/old_roots/$A1/var/lib/machines/racer" "$WORK/m/persist/racer"
fi
EOF
chmod +x fake/btrfs
PATH="$PWD/fake:$PATH" $D rollback --mountpoint m --yes --force --retain 1 > "$OUT/second.out" 2>&1
echo $? > "$OUT/second.code"
cat m/persist/racer/f > "$OUT/kept" 2>&1
"#);
    assert_eq!(r.code("first"), 0, "{}", r.text("first.out"));
    let second = r.text("second.out");
    assert_eq!(r.code("second"), 2, "the prune stops: {second}");
    assert!(
        second.contains("was not run: subvolume") && second.contains("is no longer inside the archive"),
        "{second}"
    );
    assert_eq!(r.text("kept"), "mine\n", "the moved subvolume is not deleted: {second}");
}
