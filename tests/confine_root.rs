//! Every read inside an audited root stays inside it, and nothing in the
//! root can hang an audit: NixOS links into the store resolve inside the
//! root, a FIFO or device where a configuration file belongs is an error at
//! once, storage roots and diff paths never lead out, and under strace no
//! path outside the root (besides the files named on the command line and
//! what every program loads) is ever opened, stat'ed or written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::ffi::OsStr;
use std::io::{Read, Seek};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Tree;
use serde_json::Value;

/// Longer than any audit of these trees takes: reaching it means a hang.
const HANG: Duration = Duration::from_secs(10);

/// Whether `tool` can run. Under CI a missing tool fails the test; on a
/// developer's machine the test skips itself.
fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{tool} is needed (installed by .ci/run)");
        eprintln!("skipped: {tool} is not installed");
    }
    found
}

struct Ran {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}); stderr: {}", self.stderr);
        })
    }
}

/// Runs `cmd` under `prlimit --as=1G` (a runaway read fails instead of
/// filling the machine's memory), killing it if it is still running after
/// [`HANG`]: that is a hang, and a failure.
fn bounded(program: &str, args: &[&OsStr]) -> Ran {
    assert!(have("prlimit"), "prlimit (util-linux) is needed to bound memory");
    let mut out = tempfile::tempfile().expect("tempfile");
    let mut err = tempfile::tempfile().expect("tempfile");
    let mut child = Command::new("prlimit")
        .arg("--as=1073741824")
        .arg("--")
        .arg(program)
        .args(args)
        .env("D", common::bin())
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(err.try_clone().expect("dup"))
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} {args:?} still ran after {HANG:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (Vec::new(), String::new());
    out.rewind().and_then(|()| out.read_to_end(&mut stdout)).expect("read stdout");
    err.rewind().and_then(|()| err.read_to_string(&mut stderr)).expect("read stderr");
    Ran { code: status.code(), stdout, stderr }
}

fn darlings(args: &[&OsStr]) -> Ran {
    bounded(common::bin(), args)
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// The verdict of the finding at `path`, or of the one it is folded into.
fn verdict(json: &Value, path: &str) -> String {
    let f = common::findings(json);
    let mut at = path.as_bytes();
    loop {
        if let Some(v) = f.get(at) {
            return v["verdict"].as_str().unwrap_or("?").to_owned();
        }
        match at.iter().rposition(|&b| b == b'/') {
            Some(cut) if cut > 0 => at = &at[..cut],
            _ => return format!("no finding; all: {:?}", common::verdicts(json)),
        }
    }
}

/// A NixOS root: `/etc` files are links into the store, absolute, so they
/// only make sense resolved inside the root.
fn nixos_root() -> Tree {
    let t = Tree::new();
    t.file(b"/nix/store/aaaa-x.conf", b"d /var/lib/made-by-tmpfiles 0755 root root -\n")
        .symlink(b"/nix/store/bbbb-tmpfiles.d/x.conf", b"/nix/store/aaaa-x.conf")
        .symlink(b"/nix/store/bbbb-tmpfiles.d/masked.conf", b"/dev/null")
        .symlink(b"/etc/static", b"/nix/store/cccc-etc/etc")
        .symlink(b"/etc/tmpfiles.d", b"/etc/static/tmpfiles.d")
        .symlink(b"/nix/store/cccc-etc/etc/tmpfiles.d", b"/nix/store/bbbb-tmpfiles.d")
        // Masked by the link to /dev/null above.
        .file(b"/usr/lib/tmpfiles.d/masked.conf", b"d /var/lib/masked 0755 - - -\n")
        .file(b"/nix/store/dddd-clean", b"copied.conf\n")
        .symlink(b"/etc/.clean", b"/nix/store/dddd-clean")
        .file(b"/etc/copied.conf", b"from the configuration")
        .file(b"/etc/local-edit", b"mine")
        .file(b"/nix/store/eeee-manifest.toml", b"ignore = [\"/srv\"]\n")
        .symlink(b"/etc/darlings/manifest.toml", b"/nix/store/eeee-manifest.toml")
        .dir(b"/var/lib/made-by-tmpfiles")
        .dir(b"/var/lib/masked")
        .file(b"/srv/cache", b"c");
    t
}

#[test]
fn nixos_links_into_the_store_resolve_inside_the_root() {
    let t = nixos_root();
    let ran = darlings(&[
        os("audit"),
        os("--root"),
        t.root().as_os_str(),
        os("--format"),
        os("json"),
        os("--ignore"),
        os("/nix"),
        os("--ignore"),
        os("/usr"),
        os("--flat"),
    ]);
    let json = ran.json();
    assert_eq!(verdict(&json, "/var/lib/made-by-tmpfiles"), "recreated", "{}", ran.stderr);
    assert_eq!(verdict(&json, "/var/lib/masked"), "unclaimed", "masked by a link to /dev/null");
    assert_eq!(verdict(&json, "/etc/copied.conf"), "recreated", "listed in /etc/.clean");
    assert_eq!(verdict(&json, "/etc/local-edit"), "unclaimed");
    assert_eq!(verdict(&json, "/srv"), "ignored", "the default manifest is a store link");
}

/// Puts a FIFO (or, with `device`, /dev/zero's device number) at `rel`.
fn special(t: &Tree, rel: &[u8], device: bool) {
    use rustix::fs::{FileType, Mode};
    let path = t.at(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let (kind, dev) =
        if device { (FileType::CharacterDevice, rustix::fs::makedev(1, 5)) } else { (FileType::Fifo, 0) };
    rustix::fs::mknodat(rustix::fs::CWD, &path, kind, Mode::from_raw_mode(0o644), dev).expect("mknod");
}

/// Where a configuration file of the root belongs: a FIFO or device there
/// must give an answer at once.
fn special_in_every_config_place(device: bool) {
    let kind = if device { "character device" } else { "FIFO" };
    // The default manifest: the audit cannot know its rules, an error.
    let t = nixos_root();
    std::fs::remove_file(t.at(b"/etc/darlings/manifest.toml")).expect("rm");
    special(&t, b"/etc/darlings/manifest.toml", device);
    let ran = darlings(&[os("audit"), os("--root"), t.root().as_os_str()]);
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(ran.stderr.contains("etc/darlings/manifest.toml"), "{}", ran.stderr);
    assert!(ran.stderr.contains(kind), "{}", ran.stderr);

    // Knowledge files (what NixOS and tmpfiles recreate): the audit goes
    // on without what that one file would say.
    for place in [&b"/etc/.clean"[..], b"/usr/lib/tmpfiles.d/a.conf", b"/nix/store/bbbb-tmpfiles.d/b.conf"] {
        let t = nixos_root();
        let _ = std::fs::remove_file(t.at(place));
        special(&t, place, device);
        let ran = darlings(&[
            os("audit"),
            os("--root"),
            t.root().as_os_str(),
            os("--format"),
            os("json"),
            os("--ignore"),
            os("/nix"),
            os("--ignore"),
            os("/usr"),
            os("--flat"),
        ]);
        let json = ran.json();
        assert!(matches!(ran.code, Some(0..=3)), "{kind} at {place:?}: {:?} {}", ran.code, ran.stderr);
        if place == b"/etc/.clean" {
            // What it lists is unknown: nothing is taken as copied at boot.
            assert_eq!(verdict(&json, "/etc/copied.conf"), "unclaimed", "{kind} at {place:?}");
        } else {
            assert_eq!(verdict(&json, "/var/lib/made-by-tmpfiles"), "recreated", "{kind} at {place:?}");
        }
    }
}

#[test]
fn a_fifo_where_a_config_file_belongs_is_an_error_not_a_hang() {
    special_in_every_config_place(false);
}

#[test]
fn a_device_where_a_config_file_belongs_is_an_error_not_an_endless_read() {
    require_root!();
    special_in_every_config_place(true);
}

#[test]
fn files_named_on_the_command_line_may_be_pipes_but_not_devices() {
    if !have("bash") {
        return;
    }
    let t = Tree::new();
    t.file(b"/var/lib/app/state", b"s");
    let root = t.root().as_os_str();
    // `<(...)` is a pipe: read, within the cap.
    let script = r#"
        exec "$D" audit --root "$1" --format json \
            --manifest <(printf 'keep = ["/var/lib/app"]\n') \
            --impermanence <(printf '{"/persist": {"persistentStoragePath": "/persist", "directories": ["/var/lib/other"], "files": []}}')"#;
    let ran = bounded("bash", &[os("-c"), os(script), os("bash"), root]);
    let json = ran.json();
    assert_eq!(verdict(&json, "/var/lib/app"), "broken", "the piped manifest's claim: {}", ran.stderr);
    assert!(json["missing_claims"].to_string().contains("/var/lib/other"), "{json}");

    // An endless pipe is cut off at the cap.
    let endless = r#"exec "$D" audit --root "$1" --impermanence <(yes '[')"#;
    let ran = bounded("bash", &[os("-c"), os(endless), os("bash"), root]);
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(ran.stderr.contains("larger than"), "{}", ran.stderr);

    // A device or a directory is an error.
    let dir = t.at(b"/var/lib");
    for (flag, file) in [
        ("--manifest", Path::new("/dev/zero")),
        ("--impermanence", Path::new("/dev/zero")),
        ("--preservation", Path::new("/dev/zero")),
        ("--manifest", dir.as_path()),
    ] {
        let ran = darlings(&[os("audit"), os("--root"), root, os(flag), file.as_os_str()]);
        assert_eq!(ran.code, Some(2), "{flag} {file:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(&*file.to_string_lossy()), "{flag} {file:?}: {}", ran.stderr);
        assert!(ran.stderr.contains("not a regular file"), "{flag} {file:?}: {}", ran.stderr);
    }
}

/// A directory beside the audited root holding what must never be read.
fn outside(t: &Tree) -> tempfile::TempDir {
    let parent = t.root().parent().expect("parent");
    let out = tempfile::Builder::new().prefix("darlings-outside").tempdir_in(parent).expect("tempdir");
    std::fs::write(out.path().join("secret"), vec![b's'; 12345]).expect("write");
    std::fs::hard_link(out.path().join("secret"), out.path().join("secret-too")).expect("link");
    std::fs::write(out.path().join("evil.conf"), b"d /var/lib/evil 0755 - - -\n").expect("write");
    out
}

fn name_of(p: &Path) -> &str {
    p.file_name().and_then(OsStr::to_str).expect("utf-8 name")
}

/// Hostile links every way out: absolute, relative with a long `..`
/// chain, onto `/`, and into the directory beside the root.
fn hostile_root(out: &Path) -> Tree {
    let t = nixos_root();
    let out_abs = out.as_os_str().as_bytes();
    let up_out = [&b"../../../../../../../../../.."[..], out_abs].concat();
    t.symlink(b"/escape", b"/")
        .symlink(b"/up", b"../../../../../../../../../..")
        .symlink(b"/out", out_abs)
        .symlink(b"/rel", format!("../{}", name_of(out)).as_bytes())
        .symlink(b"/nix/store/bbbb-tmpfiles.d/out.conf", &[out_abs, b"/evil.conf"].concat())
        .symlink(b"/nix/store/bbbb-tmpfiles.d/up.conf", &[&up_out[..], b"/evil.conf"].concat())
        .symlink(b"/run/tmpfiles.d", out_abs)
        .symlink(b"/usr/local/lib/tmpfiles.d", b"../../../../../../../../..")
        .symlink(b"/hostetc", b"/etc")
        .file(b"/var/lib/app/data", b"d")
        .dir(b"/var/lib/evil");
    std::fs::remove_file(t.at(b"/etc/darlings/manifest.toml")).expect("rm");
    t.file(
        b"/nix/store/ffff-manifest.toml",
        b"keep = [\"/escape/etc/shadow\", \"/up/etc/passwd\", \"/out/secret\", \"/rel/secret\", \"/var/lib/app\"]\n\
          [[precious]]\npath = \"/escape/*/shadow\"\nseverity = \"critical\"\n\
          [[precious]]\npath = \"/out/secre?\"\nseverity = \"critical\"\nfile = true\n",
    )
    .symlink(b"/etc/darlings/manifest.toml", b"/nix/store/ffff-manifest.toml");
    t
}

#[test]
fn storage_roots_are_opened_inside_the_root() {
    let t = Tree::new();
    let out = outside(&t);
    let out_abs = out.path().as_os_str().as_bytes();
    t.symlink(b"/persist", out_abs)
        .symlink(b"/persist-rel", format!("../{}", name_of(out.path())).as_bytes())
        .symlink(b"/persist-etc", b"/etc")
        .file(b"/etc/stray-in-root", b"x");
    let args = tempfile::tempdir().expect("tempdir");
    let json = args.path().join("persistence.json");
    std::fs::write(
        &json,
        r#"{"/persist": {"persistentStoragePath": "/persist", "directories": ["/var/lib/a"], "files": []},
            "/persist-rel": {"persistentStoragePath": "/persist-rel", "directories": ["/var/lib/b"], "files": []},
            "/persist-etc": {"persistentStoragePath": "/persist-etc", "directories": ["/var/lib/c"], "files": []}}"#,
    )
    .expect("write");
    let ran = darlings(&[
        os("stray"),
        os("--root"),
        t.root().as_os_str(),
        os("--format"),
        os("json"),
        os("--impermanence"),
        json.as_os_str(),
    ]);
    let report = ran.json();
    let found = common::verdicts(&report);
    assert!(found.keys().all(|p| !p.contains("secret")), "read outside the root: {found:?}");
    // `/persist-etc` is a link to /etc *inside* the root.
    assert_eq!(found.get("/persist-etc/stray-in-root").map(String::as_str), Some("unclaimed 1"), "{found:?}");

    // A `..` in a storage path is refused, not followed.
    let dotdot = format!("/../{}", name_of(out.path()));
    std::fs::write(
        &json,
        format!(
            r#"{{"{dotdot}": {{"persistentStoragePath": "{dotdot}", "directories": ["/a"], "files": []}}}}"#
        ),
    )
    .expect("write");
    let ran =
        darlings(&[os("stray"), os("--root"), t.root().as_os_str(), os("--impermanence"), json.as_os_str()]);
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(ran.stderr.contains("storage root") && ran.stderr.contains(".."), "{}", ran.stderr);
    assert!(!String::from_utf8_lossy(&ran.stdout).contains("secret"));
}

fn diff_file(dir: &Path, out: &Path) -> PathBuf {
    let name = name_of(out);
    let lines = [
        "1700000000.0\tM\t/\t/".to_owned(),
        format!("1700000001.0\t+\tF\t/../{name}/secret"),
        format!("1700000002.0\t+\tF\t/../../../../../../..{}/secret-too", out.display()),
        "1700000003.0\t+\tF\t/out/secret".to_owned(),
        "1700000004.0\t+\tF\t/rel/secret-too".to_owned(),
        "1700000005.0\t+\tF\t/escape/etc/passwd".to_owned(),
        "1700000006.0\t+\tF\t/var/lib/app/data".to_owned(),
    ];
    let file = dir.join("diff.zfsdiff");
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");
    file
}

#[test]
fn diff_paths_never_lead_out_of_the_root() {
    let t = Tree::new();
    let out = outside(&t);
    t.symlink(b"/out", out.path().as_os_str().as_bytes())
        .symlink(b"/rel", format!("../{}", name_of(out.path())).as_bytes())
        .symlink(b"/escape", b"/")
        .file(b"/var/lib/app/data", b"d");
    let args = tempfile::tempdir().expect("tempdir");
    let diff = diff_file(args.path(), out.path());
    let ran = darlings(&[
        os("audit"),
        os("--zfs-diff"),
        diff.as_os_str(),
        os("--root"),
        t.root().as_os_str(),
        os("--format"),
        os("json"),
        os("--flat"),
    ]);
    // Whether the diff is refused or its odd lines reported, the files
    // outside never show: not their size, not their link count.
    assert!(matches!(ran.code, Some(0..=3)), "{}", ran.stderr);
    if let Ok(json) = serde_json::from_slice::<Value>(&ran.stdout) {
        for f in json["findings"].as_array().expect("findings") {
            assert_ne!(f["size"], 12345, "the size of a file outside the root: {f}");
        }
        assert_eq!(verdict(&json, "/var/lib/app/data"), "unclaimed");
    }
}

// ---- strace: nothing outside the root is touched -------------------------

/// Runs darlings under `strace -f` and returns the violations its log
/// shows (empty: confined). `given` are the files named on the command
/// line.
fn traced(root: &Path, given: &[&Path], args: &[&OsStr]) -> Option<Vec<String>> {
    if !have("strace") {
        return None;
    }
    let logs = tempfile::tempdir().expect("tempdir");
    let log = logs.path().join("strace.log");
    let mut all: Vec<&OsStr> = vec![
        os("-f"),
        os("-y"),
        os("-s"),
        os("65535"),
        os("-e"),
        os("trace=%file"),
        os("-o"),
        log.as_os_str(),
    ];
    all.push(os(common::bin()));
    all.extend_from_slice(args);
    // From a directory that is not the root: a relative lookup against
    // the working directory would show as one outside it.
    let ran = {
        let mut cmd = Command::new("strace");
        // Cargo's LD_LIBRARY_PATH would send the loader through target/.
        cmd.args(&all)
            .current_dir(logs.path())
            .env_remove("LD_LIBRARY_PATH")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn strace");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if start.elapsed() > HANG * 3 {
                let _ = child.kill();
                let _ = child.wait();
                panic!("darlings {args:?} under strace still ran after {:?}", HANG * 3);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(ran.code().is_some(), "darlings was killed under strace");
    let text = std::fs::read_to_string(&log).expect("strace log");
    assert!(text.contains("openat2("), "strace saw no lookup in the root:\n{text}");
    let root = std::fs::canonicalize(root).expect("canonical root");
    let given: Vec<PathBuf> = given.iter().map(|g| std::fs::canonicalize(g).expect("canonical")).collect();
    Some(check_log(&text, Path::new(common::bin()), &root, &given))
}

/// Calls that write: an audit makes none.
const WRITES: &[&str] = &[
    "creat",
    "mkdir",
    "mkdirat",
    "unlink",
    "unlinkat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "chmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchownat",
    "lchown",
    "truncate",
    "utimensat",
    "utimes",
    "utime",
    "mknod",
    "mknodat",
    "mount",
    "umount2",
    "setxattr",
    "lsetxattr",
    "removexattr",
    "lremovexattr",
    "open_tree",
    "move_mount",
];

fn check_log(text: &str, program: &Path, root: &Path, given: &[PathBuf]) -> Vec<String> {
    let pids: Vec<&str> = text.lines().filter_map(|l| l.split(' ').next()).collect();
    let ok = |p: &Path| p == program || allowed(p, root, given, &pids);
    let mut bad = Vec::new();
    for line in text.lines() {
        let Some((_, call)) = line.split_once(' ') else { continue };
        let call = call.trim_start();
        // What a call returned: `= 5</real/path>` names the file opened,
        // every link resolved.
        if let Some(opened) = returned_path(call) {
            if !ok(&opened) {
                bad.push(format!("opened {}: {line}", opened.display()));
            }
        }
        if call.starts_with("<...") || call.starts_with("+++") || call.starts_with("---") {
            continue;
        }
        let Some((name, args)) = call.split_once('(') else { continue };
        if WRITES.contains(&name)
            || (name.starts_with("open")
                && ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"].iter().any(|f| args.contains(f)))
        {
            bad.push(format!("writes: {line}"));
        }
        let Some((dir, path)) = path_argument(args) else { continue };
        let full = if path.starts_with('/') {
            PathBuf::from(&path)
        } else {
            match &dir {
                Some(dir) if path.is_empty() => dir.clone(),
                Some(dir) => dir.join(&path),
                None => continue,
            }
        };
        let full = lexical(&full);
        if !ok(&full) {
            bad.push(format!("looks up {}: {line}", full.display()));
            continue;
        }
        // Below the root, a lookup the kernel does not confine must not
        // pass through a symlink (a link's target means the audited system's
        // root, not this machine's).
        let confined =
            name == "openat2" && ["RESOLVE_IN_ROOT", "RESOLVE_BENEATH"].iter().any(|f| args.contains(f));
        if confined || !full.starts_with(root) || full == root {
            continue;
        }
        let follows_last = !(name.starts_with("readlink")
            || name == "lstat"
            || args.contains("AT_SYMLINK_NOFOLLOW")
            || args.contains("O_NOFOLLOW")
            || path.is_empty());
        let below: Vec<_> = full.strip_prefix(root).expect("below").components().collect();
        let mut at = root.to_path_buf();
        for (i, comp) in below.iter().enumerate() {
            at.push(comp);
            let last = i + 1 == below.len();
            if (!last || follows_last)
                && std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink())
            {
                bad.push(format!("follows the symlink {}: {line}", at.display()));
                break;
            }
        }
    }
    bad
}

fn allowed(p: &Path, root: &Path, given: &[PathBuf], pids: &[&str]) -> bool {
    let s = p.to_string_lossy();
    let lib = ["/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/"].iter().any(|d| s.starts_with(d))
        && p.file_name().is_some_and(|n| n.to_string_lossy().contains(".so"));
    p.starts_with(root)
        || root.starts_with(p)
        || given.iter().any(|g| g == p || g.starts_with(p))
        || lib
        || ["/etc/ld.so.cache", "/etc/ld.so.preload"].contains(&&*s)
        || ["/proc/self/", "/proc/thread-self/", "/sys/fs/cgroup/", "/sys/devices/system/cpu/"]
            .iter()
            .any(|d| s.starts_with(d))
        || pids.iter().any(|pid| s.starts_with(&format!("/proc/{pid}/")))
}

/// `...) = 5</path>`: the path of a returned descriptor.
fn returned_path(call: &str) -> Option<PathBuf> {
    let (_, ret) = call.rsplit_once(") = ")?;
    let start = ret.find('<')?;
    let end = ret.rfind('>')?;
    let inner = ret.get(start + 1..end)?;
    inner.starts_with('/').then(|| PathBuf::from(inner.trim_end_matches(" (deleted)")))
}

/// The first string argument of a call and the directory it is relative
/// to (the `N</dir>` or `AT_FDCWD</cwd>` before it).
fn path_argument(args: &str) -> Option<(Option<PathBuf>, String)> {
    let quote = args.find('"')?;
    let before = &args[..quote];
    let dir = match (before.find('<'), before.rfind('>')) {
        (Some(a), Some(b)) if a < b => Some(PathBuf::from(&before[a + 1..b])),
        _ => None,
    };
    let mut out = Vec::new();
    let mut bytes = args[quote + 1..].bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'"' => break,
            b'\\' => match bytes.next()? {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'x' => {
                    let hex = [bytes.next()?, bytes.next()?];
                    out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
                }
                d @ b'0'..=b'7' => {
                    let mut v = u32::from(d - b'0');
                    for _ in 0..2 {
                        v = v * 8 + u32::from(bytes.next()? - b'0');
                    }
                    out.push(v as u8);
                }
                other => out.push(other),
            },
            other => out.push(other),
        }
    }
    Some((dir, String::from_utf8_lossy(&out).into_owned()))
}

/// `..` and `.` taken out by the letter (what a lookup that follows no
/// link would reach).
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

fn assert_confined(violations: Option<Vec<String>>) {
    if let Some(v) = violations {
        assert!(v.is_empty(), "reads outside the audited root:\n{}", v.join("\n"));
    }
}

#[test]
fn strace_audit_of_a_hostile_nixos_root() {
    let t = Tree::new();
    let out = outside(&t);
    let t = hostile_root(out.path());
    let args = tempfile::tempdir().expect("tempdir");
    let manifest = args.path().join("given.toml");
    std::fs::write(&manifest, "keep = [\"/rel/secret\", \"/hostetc/passwd\"]\nignore = [\"/up/x\"]\n")
        .expect("write");
    let root = t.root().as_os_str();
    assert_confined(traced(
        t.root(),
        &[&manifest],
        &[
            os("audit"),
            os("--root"),
            root,
            os("--format"),
            os("json"),
            os("--manifest"),
            manifest.as_os_str(),
        ],
    ));
    assert_confined(traced(t.root(), &[], &[os("explain"), os("--root"), root, os("/out/secret")]));
}

#[test]
fn strace_audit_of_hostile_diff_lines() {
    let t = Tree::new();
    let out = outside(&t);
    let t = hostile_root(out.path());
    let args = tempfile::tempdir().expect("tempdir");
    let diff = diff_file(args.path(), out.path());
    assert_confined(traced(
        t.root(),
        &[&diff],
        &[os("audit"), os("--zfs-diff"), diff.as_os_str(), os("--root"), t.root().as_os_str(), os("--flat")],
    ));
}

#[test]
fn strace_stray_with_hostile_storage_roots() {
    let t = Tree::new();
    let out = outside(&t);
    let t = hostile_root(out.path());
    let args = tempfile::tempdir().expect("tempdir");
    let json = args.path().join("persistence.json");
    let storage = |s: &str| {
        format!(r#""{s}": {{"persistentStoragePath": "{s}", "directories": ["/var/lib{s}"], "files": []}}"#)
    };
    let dotdot = format!("/../{}", name_of(out.path()));
    for roots in [
        vec![storage("/out"), storage("/rel"), storage("/escape"), storage("/up"), storage("/hostetc")],
        vec![storage(&dotdot)],
    ] {
        std::fs::write(&json, format!("{{{}}}", roots.join(","))).expect("write");
        assert_confined(traced(
            t.root(),
            &[&json],
            &[os("stray"), os("--root"), t.root().as_os_str(), os("--impermanence"), json.as_os_str()],
        ));
    }
}

#[test]
fn the_log_checker_sees_a_read_outside_the_root() {
    // The checker itself: a program that reads outside, through a link.
    if !have("strace") || !have("cat") {
        return;
    }
    let t = Tree::new();
    let out = outside(&t);
    t.symlink(b"/out", out.path().as_os_str().as_bytes());
    let logs = tempfile::tempdir().expect("tempdir");
    let log = logs.path().join("log");
    let status = Command::new("strace")
        .args(["-f", "-y", "-s", "65535", "-e", "trace=%file", "-o"])
        .arg(&log)
        .arg("cat")
        .arg(t.at(b"/out/evil.conf"))
        .stdout(Stdio::null())
        .status()
        .expect("strace");
    assert!(status.success());
    let root = std::fs::canonicalize(t.root()).expect("canonical");
    let text = std::fs::read_to_string(&log).expect("log");
    let bad = check_log(&text, &which("cat"), &root, &[]);
    assert!(bad.iter().any(|b| b.contains("evil.conf")), "{bad:?}");
}

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .expect("on PATH")
}
