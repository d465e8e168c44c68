//! Output formats. Each takes the finished [`Report`] and a writer; none
//! touches the filesystem.

pub mod explain;
pub mod json;
pub mod prometheus;
pub mod suggest;
pub mod table;

use std::collections::HashSet;

use crate::report::{Finding, Report, Verdict};

/// What is shown (never what is counted).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these verdicts; `None`: all.
    pub verdicts: Option<HashSet<Verdict>>,
    /// Only findings of at least this many bytes.
    pub min_size: Option<u64>,
}

impl Filter {
    pub fn shows(&self, f: &Finding) -> bool {
        self.verdicts.as_ref().is_none_or(|v| v.contains(&f.verdict))
            && self.min_size.is_none_or(|min| f.size.unwrap_or(0) >= min)
    }

    pub fn shown<'a>(&'a self, report: &'a Report) -> impl Iterator<Item = &'a Finding> + 'a {
        report.findings.iter().filter(move |f| self.shows(f))
    }
}

/// `0 B`, `1023 B`, `1.0 KiB`, `12.3 MiB`: powers of 1024.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// RFC 3339 in UTC with whole seconds: `2026-11-26T14:27:10Z` (what jq's
/// `fromdateiso8601` reads).
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_du_h() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1536 * 1024), "1.5 MiB");
        assert_eq!(human_size(5 << 40), "5.0 TiB");
    }

    #[test]
    fn times_are_utc_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_702_030), "2026-11-26T14:07:10Z");
    }
}
