//! The end-to-end harness: temp trees with any bytes in their names, the
//! real binary, JSON reports read back path by path.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine;
use serde_json::Value;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_darlings")
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A test cannot run its real system (`what` says which). Under CI
/// (`CI` set, as `.ci/run` runs) that is a failure: a skipped test must
/// never count as a pass there. Elsewhere the test is skipped, said on
/// stderr and appended to the file `DARLINGS_SKIP_LOG` names (tests/all.sh
/// prints that list at the end).
pub fn unavailable(what: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("cannot run under CI: {what}");
    }
    eprintln!("skipped: {what}");
    if let Some(log) = std::env::var_os("DARLINGS_SKIP_LOG") {
        use std::io::Write;
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "{test}: {what}");
        }
    }
}

/// Whether a program can be run (`PROGRAM --version`).
pub fn have(program: &str) -> bool {
    Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Skips (fails under CI) a test whose program is not installed.
#[macro_export]
macro_rules! require_tool {
    ($program:expr, $package:expr) => {
        if !common::have($program) {
            common::unavailable(&format!("{} is not installed (Debian package {})", $program, $package));
            return;
        }
    };
}

/// Skips (fails under CI) a test that needs root (mounts, device nodes,
/// other users).
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() {
            common::unavailable("needs root (mounts, device nodes or setpriv)");
            return;
        }
    };
}

pub fn p(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// A temporary tree that the tests audit as a root.
pub struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Tree {
        Tree { dir: tempfile::Builder::new().prefix("darlings-test").tempdir().expect("tempdir") }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn at(&self, rel: &[u8]) -> PathBuf {
        let rel = rel.strip_prefix(b"/").unwrap_or(rel);
        self.root().join(p(rel))
    }

    pub fn dir(&self, rel: &[u8]) -> &Tree {
        std::fs::create_dir_all(self.at(rel)).expect("mkdir");
        self
    }

    pub fn file(&self, rel: &[u8], content: &[u8]) -> &Tree {
        let path = self.at(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir parent");
        }
        std::fs::write(path, content).expect("write");
        self
    }

    pub fn symlink(&self, rel: &[u8], target: &[u8]) -> &Tree {
        let path = self.at(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir parent");
        }
        std::os::unix::fs::symlink(p(target), path).expect("symlink");
        self
    }

    pub fn mode(&self, rel: &[u8], mode: u32) -> &Tree {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.at(rel), std::fs::Permissions::from_mode(mode)).expect("chmod");
        self
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // Make everything removable again (tests chmod 000 some directories).
        let _ = Command::new("chmod").args(["-R", "u+rwx"]).arg(self.root()).status();
    }
}

/// Runs the binary with `args`; stdout and stderr captured.
pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(bin()).args(args).env_remove("NO_COLOR").stdin(Stdio::null()).output().expect("run darlings")
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

/// `darlings audit --root ROOT --format json ARGS…`, parsed.
pub fn audit_json(root: &Path, args: &[&str]) -> (Value, i32) {
    let mut all: Vec<&OsStr> = vec![OsStr::new("audit"), OsStr::new("--root"), root.as_os_str()];
    all.extend(["--format", "json"].iter().map(OsStr::new));
    all.extend(args.iter().map(OsStr::new));
    let out = run(all);
    let json = parse_json(&out);
    (json, code(&out))
}

pub fn parse_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stderr: {}\nstdout: {}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(2000)])
        )
    })
}

/// The exact bytes of a JSON path (`path_base64` when present).
pub fn path_of(v: &Value, key: &str) -> Vec<u8> {
    match v.get(format!("{key}_base64")).and_then(Value::as_str) {
        Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).expect("base64"),
        None => v[key].as_str().expect("path string").as_bytes().to_vec(),
    }
}

/// Findings by exact path.
pub fn findings(json: &Value) -> BTreeMap<Vec<u8>, Value> {
    json["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| (path_of(f, "path"), f.clone()))
        .collect()
}

/// (verdict, entries) of each finding, by path, as text for readable diffs.
pub fn verdicts(json: &Value) -> BTreeMap<String, String> {
    findings(json)
        .into_iter()
        .map(|(path, f)| {
            let entries = f["entries"].as_u64().map_or("-".to_owned(), |e| e.to_string());
            (
                String::from_utf8_lossy(&path).into_owned(),
                format!("{} {}", f["verdict"].as_str().unwrap_or("?"), entries),
            )
        })
        .collect()
}

pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

/// What every [`in_mount_namespace`] script can call: `persistent NAME
/// DIR` mounts on DIR a filesystem that survives a reboot, as a storage
/// root such as `/persist` is (a tmpfs would not: darlings never counts a
/// claim kept on one). It is an overlay whose layers are directories of
/// this machine's temporary directory, shown in mount descriptions as
/// `overlay NAME`; its layers are removed when the script ends.
const PRELUDE: &str = r#"persistent() {
    _layers=$(mktemp -d "${TMPDIR:-/tmp}/darlings-persistent.XXXXXX")
    mkdir "$_layers/lower" "$_layers/upper" "$_layers/work"
    mount -t overlay "$1" -o "lowerdir=$_layers/lower,upperdir=$_layers/upper,workdir=$_layers/work" "$2"
    printf '%s\n' "$2" > "$_layers/at"
    _persistent="$_persistent $_layers"
}
_persistent=
trap 'for _l in $_persistent; do umount -l "$(cat "$_l/at")" 2>/dev/null || true; rm -rf "$_l"; done' EXIT
"#;

/// Runs a shell script as root in a private mount namespace, so its mounts
/// vanish with it even when the test fails. `$D` is the darlings binary;
/// `persistent NAME DIR` mounts storage that survives a reboot (see
/// [`PRELUDE`]).
pub fn in_mount_namespace(script: &str) -> Output {
    let script = format!("{PRELUDE}{script}");
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-ec", &script])
        .env("D", bin())
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("run unshare")
}

/// The JSON reports of a scenario script that prints `=== NAME` before
/// each one; the script must have succeeded.
pub fn sections(out: &Output) -> Vec<(String, Value)> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "scenario failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
        .split("=== ")
        .skip(1)
        .map(|part| {
            let (name, json) = part.split_once('\n').expect("a name line");
            let parsed = serde_json::from_str(json).unwrap_or_else(|e| {
                panic!("{name}: {e}\n{json}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
            });
            (name.to_owned(), parsed)
        })
        .collect()
}

/// The hostile files tests/vm/zfs-guest.sh creates in /home/u/hostile
/// (the recorded fixture and the guest's results hold them), byte for byte.
pub fn guest_hostile_paths() -> Vec<Vec<u8>> {
    let mut long = b"/home/u/hostile/".to_vec();
    long.extend_from_slice(&[b'n'; 255]);
    [
        &b"with space"[..],
        b"tab\there",
        b"new\nline",
        b"back\\slash",
        b"\\0040 looks escaped",
        b"caf\xe9 latin1",
        b"\xff\xfe",
        b"\x1b[31mred\x1b[0m",
        "r\u{e9}sum\u{e9} \u{65e5}\u{672c}\u{8a9e}".as_bytes(),
        b"*star?[x]",
    ]
    .iter()
    .map(|n| [&b"/home/u/hostile/"[..], n].concat())
    .chain([long])
    .collect()
}

/// One part of what the ZFS guest brought back (`DARLINGS_ZFS_RESULTS`,
/// set by tests/vm/zfs-suite.sh): the files a scenario wrote, read by name.
pub struct GuestResults(pub PathBuf);

/// The guest's results of scenario `part` (`rollback`, `restore`); `None`,
/// said as [`unavailable`], when the guest did not run.
pub fn guest_results(part: &str) -> Option<GuestResults> {
    match std::env::var_os("DARLINGS_ZFS_RESULTS") {
        Some(dir) => Some(GuestResults(PathBuf::from(dir).join(part))),
        None => {
            unavailable("the ZFS guest's results: run tests/vm/zfs-suite.sh (it boots the guest and sets DARLINGS_ZFS_RESULTS)");
            None
        }
    }
}

impl GuestResults {
    pub fn text(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub fn out(&self, name: &str) -> String {
        self.text(&format!("{name}.out"))
    }

    pub fn code(&self, name: &str) -> i32 {
        self.text(&format!("{name}.code")).trim().parse().expect("a code")
    }
}
