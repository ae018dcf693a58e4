//! Keeps web pages from driving the gateway through a visitor's browser.
//!
//! - `Host` must be present (HTTP/1.1) and single (RFC 9112 §3.2): 400 otherwise.
//! - Without client keys, only loopback `Host` names (`localhost`, `127.0.0.0/8`, `[::1]`) or
//!   `server.allowed_hosts` are served: a DNS-rebinding page reaches us under its own name.
//!   Health checks are exempt (probes use the pod's address; they reveal nothing).
//! - A request carrying `Origin` comes from a browser page: refused unless the origin is in
//!   `server.allowed_origins` (CORS is off by default); allowed origins get CORS headers and
//!   preflight answers.
//!
//! Content-Type is checked by the JSON endpoints themselves (415).

use std::borrow::Cow;
use std::net::IpAddr;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::Response;
use backstop::providers::escape_controls;

use crate::config::ServerConfig;
use crate::server::error;

/// Headers a browser page may read from our answers.
const EXPOSED: &str = "x-backstop-provider, x-backstop-attempts, retry-after, x-request-id";
/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// The Host and Origin rules of one gateway.
#[derive(Debug, Clone)]
pub struct BrowserGuard {
    allowed_origins: Vec<String>,
    allowed_hosts: Vec<String>,
    check_host: bool,
}

impl BrowserGuard {
    /// The rules for this config; the Host allow-list applies only without client keys.
    pub fn new(server: &ServerConfig, clients_required: bool) -> Self {
        Self {
            allowed_origins: server.allowed_origins.clone(),
            allowed_hosts: server.allowed_hosts.clone(),
            check_host: !clients_required,
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// Whether a `Host` name (port and trailing dot removed, lower case) may be served.
    fn host_allowed(&self, name: &str) -> bool {
        is_loopback_name(name)
            || self
                .allowed_hosts
                .iter()
                .any(|h| match h.strip_prefix('.') {
                    Some(domain) => name == domain || name.ends_with(h.as_str()),
                    None => name == h,
                })
    }
}

fn is_loopback_name(name: &str) -> bool {
    if name == "localhost" {
        return true;
    }
    let ip = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host name of an authority (`Host` value or absolute-form target): lower case, port
/// and trailing dot removed; `None` when it is not a valid authority.
fn host_name(authority: &str) -> Option<Cow<'_, str>> {
    match plain_host(authority) {
        Some(name) => Some(Cow::Borrowed(name)),
        None => parsed_host(authority).map(Cow::Owned),
    }
}

/// [`host_name`] by the `http` crate's authority parser.
fn parsed_host(authority: &str) -> Option<String> {
    let a: axum::http::uri::Authority = authority.parse().ok()?;
    if a.as_str().contains('@') {
        return None; // userinfo has no place in Host
    }
    let host = a.host().trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// The common `Host`, `name[:port]` in lower-case letters, digits, `-` and `.`, read without
/// parsing or copying; anything else (`None`) takes [`parsed_host`].
fn plain_host(authority: &str) -> Option<&str> {
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let plain = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.';
    if port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err())
        || !host.bytes().all(plain)
    {
        return None;
    }
    let name = host.trim_end_matches('.');
    (!name.is_empty()).then_some(name)
}

/// A refusal in the shape of the API asked: Anthropic's for `/v1/messages`, else OpenAI's.
fn refuse(anthropic: bool, status: StatusCode, kind: &str, message: &str, code: &str) -> Response {
    if !anthropic {
        return error(status, kind, message, None, Some(code));
    }
    let body = crate::messages_response::error_body(status.as_u16(), message);
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Shown in messages and logs: bounded, control characters escaped.
fn shown(value: &HeaderValue) -> String {
    let text = String::from_utf8_lossy(value.as_bytes());
    let cut: String = text.chars().take(100).collect();
    escape_controls(&cut)
}

/// What the guard decided about a request.
#[derive(Debug)]
pub enum Verdict {
    /// Route it.
    Pass,
    /// Route it, and give the answer this allowed origin's CORS headers ([`expose`]).
    Cors(HeaderValue),
    /// Answer this instead: a refusal or a preflight's answer.
    Answer(Response),
}

/// Host first, then Origin (with preflight).
pub fn check<B>(g: &BrowserGuard, request: &axum::http::Request<B>) -> Verdict {
    let headers = request.headers();
    let anthropic = request.uri().path() == "/v1/messages";
    let refused = |status, kind, message: &str, code| {
        Verdict::Answer(refuse(anthropic, status, kind, message, code))
    };
    let mut hosts = headers.get_all(header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return refused(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "the request has more than one Host header",
            "invalid_host",
        );
    }
    let authority = match request.uri().authority() {
        Some(a) => Some(Cow::Borrowed(a.as_str())),
        None => first.map(|h| String::from_utf8_lossy(h.as_bytes())),
    };
    let name = match authority.as_deref() {
        Some(a) => match host_name(a) {
            Some(n) => Some(n),
            None => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "the Host header is not a valid host[:port]",
                    "invalid_host",
                );
            }
        },
        // HTTP/1.0 clients may omit Host; HTTP/1.1 ones must send it.
        None if request.version() >= Version::HTTP_11 => {
            return refused(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "the request has no Host header",
                "invalid_host",
            );
        }
        None => None,
    };
    let health = matches!(request.uri().path(), "/healthz" | "/readyz");
    if g.check_host
        && !health
        && let Some(name) = &name
        && !g.host_allowed(name)
    {
        tracing::debug!(host = %escape_controls(name), "refused a request for a Host that is not allowed");
        return refused(
            StatusCode::FORBIDDEN,
            "permission_error",
            &format!(
                "Host {:?} is not allowed: without client keys this gateway answers only \
                 loopback names (localhost, 127.0.0.1, [::1]); add the name to \
                 server.allowed_hosts or configure server.client_keys_env",
                escape_controls(name)
            ),
            "host_not_allowed",
        );
    }
    let Some(origin) = headers.get(header::ORIGIN).cloned() else {
        return Verdict::Pass;
    };
    let allowed = origin.to_str().is_ok_and(|o| g.origin_allowed(o));
    if !allowed {
        tracing::debug!(origin = %shown(&origin), "refused a cross-origin request");
        return refused(
            StatusCode::FORBIDDEN,
            "permission_error",
            &format!(
                "requests from web pages are refused: Origin {:?} is not in \
                 server.allowed_origins",
                shown(&origin)
            ),
            "origin_not_allowed",
        );
    }
    if request.method() == Method::OPTIONS
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return Verdict::Answer(preflight(origin, headers));
    }
    Verdict::Cors(origin)
}

/// The CORS headers of an allowed origin's answer.
pub fn expose(response: &mut Response, origin: HeaderValue) {
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.append(header::VARY, HeaderValue::from_static("origin"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
}

/// The answer to an allowed origin's preflight: the methods we serve and the headers it asked
/// for (bearer keys, not cookies: no credentials mode).
fn preflight(origin: HeaderValue, request: &HeaderMap) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    let asked = request
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static("authorization, content-type"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static(
            "origin, access-control-request-method, access-control-request-headers",
        ),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(hosts: &[&str]) -> BrowserGuard {
        BrowserGuard {
            allowed_origins: vec!["https://app.example.com".into()],
            allowed_hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            check_host: true,
        }
    }

    #[test]
    fn loopback_and_configured_hosts_are_allowed() {
        let g = guard(&["gateway.internal", ".corp.example"]);
        for host in [
            "localhost:8080",
            "127.0.0.1",
            "127.0.0.1:1234",
            "[::1]:8080",
            "LOCALHOST.",
            "gateway.internal:9000",
            "corp.example",
            "api.corp.example",
        ] {
            let name = host_name(host).unwrap();
            assert!(g.host_allowed(&name), "{host}");
        }
        for host in [
            "attacker.example",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "gateway.internal.evil",
            "notcorp.example",
            "10.0.0.5:8080",
        ] {
            let name = host_name(host).unwrap();
            assert!(!g.host_allowed(&name), "{host}");
        }
        assert_eq!(host_name("user@localhost"), None);
        assert_eq!(host_name("bad host"), None);
    }

    #[test]
    fn plain_host_reading_agrees_with_the_full_parse() {
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1234",
            "gateway.internal.:9000",
            "a-b.example:65535",
            "x:0",
        ] {
            assert_eq!(plain_host(host), parsed_host(host).as_deref(), "{host}");
        }
        // Whatever the plain reading declines goes to the parser, which decides.
        for host in [
            "LOCALHOST",
            "[::1]:8080",
            "host:65536",
            "host:",
            "host:+1",
            "user@localhost",
            "bad host",
            "...",
            "",
            ":80",
            "a:1:2",
        ] {
            assert_eq!(plain_host(host), None, "{host}");
        }
        assert_eq!(host_name("LOCALHOST.:80").as_deref(), Some("localhost"));
        assert_eq!(
            host_name("host:65536"),
            parsed_host("host:65536").map(Cow::Owned)
        );
    }

    #[test]
    fn origins_match_exactly_ignoring_case() {
        let g = guard(&[]);
        assert!(g.origin_allowed("https://app.example.com"));
        assert!(g.origin_allowed("HTTPS://APP.EXAMPLE.COM"));
        assert!(!g.origin_allowed("https://app.example.com.evil"));
        assert!(!g.origin_allowed("http://app.example.com"));
        assert!(!g.origin_allowed("null"));
    }
}
