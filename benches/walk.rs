//! The whole audit on a generated tree: walk, classify, group.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use darlings::cli::{AuditArgs, ManifestArgs, PatternArgs, RootArg, RuleArgs, RuleSourceArgs, ThreadsArg};

/// A deterministic tree of about 20,000 entries.
fn build(root: &Path) -> u64 {
    let mut entries = 0;
    for a in 0..20 {
        for b in 0..20 {
            let dir = root.join(format!("top{a}/mid{b}"));
            std::fs::create_dir_all(&dir).expect("mkdir");
            entries += 1;
            for f in 0..48 {
                std::fs::write(dir.join(format!("file {f}.dat")), vec![b'x'; (a * b + f) % 300])
                    .expect("write");
                entries += 1;
            }
        }
        entries += 1;
    }
    entries
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let entries = build(tmp.path());
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(entries));
    group.sample_size(20);
    for (name, keep) in
        [("no-rules", vec![]), ("half-kept", (0..10).map(|i| format!("/top{i}").into()).collect())]
    {
        for threads in [1u16, 2] {
            let args = AuditArgs {
                rules: RuleArgs {
                    at: RootArg { root: Some(tmp.path().to_owned()) },
                    sources: RuleSourceArgs {
                        manifests: ManifestArgs { no_default_manifest: true, ..ManifestArgs::default() },
                        patterns: PatternArgs { keep: keep.clone(), ..PatternArgs::default() },
                        assume_claims: true,
                        ..RuleSourceArgs::default()
                    },
                },
                threads: ThreadsArg { threads: Some(threads) },
                ..AuditArgs::default()
            };
            let cfg = darlings::config::Audit::from_args(&args).expect("settings");
            group.bench_with_input(BenchmarkId::new(name, threads), &cfg, |b, cfg| {
                b.iter(|| darlings::audit::run(cfg).expect("audit").findings.len())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
