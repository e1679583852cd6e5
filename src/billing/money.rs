//! Money as tollgate prints it: integer micro-dollars shown as dollars with six decimals.

/// `12_345_678` → `"12.345678"`, `-5` → `"-0.000005"`. Exact: no float on the way.
pub fn dollars(micro_usd: i64) -> String {
    let sign = if micro_usd < 0 { "-" } else { "" };
    let abs = micro_usd.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

/// The inverse of [`dollars`], for checks that an export adds up: `None` unless the text has
/// exactly the shape `dollars` prints.
pub fn parse_dollars(text: &str) -> Option<i64> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = rest.split_once('.')?;
    if whole.is_empty()
        || fraction.len() != 6
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let value = whole
        .parse::<i64>()
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(fraction.parse::<i64>().ok()?)?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_six_decimals_exactly() {
        assert_eq!(dollars(0), "0.000000");
        assert_eq!(dollars(1), "0.000001");
        assert_eq!(dollars(12_345_678), "12.345678");
        assert_eq!(dollars(-5), "-0.000005");
        assert_eq!(dollars(i64::MIN), "-9223372036854.775808");
        for value in [0, 1, 999_999, 1_000_000, 123_456_789_012, -42] {
            assert_eq!(parse_dollars(&dollars(value)), Some(value));
        }
        assert_eq!(parse_dollars("1.5"), None);
        assert_eq!(parse_dollars("1e3"), None);
    }
}
