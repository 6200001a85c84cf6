//! Freeze windows: the time maths, pure.
//!
//! A window is weekly (`Fri 16:00` to `Mon 08:00` in a time zone, every week) or dated
//! (`2026-12-23` to `2027-01-02`, once). The one question asked of it: is `now` inside,
//! and when does it end (an instant)? Plus, for `why`: when does the next one start.
//!
//! Weekly windows are wall-clock times in their time zone (`chrono-tz`), so a Friday
//! 16:00 Berlin start is 15:00 UTC in winter and 14:00 UTC in summer, and a window that
//! spans a DST change ends at the local wall time. The occurrences of each boundary
//! come from the `cron` crate (`0 0 16 * * Fri`), which walks the calendar in the time
//! zone: a wall time that happens twice (clocks going back) counts from its first
//! instant. One that does not exist that day (clocks going forward) `cron` skips; a
//! freeze boundary must not vanish for a week, so that one is read with the offset
//! from before the change (02:30 becomes 03:30).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use cron::Schedule;

/// A weekday and a wall time: `Fri 16:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekTime {
    pub day: Weekday,
    pub time: NaiveTime,
}

impl WeekTime {
    /// `Fri 16:00`, `friday 16:00`, `FRI 9:30`.
    pub fn parse(s: &str) -> Result<WeekTime, String> {
        let mut words = s.split_whitespace();
        let (Some(day), Some(time), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!(
                "`{s}` is not a day and a time; write e.g. \"Fri 16:00\""
            ));
        };
        let day = parse_day(day).ok_or_else(|| {
            format!("`{day}` is not a day of the week; write Mon, Tue, Wed, Thu, Fri, Sat or Sun")
        })?;
        let time = parse_time(time)?;
        Ok(WeekTime { day, time })
    }

    /// Its occurrences, as a cron schedule (seconds first, as the `cron` crate reads it).
    fn schedule(self) -> Schedule {
        use chrono::Timelike;
        let expr = format!(
            "0 {} {} * * {}",
            self.time.minute(),
            self.time.hour(),
            short_day(self.day)
        );
        Schedule::from_str(&expr).expect("a minute, an hour and a day make a valid schedule")
    }
}

impl WeekTime {
    /// The first occurrence strictly after `t`.
    fn after(self, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = self.schedule().after(&t.with_timezone(&tz)).next();
        let cron = cron.map(|c| c.with_timezone(&Utc));
        let skipped = self.skipped_near(tz, t).filter(|s| *s > t);
        [cron, skipped].into_iter().flatten().min()
    }

    /// The latest occurrence at or before `t`.
    fn at_or_before(self, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // cron's "before" is strict: ask from just after `t`.
        let probe = (t + chrono::Duration::seconds(1)).with_timezone(&tz);
        let cron = self.schedule().after(&probe).next_back();
        let cron = cron.map(|c| c.with_timezone(&Utc));
        let skipped = self.skipped_near(tz, t).filter(|s| *s <= t);
        [cron, skipped].into_iter().flatten().max()
    }

    /// `cron` passes over a wall time the clock skips that day (clocks going forward);
    /// a freeze boundary must not vanish for a week, so the one of the week around `t`
    /// that falls in a gap is read as [`local`] reads it (02:30 becomes 03:30).
    fn skipped_near(self, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = t.with_timezone(&tz).date_naive();
        (-7..=7)
            .filter_map(|d| today.checked_add_signed(chrono::Duration::days(d)))
            .filter(|d| d.weekday() == self.day)
            .map(|d| d.and_time(self.time))
            .filter(|naive| tz.from_local_datetime(naive).earliest().is_none())
            .map(|naive| local(tz, naive))
            .min_by_key(|s| (*s - t).num_seconds().abs())
    }
}

impl fmt::Display for WeekTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", short_day(self.day), self.time.format("%H:%M"))
    }
}

fn short_day(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Mon",
        Weekday::Tue => "Tue",
        Weekday::Wed => "Wed",
        Weekday::Thu => "Thu",
        Weekday::Fri => "Fri",
        Weekday::Sat => "Sat",
        Weekday::Sun => "Sun",
    }
}

fn parse_day(s: &str) -> Option<Weekday> {
    let lower = s.to_ascii_lowercase();
    let days = [
        ("mon", "monday", Weekday::Mon),
        ("tue", "tuesday", Weekday::Tue),
        ("wed", "wednesday", Weekday::Wed),
        ("thu", "thursday", Weekday::Thu),
        ("fri", "friday", Weekday::Fri),
        ("sat", "saturday", Weekday::Sat),
        ("sun", "sunday", Weekday::Sun),
    ];
    days.iter()
        .find(|(short, long, _)| lower == *short || lower == *long)
        .map(|(_, _, d)| *d)
}

fn parse_time(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s, "%H:%M")
        .map_err(|_| format!("`{s}` is not a time of day; write it as HH:MM, e.g. \"16:00\""))
}

/// A moment typed for a dated window: a date, and maybe a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateOrTime {
    pub date: NaiveDate,
    pub time: Option<NaiveTime>,
}

impl DateOrTime {
    /// `2026-12-23`, `2026-12-23 18:00`, `2026-12-23T18:00`.
    pub fn parse(s: &str) -> Result<DateOrTime, String> {
        let s = s.trim();
        let (date, time) = match s.split_once([' ', 'T']) {
            Some((d, t)) => (d, Some(t.trim())),
            None => (s, None),
        };
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| {
            format!("`{s}` is not a date; write YYYY-MM-DD, e.g. \"2026-12-23\", or add a time: \"2026-12-23 18:00\"")
        })?;
        let time = time.map(parse_time).transpose()?;
        Ok(DateOrTime { date, time })
    }

    /// The instant it stands for in `tz`: a date alone is the start of that day, or,
    /// as an `until`, its end (midnight after it), so `until = "2027-01-02"` includes
    /// the 2nd.
    pub fn instant(self, tz: Tz, is_end: bool) -> DateTime<Utc> {
        let naive = match self.time {
            Some(t) => self.date.and_time(t),
            None if is_end => self
                .date
                .succ_opt()
                .unwrap_or(self.date)
                .and_time(NaiveTime::MIN),
            None => self.date.and_time(NaiveTime::MIN),
        };
        local(tz, naive)
    }
}

/// A wall time in `tz` as an instant: the first one when it happens twice; one in a
/// skipped hour is read with the offset from before the change (02:30 becomes 03:30).
fn local(tz: Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&naive).earliest() {
        Some(t) => t.with_timezone(&Utc),
        None => {
            let before = naive - chrono::Duration::hours(3);
            let offset = tz.offset_from_local_datetime(&before).earliest();
            match offset {
                Some(o) => {
                    use chrono::Offset;
                    let fixed = o.fix();
                    (naive - chrono::Duration::seconds(i64::from(fixed.local_minus_utc())))
                        .and_utc()
                }
                None => naive.and_utc(),
            }
        }
    }
}

/// A time zone from its IANA name, or what to write instead.
pub fn parse_timezone(s: &str) -> Result<Tz, String> {
    s.parse::<Tz>().map_err(|_| {
        format!("`{s}` is not a time zone; use an IANA name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\"")
    })
}

/// When deploys are frozen.
#[derive(Debug, Clone, PartialEq)]
pub enum Window {
    /// Every week, from `from` to the next `until`, in `tz`.
    Weekly {
        from: WeekTime,
        until: WeekTime,
        tz: Tz,
    },
    /// Once: `[from, until)`.
    Dated {
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        tz: Tz,
    },
}

impl Window {
    pub fn timezone(&self) -> Tz {
        match self {
            Window::Weekly { tz, .. } | Window::Dated { tz, .. } => *tz,
        }
    }

    /// When the window `now` is in ends, or `None` when `now` is outside every
    /// occurrence.
    pub fn ends(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Window::Dated { from, until, .. } => (*from <= now && now < *until).then_some(*until),
            Window::Weekly { from, until, tz } => {
                let start = from.at_or_before(*tz, now)?;
                let end = until.after(*tz, start)?;
                (now < end).then_some(end)
            }
        }
    }

    /// The next occurrence that starts after `now`: its start and end.
    pub fn next(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match self {
            Window::Dated { from, until, .. } => (now < *from).then_some((*from, *until)),
            Window::Weekly { from, until, tz } => {
                let start = from.after(*tz, now)?;
                Some((start, until.after(*tz, start)?))
            }
        }
    }

    /// An instant as this window's readers think of it: "Mon 2026-12-07 08:00
    /// Europe/Berlin".
    pub fn local(&self, at: DateTime<Utc>) -> String {
        show(at, self.timezone())
    }
}

/// "Mon 2026-12-07 08:00 Europe/Berlin".
pub fn show(at: DateTime<Utc>, tz: Tz) -> String {
    let l = at.with_timezone(&tz);
    format!(
        "{} {} {}",
        short_day(l.weekday()),
        l.format("%Y-%m-%d %H:%M"),
        tz.name()
    )
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Weekly { from, until, tz } => {
                write!(f, "every week from {from} to {until} {}", tz.name())
            }
            Window::Dated { from, until, tz } => {
                write!(f, "from {} to {}", show(*from, *tz), show(*until, *tz))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn weekend() -> Window {
        Window::Weekly {
            from: WeekTime::parse("Fri 16:00").unwrap(),
            until: WeekTime::parse("Mon 08:00").unwrap(),
            tz: parse_timezone("Europe/Berlin").unwrap(),
        }
    }

    #[test]
    fn a_friday_start_in_berlin_is_15_utc_in_winter_and_14_utc_in_summer() {
        let w = weekend();
        // Winter (CET, +1): Friday 2026-12-04.
        assert_eq!(w.ends(utc("2026-12-04T14:59:59Z")), None);
        assert_eq!(
            w.ends(utc("2026-12-04T15:00:00Z")),
            Some(utc("2026-12-07T07:00:00Z"))
        );
        // Summer (CEST, +2): Friday 2026-07-03.
        assert_eq!(w.ends(utc("2026-07-03T13:59:00Z")), None);
        assert_eq!(
            w.ends(utc("2026-07-03T14:00:00Z")),
            Some(utc("2026-07-06T06:00:00Z"))
        );
        // Monday 08:00 local is the end, exclusive.
        assert_eq!(w.ends(utc("2026-07-06T06:00:00Z")), None);
        assert_eq!(w.ends(utc("2026-07-08T12:00:00Z")), None);
    }

    #[test]
    fn a_window_across_a_dst_change_ends_at_the_local_wall_time() {
        let w = weekend();
        // Clocks go forward on Sunday 2026-03-29: it starts at 15:00 UTC (CET) and
        // ends Monday 08:00 CEST, 06:00 UTC.
        let start = utc("2026-03-27T15:00:00Z");
        assert_eq!(w.ends(start), Some(utc("2026-03-30T06:00:00Z")));
        assert_eq!(
            w.ends(utc("2026-03-30T05:59:00Z")),
            Some(utc("2026-03-30T06:00:00Z"))
        );
        assert_eq!(w.ends(utc("2026-03-30T06:00:00Z")), None);
        // Clocks go back on Sunday 2026-10-25: starts 14:00 UTC, ends 07:00 UTC.
        assert_eq!(w.ends(utc("2026-10-23T13:59:00Z")), None);
        assert_eq!(
            w.ends(utc("2026-10-23T14:00:00Z")),
            Some(utc("2026-10-26T07:00:00Z"))
        );
        assert_eq!(
            w.ends(utc("2026-10-26T06:30:00Z")),
            Some(utc("2026-10-26T07:00:00Z"))
        );
    }

    #[test]
    fn a_boundary_in_the_skipped_hour_moves_past_it_instead_of_vanishing() {
        let tz = parse_timezone("Europe/Berlin").unwrap();
        // 2027-03-28: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
        let night = Window::Weekly {
            from: WeekTime::parse("Sun 02:30").unwrap(),
            until: WeekTime::parse("Sun 05:00").unwrap(),
            tz,
        };
        assert_eq!(night.ends(utc("2027-03-28T01:00:00Z")), None);
        assert_eq!(
            night.ends(utc("2027-03-28T01:30:00Z")),
            Some(utc("2027-03-28T03:00:00Z"))
        );
        assert_eq!(
            night.next(utc("2027-03-27T12:00:00Z")),
            Some((utc("2027-03-28T01:30:00Z"), utc("2027-03-28T03:00:00Z")))
        );
        // An end in the gap ends the window there, not a week later.
        let evening = Window::Weekly {
            from: WeekTime::parse("Sat 20:00").unwrap(),
            until: WeekTime::parse("Sun 02:30").unwrap(),
            tz,
        };
        assert_eq!(
            evening.ends(utc("2027-03-28T01:00:00Z")),
            Some(utc("2027-03-28T01:30:00Z"))
        );
        assert_eq!(evening.ends(utc("2027-03-28T01:30:00Z")), None);
        // Other weeks are untouched: 02:30 CET is 01:30 UTC.
        assert_eq!(
            night.ends(utc("2027-03-21T01:45:00Z")),
            Some(utc("2027-03-21T04:00:00Z"))
        );
    }

    #[test]
    fn the_next_window_is_found_from_outside() {
        let w = weekend();
        let (start, end) = w.next(utc("2026-12-02T07:00:00Z")).unwrap();
        assert_eq!(start, utc("2026-12-04T15:00:00Z"));
        assert_eq!(end, utc("2026-12-07T07:00:00Z"));
        assert_eq!(w.local(start), "Fri 2026-12-04 16:00 Europe/Berlin");
    }

    #[test]
    fn a_window_within_one_day_and_one_that_wraps_the_week() {
        let tz = parse_timezone("UTC").unwrap();
        let lunch = Window::Weekly {
            from: WeekTime::parse("wed 12:00").unwrap(),
            until: WeekTime::parse("Wednesday 13:00").unwrap(),
            tz,
        };
        assert_eq!(
            lunch.ends(utc("2026-12-02T12:30:00Z")),
            Some(utc("2026-12-02T13:00:00Z"))
        );
        assert_eq!(lunch.ends(utc("2026-12-02T13:30:00Z")), None);
        // Sunday to Saturday: all week but Saturday evening.
        let most = Window::Weekly {
            from: WeekTime::parse("Sun 00:00").unwrap(),
            until: WeekTime::parse("Sat 18:00").unwrap(),
            tz,
        };
        assert!(most.ends(utc("2026-12-02T12:00:00Z")).is_some());
        assert_eq!(most.ends(utc("2026-12-05T19:00:00Z")), None);
    }

    #[test]
    fn dated_windows_include_the_until_day_unless_a_time_is_given() {
        let tz = parse_timezone("Europe/Berlin").unwrap();
        let from = DateOrTime::parse("2026-12-23").unwrap().instant(tz, false);
        let until = DateOrTime::parse("2027-01-02").unwrap().instant(tz, true);
        assert_eq!(from, utc("2026-12-22T23:00:00Z"));
        assert_eq!(until, utc("2027-01-02T23:00:00Z"));
        let w = Window::Dated { from, until, tz };
        assert_eq!(w.ends(utc("2026-12-22T22:59:00Z")), None);
        assert_eq!(w.ends(utc("2027-01-02T20:00:00Z")), Some(until));
        assert_eq!(w.ends(until), None);
        let at = DateOrTime::parse("2026-12-23 18:00").unwrap();
        assert_eq!(at.instant(tz, true), utc("2026-12-23T17:00:00Z"));
        // A wall time the clock skips reads as the hour after it.
        let skipped = DateOrTime::parse("2026-03-29 02:30").unwrap();
        assert_eq!(skipped.instant(tz, false), utc("2026-03-29T01:30:00Z"));
    }

    #[test]
    fn bad_input_says_what_to_write() {
        assert!(WeekTime::parse("Fry 16:00")
            .unwrap_err()
            .contains("Mon, Tue"));
        assert!(WeekTime::parse("Fri 25:00").unwrap_err().contains("HH:MM"));
        assert!(WeekTime::parse("Fri")
            .unwrap_err()
            .contains("\"Fri 16:00\""));
        assert!(DateOrTime::parse("23.12.2026")
            .unwrap_err()
            .contains("YYYY-MM-DD"));
        assert!(parse_timezone("Europe/Berlinn")
            .unwrap_err()
            .contains("Europe/Berlin"));
    }
}
