//! Output formats. Each takes the finished [`Report`](crate::report::Report) and a writer; none
//! touches the filesystem.

pub mod explain;
pub mod json;
pub mod prometheus;
pub mod suggest;
pub mod table;

pub use crate::sys::fmt::{human_size, rfc3339};

/// A total's size and allocated size for a table: "unknown" (not "0 B")
/// where a finding in it has no size (see [`Total::sized`]).
///
/// [`Total::sized`]: crate::report::Total::sized
pub fn total_sizes(t: &crate::report::Total) -> (String, String) {
    match t.sized() {
        Some((bytes, disk)) => (human_size(bytes), human_size(disk)),
        None => ("unknown".to_owned(), "unknown".to_owned()),
    }
}

/// A total's size in a sentence: "1.2 KiB", or "size unknown".
pub fn total_size_words(t: &crate::report::Total) -> String {
    t.sized().map_or_else(|| "size unknown".to_owned(), |(bytes, _)| human_size(bytes))
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
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(1_795_702_030).as_deref(), Some("2026-11-26T14:07:10Z"));
    }
}
