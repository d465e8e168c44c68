//! Any bytes fed to the `zfs diff -FHt` parser, line by line, then into a
//! change tree that is classified: errors are fine, panics are not.
#![no_main]

use darlings::claims::live::Mounts;
use darlings::claims::matcher::Matcher;
use darlings::classify::Classifier;
use darlings::source::tree::ChangeTree;
use darlings::source::zfs;
use darlings::source::zfs_diff::Parser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parser = Parser::new();
    let mut tree = ChangeTree::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(parsed) = parser.line(line) {
            zfs::add_line(&mut tree, parsed);
        }
    }
    let matcher = Matcher::new(Vec::new());
    let mounts = Mounts::default();
    let classifier = Classifier::new(&matcher, None, &mounts, false, false);
    tree.walk(classifier.top(), &classifier, None, 1);
    let _ = tree.removed();
    let _ = classifier.into_collected();
});
