//! Claims declared in a NixOS configuration: the impermanence module's
//! `environment.persistence` and the preservation module's
//! `preservation.preserveAt`, as `nix eval --json` prints them.
//!
//! preservation's value has the same layout (storage roots with
//! `persistentStoragePath`, `directories`, `files`, `users.<name>` with
//! `home` and absolute paths); its entries say `how` they are kept, and
//! `_intermediate` ones are generated parent directories: structure, not
//! claims.
//!
//! Every module revision in use is read:
//!
//! - current: each entry carries an absolute `dirPath` / `filePath`; users'
//!   entries appear only under `users.<name>` (with their `home`);
//! - 2023-07 to 2025-01: users' entries appear both under `users.<name>`
//!   and in the top-level lists (duplicates are dropped), and paths are not
//!   normalised (a trailing `/`, `//`, `.`, even a relative path);
//! - 2022: no `dirPath` / `filePath`, and users' entries are absolute.
//!
//! Entries are strings or attribute sets; a storage root with
//! `enable = false` claims nothing; unknown attributes are ignored and
//! known ones may be absent or null (the JSON of a configuration evaluated
//! with failing attributes dropped has fewer, newer ones have more). A
//! known attribute of the wrong type (`{"/persist": 5}`), a missing path or
//! a NUL byte in one is an error naming where in the JSON it is. Declared
//! paths are literal: `/var/lib/app[1]` is not a glob.
//!
//! One path declared from two storage roots (in one file or across the
//! impermanence and preservation files) is an error naming both
//! declarations ([`conflict`]): only one of them can be mounted there, so
//! whichever darlings kept, the other would vanish without a word.

use std::collections::HashSet;

use serde_json::Value;

use super::matcher::{Origin, Pattern, Rule, RuleKind};

/// One declared claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub path: Vec<u8>,
    pub directory: bool,
    /// The storage root it is persisted in.
    pub storage: String,
    /// Where in the configuration: `"/persist".users.alice.directories[2]`.
    pub option: String,
}

impl Declared {
    /// The storage root, a normalised absolute path (`/persist/` is
    /// `/persist`; see [`storage_root`]).
    pub fn storage_root(&self) -> String {
        self.storage.clone()
    }

    /// What makes two declarations the same claim: one path, one kind,
    /// one storage root (older impermanence lists users' entries twice).
    fn key(&self) -> (Vec<u8>, bool, String) {
        (self.path.clone(), self.directory, self.storage_root())
    }
}

/// The first path declared from two storage roots, as the indices in
/// `declared` of its first declaration and of the one that contradicts it.
/// At most one storage root can be mounted on a path (impermanence refuses
/// to build such a configuration: "specified two or more times"), so
/// keeping either declaration would silently drop the other.
pub fn conflict(declared: &[Declared]) -> Option<(usize, usize)> {
    let mut first: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    for (i, d) in declared.iter().enumerate() {
        match first.get(d.path.as_slice()) {
            Some(&j) if declared[j].storage_root() != d.storage_root() => return Some((j, i)),
            Some(_) => {}
            None => {
                first.insert(&d.path, i);
            }
        }
    }
    None
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {at}: {message}", crate::sanitize::escape(file.as_bytes()))]
pub struct DeclaredError {
    pub file: String,
    pub at: String,
    pub message: String,
}

/// Checks a storage root as written in the configuration and normalises
/// it (a trailing `/` and empty components dropped): an absolute path with
/// no `.` or `..` component. A storage root is where darlings looks for the
/// persisted data and what `stray` walks; `/persist/sub/..` or `/persist/.`
/// names some other directory than the one written, so it is refused
/// rather than guessed at, for the audit and `stray` alike (both read
/// claims through [`impermanence`]).
pub fn storage_root(raw: &str) -> Result<String, String> {
    if raw.contains('\0') {
        return Err(format!("storage root {raw:?}: the path holds a NUL byte"));
    }
    if !raw.starts_with('/') {
        return Err(format!("storage root {raw:?} is not an absolute path"));
    }
    if let Some(dots) = raw.split('/').find(|c| *c == "." || *c == "..") {
        return Err(format!(
            "storage root {raw:?} has a `{dots}` component: write the storage root's own path"
        ));
    }
    normalise(raw, "/").ok_or_else(|| format!("storage root {raw:?} has a `..` component"))
}

/// Normalises a declared path: absolute, no empty, `.` or trailing
/// components. `..` is refused.
fn normalise(path: &str, base: &str) -> Option<String> {
    let joined = if path.starts_with('/') { path.to_owned() } else { format!("{base}/{path}") };
    let mut out = String::new();
    for comp in joined.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if comp == ".." {
            return None;
        }
        out.push('/');
        out.push_str(comp);
    }
    Some(if out.is_empty() { "/".to_owned() } else { out })
}

/// What a JSON value is, in words, for errors.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an attribute set",
    }
}

type Err<'a> = &'a dyn Fn(&str, &str) -> DeclaredError;

/// An optional attribute (absent or null: `None`) that must be a string.
fn opt_str<'v>(
    level: &'v Value,
    key: &str,
    at: &str,
    err: Err<'_>,
) -> Result<Option<&'v str>, DeclaredError> {
    match level.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(err(&format!("{at}.{key}"), &format!("expected a string, not {}", kind(other)))),
    }
}

/// An optional attribute that must be an attribute set.
fn opt_object<'v>(
    level: &'v Value,
    key: &str,
    at: &str,
    err: Err<'_>,
) -> Result<Option<&'v serde_json::Map<String, Value>>, DeclaredError> {
    match level.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => {
            Err(err(&format!("{at}.{key}"), &format!("expected an attribute set, not {}", kind(other))))
        }
    }
}

/// Reads `config.environment.persistence` JSON (or preservation's
/// `preserveAt`). `file` names it in errors. A value of the wrong type
/// where a known attribute is expected is an error naming where it is:
/// read wrongly, it would drop claims without a word.
pub fn impermanence(json: &Value, file: &str) -> Result<Vec<Declared>, DeclaredError> {
    let err = |at: &str, message: &str| DeclaredError {
        file: file.to_owned(),
        at: at.to_owned(),
        message: message.to_owned(),
    };
    let roots = json.as_object().ok_or_else(|| {
        err("(top)", &format!("expected an attribute set of storage roots, not {}", kind(json)))
    })?;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (name, root) in roots {
        let at_root = format!("{name:?}");
        if !root.is_object() {
            return Err(err(
                &at_root,
                &format!("expected a storage root (an attribute set), not {}", kind(root)),
            ));
        }
        match root.get("enable") {
            None | Some(Value::Null) | Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => continue,
            Some(other) => {
                return Err(err(
                    &format!("{at_root}.enable"),
                    &format!("expected a boolean, not {}", kind(other)),
                ))
            }
        }
        let storage = match opt_str(root, "persistentStoragePath", &at_root, &err)? {
            Some(path) => {
                storage_root(path).map_err(|e| err(&format!("{at_root}.persistentStoragePath"), &e))?
            }
            None => storage_root(name).map_err(|e| err(&at_root, &e))?,
        };
        // Users first: their entries are the ones that know the home.
        for (user, opts) in opt_object(root, "users", &at_root, &err)?.into_iter().flatten() {
            let at_user = format!("{at_root}.users.{user}");
            if !opts.is_object() {
                return Err(err(&at_user, &format!("expected an attribute set, not {}", kind(opts))));
            }
            let home =
                opt_str(opts, "home", &at_user, &err)?.map_or_else(|| format!("/home/{user}"), str::to_owned);
            for declared in entries(opts, &at_user, &storage, &home, &err)? {
                if seen.insert(declared.key()) {
                    out.push(declared);
                }
            }
        }
        for declared in entries(root, &at_root, &storage, "/", &err)? {
            if seen.insert(declared.key()) {
                out.push(declared);
            }
        }
    }
    Ok(out)
}

/// The `directories` and `files` of one level (a storage root or a user).
fn entries(
    level: &Value,
    at: &str,
    storage: &str,
    base: &str,
    err: Err<'_>,
) -> Result<Vec<Declared>, DeclaredError> {
    let mut out = Vec::new();
    for (list, directory, name_key, path_key) in
        [("directories", true, "directory", "dirPath"), ("files", false, "file", "filePath")]
    {
        let items = match level.get(list) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(err(&format!("{at}.{list}"), &format!("expected a list, not {}", kind(other))))
            }
        };
        for (i, item) in items.iter().enumerate() {
            let at_item = format!("{at}.{list}[{i}]");
            let (raw, entry_base, entry_storage) = match item {
                Value::String(s) => (s.as_str(), base, storage.to_owned()),
                Value::Object(_) => {
                    if opt_str(item, "how", &at_item, err)? == Some("_intermediate") {
                        continue;
                    }
                    let home = opt_str(item, "home", &at_item, err)?.unwrap_or(base);
                    let st = match opt_str(item, "persistentStoragePath", &at_item, err)? {
                        Some(path) => storage_root(path)
                            .map_err(|e| err(&format!("{at_item}.persistentStoragePath"), &e))?,
                        None => storage.to_owned(),
                    };
                    match (opt_str(item, path_key, &at_item, err)?, opt_str(item, name_key, &at_item, err)?) {
                        (Some(p), _) => (p, "/", st),
                        (None, Some(p)) => (p, home, st),
                        (None, None) => {
                            return Err(err(
                                &at_item,
                                &format!("a {name_key} entry without `{name_key}` or `{path_key}`"),
                            ))
                        }
                    }
                }
                other => {
                    return Err(err(
                        &at_item,
                        &format!("expected a path string or an attribute set, not {}", kind(other)),
                    ))
                }
            };
            if raw.contains('\0') || entry_base.contains('\0') || entry_storage.contains('\0') {
                return Err(err(&at_item, &format!("\"{raw}\": a path holds a NUL byte")));
            }
            let path = normalise(raw, entry_base)
                .ok_or_else(|| err(&at_item, &format!("{raw:?} has a `..` component")))?;
            out.push(Declared {
                path: path.into_bytes(),
                directory,
                storage: entry_storage,
                option: at_item,
            });
        }
    }
    Ok(out)
}

/// Declared claims as keep rules, with their origin. A declared path is
/// literal, even with glob characters in it. `file` names the JSON in
/// errors.
pub fn rules(declared: &[Declared], module: &str, file: &str) -> Result<Vec<Rule>, DeclaredError> {
    declared
        .iter()
        .map(|d| {
            let pattern = Pattern::literal(&d.path).map_err(|e| DeclaredError {
                file: file.to_owned(),
                at: d.option.clone(),
                message: format!("{:?}: {e}", String::from_utf8_lossy(&d.path)),
            })?;
            Ok(Rule {
                kind: RuleKind::Keep,
                pattern,
                origin: Origin::Declared {
                    text: format!("{module} {}", d.option),
                    storage: d.storage_root().into_bytes(),
                },
                reason: Some(format!("persisted in {}", d.storage)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(json: &str) -> Vec<(String, bool, String)> {
        let v: Value = serde_json::from_str(json).expect("json");
        impermanence(&v, "p.json")
            .expect("valid")
            .into_iter()
            .map(|d| (String::from_utf8_lossy(&d.path).into_owned(), d.directory, d.storage))
            .collect()
    }

    #[test]
    fn current_shape_with_dir_and_file_paths() {
        let got = paths(
            r#"{"/persist": {"enable": true, "persistentStoragePath": "/persist", "hideMounts": true,
                "directories": [{"directory": "/var/log", "dirPath": "/var/log", "home": null, "mode": "0755"}],
                "files": [{"file": "/etc/machine-id", "filePath": "/etc/machine-id", "method": "auto"}],
                "users": {"alice": {"directories": [{"directory": ".ssh", "dirPath": "/home/alice/.ssh", "home": "/home/alice"}],
                                    "files": []}}}}"#,
        );
        assert_eq!(
            got,
            vec![
                ("/home/alice/.ssh".into(), true, "/persist".into()),
                ("/var/log".into(), true, "/persist".into()),
                ("/etc/machine-id".into(), false, "/persist".into()),
            ]
        );
    }

    #[test]
    fn the_2023_shape_duplicates_users_and_leaves_paths_unnormalised() {
        let got = paths(
            r#"{"/persist": {"persistentStoragePath": "/persist",
                "directories": ["/var/lib/bluetooth/", {"directory": "var//lib/./nixos"},
                                {"directory": ".ssh", "home": "/home/bob", "dirPath": "/home/bob/.ssh"}],
                "users": {"bob": {"home": "/home/bob", "directories": [".ssh"]}}}}"#,
        );
        assert_eq!(
            got,
            vec![
                ("/home/bob/.ssh".into(), true, "/persist".into()),
                ("/var/lib/bluetooth".into(), true, "/persist".into()),
                ("/var/lib/nixos".into(), true, "/persist".into()),
            ]
        );
    }

    #[test]
    fn the_2022_shape_and_disabled_roots() {
        let got = paths(
            r#"{"/nix/persist": {"directories": [{"directory": "/etc/nixos"}],
                   "users": {"carol": {"directories": [{"directory": "/home/carol/Documents"}]}}},
                "/off": {"enable": false, "directories": ["/var/lib/never"]},
                "/big": {"persistentStoragePath": "/big", "directories": ["/var/lib"], "files": []}}"#,
        );
        assert_eq!(
            got,
            vec![
                ("/var/lib".into(), true, "/big".into()),
                ("/home/carol/Documents".into(), true, "/nix/persist".into()),
                ("/etc/nixos".into(), true, "/nix/persist".into()),
            ]
        );
    }

    #[test]
    fn preservation_skips_intermediate_directories() {
        let got = paths(
            r#"{"/persistent": {"persistentStoragePath": "/persistent", "commonMountOptions": [],
                "directories": [{"directory": "/var/lib/nixos", "how": "bindmount", "inInitrd": true}],
                "files": [{"file": "/etc/machine-id", "how": "symlink", "inInitrd": true}],
                "users": {"alice": {"username": "alice", "home": "/home/alice",
                    "directories": [{"directory": "/home/alice/.config", "how": "_intermediate"},
                                    {"directory": "/home/alice/.config/foo", "how": "symlink"}],
                    "files": []}}}}"#,
        );
        assert_eq!(
            got,
            vec![
                ("/home/alice/.config/foo".into(), true, "/persistent".into()),
                ("/var/lib/nixos".into(), true, "/persistent".into()),
                ("/etc/machine-id".into(), false, "/persistent".into()),
            ]
        );
    }

    #[test]
    fn a_missing_path_names_where_it_is() {
        let v: Value =
            serde_json::from_str(r#"{"/persist": {"directories": ["/ok", {"user": "x"}]}}"#).expect("json");
        let e = impermanence(&v, "p.json").expect_err("missing");
        assert_eq!(
            e.to_string(),
            r#"p.json: "/persist".directories[1]: a directory entry without `directory` or `dirPath`"#
        );
        let v: Value = serde_json::from_str(r#"["not", "an object"]"#).expect("json");
        assert!(impermanence(&v, "p.json").is_err());
    }
    fn err(json: &str) -> String {
        let v: Value = serde_json::from_str(json).expect("json");
        impermanence(&v, "p.json").map(|_| ()).expect_err("malformed").to_string()
    }

    #[test]
    fn malformed_shapes_are_errors_naming_where() {
        assert_eq!(
            err(r#"{"/persist": 5}"#),
            r#"p.json: "/persist": expected a storage root (an attribute set), not a number"#
        );
        assert_eq!(
            err(r#"["/persist"]"#),
            "p.json: (top): expected an attribute set of storage roots, not a list"
        );
        assert_eq!(
            err(r#"{"/persist": {"directories": "/var/lib/x"}}"#),
            r#"p.json: "/persist".directories: expected a list, not a string"#
        );
        assert_eq!(
            err(r#"{"/persist": {"enable": "yes", "directories": ["/x"]}}"#),
            r#"p.json: "/persist".enable: expected a boolean, not a string"#
        );
        assert_eq!(
            err(r#"{"/persist": {"persistentStoragePath": ["/p"]}}"#),
            r#"p.json: "/persist".persistentStoragePath: expected a string, not a list"#
        );
        assert_eq!(
            err(r#"{"/persist": {"users": ["alice"]}}"#),
            r#"p.json: "/persist".users: expected an attribute set, not a list"#
        );
        assert_eq!(
            err(r#"{"/persist": {"users": {"alice": true}}}"#),
            r#"p.json: "/persist".users.alice: expected an attribute set, not a boolean"#
        );
        assert_eq!(
            err(r#"{"/persist": {"users": {"alice": {"home": 1000}}}}"#),
            r#"p.json: "/persist".users.alice.home: expected a string, not a number"#
        );
        assert_eq!(
            err(r#"{"/persist": {"files": [{"file": 7}]}}"#),
            r#"p.json: "/persist".files[0].file: expected a string, not a number"#
        );
        assert_eq!(
            err(r#"{"/persist": {"directories": [["/x"]]}}"#),
            r#"p.json: "/persist".directories[0]: expected a path string or an attribute set, not a list"#
        );
        // Absent and null attributes are fine; an empty root claims nothing.
        assert_eq!(paths(r#"{"/persist": {"users": null, "directories": null, "enable": null}}"#), vec![]);
    }

    #[test]
    fn a_nul_in_a_declared_path_is_an_error() {
        assert_eq!(
            err(r#"{"/persist": {"directories": ["/var/lib/a\u0000b"]}}"#),
            "p.json: \"/persist\".directories[0]: \"/var/lib/a\0b\": a path holds a NUL byte"
        );
        assert_eq!(
            err(r#"{"/persist": {"users": {"bob": {"home": "/home/b\u0000", "files": [".x"]}}}}"#),
            r#"p.json: "/persist".users.bob.files[0]: ".x": a path holds a NUL byte"#
        );
    }

    #[test]
    fn one_path_from_two_storage_roots_is_a_conflict() {
        let v: Value = serde_json::from_str(
            r#"{"/persist": {"directories": ["/var/lib/a", "/var/lib/x"],
                             "users": {"bob": {"home": "/home/bob", "directories": [".ssh"]}}},
                "/persist/cache": {"directories": ["/var/lib/b", "/var/lib/x/"]}}"#,
        )
        .expect("json");
        let declared = impermanence(&v, "p.json").expect("valid");
        let (a, b) = conflict(&declared).expect("a conflict");
        assert_eq!(
            (declared[a].storage.as_str(), declared[a].option.as_str()),
            ("/persist", r#""/persist".directories[1]"#)
        );
        assert_eq!(
            (declared[b].storage.as_str(), declared[b].option.as_str()),
            ("/persist/cache", r#""/persist/cache".directories[1]"#)
        );
        // One storage root, however written, twice (the 2023 shape lists users twice): no conflict.
        let v: Value = serde_json::from_str(
            r#"{"/persist": {"directories": ["/var/lib/x", {"directory": ".ssh", "dirPath": "/home/bob/.ssh"},
                                             {"directory": "/var/lib/x", "persistentStoragePath": "/persist/"}],
                             "users": {"bob": {"home": "/home/bob", "directories": [".ssh"]}}}}"#,
        )
        .expect("json");
        let declared = impermanence(&v, "p.json").expect("valid");
        assert_eq!(declared.len(), 2, "{declared:?}");
        assert_eq!(conflict(&declared), None);
    }

    #[test]
    fn declared_paths_become_literal_rules() {
        let v: Value = serde_json::from_str(
            r#"{"/persist": {"directories": ["/var/lib/app[1]", "/srv/{a,b}", "/opt/*"]}}"#,
        )
        .expect("json");
        let declared = impermanence(&v, "p.json").expect("valid");
        let rules = rules(&declared, "impermanence", "p.json").expect("rules");
        let got: Vec<(Option<&[u8]>, String)> =
            rules.iter().map(|r| (r.pattern.prefix(), r.origin.to_string())).collect();
        assert_eq!(
            got,
            vec![
                (Some(&b"/var/lib/app[1]"[..]), r#"impermanence "/persist".directories[0]"#.to_owned()),
                (Some(&b"/srv/{a,b}"[..]), r#"impermanence "/persist".directories[1]"#.to_owned()),
                (Some(&b"/opt/*"[..]), r#"impermanence "/persist".directories[2]"#.to_owned()),
            ]
        );
    }
}
