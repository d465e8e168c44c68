//! Shadowed state: content on the root's own filesystem hidden under a
//! mount point (written before the mount came up). Real mounts in a
//! private mount namespace; darlings looks through a detached clone of the
//! root's mount and unmounts nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

fn scenario(root: &std::path::Path, darlings: &str) -> std::process::Output {
    let script = format!(
        r#"R='{root}'
persistent persist "$R/persist"
mkdir -p "$R/persist/var/lib/nixos" "$R/persist/inner"
echo 1000 > "$R/persist/var/lib/nixos/uid-map"
echo beneath > "$R/persist/inner/beneath"
mount -t tmpfs inner "$R/persist/inner"
mount --bind "$R/persist/var/lib/nixos" "$R/var/lib/nixos"
mount -t tmpfs home "$R/home"
mount -t tmpfs tmp "$R/tmp"
{darlings}"#,
        root = root.display()
    );
    common::in_mount_namespace(&script)
}

fn tree() -> common::Tree {
    let t = common::Tree::new();
    // Written before the mounts: hidden by them.
    t.file(b"/var/lib/nixos/early map", b"1000 alice\n")
        .file(b"/home/u/.ssh/id_ed25519", b"private key")
        .file(b"/home/u/notes", b"notes")
        .file(b"/tmp/junk", b"junk")
        .file(b"/etc/hostname", b"box\n")
        .dir(b"/persist");
    t
}

#[test]
fn content_under_mount_points_is_shadowed() {
    require_root!();
    let t = tree();
    let out = scenario(
        t.root(),
        r#""$D" audit --root "$R" --format json --keep /var/lib/nixos --ignore /tmp --no-default-manifest || true
mountpoint -q "$R/home" && mountpoint -q "$R/var/lib/nixos" || exit 9"#,
    );
    assert!(out.status.success(), "darlings unmounted nothing: {}", String::from_utf8_lossy(&out.stderr));
    let json = common::parse_json(&out);
    let f = common::findings(&json);
    let early = &f[&b"/var/lib/nixos/early map"[..]];
    assert_eq!(early["verdict"], "shadowed");
    assert_eq!(early["entries"], 1);
    assert_eq!(early["size"], 11);
    assert!(early["detail"]
        .as_str()
        .unwrap()
        .contains("under the mount point /var/lib/nixos (overlay persist"));
    // A whole hidden directory is one finding, as precious as what it holds.
    let home = &f[&b"/home/u"[..]];
    assert_eq!(home["verdict"], "shadowed");
    assert_eq!(home["entries"], 4, "u, .ssh, the key, notes");
    assert_eq!(home["size"], 16);
    assert_eq!(home["severity"], "critical");
    // The claim itself is realised; ignored places stay ignored even hidden.
    assert_eq!(f[&b"/var/lib/nixos"[..]]["verdict"], "kept");
    assert!(!f.contains_key(&b"/tmp/junk"[..]), "under an ignored path");
    // What lies under a mount inside another mount is not on the root.
    assert!(!f.keys().any(|p| p.starts_with(b"/persist/")), "{:?}", f.keys().collect::<Vec<_>>());
    assert_eq!(json["totals"]["shadowed"]["findings"], 2);
    assert_eq!(json["totals"]["shadowed"]["entries"], 5);
    assert_eq!(json["exit_code"], 1);
}

#[test]
fn without_cap_sys_admin_the_audit_says_it_could_not_look() {
    require_root!();
    require_tool!("setpriv", "util-linux");
    let t = tree();
    let out = scenario(
        t.root(),
        r#"setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin -- "$D" audit --root "$R" --format json --keep /var/lib/nixos --no-default-manifest || true"#,
    );
    let json = common::parse_json(&out);
    let notes = json["notes"].as_array().expect("notes");
    assert!(
        notes.iter().any(|n| n.as_str().unwrap_or("").contains("could not look under mount points")),
        "{notes:?}"
    );
    assert!(common::findings(&json).values().all(|f| f["verdict"] != "shadowed"));
}
