//! Event time: i64 milliseconds since the Unix epoch, RFC 3339 parsing and
//! duration literals such as `7d`.
//!
//! Parsing has its own small error, [`TimeError`]: the query crate puts its
//! message under the literal's caret, the server names the parameter, and
//! storage turns it into [`crate::Error::InvalidArgument`].

use std::fmt;

/// A timestamp or duration that does not parse or is out of range; its
/// `Display` says which and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError(String);

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TimeError {}

impl From<TimeError> for crate::Error {
    fn from(e: TimeError) -> crate::Error {
        crate::Error::InvalidArgument(e.0)
    }
}

type Result<T> = std::result::Result<T, TimeError>;

fn invalid(message: String) -> TimeError {
    TimeError(message)
}

/// The earliest accepted event time: 0000-01-01T00:00:00Z.
pub const MIN_TS: i64 = -62_167_219_200_000;
/// The latest accepted event time: 9999-12-31T23:59:59.999Z.
pub const MAX_TS: i64 = 253_402_300_799_999;

/// Milliseconds in a minute, hour, day and week.
pub const MINUTE_MS: i64 = 60_000;
/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;
/// Milliseconds in a week.
pub const WEEK_MS: i64 = 7 * DAY_MS;

/// The current wall-clock time in epoch milliseconds.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now();
    match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(MAX_TS),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(-MIN_TS),
    }
}

/// Checks that `ts` lies in the supported range of years 0000–9999.
///
/// # Errors
/// A [`TimeError`] naming the value when it is out of range.
pub fn check_ts(ts: i64) -> Result<i64> {
    if (MIN_TS..=MAX_TS).contains(&ts) {
        Ok(ts)
    } else {
        Err(invalid(format!(
            "timestamp {ts} is outside years 0000-9999 ({MIN_TS}..={MAX_TS} ms)"
        )))
    }
}

/// Parses an RFC 3339 timestamp (`2026-11-01T10:00:00Z`) into epoch milliseconds.
///
/// # Errors
/// A [`TimeError`] when the text is not RFC 3339 or is out of range.
pub fn parse_timestamp(text: &str) -> Result<i64> {
    // A date alone (`2026-11-01`) is its midnight, UTC.
    let b = text.as_bytes();
    let date_only = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    let t = if date_only {
        let num = |r: std::ops::Range<usize>| text[r].parse::<u16>().unwrap_or(0);
        let month = time::Month::try_from(num(5..7) as u8)
            .map_err(|e| invalid(format!("'{text}' is not a date (YYYY-MM-DD): {e}")))?;
        time::Date::from_calendar_date(i32::from(num(0..4)), month, num(8..10) as u8)
            .map(|d| d.midnight().assume_utc())
            .map_err(|e| invalid(format!("'{text}' is not a date (YYYY-MM-DD): {e}")))?
    } else {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map_err(|e| {
                invalid(format!(
                    "'{text}' is not an RFC 3339 timestamp ('2026-11-01T10:00:00Z') or a date ('2026-11-01'): {e}"
                ))
            })?
    };
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
    let ms = i64::try_from(ms).map_err(|_| invalid(format!("'{text}' is out of range")))?;
    check_ts(ms)
}

/// Formats epoch milliseconds as RFC 3339 in UTC, with milliseconds when non-zero.
pub fn format_timestamp(ms: i64) -> String {
    with_timestamp(ms, str::to_owned)
}

/// Calls `f` with `ms` formatted as [`format_timestamp`] formats it, from a
/// buffer on the stack for years 0 to 9999: every profile read renders a few
/// timestamps, and an allocation each was a measurable share of a batch
/// read's time.
pub fn with_timestamp<R>(ms: i64, f: impl FnOnce(&str) -> R) -> R {
    let nanos = i128::from(ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => {
            let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
            let (h, mi, s, milli) = (t.hour(), t.minute(), t.second(), t.millisecond());
            if let Ok(y) = u16::try_from(y)
                && y <= 9999
            {
                // Digits written straight, about a tenth of the cost of `format!`.
                fn put(b: &mut [u8], mut v: u32) {
                    for c in b.iter_mut().rev() {
                        *c = b'0' + (v % 10) as u8;
                        v /= 10;
                    }
                }
                let mut b = *b"0000-00-00T00:00:00.000Z";
                put(&mut b[0..4], u32::from(y));
                put(&mut b[5..7], u32::from(mo));
                put(&mut b[8..10], u32::from(d));
                put(&mut b[11..13], u32::from(h));
                put(&mut b[14..16], u32::from(mi));
                put(&mut b[17..19], u32::from(s));
                let text = if milli == 0 {
                    b[19] = b'Z';
                    &b[..20]
                } else {
                    put(&mut b[20..23], u32::from(milli));
                    &b[..]
                };
                // Only ASCII digits and separators were written.
                return f(std::str::from_utf8(text).unwrap_or_default());
            }
            if milli == 0 {
                f(&format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"))
            } else {
                f(&format!(
                    "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z"
                ))
            }
        }
        Err(_) => f(&ms.to_string()),
    }
}

/// Parses a duration literal: a positive number followed by `ms`, `s`, `m`, `h`, `d` or `w`
/// (`250ms`, `90s`, `15m`, `1h`, `7d`, `2w`). Fractions are allowed (`1.5h`).
///
/// # Errors
/// A [`TimeError`] for a missing or unknown unit, a non-positive number,
/// or a duration beyond the supported time range.
pub fn parse_duration(text: &str) -> Result<i64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| {
            invalid(format!(
                "duration '{text}' has no unit (ms, s, m, h, d or w)"
            ))
        })?;
    let (num, unit) = t.split_at(split);
    let unit_ms: f64 = match unit {
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => MINUTE_MS as f64,
        "h" => HOUR_MS as f64,
        "d" => DAY_MS as f64,
        "w" => WEEK_MS as f64,
        _ => {
            return Err(invalid(format!(
                "duration '{text}' has unknown unit '{unit}' (use ms, s, m, h, d or w)"
            )));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| invalid(format!("duration '{text}' does not start with a number")))?;
    let ms = (n * unit_ms).round();
    if !(ms >= 1.0 && ms <= (MAX_TS - MIN_TS) as f64) {
        return Err(invalid(format!(
            "duration '{text}' must be at least 1ms and at most 10000 years"
        )));
    }
    Ok(ms as i64)
}

/// Formats milliseconds as the shortest exact duration literal (`7d`, `90m`, `1500ms`).
pub fn format_duration(ms: i64) -> String {
    for (unit, size) in [
        ("w", WEEK_MS),
        ("d", DAY_MS),
        ("h", HOUR_MS),
        ("m", MINUTE_MS),
        ("s", 1000),
    ] {
        if ms % size == 0 && ms != 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() -> Result<()> {
        assert_eq!(parse_duration("7d")?, 7 * 86_400_000);
        assert_eq!(parse_duration("250ms")?, 250);
        assert_eq!(parse_duration("1.5h")?, 5_400_000);
        assert_eq!(parse_duration("2w")?, 14 * 86_400_000);
        for bad in ["", "7", "d", "7x", "0d", "-1d", "1e9999d"] {
            assert!(parse_duration(bad).is_err(), "{bad} parsed");
        }
        assert_eq!(format_duration(7 * DAY_MS), "1w");
        assert_eq!(format_duration(90 * MINUTE_MS), "90m");
        assert_eq!(format_duration(1500), "1500ms");
        Ok(())
    }

    #[test]
    fn timestamps() -> Result<()> {
        // 2025-11-01T10:00:00Z, computed by hand: 20393 days after the epoch, plus 10h.
        let expect = 20_393 * DAY_MS + 10 * HOUR_MS;
        assert_eq!(parse_timestamp("2025-11-01T10:00:00Z")?, expect);
        assert_eq!(parse_timestamp("2025-11-01T11:00:00+01:00")?, expect);
        assert_eq!(format_timestamp(expect), "2025-11-01T10:00:00Z");
        assert_eq!(format_timestamp(expect + 5), "2025-11-01T10:00:00.005Z");
        assert!(parse_timestamp("yesterday").is_err());
        assert!(check_ts(MAX_TS + 1).is_err());
        assert!(check_ts(MIN_TS - 1).is_err());
        Ok(())
    }

    /// The civil date of a day count from the epoch (Howard Hinnant's
    /// `civil_from_days`), an independent reference for the formatter.
    fn civil(days: i64) -> (i64, i64, i64) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }

    #[test]
    fn timestamps_render_as_the_civil_calendar_says() {
        let reference = |ms: i64| {
            let (y, mo, d) = civil(ms.div_euclid(DAY_MS));
            let t = ms.rem_euclid(DAY_MS);
            let (h, mi, s, milli) = (t / HOUR_MS, t / MINUTE_MS % 60, t / 1000 % 60, t % 1000);
            let ms_part = if milli == 0 {
                String::new()
            } else {
                format!(".{milli:03}")
            };
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{ms_part}Z")
        };
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut times = vec![
            0,
            -1,
            951_782_400_000,
            253_402_300_799_999,
            -62_167_219_200_000,
        ];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Years 0 to 9999, a third of them on a whole second.
            let t = (x % 315_537_897_600_000) as i64 - 62_167_219_200_000;
            times.push(if x.is_multiple_of(3) {
                t - t.rem_euclid(1000)
            } else {
                t
            });
        }
        for t in times {
            assert_eq!(format_timestamp(t), reference(t), "{t}");
        }
    }
}
