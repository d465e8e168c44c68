//! Checks what tests/vm/zfs-rollback.sh brought back from the ZFS guest:
//! `darlings rollback` on real ZFS 2.1.11 (tests/vm/zfs-suite.sh sets
//! DARLINGS_ZFS_RESULTS). Each refusal must leave the pool as it was (the
//! scenario compares datasets, snapshots, guids and bytes written before
//! and after); the expectations come from what the scenario did.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::Value;

use common::GuestResults as Results;

fn results() -> Option<Results> {
    common::guest_results("rollback")
}

impl Results {
    fn same(&self, name: &str) -> bool {
        self.text(&format!("{name}.state")).trim() == "same"
    }

    fn refused(&self, name: &str, code: i32, says: &[&str]) {
        let out = self.out(name);
        assert_eq!(self.code(name), code, "{name}: {out}");
        assert!(self.same(name), "{name} changed the pool: {out}");
        assert!(out.contains("Refused, nothing was changed"), "{name}: {out}");
        for s in says {
            assert!(out.contains(s), "{name} does not say {s:?}: {out}");
        }
    }

    fn lines(&self, name: &str) -> Vec<String> {
        self.text(name).lines().map(str::to_owned).collect()
    }
}

#[test]
fn every_guard_refuses_and_leaves_the_pool_alone() {
    let Some(r) = results() else { return };
    r.refused(
        "unmarked",
        2,
        &["tank/local/root is not marked as ephemeral", "darlings mark --dataset tank/local/root"],
    );
    r.refused("inherited", 2, &["inherited from tank/local", "does not count"]);
    r.refused("no-snapshot", 2, &["there is no snapshot tank/local/root@nope; there are: blank"]);
    r.refused("no-archive", 2, &["no way back", "--archive-dataset"]);
    r.refused(
        "newer",
        2,
        &[
            "1 snapshots newer than the blank one would be destroyed: tank/local/root@later",
            "pass --destroy-newer",
        ],
    );
    r.refused("clones", 2, &["clone tank/clone", "pass --destroy-clones"]);
    r.refused("no-room", 2, &["the archive has no room: tank/small has"]);
    r.refused("broken", 3, &["declared claims are broken", "/var/lib/app"]);
    r.refused("critical", 1, &["critical state is unclaimed: /etc/ssh/ssh_host_ed25519_key", "pass --force"]);
    r.refused("no-terminal", 2, &["pass --yes"]);
    r.refused("not-oldest", 2, &["the blank snapshot is not the oldest (1 older: first)"]);
    r.refused("initrd-no-record", 0, &["no audit was recorded at shutdown"]);
    // The running root, from a chroot whose / is the dataset.
    let live = r.text("live.out");
    assert_eq!(r.text("live.code").trim(), "2", "{live}");
    assert!(
        live.contains("tank/local/root is the running root (/)") && live.contains("pass --live"),
        "{live}"
    );
    // The audit names the child dataset its zfs diff cannot see.
    let audit: Value = serde_json::from_str(&r.text("audit.json")).unwrap();
    let notes = audit["notes"].to_string();
    assert!(notes.contains("datasets below tank/local/root are not in its zfs diff and a rollback keeps them: tank/local/root/child"), "{notes}");
    // The child dataset is named in every plan that got that far.
    assert!(r
        .out("broken")
        .contains("tank/local/root/child (mountpoint legacy): a dataset of its own, not rolled back"));
}

#[test]
fn consent_turns_rollback_r_into_rollback_capital_r_and_dry_run_is_exact() {
    let Some(r) = results() else { return };
    assert_eq!(r.code("clones-consent"), 0, "{}", r.out("clones-consent"));
    assert!(r.same("clones-consent"));
    let plan: Value = serde_json::from_str(&r.out("clones-consent")).unwrap();
    let shells: Vec<&str> =
        plan["commands"].as_array().unwrap().iter().map(|c| c["shell"].as_str().unwrap()).collect();
    assert_eq!(shells.last(), Some(&"zfs rollback -R tank/local/root@blank"), "{shells:?}");

    assert_eq!(r.code("dry-run"), 0, "{}", r.out("dry-run"));
    assert!(r.same("dry-run"));
    let plan: Value = serde_json::from_str(&r.text("dry-run.json")).unwrap();
    let commands = plan["commands"].as_array().unwrap();
    let argv = |i: usize, j: usize| -> Vec<String> {
        serde_json::from_value(commands[i]["argv"][j].clone()).unwrap()
    };
    let snap = argv(0, 0);
    assert_eq!(snap[..2], ["zfs", "snapshot"]);
    let stamp = snap[2].strip_prefix("tank/local/root@darlings-").expect("the precautionary snapshot");
    assert!(darlings::rollback::parse_stamp(stamp).is_some(), "{snap:?}");
    // The archive dataset does not exist yet: it is made first.
    assert_eq!(
        argv(1, 0),
        ["zfs", "create", "-p", "-o", "canmount=off", "-o", "mountpoint=none", "tank/safe/darlings"]
    );
    assert_eq!(argv(2, 0), ["zfs", "send", &snap[2]]);
    assert_eq!(
        argv(2, 1),
        [
            "zfs",
            "receive",
            "-u",
            "-o",
            "canmount=noauto",
            "-o",
            "mountpoint=none",
            &format!("tank/safe/darlings/{stamp}")
        ]
    );
    assert_eq!(argv(3, 0), ["zfs", "rollback", "-r", "tank/local/root@blank"]);
    assert_eq!(commands.len(), 4);
}

#[test]
fn rollback_erases_archives_by_send_receive_and_restores() {
    let Some(r) = results() else { return };
    let out = r.out("rollback");
    assert_eq!(r.code("rollback"), 0, "{out}");
    assert!(!r.same("rollback"));
    assert!(out.contains("ok   tank/local/root equals tank/local/root@blank"), "{out}");
    assert!(out.contains("ok   the erased state is kept as tank/safe/darlings/"), "{out}");
    // The root is blank again; the archive holds exactly the erased tree.
    assert_eq!(r.text("after.tree"), r.text("blank.tree"));
    assert_eq!(r.text("archive.tree"), r.text("lived.tree"));
    let datasets = r.lines("datasets.txt");
    assert!(
        datasets.contains(&"tank/local/root/child".to_owned()),
        "the child dataset is kept: {datasets:?}"
    );
    let snapshots = r.lines("snapshots.txt");
    let of_root: Vec<&String> = snapshots.iter().filter(|s| s.starts_with("tank/local/root@")).collect();
    assert_eq!(of_root, ["tank/local/root@blank"], "{snapshots:?}");

    let archives: Value = serde_json::from_str(&r.text("archives.json")).unwrap();
    assert_eq!(archives.as_array().unwrap().len(), 1, "{archives}");
    assert_eq!(archives[0]["darlings"], true);
    assert!(archives[0]["size"].as_u64().unwrap() > 300_000, "{archives}");
    let status = r.text("status.txt");
    assert!(status.contains("marked:         yes (darlings:ephemeral=on)"), "{status}");
    assert!(status.contains(" erased; erased state kept in tank/safe/darlings/"), "{status}");

    assert_eq!(r.code("restore"), 0, "{}", r.out("restore"));
    assert_eq!(r.text("restored"), "state\n");
    assert_eq!(r.code("restore-again"), 2);
    assert!(r.out("restore-again").contains("exists; nothing was copied"));
    assert_eq!(r.text("mounts-left").trim(), "0", "darlings' own mounts are undone");
}

#[test]
fn retention_prunes_the_oldest_darlings_archives_only() {
    let Some(r) = results() else { return };
    assert_eq!(r.code("retain"), 0, "{}", r.out("retain"));
    let after = r.lines("after-retention.txt");
    assert_eq!(after.len(), 4, "the parent, two newest, the hand-made one: {after:?}");
    assert!(after.contains(&"tank/safe/darlings/kept-by-hand".to_owned()), "{after:?}");
    assert!(!after.iter().any(|a| a.contains("/2020") || a.contains("/2021")), "{after:?}");
    assert!(r.out("retain").contains("zfs destroy -r tank/safe/darlings/20200101T000000Z"));
}

#[test]
fn an_encrypted_root_is_archived_raw() {
    let Some(r) = results() else { return };
    let out = r.out("encrypted");
    assert_eq!(r.code("encrypted"), 0, "{out}");
    assert!(out.contains("zfs send -w tank/local/enc@darlings-"), "{out}");
    let props = r.text("enc-archive.txt");
    let archive: Vec<&str> = props.lines().filter(|l| l.starts_with("tank/safe/enc-archive/")).collect();
    assert!(archive.iter().any(|l| l.ends_with("aes-256-gcm")), "{props}");
    assert!(
        archive.iter().any(|l| l.ends_with("unavailable")),
        "received raw: the key is not loaded: {props}"
    );
}

#[test]
fn the_initrd_mode_never_blocks_the_boot_and_follows_the_record() {
    let Some(r) = results() else { return };
    // Without a recorded audit: refused, exit 0, nothing changed, and status says why.
    let status = r.text("status-refused.txt");
    assert!(status.contains(" refused (initrd)"), "{status}");
    assert!(status.contains("no audit was recorded at shutdown"), "{status}");
    let record = r.out("record");
    assert!(record.contains("\"broken\":0") && record.contains("\"critical\":0"), "{record}");
    // With it: erased, claims assumed, from an unmounted dataset.
    let out = r.out("initrd");
    assert_eq!(r.code("initrd"), 0, "{out}");
    assert!(!r.same("initrd"), "{out}");
    assert!(out.contains("claims are assumed (in the initrd"), "{out}");
    assert!(out.contains("audit recorded at shutdown"), "{out}");
    assert!(
        out.contains("erases:     4 unclaimed entries"),
        "/var, /var/lib, /var/lib/app and its db: {out}"
    );
    assert_eq!(r.text("after-initrd.tree"), r.text("blank.tree"));
    assert_eq!(r.text("mounts-left-initrd").trim(), "0");
}

#[test]
fn retention_keeps_an_archive_mounted_by_hand() {
    let Some(r) = results() else { return };
    assert_eq!(
        r.text("marchive.code").trim(),
        "0",
        "mounting the archive by hand: {}",
        r.text("marchive.out")
    );
    let mounted = r.text("mounted-archive").trim().to_owned();
    let name = mounted.rsplit('/').next().unwrap();
    let out = r.out("retain-mounted");
    assert_eq!(r.code("retain-mounted"), 0, "{out}");
    assert!(
        out.contains(&format!("  keeps:      {name} (mounted at /mnt/marchive: never pruned while mounted)")),
        "{out}"
    );
    assert!(!out.contains(&format!("destroy -r {mounted}")), "{out}");
    let after = r.lines("after-retain-mounted.txt");
    assert!(after.contains(&mounted), "not destroyed: {after:?}");
    assert_eq!(after.len(), 4, "the parent, the mounted one, the new one, the hand-made one: {after:?}");
    assert!(!r.text("marchive.ls").trim().is_empty(), "the mount still shows the archive");
    let listed: Value = serde_json::from_str(&r.text("archives-mounted.json")).unwrap();
    let entry = listed.as_array().unwrap().iter().find(|a| a["name"] == name).unwrap();
    assert_eq!(entry["mounted"][0], "/mnt/marchive", "{listed}");
    // status as data, after that rollback.
    let status: Value = serde_json::from_str(&r.text("status.json")).unwrap();
    assert_eq!(status["marked"], true, "{status}");
    assert_eq!(status["last_rollback"]["outcome"], "erased", "{status}");
    assert_eq!(status["archives"].as_array().unwrap().len(), 3, "{status}");
}

fn sample(prom: &str, name: &str, label: &str) -> Option<f64> {
    prom.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

#[test]
fn the_initrd_erases_with_the_claims_of_the_record_and_refuses_critical_state() {
    let Some(r) = results() else { return };
    let record: Value = serde_json::from_str(r.out("record-claims").trim()).unwrap();
    assert_eq!(record["decision"]["erase"], true, "{record}");
    assert_eq!(record["claims_verified"], true, "{record}");
    let out = r.out("initrd-claims");
    assert_eq!(r.code("initrd-claims"), 0, "{out}");
    assert!(!r.same("initrd-claims"), "erased: {out}");
    assert!(out.contains("the claims are the 2 declared at shutdown (kept in the record)"), "{out}");
    assert_eq!(r.text("after-initrd-claims.tree"), r.text("blank.tree"));
    let prom = r.text("initrd-claims.prom");
    assert_eq!(sample(&prom, "darlings_rollback_last_outcome", "outcome=\"erased\""), Some(1.0), "{prom}");

    let critical: Value = serde_json::from_str(r.out("record-critical").trim()).unwrap();
    assert_eq!(critical["decision"]["erase"], false, "{critical}");
    r.refused("initrd-critical", 0, &["critical state is unclaimed: /etc/ssh/ssh_host_ed25519_key"]);
    let prom = r.text("initrd-critical.prom");
    assert_eq!(sample(&prom, "darlings_rollback_last_outcome", "outcome=\"refused\""), Some(1.0), "{prom}");
    assert_eq!(sample(&prom, "darlings_rollback_last_initrd", ""), Some(1.0), "{prom}");
    let status: Value = serde_json::from_str(&r.text("initrd-critical.json")).unwrap();
    assert_eq!(status["last_rollback"]["outcome"], "refused", "{status}");
    assert!(status["last_rollback"]["reasons"].to_string().contains("ssh_host_ed25519_key"), "{status}");
    assert_eq!(r.text("mounts-left-claims").trim(), "0", "darlings' own mounts are undone");
}

/// On ZFS too: one darlings at a time (a held lock refuses, naming its
/// pid), the record is a file in the archive's `darlings-record` dataset
/// pointed to by a property, used at most once, and a record of another
/// format is refused.
#[test]
fn the_lock_and_the_record_file_on_zfs() {
    let Some(r) = results() else { return };
    let pointer = r.text("record-pointer.txt");
    assert!(pointer.contains("\"sha256\":") && pointer.trim_end().ends_with("local"), "{pointer}");
    assert_eq!(r.lines("record-dataset.txt"), ["legacy", "noauto"], "never mounted by itself");
    let listed: Value = serde_json::from_str(&r.text("archives-with-record.json")).unwrap();
    assert!(
        listed.as_array().unwrap().iter().all(|a| a["name"] != "darlings-record"),
        "the record's dataset is no archive: {listed}"
    );
    for name in ["locked", "locked-mark"] {
        let out = r.out(name);
        assert_eq!(r.code(name), 2, "{name}: {out}");
        assert!(r.same(name), "{name}: {out}");
        assert!(out.contains("tank/local/root is locked by another darlings, pid "), "{name}: {out}");
    }
    // A snapshot taken between the plan and the act stops the run before
    // anything is made, and survives.
    let sneaked = r.text("sneaked.out");
    assert_eq!(r.text("sneaked.code").trim(), "2", "{sneaked}");
    assert!(
        sneaked.contains("the snapshots of tank/local/root changed since the plan was made"),
        "{sneaked}"
    );
    assert!(sneaked.contains("failed at step 1 of"), "{sneaked}");
    let snapshots = r.lines("sneaked.snapshots");
    assert!(snapshots.contains(&"tank/local/root@sneaked".to_owned()), "{snapshots:?}");
    assert!(
        !snapshots.iter().any(|s| s.contains("@darlings-")),
        "no precautionary snapshot was made: {snapshots:?}"
    );
    assert!(r.text("record-kept.txt").contains("the next rollback may erase"), "a dry run leaves the record");
    let once = r.out("initrd-once");
    assert_eq!(r.code("initrd-once"), 0, "{once}");
    assert!(!r.same("initrd-once"), "erased: {once}");
    assert!(r.text("record-used.txt").contains("recorded audit: none"), "{}", r.text("record-used.txt"));
    assert!(r.text("record-pointer-used.txt").starts_with("-"), "{}", r.text("record-pointer-used.txt"));
    r.refused("initrd-twice", 0, &["no audit was recorded at shutdown"]);
    let foreign = r.text("record-foreign.txt");
    assert!(foreign.contains("format version 99 is not one this darlings reads"), "{foreign}");
    r.refused("initrd-foreign", 0, &["format version 99"]);
    assert_eq!(r.text("mounts-left-record").trim(), "0", "darlings' own mounts are undone");
}
