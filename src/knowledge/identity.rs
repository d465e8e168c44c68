//! State that comes back at boot, but different: a new identity.
//!
//! systemd and NixOS recreate these when they are missing, so nothing
//! fails at the next boot, yet what depends on the old value breaks
//! quietly: the journal starts a new directory, SSH clients see a new host,
//! files on persistent storage end up owned by other uids. They get the
//! verdict `new-identity`, a loss, instead of `unclaimed`.
//!
//! Each is a rule of kind `identity` (origin `built-in: …`) whose pattern
//! is the matcher's [`Pattern`]: a path, or a glob with wildcards in its
//! last component only, so the walk asks only in the directories holding
//! them (see [`super::Knowledge`]).

use crate::claims::matcher::{Origin, Pattern, Rule, RuleKind};

use super::Says;

/// The origin of every identity rule.
pub const ORIGIN: &str = "identities systemd and NixOS recreate at boot";

/// (pattern, what changes)
const IDENTITIES: &[(&str, &str)] = &[
    ("/etc/machine-id", "a new machine id: a new journal directory, a new DHCP identity"),
    ("/etc/ssh/ssh_host_*", "new SSH host keys: clients see another host"),
    ("/var/lib/nixos/*", "uid and gid maps rebuilt: ids may change"),
    ("/var/lib/systemd/random-seed", "a new random seed"),
    ("/var/lib/NetworkManager/secret_key", "a new NetworkManager secret: new stable IPv6 addresses and MACs"),
];

/// The identity rules, with what each says.
pub fn rules() -> Vec<(Rule, Says)> {
    IDENTITIES
        .iter()
        .filter_map(|&(pattern, why)| {
            // Every built-in pattern parses (tested): nothing is dropped.
            let pattern = Pattern::parse(pattern.as_bytes()).ok()?;
            let rule =
                Rule { kind: RuleKind::Identity, pattern, origin: Origin::BuiltIn(ORIGIN), reason: None };
            Some((rule, Says::Identity(why)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_identity_pattern_parses_as_a_keep_rule_would() {
        let rules = rules();
        assert_eq!(rules.len(), IDENTITIES.len());
        let globs: Vec<String> =
            rules.iter().filter(|(r, _)| r.pattern.is_glob()).map(|(r, _)| r.pattern.text().into()).collect();
        assert_eq!(globs, ["/etc/ssh/ssh_host_*", "/var/lib/nixos/*"]);
        assert!(rules.iter().all(|(r, s)| r.kind == RuleKind::Identity && matches!(s, Says::Identity(_))));
    }
}
