//! One provider's HTTP response, from whichever client sent the request: status, headers and
//! the body (whole, a chunk at a time, or as a stream), with transport failures classified in
//! one place.

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http_body_util::BodyExt;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::http::{from_reqwest, from_transport};
use crate::{ErrorKind, ProviderError};

/// A response from reqwest (a caller's client, https, a proxy) or from the direct client
/// (cleartext upstreams, see [`direct`](super::direct)).
pub(crate) enum UpstreamResponse {
    Reqwest(reqwest::Response),
    Direct(http::Response<super::pool::PooledBody>),
}

impl UpstreamResponse {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            UpstreamResponse::Reqwest(r) => r.status(),
            UpstreamResponse::Direct(r) => r.status(),
        }
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        match self {
            UpstreamResponse::Reqwest(r) => r.headers(),
            UpstreamResponse::Direct(r) => r.headers(),
        }
    }

    /// The next piece of the body; `None` at its end (trailers are skipped).
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, ProviderError> {
        match self {
            UpstreamResponse::Reqwest(r) => r.chunk().await.map_err(|e| body_error(&e)),
            UpstreamResponse::Direct(r) => loop {
                match r.body_mut().frame().await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(from_transport(&e)),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                }
            },
        }
    }

    /// The whole body; a cut-off body is a transport failure.
    pub(crate) async fn bytes(self) -> Result<Bytes, ProviderError> {
        match self {
            UpstreamResponse::Reqwest(r) => r.bytes().await.map_err(|e| body_error(&e)),
            UpstreamResponse::Direct(r) => r
                .into_body()
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .map_err(|e| from_transport(&e)),
        }
    }

    /// The body as a stream of pieces; a failure is one `Err` item.
    pub(crate) fn bytes_stream(self) -> BoxStream<'static, Result<Bytes, ProviderError>> {
        match self {
            UpstreamResponse::Reqwest(r) => r
                .bytes_stream()
                .map(|r| r.map_err(|e| body_error(&e)))
                .boxed(),
            UpstreamResponse::Direct(r) => http_body_util::BodyDataStream::new(r.into_body())
                .map(|r| r.map_err(|e| from_transport(&e)))
                .boxed(),
        }
    }
}

/// A body read that failed: reqwest calls some of these builder or decode errors, but a
/// response we already have can only have been cut off in transit.
fn body_error(e: &reqwest::Error) -> ProviderError {
    let mut err = from_reqwest(e);
    if err.kind == ErrorKind::InvalidRequest {
        err.kind = ErrorKind::Connect;
    }
    err
}
