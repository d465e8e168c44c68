//! Sizes and times as darlings prints them.

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

/// The times RFC 3339 can write, in seconds since the epoch: years 0000
/// to 9999 (0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z).
pub const RFC3339_RANGE: std::ops::RangeInclusive<i64> = -62_167_219_200..=253_402_300_799;

/// RFC 3339 in UTC with whole seconds: `2026-11-26T14:27:10Z` (what jq's
/// `fromdateiso8601` reads). `None` outside [`RFC3339_RANGE`]: a file's
/// mtime can be any 64-bit number (year 300000, or before year 0), which
/// RFC 3339 cannot write; JSON shows `null` then, with a note, rather than
/// a number where a date string is promised.
pub fn rfc3339(secs: i64) -> Option<String> {
    if !RFC3339_RANGE.contains(&secs) {
        return None;
    }
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
}

/// [`rfc3339`] for people: a time RFC 3339 cannot write is said in words.
pub fn time_text(secs: i64) -> String {
    rfc3339(secs).unwrap_or_else(|| format!("{secs} s from 1970 (beyond year 0000-9999)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_rfc3339_cannot_write_are_none() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(*RFC3339_RANGE.start()).as_deref(), Some("0000-01-01T00:00:00Z"));
        assert_eq!(rfc3339(*RFC3339_RANGE.end()).as_deref(), Some("9999-12-31T23:59:59Z"));
        assert_eq!(rfc3339(RFC3339_RANGE.start() - 1), None);
        assert_eq!(rfc3339(RFC3339_RANGE.end() + 1), None);
        // Year 300000, and before year 0000 (what tmpfs stores as given).
        assert_eq!(rfc3339(9_467_000_000_000), None);
        assert_eq!(rfc3339(-70_000_000_000), None);
        assert_eq!(rfc3339(i64::MIN), None);
        assert_eq!(rfc3339(i64::MAX), None);
        assert_eq!(time_text(0), "1970-01-01T00:00:00Z");
        assert!(time_text(i64::MAX).contains("beyond year"));
    }
}
