//! Hostile trees: every odd name and file type is reported exactly, deep
//! and wide trees are walked without overflow, and the fast walker agrees
//! with walkdir and with itself on one thread.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{Mode, OFlags};
use serde_json::Value;

/// Names that break naive tools, as raw bytes.
fn hostile_names() -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = [
        &b"with space"[..],
        b" leading space",
        b"trailing space ",
        b"tab\there",
        b"new\nline",
        b"carriage\rreturn",
        b"back\\slash",
        b"\\0040 looks escaped",
        b"quote's \"here\"",
        b"*star?[glob]{x}",
        b"-dash-first",
        b"caf\xe9 latin1",
        b"\xff\xfe",
        b"trunc-\xe2\x82",
        b"\x1b[31mred\x1b[0m",
        b"\x1b]0;title\x07",
        "bidi \u{202e}txt.exe".as_bytes(),
        "zero\u{200b}width".as_bytes(),
        "résumé 日本語 🎉".as_bytes(),
        b"\x7f del",
    ]
    .iter()
    .map(|n| n.to_vec())
    .collect();
    names.push(vec![b'n'; 255]);
    names
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Expect {
    kind: &'static str,
    size: u64,
}

/// Builds the hostile tree under `/names` and returns what each path is.
fn build_hostile(t: &common::Tree) -> BTreeMap<Vec<u8>, Expect> {
    let mut want = BTreeMap::new();
    t.dir(b"/names");
    want.insert(b"/names".to_vec(), Expect { kind: "dir", size: 0 });
    for (i, name) in hostile_names().into_iter().enumerate() {
        let mut file = b"/names/".to_vec();
        file.extend_from_slice(&name);
        let content = vec![b'x'; i];
        t.file(&file, &content);
        want.insert(file, Expect { kind: "file", size: i as u64 });
        // A directory holding the same name.
        let dir = format!("/names/dir{i}").into_bytes();
        let mut inner = dir.clone();
        inner.push(b'/');
        inner.extend_from_slice(&name);
        t.file(&inner, b"");
        want.insert(dir, Expect { kind: "dir", size: 0 });
        want.insert(inner, Expect { kind: "file", size: 0 });
    }
    // Symlink loops and links that go nowhere are reported, never followed.
    for (link, target) in [
        (&b"/names/loop-a"[..], &b"loop-b"[..]),
        (b"/names/loop-b", b"loop-a"),
        (b"/names/self", b"self"),
        (b"/names/up", b".."),
        (b"/names/abs-root", b"/"),
        (b"/names/dangling", b"/does/not/exist"),
        (b"/names/odd\ntarget", b"\xff\n\x1b"),
    ] {
        t.symlink(link, target);
        want.insert(link.to_vec(), Expect { kind: "symlink", size: target.len() as u64 });
    }
    // Special files.
    let names_dir = t.at(b"/names");
    rustix::fs::mknodat(rustix::fs::CWD, names_dir.join("fifo"), rustix::fs::FileType::Fifo, Mode::RUSR, 0)
        .expect("mkfifo");
    want.insert(b"/names/fifo".to_vec(), Expect { kind: "fifo", size: 0 });
    // A socket: bound at a short path, then moved into the tree.
    let sockdir = tempfile::tempdir().expect("tempdir");
    let sock = sockdir.path().join("s");
    let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind socket");
    std::fs::rename(&sock, names_dir.join("socket")).expect("move socket");
    drop(listener);
    want.insert(b"/names/socket".to_vec(), Expect { kind: "socket", size: 0 });
    if common::is_root() {
        let dev = rustix::fs::makedev(1, 3);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            names_dir.join("null"),
            rustix::fs::FileType::CharacterDevice,
            Mode::RUSR,
            dev,
        )
        .expect("mknod char");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            names_dir.join("loop"),
            rustix::fs::FileType::BlockDevice,
            Mode::RUSR,
            rustix::fs::makedev(7, 200),
        )
        .expect("mknod block");
        want.insert(b"/names/null".to_vec(), Expect { kind: "char-device", size: 0 });
        want.insert(b"/names/loop".to_vec(), Expect { kind: "block-device", size: 0 });
    }
    want
}

fn flat_paths(json: &Value) -> BTreeMap<Vec<u8>, Expect> {
    common::findings(json)
        .into_iter()
        .map(|(path, f)| {
            assert_eq!(f["verdict"], "unclaimed", "{}", String::from_utf8_lossy(&path));
            let kind = match f["type"].as_str().expect("type") {
                "dir" => "dir",
                "file" => "file",
                "symlink" => "symlink",
                "fifo" => "fifo",
                "socket" => "socket",
                "char-device" => "char-device",
                "block-device" => "block-device",
                other => panic!("unexpected type {other}"),
            };
            (path, Expect { kind, size: f["size"].as_u64().expect("size") })
        })
        .collect()
}

fn show(m: &BTreeMap<Vec<u8>, Expect>) -> Vec<String> {
    m.iter().map(|(p, e)| format!("{:?} {} {}", String::from_utf8_lossy(p), e.kind, e.size)).collect()
}

#[test]
fn hostile_names_are_reported_exactly() {
    let t = common::Tree::new();
    let want = build_hostile(&t);
    let (json, code) = common::audit_json(t.root(), &["--flat"]);
    assert_eq!(code, 1);
    let got = flat_paths(&json);
    assert_eq!(show(&got), show(&want));
    // Non-UTF-8 paths carry their exact bytes; UTF-8 ones carry none.
    let raw = common::findings(&json);
    assert!(raw[&b"/names/\xff\xfe"[..]].get("path_base64").is_some());
    assert!(raw[&b"/names/with space"[..]].get("path_base64").is_none());
}

#[test]
fn grouped_hostile_tree_is_one_row() {
    let t = common::Tree::new();
    let want = build_hostile(&t);
    let (json, _) = common::audit_json(t.root(), &[]);
    let rows = common::findings(&json);
    assert_eq!(
        rows.len(),
        1,
        "{:?}",
        rows.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect::<Vec<_>>()
    );
    let names = &rows[&b"/names"[..]];
    assert_eq!(names["entries"].as_u64(), Some(want.len() as u64));
    assert_eq!(names["size"].as_u64(), Some(want.values().map(|e| e.size).sum::<u64>()));
}

/// The same tree listed by walkdir, the simple serial reference walker.
fn walkdir_listing(root: &std::path::Path) -> BTreeMap<Vec<u8>, Expect> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).same_file_system(true).follow_links(false) {
        let entry = entry.expect("walkdir entry");
        let rel = entry.path().strip_prefix(root).expect("below root");
        let mut path = b"/".to_vec();
        path.extend_from_slice(rel.as_os_str().as_bytes());
        let ft = entry.file_type();
        let meta = entry.metadata().expect("lstat");
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_file() {
            "file"
        } else if ft.is_fifo() {
            "fifo"
        } else if ft.is_socket() {
            "socket"
        } else if ft.is_char_device() {
            "char-device"
        } else {
            "block-device"
        };
        let size = if ft.is_dir() { 0 } else { meta.len() };
        out.insert(path, Expect { kind, size });
    }
    out
}

#[test]
fn the_fast_walker_agrees_with_walkdir() {
    let t = common::Tree::new();
    build_hostile(&t);
    for i in 0..300 {
        t.file(format!("/srv/wide/{}/{}.dat", i % 17, i).as_bytes(), &vec![b'z'; i % 97]);
    }
    t.file(b"/srv/a/b/c/d/e/f/g/h", b"deep");
    let (json, _) = common::audit_json(t.root(), &["--flat", "--threads", "2"]);
    assert_eq!(show(&flat_paths(&json)), show(&walkdir_listing(t.root())));
}

#[test]
fn serial_and_parallel_walks_give_identical_reports() {
    let t = common::Tree::new();
    build_hostile(&t);
    for i in 0..500 {
        t.file(format!("/var/lib/app/{}/{}/f", i % 7, i % 31).as_bytes(), &vec![b'q'; i]);
    }
    t.file(b"/var/lib/claimed/x", b"x").file(b"/home/u/.cache/c", b"c").file(b"/home/u/keep/k", b"k");
    let rules = ["--keep", "/var/lib/claimed", "--ignore", "/home/*/.cache", "--keep", "/home/u/keep"];
    for flat in [false, true] {
        let mut reports = Vec::new();
        for threads in ["1", "2", "7"] {
            let mut args = rules.to_vec();
            args.extend(["--threads", threads]);
            if flat {
                args.push("--flat");
            }
            let (mut json, _) = common::audit_json(t.root(), &args);
            for volatile in ["duration_seconds", "started_at"] {
                json.as_object_mut().expect("object").remove(volatile);
            }
            reports.push(json);
        }
        assert_eq!(reports[0], reports[1], "1 vs 2 threads (flat: {flat})");
        assert_eq!(reports[0], reports[2], "1 vs 7 threads (flat: {flat})");
    }
}

/// Creates `depth` nested directories named `d` below `top`, without ever
/// using a path longer than one component. Returns the deepest one.
fn deep_chain(top: &std::path::Path, depth: usize) -> OwnedFd {
    let mut fd = rustix::fs::open(top, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).expect("open top");
    for _ in 0..depth {
        rustix::fs::mkdirat(&fd, "d", Mode::RWXU).expect("mkdir d");
        fd = rustix::fs::openat(&fd, "d", OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).expect("open d");
    }
    fd
}

#[test]
fn ten_thousand_deep_beyond_path_max() {
    const DEPTH: usize = 10_000;
    let t = common::Tree::new();
    t.dir(b"/deep");
    let bottom = deep_chain(&t.at(b"/deep"), DEPTH);
    let file =
        rustix::fs::openat(&bottom, "bottom file", OFlags::CREATE | OFlags::WRONLY, Mode::RUSR | Mode::WUSR)
            .expect("create bottom file");
    rustix::io::write(&file, b"0123456789").expect("write");

    // Grouped: one row counting every level. Ignoring the deepest file
    // (a 20 KB path) makes the walk report that exact path too.
    let mut deepest = b"/deep".to_vec();
    for _ in 0..DEPTH {
        deepest.extend_from_slice(b"/d");
    }
    deepest.extend_from_slice(b"/bottom file");
    assert!(deepest.len() > 4096 * 4);
    let out = common::run([
        OsStr::new("audit"),
        OsStr::new("--root"),
        t.root().as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
        OsStr::new("--ignore"),
        OsStr::from_bytes(&deepest),
        OsStr::new("--verdict"),
        OsStr::new("ignored"),
    ]);
    let json = common::parse_json(&out);
    assert_eq!(json["errors"], Value::Array(vec![]), "no error on long paths");
    let rows = common::findings(&json);
    assert_eq!(rows.len(), 1, "only ignored rows are shown");
    assert_eq!(rows[&deepest]["verdict"], "ignored");
    // /deep and every level only hold the ignored file: structure.
    assert_eq!(json["totals"]["structure"]["findings"].as_u64(), Some(DEPTH as u64 + 1));
    assert_eq!(json["totals"]["unclaimed"]["findings"].as_u64(), Some(0));

    // Without the rule: one row, every level and the file counted.
    let (json, _) = common::audit_json(t.root(), &["--threads", "2"]);
    let rows = common::findings(&json);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[&b"/deep"[..]]["entries"].as_u64(), Some(DEPTH as u64 + 2));
    assert_eq!(rows[&b"/deep"[..]]["size"].as_u64(), Some(10));
}

#[test]
fn a_hundred_thousand_entries_in_one_directory() {
    const N: usize = 100_000;
    let t = common::Tree::new();
    t.dir(b"/wide");
    let dir =
        rustix::fs::open(t.at(b"/wide"), OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).expect("open");
    for i in 0..N {
        rustix::fs::openat(&dir, format!("entry-{i:06}"), OFlags::CREATE | OFlags::WRONLY, Mode::RUSR)
            .expect("create");
    }
    let (json, _) = common::audit_json(t.root(), &[]);
    assert_eq!(common::findings(&json)[&b"/wide"[..]]["entries"].as_u64(), Some(N as u64 + 1));
    let (json, _) = common::audit_json(t.root(), &["--flat", "--keep", "/wide/entry-050000"]);
    let rows = common::findings(&json);
    // Every entry its own row; the claimed one is broken, /wide holds a claim.
    assert_eq!(rows.len(), N + 1);
    assert_eq!(rows[&b"/wide"[..]]["verdict"], "structure");
    assert_eq!(rows[&b"/wide/entry-050000"[..]]["verdict"], "broken");
    assert_eq!(rows[&b"/wide/entry-099999"[..]]["verdict"], "unclaimed");
}

#[test]
fn few_descriptors_and_paths_beyond_path_max() {
    // A 3,000-deep chain with a sibling at every level keeps many parents
    // waiting; with 40 descriptors allowed the walk must reopen directories
    // from the root, by path, in chunks shorter than PATH_MAX.
    const DEPTH: usize = 3000;
    let t = common::Tree::new();
    t.dir(b"/deep");
    let mut fd =
        rustix::fs::open(t.at(b"/deep"), OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).expect("open");
    for _ in 0..DEPTH {
        rustix::fs::mkdirat(&fd, "sibling", Mode::RWXU).expect("mkdir sibling");
        rustix::fs::mkdirat(&fd, "d", Mode::RWXU).expect("mkdir d");
        fd = rustix::fs::openat(&fd, "d", OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).expect("open d");
    }
    drop(fd);
    for threads in ["1", "2"] {
        let out = std::process::Command::new("sh")
            .args(["-c", "ulimit -n 40 && exec \"$0\" \"$@\""])
            .arg(common::bin())
            .args(["audit", "--root"])
            .arg(t.root())
            .args(["--format", "json", "--threads", threads])
            .output()
            .expect("run");
        let json = common::parse_json(&out);
        assert_eq!(json["errors"], Value::Array(vec![]), "threads {threads}");
        let rows = common::findings(&json);
        assert_eq!(rows[&b"/deep"[..]]["entries"].as_u64(), Some(2 * DEPTH as u64 + 1), "threads {threads}");
    }
}
