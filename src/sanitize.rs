//! Escaping untrusted file names before a terminal sees them.
//!
//! A file name may contain any byte but `/` and NUL: newlines that forge
//! table rows, escape sequences that drive the terminal, bidi controls that
//! reorder what is shown, bytes that are not UTF-8. Everything meant for a
//! person (the table, error messages, progress) goes through [`escape`];
//! machine formats (JSON, Prometheus) have their own exact encodings.
//!
//! A command shown to a person (a plan's commands, a recovery command in a
//! failure message, what `status` recorded) is quoted by [`shell_quote`],
//! the one quoting of the project: pasted into bash, it runs exactly the
//! argv darlings meant, whatever bytes the names hold. Text composed of
//! escaped names and quoted commands is already safe; [`terminal_safe`]
//! leaves it alone and escapes only what is not (text read back from a
//! record, a child's stderr).

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

/// [`escape`] for a path of this machine (a file named on the command
/// line), for messages.
pub fn escape_path(path: &std::path::Path) -> Cow<'_, str> {
    escape(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
}

/// Text for a terminal that is meant to be shown as it is: returned
/// unchanged unless a line of it holds a control, bidi or invisible-format
/// character, then each such line is [`escape`]d whole (newlines stay
/// newlines). Backslashes alone are harmless to a terminal, so escaped
/// names and [`shell_quote`]d commands inside it stay exactly as they were
/// composed (copy-pasteable).
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && unsafe_char(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.split('\n').map(one_line).collect::<Vec<_>>().join("\n"))
}

/// [`terminal_safe`] for text that must stay on one line: a newline in it
/// is escaped too (and then the whole text).
pub fn one_line(text: &str) -> Cow<'_, str> {
    if text.chars().any(unsafe_char) {
        escape(text.as_bytes())
    } else {
        Cow::Borrowed(text)
    }
}

/// One argument as bash reads it back exactly: bare when it holds only
/// characters no shell treats specially; in `'…'` when it holds other
/// printable text; in bash's `$'…'` with `\xNN` escapes (and `\n`,
/// `\t`, `\r`) when it holds a control or invisible character or bytes
/// that are not UTF-8, so no name reaches a terminal raw.
pub fn shell_quote(arg: &[u8]) -> String {
    let text = std::str::from_utf8(arg).ok();
    if let Some(s) = text {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:@=+,%".contains(&b)) {
            return s.to_owned();
        }
        if !s.chars().any(unsafe_char) {
            return format!("'{}'", s.replace('\'', r"'\''"));
        }
    }
    let mut out = String::from("$'");
    for chunk in arg.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if unsafe_char(c) => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\x{b:02X}");
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    out.push('\'');
    out
}

/// A command line for people: each argument [`shell_quote`]d.
pub fn shell_words<S: AsRef<[u8]>>(argv: &[S]) -> String {
    argv.iter().map(|a| shell_quote(a.as_ref())).collect::<Vec<_>>().join(" ")
}

fn needs_escape(c: char) -> bool {
    c == '\\' || unsafe_char(c)
}

/// Whether `c` must never reach a terminal raw: a control character (C0,
/// DEL, C1) or an invisible format character (bidi, zero-width). The one
/// definition of it: [`escape`], [`shell_quote`] and the Nix snippet of
/// `--suggest` ask here.
pub fn unsafe_char(c: char) -> bool {
    c.is_control() || is_format(c)
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
        c if unsafe_char(c) => {
            let _ = write!(out, "\\u{{{:04X}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::{escape, one_line, shell_quote, shell_words, terminal_safe, unsafe_char};

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
    fn text_already_safe_is_left_as_composed() {
        let text = "Finish with `mv -- $'a\\nb' 'c d'`";
        assert_eq!(terminal_safe(text), text);
        assert_eq!(terminal_safe("two\nlines \\ kept"), "two\nlines \\ kept");
        assert_eq!(terminal_safe("ok \\ line\nraw\x1b[31m \\"), "ok \\ line\nraw\\x1B[31m \\\\");
        assert_eq!(one_line("raw\nline"), "raw\\nline");
        assert_eq!(one_line("plain \\ text"), "plain \\ text");
    }

    #[test]
    fn quoted_arguments_read_back_exactly_in_bash() {
        let nasty: [&[u8]; 11] = [
            b"plain/path-1.2",
            b"",
            b"my top; rm -rf ~",
            b"it's",
            b"$(reboot) `x` \"q\" \\ *?[a]",
            b"new\nline\ttab\rcr",
            b"\x1b[31mred\x7f",
            "bidi\u{202E}txt caf\u{e9}".as_bytes(),
            b"bad\xff\xfe utf8 \\x41",
            b"~/home",
            b"'\n'",
        ];
        let words: Vec<String> = nasty.iter().map(|a| shell_quote(a)).collect();
        for w in &words {
            assert!(!w.chars().any(unsafe_char), "{w:?}");
        }
        // bash prints each argument NUL-terminated: exactly the bytes given.
        let script = format!("printf '%s\\0' {}", words.join(" "));
        let out = std::process::Command::new("bash").arg("-c").arg(&script).output().expect("bash");
        let back: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
        assert_eq!(&back[..nasty.len()], &nasty[..], "{script}");
        assert_eq!(shell_words(&["mv", "--", "a b"]), "mv -- 'a b'");
        assert_eq!(shell_quote(b"a\nb"), "$'a\\nb'");
    }

    #[test]
    fn bidi_and_c1_controls_are_escaped() {
        assert_eq!(escape("evil\u{202E}txt.exe".as_bytes()), "evil\\u{202E}txt.exe");
        assert_eq!(escape("zero\u{200B}width".as_bytes()), "zero\\u{200B}width");
        assert_eq!(escape("c1\u{009B}x".as_bytes()), "c1\\u{009B}x");
    }
}
