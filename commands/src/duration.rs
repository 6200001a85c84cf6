//! Durations as people type them: `90s`, `15m`, `2h`, `1d`, `1h30m`, `2 hours`.

use std::time::Duration;

/// Parse a duration such as `90s`, `15m`, `2h`, `1d`, `1w` or `1h30m`.
///
/// One or more `NUMBER UNIT` pairs with no spaces, added up. Units (any case):
/// `s`/`sec`/`second(s)`, `m`/`min(s)`/`minute(s)`, `h`/`hr(s)`/`hour(s)`,
/// `d`/`day(s)`, `w`/`wk(s)`/`week(s)`. `m` is minutes, never months. A bare number
/// is refused because its unit would be a guess. `None` when the text is not a
/// duration or overflows.
///
/// The bot uses the same function for configuration values, so `0s` is accepted
/// here; commands that need a positive duration check that themselves.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() || !s.is_ascii() {
        return None;
    }
    let bytes = s.as_bytes();
    let mut total: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let digits_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits_start {
            return None;
        }
        let number: u64 = s[digits_start..i].parse().ok()?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let seconds = unit_seconds(&s[unit_start..i])?;
        total = total.checked_add(number.checked_mul(seconds)?)?;
    }
    Some(Duration::from_secs(total))
}

/// Parse a duration written the way chat accepts it after `for`: one or more words,
/// each a duration (`1h30m`) or a `NUMBER UNIT` pair (`2 hours`), added up: `4h`,
/// `1h30m`, `1h 30m`, `4 hours`, `90 minutes`. The whole text must be the duration.
/// `None` when it is not one or overflows. The bot reads configuration durations with
/// this function too, so they take exactly the forms chat takes.
pub fn parse_duration_phrase(s: &str) -> Option<Duration> {
    let words: Vec<&str> = s.split_whitespace().collect();
    match duration_at(&words) {
        Some((d, used)) if used == words.len() => Some(d),
        _ => None,
    }
}

/// A duration at the start of `words`, possibly spread over several words
/// (`1h 30m`, `2 hours`), and how many words it took.
pub(crate) fn duration_at(words: &[&str]) -> Option<(Duration, usize)> {
    let mut total = Duration::ZERO;
    let mut used = 0;
    loop {
        let rest = &words[used..];
        if let Some(d) = rest.first().and_then(|w| parse_duration(w)) {
            total = total.checked_add(d)?;
            used += 1;
        } else if let [number, unit, ..] = rest {
            let (Ok(n), Some(size)) = (number.parse::<u64>(), unit_seconds(unit)) else {
                break;
            };
            total = total.checked_add(Duration::from_secs(n.checked_mul(size)?))?;
            used += 2;
        } else {
            break;
        }
    }
    (used > 0).then_some((total, used))
}

/// Seconds in one `unit`; `None` for anything that is not a unit.
pub(crate) fn unit_seconds(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "wk" | "wks" | "week" | "weeks" => 604_800,
        _ => return None,
    })
}

/// The canonical text of a duration, in days, hours, minutes and seconds:
/// `1d2h30m`, `90s` → `1m30s`, zero → `0s`. Fractions of a second are dropped.
///
/// `parse_duration(&format_duration(d))` gives back `d` for whole seconds.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        let n = secs / size;
        secs %= size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_add_up() {
        let cases = [
            ("90s", 90),
            ("15m", 900),
            ("2h", 7200),
            ("1d", 86_400),
            ("1w", 604_800),
            ("1h30m", 5400),
            ("1H30M", 5400),
            ("2hours", 7200),
            ("45mins", 2700),
            ("0s", 0),
            (" 5m ", 300),
        ];
        for (text, secs) in cases {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_secs(secs)),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for text in [
            "",
            "5",
            "m",
            "h5",
            "5x",
            "1.5h",
            "-5m",
            "5 m",
            "1h 30m",
            "5mo",
            "１h",
            "99999999999999999999s",
            "18446744073709551615w",
        ] {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
    }

    #[test]
    fn phrases_take_the_forms_chat_takes() {
        for (text, secs) in [
            ("4h", 14_400),
            ("1h30m", 5400),
            ("1h 30m", 5400),
            ("4 hours", 14_400),
            ("90 minutes", 5400),
            (" 2 days 3h ", 183_600),
        ] {
            assert_eq!(
                parse_duration_phrase(text),
                Some(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for text in [
            "",
            "4",
            "hours",
            "4 hours ago",
            "1.5h",
            "18446744073709551615 weeks",
        ] {
            assert_eq!(parse_duration_phrase(text), None, "{text:?}");
        }
    }

    #[test]
    fn formats_canonically() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_secs(93_784)), "1d2h3m4s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for secs in [1, 59, 60, 61, 3599, 3600, 86_399, 86_400, 1_000_000] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_duration(&format_duration(d)), Some(d));
        }
    }
}
