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
//! `enable = false` claims nothing; unknown attributes are ignored (the
//! JSON of a configuration evaluated with failing attributes dropped has
//! fewer, newer ones have more). A missing path is an error naming where
//! in the JSON it is.

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

#[derive(Debug, thiserror::Error)]
#[error("{file}: {at}: {message}")]
pub struct DeclaredError {
    pub file: String,
    pub at: String,
    pub message: String,
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

/// Reads `config.environment.persistence` JSON. `file` names it in errors.
pub fn impermanence(json: &Value, file: &str) -> Result<Vec<Declared>, DeclaredError> {
    let err = |at: &str, message: &str| DeclaredError {
        file: file.to_owned(),
        at: at.to_owned(),
        message: message.to_owned(),
    };
    let roots = json.as_object().ok_or_else(|| err("(top)", "expected an object of storage roots"))?;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (name, root) in roots {
        let at_root = format!("{name:?}");
        if root.get("enable").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let storage = root.get("persistentStoragePath").and_then(Value::as_str).unwrap_or(name).to_owned();
        // Users first: their entries are the ones that know the home.
        if let Some(users) = root.get("users").and_then(Value::as_object) {
            for (user, opts) in users {
                let home = opts
                    .get("home")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("/home/{user}"), str::to_owned);
                let at_user = format!("{at_root}.users.{user}");
                for declared in entries(opts, &at_user, &storage, &home, &err)? {
                    if seen.insert((declared.path.clone(), declared.directory)) {
                        out.push(declared);
                    }
                }
            }
        }
        for declared in entries(root, &at_root, &storage, "/", &err)? {
            if seen.insert((declared.path.clone(), declared.directory)) {
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
    err: &dyn Fn(&str, &str) -> DeclaredError,
) -> Result<Vec<Declared>, DeclaredError> {
    let mut out = Vec::new();
    for (list, directory, name_key, path_key) in
        [("directories", true, "directory", "dirPath"), ("files", false, "file", "filePath")]
    {
        let Some(items) = level.get(list) else { continue };
        let items = items.as_array().ok_or_else(|| err(&format!("{at}.{list}"), "expected a list"))?;
        for (i, item) in items.iter().enumerate() {
            let at_item = format!("{at}.{list}[{i}]");
            let (raw, entry_base, entry_storage) = match item {
                Value::String(s) => (s.clone(), base.to_owned(), storage.to_owned()),
                Value::Object(o) if o.get("how").and_then(Value::as_str) == Some("_intermediate") => continue,
                Value::Object(o) => {
                    let home = o.get("home").and_then(Value::as_str).unwrap_or(base).to_owned();
                    let st =
                        o.get("persistentStoragePath").and_then(Value::as_str).unwrap_or(storage).to_owned();
                    match (o.get(path_key).and_then(Value::as_str), o.get(name_key).and_then(Value::as_str)) {
                        (Some(p), _) => (p.to_owned(), "/".to_owned(), st),
                        (None, Some(p)) => (p.to_owned(), home, st),
                        (None, None) => {
                            return Err(err(
                                &at_item,
                                &format!("a {name_key} entry without `{name_key}` or `{path_key}`"),
                            ))
                        }
                    }
                }
                _ => return Err(err(&at_item, "expected a path string or an attribute set")),
            };
            let path = normalise(&raw, &entry_base)
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

/// Declared claims as keep rules, with their origin.
pub fn rules(declared: &[Declared], module: &str) -> Vec<Rule> {
    declared
        .iter()
        .filter_map(|d| {
            let pattern = Pattern::parse(&d.path).ok()?;
            let pattern = match pattern {
                // A declared path is literal, even with glob characters in it.
                Pattern::Glob(_) => return None,
                p => p,
            };
            Some(Rule {
                kind: RuleKind::Keep,
                pattern,
                origin: Origin::Declared {
                    text: format!("{module} {}", d.option),
                    storage: normalise(&d.storage, "/").unwrap_or_else(|| d.storage.clone()).into_bytes(),
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
}
