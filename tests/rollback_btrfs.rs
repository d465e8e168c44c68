//! `darlings rollback` on a real btrfs (a loop device in a private mount
//! namespace): the full cycle, every refusal (the filesystem compared
//! before and after), an interrupted run, and the confirmation prompt on a
//! real terminal (`script` gives darlings a pty).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod rollback_common;

use rollback_common::run;
use serde_json::Value;

#[test]
fn full_cycle_erases_keeps_the_old_root_restores_and_prunes() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > "$OUT/mark.out"
btrfs -q subvolume create "m/root/home/u/$(printf 'esc\033[31m')"
$D audit --root m/root --baseline m/root-blank --format json --flat > "$OUT/audit.json"
tree m/root > "$OUT/old-root.tree"
check rollback $D rollback --mountpoint m --yes
tree m/root > "$OUT/new-root.tree"
tree m/root-blank > "$OUT/blank.tree"
cat m/root/etc/blank.conf > "$OUT/blank.conf"
ls m/old_roots > "$OUT/archives.txt"
A=$(ls m/old_roots | head -1)
tree "m/old_roots/$A" > "$OUT/archive.tree"
$D archives --mountpoint m --format json > "$OUT/archives.json"
$D status --mountpoint m > "$OUT/status.txt"
# The way back, file by file.
check restore $D restore --mountpoint m /var/lib/app --root m/root
cat m/root/var/lib/app/db > "$OUT/restored"
echo mine > m/root/var/lib/app/db
check restore-again $D restore --mountpoint m /var/lib/app/db --root m/root
cat m/root/var/lib/app/db > "$OUT/not-overwritten"
check restore-force $D restore --mountpoint m /var/lib/app/db --root m/root --force
cat m/root/var/lib/app/db > "$OUT/overwritten"
# Retention: two older darlings archives (one holding a nested subvolume), one of someone else's.
btrfs -q subvolume create m/old_roots/20200101T000000Z
btrfs -q subvolume create m/old_roots/20200101T000000Z/nested
btrfs -q subvolume create "m/old_roots/20200101T000000Z/nested/$(printf 'odd\nname')"
btrfs -q subvolume create m/old_roots/20210101T000000Z
btrfs -q subvolume create m/old_roots/2019-01-01_00:00:00
btrfs -q subvolume create m/old_roots/20180101T000000Z-mine
sleep 1
check retain $D rollback --device "$LOOP" --yes --retain 2
ls m/old_roots > "$OUT/after-retention.txt"
grep -c " /run/darlings" /proc/self/mountinfo > "$OUT/helper-mounts" || true
"#);
    assert!(r.text("mark.out").contains("marked"), "{}", r.text("mark.out"));

    // The audit before: what the rollback erases.
    let audit: Value = serde_json::from_str(&r.text("audit.json")).unwrap();
    let losses: Vec<String> = common::findings(&audit)
        .into_iter()
        .filter(|(_, f)| f["verdict"] == "unclaimed")
        .map(|(p, _)| String::from_utf8_lossy(&p).into_owned())
        .collect();
    for p in ["/var/lib/app/db", "/etc/blank.conf", "/home/u/odd\nname"] {
        assert!(losses.iter().any(|l| l == p), "{p} not in {losses:?}");
    }

    // The plan was shown, ran, and was verified.
    let out = r.text("rollback.out");
    assert_eq!(r.code("rollback"), 0, "{out}");
    for says in [
        "Rollback plan (btrfs)",
        "/var/lib/machines (nested subvolume)",
        "[3/4] btrfs subvolume snapshot",
        "[4/4] btrfs property set -ts",
    ] {
        assert!(out.contains(says), "{says}:\n{out}");
    }
    assert!(out.contains("ok   ") && !out.contains("FAIL"), "{out}");
    // A name from the filesystem reaches the terminal escaped, in the plan and in the commands.
    assert!(out.contains("/home/u/esc\\x1B[31m (nested subvolume)"), "{out}");
    assert!(!out.contains('\u{1b}'), "{out}");

    // The root is the blank state again; the old root is kept whole, nested subvolume included.
    assert_eq!(r.text("new-root.tree"), r.text("blank.tree"));
    assert_eq!(r.text("blank.conf"), "orig\n");
    let archives = r.lines("archives.txt");
    assert_eq!(archives.len(), 1, "{archives:?}");
    assert!(darlings::rollback::parse_stamp(&archives[0]).is_some(), "{archives:?}");
    assert_eq!(r.text("archive.tree"), r.text("old-root.tree"));
    let listed: Value = serde_json::from_str(&r.text("archives.json")).unwrap();
    assert_eq!(listed[0]["name"], archives[0].as_str());
    assert_eq!(listed[0]["darlings"], true);
    assert!(listed[0]["size"].as_u64().unwrap() > 0);
    let status = r.text("status.txt");
    assert!(status.contains("marked:         yes") && status.contains(&archives[0]), "{status}");
    assert!(status.contains("erased; erased state kept in"), "{status}");

    // Restore: copied back; never over what exists without --force.
    assert_eq!(r.code("restore"), 0, "{}", r.text("restore.out"));
    assert_eq!(r.text("restored"), "state\n");
    assert_eq!(r.code("restore-again"), 2);
    assert!(
        r.text("restore-again.out").contains("exists; nothing was copied"),
        "{}",
        r.text("restore-again.out")
    );
    assert_eq!(r.text("not-overwritten"), "mine\n");
    assert_eq!(r.code("restore-force"), 0, "{}", r.text("restore-force.out"));
    assert_eq!(r.text("overwritten"), "state\n");

    // Retention kept the two newest darlings archives and the foreign one.
    assert_eq!(r.code("retain"), 0, "{}", r.text("retain.out"));
    let retain = r.text("retain.out");
    // Nested subvolumes go first, by id (a name with a newline cannot be given by path).
    assert!(
        retain.contains("retention: delete old_roots/20200101T000000Z/nested, a subvolume nested"),
        "{retain}"
    );
    assert_eq!(retain.matches("] btrfs subvolume delete --subvolid").count(), 2, "both ran: {retain}");
    let mut after = r.lines("after-retention.txt");
    after.sort();
    assert_eq!(after.len(), 4, "{after:?}");
    assert!(after.contains(&archives[0]), "{after:?}");
    assert!(after.contains(&"2019-01-01_00:00:00".to_owned()), "{after:?}");
    assert!(after.contains(&"20180101T000000Z-mine".to_owned()), "not a darlings name: {after:?}");
    assert!(!after.iter().any(|a| a.starts_with("2020") || a.starts_with("2021")), "{after:?}");
    assert_eq!(r.text("helper-mounts").trim(), "0", "the helper mount of --device is undone");
}

#[test]
fn every_refusal_changes_nothing() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
check unmarked $D rollback --mountpoint m --yes
$D mark --mountpoint m > /dev/null
check no-blank $D rollback --mountpoint m --yes --blank nope
btrfs property set -ts m/root-blank ro false
check writable-blank $D rollback --mountpoint m --yes
btrfs property set -ts m/root-blank ro true
check no-terminal $D rollback --mountpoint m
check dry-run $D rollback --mountpoint m --dry-run
$D rollback --mountpoint m --dry-run --format json > "$OUT/dry-run.json"
mkdir -p m/root/etc/ssh && echo key > m/root/etc/ssh/ssh_host_ed25519_key
check critical $D rollback --mountpoint m --yes
$D rollback --mountpoint m --yes --format json > "$OUT/critical.json" 2>/dev/null
check critical-dry-run $D rollback --mountpoint m --dry-run
rm -r m/root/etc/ssh
# Mounted as the system runs it, the claims are checked: a claim on plain content is broken.
mkdir r && mount -o subvol=root "$LOOP" r
check broken $D rollback --mountpoint m --yes --keep /var/lib/app
# The running root: darlings in a chroot whose / is the root subvolume.
for d in usr proc dev top d; do mkdir -p "r/$d"; done
for l in bin sbin lib lib64; do [ -e "r/$l" ] || ln -s "usr/$l" "r/$l"; done
mount --rbind /usr r/usr; mount -t proc proc r/proc; mount --rbind /dev r/dev
# As on a running system, /run is a tmpfs (darlings keeps its lock files there).
mkdir -p r/run && mount -t tmpfs tmpfs r/run
mount --bind m r/top; mount --bind "$(dirname "$D")" r/d
check live chroot r /d/darlings rollback --mountpoint /top --yes
check live-dry-run chroot r /d/darlings rollback --mountpoint /top --dry-run --live
$D mark --mountpoint m --off > "$OUT/unmark.out"
check unmarked-again $D rollback --mountpoint m --yes --force --live
"#);
    r.refused("unmarked", 2, "not marked as ephemeral");
    r.refused("no-blank", 2, "there is no blank subvolume");
    r.refused("writable-blank", 2, "the blank subvolume is writable");
    r.refused("no-terminal", 2, "pass --yes");
    r.refused("critical", 1, "critical state is unclaimed: /etc/ssh/ssh_host_ed25519_key");
    r.refused("critical-dry-run", 1, "pass --force");
    r.refused("broken", 3, "declared claims are broken");
    r.refused("live", 2, "is the running root");
    // Unmarked, no flag helps.
    assert!(r.text("unmark.out").contains("no longer marked"));
    r.refused("unmarked-again", 2, "not marked as ephemeral");

    // A dry run that would be allowed exits 0, shows the exact commands, and changes nothing.
    assert_eq!(r.code("dry-run"), 0, "{}", r.text("dry-run.out"));
    assert_eq!(r.text("dry-run.state").trim(), "same");
    assert!(r.text("dry-run.out").contains("Dry run: nothing was changed"));
    let plan: Value = serde_json::from_str(&r.text("dry-run.json")).unwrap();
    assert_eq!(plan["outcome"], Value::Null, "nothing ran: {plan}");
    let refused: Value = serde_json::from_str(&r.text("critical.json")).unwrap();
    assert_eq!(refused["outcome"], "refused", "as status records it: {refused}");
    let argv: Vec<Vec<String>> = plan["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| serde_json::from_value(c["argv"][0].clone()).unwrap())
        .collect();
    assert_eq!(argv.len(), 4, "{argv:?}");
    // The root is moved aside by one rename between held directories, never by mv.
    assert_eq!(argv[0][0], "mkdir");
    assert_eq!(argv[1][..2], ["renameat2", "RENAME_NOREPLACE"]);
    assert!(argv[1][2].ends_with("/m/root") && argv[1][3].contains("/m/old_roots/"), "{argv:?}");
    assert_eq!(argv[2][..3], ["btrfs", "subvolume", "snapshot"]);
    // The old root is made read-only, by its path.
    assert_eq!(argv[3][..4], ["btrfs", "property", "set", "-ts"]);
    assert_eq!(argv[3][4], argv[1][3]);
    assert_eq!(argv[3][5..], ["ro", "true"]);
    assert_eq!(plan["exit_code"], 0);
    assert!(plan["loss"]["unclaimed_entries"].as_u64().unwrap() >= 3, "{plan}");

    // --live lifts only that guard (the broken claim is not asked about here).
    assert_eq!(r.code("live-dry-run"), 0, "{}", r.text("live-dry-run.out"));
}

#[test]
fn an_interrupted_rollback_is_finished_by_the_next_run() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
tree m/root > "$OUT/old-root.tree"
REAL=$(command -v btrfs)
mkdir fake
cat > fake/btrfs <<EOF
#!/bin/sh
# Kills darlings between moving the old root aside and making the new one.
if [ "\$1 \$2" = "subvolume snapshot" ]; then kill -9 \$PPID; exit 1; fi
exec $REAL "\$@"
EOF
chmod +x fake/btrfs
PATH="$PWD/fake:$PATH" $D rollback --mountpoint m --yes > "$OUT/killed.out" 2>&1; echo $? > "$OUT/killed.code"
ls m > "$OUT/after-kill.txt"
check recover-plan $D rollback --mountpoint m --dry-run
check recover $D rollback --mountpoint m --initrd
tree m/root > "$OUT/new-root.tree"
tree m/root-blank > "$OUT/blank.tree"
ls m/old_roots > "$OUT/archives.txt"
tree "m/old_roots/$(ls m/old_roots)" > "$OUT/archive.tree"
"#);
    assert_eq!(r.code("killed"), 137, "{}", r.text("killed.out"));
    let after = r.lines("after-kill.txt");
    assert!(!after.contains(&"root".to_owned()), "the kill came after the move: {after:?}");
    let plan = r.text("recover-plan.out");
    assert_eq!(r.code("recover-plan"), 0, "{plan}");
    assert!(plan.contains("does not exist (an interrupted rollback?)"), "{plan}");
    assert_eq!(r.code("recover"), 0, "{}", r.text("recover.out"));
    assert_eq!(r.text("new-root.tree"), r.text("blank.tree"));
    assert_eq!(r.lines("archives.txt").len(), 1);
    assert_eq!(r.text("archive.tree"), r.text("old-root.tree"));
}

/// The prompt, like `just` tests it: the name typed on a terminal, no
/// input at all, a wrong name, and `--yes` without a terminal.
#[test]
fn the_prompt_confirms_only_the_typed_name() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
prompt() {
  name=$1; input=$2
  before=$(state)
  printf "$input" | script -q -e -c "$D rollback --mountpoint m" /dev/null > "$OUT/$name.out" 2>&1
  echo $? > "$OUT/$name.code"
  if [ "$(state)" = "$before" ]; then echo same; else echo changed; fi > "$OUT/$name.state"
}
prompt no-input ''
prompt wrong-name 'rpool/local/root\n'
prompt empty-line '\n'
# The right name, but the plan went to a reader that was gone: nobody saw it.
before=$(state)
printf 'root\n' | script -q -e -c "{ sleep 0.3; $D rollback --mountpoint m; echo \$? > $OUT/unseen.code; } | true" /dev/null > "$OUT/unseen.out" 2>&1
if [ "$(state)" = "$before" ]; then echo same; else echo changed; fi > "$OUT/unseen.state"
prompt typed 'root\n'
tree m/root > "$OUT/after-typed.tree"
tree m/root-blank > "$OUT/blank.tree"
echo more > m/root/etc/extra
check yes $D rollback --mountpoint m --yes
"#);
    for name in ["no-input", "wrong-name", "empty-line"] {
        let out = r.text(&format!("{name}.out"));
        assert_eq!(r.code(name), 2, "{name}: {out}");
        assert_eq!(r.text(&format!("{name}.state")).trim(), "same", "{name}: {out}");
        assert!(out.contains("Type the name of the target (root)"), "{name}: {out}");
        assert!(out.contains("the name was not typed"), "{name}: {out}");
    }
    let unseen = r.text("unseen.out");
    assert_eq!(r.code("unseen"), 2, "{unseen}");
    assert_eq!(r.text("unseen.state").trim(), "same", "{unseen}");
    assert!(!unseen.contains("Type the name"), "not even asked: {unseen}");
    assert!(unseen.contains("refused, nothing was changed: the plan could not be shown in full"), "{unseen}");
    let typed = r.text("typed.out");
    assert_eq!(r.code("typed"), 0, "{typed}");
    assert_eq!(r.text("typed.state").trim(), "changed");
    assert_eq!(r.text("after-typed.tree"), r.text("blank.tree"));
    assert_eq!(r.code("yes"), 0, "{}", r.text("yes.out"));
    assert_eq!(r.text("yes.state").trim(), "changed");
}

#[test]
fn restore_refuses_paths_through_symlinks_of_the_archive() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
ln -s /etc m/root/var/lib/escape
$D rollback --mountpoint m --yes > /dev/null
check through-link $D restore --mountpoint m /var/lib/escape/passwd --root m/root
ls m/root/var/lib > "$OUT/var-lib.txt"
"#);
    assert_eq!(r.code("through-link"), 2);
    assert!(
        r.text("through-link.out").contains("passes through a symlink in the archive"),
        "{}",
        r.text("through-link.out")
    );
    assert!(!r.text("var-lib.txt").contains("escape"));
}

#[test]
fn the_initrd_mode_never_blocks_the_boot_and_follows_the_record() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
check initrd-no-record $D rollback --initrd --mountpoint m
$D status --mountpoint m > "$OUT/status-refused.txt"
# At shutdown the system records its audit (kept beside the root).
mkdir r && mount -o subvol=root "$LOOP" r
mkdir -p r/etc/ssh && echo key > r/etc/ssh/ssh_host_ed25519_key
$D record --root r --mountpoint m --no-default-manifest > "$OUT/record-critical.out" 2>&1
umount r
$D rollback --initrd --mountpoint m --dry-run > /dev/null 2>&1
$D status --mountpoint m > "$OUT/status-recorded.txt"
icheck initrd-critical $D rollback --initrd --mountpoint m
$D status --mountpoint m > "$OUT/status-used.txt"
mount -o subvol=root "$LOOP" r && rm -r r/etc/ssh
$D record --root r --mountpoint m --no-default-manifest > "$OUT/record.out" 2>&1
umount r
icheck initrd $D rollback --initrd --mountpoint m
tree m/root > "$OUT/after.tree"
tree m/root-blank > "$OUT/blank.tree"
$D status --mountpoint m > "$OUT/status.txt"
"#);
    // No record: refused, exit 0 (the boot goes on), nothing changed, and status tells why.
    r.refused("initrd-no-record", 0, "no audit was recorded at shutdown");
    let status = r.text("status-refused.txt");
    assert!(
        status.contains("refused (initrd)") && status.contains("no audit was recorded at shutdown"),
        "{status}"
    );
    // A record with a critical loss: refused the same way, for the record's reason.
    assert!(r.text("record-critical.out").contains("\"critical\":1"), "{}", r.text("record-critical.out"));
    r.refused(
        "initrd-critical",
        0,
        "refuses: critical state is unclaimed: /etc/ssh/ssh_host_ed25519_key (pass --force to go ahead anyway)",
    );
    // A dry run leaves the record; the run that reads it uses it up.
    let recorded = r.text("status-recorded.txt");
    assert!(recorded.contains("the next rollback refuses: critical state"), "{recorded}");
    let used = r.text("status-used.txt");
    assert!(used.contains("recorded audit: none"), "a record is used once: {used}");
    // A clean record: erased, without --yes.
    let out = r.text("initrd.out");
    assert_eq!(r.code("initrd"), 0, "{out}");
    assert_eq!(r.text("initrd.state").trim(), "changed");
    assert!(out.contains("claims are assumed (in the initrd"), "{out}");
    assert_eq!(r.text("after.tree"), r.text("blank.tree"));
    let status = r.text("status.txt");
    assert!(
        status.contains("erased (initrd)") && status.contains("recorded audit: none"),
        "the record was used up: {status}"
    );
}
