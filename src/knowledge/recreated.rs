//! What NixOS recreates at boot, identically: erasing it loses nothing.
//!
//! - links into `/etc/static` or the Nix store (`/etc/static` itself, every
//!   `/etc` link of the configuration, home-manager's links in homes);
//! - the files `/etc/.clean` lists, which activation copies from the
//!   configuration (a local edit to one of them is lost: the finding says so);
//! - `/etc/NIXOS`, `/etc/.clean`, `/etc/.updated`, `/var/.updated`,
//!   `/bin/sh`, `/usr/bin/env`;
//! - files their services write anew at boot: `/etc/resolv.conf`,
//!   `/etc/printcap`, `/var/lib/systemd/catalog/database`.
//!
//! Each is a rule of kind `recreated` whose pattern is the matcher's
//! [`Pattern`]: on paths (origin `built-in: …`, or `/etc/.clean:LINE`), or,
//! for links, on the link's target. Targets are read only in the
//! directories where such links live ([`area`]).

use crate::claims::matcher::{Origin, Pattern, Rule, RuleKind};
use crate::sys::root::ReadError;
use crate::sys::root::Root;

use super::Says;

/// The detail of a file copied from the configuration.
pub const CLEAN: &str = "copied from the configuration at boot (a local edit to it is lost)";

/// The origins of the built-in rules.
pub const ACTIVATION: &str = "NixOS activation";
pub const SERVICES: &str = "written at boot by its service";
pub const LINKS: &str = "links NixOS recreates from its configuration";

const FIXED: &[&str] =
    &["/etc/NIXOS", "/etc/.clean", "/etc/.updated", "/var/.updated", "/bin/sh", "/usr/bin/env"];

/// Written anew at boot by the services that own them.
const GENERATED: &[&str] = &["/etc/resolv.conf", "/etc/printcap", "/var/lib/systemd/catalog/database"];

/// Patterns on a symlink's target, and why such a link comes back.
const TARGETS: &[(&str, &str)] = &[
    ("/etc/static", "a link into /etc/static, recreated from the configuration"),
    ("/nix/store/*", "a link into the Nix store, recreated from the configuration"),
];

/// Whether entries of the directory `dir` can be links NixOS recreates.
pub fn area(dir: &[u8]) -> bool {
    let under = |top: &[u8]| dir == top || (dir.starts_with(top) && dir.get(top.len()) == Some(&b'/'));
    under(b"/etc")
        || under(b"/home")
        || under(b"/root")
        || dir == b"/var"
        || dir == b"/bin"
        || dir == b"/usr/bin"
        || dir == b"/var/lib/systemd/catalog"
}

fn recreated(pattern: &str, origin: Origin, why: &'static str) -> Option<(Rule, Says)> {
    // Every built-in pattern parses (tested): nothing is dropped.
    let pattern = Pattern::parse(pattern.as_bytes()).ok()?;
    Some((Rule { kind: RuleKind::Recreated, pattern, origin, reason: None }, Says::Recreated(why)))
}

/// Activation's own files and the files services write anew at boot.
pub fn rules() -> Vec<(Rule, Says)> {
    let generated = GENERATED.iter().filter_map(|p| {
        recreated(p, Origin::BuiltIn(SERVICES), "written anew at boot by the service that owns it")
    });
    let fixed = FIXED
        .iter()
        .filter_map(|p| recreated(p, Origin::BuiltIn(ACTIVATION), "recreated by NixOS activation"));
    generated.chain(fixed).collect()
}

/// The rules on a symlink's target.
pub fn link_rules() -> Vec<(Rule, Says)> {
    TARGETS.iter().filter_map(|&(p, why)| recreated(p, Origin::BuiltIn(LINKS), why)).collect()
}

/// The paths `/etc/.clean` lists, one rule each (origin `/etc/.clean:LINE`),
/// read as a configuration file of the root (links resolved inside it; a
/// regular file, size-capped). A missing file lists nothing; a FIFO,
/// device or oversized file is an error. A line naming no path of `/etc`
/// (`..`, a NUL) is left out.
pub fn read_etc_clean(root: &Root) -> Result<Vec<(Rule, Says)>, ReadError> {
    match root.read_config(b"etc/.clean") {
        Ok(text) => Ok(clean_rules(&text)),
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The rules of an `/etc/.clean` whose text is `text`.
pub fn clean_rules(text: &[u8]) -> Vec<(Rule, Says)> {
    text.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_ascii()))
        .filter(|(_, l)| !l.is_empty())
        .filter_map(|(line, l)| {
            let path = [&b"/etc/"[..], l.strip_prefix(b"./").unwrap_or(l)].concat();
            let pattern = Pattern::literal(&path).ok()?;
            let origin = Origin::RootFile { path: b"/etc/.clean".to_vec(), line };
            Some((Rule { kind: RuleKind::Recreated, pattern, origin, reason: None }, Says::Recreated(CLEAN)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_and_built_in_rules() {
        assert!(area(b"/etc") && area(b"/etc/systemd/system") && area(b"/home/alice/.config"));
        assert!(!area(b"/etcetera") && !area(b"/var/lib") && !area(b"/"));
        assert!(area(b"/var/lib/systemd/catalog"));
        let rules = rules();
        assert_eq!(rules.len(), FIXED.len() + GENERATED.len(), "every built-in pattern parses");
        assert!(rules.iter().all(|(r, _)| r.kind == RuleKind::Recreated && !r.pattern.is_glob()));
        assert_eq!(link_rules().len(), TARGETS.len());
    }

    #[test]
    fn etc_clean_lines_are_literal_paths_with_their_line() {
        let rules = clean_rules(b"passwd\n\n./group\n  ssh/ssh_config  \nbad/../x\nstar*[1]\n");
        let got: Vec<(String, String)> =
            rules.iter().map(|(r, _)| (r.pattern.text().into_owned(), r.origin.to_string())).collect();
        assert_eq!(
            got,
            [
                ("/etc/passwd".to_owned(), "/etc/.clean:1".to_owned()),
                ("/etc/group".into(), "/etc/.clean:3".into()),
                ("/etc/ssh/ssh_config".into(), "/etc/.clean:4".into()),
                ("/etc/star*[1]".into(), "/etc/.clean:6".into()),
            ]
        );
        assert!(rules.iter().all(|(r, s)| !r.pattern.is_glob() && *s == Says::Recreated(CLEAN)));
    }
}
