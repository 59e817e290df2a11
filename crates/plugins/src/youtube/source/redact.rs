//! Removing the API key from text a server or the HTTP stack sent back: the key's value
//! wherever it appears, and the value of every `key=` query parameter, whatever it is
//! (a server may echo a URL the client never sent, or one it rewrote).

/// What replaces a removed value.
pub const REDACTED: &str = "[redacted]";

/// `text` without `key` (when not empty) and without the value of any `key=` parameter
/// (case-insensitive, not part of a longer word: `monkey=` is kept, `?key=`, `&key=`,
/// `api_key=`, ` key=` are removed). A value ends at `&`, `#`, whitespace, a quote or a
/// bracket.
pub fn redact_key(text: &str, key: &str) -> String {
    let text = if key.is_empty() {
        text.to_string()
    } else {
        text.replace(key, REDACTED)
    };
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find("key=") {
        let at = from + found;
        let value_start = at + "key=".len();
        let standalone = lower[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if standalone {
            let value_end = text[value_start..]
                .find(|c: char| {
                    matches!(
                        c,
                        '&' | '#' | '"' | '\'' | '<' | '>' | '(' | ')' | '[' | ']'
                    ) || c.is_whitespace()
                        || c.is_control()
                })
                .map_or(text.len(), |n| value_start + n);
            let value = &text[value_start..value_end];
            out.push_str(&text[copied..value_start]);
            if !value.is_empty() && value != REDACTED {
                out.push_str(REDACTED);
            } else {
                out.push_str(value);
            }
            copied = value_end;
            from = value_end;
        } else {
            from = value_start;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_key_never_survives(
            before in any::<String>(),
            after in any::<String>(),
            // Real keys are 39 characters; a shorter one could be a word of the output.
            key in "[A-Za-z0-9_-]{8,40}",
        ) {
            prop_assume!(!REDACTED.contains(&key));
            let text = format!("{before}{key}{after}?key={key}&KEY={after}");
            let out = redact_key(&text, &key);
            prop_assert!(!out.contains(&key), "{out:?}");
            // Text without the key or a key parameter is left alone.
            if !before.contains(&key) && !before.to_ascii_lowercase().contains("key=") {
                prop_assert_eq!(redact_key(&before, &key), before);
            }
        }
    }

    const KEY: &str = "AIzaSyCanary0000SecretKey1111XyZ98765";

    #[test]
    fn the_key_and_key_parameters_are_removed() {
        assert_eq!(
            redact_key(&format!("GET /v3/videos?part=id&key={KEY}&x=1 failed"), KEY),
            "GET /v3/videos?part=id&key=[redacted]&x=1 failed"
        );
        assert_eq!(
            redact_key("echo ?KEY=other-value#frag and api_key=zzz", KEY),
            "echo ?KEY=[redacted]#frag and api_key=[redacted]"
        );
        assert_eq!(redact_key(&format!("bare {KEY}!"), KEY), "bare [redacted]!");
        assert_eq!(redact_key("monkey=banana key=", KEY), "monkey=banana key=");
        assert_eq!(redact_key("ünï key=ö€ rest", ""), "ünï key=[redacted] rest");
    }
}
