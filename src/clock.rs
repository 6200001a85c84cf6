//! Time, injectable: expiry and timeouts are tested by moving a clock, not by sleeping.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// `at + d`, saturating at the latest time chrono can represent instead of panicking
/// (a configured duration of a million years must not crash the bot).
pub fn later(at: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at - d`, saturating at the earliest time chrono can represent.
pub fn earlier(at: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| at.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The real time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(start))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.0.lock().expect("clock lock");
        *now += chrono::Duration::from_std(by).expect("duration in range");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_with_huge_durations_saturates() {
        let now = Utc::now();
        let huge = std::time::Duration::from_secs(100_000_000 * 86_400);
        assert_eq!(later(now, huge), DateTime::<Utc>::MAX_UTC);
        assert_eq!(earlier(now, huge), DateTime::<Utc>::MIN_UTC);
        assert_eq!(
            later(now, std::time::Duration::MAX),
            DateTime::<Utc>::MAX_UTC
        );
        let hour = std::time::Duration::from_secs(3600);
        assert_eq!(later(now, hour) - now, chrono::Duration::hours(1));
    }
}
