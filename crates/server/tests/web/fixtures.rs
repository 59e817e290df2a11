//! Test data: hostile strings as YouTube or a task's parameters could carry them.

/// Titles that must show as text and run nothing.
pub fn hostile_titles() -> Vec<String> {
    vec![
        "<script>window.__pwned = 1</script>".to_owned(),
        "\"><img src=x onerror=\"window.__pwned=2\">".to_owned(),
        "javascript:window.__pwned=3".to_owned(),
        "it's \"quoted\" & <b>bold</b>".to_owned(),
        "\u{202e}desrever\u{202c} RTL \u{200f}mark".to_owned(),
        "</text><script>window.__pwned=4</script>".to_owned(),
        format!("long {}", "x".repeat(10_000)),
    ]
}
