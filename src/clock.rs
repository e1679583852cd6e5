//! Time as tollgate stores it: milliseconds since the Unix epoch, always UTC.

use serde::{Serialize, Serializer};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{Date, OffsetDateTime, Time};

/// A UTC instant in milliseconds since the Unix epoch. Stored as a 64-bit integer in both
/// databases (so one SQL text serves SQLite and PostgreSQL) and shown as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    pub fn from_datetime(at: OffsetDateTime) -> Self {
        Self((at.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds.saturating_mul(1000))
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// RFC 3339 in UTC, always with milliseconds (fixed width, sorts as text), e.g.
    /// `2026-11-30T02:48:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        self.to_datetime()
            .format(FORMAT)
            .unwrap_or_else(|_| self.0.to_string())
    }

    /// Parses RFC 3339 (`2026-11-30T00:00:00Z`, any offset, normalised to UTC).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(Self::from_datetime)
    }

    /// Parses what a query parameter may hold: a date (`2026-11-01`, that day's 00:00 UTC) or
    /// an RFC 3339 instant.
    pub fn parse_date_or_rfc3339(text: &str) -> Option<Self> {
        if text.len() == 10 {
            Date::parse(text, &Iso8601::DATE)
                .ok()
                .map(|date| Self::from_datetime(OffsetDateTime::new_utc(date, Time::MIDNIGHT)))
        } else {
            Self::parse_rfc3339(text)
        }
    }
}

/// In the OpenAPI document: the RFC 3339 text it serialises as.
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .examples(["2026-11-30T02:48:00.123Z"])
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_rfc3339_in_utc() {
        let at = Timestamp::parse_rfc3339("2026-11-30T01:02:03.456+01:00").unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-30T00:02:03.456Z");
        assert_eq!(Timestamp::parse_rfc3339(&at.to_rfc3339()), Some(at));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
        assert_eq!(Timestamp::parse_date_or_rfc3339("2026-13-01"), None);
    }

    #[test]
    fn a_date_is_its_midnight_in_utc() {
        assert_eq!(
            Timestamp::parse_date_or_rfc3339("2026-11-01"),
            Timestamp::parse_rfc3339("2026-11-01T00:00:00Z")
        );
    }
}
