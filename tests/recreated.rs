//! What NixOS recreates at boot is `recreated`, not a loss, and folds like
//! unclaimed state: a NixOS /etc is a few rows, not hundreds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{map, verdicts};

fn nixos_like() -> common::Tree {
    let t = common::Tree::new();
    t.symlink(b"/etc/static", b"/nix/store/aaaa-etc/etc")
        .symlink(b"/etc/systemd/system/foo.service", b"/etc/static/systemd/system/foo.service")
        .symlink(b"/etc/systemd/system/bar.service", b"/etc/static/systemd/system/bar.service")
        .file(b"/etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .file(b"/etc/.clean", b"passwd\ngroup\n")
        .file(b"/etc/NIXOS", b"")
        .file(b"/etc/hostname-local-edit", b"mine")
        .symlink(b"/bin/sh", b"/nix/store/bbbb-bash/bin/sh")
        .symlink(b"/home/alice/.bashrc", b"/nix/store/cccc-home-manager-files/.bashrc")
        .file(b"/home/alice/notes.txt", b"keep me")
        .symlink(
            b"/home/alice/.config/app/settings",
            b"/nix/store/dddd-home-manager-files/.config/app/settings",
        );
    t
}

#[test]
fn recreated_state_is_not_a_loss_and_folds() {
    let t = nixos_like();
    let (json, code) = common::audit_json(t.root(), &[]);
    assert_eq!(
        verdicts(&json),
        map(&[
            ("/bin", "recreated 2"),
            ("/etc", "structure 1"),
            ("/etc/.clean", "recreated 1"),
            ("/etc/NIXOS", "recreated 1"),
            ("/etc/hostname-local-edit", "unclaimed 1"),
            ("/etc/passwd", "recreated 1"),
            ("/etc/static", "recreated 1"),
            // systemd, system and two links: one row.
            ("/etc/systemd", "recreated 4"),
            ("/home", "structure 1"),
            ("/home/alice", "structure 1"),
            ("/home/alice/.bashrc", "recreated 1"),
            ("/home/alice/.config", "recreated 3"),
            ("/home/alice/notes.txt", "unclaimed 1"),
        ])
    );
    assert_eq!(code, 1, "the local files are still lost");
    let f = common::findings(&json);
    assert!(f[&b"/etc/passwd"[..]]["detail"].as_str().unwrap_or("").contains("a local edit to it is lost"));
    assert_eq!(json["totals"]["recreated"]["findings"], 8);
}

#[test]
fn a_tree_nixos_recreates_entirely_exits_zero() {
    let t = common::Tree::new();
    t.symlink(b"/etc/static", b"/nix/store/aaaa-etc/etc")
        .symlink(b"/etc/zshrc", b"/etc/static/zshrc")
        .file(b"/etc/NIXOS", b"");
    let (json, code) = common::audit_json(t.root(), &[]);
    assert_eq!(verdicts(&json), map(&[("/etc", "recreated 4")]));
    assert_eq!(code, 0);
}
