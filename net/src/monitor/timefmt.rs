//! Time as nats-server's monitoring JSON writes it: RFC 3339 with nanoseconds (Go's
//! `time.Time` JSON), Go's `Duration.String()` for RTTs, and the day-aware uptime form.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2026-11-25T06:33:31.911311575Z`, as Go marshals a UTC `time.Time` (trailing zeros of the
/// fraction dropped, no fraction at all when it is zero).
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = natsd_core::civil::civil_from_days(days as i64);
    let mut s = format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let nanos = d.subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Go: server/monitor.go myUptime — "1y2d3h4m5s" style, whole seconds, largest unit first.
pub(crate) fn uptime(d: Duration) -> String {
    let mut secs = d.as_secs();
    let years = secs / (365 * 86_400);
    secs %= 365 * 86_400;
    let days = secs / 86_400;
    secs %= 86_400;
    let hours = secs / 3600;
    secs %= 3600;
    let mins = secs / 60;
    secs %= 60;
    if years > 0 {
        format!("{years}y{days}d{hours}h{mins}m{secs}s")
    } else if days > 0 {
        format!("{days}d{hours}h{mins}m{secs}s")
    } else if hours > 0 {
        format!("{hours}h{mins}m{secs}s")
    } else if mins > 0 {
        format!("{mins}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

/// Go's `time.Duration.String()`: "629µs", "3.529359ms", "1.5s", "2m3s", "0s".
pub(crate) fn go_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".to_owned();
    }
    if n < 1_000 {
        return format!("{n}ns");
    }
    if n < 1_000_000 {
        return format!("{}µs", frac(n, 1_000));
    }
    if n < 1_000_000_000 {
        return format!("{}ms", frac(n, 1_000_000));
    }
    let secs = d.as_secs();
    let sub = format!("{}s", frac(n % 60_000_000_000, 1_000_000_000));
    let (h, m) = (secs / 3600, secs / 60 % 60);
    if h > 0 {
        format!("{h}h{m}m{sub}")
    } else if m > 0 {
        format!("{m}m{sub}")
    } else {
        sub
    }
}

/// `n / unit` with the fraction written out and its trailing zeros dropped.
fn frac(n: u128, unit: u128) -> String {
    let whole = n / unit;
    let rest = n % unit;
    if rest == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let f = format!("{rest:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        let t = UNIX_EPOCH + Duration::new(1_795_588_411, 911_311_575);
        assert_eq!(rfc3339(t), "2026-11-25T06:33:31.911311575Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::new(951_782_400, 500_000_000)),
            "2000-02-29T00:00:00.5Z"
        );
        assert_eq!(go_duration(Duration::from_micros(629)), "629µs");
        assert_eq!(go_duration(Duration::from_nanos(3_529_359)), "3.529359ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(123)), "2m3s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(uptime(Duration::from_secs(2)), "2s");
        assert_eq!(uptime(Duration::from_secs(90_061)), "1d1h1m1s");
    }
}
