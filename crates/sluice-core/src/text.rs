//! Text rules shared by the APIs and their OpenAPI documents.

/// Whether `c` is white space as an OpenAPI (ECMA-262) pattern's `\s` reads
/// it: Rust's `char::is_whitespace` without U+0085 and with U+FEFF.
pub fn is_pattern_space(c: char) -> bool {
    (c.is_whitespace() && c != '\u{85}') || c == '\u{FEFF}'
}

/// Whether `s` has nothing but white space: exactly the strings that the
/// pattern `\S` refuses, so a server and its document agree.
pub fn is_blank(s: &str) -> bool {
    s.chars().all(is_pattern_space)
}

/// `8-4-4-4-12` lower-case hexadecimal: the form the APIs answer ids in.
pub fn is_hyphenated_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_what_the_pattern_refuses() {
        assert!(is_blank("") && is_blank(" \t\u{3000}\u{FEFF}"));
        assert!(!is_blank("\u{85}") && !is_blank(" x "));
        assert!(is_hyphenated_uuid("0b6c7d52-7f3a-4c1e-9a55-2f1f6f0c2a11"));
        assert!(!is_hyphenated_uuid("0B6C7D52-7F3A-4C1E-9A55-2F1F6F0C2A11"));
        assert!(!is_hyphenated_uuid("0b6c7d527f3a4c1e9a552f1f6f0c2a11"));
    }
}
