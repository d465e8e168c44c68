//! What the rollback says must be exact (real btrfs on a loop device):
//! recovery commands in failure messages, in the plan's `if_fails` and in
//! what `status` recorded are quoted the one way the plan's commands are,
//! so that pasting them runs exactly what was meant; names that do not
//! exist are said not to exist (and what does exist is listed); names
//! reach a terminal escaped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod rollback_common;

use rollback_common::run;

#[test]
fn a_recovery_command_pasted_into_bash_runs_what_it_says() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
# The top-level volume, also mounted where a shell would read a second command.
TOP="$WORK/my top; rm -rf ~"
mkdir "$TOP" && mount --bind m "$TOP"
mkdir -p "$WORK/home" && touch "$WORK/home/sentinel"
$D rollback --mountpoint "$TOP" --dry-run --format json > "$OUT/plan.json"
REAL=$(command -v btrfs)
mkdir fake
cat > fake/btrfs <<EOF
#!/bin/sh
# Fails making the new root, after the old one was moved aside.
if [ "\$1 \$2" = "subvolume snapshot" ]; then echo 'no space left' >&2; exit 1; fi
exec $REAL "\$@"
EOF
chmod +x fake/btrfs
PATH="$PWD/fake:$PATH" $D rollback --mountpoint "$TOP" --yes > "$OUT/failed.out" 2> "$OUT/failed.err"
echo $? > "$OUT/failed.code"
ls m > "$OUT/after-failure"
$D status --mountpoint m --format json > "$OUT/status.json"
# Paste the recovery command the message gives.
sed -n 's/.*Finish with `\([^`]*\)`.*/\1/p' "$OUT/failed.out" > "$OUT/finish.cmd"
HOME="$WORK/home" bash -c "$(cat "$OUT/finish.cmd")" > "$OUT/pasted.out" 2>&1; echo $? > "$OUT/pasted.code"
ls m > "$OUT/after-paste"
ls "$WORK/home" > "$OUT/home"
tree m/root > "$OUT/root.tree"; tree m/root-blank > "$OUT/blank.tree"
"#);
    let out = r.text("failed.out");
    assert_eq!(r.code("failed"), 2, "{out}");
    assert!(out.contains("The rollback failed at step 3 of 4"), "{out}");
    assert!(r.text("failed.err").contains("no space left"), "{}", r.text("failed.err"));
    assert!(!r.lines("after-failure").contains(&"root".to_owned()), "the failure came after the move");

    let finish = r.text("finish.cmd");
    let finish = finish.trim();
    assert!(finish.starts_with("btrfs subvolume snapshot '"), "quoted: {finish}");
    assert!(finish.contains("/my top; rm -rf ~/root-blank' '"), "{finish}");
    // Pasted, it makes the root, and nothing else happens.
    assert_eq!(r.code("pasted"), 0, "{finish}: {}", r.text("pasted.out"));
    assert!(r.lines("after-paste").contains(&"root".to_owned()));
    assert_eq!(r.text("root.tree"), r.text("blank.tree"));
    assert_eq!(r.text("home").trim(), "sentinel", "no `rm -rf ~` ran");

    // The same quoting in the plan's if_fails and in what status recorded.
    let plan = r.json("plan.json");
    let if_fails = plan["commands"][2]["if_fails"].as_str().unwrap();
    assert!(if_fails.contains(&format!("Finish with `{finish}`")), "{if_fails}");
    assert!(if_fails.contains("or undo with `mv -T -- '"), "{if_fails}");
    let status = r.json("status.json");
    let last = &status["last_rollback"];
    assert_eq!(last["outcome"], "failed", "{status}");
    let archive = last["archive"].as_str().unwrap();
    assert!(archive.ends_with("(the old root, moved aside)"), "{status}");
    assert_eq!(last["archive_kept"], true, "the archive is there, holding the old root: {status}");
    assert_eq!(last["steps_done"], 2, "{status}");
    // The seal as the filesystem says: never made read-only.
    assert_eq!(status["archives"][0]["read_only"], false, "{status}");
    let reasons: Vec<&str> =
        last["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert!(reasons[0].starts_with("failed at step 3 of 4"), "{reasons:?}");
    assert!(reasons[1].contains(&format!("Finish with `{finish}`")), "{reasons:?}");
}

/// With `--device`, darlings mounts the top-level volume itself and the
/// mount is gone when anyone reads a recovery command: the command mounts
/// it first. A run after an interrupted one also makes that one's archive
/// read-only.
#[test]
fn recovery_commands_reach_a_top_level_volume_darlings_mounted_itself() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
REAL=$(command -v btrfs)
mkdir fake
cat > fake/btrfs <<EOF
#!/bin/sh
if [ "\$1 \$2" = "subvolume snapshot" ]; then echo 'no space left' >&2; exit 1; fi
exec $REAL "\$@"
EOF
chmod +x fake/btrfs
# The device given relative to where darlings runs: the commands name it whole.
(cd /dev && PATH="$WORK/fake:$PATH" $D rollback --device "${LOOP#/dev/}" --yes) > "$OUT/failed.out" 2>&1
echo $? > "$OUT/failed.code"
findmnt -n /run/darlings/btrfs-top > /dev/null; echo $? > "$OUT/mounted-after-failure"
sed -n 's/.*Finish with `\([^`]*\)`.*/\1/p' "$OUT/failed.out" > "$OUT/finish.cmd"
sed -n 's/.*or undo with `\([^`]*\)`.*/\1/p' "$OUT/failed.out" > "$OUT/undo.cmd"
bash -c "$(cat "$OUT/finish.cmd")" > "$OUT/pasted.out" 2>&1; echo $? > "$OUT/pasted.code"
ls m > "$OUT/after-paste"
findmnt -n /run/darlings/btrfs-top > /dev/null; echo $? > "$OUT/mounted-after-paste"
# Interrupted again; this time darlings itself finishes the job.
echo more > m/root/etc/more
PATH="$PWD/fake:$PATH" $D rollback --device "$LOOP" --yes > /dev/null 2>&1
A=$(ls m/old_roots | sort -V | tail -1)
btrfs property get -ts "m/old_roots/$A" ro > "$OUT/ro-interrupted"
check again $D rollback --device "$LOOP" --yes
btrfs property get -ts "m/old_roots/$A" ro > "$OUT/ro-after"
ls m > "$OUT/after-again"
"#);
    let out = r.text("failed.out");
    assert_eq!(r.code("failed"), 2, "{out}");
    assert_eq!(r.text("mounted-after-failure").trim(), "1", "darlings' own mount is undone: {out}");
    let mount = "mkdir -p /run/darlings/btrfs-top && mount -o subvolid=5 ";
    let finish = r.text("finish.cmd");
    assert!(finish.starts_with(mount), "{finish}");
    assert!(finish.starts_with(&format!("{mount}/dev/loop")), "the device by its absolute path: {finish}");
    assert!(finish.trim().ends_with("&& umount /run/darlings/btrfs-top"), "{finish}");
    assert!(r.text("undo.cmd").starts_with(mount), "{}", r.text("undo.cmd"));
    assert_eq!(r.code("pasted"), 0, "{finish}: {}", r.text("pasted.out"));
    assert!(r.lines("after-paste").contains(&"root".to_owned()), "pasted, it made the root");
    assert_eq!(r.text("mounted-after-paste").trim(), "1", "and unmounted it again");

    assert_eq!(r.text("ro-interrupted").trim(), "ro=false", "the interrupted run never got that far");
    let again = r.text("again.out");
    assert_eq!(r.code("again"), 0, "{again}");
    assert!(again.contains("read-only: the rollback that made it was interrupted first"), "{again}");
    assert_eq!(r.text("ro-after").trim(), "ro=true", "{again}");
    assert!(r.lines("after-again").contains(&"root".to_owned()));
}

#[test]
fn names_that_do_not_exist_are_said_not_to() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
check mark-nothing $D mark --mountpoint m --subvolume doesnotexist
check unmark-nothing $D mark --mountpoint m --subvolume doesnotexist --off
$D mark --mountpoint m > /dev/null
check nope $D rollback --mountpoint m --subvolume nope --yes
check no-blank $D rollback --mountpoint m --blank nope --yes
$D status --mountpoint m --format json > "$OUT/status.json"
"#);
    let out = r.text("mark-nothing.out");
    assert_eq!(r.code("mark-nothing"), 2, "{out}");
    assert!(
        out.contains("there is no subvolume doesnotexist in")
            && out.contains("(there are: root, root-blank)"),
        "{out}"
    );
    assert_eq!(r.text("mark-nothing.state").trim(), "same");
    assert_eq!(r.code("unmark-nothing"), 2);
    assert!(
        r.text("unmark-nothing.out").contains("is not marked as ephemeral"),
        "{}",
        r.text("unmark-nothing.out")
    );

    r.refused("nope", 2, "there is no subvolume nope in ");
    let nope = r.text("nope.out");
    assert!(nope.contains("; there are: root, root-blank"), "{nope}");
    assert!(!nope.contains("darlings mark"), "it does not ask to mark what is not there: {nope}");
    r.refused("no-blank", 2, "there is no blank subvolume nope; there are: root, root-blank");
    assert_eq!(r.json("status.json")["marked"], true);
}

#[test]
fn archive_names_reach_a_terminal_escaped() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    require_tool!("script", "bsdutils");
    let r = run(r#"
$D mark --mountpoint m > /dev/null
mkdir m/old_roots
btrfs -q subvolume create "m/old_roots/$(printf 'evil\033]0;owned\007\033[31mname')"
script -q -e -c "$D status --mountpoint m" /dev/null > "$OUT/status.tty" 2>&1
script -q -e -c "$D archives --mountpoint m" /dev/null > "$OUT/archives.tty" 2>&1
$D status --mountpoint m --format json > "$OUT/status.json"
"#);
    for name in ["status.tty", "archives.tty"] {
        let text = r.text(name);
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{name}: {text:?}");
        assert!(text.contains("evil\\x1B]0;owned\\x07\\x1B[31mname"), "{name}: {text:?}");
    }
    // JSON carries the name exactly.
    assert_eq!(r.json("status.json")["archives"][0]["name"], "evil\u{1b}]0;owned\u{7}\u{1b}[31mname");
}
