//! Rule matching: the per-entry cost the walk pays, for paths × rules;
//! and loading rules: a manifest of N keep rules parsed and compiled.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use darlings::claims::manifest;
use darlings::claims::matcher::{Matcher, Origin, Pattern, Rule, RuleKind};

/// A deterministic set of lived-in paths.
fn paths() -> Vec<Vec<u8>> {
    let tops = ["etc", "var/lib", "var/log", "var/cache", "home/alice", "home/bob", "srv/app", "usr/share"];
    let mut out = Vec::new();
    for (i, top) in tops.iter().enumerate() {
        for a in 0..25 {
            for b in 0..50 {
                out.push(
                    format!("/{top}/d{a}/sub{}/file-{b}.{}", (a * 7 + i) % 5, ["conf", "log", "db"][b % 3])
                        .into_bytes(),
                );
            }
        }
    }
    out
}

fn rules(n: usize) -> Vec<Rule> {
    let mut rules = Vec::new();
    for i in 0..n {
        let (kind, text) = match i % 4 {
            0 => (RuleKind::Keep, format!("/var/lib/d{}", i % 25)),
            1 => (RuleKind::Ignore, format!("/home/*/d{}/sub*", i % 25)),
            2 => (RuleKind::Ignore, format!("/var/cache/d{}", i % 25)),
            _ => (RuleKind::Keep, format!("/etc/d{}/**/*.conf", i % 25)),
        };
        let pattern = Pattern::parse(text.as_bytes()).expect("valid bench pattern");
        rules.push(Rule { kind, pattern, origin: Origin::Flag("--keep"), reason: None });
    }
    rules
}

fn bench(c: &mut Criterion) {
    let paths = paths();
    let mut group = c.benchmark_group("matcher");
    group.throughput(Throughput::Elements(paths.len() as u64));
    for n in [0, 4, 40, 400] {
        let matcher = Matcher::new(rules(n));
        group.bench_with_input(BenchmarkId::new("walk-order", n), &matcher, |b, m| {
            b.iter(|| {
                let mut decided = 0usize;
                for p in &paths {
                    decided += usize::from(m.decide_incrementally(black_box(p)).is_some());
                }
                decided
            })
        });
        group.bench_with_input(BenchmarkId::new("explain", n), &matcher, |b, m| {
            b.iter(|| paths.iter().map(|p| m.explain(black_box(p)).matches.len()).sum::<usize>())
        });
    }
    group.finish();
}

/// A manifest of `n` keep rules, one per line, half as tables.
fn manifest_text(n: usize) -> String {
    let mut text = String::from("keep = [\n");
    for i in 0..n {
        if i % 2 == 0 {
            text.push_str(&format!("  \"/var/lib/svc{i}/data\",\n"));
        } else {
            text.push_str(&format!("  {{ path = \"/srv/app{}/{i}\", reason = \"r\" }},\n", i % 100));
        }
    }
    text.push_str("]\n");
    text
}

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    for n in [1_000, 10_000, 100_000] {
        let text = manifest_text(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("manifest+matcher", n), &text, |b, text| {
            b.iter(|| {
                let m = manifest::parse(black_box(text), std::path::Path::new("m.toml")).expect("valid");
                Matcher::new(m.rules).rules().len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, load);
criterion_main!(benches);
