//! Hostile and confused cases for the claim checker. Real mounts in a
//! private mount namespace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

/// `/mnt` is a bind mount of a directory of the ephemeral root itself: what
/// is in it is erased with the root. A claim reaching it through a symlink
/// (the claim itself, or a parent directory) is as broken as a claim on
/// the path directly: another mount id, but the same filesystem.
#[test]
fn a_symlink_into_a_bind_mount_from_the_root_itself_is_broken() {
    require_root!();
    let t = common::Tree::new();
    t.file(b"/srv/m/q/data", b"d")
        .dir(b"/mnt")
        .symlink(b"/lnk", b"/mnt")
        .symlink(b"/var/lib/s", b"/mnt/q")
        .dir(b"/persist")
        .symlink(b"/var/lib/ok", b"/persist/ok");
    let script = format!(
        r#"R='{}'
mount --bind "$R/srv/m" "$R/mnt"
mount -t tmpfs persist "$R/persist"
mkdir "$R/persist/ok"
"$D" audit --root "$R" --format json --no-default-manifest --keep /mnt/q --keep /lnk/q --keep /var/lib/s --keep /var/lib/ok || true"#,
        t.root().display()
    );
    let out = common::in_mount_namespace(&script);
    let json = common::parse_json(&out);
    let f = common::findings(&json);
    assert_eq!(f[&b"/mnt/q"[..]]["verdict"], "broken", "the direct claim");
    assert_eq!(f[&b"/lnk/q"[..]]["verdict"], "broken", "through a symlinked parent: {}", f[&b"/lnk/q"[..]]);
    assert_eq!(f[&b"/var/lib/s"[..]]["verdict"], "broken", "a symlink claim: {}", f[&b"/var/lib/s"[..]]);
    assert_eq!(f[&b"/var/lib/ok"[..]]["verdict"], "kept", "into a real other filesystem");
    assert_eq!(json["exit_code"], 3);
}
