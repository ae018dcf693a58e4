//! Human-readable durations for the config file: `"250ms"`, `"30s"`, `"1.5s"`, `"2m"`, `"1h"`.
//!
//! [`parse_duration`] is [`humantime::parse_duration`] (which also takes `"1m 30s"`, `"2min"`,
//! `"1d"`), with its errors sorted into the few kinds a config error needs: empty, negative,
//! missing unit, malformed, too large. [`format_duration`] prints a [`Duration`] in the
//! shortest exact form, so `parse_duration(&format_duration(d)) == Ok(d)` for every `d`. The
//! [`serde_str`] module plugs both into serde.

use std::fmt;
use std::time::Duration;

const NANOS_PER_MS: u128 = 1_000_000;
const NANOS_PER_S: u128 = 1_000_000_000;
const NANOS_PER_M: u128 = 60 * NANOS_PER_S;
const NANOS_PER_H: u128 = 60 * NANOS_PER_M;

const EXPECTED: &str = "expected a number followed by a unit such as ms, s, m or h";

/// Why a duration string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationErrorKind {
    /// The string was empty.
    Empty,
    /// The number had a leading `-`.
    Negative,
    /// A number with no unit, such as `"30"`.
    MissingUnit,
    /// An unknown unit, or a malformed number.
    Malformed,
    /// The value does not fit in a [`Duration`], or is finer than a nanosecond.
    Overflow,
}

/// A string that is not a valid duration; see [`parse_duration`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {detail}")]
pub struct DurationError {
    input: String,
    kind: DurationErrorKind,
    detail: String,
}

impl DurationError {
    fn new(input: &str, kind: DurationErrorKind, detail: String) -> Self {
        Self {
            input: input.to_owned(),
            kind,
            detail,
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

/// Parses `"250ms"`, `"30s"`, `"1.5s"`, `"2m"`, `"1h"` (and humantime's other forms, such as
/// `"1m 30s"`) into a [`Duration`].
///
/// Zero (`"0s"`) is accepted here; callers that need a positive duration check for it.
///
/// # Errors
///
/// Empty input, a negative number, a missing or unknown unit, a malformed number, or a
/// value too large for [`Duration`] or finer than a nanosecond.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    use humantime::DurationError as H;
    let err = |kind, detail: &str| DurationError::new(input, kind, detail.to_owned());
    if input.trim_start().starts_with('-') {
        return Err(err(
            DurationErrorKind::Negative,
            "durations cannot be negative",
        ));
    }
    humantime::parse_duration(input).map_err(|e| match e {
        H::Empty => err(
            DurationErrorKind::Empty,
            &format!("empty string; {EXPECTED}"),
        ),
        H::UnknownUnit { ref unit, .. } if unit.is_empty() => err(
            DurationErrorKind::MissingUnit,
            &format!("missing unit; {EXPECTED} (e.g. \"30s\")"),
        ),
        H::UnknownUnit { ref unit, .. } => err(
            DurationErrorKind::Malformed,
            &format!("unknown unit {unit:?}; {EXPECTED}"),
        ),
        H::InvalidCharacter(at) | H::NumberExpected(at) => err(
            DurationErrorKind::Malformed,
            &format!("unexpected character at byte {at}; {EXPECTED}"),
        ),
        H::NumberOverflow => err(
            DurationErrorKind::Overflow,
            "too large, or finer than a nanosecond",
        ),
    })
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
