//! systemd-tmpfiles: objects created at every boot.
//!
//! `tmpfiles.d(5)` lines are `TYPE PATH MODE USER GROUP AGE ARGUMENT`.
//! Configuration files are read from `/etc/tmpfiles.d`, `/run/tmpfiles.d`,
//! `/usr/local/lib/tmpfiles.d` and `/usr/lib/tmpfiles.d` inside the audited
//! root; a file in an earlier directory replaces one of the same name in a
//! later one (so `/etc` overrides `/run` overrides `/usr/lib`). The kept
//! types are `L` (symlink), `d`/`D` (directory), `f`/`F` (file) and `C`
//! (copy), with any of the modifiers `+ ! - = ~ ^`. Paths may use the
//! system specifiers `%S %C %L %t %T %V %E %h %%` (as for system
//! services, `%h` is `/root`); a line with any other specifier, or with a
//! glob, is left out (it cannot be resolved here). The object comes back
//! at boot; what was written into it does not.

use std::collections::{BTreeMap, HashSet};
use std::os::fd::AsFd;

use rustix::io::Errno;

use crate::claims::matcher::{Origin, Pattern, Rule, RuleKind};
use crate::sys::root::{describe_errno, Root};

use super::Says;

/// What tmpfiles creates at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Symlink,
    Directory,
    File,
    Copy,
}

/// The detail of an object systemd-tmpfiles creates.
pub const CREATED: &str = "created by systemd-tmpfiles at every boot";

/// One effective line: the object, and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub path: Vec<u8>,
    pub object: Object,
    /// The configuration file, as the audited system names it.
    pub file: Vec<u8>,
    /// 1-based.
    pub line: usize,
}

/// The effective tmpfiles.d lines of a root.
#[derive(Debug, Default)]
pub struct Tmpfiles {
    lines: Vec<Line>,
    /// Configuration that could not be read: (path, why).
    problems: Vec<(Vec<u8>, String)>,
}

const DIRS: [&str; 4] =
    ["etc/tmpfiles.d", "run/tmpfiles.d", "usr/local/lib/tmpfiles.d", "usr/lib/tmpfiles.d"];

impl Tmpfiles {
    /// Reads the configuration of the audited root, every link resolved
    /// inside it (on NixOS `/etc/tmpfiles.d` and its files are links into
    /// the Nix store). Missing directories are fine: no objects. A file
    /// that cannot be read (not a regular file, too large) is a problem,
    /// and its name still replaces the same name in later directories:
    /// with what it says unknown, nothing is taken as recreated from it.
    pub fn read(root: &Root) -> Tmpfiles {
        let mut t = Tmpfiles::default();
        // File name → (its path, text); the first directory that has a name wins.
        let mut files: BTreeMap<Vec<u8>, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
        for dir in DIRS {
            let listed = root
                .open_dir_in_root(dir.as_bytes())
                .and_then(|fd| crate::sys::root::list_names(fd.as_fd()).map(|names| (fd, names)));
            let (fd, names) = match listed {
                Ok(listed) => listed,
                Err(Errno::NOENT | Errno::NOTDIR) => continue,
                Err(e) => {
                    t.problems.push((format!("/{dir}").into_bytes(), describe_errno(e)));
                    continue;
                }
            };
            for name in names.into_iter().filter(|n| n.ends_with(b".conf")) {
                if files.contains_key(&name) {
                    continue;
                }
                let rel = [dir.as_bytes(), b"/", &name].concat();
                let shown = [b"/", rel.as_slice()].concat();
                // A link to /dev/null masks the name (tmpfiles.d(5)).
                if crate::sys::root::read_link_beneath(fd.as_fd(), &name).is_ok_and(|to| to == b"/dev/null") {
                    files.insert(name, (shown, Vec::new()));
                    continue;
                }
                let text = root.read_config(&rel).unwrap_or_else(|e| {
                    t.problems.push((shown.clone(), e.to_string()));
                    Vec::new()
                });
                files.insert(name, (shown, text));
            }
        }
        t.lines = effective(files.into_values());
        t
    }

    /// The configuration that could not be read, as (path, why), for the
    /// report: what it would create is not known.
    pub fn problems(&self) -> &[(Vec<u8>, String)] {
        &self.problems
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// One rule of kind `recreated` per object, its origin the file and
    /// line that creates it.
    pub fn rules(&self) -> Vec<(Rule, Says)> {
        self.lines
            .iter()
            .filter_map(|l| {
                // A literal path: tmpfiles lines with globs are left out.
                let pattern = Pattern::literal(&l.path).ok()?;
                let origin = Origin::RootFile { path: l.file.clone(), line: l.line };
                Some((
                    Rule { kind: RuleKind::Recreated, pattern, origin, reason: None },
                    Says::Tmpfiles(l.object),
                ))
            })
            .collect()
    }
}

/// The lines of `files` (path, text), in the order given: the first line
/// for a path wins (files come in lexical order of their names).
fn effective(files: impl Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Vec<Line> {
    let mut seen = HashSet::new();
    let mut lines = Vec::new();
    for (file, text) in files {
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            if let Some((path, object)) = parse_line(line) {
                if seen.insert(path.clone()) {
                    lines.push(Line { path, object, file: file.clone(), line: i + 1 });
                }
            }
        }
    }
    lines
}

/// Splits a line into fields: whitespace-separated, `"..."` quoting with
/// C escapes.
fn fields(line: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        let mut field = Vec::new();
        if line[i] == b'"' {
            i += 1;
            while i < line.len() && line[i] != b'"' {
                if line[i] == b'\\' && i + 1 < line.len() {
                    i += 1;
                    field.push(match line[i] {
                        b'n' => b'\n',
                        b't' => b'\t',
                        c => c,
                    });
                } else {
                    field.push(line[i]);
                }
                i += 1;
            }
            i += 1;
        } else {
            while i < line.len() && !line[i].is_ascii_whitespace() {
                field.push(line[i]);
                i += 1;
            }
        }
        out.push(field);
    }
    out
}

/// Resolves the system specifiers of a path; `None` for one it cannot.
fn resolve(path: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        if path[i] != b'%' {
            out.push(path[i]);
            i += 1;
            continue;
        }
        let expanded: &[u8] = match path.get(i + 1)? {
            b'S' => b"/var/lib",
            b'C' => b"/var/cache",
            b'L' => b"/var/log",
            b't' => b"/run",
            b'T' => b"/tmp",
            b'V' => b"/var/tmp",
            b'E' => b"/etc",
            b'h' => b"/root",
            b'%' => b"%",
            _ => return None,
        };
        out.extend_from_slice(expanded);
        i += 2;
    }
    Some(out)
}

/// One line: the path and what is created there, for the kept types.
pub fn parse_line(line: &[u8]) -> Option<(Vec<u8>, Object)> {
    let line = line.trim_ascii();
    if line.is_empty() || line.starts_with(b"#") {
        return None;
    }
    let f = fields(line);
    let (kind, path) = (f.first()?, f.get(1)?);
    let letter = *kind.first()?;
    if !kind[1..].iter().all(|b| b"+!-=~^".contains(b)) {
        return None;
    }
    let object = match letter {
        b'L' => Object::Symlink,
        b'd' | b'D' => Object::Directory,
        b'f' | b'F' => Object::File,
        b'C' => Object::Copy,
        _ => return None,
    };
    let path = resolve(path)?;
    if !path.starts_with(b"/") || path.iter().any(|b| b"*?[".contains(b)) {
        return None;
    }
    let normal: Vec<u8> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .flat_map(|c| [&b"/"[..], c].concat())
        .collect();
    (!normal.is_empty()).then_some((normal, object))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Option<(String, Object)> {
        parse_line(line.as_bytes()).map(|(p, o)| (String::from_utf8_lossy(&p).into_owned(), o))
    }

    #[test]
    fn lines_by_type_modifier_and_specifier() {
        assert_eq!(
            parse("d /var/lib/foo 0755 root root -"),
            Some(("/var/lib/foo".into(), Object::Directory))
        );
        assert_eq!(
            parse("L+ /etc/localtime - - - - /etc/zoneinfo/UTC"),
            Some(("/etc/localtime".into(), Object::Symlink))
        );
        assert_eq!(parse("f! %S/bar/state 0600"), Some(("/var/lib/bar/state".into(), Object::File)));
        assert_eq!(parse("C- %t/copied - - - - /usr/share/x"), Some(("/run/copied".into(), Object::Copy)));
        assert_eq!(parse("D %L/app//./logs"), Some(("/var/log/app/logs".into(), Object::Directory)));
        assert_eq!(
            parse(r#"d "/var/lib/with space" 0755"#),
            Some(("/var/lib/with space".into(), Object::Directory))
        );
        assert_eq!(parse("d /home/%u/x"), None, "per-user specifier: cannot be resolved");
        assert_eq!(parse("r /tmp/x"), None, "removals create nothing");
        assert_eq!(parse("d /var/lib/*/x"), None);
        assert_eq!(parse("# d /commented"), None);
        assert_eq!(parse("d? /x"), None, "an unknown modifier");
        assert_eq!(parse("d relative"), None);
    }

    #[test]
    fn the_first_line_for_a_path_wins_and_keeps_its_origin() {
        let files = vec![
            (b"/etc/tmpfiles.d/a.conf".to_vec(), b"# a\nd /var/lib/x\n\nf /var/lib/x 0600\n".to_vec()),
            (b"/usr/lib/tmpfiles.d/b.conf".to_vec(), b"L /var/lib/x\nL+ /etc/localtime\n".to_vec()),
        ];
        let lines = effective(files.into_iter());
        let got: Vec<(&[u8], Object, &[u8], usize)> =
            lines.iter().map(|l| (&l.path[..], l.object, &l.file[..], l.line)).collect();
        assert_eq!(
            got,
            [
                (&b"/var/lib/x"[..], Object::Directory, &b"/etc/tmpfiles.d/a.conf"[..], 2),
                (b"/etc/localtime", Object::Symlink, b"/usr/lib/tmpfiles.d/b.conf", 2),
            ]
        );
        let t = Tmpfiles { lines, problems: Vec::new() };
        let origins: Vec<String> = t.rules().iter().map(|(r, _)| r.origin.to_string()).collect();
        assert_eq!(origins, ["/etc/tmpfiles.d/a.conf:2", "/usr/lib/tmpfiles.d/b.conf:2"]);
    }
}
