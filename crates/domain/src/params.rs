//! Typed task parameters: one way for every plugin to read a task's JSON parameters into its
//! own serde struct, with unknown keys refused by name and every error naming the parameter,
//! what was wrong and what is accepted.
//!
//! A plugin declares a plain `#[derive(Deserialize)]` struct (no `deny_unknown_fields`
//! needed: [`parse`] finds unknown keys itself, at any depth) and calls [`parse`] from both
//! `TaskHandler::validate` and `TaskHandler::handle`, then checks ranges on the typed value.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::text::{one_line, DETAIL_MAX_CHARS};

/// The field an error names when the problem is the parameters as a whole.
pub const WHOLE: &str = "params";

/// Reads `params` into `T`.
///
/// - A key `T` does not know, at any depth, is refused: the error's field is its path
///   (`topn`, `filters.lang`), the problem `unknown parameter`, and `accepted` is the
///   caller's description of the parameters.
/// - A value of the wrong type or out of the type's range names its path too (`times`:
///   `invalid type: string "x", expected u32`).
/// - A missing required parameter names itself (`text`: `missing field `text``); a
///   top-level problem without a parameter's name is reported on [`WHOLE`].
///
/// Every path and problem is made one bounded line ([`one_line`]): they quote the caller's
/// input, which is outside text.
///
/// # Errors
/// The first problem found, as above.
pub fn parse<T: DeserializeOwned>(
    params: &Map<String, Value>,
    accepted: &str,
) -> Result<T, ValidationError> {
    let mut unknown = Vec::new();
    let value = Value::Object(params.clone());
    let parsed: Result<T, _> = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        value,
        &mut |path: serde_ignored::Path<'_>| unknown.push(dotted(&path)),
    ));
    if let Some(path) = unknown.first() {
        return Err(ValidationError::new(
            one_line(path, DETAIL_MAX_CHARS),
            "unknown parameter",
            accepted,
        ));
    }
    parsed.map_err(|e| {
        let path = e.path().to_string();
        let problem = e.inner().to_string();
        let field = if path == "." {
            missing_field(&problem).map_or_else(|| WHOLE.to_owned(), str::to_owned)
        } else {
            path
        };
        ValidationError::new(
            one_line(&field, DETAIL_MAX_CHARS),
            one_line(&problem, DETAIL_MAX_CHARS),
            accepted,
        )
    })
}

/// The parameter a "missing field" error names. serde reports a missing field at the
/// struct's own path with the name only in its text (`missing field `text``), so this is
/// the one place that reads it back; any other top-level error names [`WHOLE`].
fn missing_field(problem: &str) -> Option<&str> {
    problem
        .strip_prefix("missing field `")?
        .split('`')
        .next()
        .filter(|name| !name.is_empty())
}

/// `filters.lang`, `videos.2`: the keys and indexes that lead to a value, without the
/// `?` serde_ignored prints for an `Option` it stepped into.
fn dotted(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    let join = |parent: &Path<'_>, segment: String| {
        let head = dotted(parent);
        if head.is_empty() {
            segment
        } else {
            format!("{head}.{segment}")
        }
    };
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => join(parent, index.to_string()),
        Path::Map { parent, key } => join(parent, key.clone()),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => dotted(parent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Echo {
        text: String,
        #[serde(default)]
        times: u32,
        filters: Option<Filters>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Filters {
        lang: String,
    }

    const ACCEPTED: &str = "{\"text\": 1-200 characters, \"times\": 1-100}";

    fn run(v: Value) -> Result<Echo, ValidationError> {
        parse(v.as_object().unwrap(), ACCEPTED)
    }

    #[test]
    fn a_valid_object_parses() {
        let p = run(json!({"text": "hi", "filters": {"lang": "en"}})).unwrap();
        assert_eq!(p.times, 0);
        assert_eq!(p.filters.unwrap().lang, "en");
    }

    #[test]
    fn unknown_keys_are_named_at_any_depth() {
        let e = run(json!({"text": "hi", "topn": 5})).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            ("topn", "unknown parameter")
        );
        assert_eq!(e.accepted, ACCEPTED);
        let e = run(json!({"text": "hi", "filters": {"lang": "en", "x": 1}})).unwrap_err();
        assert_eq!(e.field, "filters.x");
    }

    #[test]
    fn type_errors_name_their_path_and_missing_ones_the_whole() {
        let e = run(json!({"text": "hi", "times": "x"})).unwrap_err();
        assert_eq!(e.field, "times");
        assert!(e.problem.contains("expected u32"), "{e}");
        let e = run(json!({"text": "hi", "times": -1})).unwrap_err();
        assert_eq!(e.field, "times");
        let e = run(json!({"times": 1})).unwrap_err();
        assert_eq!(e.field, "text");
        assert!(e.problem.contains("missing field `text`"), "{e}");
        assert_eq!(missing_field("invalid type: map"), None);
    }

    #[test]
    fn outside_text_in_errors_is_one_bounded_line() {
        let key = format!("a\u{1b}[31m\nb{}", "k".repeat(5_000));
        let mut m = Map::new();
        m.insert("text".into(), json!("hi"));
        m.insert(key, json!(1));
        let e = parse::<Echo>(&m, ACCEPTED).unwrap_err();
        assert!(!e.field.chars().any(char::is_control), "{:?}", e.field);
        assert!(e.field.chars().count() <= DETAIL_MAX_CHARS);
    }
}
