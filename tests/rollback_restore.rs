//! `darlings restore` on a real btrfs (a loop device in a private mount
//! namespace), as root, against a root whose directories other users own:
//! hostile symlinks, `..`, a FIFO and a file where the path goes, each
//! refused or replaced as an entry with nothing outside the root touched;
//! `strace` showing that nothing outside the root is opened for writing;
//! recreated parents and restored entries exactly as in the archive
//! (owner, mode, times, extended attributes, links, nasty names); a dry
//! run that changes nothing and a closed stdout that stops nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod rollback_common;

use std::collections::BTreeMap;
use std::path::PathBuf;

/// An old root in the archive (`m/old_roots/STAMP`, `$ARCHIVE`) holding
/// alice's files with owners, modes, times (atime apart from mtime) and
/// extended attributes of their own, a FIFO, links and a nasty name; the
/// root after the rollback is blank but for `/home/alice`, alice's own.
/// `state` prints everything a refusal must leave alone, `outside`
/// included; `dump BASE REL…` each entry's metadata, `-r` recursively.
const SETUP: &str = r#"
set -u
cd "$WORK"
truncate -s 300M fs.img
mkfs.btrfs -q fs.img >/dev/null
mkdir m outside && mount -o loop,noatime fs.img m
btrfs -q subvolume create m/root
mkdir -p m/root/etc m/root/var/lib m/root/home
btrfs -q subvolume snapshot -r m/root m/root-blank
A=m/root/home/alice
mkdir -p "$A/.config/fish" "$A/.gnupg" m/root/var/lib/app
echo state > m/root/var/lib/app/f1
mkdir -p m/root/srv/data && echo x > m/root/srv/data/x
echo 'set -x EDITOR vi' > "$A/.config/fish/config.fish"
ln -s config.fish "$A/.config/fish/link"
echo key > "$A/.gnupg/private"
ln "$A/.gnupg/private" "$A/.gnupg/hard"
mkfifo "$A/.gnupg/S.gpg-agent"
NASTY=$(printf 'new\nline \033[31mred\\')
mkdir "$A/.gnupg/$NASTY" && printf x > "$A/.gnupg/$NASTY/$(printf 'tab\there')"
chown -R 1000:100 "$A"
chmod 0751 "$A/.config"; chmod 0700 "$A/.config/fish" "$A/.gnupg"; chmod 0640 "$A/.config/fish/config.fish"
chmod 0600 "$A/.gnupg/private"; chmod 2750 "$A/.gnupg/$NASTY"; chmod 0620 "$A/.gnupg/S.gpg-agent"
python3 - "$A" <<'PY'
import os, sys
a = sys.argv[1]
for rel in [".config", ".config/fish", ".config/fish/config.fish", ".gnupg", ".gnupg/private"]:
    os.setxattr(os.path.join(a, rel), "user.darlings-test", ("on " + rel).encode())
PY
find "$A" -depth -exec touch -h -m -d '2001-02-03 04:05:06.123456789' {} + -exec touch -h -a -d '2002-03-04 05:06:07.5' {} +
$D mark --mountpoint m > /dev/null
$D rollback --mountpoint m --yes --force > "$OUT/rollback.out" 2>&1 || { cat "$OUT/rollback.out" >&2; exit 1; }
ARCHIVE=m/old_roots/$(ls m/old_roots)
mkdir "$A" && chown 1000:100 "$A" && chmod 0711 "$A"
state() { find m outside -printf '%p|%y|%s|%m|%U:%G|%i|%T@|%l\n' | LC_ALL=C sort; }
# Runs darlings as NAME (bounded: a FIFO must never block it), keeping its
# output, exit code, and whether anything changed.
check() {
  name=$1; shift
  before=$(state)
  timeout 60 "$@" > "$OUT/$name.out" 2>&1 < /dev/null
  echo $? > "$OUT/$name.code"
  if [ "$(state)" = "$before" ]; then echo same; else echo changed; fi > "$OUT/$name.state"
}
dump() {
  python3 - "$@" <<'PY'
import hashlib, os, stat, sys
args = sys.argv[1:]
deep = args[0] == "-r"
base, rels = (args[1], args[2:]) if deep else (args[0], args[1:])
def line(rel):
    p = os.path.join(base, rel)
    st = os.lstat(p)
    kind = stat.S_IFMT(st.st_mode)
    size = "-" if stat.S_ISDIR(st.st_mode) else st.st_size
    extra = os.readlink(p) if stat.S_ISLNK(st.st_mode) else ""
    if stat.S_ISREG(st.st_mode):
        extra = hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]
    xattrs = "" if stat.S_ISLNK(st.st_mode) else ",".join(
        n + "=" + os.getxattr(p, n).decode() for n in sorted(os.listxattr(p)))
    print(ascii(rel), kind, f"{st.st_uid}:{st.st_gid}", oct(stat.S_IMODE(st.st_mode)), st.st_nlink, size,
          st.st_mtime_ns, st.st_atime_ns, ascii(extra), xattrs, sep="|")
for rel in rels:
    line(rel)
    if deep and os.path.isdir(os.path.join(base, rel)) and not os.path.islink(os.path.join(base, rel)):
        for dirpath, dirs, files in os.walk(os.path.join(base, rel)):
            for n in sorted(dirs + files):
                line(os.path.relpath(os.path.join(dirpath, n), base))
PY
}
"#;

struct Run {
    _work: tempfile::TempDir,
    out: PathBuf,
}

impl Run {
    fn text(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn out(&self, name: &str) -> String {
        self.text(&format!("{name}.out"))
    }

    fn code(&self, name: &str) -> i32 {
        self.text(&format!("{name}.code")).trim().parse().expect("a code")
    }

    fn changed(&self, name: &str) -> bool {
        self.text(&format!("{name}.state")).trim() == "changed"
    }

    /// A refusal: exit 2, its message, and nothing changed anywhere.
    fn refused(&self, name: &str, says: &[&str]) {
        let out = self.out(name);
        assert_eq!(self.code(name), 2, "{name}: {out}");
        assert!(!self.changed(name), "{name} changed something: {out}");
        for s in says {
            assert!(out.contains(s), "{name} does not say {s:?}:\n{out}");
        }
    }

    /// A restore that went through: exit 0, something changed.
    fn restored(&self, name: &str) {
        let out = self.out(name);
        assert_eq!(self.code(name), 0, "{name}: {out}");
        assert!(self.changed(name), "{name}: {out}");
        assert!(out.contains("restored "), "{name}: {out}");
    }
}

/// Runs SETUP then `body` in bash, in a private mount namespace; `$D` is
/// darlings, `$OUT` collects what the checks read.
fn run(body: &str) -> Run {
    let (work, out) = rollback_common::scenario(SETUP, body);
    Run { _work: work, out }
}

macro_rules! require_all {
    () => {
        require_root!();
        require_tool!("mkfs.btrfs", "btrfs-progs");
        require_tool!("python3", "python3-minimal");
    };
}

#[test]
fn symlinks_dots_and_fifos_on_the_root_never_lead_a_write_outside_it() {
    require_all!();
    let r = run(r#"
R="--mountpoint m --root m/root"
# A parent symlinked out of the root (alice owns /home/alice: she points ~/.config anywhere).
ln -s "$WORK/outside" "$A/.config"
check parent-link $D restore $R /home/alice/.config/fish/config.fish
rm "$A/.config"
mv m/root/var m/root/var.real && ln -s "$WORK/outside" m/root/var
check var-link $D restore $R /var/lib/app/f1
rm m/root/var && mv m/root/var.real m/root/var
# The destination itself a symlink (~/.gnupg -> somewhere alice wants root to write).
echo precious > outside/target
mkdir -p m/root/var/lib/app && ln -s "$WORK/outside/target" m/root/var/lib/app/f1
check dest-link $D restore $R /var/lib/app/f1
check dest-link-force $D restore $R /var/lib/app/f1 --force
cat m/root/var/lib/app/f1 > "$OUT/f1.after"
ln -s "$WORK/outside" "$A/.gnupg"
check dir-link-force $D restore $R /home/alice/.gnupg --force
# Dots are refused, not resolved.
check dots $D restore $R /var/lib/app/../../../outside/x
check dot $D restore $R /var/./lib/app/f1
# A FIFO at the destination: never opened (it would block), replaced as an entry with --force.
rm m/root/var/lib/app/f1 && mkfifo m/root/var/lib/app/f1
check fifo $D restore $R /var/lib/app/f1
check fifo-force $D restore $R /var/lib/app/f1 --force
stat -c %F m/root/var/lib/app/f1 > "$OUT/fifo.type"
# A file where a directory should be.
mkdir m/root/srv && printf x > m/root/srv/data
check file-in-the-way $D restore $R /srv/data/x
ls -A outside > "$OUT/outside.ls"
cat outside/target > "$OUT/target.after"
"#);
    r.refused(
        "parent-link",
        &["m/root/home/alice/.config is a symlink (-> ", "/outside)", "nothing was changed"],
    );
    r.refused("var-link", &["m/root/var is a symlink", "restore never writes through a link"]);
    r.refused("dest-link", &["m/root/var/lib/app/f1 exists; nothing was copied", "--force"]);
    // With --force the link itself is replaced; its target is never written.
    r.restored("dest-link-force");
    assert!(
        r.out("dest-link-force").contains("replacing the symlink there (-> "),
        "{}",
        r.out("dest-link-force")
    );
    assert_eq!(r.text("f1.after"), "state\n");
    r.restored("dir-link-force");
    r.refused("dots", &["has a `.` or `..` component", "nothing was changed"]);
    r.refused("dot", &["has a `.` or `..` component"]);
    r.refused("fifo", &["exists; nothing was copied"]);
    r.restored("fifo-force");
    assert!(r.out("fifo-force").contains("replacing the FIFO there"), "{}", r.out("fifo-force"));
    assert_eq!(r.text("fifo.type").trim(), "regular file");
    r.refused("file-in-the-way", &["m/root/srv/data is a regular file on the root, not a directory"]);
    // Outside the root: only what the test put there, unchanged.
    assert_eq!(r.text("outside.ls"), "target\n");
    assert_eq!(r.text("target.after"), "precious\n");
}

/// Every path a syscall of `line` writes to, if it writes: names, the
/// directories (`strace -y` annotates a descriptor as `N</path>`) they are
/// looked up in, and what an open opened. Writes are opens with a write
/// flag and every call that makes, removes, renames or changes an entry.
fn written_paths(line: &str) -> Option<Vec<String>> {
    const WRITERS: [&str; 27] = [
        "mkdir",
        "mkdirat",
        "mknod",
        "mknodat",
        "symlink",
        "symlinkat",
        "link",
        "linkat",
        "rename",
        "renameat",
        "renameat2",
        "unlink",
        "unlinkat",
        "rmdir",
        "chmod",
        "fchmodat",
        "fchmodat2",
        "chown",
        "lchown",
        "fchownat",
        "utimensat",
        "setxattr",
        "lsetxattr",
        "removexattr",
        "lremovexattr",
        "truncate",
        "creat",
    ];
    const ON_FD: [&str; 4] = ["fchown", "fchmod", "fsetxattr", "fremovexattr"];
    let call = line.split_once('(')?.0.rsplit(' ').next()?;
    let opens = ["open", "openat", "openat2"].contains(&call);
    let writes = WRITERS.contains(&call)
        || ON_FD.contains(&call)
        || (opens && ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"].iter().any(|f| line.contains(f)));
    if !writes {
        return None;
    }
    // Descriptors among the arguments, and for an open what it opened.
    let args = if opens { line } else { line.rsplit_once(" = ").map_or(line, |(a, _)| a) };
    let mut paths = Vec::new();
    let mut rest = args;
    while let Some(i) = rest.find("</") {
        let end = rest[i..].find('>').map_or(rest.len(), |e| i + e);
        paths.push(rest[i + 1..end].to_owned());
        rest = &rest[end..];
    }
    let mut rest = args;
    while let Some(i) = rest.find("\"/") {
        let end = rest[i + 1..].find('"').map_or(rest.len(), |e| i + 1 + e);
        paths.push(rest[i + 1..end].to_owned());
        rest = &rest[end..];
    }
    Some(paths)
}

#[test]
fn strace_shows_nothing_outside_the_root_opened_for_writing() {
    require_all!();
    require_tool!("strace", "strace");
    let r = run(r#"
realpath m/root > "$OUT/root"
R="--mountpoint m --root m/root"
T="strace -f -y -qq -e trace=%file,fchown,fchmod,fsetxattr,fremovexattr -o"
ln -s "$WORK/outside" "$A/.config"
check parent-link $T "$OUT/parent-link.strace" $D restore $R /home/alice/.config/fish/config.fish
rm "$A/.config"
echo precious > outside/target
mkdir -p m/root/var/lib/app && ln -s "$WORK/outside/target" m/root/var/lib/app/f1
check dest-link $T "$OUT/dest-link.strace" $D restore $R /var/lib/app/f1 --force
ln -s "$WORK/outside" "$A/.gnupg"
check gnupg $T "$OUT/gnupg.strace" $D restore $R /home/alice/.gnupg --force
check config $T "$OUT/config.strace" $D restore $R /home/alice/.config/fish/config.fish
ls -A outside > "$OUT/outside.ls"
"#);
    let root = r.text("root").trim().to_owned();
    assert!(root.ends_with("/m/root"), "{root}");
    let inside = |p: &str| p == root || p.starts_with(&format!("{root}/"));
    for name in ["parent-link", "dest-link", "gnupg", "config"] {
        let trace = r.text(&format!("{name}.strace"));
        let mut writes = Vec::new();
        for line in trace.lines() {
            let Some(paths) = written_paths(line) else { continue };
            // Child processes (btrfs-progs) get /dev/null as stdin.
            let outside: Vec<&String> = paths.iter().filter(|p| !inside(p) && *p != "/dev/null").collect();
            assert!(outside.is_empty(), "{name}: written outside the root {root}: {line}");
            if !paths.iter().all(|p| p == "/dev/null") {
                writes.push(line.to_owned());
            }
        }
        if name == "parent-link" {
            r.refused(name, &["is a symlink"]);
            assert!(writes.is_empty(), "a refusal writes nothing: {writes:#?}");
        } else {
            r.restored(name);
            // The trace did see the restore write (inside the root).
            for call in ["mkdirat(", "renameat2("] {
                assert!(writes.iter().any(|l| l.contains(call)), "{name}: no {call} in {writes:#?}");
            }
        }
    }
    assert_eq!(r.text("outside.ls"), "target\n");
}

/// (path, line) of a `dump`, with the archive's or the root's prefix cut.
fn dump_lines(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|l| {
            let (path, rest) = l.split_once('|').expect("a dump line");
            (path.to_owned(), rest.to_owned())
        })
        .collect()
}

#[test]
fn recreated_parents_and_restored_entries_are_as_in_the_archive() {
    require_all!();
    let r = run(r#"
R="--mountpoint m --root m/root"
stat -c '%u:%g %a' "$A" > "$OUT/home.before"
check config $D restore $R /home/alice/.config/fish/config.fish
check gnupg $D restore $R /home/alice/.gnupg
dump "$ARCHIVE/home/alice" .config .config/fish > "$OUT/parents.archive"
dump "$A" .config .config/fish > "$OUT/parents.root"
{ dump "$ARCHIVE/home/alice" .config/fish/config.fish; dump -r "$ARCHIVE/home/alice" .gnupg; } > "$OUT/entries.archive"
{ dump "$A" .config/fish/config.fish; dump -r "$A" .gnupg; } > "$OUT/entries.root"
ls -A "$A" "$A/.config/fish" > "$OUT/ls"
stat -c '%u:%g %a' "$A" > "$OUT/home.after"
"#);
    r.restored("config");
    r.restored("gnupg");
    let out = r.out("config");
    // The plan says what is made, with what owner and mode.
    assert!(
        out.contains("make directory  m/root/home/alice/.config  (1000:100 0751, as in the archive)"),
        "{out}"
    );
    assert!(out.contains("make directory  m/root/home/alice/.config/fish  (1000:100 0700"), "{out}");
    assert!(
        out.contains("copy file m/root/home/alice/.config/fish/config.fish (17 B; 1000:100 0640)"),
        "{out}"
    );

    // Parents: owner, mode, times and extended attributes of the archive's
    // directories (not root:root 0755).
    let (archive, root) = (dump_lines(&r.text("parents.archive")), dump_lines(&r.text("parents.root")));
    assert_eq!(archive.len(), 2);
    assert_eq!(root, archive);
    assert!(root["'.config'"].contains("|1000:100|0o751|"), "{root:?}");
    assert!(root["'.config'"].contains("user.darlings-test=on .config"), "{root:?}");
    assert!(root["'.config/fish'"].contains("|0o700|"), "{root:?}");
    // The entries, every one: file, directory, symlink, FIFO, hard link,
    // nasty names, setgid, times to the nanosecond, extended attributes.
    let (archive, root) = (dump_lines(&r.text("entries.archive")), dump_lines(&r.text("entries.root")));
    assert_eq!(archive.len(), 7, "{archive:#?}");
    assert_eq!(root, archive);
    assert!(root["'.gnupg'"].contains("|1000:100|0o700|"), "{root:?}");
    assert!(root["'.gnupg/private'"].contains("|1000:100|0o600|2|"), "hard-linked: {root:?}");
    assert!(root["'.gnupg/private'"].contains("|981173106123456789|1015218367500000000|"), "{root:?}");
    assert!(root.keys().any(|k| k.contains("new\\nline \\x1b[31mred\\\\/tab\\there")), "{root:?}");
    // Only what was asked for; nothing left behind; the existing home as it was.
    assert_eq!(
        r.text("ls"),
        "m/root/home/alice:\n.config\n.gnupg\n\nm/root/home/alice/.config/fish:\nconfig.fish\n"
    );
    assert_eq!(r.text("home.after"), r.text("home.before"));
}

#[test]
fn a_dry_run_changes_nothing_and_a_closed_stdout_stops_nothing() {
    require_all!();
    let r = run(r#"
R="--mountpoint m --root m/root"
check dry-run $D restore $R /home/alice/.config/fish/config.fish --dry-run
# `closed COMMAND…`: stdout a pipe nobody reads any more.
printf '%s\n' '#!/usr/bin/env python3' 'import os, subprocess, sys' \
  'r, w = os.pipe(); os.close(r); sys.exit(subprocess.call(sys.argv[1:], stdout=w))' > closed
chmod +x closed
check closed ./closed $D restore $R /home/alice/.config/fish/config.fish
cat "$A/.config/fish/config.fish" > "$OUT/restored"
check closed-refused ./closed $D restore $R /home/alice/.config/fish/config.fish
"#);
    let out = r.out("dry-run");
    assert_eq!(r.code("dry-run"), 0, "{out}");
    assert!(!r.changed("dry-run"), "{out}");
    assert!(out.contains("make directory  m/root/home/alice/.config  (1000:100 0751"), "{out}");
    assert!(out.ends_with("Dry run: nothing was copied.\n"), "{out}");
    // Nothing printed, and still restored, exit 0 (no panic: 101).
    assert_eq!(r.code("closed"), 0, "{}", r.out("closed"));
    assert!(r.changed("closed"));
    assert_eq!(r.text("restored"), "set -x EDITOR vi\n");
    assert_eq!(r.code("closed-refused"), 2, "{}", r.out("closed-refused"));
    assert!(r.out("closed-refused").contains("exists; nothing was copied"));
}

#[test]
fn the_strace_reader_sees_paths_and_descriptors() {
    let w = |l: &str| written_paths(l);
    assert_eq!(
        w(
            r#"123 openat(4</r/m/root/var>, "f", O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0600) = 5</r/m/root/var/f>"#
        ),
        Some(vec!["/r/m/root/var".to_owned(), "/r/m/root/var/f".to_owned()])
    );
    assert_eq!(w(r#"openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3</etc/passwd>"#), None);
    assert_eq!(w(r#"mkdir("/tmp/outside/lib", 0777) = 0"#), Some(vec!["/tmp/outside/lib".to_owned()]));
    assert_eq!(
        w(r#"renameat2(5</a/s>, "x", 4</a>, "x", RENAME_NOREPLACE) = 0"#),
        Some(vec!["/a/s".to_owned(), "/a".to_owned()])
    );
    assert_eq!(
        w(r#"openat2(3</r>, "x", {flags=O_RDONLY|O_CLOEXEC, resolve=RESOLVE_NO_SYMLINKS}, 24) = 4</r/x>"#),
        None
    );
}
