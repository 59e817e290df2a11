//! What the `prismq` binary's own tests share besides the project's one [`Sandbox`]
//! (`prismq_tests::harness`, the real binary in a temp dir with a clean environment): a
//! Data API stand-in and text helpers.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code, unused_imports)]

pub mod data_api;

use std::path::Path;

pub use prismq_tests::harness::{checksum, Sandbox};

/// Replaces `YYYY-MM-DD HH:MM:SSZ` and `YYYY-MM-DDTHH:MM:SS…Z` timestamps by `<time>`.
pub fn normalise_times(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let digit = |j: usize| b.get(j).is_some_and(u8::is_ascii_digit);
    while i < b.len() {
        let is_date = (0..4).all(|k| digit(i + k))
            && b.get(i + 4) == Some(&b'-')
            && digit(i + 5)
            && digit(i + 6)
            && b.get(i + 7) == Some(&b'-')
            && digit(i + 8)
            && digit(i + 9)
            && matches!(b.get(i + 10), Some(b' ' | b'T'))
            && digit(i + 11);
        if is_date {
            let mut j = i + 11;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b':' || b[j] == b'.') {
                j += 1;
            }
            if b.get(j) == Some(&b'Z') {
                j += 1;
            }
            // Same width, so aligned tables stay aligned.
            out.push_str(&format!("{:<width$}", "<time>", width = j - i));
            i = j;
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    lines.join("\n") + if out.ends_with('\n') { "\n" } else { "" }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
