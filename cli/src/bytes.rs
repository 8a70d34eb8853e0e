//! Printing keys, values and names safely, and parsing keys given on the
//! command line.
//!
//! Rule (docs/CLI.md, "Keys and values"): bytes that are valid UTF-8 without
//! invisible characters (controls, format characters such as bidi overrides
//! and zero-width spaces, line and paragraph separators) print as they are;
//! anything else prints as `0x` and hex digits. Printable text that could be
//! mistaken for something else — empty, starting with `0x` or `"`, with
//! leading, trailing or repeated spaces, or holding `…` — prints quoted, in
//! JSON string syntax. So every output maps back to exactly one byte string,
//! and two columns separated by two spaces cannot run into each other.

use serde::Serialize;
use std::fmt::Write;

/// `bytes` for a human reader (see the module rule).
pub fn show(bytes: &[u8]) -> String {
    match printable(bytes) {
        Some(text) if needs_quotes(text) => {
            serde_json::to_string(text).expect("a string always serializes")
        }
        Some(text) => text.to_string(),
        None => format!("0x{}", hex(bytes)),
    }
}

/// How many bytes of a key or a value human output shows before
/// `… (+N bytes)`.
pub const PREVIEW: usize = 200;

/// Like [`show`], but at most `max` bytes of `bytes`, with a note of how many
/// more there are.
pub fn show_at_most(bytes: &[u8], max: usize) -> String {
    if bytes.len() <= max {
        return show(bytes);
    }
    // Cut at a character boundary when the bytes are text.
    let mut cut = max;
    if let Some(text) = printable(bytes) {
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
    }
    format!("{}… (+{} bytes)", show(&bytes[..cut]), bytes.len() - cut)
}

/// A text from a file (a name, a source): shown by the same rule.
pub fn show_text(text: &str) -> String {
    show(text.as_bytes())
}

/// A map as `{name=value, ...}` in name order, names shown by the rule.
pub fn show_map<V: std::fmt::Display>(map: &std::collections::BTreeMap<String, V>) -> String {
    let items: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{}={v}", show_text(k)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// A path by the same rule (its bytes, as the operating system holds them).
pub fn show_path(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    show(path.as_os_str().as_bytes())
}

/// A message for a terminal: every invisible character (see [`invisible`])
/// replaced by its `\u{..}` escape, everything else as it is. For messages
/// that embed file names, which [`show`] cannot take apart.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if invisible(c) {
            write!(out, "\\u{{{:x}}}", c as u32).expect("writing to a String cannot fail");
        } else {
            out.push(c);
        }
    }
    out
}

/// The text, when `bytes` are valid UTF-8 without invisible characters.
fn printable(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    (!text.chars().any(invisible)).then_some(text)
}

/// Characters that do not show as themselves on a terminal: controls (Cc),
/// the format characters (Cf) that reorder or hide text, the line and
/// paragraph separators (Zl, Zp), and whitespace other than the plain space.
fn invisible(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c,
            '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}')
}

fn needs_quotes(text: &str) -> bool {
    text.is_empty()
        || text.starts_with("0x")
        || text.starts_with('"')
        || text.starts_with(' ')
        || text.ends_with(' ')
        || text.contains("  ")
        || text.contains('…')
}

/// Lower-case hex digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        write!(out, "{b:02x}").expect("writing to a String cannot fail");
    }
    out
}

/// Parses hex digits (an optional `0x` prefix, even length).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{text:?} is not hex digits"));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(format!("{text:?} has an odd number of hex digits"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .map_err(|_| format!("{text:?} is not hex digits"))
        })
        .collect()
}

/// A byte string in JSON: `utf8` when the bytes are valid UTF-8 (JSON escapes
/// any control characters), and always `hex`.
#[derive(Debug, Serialize)]
pub struct JsonBytes {
    /// The bytes as text, or `null` when they are not UTF-8.
    pub utf8: Option<String>,
    /// The bytes as lower-case hex digits.
    pub hex: String,
}

impl JsonBytes {
    /// `bytes` as JSON.
    pub fn of(bytes: &[u8]) -> Self {
        JsonBytes {
            utf8: std::str::from_utf8(bytes).ok().map(str::to_string),
            hex: hex(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_is_shown_as_is() {
        assert_eq!(show(b"user:42"), "user:42");
        assert_eq!(show("Zürich".as_bytes()), "Zürich");
    }

    #[test]
    fn binary_and_control_characters_are_hex() {
        assert_eq!(show(&[0, 1, 0xff]), "0x0001ff");
        assert_eq!(show(b"a\nb"), "0x610a62");
        assert_eq!(show(b"\x1b[31mred"), "0x1b5b33316d726564");
        assert_eq!(show(&[0xc3]), "0xc3");
    }

    #[test]
    fn invisible_characters_are_hex() {
        assert_eq!(show("a\u{202e}b".as_bytes()), "0x61e280ae62");
        assert_eq!(show("a\u{200b}".as_bytes()), "0x61e2808b");
        assert_eq!(show("a\u{2028}b".as_bytes()), "0x61e280a862");
        assert_eq!(show(b"a\tb"), "0x610962");
        assert_eq!(sanitize("x\u{1b}[2J\u{202e}y"), "x\\u{1b}[2J\\u{202e}y");
    }

    #[test]
    fn lookalikes_are_quoted() {
        assert_eq!(show(b"a  b"), "\"a  b\"");
        assert_eq!(show("x… (+3 bytes)".as_bytes()), "\"x… (+3 bytes)\"");
        assert_eq!(show(b"a b"), "a b");
        assert_eq!(show(b""), "\"\"");
        assert_eq!(show(b"0xff"), "\"0xff\"");
        assert_eq!(show(b" padded"), "\" padded\"");
        assert_eq!(show(b"\"q\""), "\"\\\"q\\\"\"");
    }

    #[test]
    fn long_values_are_cut_at_a_character_boundary() {
        assert_eq!(show_at_most(b"abcdef", 4), "abcd… (+2 bytes)");
        assert_eq!(show_at_most("ééé".as_bytes(), 3), "é… (+4 bytes)");
        assert_eq!(show_at_most(&[1, 2, 3], 2), "0x0102… (+1 bytes)");
        assert_eq!(show_at_most(b"abc", 3), "abc");
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        assert_eq!(parse_hex("0x00ff10").unwrap(), vec![0, 0xff, 0x10]);
        assert_eq!(parse_hex(&hex(b"key")).unwrap(), b"key");
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
        assert!(parse_hex("aé0").is_err());
        assert!(parse_hex("+a+b").is_err());
    }
}
