//! Human-readable durations for the config file: `"250ms"`, `"30s"`, `"1.5s"`, `"2m"`, `"1h"`.
//!
//! [`parse_duration`] accepts a non-negative decimal number (optionally with a fractional
//! part) immediately followed by one of the units `ms`, `s`, `m` or `h`. [`format_duration`]
//! prints a [`Duration`] in the same syntax, so `parse_duration(&format_duration(d)) == Ok(d)`
//! for every `d`. The [`serde_str`] module plugs both into serde.

use std::fmt;
use std::time::Duration;

const NANOS_PER_MS: u128 = 1_000_000;
const NANOS_PER_S: u128 = 1_000_000_000;
const NANOS_PER_M: u128 = 60 * NANOS_PER_S;
const NANOS_PER_H: u128 = 60 * NANOS_PER_M;

const EXPECTED: &str = "expected a number followed by ms, s, m or h";

/// Why a duration string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationErrorKind {
    /// The string was empty.
    Empty,
    /// The number had a leading `-`.
    Negative,
    /// A number with no unit, such as `"30"`.
    MissingUnit,
    /// The unit was not one of `ms`, `s`, `m`, `h`, or the number was malformed.
    Malformed,
    /// The value does not fit in a [`Duration`].
    Overflow,
}

/// A string that is not a valid duration; see [`parse_duration`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {}", reason(*kind))]
pub struct DurationError {
    input: String,
    kind: DurationErrorKind,
}

fn reason(kind: DurationErrorKind) -> &'static str {
    match kind {
        DurationErrorKind::Empty => "empty string; expected a number followed by ms, s, m or h",
        DurationErrorKind::Negative => "durations cannot be negative",
        DurationErrorKind::MissingUnit => {
            "missing unit; expected a number followed by ms, s, m or h (e.g. \"30s\")"
        }
        DurationErrorKind::Malformed => EXPECTED,
        DurationErrorKind::Overflow => "too large",
    }
}

impl DurationError {
    fn new(input: &str, kind: DurationErrorKind) -> Self {
        Self {
            input: input.to_owned(),
            kind,
        }
    }

    /// The rejected input.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Why it was rejected.
    pub fn kind(&self) -> DurationErrorKind {
        self.kind
    }
}

/// Parses `"250ms"`, `"30s"`, `"1.5s"`, `"2m"`, `"1h"` into a [`Duration`].
///
/// Zero (`"0s"`) is accepted here; callers that need a positive duration check for it.
/// Fractions finer than a nanosecond are truncated.
///
/// # Errors
///
/// Empty input, a negative number, a missing or unknown unit, a malformed number, or a
/// value too large for [`Duration`].
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |kind| DurationError::new(input, kind);
    if input.is_empty() {
        return Err(err(DurationErrorKind::Empty));
    }
    if input.starts_with('-') {
        return Err(err(DurationErrorKind::Negative));
    }
    let number_len = input
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(input.len());
    let (number, unit) = input.split_at(number_len);
    let (int_part, frac_part) = match number.split_once('.') {
        Some((int_part, frac_part)) => (int_part, Some(frac_part)),
        None => (number, None),
    };
    // Require digits on both sides of a decimal point: reject ".5s", "5.s" and "1.2.3s".
    let digits_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok(int_part) || frac_part.is_some_and(|f| !digits_ok(f)) {
        return Err(err(DurationErrorKind::Malformed));
    }
    let unit_nanos = match unit {
        "" => return Err(err(DurationErrorKind::MissingUnit)),
        "ms" => NANOS_PER_MS,
        "s" => NANOS_PER_S,
        "m" => NANOS_PER_M,
        "h" => NANOS_PER_H,
        _ => return Err(err(DurationErrorKind::Malformed)),
    };
    let overflow = || err(DurationErrorKind::Overflow);
    let int_value: u128 = int_part.parse().map_err(|_| overflow())?;
    let mut nanos = int_value.checked_mul(unit_nanos).ok_or_else(overflow)?;
    if let Some(frac) = frac_part {
        // Only the first 13 fractional digits can matter (an hour is 3.6e12 ns); more would
        // only risk overflowing the scale below.
        let frac = &frac[..frac.len().min(13)];
        let frac_value: u128 = frac.parse().map_err(|_| overflow())?;
        let scale = 10u128.pow(u32::try_from(frac.len()).map_err(|_| overflow())?);
        nanos = nanos
            .checked_add(frac_value * unit_nanos / scale)
            .ok_or_else(overflow)?;
    }
    let secs = u64::try_from(nanos / NANOS_PER_S).map_err(|_| overflow())?;
    let sub_nanos = u32::try_from(nanos % NANOS_PER_S).map_err(|_| overflow())?;
    Ok(Duration::new(secs, sub_nanos))
}

/// Formats a [`Duration`] in the syntax [`parse_duration`] accepts, using the largest unit
/// that represents it exactly (`"2m"`, `"90s"`, `"250ms"`), or fractional seconds
/// (`"1.0005s"`) when no unit does.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    for (unit, size) in [
        ("h", NANOS_PER_H),
        ("m", NANOS_PER_M),
        ("s", NANOS_PER_S),
        ("ms", NANOS_PER_MS),
    ] {
        if nanos.is_multiple_of(size) {
            return format!("{}{unit}", nanos / size);
        }
    }
    let frac = format!("{:09}", duration.subsec_nanos());
    format!("{}.{}s", duration.as_secs(), frac.trim_end_matches('0'))
}

/// A [`Duration`] that displays in config syntax via [`format_duration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

/// Serde helpers: use as `#[serde(with = "backstop_gateway::duration::serde_str")]` on a
/// [`Duration`] field, or `serde_str::option` on an `Option<Duration>` field.
pub mod serde_str {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    use super::{format_duration, parse_duration};

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration string such as \"30s\", \"250ms\", \"2m\" or \"1h\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).map_err(E::custom)
        }
    }

    /// Deserializes a duration string.
    ///
    /// # Errors
    ///
    /// Anything that is not a string [`parse_duration`] accepts.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_str(DurationVisitor)
    }

    /// Serializes a duration as a string (see [`format_duration`]).
    ///
    /// # Errors
    ///
    /// Whatever the serializer reports.
    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(*duration))
    }

    /// The same for `Option<Duration>`; pair with `#[serde(default)]`.
    pub mod option {
        use std::fmt;
        use std::time::Duration;

        use serde::de::{self, Visitor};
        use serde::{Deserializer, Serializer};

        use super::super::format_duration;

        struct OptionVisitor;

        impl<'de> Visitor<'de> for OptionVisitor {
            type Value = Option<Duration>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"30s\", \"250ms\", \"2m\" or \"1h\"")
            }

            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                super::deserialize(d).map(Some)
            }
        }

        /// Deserializes an optional duration string.
        ///
        /// # Errors
        ///
        /// A present value that [`super::deserialize`] rejects.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            deserializer.deserialize_option(OptionVisitor)
        }

        /// Serializes an optional duration as a string or none.
        ///
        /// # Errors
        ///
        /// Whatever the serializer reports.
        pub fn serialize<S: Serializer>(
            duration: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match duration {
                Some(d) => serializer.serialize_some(&format_duration(*d)),
                None => serializer.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    }
}
