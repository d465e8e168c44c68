//! Escaping untrusted file names before a terminal sees them.
//!
//! A file name may contain any byte but `/` and NUL: newlines that forge
//! table rows, escape sequences that drive the terminal, bidi controls that
//! reorder what is shown, bytes that are not UTF-8. Everything meant for a
//! person (the table, error messages, progress) goes through [`escape`];
//! machine formats (JSON, Prometheus) have their own exact encodings.

use std::borrow::Cow;
use std::fmt::Write;

/// Returns `name` with every control, bidi, invisible-format and invalid
/// byte escaped: `\n`, `\t`, `\r`, `\\`, `\xNN` for other ASCII controls
/// and for bytes that are not UTF-8, `\u{NNNN}` for C1 controls and Unicode
/// format characters. Printable text, including non-ASCII, is kept.
pub fn escape(name: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(name) {
        if !s.chars().any(needs_escape) {
            return Cow::Borrowed(s);
        }
    }
    let mut out = String::with_capacity(name.len() + 8);
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c == '\\' || c.is_control() || is_format(c)
}

/// Invisible characters that change how the text around them is shown.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x80 && c.is_control() => {
            let _ = write!(out, "\\x{:02X}", c as u32);
        }
        c if c.is_control() || is_format(c) => {
            let _ = write!(out, "\\u{{{:04X}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn plain_names_are_borrowed() {
        assert!(matches!(escape(b"/var/lib/x y"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(escape("/home/u/résumé.pdf".as_bytes()), "/home/u/résumé.pdf");
    }

    #[test]
    fn controls_and_escapes_are_made_visible() {
        assert_eq!(escape(b"a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(escape(b"\x1b[31mred"), "\\x1B[31mred");
        assert_eq!(escape(b"back\\slash"), "back\\\\slash");
        assert_eq!(escape(b"del\x7f"), "del\\x7F");
    }

    #[test]
    fn invalid_utf8_is_hex() {
        assert_eq!(escape(b"caf\xe9.txt"), "caf\\xE9.txt");
        assert_eq!(escape(b"trunc-\xe2\x82.txt"), "trunc-\\xE2\\x82.txt");
    }

    #[test]
    fn bidi_and_c1_controls_are_escaped() {
        assert_eq!(escape("evil\u{202E}txt.exe".as_bytes()), "evil\\u{202E}txt.exe");
        assert_eq!(escape("zero\u{200B}width".as_bytes()), "zero\\u{200B}width");
        assert_eq!(escape("c1\u{009B}x".as_bytes()), "c1\\u{009B}x");
    }
}
