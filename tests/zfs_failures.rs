//! How `--source zfs` fails: a stand-in `zfs` on PATH injects each failure
//! (the real thing is tested in the ZFS guest, tests/zfs_guest.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

/// A directory holding an executable `zfs` that runs `script`.
fn fake_zfs(script: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("zfs");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn audit_with(zfs: &tempfile::TempDir, root: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let path = format!("{}:{}", zfs.path().display(), std::env::var("PATH").unwrap_or_default());
    Command::new(common::bin())
        .args(["audit", "--format", "json", "--source", "zfs", "--dataset", "rpool/local/root", "--root"])
        .arg(root)
        .args(extra)
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .expect("run")
}

const LIST: &str =
    r#"if [ "$1" = list ]; then printf 'rpool/local/root@before\nrpool/local/root@blank\n'; exit 0; fi"#;

#[test]
fn a_missing_snapshot_names_the_ones_that_exist() {
    let t = common::Tree::new();
    let zfs = fake_zfs(LIST);
    let out = audit_with(&zfs, t.root(), &["--snapshot", "empty"]);
    assert_eq!(common::code(&out), 2);
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no snapshot rpool/local/root@empty; the dataset has: before, blank"),
        "{stderr}"
    );
}

#[test]
fn known_zfs_errors_become_clear_messages() {
    let t = common::Tree::new();
    for (stderr, message) in [
        ("cannot open 'rpool/local/root': dataset does not exist", "no such dataset or snapshot"),
        (
            "Cannot diff an unmounted snapshot: operation not applicable to datasets of this type",
            "the dataset is not mounted",
        ),
        ("cannot diff: permission denied", "zfs diff needs root, or `zfs allow USER diff DATASET`"),
    ] {
        let zfs = fake_zfs(&format!("{LIST}\necho \"{stderr}\" >&2\nexit 1"));
        let out = audit_with(&zfs, t.root(), &[]);
        assert_eq!(common::code(&out), 2);
        let got = String::from_utf8_lossy(&out.stderr);
        assert!(got.contains(message), "{got}");
        assert!(got.contains(stderr), "the original text is kept: {got}");
    }
}

#[test]
fn a_malformed_line_from_zfs_fails_with_its_number() {
    let t = common::Tree::new();
    let root = t.root().display().to_string();
    let zfs =
        fake_zfs(&format!("{LIST}\nprintf '1.0\\tM\\t/\\t{root}/\\n1.0\\t+\\tF\\t{root}/ok\\ngarbage\\n'"));
    let out = audit_with(&zfs, t.root(), &[]);
    assert_eq!(common::code(&out), 2);
    let got = String::from_utf8_lossy(&out.stderr);
    assert!(got.contains("line 3:"), "{got}");
}

#[test]
fn the_diff_is_read_as_a_stream_and_classified() {
    let t = common::Tree::new();
    t.file(b"/etc/new", b"12345");
    let root = t.root().display().to_string();
    // Lines below the dataset's mount point (the root), in object order.
    let zfs = fake_zfs(&format!(
        "{LIST}\n[ \"$1\" = diff ] && [ \"$2\" = -FHt ] && [ \"$3\" = rpool/local/root@blank ] || exit 9\n\
         printf '1.0\\tM\\t/\\t{root}/\\n2.0\\t+\\t/\\t{root}/etc\\n3.0\\t+\\tF\\t{root}/etc/new\\n'"
    ));
    let out = audit_with(&zfs, t.root(), &[]);
    assert_eq!(common::code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let json = common::parse_json(&out);
    assert_eq!(json["source"], "zfs");
    let f = common::findings(&json);
    assert_eq!(f[&b"/etc"[..]]["entries"], 2);
    assert_eq!(f[&b"/etc"[..]]["size"], 5, "sizes from the live tree");
}

#[test]
fn zfs_missing_from_path_is_an_error() {
    let t = common::Tree::new();
    let out = Command::new(common::bin())
        .args(["audit", "--source", "zfs", "--dataset", "rpool/x", "--root"])
        .arg(t.root())
        .env("PATH", "/nonexistent")
        .output()
        .expect("run");
    assert_eq!(common::code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run zfs"));
}

#[test]
fn source_zfs_on_a_root_that_is_not_zfs_refuses() {
    let t = common::Tree::new();
    let out = common::run([
        std::ffi::OsStr::new("audit"),
        "--source".as_ref(),
        "zfs".as_ref(),
        "--root".as_ref(),
        t.root().as_os_str(),
    ]);
    assert_eq!(common::code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not the mount point of a ZFS dataset"));
}

/// A stand-in for the whole of `zfs` that a rollback asks: an unmounted,
/// marked rpool/local/root with only @blank, an archive dataset with room;
/// every call is logged to $LOG, and the command named FAIL fails.
const ROLLBACK_ZFS: &str = r#"
echo "$*" >> "$LOG"
case "$*" in
  "get -Hp -o property,value,source type,referenced,encryption,darlings:ephemeral rpool/local/root")
    printf 'type\tfilesystem\t-\nreferenced\t4096\t-\nencryption\toff\tdefault\ndarlings:ephemeral\ton\tlocal\n' ;;
  "get -Hp -o property,value,source mountpoint rpool/local/root") printf 'mountpoint\tlegacy\tlocal\n' ;;
  "get -Hp -o property,value,source darlings:ephemeral rpool/local/root") printf 'darlings:ephemeral\ton\tlocal\n' ;;
  "get -Hp -o property,value,source darlings:last-rollback rpool/local/root") printf 'darlings:last-rollback\t-\t-\n' ;;
  "get -Hp -o property,value,source available rpool/safe/darlings") printf 'available\t1000000000\t-\n' ;;
  "list -Hp -t snapshot -o name,creation,clones,guid -s createtxg -d 1 rpool/local/root")
    printf 'rpool/local/root@blank\t1700000000\t\t1234\n' ;;
  "list -H -p -o name -s createtxg -t snapshot -d 1 rpool/local/root") echo rpool/local/root@blank ;;
  "list -H -o name,mountpoint -t filesystem,volume -r rpool/local/root") printf 'rpool/local/root\tlegacy\n' ;;
  "list -H -o name rpool/safe/darlings") echo rpool/safe/darlings ;;
  "list -H -o name "*) exit 1 ;;
  "list -Hp -o name,creation,used -t filesystem -d 1 rpool/safe/darlings") printf 'rpool/safe/darlings\t1\t1\n' ;;
  "diff -FHt rpool/local/root@blank") ;;
  send*) [ "$FAIL" = send ] && { echo "cannot send: I/O error" >&2; exit 1; }; echo stream ;;
  receive*) cat > /dev/null; [ "$FAIL" = receive ] && { echo "cannot receive: out of space" >&2; exit 1; } ;;
  rollback*) [ "$FAIL" = rollback ] && { echo "cannot rollback: dataset is busy" >&2; exit 1; } ;;
  snapshot*|set*) ;;
  *) echo "unexpected: zfs $*" >&2; exit 1 ;;
esac
exit 0
"#;

fn with_rollback_zfs(args: &[&str], fail: &str) -> (std::process::Output, String) {
    let zfs = fake_zfs(ROLLBACK_ZFS);
    // mount(8) and umount(8) stand-ins: the root "mounted" for the audit is an empty directory.
    for tool in ["mount", "umount"] {
        let path = zfs.path().join(tool);
        std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let log = zfs.path().join("calls.log");
    let path = format!("{}:{}", zfs.path().display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(common::bin())
        .args(args)
        .env("PATH", path)
        .env("LOG", &log)
        .env("FAIL", fail)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    (out, std::fs::read_to_string(&log).unwrap_or_default())
}

/// A rollback of `rpool/local/root` whose zfs fails at `fail`. The tests
/// run at once and name one dataset: each waits for the target's lock.
fn rollback_failing(fail: &str) -> (std::process::Output, String) {
    let args = [
        "--dataset",
        "rpool/local/root",
        "--archive-dataset",
        "rpool/safe/darlings",
        "--yes",
        "--wait",
        "60",
    ];
    with_rollback_zfs(&[&["rollback"][..], &args].concat(), fail)
}

#[test]
fn status_says_when_it_cannot_list_archives() {
    require_root!();
    let (out, _) = with_rollback_zfs(&["status", "--dataset", "rpool/local/root"], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(common::code(&out), 0, "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("marked:         yes (darlings:ephemeral=on)"), "{stdout}");
    assert!(stdout.contains("last rollback:  none recorded"), "{stdout}");
    assert!(
        stdout.contains("archives:       unknown: name the archive dataset with --archive-dataset"),
        "{stdout}"
    );
}

#[test]
fn a_failed_archive_stops_before_the_erase_and_says_how_to_clean_up() {
    require_root!();
    let (out, calls) = rollback_failing("receive");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(common::code(&out), 2, "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("The rollback failed at step 2 of 3"), "{stdout}");
    assert!(stdout.contains("cannot receive: out of space"), "{stdout}");
    let snapshot = calls.lines().find(|l| l.starts_with("snapshot ")).expect("a precautionary snapshot");
    let keep = snapshot.strip_prefix("snapshot ").unwrap();
    assert!(
        stdout.contains("Nothing was erased; remove what was made with `zfs destroy -r rpool/safe/darlings/"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("`zfs destroy {keep}`")), "{stdout}");
    assert!(!calls.lines().any(|l| l.starts_with("rollback")), "the erase never ran: {calls}");
    // The outcome is recorded for `darlings status`.
    assert!(
        calls
            .lines()
            .any(|l| l.starts_with("set darlings:last-rollback=") && l.contains("failed at step 2 of 3")),
        "{calls}"
    );
}

#[test]
fn a_failed_erase_says_nothing_was_erased_and_where_the_archive_is() {
    require_root!();
    let (out, calls) = rollback_failing("rollback");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(common::code(&out), 2, "{stdout}");
    assert!(stdout.contains("failed at step 3 of 3"), "{stdout}");
    assert!(stdout.contains("Nothing was erased (a rollback is all or nothing)"), "{stdout}");
    assert!(stdout.contains("archived as rpool/safe/darlings/"), "{stdout}");
    assert!(calls.lines().any(|l| l == "rollback -r rpool/local/root@blank"), "{calls}");
}
