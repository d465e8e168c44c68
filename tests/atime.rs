//! An audit leaves the audited tree as it found it, access times included:
//! on a filesystem mounted `strictatime` every directory listed and every
//! file read would otherwise get a new atime. As root (`CAP_FOWNER`) none
//! changes; a user without it still audits, and keeps the atimes of what
//! it owns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

/// The scenario: a strictatime tmpfs with directories, a manifest the
/// audit reads and a home owned by `nobody`, every atime set to 2001;
/// `=== NAME` before each audit's JSON and each `stat` listing.
const SCENARIO: &str = r#"
M=$(mktemp -d); mount -t tmpfs -o strictatime,mode=755 none "$M"
mkdir -p "$M/srv/deep/er" "$M/etc/darlings" "$M/var/lib/kept" "$M/home/u/sub/more"
echo data > "$M/srv/deep/er/file"; echo db > "$M/var/lib/kept/db"; echo mine > "$M/home/u/sub/more/note"
printf 'keep = [ "/var/lib/kept" ]\n' > "$M/etc/darlings/manifest.toml"
chown -R 65534:65534 "$M/home/u"
cd "$M"
ITEMS=". srv srv/deep srv/deep/er etc etc/darlings etc/darlings/manifest.toml var var/lib home home/u home/u/sub home/u/sub/more"
atimes() { echo "=== $1"; printf '{'; sep=''; for i in $ITEMS; do printf '%s"%s": %s' "$sep" "$i" "$(stat -c %X "$i")"; sep=', '; done; echo '}'; }
touch -a -h -d 2001-01-01T00:00:00Z $ITEMS
atimes before
echo '=== root'; "$D" audit --root "$M" --format json --flat || true
atimes after-root
touch -a -h -d 2001-01-01T00:00:00Z $ITEMS
echo '=== nobody'; setpriv --reuid=65534 --regid=65534 --clear-groups "$D" audit --root "$M" --format json --flat || true
atimes after-nobody
"#;

fn atimes(v: &serde_json::Value) -> BTreeMap<String, i64> {
    v.as_object().unwrap().iter().map(|(k, t)| (k.clone(), t.as_i64().unwrap())).collect()
}

#[test]
fn an_audit_leaves_access_times_as_they_were() {
    require_root!();
    require_tool!("setpriv", "util-linux");
    let out = common::in_mount_namespace(SCENARIO);
    let sections: BTreeMap<String, serde_json::Value> = common::sections(&out).into_iter().collect();
    let before = atimes(&sections["before"]);
    assert!(before.values().all(|&t| t == 978_307_200), "{before:?}");

    // As root: what it listed and read keeps its atime.
    let root = &sections["root"];
    assert_eq!(root["complete"], true, "{root}");
    let f = common::findings(root);
    assert_eq!(f[&b"/var/lib/kept"[..]]["verdict"], "broken", "the manifest was read");
    assert_eq!(f[&b"/srv/deep/er/file"[..]]["verdict"], "unclaimed");
    assert_eq!(atimes(&sections["after-root"]), before, "an audit as root changed access times");

    // As a user without CAP_FOWNER: the same audit (the kernel refuses
    // O_NOATIME on what it does not own; it reads without it), and what
    // it owns keeps its atime.
    let nobody = &sections["nobody"];
    assert_eq!(nobody["complete"], true, "{nobody}");
    assert_eq!(common::verdicts(nobody), common::verdicts(root));
    let after = atimes(&sections["after-nobody"]);
    for owned in ["home/u", "home/u/sub", "home/u/sub/more"] {
        assert_eq!(after[owned], before[owned], "{owned}, owned by the user, listed by it");
    }
    // The test can see a change: a directory the user does not own, read
    // without O_NOATIME, gets a new atime on this strictatime mount.
    assert_ne!(after["srv/deep"], before["srv/deep"], "strictatime is in force");
}
