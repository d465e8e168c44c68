//! Retention: which archives a rollback prunes, and why it keeps the
//! others. Pure, so every rule is tested here; the backends list the
//! archives (with where they are mounted and whether they hold data) and
//! turn the verdicts into steps.
//!
//! An archive is kept when it is the newest (the one this rollback
//! makes), when darlings did not make it, when it or something in it is
//! mounted (pruning it would pull a filesystem from under its users), when
//! it is among the newest `--retain N` archives *that hold data*, or
//! younger than `--retain-days D`. Without either flag nothing is pruned.
//! An archive that holds nothing its blank state does not (a rollback of a
//! root that was already blank) does not count towards N: two rollbacks in
//! a row with `--retain 1` keep the archive with the data, not only the
//! empty one.

use super::Archive;

/// `--retain` and `--retain-days`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub count: Option<u32>,
    pub days: Option<u32>,
}

impl Retention {
    pub fn asked(self) -> bool {
        self.count.is_some() || self.days.is_some()
    }
}

/// What retention does with one archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// Kept, and why (for people).
    Keep(String),
    Prune,
}

/// Every archive (`archives` and `newest`, the one this rollback makes)
/// with its verdict, newest first.
pub fn retain(archives: &[Archive], newest: &Archive, rules: Retention, now: i64) -> Vec<(Archive, Kept)> {
    let mut all: Vec<Archive> = archives
        .iter()
        .filter(|a| a.name != newest.name)
        .cloned()
        .chain(std::iter::once(newest.clone()))
        .collect();
    super::newest_first(&mut all);
    let mut holding = 0u64;
    all.into_iter()
        .map(|a| {
            let holds = a.holds_data();
            let rank = holding;
            if a.ours && holds {
                holding += 1;
            }
            let verdict = if a.name == newest.name {
                Kept::Keep("the newest: this rollback makes it".into())
            } else if !a.ours {
                Kept::Keep("not made by darlings (its name is not a darlings stamp)".into())
            } else if !a.mounted.is_empty() {
                Kept::Keep(format!(
                    "mounted at {}: never pruned while mounted",
                    a.mounted.iter().map(|m| super::shown(m).into_owned()).collect::<Vec<_>>().join(", ")
                ))
            } else if !rules.asked() {
                Kept::Keep("no retention asked".into())
            } else if let Some(n) = rules.count.filter(|n| holds && rank < u64::from(*n)) {
                Kept::Keep(format!("one of the newest {n} that hold data (--retain {n})"))
            } else if let Some(d) = rules
                .days
                .filter(|d| a.created.is_some_and(|c| now.saturating_sub(c) < i64::from(*d) * 86_400))
            {
                Kept::Keep(format!("younger than {d} days (--retain-days {d})"))
            } else {
                Kept::Prune
            };
            (a, verdict)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{parse_stamp, stamp};
    use super::*;

    fn archive(name: &str) -> Archive {
        Archive {
            name: name.into(),
            created: parse_stamp(name),
            ours: parse_stamp(name).is_some(),
            ..Archive::default()
        }
    }

    fn pruned(list: &[Archive], newest: &Archive, rules: Retention, now: i64) -> Vec<String> {
        retain(list, newest, rules, now)
            .into_iter()
            .filter(|(_, k)| *k == Kept::Prune)
            .map(|(a, _)| a.name)
            .collect()
    }

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_795_702_030;

    fn five_days() -> (Vec<String>, Vec<Archive>) {
        let names: Vec<String> = (1..=5).map(|d| stamp(NOW - d * DAY - 60)).collect();
        let mut list: Vec<Archive> = names.iter().map(|n| archive(n)).collect();
        list.push(Archive { name: "2025-01-01_00:00:00".into(), created: Some(0), ..Archive::default() });
        (names, list)
    }

    #[test]
    fn retention_keeps_the_newest_and_what_either_rule_keeps() {
        let (names, list) = five_days();
        let newest = archive(&stamp(NOW));
        let count = |n| Retention { count: Some(n), days: None };
        let days = |d| Retention { count: None, days: Some(d) };
        // Nothing asked: nothing pruned.
        assert!(pruned(&list, &newest, Retention::default(), NOW).is_empty());
        // The newest 2 (the new one and yesterday's) stay.
        assert_eq!(pruned(&list, &newest, count(2), NOW), names[1..].to_vec());
        // Younger than 3 days: 1 and 2 days old stay.
        assert_eq!(pruned(&list, &newest, days(3), NOW), names[2..].to_vec());
        // Either rule keeps: 3 newest (new, 1, 2 days) or younger than 4 days (1..3).
        assert_eq!(
            pruned(&list, &newest, Retention { count: Some(3), days: Some(4) }, NOW),
            names[3..].to_vec()
        );
        // The newest is never pruned, whatever its age says.
        let old_newest = archive(&stamp(NOW - 100 * DAY));
        assert!(pruned(&[], &old_newest, days(1), NOW).is_empty());
        // Archives darlings did not make are never pruned.
        assert!(!pruned(&list, &newest, count(1), NOW).iter().any(|n| n.contains('_')));
    }

    #[test]
    fn a_mounted_archive_is_never_pruned_and_the_plan_says_why() {
        let (names, mut list) = five_days();
        list[3].mounted = vec!["/mnt/old root".into()];
        let newest = archive(&stamp(NOW));
        let verdicts = retain(&list, &newest, Retention { count: Some(1), days: None }, NOW);
        let of = |name: &str| verdicts.iter().find(|(a, _)| a.name == name).map(|(_, k)| k.clone()).unwrap();
        assert_eq!(of(&names[3]), Kept::Keep("mounted at /mnt/old root: never pruned while mounted".into()));
        assert_eq!(of(&newest.name), Kept::Keep("the newest: this rollback makes it".into()));
        assert_eq!(of(&names[0]), Kept::Prune);
        assert_eq!(verdicts.iter().filter(|(_, k)| *k == Kept::Prune).count(), 4);
        assert!(
            matches!(of("2025-01-01_00:00:00"), Kept::Keep(why) if why.starts_with("not made by darlings"))
        );
    }

    #[test]
    fn an_empty_archive_does_not_count_towards_retain() {
        // Two rollbacks in a row with --retain 1: the second archive is a
        // blank root; the first holds the data and stays.
        let first = Archive { holds: Some(true), ..archive(&stamp(NOW - 60)) };
        let second = Archive { holds: Some(false), ..archive(&stamp(NOW)) };
        let one = Retention { count: Some(1), days: None };
        assert!(pruned(std::slice::from_ref(&first), &second, one, NOW).is_empty());
        // A third, empty again: the empty second goes, the data stays.
        let both = vec![first.clone(), second.clone()];
        let third = Archive { holds: Some(false), ..archive(&stamp(NOW + 60)) };
        assert_eq!(pruned(&both, &third, one, NOW + 60), [second.name.as_str()]);
        // Data again: now the old data is one too many.
        let fourth = Archive { holds: Some(true), ..archive(&stamp(NOW + 120)) };
        assert_eq!(pruned(&both, &fourth, one, NOW + 120), [second.name.clone(), first.name.clone()]);
        // Not known whether it holds data: counted as holding it.
        let unknown = Archive { holds: None, ..archive(&stamp(NOW - 120)) };
        assert_eq!(pruned(&[unknown.clone(), first], &second, one, NOW), [unknown.name]);
    }
}
