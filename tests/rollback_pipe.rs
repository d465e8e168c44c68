//! A reader that goes away never stops a rollback half way, and no command
//! panics on a closed stdout (real btrfs on a loop device). For every N
//! from 1 to the length of a run's output, `rollback --yes | head -n N`
//! (and `--initrd --force | head -n N`) must end with the root fully
//! rolled back, the old root kept, `status` saying so, and exit 0: the
//! pipe closing is not something left undone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod rollback_common;

use rollback_common::{run, Run};

/// Rolls back through `head -n N` for N = 1..=LEN, where LEN is the length
/// of a full run's output; each time something new is written on the root
/// first, so each archive must hold exactly that run's state.
const THROUGH_HEAD: &str = r#"
$D mark --mountpoint m > /dev/null
# A first run makes an archive, so every run after it plans the same steps
# (retention prunes one each time).
$D rollback --mountpoint m --yes --retain 1 > /dev/null 2>&1
$D rollback --mountpoint m --yes --retain 1 $FLAGS > "$OUT/full.out" 2>/dev/null
echo $? > "$OUT/full.code"
$D rollback --mountpoint m --dry-run --retain 1 $FLAGS > "$OUT/plan.out" 2>/dev/null
LEN=$(wc -l < "$OUT/full.out")
echo "$LEN" > "$OUT/len"
tree m/root-blank > "$OUT/blank.tree"
for N in $(seq 1 "$LEN"); do
  echo "state $N" > "m/root/etc/state-$N"
  $D rollback --mountpoint m --yes --retain 1 $FLAGS 2> "$OUT/$N.err" | head -n "$N" > "$OUT/$N.out"
  echo "${PIPESTATUS[0]}" > "$OUT/$N.code"
  tree m/root > "$OUT/$N.tree"
  ls m/old_roots > "$OUT/$N.archives"
  A=$(ls m/old_roots | sort -V | tail -1)
  cat "m/old_roots/$A/etc/state-$N" > "$OUT/$N.kept" 2>&1
  $D status --mountpoint m --format json > "$OUT/$N.status.json" 2>&1
done
"#;

fn check_every_n(r: &Run, what: &str) {
    assert_eq!(r.code("full"), 0, "{}", r.text("full.out"));
    let len: usize = r.text("len").trim().parse().unwrap();
    let plan = r.text("plan.out");
    let plan_lines = plan.lines().count();
    // The run prints the plan, then its steps: more lines than the plan.
    assert!(len > plan_lines && plan_lines > 10, "{len} lines, the plan {plan_lines}:\n{plan}");
    let blank = r.text("blank.tree");
    let mut lost = 0;
    for n in 1..=len {
        let out = r.text(&format!("{n}.out"));
        let err = r.text(&format!("{n}.err"));
        assert_eq!(out.lines().count(), n.min(len), "{what} {n}: {out}");
        assert_eq!(r.code(&n.to_string()), 0, "{what} | head -n {n}: nothing was left undone:\n{out}\n{err}");
        assert!(!err.contains("panicked"), "{what} {n}: {err}");
        assert_eq!(r.text(&format!("{n}.tree")), blank, "{what} {n}: the root is the blank state");
        assert_eq!(
            r.text(&format!("{n}.kept")),
            format!("state {n}\n"),
            "{what} {n}: the archive holds the run's state"
        );
        // --retain 1: the new archive, and the previous one only while the
        // new one holds no data (it always holds the state written).
        assert_eq!(r.lines(&format!("{n}.archives")).len(), 1, "{what} {n}");
        let status = r.json(&format!("{n}.status.json"));
        let last = &status["last_rollback"];
        assert_eq!(last["outcome"], "erased", "{what} {n}: {status}");
        assert_eq!(last["warnings"].as_array().map(Vec::len), Some(0), "{status}");
        if let Some(why) = last["output_lost"].as_str() {
            lost += 1;
            assert!(why.contains("stdout was closed"), "{why}");
            assert!(err.contains("`darlings status` has the outcome"), "{what} {n}: {err}");
        } else {
            assert!(!err.contains("stdout was closed"), "{what} {n}: {err}");
        }
        // Before the last lines the reader is long gone: the loss is recorded.
        if n <= plan_lines {
            assert!(last["output_lost"].is_string(), "{what} {n}: the closed pipe is in status: {status}");
        }
    }
    assert!(lost >= plan_lines, "{lost} of {len} runs noticed the closed pipe");
    assert!(plan.contains("prunes:"), "retention is part of the plan: {plan}");
}

#[test]
fn a_closed_stdout_never_stops_a_rollback_half_way() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(&format!("FLAGS=\n{THROUGH_HEAD}"));
    check_every_n(&r, "rollback --yes");
}

#[test]
fn a_closed_stdout_never_stops_an_initrd_rollback_and_it_exits_0() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(&format!("FLAGS='--initrd --force'\n{THROUGH_HEAD}"));
    check_every_n(&r, "rollback --initrd --force");
}

/// `mark`, `record`, `status` and `archives` with a reader that is gone
/// before they write: each does its work, exits as it would have, and
/// never panics.
#[test]
fn no_command_panics_on_a_closed_stdout() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    let r = run(r#"
# The reader (`true`) has exited before darlings writes: every write is EPIPE.
closed() {
  name=$1; shift
  { sleep 0.3; "$@" 2> "$OUT/$name.err"; echo $? > "$OUT/$name.code"; } | true
}
closed mark $D mark --mountpoint m
$D status --mountpoint m --format json > "$OUT/after-mark.json"
mkdir r && mount -o subvol=root "$LOOP" r
closed record $D record --root r --mountpoint m --no-default-manifest --fail-on none
umount r
$D status --mountpoint m --format json > "$OUT/after-record.json"
$D rollback --mountpoint m --yes > /dev/null 2>&1
closed status $D status --mountpoint m
closed status-json $D status --mountpoint m --format json
closed status-prometheus $D status --mountpoint m --format prometheus
closed archives $D archives --mountpoint m
closed archives-json $D archives --mountpoint m --format json
closed unmark $D mark --mountpoint m --off
$D status --mountpoint m --format json > "$OUT/after-unmark.json"
"#);
    for name in [
        "mark",
        "record",
        "status",
        "status-json",
        "status-prometheus",
        "archives",
        "archives-json",
        "unmark",
    ] {
        let err = r.text(&format!("{name}.err"));
        assert_eq!(r.code(name), 0, "{name}: {err}");
        assert!(err.is_empty(), "{name} says nothing on stderr: {err}");
    }
    assert_eq!(r.json("after-mark.json")["marked"], true);
    let recorded = r.json("after-record.json");
    assert_eq!(recorded["record"]["decision"]["erase"], true, "the record was kept: {recorded}");
    assert_eq!(r.json("after-unmark.json")["marked"], false);
}
