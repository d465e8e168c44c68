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
//! Only the directories where these live are looked at (`area`), and only
//! symlinks there cost a `readlink`.

use std::collections::HashSet;

use crate::sys::root::ReadError;
use crate::sys::root::Root;

/// The detail of a file copied from the configuration.
pub const CLEAN: &str = "copied from the configuration at boot (a local edit to it is lost)";

const FIXED: &[&str] =
    &["/etc/NIXOS", "/etc/.clean", "/etc/.updated", "/var/.updated", "/bin/sh", "/usr/bin/env"];

/// Written anew at boot by the services that own them.
const GENERATED: &[&str] = &["/etc/resolv.conf", "/etc/printcap", "/var/lib/systemd/catalog/database"];

/// Whether entries of the directory `dir` can be something NixOS recreates.
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

/// Activation's own files.
pub fn fixed(path: &[u8]) -> Option<&'static str> {
    if GENERATED.iter().any(|f| f.as_bytes() == path) {
        return Some("written anew at boot by the service that owns it");
    }
    FIXED.iter().any(|f| f.as_bytes() == path).then_some("recreated by NixOS activation")
}

/// A symlink recreated from the configuration, by its target.
pub fn link(target: &[u8]) -> Option<&'static str> {
    if target.starts_with(b"/etc/static/") || target == b"/etc/static" {
        Some("a link into /etc/static, recreated from the configuration")
    } else if target.starts_with(b"/nix/store/") {
        Some("a link into the Nix store, recreated from the configuration")
    } else {
        None
    }
}

/// The paths `/etc/.clean` lists, read as a configuration file of the
/// root (links resolved inside it; a regular file, size-capped). A missing
/// file lists nothing; a FIFO, device or oversized file is an error.
pub fn read_etc_clean(root: &Root) -> Result<HashSet<Vec<u8>>, ReadError> {
    let text = match root.read_config(b"etc/.clean") {
        Ok(text) => text,
        Err(e) if e.is_not_found() => return Ok(HashSet::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty())
        .map(|l| [&b"/etc/"[..], l.strip_prefix(b"./").unwrap_or(l)].concat())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_links_and_fixed_files() {
        assert!(area(b"/etc") && area(b"/etc/systemd/system") && area(b"/home/alice/.config"));
        assert!(!area(b"/etcetera") && !area(b"/var/lib") && !area(b"/"));
        assert!(link(b"/etc/static/systemd/system/x.service").is_some());
        assert!(link(b"/nix/store/abc-home-manager-files/.bashrc").is_some());
        assert!(link(b"/persist/etc/x").is_none());
        assert!(fixed(b"/bin/sh").is_some() && fixed(b"/bin/bash").is_none());
        assert!(fixed(b"/etc/resolv.conf").is_some() && area(b"/var/lib/systemd/catalog"));
    }
}
