//! The log lines' timestamps: what tracing's default timer writes (RFC 3339 in UTC with
//! microseconds, `2026-12-03T15:47:47.409572Z`), with everything up to the second formatted
//! once per second instead of once per line. Formatting the date and time cost about 2,400
//! instructions of every request's log line; this costs a comparison and two short writes.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// The timer for [`tracing_subscriber::fmt`]'s lines, in both formats.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Timestamps;

impl FormatTime for Timestamps {
    fn format_time(&self, writer: &mut Writer<'_>) -> std::fmt::Result {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        write_timestamp(writer, since_epoch.as_secs(), since_epoch.subsec_micros())
    }
}

/// `secs` and `micros` since the epoch as RFC 3339. The part up to the second is kept per
/// thread (each thread that logs formats its own), with the second it was made for.
fn write_timestamp(writer: &mut impl std::fmt::Write, secs: u64, micros: u32) -> std::fmt::Result {
    thread_local! {
        static SECOND: RefCell<(Option<u64>, String)> = const { RefCell::new((None, String::new())) };
    }
    SECOND.with_borrow_mut(|(second, prefix)| {
        if *second != Some(secs) {
            prefix.clear();
            let at = i64::try_from(secs)
                .ok()
                .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            write!(
                prefix,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            )?;
            *second = Some(secs);
        }
        writer.write_str(prefix)?;
        // Six digits and the zone, without the formatting machinery.
        let mut digits = *b"000000Z";
        let mut rest = micros.min(999_999);
        for digit in digits[..6].iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        // ASCII digits and `Z`: always UTF-8.
        writer.write_str(std::str::from_utf8(&digits).unwrap_or("000000Z"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp(secs: u64, micros: u32) -> String {
        let mut out = String::new();
        write_timestamp(&mut out, secs, micros).unwrap();
        out
    }

    #[test]
    fn timestamps_are_rfc3339_with_microseconds_in_utc() {
        assert_eq!(
            timestamp(1_796_311_667, 409_572),
            "2026-12-03T15:27:47.409572Z"
        );
        assert_eq!(timestamp(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(timestamp(0, 0), "1970-01-01T00:00:00.000000Z");
    }

    /// The cached part is made again when the second changes, in either direction (the wall
    /// clock may step back).
    #[test]
    fn a_new_second_formats_its_own_date_and_time() {
        assert_eq!(timestamp(1_796_311_667, 1), "2026-12-03T15:27:47.000001Z");
        assert_eq!(
            timestamp(1_796_311_667, 999_999),
            "2026-12-03T15:27:47.999999Z"
        );
        assert_eq!(timestamp(1_796_311_668, 0), "2026-12-03T15:27:48.000000Z");
        assert_eq!(timestamp(1_796_311_607, 5), "2026-12-03T15:26:47.000005Z");
    }

    /// The same text as tracing's own timer, read the same second (retried if a second
    /// boundary falls between the two reads).
    #[test]
    fn the_text_is_tracing_s_own() {
        use tracing_subscriber::fmt::time::SystemTime as TracingTime;
        for _ in 0..10 {
            let mut theirs = String::new();
            TracingTime
                .format_time(&mut Writer::new(&mut theirs))
                .unwrap();
            let mut ours = String::new();
            Timestamps.format_time(&mut Writer::new(&mut ours)).unwrap();
            if theirs[..20] == ours[..20] {
                assert_eq!(theirs.len(), ours.len(), "{theirs} / {ours}");
                assert!(
                    ours.ends_with('Z') && theirs.ends_with('Z'),
                    "{theirs} / {ours}"
                );
                return;
            }
        }
        panic!("tracing's timestamps and ours never agreed to the second");
    }
}
