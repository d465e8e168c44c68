//! The command line as a user meets it: formats, explain, manifests,
//! acceptance, filters, exit codes, errors, pipes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use serde_json::Value;

fn sample() -> common::Tree {
    let t = common::Tree::new();
    t.file(b"/etc/machine-id", b"0123456789abcdef\n")
        .file(b"/var/log/big.log", &vec![b'l'; 5000])
        .file(b"/var/log/small.log", b"s")
        .file(b"/var/lib/claimed/db", b"data")
        .file(b"/tmp/scratch", b"tmp")
        .file(b"/root/\x1b[2Jevil\nname", b"boo");
    t
}

fn root(t: &common::Tree) -> &str {
    t.root().to_str().expect("temp paths are UTF-8")
}

#[test]
fn json_ndjson_table_and_prometheus_agree() {
    let t = sample();
    let rules = ["--keep", "/var/lib/claimed", "--ignore", "/tmp"];
    let (json, code) = common::audit_json(t.root(), &rules);
    assert_eq!(code, 3);

    // ndjson: the same finding objects, then a summary without findings.
    let mut args = vec!["audit", "--root", root(&t), "--format", "ndjson"];
    args.extend(rules);
    let out = common::run(&args);
    assert_eq!(common::code(&out), 3);
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let (summary, rows) = lines.split_last().expect("at least the summary");
    assert_eq!(rows, json["findings"].as_array().expect("findings").as_slice());
    assert_eq!(summary["totals"], json["totals"]);
    assert_eq!(summary["schema_version"], 1);
    assert!(summary.get("findings").is_none());

    // Prometheus: the totals, per verdict (summed over severities).
    let mut args = vec!["audit", "--root", root(&t), "--format", "prometheus"];
    args.extend(rules);
    let out = common::run(&args);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    for (verdict, t) in json["totals"].as_object().expect("totals") {
        for (metric, field) in
            [("darlings_findings", "findings"), ("darlings_entries", "entries"), ("darlings_bytes", "bytes")]
        {
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| {
                    l.starts_with(&format!("{metric}{{")) && l.contains(&format!("verdict=\"{verdict}\""))
                })
                .collect();
            assert!(!lines.is_empty(), "no {metric} for {verdict}");
            let sum: u64 = lines
                .iter()
                .map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()).expect("value"))
                .sum();
            assert_eq!(Some(sum), t[field].as_u64(), "{metric} {verdict}");
        }
    }
    // The catalogue's severity is a label: /etc/machine-id is critical.
    assert!(text.contains("verdict=\"new-identity\",loss=\"true\",severity=\"critical\"} 1"), "{text}");
    assert!(text.contains("darlings_audit_complete{"));
    assert!(text.lines().filter(|l| !l.starts_with('#')).all(|l| l.split(' ').count() == 2), "{text}");

    // Table: every shown path, escaped, and a totals line per verdict.
    let mut args = vec!["audit", "--root", root(&t), "--format", "table"];
    args.extend(rules);
    let out = common::run(&args);
    let table = String::from_utf8(out.stdout).expect("utf-8");
    for f in json["findings"].as_array().expect("findings") {
        let path = f["path"].as_str().expect("path");
        let shown = path.replace('\x1b', "\\x1B").replace('\n', "\\n");
        assert!(table.contains(&shown), "{shown} missing from\n{table}");
    }
    // The totals table: one line per verdict that has findings, with its count.
    let totals_part = table.split_once("\nTOTAL ").expect("a totals table").1;
    for (verdict, t) in json["totals"].as_object().expect("totals") {
        let findings = t["findings"].as_u64().expect("count");
        let row = totals_part.lines().find(|l| l.split_whitespace().next() == Some(verdict.as_str()));
        match row {
            Some(row) => {
                assert_eq!(row.split_whitespace().nth(1), Some(findings.to_string().as_str()), "{row}")
            }
            None => assert_eq!(findings, 0, "no totals line for {verdict}"),
        }
    }
}

#[test]
fn the_table_never_prints_a_raw_control_character() {
    let t = sample();
    // /root holds only the hostile name: flat lists it on its own.
    let out = common::run(["audit", "--root", root(&t), "--format", "table", "--flat"]);
    let table = String::from_utf8(out.stdout).expect("utf-8");
    assert!(!table.contains('\x1b'), "raw escape in\n{table}");
    assert!(table.contains("/root/\\x1B[2Jevil\\nname"), "{table}");
    // Every row is one line: the newline in the name did not split it.
    assert!(!table.lines().any(|l| l.trim_start().starts_with("name")), "{table}");
}

#[test]
fn explain_names_every_rule_and_the_decider() {
    let t = sample();
    t.file(
        b"/etc/darlings/manifest.toml",
        b"# site rules\nignore = [\"/var/*\"]\n\n[[keep]]\npath = \"/var/log\"\nreason = \"audit trail\"\n",
    );
    let out = common::run(["explain", "--root", root(&t), "--keep", "/", "/var/log/big.log"]);
    assert_eq!(common::code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let manifest = format!("{}/etc/darlings/manifest.toml", root(&t));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "/var/log/big.log");
    // The audit groups the broken claim /var/log into one row holding the file.
    assert!(lines[1].starts_with("  verdict: broken (important); keep /var/log ("), "{text}");
    assert!(lines[1].contains("plain content on the ephemeral root"), "{text}");
    assert_eq!(lines[2], "  (the audit's row for it is /var/log)");
    assert_eq!(lines[4], format!("  * keep /var/log  ({manifest}:5), matches at /var/log: audit trail"));
    assert_eq!(lines[5], format!("    ignore /var/*  ({manifest}:2), matches at /var/log"));
    assert_eq!(lines[6], "    keep /  (--keep), matches at /");
    assert_eq!(lines[7], "  decided by: keep /var/log, because a path beats a glob at the same depth");
    assert!(lines[8].starts_with("  claim on /var/log: broken: plain content"), "{text}");

    let out = common::run(["explain", "--root", root(&t), "--no-default-manifest", "/srv/x"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no rule applies"));
}

#[test]
fn the_default_manifest_is_read_from_the_audited_root() {
    let t = sample();
    t.file(
        b"/etc/darlings/manifest.toml",
        b"ignore = [\"/var/log\", \"/etc\", \"/root\"]\nkeep = [\"/var/lib/claimed\"]\n",
    );
    let (json, code) = common::audit_json(t.root(), &["--ignore", "/tmp"]);
    let f = common::findings(&json);
    assert_eq!(f[&b"/var/log"[..]]["verdict"], "ignored");
    assert_eq!(f[&b"/var/lib/claimed"[..]]["verdict"], "broken");
    let origin = f[&b"/var/lib/claimed"[..]]["rule"]["origin"].as_str().expect("origin");
    assert!(origin.ends_with("/etc/darlings/manifest.toml:2"), "{origin}");
    assert_eq!(code, 3);

    let (json, _) = common::audit_json(t.root(), &["--no-default-manifest"]);
    assert_eq!(common::findings(&json)[&b"/var"[..]]["verdict"], "unclaimed");
}

#[test]
fn a_malformed_manifest_stops_everything_with_file_and_line() {
    let t = sample();
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("site.toml");
    std::fs::write(&manifest, "keep = [\n  \"/ok\",\n  \"no/leading/slash\",\n]\n").expect("write");
    let out = common::run([
        "audit",
        "--root",
        root(&t),
        "--format",
        "json",
        "--manifest",
        manifest.to_str().expect("utf-8"),
    ]);
    assert_eq!(common::code(&out), 2);
    assert!(out.stdout.is_empty(), "nothing is audited with a half-read manifest");
    let stderr = String::from_utf8(out.stderr).expect("utf-8");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "darlings: error: {}:3:3: keep pattern \"no/leading/slash\": pattern must be an absolute path (start with /)",
            manifest.display()
        )
    );

    std::fs::write(&manifest, "[[ignore]]\npath = \"/x\"\nreson = \"typo\"\n").expect("write");
    let out = common::run(["audit", "--root", root(&t), "--manifest", manifest.to_str().expect("utf-8")]);
    assert_eq!(common::code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("site.toml:3:1: unknown key `reson`"));

    let out = common::run(["audit", "--root", root(&t), "--keep", "relative"]);
    assert_eq!(common::code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--keep \"relative\": pattern must be an absolute path"));

    let out = common::run(["audit", "--root", root(&t), "--manifest", "/nonexistent/m.toml"]);
    assert_eq!(common::code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read manifest /nonexistent/m.toml"));
}

#[test]
fn accepted_findings_only_fail_on_new_state() {
    let t = sample();
    let dir = tempfile::tempdir().expect("tempdir");
    let previous = dir.path().join("previous.json");
    let out = common::run(["audit", "--root", root(&t), "--format", "json"]);
    assert_eq!(common::code(&out), 1);
    std::fs::write(&previous, &out.stdout).expect("save report");

    let prev = previous.to_str().expect("utf-8");
    let (json, code) = common::audit_json(t.root(), &["--accepted", prev]);
    assert_eq!(code, 0, "everything was accepted");
    assert!(json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .all(|f| f["accepted"] == true || f["verdict"] == "structure"));

    t.file(b"/srv/new-state", b"new");
    let (json, code) = common::audit_json(t.root(), &["--accepted", prev]);
    assert_eq!(code, 1);
    let open: Vec<&str> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["accepted"] == false && f["verdict"] != "structure")
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    assert_eq!(open, vec!["/srv"]);

    // A plain accept list: paths, comments, blank lines.
    let list = dir.path().join("accept.txt");
    std::fs::write(&list, "# known state\n/srv\n\n/etc/\n/var\n/tmp\n/root\n").expect("write");
    let (_, code) = common::audit_json(t.root(), &["--accepted", list.to_str().expect("utf-8")]);
    assert_eq!(code, 0);
    std::fs::write(&list, "/srv\nrelative\n").expect("write");
    let out = common::run(["audit", "--root", root(&t), "--accepted", list.to_str().expect("utf-8")]);
    assert_eq!(common::code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("accept.txt:2: not an absolute path"));
}

#[test]
fn filters_change_what_is_shown_never_the_totals() {
    let t = sample();
    let (all, _) = common::audit_json(t.root(), &["--flat"]);
    let (some, _) = common::audit_json(t.root(), &["--flat", "--verdict", "unclaimed", "--min-size", "1K"]);
    assert_eq!(all["totals"], some["totals"]);
    let shown: Vec<&str> = some["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    assert_eq!(shown, vec!["/var/log/big.log"]);

    let (sorted, _) = common::audit_json(t.root(), &["--flat", "--sort", "size", "--verdict", "unclaimed"]);
    let sizes: Vec<u64> = sorted["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["size"].as_u64().expect("size"))
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    assert_eq!(sizes[0], 5000);
}

#[test]
fn fail_on_chooses_what_raises_the_exit_code() {
    let t = sample();
    let (_, code) = common::audit_json(t.root(), &["--fail-on", "none"]);
    assert_eq!(code, 0);
    let (_, code) = common::audit_json(t.root(), &["--fail-on", "broken"]);
    assert_eq!(code, 0, "no broken claim here");
    let (_, code) = common::audit_json(t.root(), &["--fail-on", "none", "--keep", "/etc/machine-id"]);
    assert_eq!(code, 3, "a broken claim always says so");
}

#[test]
fn unreadable_directories_are_reported_and_ignored_ones_never_opened() {
    require_root!();
    let t = sample();
    t.file(b"/secret/inside", b"x")
        .file(b"/cache-locked/inside", b"x")
        .mode(b"/secret", 0o000)
        .mode(b"/cache-locked", 0o000);
    t.mode(b"/", 0o755);
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(common::bin())
        .args(["audit", "--root", root(&t), "--format", "json", "--ignore", "/cache-locked"])
        .stdin(Stdio::null())
        .output()
        .expect("setpriv");
    assert_eq!(common::code(&out), 2, "{}", String::from_utf8_lossy(&out.stderr));
    let json = common::parse_json(&out);
    assert_eq!(json["complete"], false);
    let errors = json["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["path"], "/secret");
    assert_eq!(errors[0]["operation"], "open directory");
    assert_eq!(errors[0]["errno"], 13);
    // The walk went on: everything else is still reported.
    let f = common::findings(&json);
    assert_eq!(f[&b"/secret"[..]]["verdict"], "unclaimed");
    assert_eq!(f[&b"/cache-locked"[..]]["verdict"], "ignored");
    assert!(f.contains_key(&b"/var"[..]));

    let table = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(common::bin())
        .args(["audit", "--root", root(&t), "--format", "table", "--ignore", "/cache-locked"])
        .output()
        .expect("setpriv");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("The audit is incomplete: 1 entry could not be read:"), "{text}");
    assert!(text.contains("  /secret  open directory: Permission denied"), "{text}");
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let t = common::Tree::new();
    for i in 0..4000 {
        t.file(format!("/many/file-{i:05}").as_bytes(), b"");
    }
    let mut child = Command::new(common::bin())
        .args(["audit", "--root", root(&t), "--format", "json", "--flat"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 16];
    child.stdout.take().expect("stdout").read_exact(&mut first).expect("read");
    // The reader is gone now.
    let out = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(common::code(&out), 1, "the audit's own verdict, not a failure");
}

#[test]
fn help_documents_the_exit_codes() {
    let out = common::run(["audit", "--help"]);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    for line in [
        "0  nothing to report",
        "1  loss found",
        "3  a declared claim is broken",
        "2  the audit is incomplete",
    ] {
        assert!(text.contains(line), "{line}");
    }
}

#[test]
fn a_missing_root_is_an_error() {
    let out = common::run(["audit", "--root", "/nonexistent/root"]);
    assert_eq!(common::code(&out), 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("darlings: error: cannot audit /nonexistent/root")
    );
}

#[test]
fn two_readers_of_standard_input_are_refused() {
    let t = sample();
    for args in [
        ["--zfs-diff", "-", "--impermanence", "-"],
        ["--impermanence", "-", "--preservation", "-"],
        ["--zfs-diff", "-", "--preservation", "-"],
    ] {
        let mut cmd = vec!["audit", "--root", root(&t), "--format", "json"];
        cmd.extend(args);
        let out = common::run(&cmd);
        assert_eq!(common::code(&out), 2, "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("both read standard input"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "nothing audited: {args:?}");
    }
}

#[test]
fn a_bare_path_gets_the_root_flag_as_a_hint() {
    let t = sample();
    let out = common::run(["audit", root(&t)]);
    assert_eq!(common::code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("--root {}", root(&t))), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_missing_baseline_is_named_as_the_baseline() {
    let t = sample();
    let out = common::run(["audit", "--root", root(&t), "--baseline", "/nonexistent-blank"]);
    assert_eq!(common::code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read the blank tree (--baseline) /nonexistent-blank"), "{err}");
    assert!(!err.contains("cannot audit"), "{err}");
}

#[test]
fn sort_size_lists_the_largest_first_whatever_the_verdict() {
    let t = sample();
    let out = common::run([
        "audit",
        "--root",
        root(&t),
        "--format",
        "table",
        "--flat",
        "--sort",
        "size",
        "--keep",
        "/var/lib/claimed",
    ]);
    let table = String::from_utf8_lossy(&out.stdout);
    let sizes: Vec<u64> = table
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let i = words.iter().position(|w| *w == "B" || w.ends_with("iB"))?;
            let n: f64 = words[i - 1].parse().ok()?;
            Some((n * if words[i] == "KiB" { 1024.0 } else { 1.0 }) as u64)
        })
        .collect();
    assert!(sizes.len() >= 4, "{table}");
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "largest first: {sizes:?}\n{table}");
    // The broken claim (4 bytes) is not first just because it is broken.
    assert!(table.lines().nth(1).unwrap_or("").contains("big.log"), "{table}");
}
