//! Quota periods: UTC calendar minutes, days and months.

use serde::Serialize;
use time::{Date, Month, OffsetDateTime, Time};

use crate::clock::Timestamp;

/// A fixed period that counters reset at the start of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    Minute,
    Day,
    Month,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Minute, Window::Day, Window::Month];

    /// The start of the period that contains `at`.
    pub fn start(self, at: Timestamp) -> Timestamp {
        let ms = at.millis();
        match self {
            Self::Minute => Timestamp(ms - ms.rem_euclid(60_000)),
            Self::Day => Timestamp(ms - ms.rem_euclid(86_400_000)),
            Self::Month => {
                let date = at.to_datetime().date();
                month_start(date.year(), date.month())
            }
        }
    }

    /// The start of the next period after the one that contains `at`: when counters reset.
    pub fn end(self, at: Timestamp) -> Timestamp {
        let start = self.start(at).millis();
        match self {
            Self::Minute => Timestamp(start + 60_000),
            Self::Day => Timestamp(start + 86_400_000),
            Self::Month => {
                let date = at.to_datetime().date();
                let (year, month) = if date.month() == Month::December {
                    (date.year() + 1, Month::January)
                } else {
                    (date.year(), date.month().next())
                };
                month_start(year, month)
            }
        }
    }
}

fn month_start(year: i32, month: Month) -> Timestamp {
    Date::from_calendar_date(year, month, 1)
        .map(|date| Timestamp::from_datetime(OffsetDateTime::new_utc(date, Time::MIDNIGHT)))
        .unwrap_or(Timestamp(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn periods_are_utc_calendar_units() {
        let t = at("2026-12-31T23:59:59.999Z");
        assert_eq!(Window::Day.start(t), at("2026-12-31T00:00:00Z"));
        assert_eq!(Window::Day.end(t), at("2027-01-01T00:00:00Z"));
        assert_eq!(Window::Month.start(t), at("2026-12-01T00:00:00Z"));
        assert_eq!(Window::Month.end(t), at("2027-01-01T00:00:00Z"));
        assert_eq!(Window::Minute.start(t), at("2026-12-31T23:59:00Z"));
        let next = at("2027-01-01T00:00:00.000Z");
        assert_eq!(Window::Day.start(next), next);
        assert_eq!(Window::Month.start(next), next);
        assert_eq!(
            Window::Month.end(at("2028-02-10T00:00:00Z")),
            at("2028-03-01T00:00:00Z")
        );
        // An offset is only a notation: periods are UTC.
        assert_eq!(
            Window::Day.start(at("2026-06-01T01:00:00+02:00")),
            at("2026-05-31T00:00:00Z")
        );
    }
}
