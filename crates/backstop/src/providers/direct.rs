//! The shared pool's client for cleartext `http://` upstreams (a local inference server, a
//! sidecar, an egress proxy that adds TLS): our own HTTP/1.1 connections ([`h1`](super::h1))
//! in our own pool ([`pool`](super::pool)). reqwest wraps hyper-util's pooled client; per
//! request it re-parses the URL twice (its redirect layer and its response), and runs redirect
//! and retry layers we turn off anyway. Going around them saved about a fifth of a proxied
//! request's instructions, and around hyper-util's pool another tenth (BENCHMARKS.md).
//!
//! reqwest still sends everything else: `https://` (its TLS, trust roots and ALPN), a
//! caller's own client, and every upstream when the environment names an HTTP proxy, which
//! reqwest honours and this client does not.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

use super::http::from_transport;
use super::outgoing::Outgoing;
use super::pool::{BoxError, Pool};
use super::upstream::UpstreamResponse;
use crate::ProviderError;

/// Pooled HTTP/1.1 connections over plain TCP.
pub(crate) type DirectClient = Pool<TimedConnector>;

/// A pool like reqwest's as we build it: the connect timeout over name resolution and
/// connect together, `TCP_NODELAY`, reqwest's TCP keep-alive (15 s, every 15 s, 3 probes),
/// idle connections kept 90 s, no redirects followed, no request timeout (the chain owns
/// attempt timeouts).
pub(crate) fn build(connect_timeout: Duration) -> DirectClient {
    let mut inner = HttpConnector::new();
    inner.set_nodelay(true);
    inner.set_keepalive(Some(Duration::from_secs(15)));
    inner.set_keepalive_interval(Some(Duration::from_secs(15)));
    inner.set_keepalive_retries(Some(3));
    Pool::new(
        TimedConnector {
            inner,
            timeout: connect_timeout,
        },
        Duration::from_secs(90),
    )
}

/// A connector (hyper-util's) with one deadline over resolving and connecting, as reqwest's
/// `connect_timeout` (the connector's own timeout leaves name resolution out).
#[derive(Clone)]
pub(crate) struct TimedConnector<S = HttpConnector> {
    inner: S,
    timeout: Duration,
}

impl<S> Service<http::Uri> for TimedConnector<S>
where
    S: Service<http::Uri>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected.map_err(Into::into),
                Err(_) => Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connect timed out after {timeout:?}"),
                )) as BoxError),
            }
        })
    }
}

/// Whether the environment routes cleartext HTTP through a proxy (reqwest's system proxy
/// variables); then reqwest sends, so the proxy is used as before.
pub(crate) fn proxy_in_environment() -> bool {
    ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// POSTs `body` to `uri` (an `http://` URI) with `headers`.
pub(crate) async fn post(
    client: &DirectClient,
    uri: &http::Uri,
    headers: &Outgoing<'_>,
    body: &[u8],
) -> Result<UpstreamResponse, ProviderError> {
    client
        .send(uri, headers, body)
        .await
        .map(UpstreamResponse::Direct)
        .map_err(|e| from_transport(e.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connector that never connects, as a resolver that never answers.
    #[derive(Clone)]
    struct Hangs;

    impl Service<http::Uri> for Hangs {
        type Response = ();
        type Error = std::io::Error;
        type Future = std::future::Pending<Result<(), std::io::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Uri) -> Self::Future {
            std::future::pending()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_connect_timeout_bounds_resolving_and_connecting_together() {
        let mut c = TimedConnector {
            inner: Hangs,
            timeout: Duration::from_secs(5),
        };
        let started = tokio::time::Instant::now();
        let e = c
            .call("http://resolver-never-answers.test/".parse().unwrap())
            .await
            .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(e.to_string(), "connect timed out after 5s");
        let ours = from_transport(e.as_ref());
        assert_eq!(ours.kind, crate::ErrorKind::Connect);
    }
}
