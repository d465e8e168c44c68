//! State that comes back at boot, but different: a new identity.
//!
//! systemd and NixOS recreate these when they are missing, so nothing
//! fails at the next boot, yet what depends on the old value breaks
//! quietly: the journal starts a new directory, SSH clients see a new host,
//! files on persistent storage end up owned by other uids. They get the
//! verdict `new-identity`, a loss, instead of `unclaimed`.
//!
//! The walk asks only inside the few directories listed here: a directory
//! learns once, when it is entered, whether any of its entries can be one.

use globset::{Glob, GlobMatcher};
use std::sync::OnceLock;

/// (directory, file-name pattern, what changes)
const IDENTITIES: &[(&str, &str, &str)] = &[
    ("/etc", "machine-id", "a new machine id: a new journal directory, a new DHCP identity"),
    ("/etc/ssh", "ssh_host_*", "new SSH host keys: clients see another host"),
    ("/var/lib/nixos", "*", "uid and gid maps rebuilt: ids may change"),
    ("/var/lib/systemd", "random-seed", "a new random seed"),
    (
        "/var/lib/NetworkManager",
        "secret_key",
        "a new NetworkManager secret: new stable IPv6 addresses and MACs",
    ),
];

fn matchers() -> &'static [Option<GlobMatcher>] {
    static M: OnceLock<Vec<Option<GlobMatcher>>> = OnceLock::new();
    M.get_or_init(|| {
        IDENTITIES.iter().map(|(_, name, _)| Glob::new(name).ok().map(|g| g.compile_matcher())).collect()
    })
}

/// Which identity directory `dir` is, if any.
pub fn directory(dir: &[u8]) -> Option<u8> {
    IDENTITIES.iter().position(|(d, _, _)| d.as_bytes() == dir).map(|i| i as u8)
}

/// What changes when `name` in identity directory `dir` is recreated.
pub fn reason(dir: u8, name: &[u8]) -> Option<&'static str> {
    let (_, _, why) = IDENTITIES.get(usize::from(dir))?;
    let matcher = matchers().get(usize::from(dir))?.as_ref()?;
    let name = std::str::from_utf8(name).ok()?;
    matcher.is_match(name).then_some(*why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_by_directory_and_name() {
        let etc = directory(b"/etc").expect("/etc");
        assert!(reason(etc, b"machine-id").is_some());
        assert!(reason(etc, b"hostname").is_none());
        let ssh = directory(b"/etc/ssh").expect("/etc/ssh");
        assert!(reason(ssh, b"ssh_host_ed25519_key").is_some());
        assert!(reason(ssh, b"sshd_config").is_none());
        assert!(directory(b"/etc/nixos").is_none());
    }
}
