//! `darlings restore` of a chain of directories far deeper than the open
//! files a process may hold: a user can make their own home 5,000 levels
//! deep, and it must still come back, under `ulimit -n 64`. Restore keeps
//! a fixed number of descriptors open whatever the depth: the path down
//! (the archive's directories, the parents it makes), the copy of a
//! subtree, its measure, and the removal of what `--force` replaced.
//! Every level comes back as in the archive: owner, mode, times.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod rollback_common;

/// Levels of `d` below `/home/u`; the restored file's path is ~10 KB,
/// beyond `PATH_MAX` (and within what one argument may hold).
const DEPTH: usize = 5000;

/// A root whose `/home/u` holds `DEPTH` nested `d`s and a file at the
/// bottom; some levels with owners, modes and times of their own. The
/// blank state has no `/home`. After the rollback the root is blank and
/// `$ARCHIVE` holds the old root. `levels BASE` prints, for `home`, `u`,
/// every `d` and the file below BASE, one line each: `depth uid:gid mode
/// mtime` (and the file's content), walking by descriptor (the path is
/// too long to name).
const SETUP: &str = r#"
set -u
cd "$WORK"
truncate -s 300M fs.img
mkfs.btrfs -q fs.img >/dev/null
mkdir m && mount -o loop,noatime fs.img m
btrfs -q subvolume create m/root
mkdir -p m/root/etc
btrfs -q subvolume snapshot -r m/root m/root-blank
mkdir -p m/root/home/u && chown 1000:100 m/root/home/u && chmod 0711 m/root/home/u
# The chain, by descriptor (a shell's `cd` that deep costs minutes), then
# owners, modes and times of some levels, once everything below is made.
python3 - m/root/home/u <<'PY'
import os, sys
depth = int(os.environ["DEPTH"])
def down(top):
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for level in range(1, depth + 1):
        yield fd, level
        sub = os.open("d", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        os.close(fd)
        fd = sub
    yield fd, depth + 1
for fd, level in down(sys.argv[1]):
    if level <= depth:
        os.mkdir("d", 0o755, dir_fd=fd)
    else:
        f = os.open("file", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd)
        os.write(f, b"deep\n")
        os.close(f)
marks = {1: (1000, 100, 0o750), 2500: (1002, 102, 0o2751), 4999: (1001, 101, 0o705), 5000: (1003, 103, 0o710)}
for fd, level in down(sys.argv[1]):
    if level - 1 in marks:
        uid, gid, mode = marks[level - 1]
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        os.utime(fd, ns=(1_000_000_000 * (level - 1) + 7, 981_173_106_123_456_789 + level - 1))
PY
$D mark --mountpoint m > /dev/null
$D rollback --mountpoint m --yes --force > "$OUT/rollback.out" 2>&1 || { cat "$OUT/rollback.out" >&2; exit 1; }
ARCHIVE=m/old_roots/$(ls m/old_roots)
levels() {
  python3 - "$1" <<'PY'
import os, stat, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
names = ["home", "u"] + ["d"] * int(os.environ["DEPTH"])
for depth, name in enumerate(names):
    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    print(depth, f"{st.st_uid}:{st.st_gid}", oct(stat.S_IMODE(st.st_mode)), st.st_mtime_ns)
    sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
    os.close(fd)
    fd = sub
st = os.stat("file", dir_fd=fd, follow_symlinks=False)
content = os.read(os.open("file", os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd), 100).decode()
print("file", f"{st.st_uid}:{st.st_gid}", oct(stat.S_IMODE(st.st_mode)), st.st_mtime_ns, repr(content))
PY
}
# `low NAME ARGS…`: darlings restore ARGS with at most 64 open files; its
# output (the plan lists every level: megabytes), exit code and open
# descriptors kept.
low() {
  name=$1; shift
  bash -c 'ulimit -n 64; exec "$0" restore --mountpoint m --root m/root "$@"' "$D" "$@" \
    > "$OUT/$name.out" 2>&1 < /dev/null
  echo $? > "$OUT/$name.code"
}
FILE=/home/u$(printf '/d%.0s' $(seq 1 "$DEPTH"))/file
"#;

struct Run {
    _work: tempfile::TempDir,
    out: std::path::PathBuf,
}

impl Run {
    fn text(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// The end of a restore's output (the plan before it is megabytes).
    fn tail(&self, name: &str) -> String {
        let out = self.text(&format!("{name}.out"));
        let cut = out.len().saturating_sub(1500);
        let cut = (cut..out.len()).find(|&i| out.is_char_boundary(i)).unwrap_or(out.len());
        out[cut..].to_owned()
    }

    /// A restore that went through: exit 0, and its closing line (returned).
    fn restored(&self, name: &str) -> String {
        let tail = self.tail(name);
        assert_eq!(self.text(&format!("{name}.code")).trim(), "0", "{name}: …{tail}");
        let out = self.text(&format!("{name}.out"));
        let last = out.lines().last().unwrap_or_default().to_owned();
        assert!(last.starts_with("restored m/root/home/u/d"), "{name}: …{tail}");
        last
    }
}

fn run(body: &str) -> Run {
    let setup = format!("export DEPTH={DEPTH}\n{SETUP}");
    let (work, out) = rollback_common::scenario(&setup, body);
    Run { _work: work, out }
}

/// The deepest file, with the 5,002 parents the blank root lacks (made,
/// then given their owners, modes and times bottom up); then the top of
/// the chain again with `--force`: a 5,000-deep subtree measured, copied,
/// and the one it replaces removed. Both under `ulimit -n 64`.
#[test]
fn a_chain_deeper_than_the_open_file_limit_is_restored_level_by_level() {
    require_root!();
    require_tool!("mkfs.btrfs", "btrfs-progs");
    require_tool!("python3", "python3-minimal");
    let r = run(r#"
[ "${#FILE}" -gt 4096 ] || exit 1
levels "$ARCHIVE" > "$OUT/archive.levels"
low file "$FILE"
levels m/root > "$OUT/file.levels" || true
low subtree /home/u/d --force
levels m/root > "$OUT/subtree.levels" || true
ls -A m/root m/root/home/u > "$OUT/ls" || true
"#);
    let archive = r.text("archive.levels");
    let lines: Vec<&str> = archive.lines().collect();
    assert_eq!(lines.len(), DEPTH + 3, "home, u, every d and the file");
    // The levels given their own owner and mode (depth counts home as 0).
    assert!(lines[1].starts_with("1 1000:100 0o711 "), "{}", lines[1]);
    assert!(lines[2].starts_with("2 1000:100 0o750 "), "{}", lines[2]);
    assert!(lines[2501].starts_with("2501 1002:102 0o2751 981173106123459289"), "{}", lines[2501]);
    assert!(lines[5000].starts_with("5000 1001:101 0o705 "), "{}", lines[5000]);
    assert!(lines[5001].starts_with("5001 1003:103 0o710 981173106123461789"), "{}", lines[5001]);
    assert!(lines[5002].ends_with(" 'deep\\n'"), "{}", lines[5002]);

    let done = r.restored("file");
    assert!(done.contains("/d/d/file from archive "), "{}", r.tail("file"));
    assert_eq!(done.matches("/d").count(), DEPTH, "{}", r.tail("file"));
    // Every level as in the archive: owner, mode, mtime; the file's content.
    assert!(r.text("file.levels") == archive, "the restored levels differ from the archive's");

    let done = r.restored("subtree");
    assert!(done.ends_with(", in place of what was there"), "{}", r.tail("subtree"));
    // All but /home/u, whose mtime the exchange moved.
    let but_u = |text: &str| text.lines().filter(|l| !l.starts_with("1 ")).collect::<Vec<_>>().join("\n");
    assert!(
        but_u(&r.text("subtree.levels")) == but_u(&archive),
        "the replaced chain differs from the archive's"
    );
    // Nothing left beside it (no staging directory).
    assert_eq!(r.text("ls"), "m/root:\netc\nhome\n\nm/root/home/u:\nd\n");
}
