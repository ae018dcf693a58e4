//! A 429's wait hint, from whichever headers the provider sent: `retry-after-ms`, then
//! `retry-after` (seconds or an HTTP date), then the reset headers of an exhausted limit
//! (OpenAI's `x-ratelimit-reset-*` durations, Anthropic's `anthropic-ratelimit-*-reset`
//! RFC 3339 times). Every hint is capped at [`MAX_HINT`] when parsed, so a hostile or broken
//! upstream cannot hand the chain an absurd duration.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// The longest hint we believe; anything longer is read as this.
pub const MAX_HINT: Duration = Duration::from_secs(3600);

/// The limits whose reset headers we read, as `(remaining header, reset header)`.
pub(crate) const OPENAI_LIMITS: [(&str, &str); 2] = [
    (
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    ),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
];
pub(crate) const ANTHROPIC_LIMITS: [(&str, &str); 4] = [
    (
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
    ),
    (
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
    ),
    (
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
    ),
    (
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    ),
];

fn text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Seconds as a capped duration; `None` for negative, NaN or unparseable values.
fn capped_secs(secs: f64) -> Option<Duration> {
    if !(secs.is_finite() && secs >= 0.0) {
        return None;
    }
    Duration::try_from_secs_f64(secs.min(MAX_HINT.as_secs_f64())).ok()
}

/// The provider's wait hint, measured from `now` where it is a point in time.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(d) = text(headers, "retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|ms| capped_secs(ms / 1000.0))
    {
        return Some(d);
    }
    if let Some(value) = text(headers, "retry-after") {
        if let Ok(secs) = value.parse::<u64>() {
            return Some(Duration::from_secs(secs).min(MAX_HINT));
        }
        if let Some(d) = value.parse::<f64>().ok().and_then(capped_secs) {
            return Some(d);
        }
        if let Ok(at) = httpdate::parse_http_date(value) {
            return Some(
                at.duration_since(now)
                    .unwrap_or(Duration::ZERO)
                    .min(MAX_HINT),
            );
        }
    }
    reset_hint(headers, now)
}

/// The reset time of the limits that are exhausted (remaining 0), the longest of them; when
/// no remaining counts are sent, the longest reset given.
fn reset_hint(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let openai = OPENAI_LIMITS
        .iter()
        .map(|(r, s)| (r, text(headers, s).and_then(go_duration)));
    let anthropic = ANTHROPIC_LIMITS.iter().map(|(r, s)| {
        let at = text(headers, s).and_then(rfc3339);
        (
            r,
            at.map(|at| at.duration_since(now).unwrap_or(Duration::ZERO)),
        )
    });
    let resets: Vec<(bool, Duration)> = openai
        .chain(anthropic)
        .filter_map(|(remaining, reset)| {
            let reset = reset?;
            let exhausted = text(headers, remaining)
                .and_then(|v| v.parse::<f64>().ok())
                .map(|n| n <= 0.0);
            Some((exhausted.unwrap_or(true), reset))
        })
        .collect();
    resets
        .iter()
        .filter(|(exhausted, _)| *exhausted)
        .map(|(_, d)| *d)
        .max()
        .map(|d| d.min(MAX_HINT))
}

/// A Go-style duration as OpenAI sends it: `1s`, `6m0s`, `20ms`, `1h2m3.5s`, `7.66s`.
pub(crate) fn go_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * scale;
    }
    capped_secs(total)
}

/// An RFC 3339 timestamp (`2024-06-01T12:00:30Z`, fractional seconds and `±HH:MM` offsets
/// allowed).
pub(crate) fn rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = b.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        let mut n = 0u64;
        for (k, d) in digits.iter().take(9).enumerate() {
            n += u64::from(d - b'0') * 10u64.pow(8 - k as u32);
        }
        nanos = u32::try_from(n).ok()?;
    }
    let offset_secs = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let h = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let m = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            let off = h * 3600 + m * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_seconds() {
        let h = headers(&[("retry-after", "7")]);
        assert_eq!(
            retry_after(&h, SystemTime::now()),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn retry_after_ms_wins_over_seconds() {
        let h = headers(&[("retry-after", "7"), ("retry-after-ms", "250")]);
        assert_eq!(
            retry_after(&h, SystemTime::now()),
            Some(Duration::from_millis(250))
        );
        let h = headers(&[("retry-after-ms", "1.5")]);
        assert_eq!(
            retry_after(&h, SystemTime::now()),
            Some(Duration::from_micros(1500))
        );
    }

    #[test]
    fn retry_after_http_date_is_measured_from_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let h = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT")]);
        // 07:28:00 + 30 s
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        let later = now + Duration::from_secs(100);
        assert_eq!(retry_after(&h, later), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_garbage_is_ignored() {
        let h = headers(&[("retry-after", "soon"), ("retry-after-ms", "-3")]);
        assert_eq!(retry_after(&h, SystemTime::now()), None);
        assert_eq!(retry_after(&HeaderMap::new(), SystemTime::now()), None);
    }

    #[test]
    fn hostile_hints_are_capped_not_panics() {
        let now = SystemTime::now();
        for (name, value) in [
            ("retry-after", "18446744073709551615"),
            ("retry-after", "1e20"),
            ("retry-after", "1e308"),
            ("retry-after-ms", "1e30"),
            ("retry-after-ms", "1e308"),
            ("x-ratelimit-reset-requests", "99999999999999h"),
            ("anthropic-ratelimit-requests-reset", "9999-12-31T23:59:59Z"),
        ] {
            let d = retry_after(&headers(&[(name, value)]), now);
            assert_eq!(d, Some(MAX_HINT), "{name}: {value}");
        }
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "inf")]), now),
            None
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "NaN")]), now),
            None
        );
    }

    #[test]
    fn openai_reset_of_the_exhausted_limit() {
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1.5s"),
            ("x-ratelimit-remaining-tokens", "1200"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        assert_eq!(
            retry_after(&h, SystemTime::now()),
            Some(Duration::from_millis(1500))
        );
        let h = headers(&[("x-ratelimit-reset-tokens", "20ms")]);
        assert_eq!(
            retry_after(&h, SystemTime::now()),
            Some(Duration::from_millis(20))
        );
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "10"),
            ("x-ratelimit-reset-requests", "1s"),
        ]);
        assert_eq!(
            retry_after(&h, SystemTime::now()),
            None,
            "no limit is exhausted"
        );
    }

    #[test]
    fn anthropic_reset_times_are_measured_from_now() {
        let now = rfc3339("2024-06-01T12:00:00Z").unwrap();
        let h = headers(&[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2024-06-01T12:00:30Z"),
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", "2024-06-01T12:00:45.5Z"),
        ]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(45_500)));
    }

    #[test]
    fn go_durations_and_rfc3339_parse() {
        assert_eq!(go_duration("2m3.5s"), Some(Duration::from_millis(123_500)));
        assert_eq!(go_duration("1h2m"), Some(MAX_HINT), "capped");
        assert_eq!(go_duration("12ms"), Some(Duration::from_millis(12)));
        assert_eq!(go_duration("5x"), None);
        assert_eq!(go_duration(""), None);
        let t = rfc3339("1970-01-02T00:00:01+01:00").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap(),
            Duration::from_secs(82_801)
        );
        assert!(rfc3339("2024-13-01T00:00:00Z").is_none());
        assert!(rfc3339("2024-01-01 00:00:00").is_none());
        assert!(rfc3339("garbage").is_none());
    }
}
