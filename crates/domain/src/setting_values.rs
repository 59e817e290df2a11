//! Parsers from a [`SettingValue`] leaf to a typed setting, shared by the app's own sections
//! and the plugins' ([`crate::settings::Section::get`]). Each returns [`Bad`] (what is wrong,
//! what is accepted); the section adds the key and the quoted value, the app the origin.
//!
//! Durations are written as a string of `<integer><unit>` parts with units `ms`, `s`, `m`,
//! `h`, `d` (`250ms`, `30s`, `5m`, `1h30m`), or as an integer number of milliseconds (a TOML
//! integer, or a string of digits from the environment). Numbers also accept strings of
//! digits, since environment variables and command-line overrides are always text.

use std::str::FromStr;
use std::time::Duration;

use crate::settings::SettingValue;

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    /// What is wrong with the value.
    pub problem: String,
    /// What would be accepted.
    pub accepted: String,
}

impl Bad {
    /// A refusal: what is wrong, what is accepted.
    pub fn new(problem: impl Into<String>, accepted: impl Into<String>) -> Self {
        Bad {
            problem: problem.into(),
            accepted: accepted.into(),
        }
    }
}

/// Text accepted for a duration.
pub const DURATION_ACCEPTED: &str =
    "a duration such as 250ms, 30s, 5m, 1h30m or 1d, or an integer number of milliseconds";

/// Parses a duration and checks it lies within `[min, max]`.
pub fn duration(raw: &SettingValue, min: Duration, max: Duration) -> Result<Duration, Bad> {
    let accepted = || {
        format!(
            "{DURATION_ACCEPTED}, from {} to {}",
            format_duration(min),
            format_duration(max)
        )
    };
    let d = match raw {
        SettingValue::Int(ms) if *ms >= 0 => u64::try_from(*ms)
            .map(Duration::from_millis)
            .map_err(|_| Bad::new("the number is too large", accepted()))?,
        SettingValue::Int(_) => return Err(Bad::new("the duration is negative", accepted())),
        SettingValue::Str(s) => {
            parse_duration(s).ok_or_else(|| Bad::new("not a duration", accepted()))?
        }
        other => {
            return Err(Bad::new(
                format!("{} is not a duration", other.kind()),
                accepted(),
            ))
        }
    };
    if d < min || d > max {
        return Err(Bad::new("out of range", accepted()));
    }
    Ok(d)
}

/// Text accepted for a duration used in whole seconds.
pub const WHOLE_SECONDS_ACCEPTED: &str =
    "a whole number of seconds such as 30s, 5m or 1h30m (or an integer number of milliseconds divisible by 1000)";

/// Parses a duration that is used in whole seconds (a timeout handed to a source as seconds)
/// and checks it lies within `[min, max]`: `1500ms` is refused rather than silently cut to
/// `1s`.
pub fn whole_seconds(raw: &SettingValue, min: Duration, max: Duration) -> Result<Duration, Bad> {
    let accepted = || {
        format!(
            "{WHOLE_SECONDS_ACCEPTED}, from {} to {}",
            format_duration(min),
            format_duration(max)
        )
    };
    let d = duration(raw, min, max).map_err(|b| Bad::new(b.problem, accepted()))?;
    if d.subsec_nanos() != 0 {
        return Err(Bad::new("not a whole number of seconds", accepted()));
    }
    Ok(d)
}

/// Parses `250ms`, `30s`, `1h30m`, or digits alone as milliseconds. `None` if malformed.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().ok().map(Duration::from_millis);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms_per: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        total = total.checked_add(Duration::from_millis(n.checked_mul(ms_per)?))?;
    }
    Some(total)
}

/// Formats a duration the way [`parse_duration`] reads it: `1h30m`, `250ms`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, per) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= per {
            out.push_str(&format!("{}{unit}", ms / per));
            ms %= per;
        }
    }
    out
}

/// Parses an integer within `[min, max]`.
pub fn integer(raw: &SettingValue, min: u64, max: u64) -> Result<u64, Bad> {
    let accepted = || format!("an integer from {min} to {max}");
    let n: i128 = match raw {
        SettingValue::Int(i) => *i,
        SettingValue::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| Bad::new("not an integer", accepted()))?,
        other => {
            return Err(Bad::new(
                format!("{} is not an integer", other.kind()),
                accepted(),
            ))
        }
    };
    if n < i128::from(min) || n > i128::from(max) {
        return Err(Bad::new("out of range", accepted()));
    }
    u64::try_from(n).map_err(|_| Bad::new("out of range", accepted()))
}

/// Accepts text only (a TOML string, or any environment value).
pub fn text(raw: &SettingValue, accepted: &str) -> Result<String, Bad> {
    match raw {
        SettingValue::Str(s) => Ok(s.clone()),
        other => Err(Bad::new(format!("{} is not text", other.kind()), accepted)),
    }
}

/// `true` or `false`: a TOML boolean, or the text `true` / `false` (any case), as every
/// environment value arrives.
pub fn boolean(raw: &SettingValue) -> Result<bool, Bad> {
    const ACCEPTED: &str = "true or false";
    match raw {
        SettingValue::Bool(b) => Ok(*b),
        SettingValue::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(Bad::new("not true or false", ACCEPTED)),
        },
        other => Err(Bad::new(
            format!("{} is not true or false", other.kind()),
            ACCEPTED,
        )),
    }
}

/// Parses text with `T::from_str`, which must refuse unknown names.
pub fn parsed<T: FromStr>(raw: &SettingValue, accepted: &str) -> Result<T, Bad> {
    let s = text(raw, accepted)?;
    s.parse::<T>()
        .map_err(|_| Bad::new("not one of the accepted values", accepted))
}

/// A list: a TOML array of strings, or comma-separated text (`a,b`). Empty text is `[]`.
pub fn string_list(raw: &SettingValue, accepted: &str) -> Result<Vec<String>, Bad> {
    match raw {
        SettingValue::List(items) => items
            .iter()
            .map(|i| text(i, accepted))
            .collect::<Result<Vec<_>, _>>(),
        SettingValue::Str(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()),
        other => Err(Bad::new(
            format!("{} is not a list", other.kind()),
            accepted,
        )),
    }
}

/// Text that is neither empty nor holds control characters, trimmed.
pub fn non_empty_text(accepted: &'static str) -> impl Fn(&SettingValue) -> Result<String, Bad> {
    move |r| {
        let s = text(r, accepted)?;
        let t = s.trim();
        if t.is_empty() || t.chars().any(char::is_control) {
            return Err(Bad::new("empty or contains control characters", accepted));
        }
        Ok(t.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_round_trip() {
        for (s, ms) in [
            ("250ms", 250),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("1d", 86_400_000),
            ("1500", 1500),
            (" 10s ", 10_000),
            ("1m30s250ms", 90_250),
        ] {
            let d = parse_duration(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(d.as_millis(), ms, "{s}");
            assert_eq!(parse_duration(&format_duration(d)), Some(d));
        }
        for bad in ["", "s", "10x", "1.5s", "-3s", "10 s", "ms10"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(format_duration(Duration::from_millis(5_400_000)), "1h30m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn duration_bounds_and_kinds() {
        let (lo, hi) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(
            duration(&SettingValue::Int(2000), lo, hi).unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(
            duration(&SettingValue::Str("2s".into()), lo, hi).unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(
            duration(&SettingValue::Int(10), lo, hi)
                .unwrap_err()
                .problem,
            "out of range"
        );
        assert!(duration(&SettingValue::Int(-1), lo, hi).is_err());
        let e = duration(&SettingValue::Bool(true), lo, hi).unwrap_err();
        assert!(e.accepted.contains("from 1s to 1m"), "{e:?}");
    }

    #[test]
    fn whole_seconds_refuse_fractions_of_a_second() {
        let (lo, hi) = (Duration::from_secs(1), Duration::from_secs(3600));
        for (raw, secs) in [
            (SettingValue::Str("30s".into()), 30),
            (SettingValue::Str("1m30s".into()), 90),
            (SettingValue::Str("1500ms1500ms".into()), 3),
            (SettingValue::Int(2000), 2),
            (SettingValue::Str("2000".into()), 2),
        ] {
            assert_eq!(
                whole_seconds(&raw, lo, hi).unwrap(),
                Duration::from_secs(secs),
                "{raw:?}"
            );
        }
        for raw in [
            SettingValue::Str("1500ms".into()),
            SettingValue::Int(1500),
            SettingValue::Str("1s1ms".into()),
        ] {
            let e = whole_seconds(&raw, lo, hi).unwrap_err();
            assert_eq!(e.problem, "not a whole number of seconds", "{raw:?}");
            assert!(e.accepted.contains("whole number of seconds"), "{e:?}");
            assert!(e.accepted.contains("from 1s to 1h"), "{e:?}");
        }
        let e = whole_seconds(&SettingValue::Str("2h".into()), lo, hi).unwrap_err();
        assert_eq!(e.problem, "out of range");
        assert!(e.accepted.starts_with(WHOLE_SECONDS_ACCEPTED), "{e:?}");
    }

    #[test]
    fn integers_and_lists() {
        assert_eq!(integer(&SettingValue::Str(" 7 ".into()), 1, 10).unwrap(), 7);
        assert!(integer(&SettingValue::Int(0), 1, 10).is_err());
        assert!(integer(&SettingValue::Float(1.5), 1, 10).is_err());
        assert_eq!(
            string_list(&SettingValue::Str("a, b,,".into()), "x").unwrap(),
            vec!["a".to_owned(), "b".to_owned()]
        );
        assert!(string_list(&SettingValue::Str(String::new()), "x")
            .unwrap()
            .is_empty());
        assert!(string_list(&SettingValue::List(vec![SettingValue::Int(1)]), "x").is_err());
    }
}
