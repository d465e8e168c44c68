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

#[test]
fn systemd_tmpfiles_objects_come_back_their_content_does_not() {
    let t = common::Tree::new();
    t.file(
        b"/usr/lib/tmpfiles.d/app.conf",
        b"# app\nd /var/lib/app-overridden 0755 root root -\n",
    )
    .file(
        // Same name in /etc: it replaces the /usr/lib file.
        b"/etc/tmpfiles.d/app.conf",
        b"d %S/app 0755 root root -\nL+ /var/lib/app-link - - - - /run/target\nf /var/lib/empty-state 0600\nf /var/lib/full-state 0600\n",
    )
    .dir(b"/var/lib/app-overridden")
    .dir(b"/var/lib/app")
    .symlink(b"/var/lib/app-link", b"/run/target")
    .file(b"/var/lib/empty-state", b"")
    .file(b"/var/lib/full-state", b"written since boot")
    .dir(b"/var/lib/spool")
    .file(b"/var/lib/spool/job", b"j");
    let (json, _) = common::audit_json(t.root(), &["--ignore", "/etc", "--ignore", "/usr"]);
    let f = common::findings(&json);
    let verdict = |p: &str| f[p.as_bytes()]["verdict"].as_str().unwrap_or("?").to_owned();
    assert_eq!(verdict("/var/lib/app"), "recreated", "an empty directory tmpfiles creates");
    assert_eq!(verdict("/var/lib/app-link"), "recreated");
    assert_eq!(verdict("/var/lib/empty-state"), "recreated");
    assert_eq!(verdict("/var/lib/full-state"), "unclaimed", "tmpfiles recreates the file, not what it holds");
    assert_eq!(verdict("/var/lib/app-overridden"), "unclaimed", "its line is in a file /etc replaced");
    assert_eq!(verdict("/var/lib/spool"), "unclaimed");
}

#[test]
fn a_tmpfiles_directory_with_content_stays_one_loss() {
    // What it holds is lost; the directory coming back does not split the
    // row (a tmpfiles /tmp full of files is one row, not one per file).
    let t = common::Tree::new();
    t.file(b"/etc/tmpfiles.d/x.conf", b"d /var/lib/x\n")
        .file(b"/var/lib/x/data", b"lost")
        .file(b"/var/lib/x/more", b"m");
    let (json, _) = common::audit_json(t.root(), &["--ignore", "/etc"]);
    let f = common::findings(&json);
    assert_eq!(f[&b"/var"[..]]["verdict"], "unclaimed");
    assert_eq!(f[&b"/var"[..]]["entries"], 5);
    let (json, _) = common::audit_json(t.root(), &["--ignore", "/etc", "--flat"]);
    assert_eq!(common::findings(&json)[&b"/var/lib/x/data"[..]]["verdict"], "unclaimed");
}
