//! What darlings says to a person: each message names the right thing,
//! says its cause once, shows a name escaped once, and every time it
//! prints is one a reader of the format can read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod nix;

fn stderr(args: &[&str]) -> String {
    let out = common::run(args);
    assert_eq!(common::code(&out), 2, "{args:?}");
    String::from_utf8(out.stderr).expect("messages are UTF-8")
}

#[test]
fn nix_expr_names_the_module_it_was_asked_for() {
    for (module, option, other) in [
        ("impermanence", "config.environment.persistence", "preservation"),
        ("preservation", "config.preservation.preserveAt", "impermanence"),
    ] {
        let out = common::run(["nix", "expr", module]);
        assert_eq!(common::code(&out), 0);
        let text = String::from_utf8(out.stdout).expect("utf-8");
        assert!(text.contains(&format!("--apply \"$(darlings nix expr {module})\"")), "{text}");
        assert!(text.contains(option), "{text}");
        assert!(!text.contains(&format!("nix expr {other}")), "{module} speaks of {other}:\n{text}");
        if !nix::available() {
            continue;
        }
        // Still the function: what throws is left out.
        let file = tempfile::NamedTempFile::new().expect("tempfile");
        std::fs::write(file.path(), &text).expect("write");
        let path = file.path().to_str().expect("utf-8");
        let v = nix::eval(&format!("(import {path}) {{ kept = [ 1 ]; gone = throw \"removed option\"; }}"));
        assert_eq!(v, serde_json::json!({ "kept": [1] }));
    }
}

#[test]
fn an_io_error_says_its_cause_once() {
    let err = stderr(&["audit", "--zfs-diff", "/nonexistent-darlings-diff"]);
    assert!(
        err.contains("cannot read zfs diff /nonexistent-darlings-diff: No such file or directory"),
        "{err}"
    );
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
    // The rollback commands' own errors too.
    let err = stderr(&["status", "--device", "/nonexistent-darlings-device"]);
    assert!(err.contains("/nonexistent-darlings-device"), "{err}");
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
}

#[test]
fn names_in_errors_are_escaped_once() {
    let t = common::Tree::new();
    let root = t.root().to_str().expect("utf-8");
    // `\` shows as `\\` (escape's form), once; a terminal control as `\x1B`.
    let name = "/nonexistent-darlings/back\\slash";
    for args in [
        vec!["audit", "--root", name],
        vec!["audit", "--root", root, "--baseline", name],
        vec!["audit", "--root", root, "--manifest", name],
        vec!["audit", "--zfs-diff", name],
        vec!["audit", "--root", root, "--impermanence", name],
        vec!["explain", "--root", root, "back\\slash"],
    ] {
        let err = stderr(&args);
        assert!(err.contains("back\\\\slash"), "{args:?}: {err}");
        assert!(!err.contains("back\\\\\\\\slash"), "escaped twice: {args:?}: {err}");
    }
    let err = stderr(&["audit", "--root", "/nonexistent-darlings/\u{1b}[2Jevil"]);
    assert!(err.contains("/nonexistent-darlings/\\x1B[2Jevil"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[test]
fn explain_calls_a_relative_path_a_path() {
    let t = common::Tree::new();
    let err = stderr(&["explain", "--root", t.root().to_str().expect("utf-8"), "var/lib/x"]);
    assert!(err.contains("explain takes an absolute path"), "{err}");
    assert!(!err.contains("pattern"), "{err}");
}

/// A file's mtime can be any 64-bit number: tmpfs keeps year 300000 and
/// times before year 0 as given. RFC 3339 cannot write them: JSON says
/// `null` and a note says why, the table says so in words.
#[test]
fn times_rfc3339_cannot_write_are_null_with_a_note() {
    require_root!();
    let out = common::in_mount_namespace(
        r#"M=$(mktemp -d); mount -t tmpfs none "$M"
mkdir "$M/srv"; touch "$M/srv/future" "$M/srv/ancient" "$M/srv/now"
touch -m -d @9467000000000 "$M/srv/future"; touch -m -d @-70000000000 "$M/srv/ancient"
echo '=== json'; "$D" audit --root "$M" --flat --format json || true
echo '=== table'; "$D" audit --root "$M" --flat --format table --color never || true"#,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (json, table) = stdout.split_once("=== table\n").expect("two parts");
    let json: serde_json::Value = serde_json::from_str(json.trim_start_matches("=== json\n"))
        .unwrap_or_else(|e| panic!("{e}\n{stdout}"));
    let f = common::findings(&json);
    assert_eq!(f[&b"/srv/future"[..]]["mtime"], serde_json::Value::Null, "{}", f[&b"/srv/future"[..]]);
    assert_eq!(f[&b"/srv/ancient"[..]]["mtime"], serde_json::Value::Null);
    let now = f[&b"/srv/now"[..]]["mtime"].as_str().expect("a date");
    assert!(now.len() == 20 && now.ends_with('Z'), "{now}");
    let notes: Vec<&str> = json["notes"].as_array().unwrap().iter().filter_map(|n| n.as_str()).collect();
    assert!(
        notes
            .iter()
            .any(|n| n
                .starts_with("2 findings have a modification or change time before year 0000 or after 9999")),
        "{notes:?}"
    );
    let row = |path: &str| table.lines().find(|l| l.contains(&format!(" {path} "))).unwrap_or("").to_owned();
    assert!(row("/srv/future").contains("out of range"), "{table}");
    assert!(!table.contains("9467000000000"), "{table}");
}

/// A relative `--root` is named in JSON, Prometheus and the notes alike by
/// the one path the audit opened: absolute and canonical, never as typed.
#[test]
fn a_relative_root_is_named_by_its_canonical_path_everywhere() {
    let t = common::Tree::new();
    t.file(b"/var/lib/x", b"x").file(b"/etc/darlings/manifest.toml", b"keep = [\"/var/lib/x\"]\n");
    let parent = t.root().parent().expect("a parent");
    let name = t.root().file_name().expect("a name");
    let canonical = t.root().canonicalize().expect("canonical").display().to_string();
    let run = |format: &str| {
        std::process::Command::new(common::bin())
            .current_dir(parent)
            .args(["audit", "--format", format, "--root"])
            .arg(name)
            .output()
            .expect("run")
    };
    let json = common::parse_json(&run("json"));
    assert_eq!(json["root"], canonical.as_str(), "{json}");
    let notes = json["notes"].to_string();
    assert!(notes.contains(&format!("rules read from {canonical}/etc/darlings/manifest.toml")), "{notes}");
    let prom = String::from_utf8(run("prometheus").stdout).expect("utf-8");
    assert!(prom.contains(&format!("root=\"{canonical}\"")), "{prom}");
}

/// Without `--strip-prefix`, a diff path ending in `/` names no empty flag.
#[test]
fn a_diff_path_outside_the_dataset_names_no_flag_that_was_not_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let diff = dir.path().join("d.zfsdiff");
    std::fs::write(&diff, b"1700000000.000000001\t+\tF\t/etc/x/\n").expect("write");
    let out = common::run(["audit".as_ref(), "--zfs-diff".as_ref(), diff.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(common::code(&out), 2, "{stderr}");
    assert!(!stderr.contains("--strip-prefix  "), "{stderr}");
    assert!(stderr.contains("d.zfsdiff:1: /etc/x/ is not a path of a dataset mounted at /"), "{stderr}");
}
