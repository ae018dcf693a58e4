//! The W3C `traceparent` header (Trace Context, level 1): read from a caller to continue its
//! trace, written to providers and on the answer. An invalid header is ignored (a new trace
//! starts), as the specification asks.

use std::fmt;

use axum::http::{HeaderMap, HeaderName};

/// The header name.
pub const HEADER: HeaderName = HeaderName::from_static("traceparent");

/// One `traceparent` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace's id (never zero).
    pub trace_id: u128,
    /// The caller's span id (never zero).
    pub parent_id: u64,
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// The caller's trace context, if `headers` carry exactly one valid `traceparent`.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut values = headers.get_all(HEADER).iter();
        match (values.next(), values.next()) {
            (Some(v), None) => v.to_str().ok().and_then(Self::parse),
            _ => None,
        }
    }

    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`; a later version is read by its version-00 prefix.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim_matches([' ', '\t']);
        let b = text.as_bytes();
        if !text.is_ascii() || b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let version = hex(&text[0..2])?;
        let exact = b.len() == 55;
        if version == 0xff || (version == 0 && !exact) || (!exact && b[55] != b'-') {
            return None;
        }
        let trace_id = hex(&text[3..35])?;
        let parent_id = u64::try_from(hex(&text[36..52])?).ok()?;
        let flags = u8::try_from(hex(&text[53..55])?).ok()?;
        (trace_id != 0 && parent_id != 0).then_some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }
}

/// Lower-case hex only (the specification forbids upper case).
fn hex(s: &str) -> Option<u128> {
    s.bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        .then(|| u128::from_str_radix(s, 16).ok())
        .flatten()
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::TraceParent;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_header_round_trips() {
        let t = TraceParent::parse(GOOD).unwrap();
        assert_eq!(t.trace_id, 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        assert_eq!(t.parent_id, 0x00f0_67aa_0ba9_02b7);
        assert_eq!(t.flags, 1);
        assert_eq!(t.to_string(), GOOD);
    }

    #[test]
    fn a_later_version_is_read_by_its_prefix() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        assert_eq!(
            TraceParent::parse(later).map(|t| t.trace_id),
            TraceParent::parse(GOOD).map(|t| t.trace_id)
        );
    }

    #[test]
    fn invalid_headers_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }
}
