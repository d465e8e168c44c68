//! The layer order written in `src/lib.rs`'s doc is the law: a module may
//! use only the modules after it in that order. This test reads the order
//! from the doc and every `crate::` path in `src/`, and names each import
//! that goes upward or sideways (siblings in `{…}` do not import each
//! other), and any module the order forgets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The levels of the order, top first: `a → {b, c} → d` is
/// `[[a], [b, c], [d]]`.
fn order(lib: &str) -> Vec<Vec<String>> {
    let line = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(str::trim)
        .find(|l| l.starts_with("Layer order:"))
        .expect("src/lib.rs's doc has a line starting `Layer order:`");
    let chain = line.trim_start_matches("Layer order:").trim().trim_matches('`');
    chain
        .split('→')
        .map(|level| {
            level
                .trim()
                .trim_start_matches('{')
                .trim_end_matches('}')
                .split(',')
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
                .collect()
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_str().unwrap();
    first.trim_end_matches(".rs").to_owned()
}

/// The top-level modules named by `crate::x` paths in `text`, with lines,
/// comments left out.
fn uses(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            let after = &rest[at + "crate::".len()..];
            // `darlings_crate::` or `some_crate::` are not this crate.
            let ours = !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if ours && after.starts_with('{') {
                // `crate::{a, b::c}`: each first name; a group split over
                // lines is named as it is, to fail loudly.
                match after.find('}') {
                    Some(end) => {
                        found.extend(after[1..end].split(',').map(|item| (n + 1, first_name(item.trim()))))
                    }
                    None => found.push((n + 1, "{ (a use group over several lines)".to_owned())),
                }
            } else if ours && !first_name(after).is_empty() {
                found.push((n + 1, first_name(after)));
            }
            rest = after;
        }
    }
    found
}

fn first_name(path: &str) -> String {
    path.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

#[test]
fn every_import_follows_the_layer_order() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = manifest.join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let levels = order(&lib);
    let level: BTreeMap<&str, usize> =
        levels.iter().enumerate().flat_map(|(i, ms)| ms.iter().map(move |m| (m.as_str(), i))).collect();
    assert!(levels.len() > 5, "the order has its levels: {levels:?}");

    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut modules = BTreeSet::new();
    let mut wrong = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "main" || module == "lib" {
            continue;
        }
        modules.insert(module.clone());
        let Some(&mine) = level.get(module.as_str()) else { continue };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, used) in uses(&text) {
            if used == module {
                continue;
            }
            match level.get(used.as_str()) {
                Some(&theirs) if theirs > mine => {}
                Some(_) => wrong.push(format!(
                    "{}:{line}: {module} uses {used}, which is not below it",
                    file.strip_prefix(manifest).unwrap().display()
                )),
                None => wrong.push(format!(
                    "{}:{line}: {used} is not in the layer order",
                    file.strip_prefix(manifest).unwrap().display()
                )),
            }
        }
    }
    let forgotten: Vec<&String> = modules.iter().filter(|m| !level.contains_key(m.as_str())).collect();
    assert!(forgotten.is_empty(), "modules missing from the layer order in src/lib.rs: {forgotten:?}");
    assert!(wrong.is_empty(), "imports against the layer order:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_an_upward_import() {
    let levels = order("//! Layer order: `app → {a, b} → sys`\n");
    assert_eq!(
        levels,
        vec![vec!["app".to_owned()], vec!["a".to_owned(), "b".to_owned()], vec!["sys".to_owned()]]
    );
    let found = uses("use crate::app::x; // crate::ignored\nlet y = darlings_crate::z; crate::sys::f();\nuse crate::{a::b, c};");
    let names: Vec<(usize, &str)> = found.iter().map(|(l, n)| (*l, n.as_str())).collect();
    assert_eq!(names, vec![(1, "app"), (2, "sys"), (3, "a"), (3, "c")]);
}
