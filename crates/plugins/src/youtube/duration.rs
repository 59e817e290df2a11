//! ISO 8601 durations as the Data API writes them in `contentDetails.duration`:
//! `PT58S`, `PT1H2M3S`, `P1DT2H3M4S`, and `P0D` for live and upcoming broadcasts.

/// Parses `P[nW][nD][T[nH][nM][nS]]` into seconds.
///
/// Returns `None` for anything else: an empty designator (`P`, `PT`), a `T` with nothing
/// after it, fractions, signs, years or months (whose length in seconds is not fixed), or a
/// value that does not fit in a `u64`. `P0D` is `Some(0)`; callers treat 0 as "live or
/// unknown".
pub fn parse_iso8601_duration(text: &str) -> Option<u64> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => {
            if t.is_empty() {
                return None;
            }
            (d, Some(t))
        }
        None => (rest, None),
    };
    if date.is_empty() && time.is_none() {
        return None;
    }
    let mut total: u64 = 0;
    total = add_components(total, date, &[('W', 7 * 86_400), ('D', 86_400)])?;
    if let Some(t) = time {
        total = add_components(total, t, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    }
    Some(total)
}

/// Adds `<digits><unit>` components in the order `units` lists them, each at most once.
fn add_components(mut total: u64, mut text: &str, units: &[(char, u64)]) -> Option<u64> {
    let mut next_unit = 0;
    while !text.is_empty() {
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let value: u64 = text[..digits].parse().ok()?;
        let unit = text[digits..].chars().next()?;
        let index = units[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
        total = total.checked_add(value.checked_mul(units[index].1)?)?;
        next_unit = index + 1;
        text = &text[digits + unit.len_utf8()..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reference_table() {
        for (text, secs) in [
            ("PT58S", 58),
            ("PT1M", 60),
            ("PT3M45S", 225),
            ("PT15M51S", 951),
            ("PT1H", 3600),
            ("PT1H2M3S", 3723),
            ("P1DT2H3M4S", 93_784),
            ("P0D", 0),
            ("P1D", 86_400),
            ("P1W", 604_800),
            ("PT0S", 0),
            ("PT25H0M1S", 90_001),
        ] {
            assert_eq!(parse_iso8601_duration(text), Some(secs), "{text}");
        }
    }

    #[test]
    fn refuses_malformed() {
        for text in [
            "",
            "P",
            "PT",
            "P1DT",
            "1H",
            "PT1.5S",
            "PT-1S",
            "P1Y",
            "P1M",
            "PT1S1M",
            "PT1H1H",
            "PTS",
            "pt1s",
            "PT1X",
            "P1DT1D",
            "PT1 S",
            "PT99999999999999999999S",
        ] {
            assert_eq!(parse_iso8601_duration(text), None, "{text:?}");
        }
    }

    #[test]
    fn overflow_is_none() {
        assert_eq!(parse_iso8601_duration("P18446744073709551615W"), None);
        assert_eq!(
            parse_iso8601_duration("PT18446744073709551615S"),
            Some(u64::MAX)
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse_iso8601_duration(&s);
        }

        #[test]
        fn never_panics_on_near_misses(s in "P[0-9DTHMSW.]{0,16}") {
            let _ = parse_iso8601_duration(&s);
        }

        #[test]
        fn round_trips(h in 0u64..1000, m in 0u64..60, s in 0u64..60) {
            let text = format!("PT{h}H{m}M{s}S");
            prop_assert_eq!(parse_iso8601_duration(&text), Some(h * 3600 + m * 60 + s));
        }
    }
}
