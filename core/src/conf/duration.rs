//! Go duration strings (`"2m"`, `"1h30m"`, `"500ms"`, `"1.5s"`), as `time.ParseDuration` reads
//! them: a sign, then one or more decimal numbers each followed by a unit (`ns`, `us`, `µs`,
//! `ms`, `s`, `m`, `h`). A bare `"0"` is allowed.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not of the Go duration grammar.
    #[error("time: invalid duration \"{0}\"")]
    Invalid(String),
    /// A number without a unit, other than `0`.
    #[error("time: missing unit in duration \"{0}\"")]
    MissingUnit(String),
    /// An unknown unit such as `d`.
    #[error("time: unknown unit \"{unit}\" in duration \"{text}\"")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole duration text.
        text: String,
    },
    /// Over about 292 years, Go's limit.
    #[error("time: invalid duration \"{0}\" (out of range)")]
    Overflow(String),
    /// Negative where only non-negative durations make sense.
    #[error("negative duration \"{0}\"")]
    Negative(String),
}

const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses a Go duration into signed nanoseconds.
pub fn parse_nanos(text: &str) -> Result<i128, DurationError> {
    let invalid = || DurationError::Invalid(text.to_owned());
    let (neg, mut s) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let scale: u128 = match unit {
            "" => return Err(DurationError::MissingUnit(text.to_owned())),
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(DurationError::UnknownUnit {
                    unit: unit.to_owned(),
                    text: text.to_owned(),
                })
            }
        };
        let overflow = || DurationError::Overflow(text.to_owned());
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse::<u128>().map_err(|_| overflow())?
        };
        let mut v = whole.checked_mul(scale).ok_or_else(overflow)?;
        // The fraction: digits beyond what the scale can hold are dropped, as Go does.
        let mut frac_scale = scale;
        for d in frac_part.bytes() {
            frac_scale /= 10;
            if frac_scale == 0 {
                break;
            }
            v += u128::from(d - b'0') * frac_scale;
        }
        total = total.checked_add(v).ok_or_else(overflow)?;
        if total > MAX_NANOS {
            return Err(overflow());
        }
    }
    let signed = i128::try_from(total).map_err(|_| DurationError::Overflow(text.to_owned()))?;
    Ok(if neg { -signed } else { signed })
}

/// Parses a non-negative Go duration.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let n = parse_nanos(text)?;
    if n < 0 {
        return Err(DurationError::Negative(text.to_owned()));
    }
    Ok(nanos_to_duration(n))
}

/// Converts non-negative nanoseconds (as [`parse_nanos`] returns) to a [`Duration`]; negative
/// values become zero.
pub fn nanos_to_duration(n: i128) -> Duration {
    let n = u128::try_from(n).unwrap_or(0);
    let secs = u64::try_from(n / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is below 10^9.
    let sub = u32::try_from(n % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_examples() {
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration(".5s").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration("1h1m1s1ms1us1ns").unwrap(),
            Duration::new(3661, 1_001_001)
        );
        assert_eq!(parse_duration("3µs").unwrap(), Duration::from_micros(3));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("+5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_nanos("-1s").unwrap(), -1_000_000_000);
    }

    #[test]
    fn rejects() {
        assert!(matches!(parse_duration(""), Err(DurationError::Invalid(_))));
        assert!(matches!(
            parse_duration("-"),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            parse_duration("."),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            parse_duration("10"),
            Err(DurationError::MissingUnit(_))
        ));
        assert!(matches!(
            parse_duration("1d"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("abc"),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            parse_duration("-3s"),
            Err(DurationError::Negative(_))
        ));
        assert!(matches!(
            parse_duration("3000000h"),
            Err(DurationError::Overflow(_))
        ));
        assert_eq!(
            parse_duration("1x").unwrap_err().to_string(),
            "time: unknown unit \"x\" in duration \"1x\""
        );
    }
}
