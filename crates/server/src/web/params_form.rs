//! A task type's parameter fields, made from its plugin's declaration
//! (`TaskHandler::params`, the same `ParamSpec`s `json_schema` turns into the JSON Schema of
//! `GET /v1/types`): one labelled control per parameter, fitting its kind (a number field for
//! a whole number, a text field, a checkbox, a list of choices, one entry per line for a
//! list), with its description as help text and the required ones marked. The enqueue form
//! and the schedule form share it; the handler's own `validate` stays the judge.
//!
//! Descriptions and entered values are untrusted text: cleaned and bounded here, escaped by
//! the templates. A value entered is kept when the form is refused.

use serde_json::{Map, Value};

use prismq_domain::param_spec::{ParamKind, ParamSpec};
use prismq_domain::ValidationError;

use super::page::{block, line, LINE_MAX};

/// The most characters one parameter field takes (the domain's params size limit).
pub const VALUE_MAX: usize = prismq_domain::task::DEFAULT_MAX_PARAMS_BYTES;
/// The prefix of parameter fields' names in a submitted form (`p.top_n`).
pub const PREFIX: &str = "p.";

/// One parameter's control.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamField {
    /// The parameter's name (the label).
    pub name: String,
    /// The control's id (`p-top_n`).
    pub id: String,
    /// The control's form name (`p.top_n`).
    pub input: String,
    /// The declaration's description (help text).
    pub description: String,
    /// Whether a task must give it.
    pub required: bool,
    /// `text`, `number`, `checkbox`, `select` or `list`.
    pub kind: &'static str,
    /// The value as entered (a list: one entry per line).
    pub value: String,
    /// A checkbox is ticked.
    pub checked: bool,
    /// A checkbox's parameter defaults to true (so unticked sends `false`).
    pub default_on: bool,
    /// A select of yes and no for a boolean without a default (sends `true` or `false`).
    pub boolean: bool,
    /// A select's options: (value, label); the first is the empty "default" choice when the
    /// parameter is optional.
    pub options: Vec<(String, String)>,
    /// A number's smallest value.
    pub min: String,
    /// A number's largest value.
    pub max: String,
    /// A text's most characters.
    pub maxlength: String,
    /// An example or the default, shown in an empty field.
    pub placeholder: String,
    /// The refusal naming this parameter.
    pub error: Option<String>,
}

fn examples(e: &[&str]) -> String {
    match e.first() {
        Some(x) => format!("e.g. {}", line(x, 80)),
        None => String::new(),
    }
}

/// The empty field of `spec` (a ticked checkbox where the default is true).
fn field(spec: &ParamSpec) -> ParamField {
    let name = line(spec.name, 100);
    let mut f = ParamField {
        id: format!("p-{name}"),
        input: format!("{PREFIX}{name}"),
        name,
        description: line(spec.description, LINE_MAX),
        required: spec.required,
        kind: "text",
        value: String::new(),
        checked: false,
        default_on: false,
        boolean: false,
        options: Vec::new(),
        min: String::new(),
        max: String::new(),
        maxlength: String::new(),
        placeholder: String::new(),
        error: None,
    };
    match &spec.kind {
        ParamKind::Text {
            max_chars,
            examples: e,
        } => {
            f.maxlength = max_chars.to_string();
            f.placeholder = examples(e);
        }
        ParamKind::Integer { min, max, default } => {
            f.kind = "number";
            f.min = min.to_string();
            f.max = max.to_string();
            f.placeholder =
                default.map_or_else(|| format!("{min} to {max}"), |d| format!("{d} (default)"));
        }
        ParamKind::Boolean { default: Some(d) } => {
            f.kind = "checkbox";
            f.checked = *d;
            f.default_on = *d;
        }
        ParamKind::Boolean { default: None } => {
            // Absent means "something else decides" (a setting): three choices, not two.
            f.kind = "select";
            f.boolean = true;
            f.options = vec![
                (
                    String::new(),
                    "(not set: the server's setting decides)".into(),
                ),
                ("true".into(), "yes".into()),
                ("false".into(), "no".into()),
            ];
        }
        ParamKind::Choice { options, default } => {
            f.kind = "select";
            if !spec.required {
                let label = match default {
                    Some(d) => format!("(default: {})", line(d, 80)),
                    None => "(not set)".to_owned(),
                };
                f.options.push((String::new(), label));
            }
            f.options.extend(
                options
                    .iter()
                    .map(|o| (line(o, 100), line(o, 100)))
                    .collect::<Vec<_>>(),
            );
        }
        ParamKind::TextList {
            examples: e,
            max_items,
        } => {
            f.kind = "list";
            f.placeholder = match e.first() {
                Some(x) => format!("one per line (at most {max_items}), e.g. {}", line(x, 80)),
                None => format!("one per line (at most {max_items})"),
            };
        }
    }
    f
}

/// The empty form of `specs`.
pub fn fields(specs: &[ParamSpec]) -> Vec<ParamField> {
    specs.iter().map(field).collect()
}

/// The form of `specs` as submitted in `pairs` (values kept, cleaned and bounded).
pub fn filled(specs: &[ParamSpec], pairs: &[(String, String)]) -> Vec<ParamField> {
    specs
        .iter()
        .map(|spec| {
            let mut f = field(spec);
            let got = pairs
                .iter()
                .find(|(n, _)| *n == f.input)
                .map(|(_, v)| v.as_str());
            match f.kind {
                "checkbox" => f.checked = got.is_some(),
                "list" => f.value = block(got.unwrap_or_default(), VALUE_MAX),
                _ => f.value = line(got.unwrap_or_default(), VALUE_MAX),
            }
            f
        })
        .collect()
}

/// The params object the fields say: an empty field is left out (its default applies); a
/// whole number is sent as a number, `true`/`false` as booleans, a list as an array of its
/// non-empty lines, anything else as text, for the handler's check to judge.
pub fn params_of(fields: &[ParamField]) -> Map<String, Value> {
    let mut m = Map::new();
    for f in fields {
        let v = f.value.trim();
        let value = match f.kind {
            "checkbox" if f.checked => Some(Value::Bool(true)),
            "checkbox" if f.default_on => Some(Value::Bool(false)),
            "checkbox" => None,
            _ if v.is_empty() => None,
            "number" => Some(
                v.parse::<i64>()
                    .map_or_else(|_| Value::String(v.to_owned()), Value::from),
            ),
            "select" if f.boolean && (v == "true" || v == "false") => {
                Some(Value::Bool(v == "true"))
            }
            "list" => Some(Value::Array(
                v.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| Value::String(l.to_owned()))
                    .collect(),
            )),
            _ => Some(Value::String(v.to_owned())),
        };
        if let Some(value) = value {
            m.insert(f.name.clone(), value);
        }
    }
    m
}

/// Puts a refusal naming `params.NAME` (or `params.NAME[3]`, `params.NAME.x`) next to that
/// field; false when no field matches.
pub fn place(fields: &mut [ParamField], v: &ValidationError) -> bool {
    let Some(rest) = v.field.strip_prefix("params.") else {
        return false;
    };
    let name = rest.split(['.', '[']).next().unwrap_or(rest);
    match fields.iter_mut().find(|f| f.name == name) {
        Some(f) => {
            f.error = Some(line(&v.to_string(), LINE_MAX));
            true
        }
        None => false,
    }
}

/// A params object typed as JSON, for a type that declares no parameters: empty means `{}`.
///
/// # Errors
/// `params` when the text is not a JSON object.
pub fn json_params(text: &str) -> Result<Map<String, Value>, ValidationError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(t) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ValidationError::new(
            "params",
            format!("the text is JSON but not an object ({})", json_kind(&other)),
            "a JSON object such as {\"query\": \"surf trip\"}",
        )),
        Err(e) => Err(ValidationError::new(
            "params",
            format!("the text is not JSON: {e}"),
            "a JSON object such as {\"query\": \"surf trip\"}",
        )),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SPECS: [ParamSpec; 6] = [
        ParamSpec::required(
            "query",
            "what to <b>search</b> for",
            ParamKind::Text {
                max_chars: 500,
                examples: &["surf trip"],
            },
        ),
        ParamSpec::optional(
            "top_n",
            "how many",
            ParamKind::Integer {
                min: 1,
                max: 500,
                default: Some(50),
            },
        ),
        ParamSpec::optional(
            "sort_by",
            "order",
            ParamKind::Choice {
                options: &["relevance", "date"],
                default: Some("relevance"),
            },
        ),
        ParamSpec::optional("baselines", "ask", ParamKind::Boolean { default: None }),
        ParamSpec::optional(
            "hd",
            "hd",
            ParamKind::Boolean {
                default: Some(true),
            },
        ),
        ParamSpec::optional(
            "videos",
            "ids",
            ParamKind::TextList {
                max_items: 50,
                examples: &["dQw4w9WgXcQ"],
            },
        ),
    ];

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn each_kind_gets_its_control() {
        let f = fields(&SPECS);
        let kinds: Vec<&str> = f.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            ["text", "number", "select", "select", "checkbox", "list"]
        );
        assert!(f[0].required && !f[1].required);
        assert_eq!((f[1].min.as_str(), f[1].max.as_str()), ("1", "500"));
        assert_eq!(f[0].maxlength, "500");
        assert_eq!(
            f[2].options[0],
            (String::new(), "(default: relevance)".into())
        );
        assert_eq!(f[2].options.len(), 3);
        assert!(f[4].checked, "a default of true is ticked");
        assert_eq!(f[0].input, "p.query");
    }

    #[test]
    fn submitted_values_become_the_params_the_handler_judges() {
        let f = filled(
            &SPECS,
            &pairs(&[
                ("p.query", " surf trip "),
                ("p.top_n", "20"),
                ("p.sort_by", ""),
                ("p.baselines", "false"),
                ("p.videos", "a\n\n b \r\nc"),
            ]),
        );
        assert_eq!(
            Value::Object(params_of(&f)),
            json!({"query": "surf trip", "top_n": 20, "baselines": false, "hd": false, "videos": ["a", "b", "c"]})
        );
        // Not a number: sent as text, for the handler to refuse with its message.
        let f = filled(&SPECS, &pairs(&[("p.top_n", "many"), ("p.hd", "true")]));
        assert_eq!(
            Value::Object(params_of(&f)),
            json!({"top_n": "many", "hd": true})
        );
    }

    #[test]
    fn a_refusal_lands_next_to_its_field() {
        let mut f = fields(&SPECS);
        let v = ValidationError::new("params.videos[3]", "not an id", "ids");
        assert!(place(&mut f, &v));
        assert!(f[5].error.as_deref().unwrap().contains("not an id"));
        assert!(!place(
            &mut f,
            &ValidationError::new("params.nope", "x", "y")
        ));
        assert!(!place(&mut f, &ValidationError::new("priority", "x", "y")));
    }

    #[test]
    fn json_params_take_an_object_only() {
        assert_eq!(json_params(" ").unwrap(), Map::new());
        assert_eq!(json_params("{\"a\": 1}").unwrap()["a"], json!(1));
        assert!(json_params("[1]").unwrap_err().problem.contains("an array"));
        assert!(json_params("{").unwrap_err().problem.contains("not JSON"));
    }
}
