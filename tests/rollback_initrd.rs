//! The initrd end to end on real btrfs: an impermanence system records its
//! audit at shutdown (`record --impermanence J`, claims realised by bind
//! mounts), then `rollback --initrd` with nothing but the device erases
//! it: the record carries the declared claims, and the empty mount-point
//! directories left on the root hold nothing to lose. With a real
//! unclaimed critical file (in the record, or written after it) it
//! refuses, exits 0, logs one kernel-log record, and `status --format
//! prometheus` shows the refusal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod rollback_common;

use rollback_common::{run, Run};

/// An impermanence system on the test's btrfs: a `persist` subvolume with
/// alice's SSH keys and the uid map, the root with the mount points
/// impermanence makes, `boot` mounting it all at `r` as the running
/// system has it, `shutdown` unmounting it.
const IMPERMANENCE: &str = r#"
$D mark --device "$LOOP" > /dev/null
btrfs -q subvolume create m/persist
mkdir -p m/persist/home/alice/.ssh m/persist/var/lib/nixos
echo key > m/persist/home/alice/.ssh/id_ed25519
echo '{}' > m/persist/var/lib/nixos/uid-map
cat > "$WORK/persistence.json" <<'J'
{"/persist": {"directories": ["/var/lib/nixos"],
              "users": {"alice": {"home": "/home/alice", "directories": [".ssh"]}}}}
J
mkdir r
boot() {
  mkdir -p m/root/home/alice/.ssh m/root/var/lib/nixos m/root/persist
  mount -o subvol=root "$LOOP" r
  mount -o subvol=persist "$LOOP" r/persist
  mount --bind r/persist/home/alice/.ssh r/home/alice/.ssh
  mount --bind r/persist/var/lib/nixos r/var/lib/nixos
}
shutdown() { umount r/var/lib/nixos r/home/alice/.ssh r/persist r; }
record() { $D record --root r --mountpoint m --no-default-manifest --impermanence "$WORK/persistence.json" > "$OUT/$1.out" 2>&1; echo $? > "$OUT/$1.code"; }
prom() { $D status --device "$LOOP" --format prometheus > "$OUT/$1.prom" 2>&1; }
"#;

fn prometheus_sample(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

/// Checks the Prometheus text exposition format line by line: HELP and
/// TYPE before each metric's samples, names `darlings_…`, label values
/// quoted, numeric values.
fn valid_exposition(text: &str) {
    let mut typed = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(name.starts_with("darlings_") && !help.is_empty(), "{line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(kind, "gauge", "{line}");
            assert!(!typed.contains(&name.to_owned()), "one TYPE per metric: {line}");
            typed.push(name.to_owned());
        } else {
            let (series, value) = line.rsplit_once(' ').expect("a sample");
            value.parse::<f64>().unwrap_or_else(|_| panic!("numeric value: {line}"));
            let (name, labels) = series.split_once('{').expect("labels");
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{line}");
            assert_eq!(typed.last().map(String::as_str), Some(name), "samples follow their TYPE: {line}");
            let labels = labels.strip_suffix('}').expect("closing brace");
            for pair in labels.split("\",").map(|p| p.trim_end_matches('"')) {
                let (key, value) = pair.split_once("=\"").unwrap_or_else(|| panic!("label: {line}"));
                assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{line}");
                assert!(!value.contains('\n'), "{line}");
            }
        }
    }
    assert!(typed.len() >= 8, "{text}");
}

fn refused_in_initrd(r: &Run, name: &str, says: &str) {
    r.refused(name, 0, says);
    let prom = r.text(&format!("{name}.prom"));
    valid_exposition(&prom);
    assert_eq!(
        prometheus_sample(&prom, "darlings_rollback_last_outcome", "outcome=\"refused\""),
        Some(1.0),
        "{prom}"
    );
    assert_eq!(
        prometheus_sample(&prom, "darlings_rollback_last_outcome", "outcome=\"erased\""),
        Some(0.0),
        "{prom}"
    );
    assert_eq!(prometheus_sample(&prom, "darlings_rollback_last_initrd", ""), Some(1.0), "{prom}");
    assert!(prometheus_sample(&prom, "darlings_rollback_last_refusals", "").unwrap() >= 1.0, "{prom}");
}

#[test]
fn the_initrd_erases_a_clean_impermanence_system_and_refuses_real_critical_state() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    require_tool!("strace", "strace");
    let r = run(&format!(
        "{IMPERMANENCE}{}",
        r#"
boot
record clean-record
shutdown
icheck initrd $D rollback --initrd --device "$LOOP"
tree m/root > "$OUT/after.tree"
tree m/root-blank > "$OUT/blank.tree"
prom erased
# A host key nobody claims, there when the record is made.
boot
mkdir -p r/etc/ssh && echo hostkey > r/etc/ssh/ssh_host_ed25519_key
record critical-record
shutdown
icheck in-record strace -f -qq -y -s 4096 -e trace=write -e signal=none -o "$OUT/kmsg.strace" \
  $D rollback --initrd --device "$LOOP"
prom in-record
# Written after a clean record (by something stopping later): the initrd's own audit finds it.
rm -r m/root/etc/ssh
boot
record late-record
mkdir -p r/root/.ssh && echo userkey > r/root/.ssh/id_ed25519
shutdown
icheck late $D rollback --initrd --device "$LOOP"
prom late
true
"#
    ));
    // The clean system: recorded with its claims checked, then erased.
    let clean = r.text("clean-record.out");
    assert_eq!(r.code("clean-record"), 1, "unclaimed state, nothing critical: {clean}");
    let record: serde_json::Value = serde_json::from_str(clean.trim()).unwrap();
    assert_eq!(record["decision"]["erase"], true, "{record}");
    assert_eq!(record["claims_verified"], true, "{record}");
    assert_eq!(record["counts"]["critical"], 0, "{record}");
    let mut dirs: Vec<&str> = record["claims"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["storage"] == "/persist" && c["directory"] == true)
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    dirs.sort_unstable();
    assert_eq!(dirs, ["/home/alice/.ssh", "/var/lib/nixos"], "{record}");

    let out = r.text("initrd.out");
    assert_eq!(r.code("initrd"), 0, "{out}");
    assert_eq!(r.text("initrd.state").trim(), "changed", "erased: {out}");
    assert!(!out.contains("Refused"), "{out}");
    assert!(out.contains("the claims are the 2 declared at shutdown (kept in the record)"), "{out}");
    assert!(out.contains(" 0 critical (claims assumed, not checked)"), "{out}");
    assert_eq!(r.text("after.tree"), r.text("blank.tree"));
    let prom = r.text("erased.prom");
    valid_exposition(&prom);
    assert_eq!(
        prometheus_sample(&prom, "darlings_rollback_last_outcome", "outcome=\"erased\""),
        Some(1.0),
        "{prom}"
    );
    assert_eq!(prometheus_sample(&prom, "darlings_archives", ""), Some(1.0), "{prom}");

    // A critical file in the record: refused for the record's reason, exit 0.
    let rec: serde_json::Value = serde_json::from_str(r.text("critical-record.out").trim()).unwrap();
    assert_eq!(rec["decision"]["erase"], false, "{rec}");
    assert_eq!(r.code("critical-record"), 1, "a loss");
    assert_eq!(r.code("in-record"), 0);
    let out = r.text("in-record.out");
    assert!(
        out.contains("the audit recorded at shutdown")
            && out.contains("refuses: critical state is unclaimed: /etc/ssh/ssh_host_ed25519_key"),
        "{out}"
    );
    assert!(out.contains("critical: /etc/ssh/ssh_host_ed25519_key"), "its own audit sees it too: {out}");
    refused_in_initrd(&r, "in-record", "critical state is unclaimed: /etc/ssh/ssh_host_ed25519_key");
    // The kernel log gets the refusal as one record: one write, tagged, on one line.
    let strace = r.text("kmsg.strace");
    let kmsg: Vec<&str> = strace.lines().filter(|l| l.contains("</dev/kmsg>")).collect();
    assert_eq!(kmsg.len(), 1, "{strace}");
    assert!(kmsg[0].contains("\"<4>darlings: refused, the root was left as it is: "), "{}", kmsg[0]);
    assert!(kmsg[0].contains("ssh_host_ed25519_key"), "{}", kmsg[0]);
    assert_eq!(kmsg[0].matches("\\n").count(), 1, "one line: {}", kmsg[0]);

    // Written after a clean record: the initrd's own audit refuses.
    let late: serde_json::Value = serde_json::from_str(r.text("late-record.out").trim()).unwrap();
    assert_eq!(late["decision"]["erase"], true, "{late}");
    refused_in_initrd(&r, "late", "critical state is unclaimed: /root/.ssh/id_ed25519");
}
