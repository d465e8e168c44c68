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
