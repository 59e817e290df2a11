//! The effective configuration: every setting's value, secrets redacted, with the layer it
//! came from — what `prismq config show` prints.

use serde::Serialize;
use serde_json::Value;
use std::fmt;

use super::{Config, Origin};

/// One setting in the dump.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectiveEntry {
    /// `section.key`.
    pub key: String,
    /// The value as JSON (`null` when unset); a secret is the string `<redacted>`.
    pub value: Value,
    /// Where it came from.
    pub origin: Origin,
}

/// Every setting, in declaration order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct EffectiveConfig {
    /// The entries.
    pub entries: Vec<EffectiveEntry>,
}

pub(super) fn effective(config: &Config) -> EffectiveConfig {
    // Serializing a Config cannot fail: every field is plain data and Secret serializes
    // as `<redacted>`.
    let tree = serde_json::to_value(config).unwrap_or(Value::Null);
    let entries = config
        .keys()
        .iter()
        .map(|key| {
            let value = key
                .split_once('.')
                .and_then(|(s, f)| tree.get(s).and_then(|sec| sec.get(f)))
                .cloned()
                .unwrap_or(Value::Null);
            EffectiveEntry {
                key: key.clone(),
                value,
                origin: config.origin(key),
            }
        })
        .collect();
    EffectiveConfig { entries }
}

fn render(v: &Value) -> String {
    match v {
        Value::Null => "(unset)".to_owned(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(render).collect();
            format!("[{}]", parts.join(", "))
        }
        other => other.to_string(),
    }
}

impl fmt::Display for EffectiveConfig {
    /// One line per setting: `key = value  # origin`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<(String, &Origin)> = self
            .entries
            .iter()
            .map(|e| (format!("{} = {}", e.key, render(&e.value)), &e.origin))
            .collect();
        let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (line, origin) in lines {
            writeln!(f, "{line:width$}  # {origin}")?;
        }
        Ok(())
    }
}
