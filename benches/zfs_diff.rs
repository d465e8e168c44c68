//! The `zfs diff` parser and the change-tree classification: a generated
//! diff of a lived-in root against its blank snapshot (1M lines by default;
//! DARLINGS_BENCH_LINES to change it). Target: >= 2M lines/s parse +
//! classify on one core.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use darlings::claims::matcher::Matcher;
use darlings::classify::Classifier;
use darlings::source::tree::ChangeTree;
use darlings::source::zfs;
use darlings::source::zfs_diff::Parser;
use darlings::sys::mounts::Mounts;

/// `zfs diff -FHt` lines of a lived-in root against its empty blank
/// snapshot: nearly everything created, directories of 40 entries under a
/// few top-level trees, and now and then an escaped odd name (1 in 20), a
/// modification or a link-count change (1 in 100 each), a removal or a
/// rename (1 in 200 each).
fn diff(lines: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines * 70);
    out.extend_from_slice(b"1700000000.000000000\tM\t/\t/\n");
    let mut n = 1;
    let mut dir = 0;
    while n < lines {
        let top = ["var/lib/app", "home/alice/.cache", "srv/data", "usr/share/doc"][dir % 4];
        out.extend_from_slice(
            format!("1700000{:03}.000000001\t+\t/\t/{top}/d{dir}\n", dir % 1000).as_bytes(),
        );
        n += 1;
        for f in 0..40 {
            if n >= lines {
                break;
            }
            let k = n % 200;
            let line = if k == 7 {
                format!("1700000000.5\t-\tF\t/{top}/d{dir}/gone-{f}\n")
            } else if k == 11 {
                format!("1700000000.5\tR\tF\t/{top}/d{dir}/old-{f}\t/{top}/d{dir}/new-{f}\n")
            } else if k % 100 == 3 {
                format!("1700000000.5\tM\tF\t/{top}/d{dir}/linked-{f}\t(+1)\n")
            } else if k % 100 == 5 {
                format!("1700000000.5\tM\tF\t/{top}/d{dir}/edited-{f}\n")
            } else if k % 20 == 1 {
                format!("1700000000.5\t+\tF\t/{top}/d{dir}/caf\\0303\\0251\\0040{f}\n")
            } else {
                format!("1700000000.5\t+\tF\t/{top}/d{dir}/file-{f}.dat\n")
            };
            out.extend_from_slice(line.as_bytes());
            n += 1;
        }
        dir += 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let lines: usize =
        std::env::var("DARLINGS_BENCH_LINES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let text = diff(lines);
    let mut group = c.benchmark_group("zfs-diff");
    group.throughput(Throughput::Elements(lines as u64));
    group.sample_size(10);
    group.bench_function("parse", |b| {
        b.iter(|| {
            let mut parser = Parser::new();
            let mut count = 0usize;
            for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                count += parser.line(black_box(line)).expect("valid").path.len();
            }
            count
        })
    });
    let matcher = Matcher::new(Vec::new());
    let mounts = Mounts::default();
    let checker = darlings::claims::check::Checker::new(None, &mounts, false);
    let claims = darlings::claims::check::Claims::default();
    group.bench_function("parse+classify", |b| {
        b.iter(|| {
            let mut parser = Parser::new();
            let mut tree = ChangeTree::new();
            for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                zfs::add_line(&mut tree, parser.line(line).expect("valid"));
            }
            let classifier = Classifier::new(&matcher, &checker, &claims, false);
            tree.walk(classifier.top(), &classifier, None, 1);
            classifier.into_collected().findings.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
