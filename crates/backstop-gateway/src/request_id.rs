//! Request identity: every request gets an id — the caller's `x-request-id` when it is a sane
//! one, else a fresh UUID — echoed as `x-request-id` on every answer (errors and streams
//! included), sent to each provider the chain calls and written in the request's log line.
//!
//! A caller's id is kept when it is 1 to [`MAX_LEN`] bytes of visible ASCII (no spaces or
//! control characters); anything else (too long, empty, non-ASCII, several headers) is
//! replaced by a generated id, so what we log and forward is always safe to.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The header a request id travels in, in and out.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller-supplied id kept.
pub const MAX_LEN: usize = 200;

/// A request's id: the front hands it to the model handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The caller's id from `headers` when it is acceptable, else a new one.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(HEADER).iter();
        match (values.next(), values.next()) {
            (Some(v), None) if acceptable(v.as_bytes()) => {
                RequestId(String::from_utf8_lossy(v.as_bytes()).into_owned())
            }
            _ => Self::generate(),
        }
    }

    /// A fresh random id (a UUID v4).
    pub fn generate() -> Self {
        let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        // Encoded into a stack buffer: `to_string` went through the formatter (260 instructions).
        let mut buf = uuid::Uuid::encode_buffer();
        RequestId(uuid.hyphenated().encode_lower(&mut buf).to_owned())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn acceptable(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(u8::is_ascii_graphic)
}

/// The middleware: decides the id, hands it to the handlers and puts it on the answer.
pub async fn layer(mut request: Request, next: Next) -> Response {
    let id = RequestId::from_headers(request.headers());
    // Visible ASCII only, so always a valid header value.
    let value = HeaderValue::from_str(id.as_str()).ok();
    request.extensions_mut().insert(id);
    let mut response = next.run(request).await;
    if let Some(v) = value {
        response.headers_mut().insert(HEADER, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_for(values: &[&[u8]]) -> RequestId {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(HEADER, HeaderValue::from_bytes(v).unwrap());
        }
        RequestId::from_headers(&h)
    }

    fn is_uuid_v4(s: &str) -> bool {
        uuid::Uuid::parse_str(s).is_ok_and(|u| u.get_version_num() == 4)
    }

    #[test]
    fn a_sane_caller_id_is_kept() {
        assert_eq!(id_for(&[b"abc-123_XYZ:9"]).as_str(), "abc-123_XYZ:9");
        let longest = "a".repeat(MAX_LEN);
        assert_eq!(id_for(&[longest.as_bytes()]).as_str(), longest);
    }

    #[test]
    fn an_unsafe_or_missing_id_is_replaced_by_a_uuid() {
        let too_long = "a".repeat(MAX_LEN + 1);
        for bad in [
            &[][..],
            &[&b"has space"[..]][..],
            &[&b""[..]][..],
            &[too_long.as_bytes()][..],
            &["é".as_bytes()][..],
            &[&b"tab\there"[..]][..],
            &[&b"one"[..], &b"two"[..]][..],
        ] {
            let id = id_for(bad);
            assert!(is_uuid_v4(id.as_str()), "{bad:?} gave {id:?}");
        }
        assert_ne!(RequestId::generate(), RequestId::generate());
    }
}
