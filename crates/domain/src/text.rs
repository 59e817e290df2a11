//! Making text from outside (a server's error reason, a tool's stderr line, a video title)
//! safe to print and store: control characters and bidirectional overrides removed, and
//! the length bounded in characters.
//!
//! A terminal obeys ESC and BEL, a log reader splits on CR and LF, and a bidi override
//! makes text read differently from what is stored; none of these may come from outside.
//! Every plugin runs what it puts into an error or an item through [`one_line`] or
//! [`multi_line`], and the worker runtime runs every error message through [`one_line`]
//! again before storing it, so one careless plugin cannot forge lines or flood the store.

/// The most characters of one outside detail (a reason code, a parameter name, a tool's
/// error line) kept in an error message.
pub const DETAIL_MAX_CHARS: usize = 1_000;

/// The most characters of a whole error message as stored (`last_error`, the task log).
pub const MESSAGE_MAX_CHARS: usize = 4_000;

/// What replaces the cut-off end of a text longer than its bound.
pub const ELLIPSIS: char = '…';

/// Whether `c` reorders or hides text around it: the bidirectional embeddings, overrides
/// and isolates, and the implicit direction marks.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Whether `c` breaks or spaces a line: CR, LF, TAB, VT, FF, NEL and the Unicode line and
/// paragraph separators.
fn is_break(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// `text` on one line of at most `max_chars` characters: every line break or tab becomes a
/// space, every other control character (C0, DEL, C1: ESC, BEL, …) and every bidi control
/// becomes U+FFFD (so a reader sees that something was there), and a longer text is cut at
/// a character boundary and ends with [`ELLIPSIS`] (counted in `max_chars`).
pub fn one_line(text: &str, max_chars: usize) -> String {
    clean(text, max_chars, false)
}

/// Like [`one_line`], but keeps line feeds (a CR LF pair becomes one LF, a lone CR a LF)
/// and tabs: for text meant to have several lines, such as a video's description.
pub fn multi_line(text: &str, max_chars: usize) -> String {
    clean(text, max_chars, true)
}

fn clean(text: &str, max_chars: usize, keep_lines: bool) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut count = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let mapped = if keep_lines && (c == '\n' || c == '\t') {
            c
        } else if keep_lines && c == '\r' {
            if chars.peek() == Some(&'\n') {
                continue;
            }
            '\n'
        } else if is_break(c) {
            ' '
        } else if c.is_control() || is_bidi_control(c) {
            char::REPLACEMENT_CHARACTER
        } else {
            c
        };
        if count == max_chars {
            // One more character than fits: replace the last kept one with the marker.
            if out.pop().is_some() {
                out.push(ELLIPSIS);
            }
            return out;
        }
        out.push(mapped);
        count += 1;
    }
    out
}

/// Whether `text` is free of everything [`one_line`] replaces.
pub fn is_one_line(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c.is_control() || is_bidi_control(c) || is_break(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn controls_are_replaced_and_breaks_become_spaces() {
        assert_eq!(
            one_line("a\x1b[31mred\x07\r\nerror: forged\tx\u{85}y", 100),
            "a\u{FFFD}[31mred\u{FFFD}  error: forged x y"
        );
        assert_eq!(
            one_line("\u{202E}gnp.exe\u{2066}", 100),
            "\u{FFFD}gnp.exe\u{FFFD}"
        );
        assert_eq!(one_line("\u{9b}2J\u{7f}", 100), "\u{FFFD}2J\u{FFFD}");
        assert_eq!(one_line("plain ünïcode ✓", 100), "plain ünïcode ✓");
    }

    #[test]
    fn multi_line_keeps_line_feeds_and_tabs_only() {
        assert_eq!(
            multi_line("one\r\ntwo\rthree\n\tfour\x1b]0;title\x07", 100),
            "one\ntwo\nthree\n\tfour\u{FFFD}]0;title\u{FFFD}"
        );
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary_with_the_marker() {
        assert_eq!(one_line("abcdef", 6), "abcdef");
        assert_eq!(one_line("abcdefg", 6), "abcde…");
        assert_eq!(one_line("ééééééé", 3), "éé…");
        assert_eq!(one_line("abc", 0), "");
        let padded = format!("reason{}", "x".repeat(5 << 20));
        let cut = one_line(&padded, DETAIL_MAX_CHARS);
        assert_eq!(cut.chars().count(), DETAIL_MAX_CHARS);
        assert!(cut.starts_with("reason") && cut.ends_with(ELLIPSIS));
    }

    proptest! {
        #[test]
        fn output_is_bounded_and_clean(s in any::<String>(), max in 0usize..64) {
            let o = one_line(&s, max);
            prop_assert!(o.chars().count() <= max);
            prop_assert!(is_one_line(&o), "{o:?}");
            let m = multi_line(&s, max);
            prop_assert!(m.chars().count() <= max);
            prop_assert!(!m.chars().any(|c| (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c)));
            if s.chars().count() <= max && is_one_line(&s) {
                prop_assert_eq!(o, s);
            }
        }
    }
}
