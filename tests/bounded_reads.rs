//! Files named on the command line that never end: a device, a sparse
//! file of one endless line, a pipe that keeps writing. `--zfs-diff` and
//! `--accepted` refuse what is not a regular file or a FIFO, as
//! `--manifest` and `--impermanence` do; a saved diff is read one line at
//! a time, no line longer than `zfs diff` writes, and an accepted list is
//! capped like a configuration file. Each refusal names the file (and the
//! line). Every run here is under a 1 GiB address-space limit: reading
//! any of these whole would abort instead of answering.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `darlings ARGS…` under `ulimit -v` (1 GiB), stdin from `input`.
fn limited(args: &[&OsStr], input: Option<&[u8]>) -> Output {
    let mut child = Command::new("sh")
        .args(["-c", "ulimit -v 1048576 && exec \"$@\"", "sh", common::bin()])
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run darlings");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        // darlings may stop reading early (a refused line): not an error.
        let _ = stdin.write_all(input);
    }
    child.wait_with_output().expect("wait")
}

fn offline_diff(file: &OsStr) -> Vec<&OsStr> {
    ["audit", "--format", "json", "--zfs-diff"]
        .iter()
        .map(OsStr::new)
        .chain([file])
        .chain(["--strip-prefix", "/mnt/root"].iter().map(OsStr::new))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A sparse file of `len` zero bytes: one line that never ends.
fn endless_line(dir: &Path, len: u64) -> std::path::PathBuf {
    let file = dir.join("one-line");
    std::fs::File::create(&file).expect("create").set_len(len).expect("sparse");
    file
}

#[test]
fn a_device_is_refused_as_a_saved_diff() {
    let out = limited(&offline_diff("/dev/zero".as_ref()), None);
    assert_eq!(common::code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot read zfs diff /dev/zero: not a regular file (a character device)"));
}

/// Files of /proc and /sys are the kernel's: /proc/kmsg hands each message
/// to one reader, so reading it as a diff would take the kernel log away.
#[test]
fn a_kernel_interface_file_is_refused_as_a_saved_diff() {
    let files = ["/proc/kmsg", "/proc/self/status", "/sys/kernel/mm/transparent_hugepage/enabled"];
    let present: Vec<&str> = files.into_iter().filter(|f| std::path::Path::new(f).exists()).collect();
    assert!(present.contains(&"/proc/self/status"), "no /proc here: nothing was tried");
    for file in present {
        let out = limited(&offline_diff(file.as_ref()), None);
        assert_eq!(common::code(&out), 2, "{file}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!(
                "cannot read zfs diff {file}: not a regular file (a kernel interface file"
            )),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn a_device_is_refused_as_an_accepted_list() {
    let t = common::Tree::new();
    let args: Vec<&OsStr> = vec![
        "audit".as_ref(),
        "--root".as_ref(),
        t.root().as_os_str(),
        "--accepted".as_ref(),
        "/dev/zero".as_ref(),
    ];
    let out = limited(&args, None);
    assert_eq!(common::code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot read accepted list /dev/zero: not a regular file (a character device)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_endless_line_in_a_saved_diff_is_refused_with_its_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = endless_line(dir.path(), 4 << 30);
    let out = limited(&offline_diff(file.as_os_str()), None);
    assert_eq!(common::code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("one-line:1: longer than 82176 bytes"), "{}", stderr(&out));

    // After good lines: the number is the long line's.
    let mut text = b"1700000001.000000000\t+\tF\t/mnt/root/a\n".repeat(2);
    text.extend(std::iter::repeat_n(b'x', 100_000));
    std::fs::write(&file, &text).expect("write");
    let out = limited(&offline_diff(file.as_os_str()), None);
    assert!(stderr(&out).contains("one-line:3: longer than 82176 bytes"), "{}", stderr(&out));

    // On stdin too.
    let out = limited(&offline_diff("-".as_ref()), Some(&vec![b'y'; 1 << 20]));
    assert_eq!(common::code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("<stdin>:1: longer than 82176 bytes"), "{}", stderr(&out));
}

#[test]
fn an_endless_accepted_list_is_refused() {
    let t = common::Tree::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = endless_line(dir.path(), 4 << 30);
    let args: Vec<&OsStr> = vec![
        "audit".as_ref(),
        "--root".as_ref(),
        t.root().as_os_str(),
        "--accepted".as_ref(),
        file.as_os_str(),
    ];
    let out = limited(&args, None);
    assert_eq!(common::code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("one-line: larger than 8 MiB"), "{}", stderr(&out));
}

/// The longest line zfs writes: a rename of two paths of 2 × 4096 bytes,
/// every byte escaped. It is read, whole.
#[test]
fn the_longest_line_zfs_writes_is_read() {
    // 32 components of 255 bytes (0xC3, escaped as \0303) below the mount
    // point: 8192 bytes of path as the audited system sees it.
    let component = |first: &str| format!("/{first}{}", "\\0303".repeat(253));
    let path =
        |first: &str| -> String { (0..32).map(|i| component(&format!("{first}{}", i % 10))).collect() };
    let line = format!("1700000001.000000000\tR\t/\t/mnt/root{}\t/mnt/root{}\n", path("o"), path("n"));
    assert!(line.len() > 80_000, "{}", line.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("long.zfsdiff");
    std::fs::write(&file, line).expect("write");
    let out = limited(&offline_diff(file.as_os_str()), None);
    let json = common::parse_json(&out);
    let findings = common::findings(&json);
    assert_eq!(findings.len(), 1, "{}", stderr(&out));
    let (new, finding) = findings.into_iter().next().expect("the rename");
    assert_eq!(new.len(), 32 * 256);
    assert_eq!(finding["change"], "renamed");
}

/// `--zfs-diff -` and a FIFO stream: a diff much larger than any
/// configuration file, line by line.
#[test]
fn a_piped_diff_of_many_lines_streams() {
    let mut text = Vec::new();
    for i in 0..120_000 {
        writeln!(text, "1700000001.000000000\t+\tF\t/mnt/root/srv/{i:0>60}").expect("line");
    }
    assert!(text.len() > 8 << 20);
    let out = limited(&offline_diff("-".as_ref()), Some(&text));
    let json = common::parse_json(&out);
    assert_eq!(json["totals"]["unclaimed"]["entries"], 120_000, "{}", stderr(&out));

    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("diff.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, text).expect("write fifo"))
    };
    let out = limited(&offline_diff(fifo.as_os_str()), None);
    writer.join().expect("writer");
    assert_eq!(common::parse_json(&out)["totals"]["unclaimed"]["entries"], 120_000, "{}", stderr(&out));
}
