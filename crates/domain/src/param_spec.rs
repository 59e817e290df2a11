//! What a task type's parameters are, declared by its plugin: one [`ParamSpec`] per
//! parameter, from which [`json_schema`] makes the JSON Schema that `prismq types`,
//! `GET /v1/types` and forms show.
//!
//! A declaration describes the canonical form of each parameter. The handler's `validate`
//! stays the judge at enqueue time (it may accept more, such as a number written as text,
//! and it checks what a schema cannot say, such as whether a channel URL parses); a plugin's
//! tests should check that every value the declaration allows at its edges is accepted and
//! every value just outside is refused, as the YouTube plugin's do.

use serde::Serialize;
use serde_json::{json, Map, Value};

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamSpec {
    /// Its name in the params object.
    pub name: &'static str,
    /// One line for people: what it is.
    pub description: &'static str,
    /// Whether a task must give it.
    pub required: bool,
    /// Its type and bounds.
    pub kind: ParamKind,
    /// How the command line's typed forms show it (not part of the schema).
    #[serde(skip)]
    pub cli: CliHint,
}

/// How `prismq enqueue <form>` shows a parameter. Every part has a default, so a parameter
/// added to a declaration is a flag with no hint at all: `--<name>` (`_` written `-`), its
/// placeholder the name in capitals, its help the description with the bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CliHint {
    /// The flag's name (a positional argument's name in completions) when it is not the
    /// parameter's (`country` for `region`).
    pub flag: Option<&'static str>,
    /// Given as a positional argument (its placeholder names it) rather than a flag.
    pub positional: bool,
    /// The placeholder in help (`N`, `CC`).
    pub value_name: Option<&'static str>,
    /// The help line, when the description and bounds do not say it for a command line.
    pub help: Option<&'static str>,
    /// A boolean without a default is a pair of flags, `--<flag>` and `--no-<flag>`: the
    /// latter's help line.
    pub negated_help: Option<&'static str>,
}

impl CliHint {
    /// No hint: every part its default.
    pub const NONE: CliHint = CliHint {
        flag: None,
        positional: false,
        value_name: None,
        help: None,
        negated_help: None,
    };
}

/// A task type's typed form on the command line (`prismq enqueue channel …`), declared
/// by its plugin ([`crate::plugin_host::Plugin::forms`]): a subcommand whose arguments are
/// built from [`TaskForm::params`], so a parameter added there is a flag with no edit of
/// the command line's code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskForm {
    /// The subcommand's name (`channel`).
    pub name: &'static str,
    /// The task type it enqueues (`channel_scrape`).
    pub task_type: &'static str,
    /// One line for people, lower-case: what the task does (`enqueue` shows it after the
    /// task type).
    pub about: &'static str,
    /// `prismq collect`'s line for it; `None`: `collect` does not offer it.
    pub collect: Option<&'static str>,
    /// Its parameters: the same declaration as the handler's [`crate::TaskHandler::params`].
    pub params: &'static [ParamSpec],
}

/// A parameter's type and bounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ParamKind {
    /// Text of 1 to `max_chars` characters.
    Text {
        /// The most characters.
        max_chars: u32,
        /// Examples of accepted values.
        examples: &'static [&'static str],
    },
    /// A whole number in `min..=max`.
    Integer {
        /// The smallest accepted.
        min: i64,
        /// The largest accepted.
        max: i64,
        /// What an absent value means.
        default: Option<i64>,
    },
    /// `true` or `false`.
    Boolean {
        /// What an absent value means (`None`: something else decides).
        default: Option<bool>,
    },
    /// One of a fixed list of names.
    Choice {
        /// The accepted names.
        options: &'static [&'static str],
        /// What an absent value means.
        default: Option<&'static str>,
    },
    /// A list of 1 to `max_items` texts.
    TextList {
        /// The most entries.
        max_items: u32,
        /// Examples of accepted entries.
        examples: &'static [&'static str],
    },
}

impl ParamSpec {
    /// An optional parameter of `kind`.
    pub const fn optional(name: &'static str, description: &'static str, kind: ParamKind) -> Self {
        ParamSpec {
            name,
            description,
            required: false,
            kind,
            cli: CliHint::NONE,
        }
    }

    /// A required parameter of `kind`.
    pub const fn required(name: &'static str, description: &'static str, kind: ParamKind) -> Self {
        ParamSpec {
            name,
            description,
            required: true,
            kind,
            cli: CliHint::NONE,
        }
    }

    /// Its flag is `--<flag>` instead of `--<name>`.
    #[must_use]
    pub const fn flag(mut self, flag: &'static str) -> Self {
        self.cli.flag = Some(flag);
        self
    }

    /// Given as a positional argument shown as `<value_name>`.
    #[must_use]
    pub const fn positional(mut self, value_name: &'static str) -> Self {
        self.cli.positional = true;
        self.cli.value_name = Some(value_name);
        self
    }

    /// Its placeholder in help is `value_name`.
    #[must_use]
    pub const fn value_name(mut self, value_name: &'static str) -> Self {
        self.cli.value_name = Some(value_name);
        self
    }

    /// Its help line on the command line is `help` (and, for a boolean without default,
    /// its `--no-` flag's is `negated`).
    #[must_use]
    pub const fn cli_help(mut self, help: &'static str, negated: Option<&'static str>) -> Self {
        self.cli.help = Some(help);
        self.cli.negated_help = negated;
        self
    }

    /// This parameter's JSON Schema.
    pub fn schema(&self) -> Value {
        let mut s = match &self.kind {
            ParamKind::Text {
                max_chars,
                examples,
            } => {
                json!({"type": "string", "minLength": 1, "maxLength": max_chars, "examples": examples})
            }
            ParamKind::Integer { min, max, default } => {
                let mut s = json!({"type": "integer", "minimum": min, "maximum": max});
                if let Some(d) = default {
                    s["default"] = json!(d);
                }
                s
            }
            ParamKind::Boolean { default } => {
                let mut s = json!({"type": "boolean"});
                if let Some(d) = default {
                    s["default"] = json!(d);
                }
                s
            }
            ParamKind::Choice { options, default } => {
                let mut s = json!({"type": "string", "enum": options});
                if let Some(d) = default {
                    s["default"] = json!(d);
                }
                s
            }
            ParamKind::TextList {
                max_items,
                examples,
            } => json!({
                "type": "array",
                "minItems": 1,
                "maxItems": max_items,
                "items": {"type": "string", "minLength": 1},
                "examples": [examples],
            }),
        };
        s["description"] = json!(self.description);
        s
    }
}

/// The JSON Schema (draft 2020-12) of a params object made of `specs`: an object with
/// those properties, the required ones listed, no others allowed.
pub fn json_schema(specs: &[ParamSpec]) -> Value {
    let properties: Map<String, Value> = specs
        .iter()
        .map(|p| (p.name.to_owned(), p.schema()))
        .collect();
    let required: Vec<&str> = specs
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name)
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// Values at the edges of what `spec` declares: the ones it allows (each should pass the
/// handler's check) and the ones just outside (each should be refused naming the
/// parameter). For a plugin's tests of its declaration against its `validate`. A number
/// given for a text is not among the refusals: checks may take `10` for `"10"`.
pub fn edge_values(spec: &ParamSpec) -> (Vec<Value>, Vec<Value>) {
    match &spec.kind {
        ParamKind::Text {
            max_chars,
            examples,
        } => (
            examples.iter().map(|e| json!(e)).collect(),
            vec![json!(""), json!("x".repeat(*max_chars as usize + 1))],
        ),
        ParamKind::Integer { min, max, .. } => (
            vec![json!(min), json!(max)],
            vec![json!(min - 1), json!(max + 1), json!(true)],
        ),
        ParamKind::Boolean { .. } => (vec![json!(true), json!(false)], vec![json!(3)]),
        ParamKind::Choice { options, .. } => (
            options.iter().map(|o| json!(o)).collect(),
            vec![json!("no-such-choice"), json!(5)],
        ),
        ParamKind::TextList {
            max_items,
            examples,
        } => (
            vec![json!(examples)],
            vec![
                json!([]),
                json!(vec![
                    examples.first().copied().unwrap_or("x");
                    *max_items as usize + 1
                ]),
                json!(true),
            ],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: [ParamSpec; 3] = [
        ParamSpec::required(
            "query",
            "what to search for",
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
                default: None,
            },
        ),
    ];

    #[test]
    fn the_schema_lists_properties_required_ones_and_refuses_others() {
        let s = json_schema(&SPECS);
        assert_eq!(s["type"], "object");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["required"], json!(["query"]));
        assert_eq!(s["properties"]["query"]["maxLength"], 500);
        assert_eq!(s["properties"]["top_n"]["minimum"], 1);
        assert_eq!(s["properties"]["top_n"]["default"], 50);
        assert_eq!(
            s["properties"]["sort_by"]["enum"],
            json!(["relevance", "date"])
        );
        assert!(s["properties"]["sort_by"].get("default").is_none());
        assert_eq!(s["properties"]["top_n"]["description"], "how many");
    }

    #[test]
    fn edge_values_straddle_the_declared_bounds() {
        let (ok, bad) = edge_values(&SPECS[1]);
        assert_eq!(ok, vec![json!(1), json!(500)]);
        assert_eq!(bad[..2], [json!(0), json!(501)]);
        let (ok, bad) = edge_values(&SPECS[0]);
        assert_eq!(ok, vec![json!("surf trip")]);
        assert_eq!(bad[1].as_str().unwrap().len(), 501);
    }
}
