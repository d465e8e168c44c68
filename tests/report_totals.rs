//! Totals are the report's, in every format: a file with several names
//! counts its bytes once in JSON, ndjson, Prometheus and the table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::ffi::OsStr;

/// One 100,000-byte file under three names, nothing else.
fn three_names() -> common::Tree {
    let t = common::Tree::new();
    t.file(b"/data/first name", &[7u8; 100_000]);
    std::fs::hard_link(t.at(b"/data/first name"), t.at(b"/data/second\tname")).expect("link");
    std::fs::hard_link(t.at(b"/data/first name"), t.at(b"/data/caf\xe9")).expect("link");
    t
}

fn audit(t: &common::Tree, format: &str) -> String {
    let out = common::run([
        OsStr::new("audit"),
        OsStr::new("--root"),
        t.root().as_os_str(),
        OsStr::new("--format"),
        OsStr::new(format),
    ]);
    assert_eq!(common::code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The sum of a Prometheus metric's values over the lines with `labels`.
fn metric_sum(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
        .map(|l| l.rsplit(' ').next().expect("value").parse::<f64>().expect("number"))
        .sum()
}

#[test]
fn a_file_with_three_names_counts_once_in_every_format() {
    let t = three_names();

    let (json, _) = common::audit_json(t.root(), &[]);
    let unclaimed = &json["totals"]["unclaimed"];
    assert_eq!(unclaimed["bytes"], 100_000);
    // /data and its three names.
    assert_eq!(unclaimed["entries"], 4);

    let (flat, _) = common::audit_json(t.root(), &["--flat"]);
    assert_eq!(flat["totals"]["unclaimed"]["bytes"], 100_000, "grouping never changes totals");

    let prom = audit(&t, "prometheus");
    assert_eq!(metric_sum(&prom, "darlings_bytes", "verdict=\"unclaimed\""), 100_000.0, "{prom}");
    assert_eq!(metric_sum(&prom, "darlings_entries", "verdict=\"unclaimed\""), 4.0, "{prom}");
    assert_eq!(metric_sum(&prom, "darlings_findings", "verdict=\"unclaimed\""), 1.0, "{prom}");

    let ndjson = audit(&t, "ndjson");
    let summary: serde_json::Value =
        serde_json::from_str(ndjson.lines().last().expect("summary line")).expect("json");
    assert_eq!(summary["totals"]["unclaimed"]["bytes"], 100_000);

    // 100,000 / 1024 = 97.66 KiB.
    // The test's root is a plain directory: `auto` says it does not look
    // erased at boot, and the summary says what erasing it would lose.
    let table = audit(&t, "table");
    assert!(table.contains("does not look like an ephemeral root"), "{table}");
    assert!(table.contains("Erasing this root would lose 4 entries (97.7 KiB) in 1 finding;"), "{table}");
    assert!(!table.contains("The next boot erases"), "{table}");
    // Told to walk it (a VM image a CI job audits), darlings takes it as erased.
    let walked = audit_with(&t, &["--source", "walk", "--format", "table"]);
    assert!(walked.contains("The next boot erases 4 entries (97.7 KiB) in 1 finding."), "{walked}");
}

#[test]
fn prometheus_severities_add_up_to_the_json_totals() {
    // An SSH key (critical), an unknown file, a log (important), and a file
    // with two names under the unknown one.
    let t = common::Tree::new();
    t.file(b"/home/alice/.ssh/id_ed25519", &[1u8; 400])
        .file(b"/srv/x/a", &[2u8; 3000])
        .file(b"/var/log/messages", &[3u8; 50])
        .dir(b"/keep");
    std::fs::hard_link(t.at(b"/srv/x/a"), t.at(b"/srv/x/b")).expect("link");
    // The claim on /keep (broken) makes the root structure: three rows.
    let (json, _) = common::audit_json(t.root(), &["--keep", "/keep"]);
    let prom = audit_with(&t, &["--keep", "/keep", "--format", "prometheus"]);
    for verdict in ["unclaimed", "broken"] {
        let bytes = json["totals"][verdict]["bytes"].as_u64().expect("bytes") as f64;
        let labels = format!("verdict=\"{verdict}\"");
        assert_eq!(metric_sum(&prom, "darlings_bytes", &labels), bytes, "{verdict}: {prom}");
    }
    // /home holds the key: critical, 400 bytes; /srv: 3000 once; /var/log: 50.
    assert_eq!(json["totals"]["unclaimed"]["bytes"], 3450);
    assert_eq!(
        metric_sum(&prom, "darlings_bytes", "verdict=\"unclaimed\",loss=\"true\",severity=\"critical\""),
        400.0
    );
    assert_eq!(
        metric_sum(&prom, "darlings_bytes", "verdict=\"unclaimed\",loss=\"true\",severity=\"none\""),
        3000.0
    );
    assert_eq!(
        metric_sum(&prom, "darlings_bytes", "verdict=\"unclaimed\",loss=\"true\",severity=\"important\""),
        50.0
    );
}

fn audit_with(t: &common::Tree, args: &[&str]) -> String {
    let mut all = vec![OsStr::new("audit"), OsStr::new("--root"), t.root().as_os_str()];
    all.extend(args.iter().map(OsStr::new));
    let out = common::run(all);
    String::from_utf8(out.stdout).expect("utf-8")
}
