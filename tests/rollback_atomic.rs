//! The erase, atomic and alone, on a real btrfs (a loop device in a private
//! mount namespace): what changes between the plan and the act stops the
//! run with the root untouched; two rollbacks (or marks) never run at
//! once; a kill anywhere between moving the root aside and sealing the
//! archive leaves a note every later run acts on; and what `status` says
//! of a run is what the filesystem shows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod rollback_common;

use rollback_common::run;
use serde_json::Value;

/// The plan is shown on a terminal and waits for the name; meanwhile
/// someone changes what it planned on. Each change stops the run before
/// anything moves: the subvolumes and the root's tree are the same after.
#[test]
fn what_changes_between_plan_and_act_stops_the_run_with_the_root_untouched() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
mkdir m/old_roots
mkdir "$WORK/elsewhere"
fingerprint() {
  btrfs subvolume list -a -u m | sed 's/ gen [0-9]*//'
  (cd m/root && find . -printf '%p|%y|%s|%m|%i\n' | LC_ALL=C sort && find . -type f -exec md5sum {} + | LC_ALL=C sort)
}
# A rollback that waits at its prompt while ACT runs (at_prompt), with
# the root's fingerprint and status after.
between() {
  name=$1; act=$2
  before=$(fingerprint)
  at_prompt "$name" "$act"
  if [ "$(fingerprint)" = "$before" ]; then echo same; else echo changed; fi > "$OUT/$name.root"
  $D status --mountpoint m --format json > "$OUT/$name.status.json"
}
between symlinked 'mv m/old_roots m/old_roots.real && ln -s "$WORK/elsewhere" m/old_roots'
ls -A "$WORK/elsewhere" > "$OUT/elsewhere"
rm m/old_roots && mv m/old_roots.real m/old_roots
between replaced 'mv m/old_roots m/old_roots.real && mkdir m/old_roots'
rmdir m/old_roots && mv m/old_roots.real m/old_roots
between taken 'mkdir "m/old_roots/$(cat "$WORK/name")"'
ls -A m/old_roots > "$OUT/taken.ls"
rm -r m/old_roots/*
# The mark cannot be taken off meanwhile: the rollback holds the lock.
between unmarked '$D mark --mountpoint m --off > "$OUT/unmark.out" 2>&1; echo $? > "$OUT/unmark.code"'
# Plan-time refusals: names that overlap.
check inside $D rollback --mountpoint m --yes --old-roots root/old
check inside-blank $D rollback --mountpoint m --yes --old-roots root-blank/old
check archives-are-root $D rollback --mountpoint m --yes --old-roots root
ls -A m/root > "$OUT/root.ls"
"#);
    for name in ["symlinked", "replaced", "taken"] {
        let out = r.text(&format!("{name}.out"));
        assert_eq!(r.code(name), 2, "{name}: {out}");
        assert_eq!(r.text(&format!("{name}.root")).trim(), "same", "{name} moved something: {out}");
        assert!(out.contains("failed at step 1 of 3"), "{name}: {out}");
        assert!(out.contains("Nothing was changed"), "{name}: {out}");
        let status = r.json(&format!("{name}.status.json"));
        let last = &status["last_rollback"];
        assert_eq!(last["outcome"], "failed", "{name}: {status}");
        assert_eq!(last["archive"], Value::Null, "{name}: no erased state is said to be kept: {status}");
        assert_eq!(status["archives"].as_array().map(Vec::len), Some(0), "{name}: {status}");
    }
    assert!(r.text("symlinked.out").contains("old_roots changed since the plan was made"));
    assert_eq!(r.text("elsewhere"), "", "nothing went through the symlink");
    assert!(r.text("replaced.out").contains("not the directory the plan found"));
    assert!(r.text("taken.out").contains("appeared after the plan: nothing is moved onto it"));
    assert_eq!(r.lines("taken.ls").len(), 1, "only the directory that appeared: {:?}", r.lines("taken.ls"));

    assert_eq!(r.code("unmark"), 2, "{}", r.text("unmark.out"));
    let unmark = r.text("unmark.out");
    assert!(unmark.contains("is locked by another darlings, pid "), "{unmark}");
    assert_eq!(r.code("unmarked"), 0, "the rollback went on: {}", r.text("unmarked.out"));

    r.refused("inside", 2, "--old-roots root/old lies inside the root root");
    r.refused("inside-blank", 2, "lies inside the blank subvolume");
    r.refused("archives-are-root", 2, "lies inside the root");
    assert!(!r.lines("root.ls").contains(&"old".to_owned()));
}

/// Twenty pairs of rollbacks started together, then thirty pairs of marks:
/// each rollback erases alone or is refused naming the other's pid; every
/// archive is one old root, beside the others, and no mark is lost.
#[test]
fn two_rollbacks_or_marks_never_run_at_once() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
for i in $(seq 20); do
  echo "pair $i" > m/root/etc/pair
  $D rollback --mountpoint m --yes > "$OUT/a$i.out" 2>&1 & a=$!
  $D rollback --mountpoint m --yes > "$OUT/b$i.out" 2>&1 & b=$!
  wait $a; echo $? > "$OUT/a$i.code"
  wait $b; echo $? > "$OUT/b$i.code"
done
btrfs subvolume list -o m | sed 's/.* path //' > "$OUT/top-subvolumes"
btrfs subvolume list m | sed 's/.* path //' | LC_ALL=C sort > "$OUT/subvolumes"
ls m/old_roots | wc -l > "$OUT/archives"
tree m/root > "$OUT/root.tree"; tree m/root-blank > "$OUT/blank.tree"
for i in $(seq 30); do
  btrfs -q subvolume create "m/sa$i"; btrfs -q subvolume create "m/sb$i"
  $D mark --mountpoint m --subvolume "sa$i" --wait 30 > /dev/null & a=$!
  $D mark --mountpoint m --subvolume "sb$i" --wait 30 > /dev/null & b=$!
  wait $a; wait $b
done
python3 -c 'import os; print(os.getxattr("m", "user.darlings.ephemeral").decode())' > "$OUT/marks"
"#);
    let mut erased = 0;
    for i in 1..=20 {
        for side in ["a", "b"] {
            let name = format!("{side}{i}");
            let out = r.text(&format!("{name}.out"));
            match r.code(&name) {
                0 => erased += 1,
                2 => assert!(out.contains("is locked by another darlings, pid "), "{name}: {out}"),
                code => panic!("{name} exited {code}: {out}"),
            }
        }
    }
    assert!(erased >= 20, "at least one of each pair erases: {erased}");
    let archives: usize = r.text("archives").trim().parse().unwrap();
    assert_eq!(archives, erased, "one archive per erase");
    // Every subvolume is the root, the blank, an archive beside the others,
    // or the nested one the first archive took along: none inside another's.
    for path in r.lines("subvolumes") {
        let parts: Vec<&str> = path.split('/').collect();
        let ok = matches!(
            parts.as_slice(),
            ["root" | "root-blank"] | ["old_roots", _] | ["old_roots", _, "var", "lib", "machines"]
        );
        assert!(ok, "a subvolume where none belongs: {path}\n{:?}", r.lines("subvolumes"));
    }
    assert_eq!(r.text("root.tree"), r.text("blank.tree"));
    let marks = r.lines("marks");
    assert_eq!(marks.len(), 61, "root and 60 marks: {marks:?}");
    for i in 1..=30 {
        assert!(marks.contains(&format!("sa{i}")) && marks.contains(&format!("sb{i}")), "{marks:?}");
    }
}

/// Killed with SIGKILL anywhere between moving the root aside and making
/// the archive read-only: `archives` says the seal the filesystem shows,
/// and the next rollback makes it read-only first. Runs until 80 kills
/// landed in that window.
#[test]
fn a_kill_in_the_sealing_window_never_leaves_an_archive_writable_for_good() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
# Widens the window: the new root and the seal each take a while.
fake_btrfs 'case "$1 $2" in "subvolume snapshot"|"property set") sleep 0.15 ;; esac'
in_window=0; trials=0
while [ "$in_window" -lt 80 ] && [ "$trials" -lt 200 ]; do
  trials=$((trials + 1))
  echo "k $trials" > m/root/etc/k
  # In a process group of its own: the kill takes its children too, as a
  # power cut would.
  PATH="$WORK/fake:$PATH" setsid $D rollback --mountpoint m --yes > /dev/null 2>&1 & p=$!
  # The root is moved aside once its file is gone from m/root.
  for t in $(seq 4000); do [ -e m/root/etc/k ] || break; sleep 0.002; done
  sleep "0.$(printf '%02d' $((RANDOM % 35)))"
  kill -9 -- -$p 2>/dev/null; wait $p 2>/dev/null
  while pgrep -f "$WORK/fake/btrfs" > /dev/null || pgrep -g $p > /dev/null; do sleep 0.01; done
  writable=0
  for a in $(ls m/old_roots); do
    ro=$(btrfs property get -ts "m/old_roots/$a" ro)
    [ "$ro" = ro=false ] && writable=$((writable + 1))
    echo "$a $ro"
  done > "$OUT/fs$trials"
  [ "$writable" -gt 0 ] && in_window=$((in_window + 1))
  $D archives --mountpoint m --format json > "$OUT/archives$trials.json"
  $D rollback --mountpoint m --yes > "$OUT/next$trials.out" 2>&1; echo $? > "$OUT/next$trials.code"
  for a in $(ls m/old_roots); do echo "$a $(btrfs property get -ts "m/old_roots/$a" ro)"; done > "$OUT/sealed$trials"
done
echo "$trials $in_window" > "$OUT/counts"
"#);
    let counts: Vec<usize> = r.text("counts").split_whitespace().map(|n| n.parse().unwrap()).collect();
    let (trials, in_window) = (counts[0], counts[1]);
    assert!(in_window >= 80, "{in_window} of {trials} kills left an archive writable");
    for t in 1..=trials {
        // What `archives` says is what the filesystem shows.
        let listed = r.json(&format!("archives{t}.json"));
        for line in r.lines(&format!("fs{t}")) {
            let (name, ro) = line.split_once(' ').unwrap();
            let entry = listed.as_array().unwrap().iter().find(|a| a["name"] == name);
            let entry = entry.unwrap_or_else(|| panic!("trial {t}: {name} not listed: {listed}"));
            assert_eq!(entry["read_only"], Value::Bool(ro == "ro=true"), "trial {t}: {name}: {listed}");
        }
        let next = r.text(&format!("next{t}.out"));
        assert_eq!(r.code(&format!("next{t}")), 0, "trial {t}: {next}");
        for line in r.lines(&format!("sealed{t}")) {
            assert!(
                line.ends_with("ro=true"),
                "trial {t}: still writable after the next run: {line}\n{next}"
            );
        }
    }
}

/// How far a run got, as `status` tells it: killed before its first step
/// finished, nothing is said to be kept; killed after the move, the
/// erased state is kept, and `status` checked that it is.
#[test]
fn status_says_how_far_an_interrupted_run_got() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
# A btrfs that kills darlings when it is asked to do "$1".
kill_at() { fake_btrfs "if [ \"\$1 \$2\" = \"$1\" ]; then kill -9 \$PPID; exit 1; fi"; }
# Killed at the seal: the archive is noted unsealed, the root is made.
kill_at "property set"
PATH="$WORK/fake:$PATH" $D rollback --mountpoint m --yes > "$OUT/sealing.out" 2>&1; echo $? > "$OUT/sealing.code"
$D status --mountpoint m > "$OUT/sealing.status"
# The next run's first step seals that archive: killed there, before the move.
echo again > m/root/etc/again
PATH="$WORK/fake:$PATH" $D rollback --mountpoint m --yes > "$OUT/first.out" 2>&1; echo $? > "$OUT/first.code"
$D status --mountpoint m --format json > "$OUT/first.json"
$D status --mountpoint m > "$OUT/first.status"
# Killed making the new root, after the move.
PATH=/usr/bin:/bin $D rollback --mountpoint m --yes > /dev/null 2>&1
echo third > m/root/etc/third
kill_at "subvolume snapshot"
PATH="$WORK/fake:$PATH" $D rollback --mountpoint m --yes > "$OUT/moved.out" 2>&1; echo $? > "$OUT/moved.code"
$D status --mountpoint m --format json > "$OUT/moved.json"
$D status --mountpoint m > "$OUT/moved.status"
# The archive it names is gone: status no longer says it is kept.
A=$(ls m/old_roots | sort -V | tail -1)
btrfs property set -ts "m/old_roots/$A" ro false; btrfs -q subvolume delete "m/old_roots/$A/var/lib/machines" 2>/dev/null
btrfs -q subvolume delete "m/old_roots/$A"
$D status --mountpoint m > "$OUT/gone.status"
"#);
    assert_eq!(r.code("sealing"), 137, "{}", r.text("sealing.out"));
    assert_eq!(r.code("first"), 137, "{}", r.text("first.out"));
    let first = r.json("first.json");
    let last = &first["last_rollback"];
    assert_eq!(last["outcome"], "interrupted", "{first}");
    assert_eq!(last["steps_done"], 0, "{first}");
    assert_eq!(last["archive"], Value::Null, "nothing is said to be kept: {first}");
    let text = r.text("first.status");
    assert!(text.contains("interrupted before its first step finished"), "{text}");
    assert!(!text.contains("erased state kept"), "{text}");

    assert_eq!(r.code("moved"), 137, "{}", r.text("moved.out"));
    let moved = r.json("moved.json");
    let last = &moved["last_rollback"];
    assert_eq!(last["outcome"], "interrupted", "{moved}");
    assert_eq!(last["archive_kept"], true, "{moved}");
    let text = r.text("moved.status");
    assert!(text.contains("after step 1 of 3 (move the current root aside"), "{text}");
    assert!(text.contains("erased state kept in"), "{text}");
    let gone = r.text("gone.status");
    assert!(!gone.contains("erased state kept in"), "{gone}");
    assert!(gone.contains("is not there, or holds something else, now"), "{gone}");
}

/// What the hostile review tried next: a blank replaced by another
/// subvolume that took its device number, a blank written in while
/// writable for a moment, a bind mount over the top-level volume, an
/// archive swapped before retention deletes it. Each stops the step that
/// depends on it; the root is never made from anything but the blank.
#[test]
fn a_swapped_or_written_blank_and_a_swapped_archive_are_never_acted_on() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
mkdir m/old_roots
prompt() {
  name=$1
  at_prompt "$@"
  ls -A m > "$OUT/$name.top"
  [ -e m/root/payload ] && echo payload > "$OUT/$name.payload" || : > "$OUT/$name.payload"
}
# The blank deleted and another subvolume put in its place (freed device
# numbers are handed out again).
prompt swapped-blank 'btrfs -q subvolume delete m/root-blank; timeout 5 btrfs -q subvolume sync m;
  btrfs -q subvolume create m/x; echo EVIL > m/x/payload; btrfs property set -ts m/x ro true; mv m/x m/root-blank'
# Put a real blank back for what follows.
btrfs property set -ts m/root-blank ro false; rm -f m/root-blank/payload; btrfs property set -ts m/root-blank ro true
[ -e m/root ] || btrfs -q subvolume snapshot m/root-blank m/root
echo lived > m/root/lived
prompt written-blank 'btrfs property set -ts m/root-blank ro false; echo EVIL > m/root-blank/payload; btrfs property set -ts m/root-blank ro true'
btrfs property set -ts m/root-blank ro false; rm -f m/root-blank/payload; btrfs property set -ts m/root-blank ro true
[ -e m/root ] || btrfs -q subvolume snapshot m/root-blank m/root
# Something else mounted over the top-level volume's path.
mkdir "$WORK/other"
prompt bind-over 'mount --bind "$WORK/other" m'
umount m 2>/dev/null; ls -A m > "$OUT/bind-over.after"
# Two archives, then retention: the one to prune is swapped for a subvolume with data.
$D rollback --mountpoint m --yes > /dev/null 2>&1
echo again > m/root/again
$D rollback --mountpoint m --yes > /dev/null 2>&1
OLD=$(ls m/old_roots | sort -V | head -1); echo "$OLD" > "$OUT/old"
btrfs -q subvolume create m/home; echo PRECIOUS > m/home/data
echo third > m/root/third
prompt swapped-archive 'btrfs property set -ts "m/old_roots/$OLD" ro false; mv "m/old_roots/$OLD" m/saved; mv m/home "m/old_roots/$OLD"' --retain 1
cat "m/old_roots/$OLD/data" > "$OUT/precious" 2>&1
# A trailing slash names the same directory.
echo fourth > m/root/fourth
check slash $D rollback --mountpoint m --yes --old-roots old_roots/
"#);
    for name in ["swapped-blank", "written-blank"] {
        let out = r.text(&format!("{name}.out"));
        assert_eq!(r.code(name), 2, "{name}: {out}");
        assert!(out.contains("root-blank changed since the plan was made"), "{name}: {out}");
        assert!(out.contains("failed at step 1 of"), "{name}: the move did not run: {out}");
        assert!(r.lines(&format!("{name}.top")).contains(&"root".to_owned()), "{name}: {out}");
        assert_eq!(r.text(&format!("{name}.payload")), "", "{name}: the root is not made from it: {out}");
    }
    let bind = r.text("bind-over.out");
    assert_eq!(r.code("bind-over"), 2, "{bind}");
    assert!(bind.contains("failed at step 1 of"), "{bind}");
    assert!(r.lines("bind-over.after").contains(&"root".to_owned()), "the root was not moved: {bind}");

    let swapped = r.text("swapped-archive.out");
    assert_eq!(r.code("swapped-archive"), 2, "{swapped}");
    assert!(swapped.contains("is no longer the archive the plan chose"), "{swapped}");
    assert_eq!(r.text("precious").trim(), "PRECIOUS", "{swapped}");

    assert_eq!(r.code("slash"), 0, "{}", r.text("slash.out"));
}

/// Killed as it renames the root aside (on entering `renameat2`): `status`
/// names the archive the run was making and says it is not there; the next
/// run erases, and no note of an unsealed archive is left behind.
#[test]
fn a_kill_at_the_rename_is_told_as_it_is() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    require_tool!("strace", "strace");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
strace -f -qq -o /dev/null -e inject=renameat2:signal=SIGKILL:when=1 $D rollback --mountpoint m --yes > "$OUT/killed.out" 2>&1
echo $? > "$OUT/killed.code"
ls -A m > "$OUT/after-kill"
$D status --mountpoint m > "$OUT/status.txt"
$D rollback --mountpoint m --yes > "$OUT/next.out" 2>&1; echo $? > "$OUT/next.code"
python3 -c 'import os
try: print(os.getxattr("m", "user.darlings.unsealed").decode())
except OSError: print("")' > "$OUT/unsealed"
"#);
    assert_ne!(r.code("killed"), 0, "{}", r.text("killed.out"));
    assert!(r.lines("after-kill").contains(&"root".to_owned()), "killed before the rename took effect");
    let status = r.text("status.txt");
    assert!(status.contains("interrupted"), "{status}");
    assert!(!status.contains("erased state kept"), "{status}");
    assert_eq!(r.code("next"), 0, "{}", r.text("next.out"));
    assert_eq!(r.text("unsealed").trim(), "", "no stale note is left");
}
