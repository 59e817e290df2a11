//! Configuration as the app hands it to a plugin: the plugin's own section of the merged
//! layers (file, environment, command line), each leaf a [`SettingValue`] as its layer gave
//! it. The plugin types it with [`Section::get`] and the parsers of
//! [`crate::setting_values`]; a refusal is a [`SettingError`] naming `section.key`, the
//! quoted value, what is wrong and what is accepted (the app adds where the value came from).

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

use crate::setting_values::Bad;

/// What a secret's value is shown as.
pub const REDACTED: &str = "<redacted>";

/// A leaf value before typing.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    /// `true` / `false`.
    Bool(bool),
    /// Any integer.
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// Text (every environment variable and command-line override arrives as text).
    Str(String),
    /// An array.
    List(Vec<SettingValue>),
    /// A table where a value was expected.
    Table,
}

impl SettingValue {
    /// The value as it is quoted back in an error message.
    pub fn render(&self) -> String {
        match self {
            SettingValue::Bool(b) => b.to_string(),
            SettingValue::Int(i) => i.to_string(),
            SettingValue::Float(f) => f.to_string(),
            SettingValue::Str(s) => format!("{:?}", crate::task::truncate_for_message(s)),
            SettingValue::List(items) => {
                let inner: Vec<String> = items.iter().map(SettingValue::render).collect();
                format!("[{}]", inner.join(", "))
            }
            SettingValue::Table => "a table".to_owned(),
        }
    }

    /// What kind of value it is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            SettingValue::Bool(_) => "a boolean",
            SettingValue::Int(_) => "an integer",
            SettingValue::Float(_) => "a number",
            SettingValue::Str(_) => "a string",
            SettingValue::List(_) => "a list",
            SettingValue::Table => "a table",
        }
    }
}

impl<'de> Deserialize<'de> for SettingValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = SettingValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a configuration value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<SettingValue, E> {
        Ok(SettingValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<SettingValue, E> {
        Ok(SettingValue::Int(i128::from(v)))
    }
    fn visit_i128<E>(self, v: i128) -> Result<SettingValue, E> {
        Ok(SettingValue::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<SettingValue, E> {
        Ok(SettingValue::Int(i128::from(v)))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<SettingValue, E> {
        i128::try_from(v)
            .map(SettingValue::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<SettingValue, E> {
        Ok(SettingValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<SettingValue, E> {
        Ok(SettingValue::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<SettingValue, E> {
        Ok(SettingValue::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SettingValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<SettingValue>()? {
            items.push(item);
        }
        Ok(SettingValue::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SettingValue, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(SettingValue::Table)
    }
}

/// One setting a plugin reads from its section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingSpec {
    /// Its key within the section (`api_key`).
    pub key: &'static str,
    /// A secret: its value is never quoted back nor shown.
    pub secret: bool,
    /// Environment variables that set it besides `PRISMQ_<SECTION>__<KEY>` (which wins
    /// when both are set), such as `YOUTUBE_API_KEY`.
    pub env_aliases: &'static [&'static str],
}

impl SettingSpec {
    /// A plain setting.
    pub const fn new(key: &'static str) -> Self {
        SettingSpec {
            key,
            secret: false,
            env_aliases: &[],
        }
    }

    /// A secret setting, settable through `env_aliases` too.
    pub const fn secret(key: &'static str, env_aliases: &'static [&'static str]) -> Self {
        SettingSpec {
            key,
            secret: true,
            env_aliases,
        }
    }
}

/// A setting's value refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for `{key}`: {value}: {problem}; accepted: {accepted}")]
pub struct SettingError {
    /// `section.key`.
    pub key: String,
    /// The value as given, quoted ([`REDACTED`] for a secret).
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
    /// What would be accepted.
    pub accepted: String,
}

/// A plugin's section of the configuration: the keys some layer set (unknown keys were
/// refused before, by the plugin's [`SettingSpec`]s); absent keys take the plugin's defaults.
/// Its `Debug` shows the keys, never the values (one may be a secret).
#[derive(Clone, Default, PartialEq)]
pub struct Section {
    name: String,
    values: BTreeMap<String, SettingValue>,
}

impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Section")
            .field("name", &self.name)
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Section {
    /// The section `name` with `values` (keys within the section).
    pub fn new(name: impl Into<String>, values: BTreeMap<String, SettingValue>) -> Self {
        Section {
            name: name.into(),
            values,
        }
    }

    /// The section's name (`youtube`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value set for `key`, if any layer set it.
    pub fn raw(&self, key: &str) -> Option<&SettingValue> {
        self.values.get(key)
    }

    /// Sets `key` (tests and programmatic set-ups; the loader builds sections whole).
    pub fn set(&mut self, key: &str, value: SettingValue) {
        self.values.insert(key.to_owned(), value);
    }

    /// `key`'s value typed by `parse`, or `default` when no layer set it.
    ///
    /// # Errors
    /// `parse`'s refusal, naming `section.key` and the value.
    pub fn get<T>(
        &self,
        key: &str,
        default: T,
        parse: impl FnOnce(&SettingValue) -> Result<T, Bad>,
    ) -> Result<T, SettingError> {
        self.typed(key, default, false, parse)
    }

    /// As [`Section::get`] for a secret: a refusal quotes [`REDACTED`], never the value.
    ///
    /// # Errors
    /// As [`Section::get`].
    pub fn get_secret<T>(
        &self,
        key: &str,
        default: T,
        parse: impl FnOnce(&SettingValue) -> Result<T, Bad>,
    ) -> Result<T, SettingError> {
        self.typed(key, default, true, parse)
    }

    fn typed<T>(
        &self,
        key: &str,
        default: T,
        secret: bool,
        parse: impl FnOnce(&SettingValue) -> Result<T, Bad>,
    ) -> Result<T, SettingError> {
        match self.values.get(key) {
            None => Ok(default),
            Some(v) => parse(v).map_err(|bad| SettingError {
                key: self.key(key),
                value: if secret {
                    REDACTED.to_owned()
                } else {
                    v.render()
                },
                problem: bad.problem,
                accepted: bad.accepted,
            }),
        }
    }

    /// `section.key`.
    pub fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setting_values::integer;

    #[test]
    fn get_types_names_and_redacts() {
        let mut s = Section::new("src", BTreeMap::new());
        assert_eq!(s.get("n", 7, |v| integer(v, 1, 9)).unwrap(), 7);
        s.set("n", SettingValue::Str("12".into()));
        let e = s.get("n", 7, |v| integer(v, 1, 9)).unwrap_err();
        assert_eq!(e.key, "src.n");
        assert_eq!(e.value, "\"12\"");
        assert_eq!(e.problem, "out of range");
        assert_eq!(e.accepted, "an integer from 1 to 9");
        let e = s.get_secret("n", 7, |v| integer(v, 1, 9)).unwrap_err();
        assert_eq!(e.value, REDACTED);
        assert!(!e.to_string().contains("12"), "{e}");
        s.set("secret", SettingValue::Str("canary".into()));
        assert!(!format!("{s:?}").contains("canary"));
    }
}
